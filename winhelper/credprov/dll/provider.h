// provider.h: jitkey's credential provider classes (see provider.cpp).
#ifndef JK_PROVIDER_H
#define JK_PROVIDER_H

#include "cpapi.h"

extern "C" {
#include "jkmsg.h"
#include "tile.h"
}

void DllAddRef();
void DllRelease();
HRESULT Provider_CreateInstance(REFIID riid, void **ppv);

// AgentLink is the connection to the agent's pipe: a worker thread
// connects, sends Begin, reads frames, and posts each message body to a
// window on the UI thread, so that the tile is only touched there.
class AgentLink {
public:
	AgentLink();
	~AgentLink();
	// Start connects in the background and sends begin (the tile's
	// Begin body); messages go to hwnd as WM_APP+1 (wParam = body
	// pointer, lParam = length; the window frees them with DeleteBody),
	// the end as WM_APP+2 (wParam 1: the pipe refused this process).
	bool Start(HWND hwnd, const uint8_t *begin, size_t n);
	void Stop();
	bool Send(const uint8_t *body, size_t n);
	static void DeleteBody(WPARAM p, LPARAM n);

private:
	static DWORD WINAPI Run(void *self);
	DWORD Loop();
	bool Connect();
	bool ReadFull(uint8_t *p, size_t n);

	HWND hwnd_ = nullptr;
	uint8_t begin_[128] = {};
	size_t begin_len_ = 0;
	HANDLE pipe_ = INVALID_HANDLE_VALUE;
	bool refused_ = false; // the pipe answered ERROR_ACCESS_DENIED
	HANDLE stop_ = nullptr;
	HANDLE thread_ = nullptr;
	CRITICAL_SECTION wmu_;
};

class Credential final : public ICredentialProviderCredential2, public ICredentialProviderCredentialWithFieldOptions {
public:
	// ask_target: the tile asks for a Remote Desktop target first
	// (CredUI on a domain member); target_hint prefills it (UTF-8, or
	// nullptr).
	Credential(CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus, bool ask_target, const char *target_hint,
		   ICredentialProviderEvents *pe, UINT_PTR ctx);

	// IUnknown
	IFACEMETHODIMP_(ULONG) AddRef() override;
	IFACEMETHODIMP_(ULONG) Release() override;
	IFACEMETHODIMP QueryInterface(REFIID riid, void **ppv) override;

	// ICredentialProviderCredential
	IFACEMETHODIMP Advise(ICredentialProviderCredentialEvents *pcpce) override;
	IFACEMETHODIMP UnAdvise() override;
	IFACEMETHODIMP SetSelected(BOOL *pbAutoLogon) override;
	IFACEMETHODIMP SetDeselected() override;
	IFACEMETHODIMP GetFieldState(DWORD id, CREDENTIAL_PROVIDER_FIELD_STATE *s, CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE *is) override;
	IFACEMETHODIMP GetStringValue(DWORD id, LPWSTR *ppsz) override;
	IFACEMETHODIMP GetBitmapValue(DWORD id, HBITMAP *phbmp) override;
	IFACEMETHODIMP GetCheckboxValue(DWORD id, BOOL *checked, LPWSTR *label) override;
	IFACEMETHODIMP GetSubmitButtonValue(DWORD id, DWORD *adjacent) override;
	IFACEMETHODIMP GetComboBoxValueCount(DWORD id, DWORD *items, DWORD *selected) override;
	IFACEMETHODIMP GetComboBoxValueAt(DWORD id, DWORD item, LPWSTR *ppsz) override;
	IFACEMETHODIMP SetStringValue(DWORD id, LPCWSTR psz) override;
	IFACEMETHODIMP SetCheckboxValue(DWORD id, BOOL checked) override;
	IFACEMETHODIMP SetComboBoxSelectedValue(DWORD id, DWORD selected) override;
	IFACEMETHODIMP CommandLinkClicked(DWORD id) override;
	IFACEMETHODIMP GetSerialization(CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE *r, CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *cs,
					LPWSTR *status, CREDENTIAL_PROVIDER_STATUS_ICON *icon) override;
	IFACEMETHODIMP ReportResult(LONG status, LONG substatus, LPWSTR *text, CREDENTIAL_PROVIDER_STATUS_ICON *icon) override;
	// ICredentialProviderCredential2
	IFACEMETHODIMP GetUserSid(LPWSTR *sid) override;
	// ICredentialProviderCredentialWithFieldOptions
	IFACEMETHODIMP GetFieldOptions(DWORD id, CREDENTIAL_PROVIDER_CREDENTIAL_FIELD_OPTIONS *o) override;

	bool Ready() const { return tile_ && jk_tile_ready(tile_); }
	bool Ok() const { return tile_ != nullptr; }
	void ProviderGone();

private:
	~Credential();
	static LRESULT CALLBACK WndProc(HWND, UINT, WPARAM, LPARAM);
	void Restart();
	void Connect();
	void Reflect();
	void OnBody(const uint8_t *body, size_t n);
	HBITMAP Bitmap();

	LONG ref_ = 1;
	CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus_;
	jk_tile *tile_;
	ICredentialProviderCredentialEvents *events_ = nullptr;
	ICredentialProviderEvents *provider_events_;
	UINT_PTR provider_ctx_;
	HWND hwnd_ = nullptr;
	AgentLink link_;
	uint32_t shown_gen_ = 0, shown_qr_ = 0;
	bool changed_sent_ = false;
};

#endif
