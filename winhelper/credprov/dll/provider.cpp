// provider.cpp: ICredentialProvider (+SetUserArray). One tile, beside
// Windows' own (no filter), in the logon, unlock and CredUI scenarios.
#include <new>

#include "provider.h"

#define SECURITY_WIN32
#define _SEC_WINNT_AUTH_TYPES // CREDUIWIN_MARSHALED_CONTEXT, SspiUnmarshalCredUIContext
#include <lm.h>
#include <security.h>
#include <sspi.h>
#include <wincred.h>

namespace {

// domain_member reports whether this computer is joined to a domain
// (NetGetJoinInformation: NetSetupDomainName). Only then can a Remote
// Desktop login from here get a domain account (SPEC.md 11.7 RDP); the
// agent decides (its certificate must say DomainJoined) and refuses a
// Target otherwise.
bool domain_member()
{
	LPWSTR name = nullptr;
	NETSETUP_JOIN_STATUS status = NetSetupUnknownStatus;
	if (NetGetJoinInformation(nullptr, &name, &status) != NERR_Success)
		return false;
	if (name)
		NetApiBufferFree(name);
	return status == NetSetupDomainName;
}

// sspi_target reads the target name out of a CredUI input serialization
// that SspiPromptForCredentials made (CREDUIWIN_MARSHALED_CONTEXT of type
// SSPIPFC_STRUCTURE_TYPE_CREDUI_CONTEXT, unmarshalled with
// SspiUnmarshalCredUIContext: SEC_WINNT_CREDUI_CONTEXT.TargetName, e.g.
// TERMSRV/pc42.corp.example) into out as UTF-8. CredUIPromptForWindowsCredentials
// hands a provider no target (its CREDUI_INFO text is the dialog's), so
// the technician types it then.
bool sspi_target(const CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *cs, char *out, int cap)
{
	out[0] = 0;
	if (cs == nullptr || cs->rgbSerialization == nullptr || cs->cbSerialization < sizeof(CREDUIWIN_MARSHALED_CONTEXT))
		return false;
	CREDUIWIN_MARSHALED_CONTEXT mc;
	CopyMemory(&mc, cs->rgbSerialization, sizeof mc);
	if (!IsEqualGUID(mc.StructureType, CREDUIWIN_STRUCTURE_TYPE_SSPIPFC) ||
	    !IsEqualGUID(mc.MarshaledDataType, SSPIPFC_STRUCTURE_TYPE_CREDUI_CONTEXT) ||
	    mc.MarshaledDataOffset > cs->cbSerialization || mc.MarshaledDataLength > cs->cbSerialization - mc.MarshaledDataOffset)
		return false;
	// The documentation names no function that frees the result: it is
	// left to the process (one small block per prompt) rather than freed
	// with a guessed allocator inside CredUI's host.
	// Looked up at run time: Wine's credui.dll lacks it, and a missing
	// import would keep the whole DLL from loading there.
	typedef SECURITY_STATUS(SEC_ENTRY * unmarshal_fn)(PUCHAR, ULONG, PSEC_WINNT_CREDUI_CONTEXT *);
	HMODULE credui = GetModuleHandleW(L"credui.dll");
	auto unmarshal = credui ? reinterpret_cast<unmarshal_fn>(reinterpret_cast<void (*)()>(GetProcAddress(credui, "SspiUnmarshalCredUIContext"))) : nullptr;
	PSEC_WINNT_CREDUI_CONTEXT ctx = nullptr;
	if (unmarshal == nullptr ||
	    unmarshal(cs->rgbSerialization + mc.MarshaledDataOffset, mc.MarshaledDataLength, &ctx) != SEC_E_OK ||
	    ctx == nullptr || ctx->TargetName == nullptr || ctx->TargetName->Buffer == nullptr || ctx->TargetName->Length == 0)
		return false;
	int n = WideCharToMultiByte(CP_UTF8, 0, ctx->TargetName->Buffer, int(ctx->TargetName->Length / sizeof(wchar_t)),
				    out, cap - 1, nullptr, nullptr);
	if (n <= 0)
		return false;
	out[n] = 0;
	return true;
}

struct FieldDesc {
	DWORD id;
	CREDENTIAL_PROVIDER_FIELD_TYPE type;
	const wchar_t *label;
};

// The order is the field ids of tile.h.
const FieldDesc kFields[JK_F_COUNT] = {
	{JK_F_IMAGE, CPFT_TILE_IMAGE, L"jitkey"},
	{JK_F_TITLE, CPFT_LARGE_TEXT, L"jitkey"},
	{JK_F_STATUS, CPFT_SMALL_TEXT, L"Status"},
	{JK_F_NUMBER, CPFT_LARGE_TEXT, L"Number"},
	{JK_F_EMAIL, CPFT_EDIT_TEXT, L"Email"},
	{JK_F_USERNAME, CPFT_EDIT_TEXT, L"jitkey username"},
	{JK_F_CODE, CPFT_PASSWORD_TEXT, L"Code"},
	{JK_F_SUBMIT, CPFT_SUBMIT_BUTTON, L"Submit"},
	{JK_F_LINK_PUSH, CPFT_COMMAND_LINK, L"Send notification"},
	{JK_F_LINK_OFFLINE, CPFT_COMMAND_LINK, L"Use an offline code"},
	{JK_F_LINK_BACK, CPFT_COMMAND_LINK, L"Back to the QR code"},
	{JK_F_TARGET, CPFT_EDIT_TEXT, L"Computer to connect to"},
};

class Provider final : public ICredentialProvider, public ICredentialProviderSetUserArray {
public:
	Provider() { DllAddRef(); }

	IFACEMETHODIMP_(ULONG) AddRef() override { return InterlockedIncrement(&ref_); }
	IFACEMETHODIMP_(ULONG) Release() override
	{
		LONG r = InterlockedDecrement(&ref_);
		if (r == 0)
			delete this;
		return r;
	}
	IFACEMETHODIMP QueryInterface(REFIID riid, void **ppv) override
	{
		if (ppv == nullptr)
			return E_INVALIDARG;
		if (riid == IID_IUnknown || riid == JK_IID_ICredentialProvider)
			*ppv = static_cast<ICredentialProvider *>(this);
		else if (riid == JK_IID_ICredentialProviderSetUserArray)
			*ppv = static_cast<ICredentialProviderSetUserArray *>(this);
		else {
			*ppv = nullptr;
			return E_NOINTERFACE;
		}
		AddRef();
		return S_OK;
	}

	IFACEMETHODIMP SetUsageScenario(CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus, DWORD flags) override
	{
		switch (cpus) {
		case CPUS_LOGON:
		case CPUS_UNLOCK_WORKSTATION:
		case CPUS_CREDUI:
			// CredUI for UAC elevation comes with CREDUIWIN_ENUMERATE_ADMINS:
			// the jitkey account is an administrator, so the tile fits.
			// Other CredUI prompts on a domain member (the Remote Desktop
			// client's) first ask for the computer to connect to, which
			// Begin carries as Target (SPEC.md 5.7.1, 11.7).
			cpus_ = cpus;
			flags_ = flags;
			ask_target_ = cpus == CPUS_CREDUI && (flags & CREDUIWIN_ENUMERATE_ADMINS) == 0 && domain_member();
			return S_OK;
		default:
			return E_NOTIMPL; // change password, PLAP: not jitkey's
		}
	}
	// SetSerialization takes nothing but, in CredUI, the target name an
	// SSPI prompt carries (sspi_target), to prefill the target field.
	IFACEMETHODIMP SetSerialization(const CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *cs) override
	{
		if (cpus_ != CPUS_CREDUI || !sspi_target(cs, hint_, sizeof hint_))
			return E_NOTIMPL;
		return S_OK;
	}
	IFACEMETHODIMP Advise(ICredentialProviderEvents *pe, UINT_PTR ctx) override
	{
		if (events_)
			events_->Release();
		events_ = pe;
		if (events_)
			events_->AddRef();
		ctx_ = ctx;
		return S_OK;
	}
	IFACEMETHODIMP UnAdvise() override
	{
		if (cred_)
			cred_->ProviderGone();
		if (events_)
			events_->Release();
		events_ = nullptr;
		return S_OK;
	}
	IFACEMETHODIMP GetFieldDescriptorCount(DWORD *n) override
	{
		*n = JK_F_COUNT;
		return S_OK;
	}
	IFACEMETHODIMP GetFieldDescriptorAt(DWORD i, CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR **out) override
	{
		if (out == nullptr || i >= JK_F_COUNT)
			return E_INVALIDARG;
		*out = nullptr;
		auto *d = static_cast<CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR *>(CoTaskMemAlloc(sizeof(CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR)));
		if (d == nullptr)
			return E_OUTOFMEMORY;
		ZeroMemory(d, sizeof *d);
		d->dwFieldID = kFields[i].id;
		d->cpft = kFields[i].type;
		size_t n = (lstrlenW(kFields[i].label) + 1) * sizeof(wchar_t);
		d->pszLabel = static_cast<LPWSTR>(CoTaskMemAlloc(n));
		if (d->pszLabel == nullptr) {
			CoTaskMemFree(d);
			return E_OUTOFMEMORY;
		}
		CopyMemory(d->pszLabel, kFields[i].label, n);
		*out = d;
		return S_OK;
	}
	// GetCredentialCount builds the tile on first use (after
	// SetUserArray, as Microsoft's V2 sample does). When the agent has
	// handed over a credential the tile is the default with auto-logon:
	// LogonUI then calls GetSerialization at once.
	IFACEMETHODIMP GetCredentialCount(DWORD *count, DWORD *def, BOOL *autologon) override
	{
		*count = 0;
		*def = DWORD(-1); // CREDENTIAL_PROVIDER_NO_DEFAULT
		*autologon = FALSE;
		if (cred_ == nullptr) {
			cred_ = new (std::nothrow) Credential(cpus_, ask_target_, hint_[0] ? hint_ : nullptr, events_, ctx_);
			if (cred_ == nullptr)
				return E_OUTOFMEMORY;
			if (!cred_->Ok()) {
				cred_->Release();
				cred_ = nullptr;
				return E_OUTOFMEMORY;
			}
		}
		*count = 1;
		if (cred_->Ready()) {
			*def = 0;
			*autologon = TRUE;
		}
		return S_OK;
	}
	IFACEMETHODIMP GetCredentialAt(DWORD i, ICredentialProviderCredential **out) override
	{
		if (out == nullptr || i != 0 || cred_ == nullptr)
			return E_INVALIDARG;
		return cred_->QueryInterface(JK_IID_ICredentialProviderCredential, reinterpret_cast<void **>(out));
	}
	IFACEMETHODIMP SetUserArray(ICredentialProviderUserArray *users) override
	{
		// The tile is an "other user" tile for the jitkey account; the
		// enumerated users (admins, for UAC) are other providers' tiles.
		(void)users;
		return S_OK;
	}

private:
	~Provider()
	{
		if (cred_) {
			cred_->ProviderGone();
			cred_->Release();
		}
		if (events_)
			events_->Release();
		DllRelease();
	}
	LONG ref_ = 1;
	CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus_ = CPUS_INVALID;
	DWORD flags_ = 0;
	bool ask_target_ = false;
	char hint_[256] = {};
	ICredentialProviderEvents *events_ = nullptr;
	UINT_PTR ctx_ = 0;
	Credential *cred_ = nullptr;
};

} // namespace

HRESULT Provider_CreateInstance(REFIID riid, void **ppv)
{
	Provider *p = new (std::nothrow) Provider();
	if (p == nullptr)
		return E_OUTOFMEMORY;
	HRESULT hr = p->QueryInterface(riid, ppv);
	p->Release();
	return hr;
}
