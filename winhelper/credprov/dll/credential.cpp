// credential.cpp: the jitkey tile (ICredentialProviderCredential2 +
// WithFieldOptions). Its logic is tile.cpp's; this file maps it onto
// LogonUI: field values and events, the QR bitmap, and the packed
// serialization. The password exists only in the tile until
// GetSerialization moves it into the serialization, and is wiped
// (SecureZeroMemory) from every buffer it passed through.
#include <new>
#include <stddef.h>
#include <string.h>

#include "provider.h"

#define SECURITY_WIN32
#include <ntsecapi.h>
#include <security.h>
#include <shlwapi.h>
#include <wincred.h>

extern "C" {
#include "pack.h"
#include "qrterm.h"
}

extern HINSTANCE g_instance;

#define WM_JK_MSG (WM_APP + 1)
#define WM_JK_END (WM_APP + 2)

// The portable packer must agree with the Windows structures.
static_assert(offsetof(KERB_INTERACTIVE_LOGON, MessageType) == JK_KIL_OFF_MESSAGE_TYPE, "MessageType offset");
static_assert(offsetof(KERB_INTERACTIVE_LOGON, LogonDomainName) == JK_KIL_OFF_DOMAIN, "LogonDomainName offset");
static_assert(offsetof(KERB_INTERACTIVE_LOGON, UserName) == JK_KIL_OFF_USER, "UserName offset");
static_assert(offsetof(KERB_INTERACTIVE_LOGON, Password) == JK_KIL_OFF_PASSWORD, "Password offset");
static_assert(sizeof(KERB_INTERACTIVE_LOGON) == JK_KIL_SIZE, "KERB_INTERACTIVE_LOGON size");
static_assert(offsetof(KERB_INTERACTIVE_UNLOCK_LOGON, LogonId) == JK_KIUL_OFF_LOGON_ID, "LogonId offset");
static_assert(sizeof(KERB_INTERACTIVE_UNLOCK_LOGON) == JK_KIUL_SIZE, "KERB_INTERACTIVE_UNLOCK_LOGON size");
static_assert(sizeof(UNICODE_STRING) == JK_UNICODE_STRING_SIZE, "UNICODE_STRING size");
static_assert(int(KerbInteractiveLogon) == int(JK_KERB_INTERACTIVE_LOGON), "KerbInteractiveLogon");
static_assert(int(KerbWorkstationUnlockLogon) == int(JK_KERB_WORKSTATION_UNLOCK_LOGON), "KerbWorkstationUnlockLogon");

namespace {

const wchar_t kWindowClass[] = L"jitkeyCredentialWindow";

// utf8_to_wide returns a CoTaskMemAlloc'd copy (for LogonUI to free).
HRESULT utf8_to_wide(const char *s, LPWSTR *out)
{
	*out = nullptr;
	int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, nullptr, 0);
	if (n <= 0)
		return E_INVALIDARG;
	LPWSTR w = static_cast<LPWSTR>(CoTaskMemAlloc(size_t(n) * sizeof(wchar_t)));
	if (w == nullptr)
		return E_OUTOFMEMORY;
	MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n);
	*out = w;
	return S_OK;
}

// negotiate_package finds the LSA package for the serialization:
// Negotiate, as Microsoft's sample uses, or else Kerberos, which takes
// the same KERB_INTERACTIVE_UNLOCK_LOGON (Windows always has Negotiate;
// Wine 8's LSA has only Kerberos).
HRESULT negotiate_package(ULONG *pkg)
{
	HANDLE lsa;
	if (LsaConnectUntrusted(&lsa) != 0)
		return E_FAIL;
	static const char *const kPackages[] = {NEGOSSP_NAME_A, MICROSOFT_KERBEROS_NAME_A};
	NTSTATUS st = -1;
	for (const char *n : kPackages) {
		LSA_STRING name;
		name.Buffer = const_cast<PCHAR>(n);
		name.Length = USHORT(strlen(n));
		name.MaximumLength = USHORT(name.Length + 1);
		if ((st = LsaLookupAuthenticationPackage(lsa, &name, pkg)) == 0)
			break;
	}
	LsaDeregisterLogonProcess(lsa);
	return st == 0 ? S_OK : E_FAIL;
}

const char *surface_of(CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus)
{
	switch (cpus) {
	case CPUS_UNLOCK_WORKSTATION:
		return "unlock";
	case CPUS_CREDUI:
		return "elevate";
	default:
		return "logon";
	}
}

} // namespace

Credential::Credential(CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus, bool ask_target, const char *target_hint,
		       ICredentialProviderEvents *pe, UINT_PTR ctx)
	: cpus_(cpus), tile_(jk_tile_new()), provider_events_(pe), provider_ctx_(ctx)
{
	if (tile_) {
		jk_tile_setup(tile_, surface_of(cpus), ask_target);
		if (target_hint)
			jk_tile_set_target_hint(tile_, target_hint);
	}
	if (provider_events_)
		provider_events_->AddRef();
	DllAddRef();
}

Credential::~Credential()
{
	link_.Stop();
	if (hwnd_)
		DestroyWindow(hwnd_);
	if (events_)
		events_->Release();
	if (provider_events_)
		provider_events_->Release();
	if (tile_)
		jk_tile_free(tile_); // wipes the credential and the typed code
	DllRelease();
}

void Credential::ProviderGone()
{
	if (provider_events_)
		provider_events_->Release();
	provider_events_ = nullptr;
}

IFACEMETHODIMP_(ULONG) Credential::AddRef() { return InterlockedIncrement(&ref_); }

IFACEMETHODIMP_(ULONG) Credential::Release()
{
	LONG r = InterlockedDecrement(&ref_);
	if (r == 0)
		delete this;
	return r;
}

IFACEMETHODIMP Credential::QueryInterface(REFIID riid, void **ppv)
{
	if (ppv == nullptr)
		return E_INVALIDARG;
	if (riid == IID_IUnknown || riid == JK_IID_ICredentialProviderCredential || riid == JK_IID_ICredentialProviderCredential2)
		*ppv = static_cast<ICredentialProviderCredential2 *>(this);
	else if (riid == JK_IID_ICredentialProviderCredentialWithFieldOptions)
		*ppv = static_cast<ICredentialProviderCredentialWithFieldOptions *>(this);
	else {
		*ppv = nullptr;
		return E_NOINTERFACE;
	}
	AddRef();
	return S_OK;
}

// Advise runs on LogonUI's UI thread: the message-only window that the
// agent link posts to is created here, so tile updates run on that
// thread too.
IFACEMETHODIMP Credential::Advise(ICredentialProviderCredentialEvents *e)
{
	if (events_)
		events_->Release();
	events_ = e;
	if (events_)
		events_->AddRef();
	if (hwnd_ == nullptr) {
		WNDCLASSW wc = {};
		wc.lpfnWndProc = WndProc;
		wc.hInstance = g_instance;
		wc.lpszClassName = kWindowClass;
		RegisterClassW(&wc); // fails harmlessly when registered already
		hwnd_ = CreateWindowExW(0, kWindowClass, L"", 0, 0, 0, 0, 0, HWND_MESSAGE, nullptr, g_instance, nullptr);
		if (hwnd_ == nullptr)
			return HRESULT_FROM_WIN32(GetLastError());
		SetWindowLongPtrW(hwnd_, GWLP_USERDATA, LONG_PTR(this));
		Restart();
	}
	return S_OK;
}

IFACEMETHODIMP Credential::UnAdvise()
{
	link_.Stop();
	if (hwnd_) {
		DestroyWindow(hwnd_); // pending messages' bodies: see WndProc WM_NCDESTROY
		hwnd_ = nullptr;
	}
	if (events_)
		events_->Release();
	events_ = nullptr;
	return S_OK;
}

void Credential::Restart()
{
	link_.Stop();
	// Drop messages of the previous connection.
	MSG m;
	while (hwnd_ && PeekMessageW(&m, hwnd_, WM_JK_MSG, WM_JK_END, PM_REMOVE))
		if (m.message == WM_JK_MSG)
			AgentLink::DeleteBody(m.wParam, m.lParam);
	changed_sent_ = false;
	if (jk_tile_start(tile_) == JK_ACT_CONNECT)
		Connect(); // else the tile asks for the Remote Desktop target first
	else
		Reflect();
}

// Connect opens the agent link with the tile's Begin.
void Credential::Connect()
{
	Reflect();
	uint8_t begin[128];
	size_t n = jk_tile_begin(tile_, begin, sizeof begin);
	if (n == 0 || !link_.Start(hwnd_, begin, n)) {
		jk_tile_agent_down(tile_);
		Reflect();
	}
}

LRESULT CALLBACK Credential::WndProc(HWND hwnd, UINT msg, WPARAM wp, LPARAM lp)
{
	auto *self = reinterpret_cast<Credential *>(GetWindowLongPtrW(hwnd, GWLP_USERDATA));
	switch (msg) {
	case WM_JK_MSG:
		if (self)
			self->OnBody(reinterpret_cast<const uint8_t *>(wp), size_t(lp));
		AgentLink::DeleteBody(wp, lp);
		return 0;
	case WM_JK_END:
		if (self) {
			if (wp == 1)
				jk_tile_agent_refused(self->tile_);
			else
				jk_tile_agent_down(self->tile_);
			self->Reflect();
		}
		return 0;
	case WM_NCDESTROY: {
		MSG m;
		while (PeekMessageW(&m, hwnd, WM_JK_MSG, WM_JK_MSG, PM_REMOVE))
			AgentLink::DeleteBody(m.wParam, m.lParam);
		break;
	}
	}
	return DefWindowProcW(hwnd, msg, wp, lp);
}

void Credential::OnBody(const uint8_t *body, size_t n)
{
	jk_msg m;
	if (jk_decode(body, n, &m) != 0) {
		// A message the surface cannot read ends the exchange.
		link_.Stop();
		jk_tile_agent_down(tile_);
	} else {
		jk_tile_message(tile_, &m);
		SecureZeroMemory(&m, sizeof m);
	}
	Reflect();
}

// Reflect pushes the tile's state to LogonUI, and once a credential is
// waiting tells the provider's events so that LogonUI re-enumerates and
// logs on by itself.
void Credential::Reflect()
{
	if (events_ && jk_tile_generation(tile_) != shown_gen_) {
		shown_gen_ = jk_tile_generation(tile_);
		for (DWORD f = 0; f < JK_F_COUNT; f++) {
			events_->SetFieldState(this, f, CREDENTIAL_PROVIDER_FIELD_STATE(jk_tile_field_state(tile_, int(f))));
			if (f == JK_F_IMAGE || f == JK_F_CODE || f == JK_F_SUBMIT || f == JK_F_EMAIL || f == JK_F_USERNAME || f == JK_F_TARGET)
				continue; // what the user types is LogonUI's to show
			LPWSTR w;
			if (SUCCEEDED(utf8_to_wide(jk_tile_string(tile_, int(f)), &w))) {
				events_->SetFieldString(this, f, w);
				CoTaskMemFree(w);
			}
		}
		events_->SetFieldSubmitButton(this, JK_F_SUBMIT, DWORD(jk_tile_submit_adjacent(tile_)));
	}
	if (events_ && jk_tile_qr_generation(tile_) != shown_qr_) {
		shown_qr_ = jk_tile_qr_generation(tile_);
		HBITMAP b = Bitmap();
		if (b) {
			events_->SetFieldBitmap(this, JK_F_IMAGE, b);
			DeleteObject(b);
		}
	}
	if (jk_tile_ready(tile_) && !changed_sent_ && provider_events_) {
		changed_sent_ = true;
		provider_events_->CredentialsChanged(provider_ctx_);
	}
}

// Bitmap draws the current QR code (or a blank tile while there is
// none) as a 32-bit top-down DIB section.
HBITMAP Credential::Bitmap()
{
	int side = 0;
	const uint8_t *dark = jk_tile_qr(tile_, &side);
	int scale = side > 0 ? (192 / side > 0 ? 192 / side : 1) : 1;
	int w = side > 0 ? side * scale : 64;
	BITMAPINFO bi = {};
	bi.bmiHeader.biSize = sizeof bi.bmiHeader;
	bi.bmiHeader.biWidth = w;
	bi.bmiHeader.biHeight = -w; // top-down
	bi.bmiHeader.biPlanes = 1;
	bi.bmiHeader.biBitCount = 32;
	bi.bmiHeader.biCompression = BI_RGB;
	void *bits = nullptr;
	HBITMAP b = CreateDIBSection(nullptr, &bi, DIB_RGB_COLORS, &bits, nullptr, 0);
	if (b == nullptr || bits == nullptr)
		return b;
	uint32_t *px = static_cast<uint32_t *>(bits);
	if (side > 0) {
		jk_qr_render(dark, side, scale, px, size_t(w) * size_t(w));
	} else {
		for (int i = 0; i < w * w; i++)
			px[i] = 0xFFFFFFFFu;
	}
	return b;
}

IFACEMETHODIMP Credential::SetSelected(BOOL *autologon)
{
	*autologon = jk_tile_ready(tile_) ? TRUE : FALSE;
	return S_OK;
}

IFACEMETHODIMP Credential::SetDeselected()
{
	jk_tile_set_string(tile_, JK_F_CODE, ""); // the code does not outlive the selection
	return S_OK;
}

IFACEMETHODIMP Credential::GetFieldState(DWORD id, CREDENTIAL_PROVIDER_FIELD_STATE *s, CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE *is)
{
	if (id >= JK_F_COUNT || s == nullptr || is == nullptr)
		return E_INVALIDARG;
	*s = CREDENTIAL_PROVIDER_FIELD_STATE(jk_tile_field_state(tile_, int(id)));
	*is = CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE(jk_tile_field_interactive(tile_, int(id)));
	return S_OK;
}

IFACEMETHODIMP Credential::GetStringValue(DWORD id, LPWSTR *ppsz)
{
	if (id >= JK_F_COUNT || ppsz == nullptr)
		return E_INVALIDARG;
	return utf8_to_wide(jk_tile_string(tile_, int(id)), ppsz);
}

IFACEMETHODIMP Credential::GetBitmapValue(DWORD id, HBITMAP *phbmp)
{
	if (id != JK_F_IMAGE || phbmp == nullptr)
		return E_INVALIDARG;
	*phbmp = Bitmap();
	return *phbmp ? S_OK : E_OUTOFMEMORY;
}

IFACEMETHODIMP Credential::GetCheckboxValue(DWORD, BOOL *, LPWSTR *) { return E_NOTIMPL; }

IFACEMETHODIMP Credential::GetSubmitButtonValue(DWORD id, DWORD *adjacent)
{
	if (id != JK_F_SUBMIT || adjacent == nullptr)
		return E_INVALIDARG;
	*adjacent = DWORD(jk_tile_submit_adjacent(tile_));
	return S_OK;
}

IFACEMETHODIMP Credential::GetComboBoxValueCount(DWORD, DWORD *, DWORD *) { return E_NOTIMPL; }
IFACEMETHODIMP Credential::GetComboBoxValueAt(DWORD, DWORD, LPWSTR *) { return E_NOTIMPL; }
IFACEMETHODIMP Credential::SetCheckboxValue(DWORD, BOOL) { return E_NOTIMPL; }
IFACEMETHODIMP Credential::SetComboBoxSelectedValue(DWORD, DWORD) { return E_NOTIMPL; }

IFACEMETHODIMP Credential::SetStringValue(DWORD id, LPCWSTR psz)
{
	if (psz == nullptr)
		return E_INVALIDARG;
	char buf[512];
	int n = WideCharToMultiByte(CP_UTF8, 0, psz, -1, buf, sizeof buf, nullptr, nullptr);
	HRESULT hr = (n > 0 && jk_tile_set_string(tile_, int(id), buf) == 0) ? S_OK : E_INVALIDARG;
	SecureZeroMemory(buf, sizeof buf);
	return hr;
}

IFACEMETHODIMP Credential::CommandLinkClicked(DWORD id)
{
	if (jk_tile_link(tile_, int(id)) == JK_ACT_RESTART)
		Restart();
	else
		Reflect();
	return S_OK;
}

IFACEMETHODIMP Credential::GetSerialization(CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE *r,
					     CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *cs, LPWSTR *status,
					     CREDENTIAL_PROVIDER_STATUS_ICON *icon)
{
	if (r == nullptr || cs == nullptr)
		return E_INVALIDARG;
	*r = CPGSR_NO_CREDENTIAL_NOT_FINISHED;
	if (status)
		*status = nullptr;
	if (icon)
		*icon = CPSI_NONE;
	ZeroMemory(cs, sizeof *cs);
	if (!jk_tile_ready(tile_)) {
		// Submit: the Remote Desktop target starts the login; a push
		// request or an offline code goes to the agent.
		int act = jk_tile_submit(tile_);
		if (act == JK_ACT_CONNECT) {
			Connect();
			return S_OK;
		}
		if (act == JK_ACT_SEND) {
			uint8_t out[1024];
			size_t n = jk_tile_outgoing(tile_, out, sizeof out);
			bool sent = n > 0 && link_.Send(out, n);
			SecureZeroMemory(out, sizeof out);
			if (!sent) {
				link_.Stop();
				jk_tile_agent_down(tile_);
			}
		}
		Reflect();
		return S_OK;
	}

	char user8[JK_MAX_ACCOUNT + 1];
	uint8_t pw8[JK_MAX_PASSWORD];
	uint8_t session[JK_SESSION_LEN];
	int pn = jk_tile_take_credential(tile_, user8, sizeof user8, pw8, sizeof pw8, session);
	if (pn <= 0)
		return E_UNEXPECTED;
	// The account is msp-x (a local account: this computer's) or
	// DOMAIN\msp-x (a domain account of a selective or Remote Desktop
	// login, SPEC.md 5.7.3, 11.7).
	wchar_t account[JK_MAX_ACCOUNT + 1], pw[JK_MAX_PASSWORD + 1], computer[MAX_COMPUTERNAME_LENGTH + 1];
	wchar_t qualified[MAX_COMPUTERNAME_LENGTH + JK_MAX_ACCOUNT + 2];
	DWORD cn = MAX_COMPUTERNAME_LENGTH + 1;
	const uint16_t *domain = nullptr, *user = nullptr;
	size_t dn = 0, un = 0;
	HRESULT hr = E_FAIL;
	size_t an = jk_utf8_to_utf16(reinterpret_cast<const uint8_t *>(user8), strlen(user8), reinterpret_cast<uint16_t *>(account), JK_MAX_ACCOUNT);
	size_t pwn = jk_utf8_to_utf16(pw8, size_t(pn), reinterpret_cast<uint16_t *>(pw), JK_MAX_PASSWORD);
	SecureZeroMemory(pw8, sizeof pw8);
	if (an == size_t(-1) || pwn == size_t(-1) || !GetComputerNameW(computer, &cn) ||
	    jk_account_split(reinterpret_cast<uint16_t *>(account), an, reinterpret_cast<uint16_t *>(computer), cn,
			     &domain, &dn, &user, &un) != 0)
		goto done;
	account[an] = 0;
	pw[pwn] = 0;
	hr = negotiate_package(&cs->ulAuthenticationPackage);
	if (FAILED(hr))
		goto done;
	cs->clsidCredentialProvider = JK_CLSID_Provider;
	if (cpus_ == CPUS_CREDUI) {
		// CredUI (UAC, RDP prompts) takes the packed authentication
		// buffer with a qualified name, DOMAIN\user or COMPUTER\user,
		// password in the clear.
		if (jk_account_qualified(reinterpret_cast<uint16_t *>(account), an, reinterpret_cast<uint16_t *>(computer), cn,
					 reinterpret_cast<uint16_t *>(qualified), sizeof qualified / sizeof qualified[0]) == 0) {
			hr = E_FAIL;
			goto done;
		}
		DWORD size = 0;
		CredPackAuthenticationBufferW(0, qualified, pw, nullptr, &size);
		BYTE *buf = size ? static_cast<BYTE *>(CoTaskMemAlloc(size)) : nullptr;
		if (buf && CredPackAuthenticationBufferW(0, qualified, pw, buf, &size)) {
			cs->rgbSerialization = buf;
			cs->cbSerialization = size;
			hr = S_OK;
		} else {
			if (buf) {
				SecureZeroMemory(buf, size);
				CoTaskMemFree(buf);
			}
			hr = E_FAIL;
		}
	} else {
		uint32_t type = cpus_ == CPUS_UNLOCK_WORKSTATION ? JK_KERB_WORKSTATION_UNLOCK_LOGON : JK_KERB_INTERACTIVE_LOGON;
		size_t size = jk_kerb_size(dn, un, pwn);
		BYTE *buf = static_cast<BYTE *>(CoTaskMemAlloc(size));
		if (buf && jk_kerb_pack(buf, size, type, domain, dn, user, un, reinterpret_cast<uint16_t *>(pw), pwn) == size) {
			cs->rgbSerialization = buf;
			cs->cbSerialization = ULONG(size);
			hr = S_OK;
		} else {
			if (buf)
				CoTaskMemFree(buf);
			hr = E_OUTOFMEMORY;
		}
	}
	if (SUCCEEDED(hr))
		*r = CPGSR_RETURN_CREDENTIAL_FINISHED;
done:
	SecureZeroMemory(pw, sizeof pw);
	SecureZeroMemory(qualified, sizeof qualified);
	SecureZeroMemory(session, sizeof session);
	return hr;
}

IFACEMETHODIMP Credential::ReportResult(LONG status, LONG, LPWSTR *text, CREDENTIAL_PROVIDER_STATUS_ICON *icon)
{
	if (text)
		*text = nullptr;
	if (icon)
		*icon = CPSI_NONE;
	if (status != 0 && text) {
		// The logon failed (LSA refused the account): say so; a new
		// login starts from the link.
		utf8_to_wide("Windows refused the jitkey account; try again", text);
		if (icon)
			*icon = CPSI_ERROR;
	}
	return S_OK;
}

IFACEMETHODIMP Credential::GetUserSid(LPWSTR *sid)
{
	*sid = nullptr;
	return S_FALSE; // an "Other user" tile: the account is the agent's choice
}

IFACEMETHODIMP Credential::GetFieldOptions(DWORD id, CREDENTIAL_PROVIDER_CREDENTIAL_FIELD_OPTIONS *o)
{
	if (o == nullptr)
		return E_INVALIDARG;
	*o = id == JK_F_CODE ? CPCFO_NUMBERS_ONLY : id == JK_F_EMAIL ? CPCFO_IS_EMAIL_ADDRESS : CPCFO_NONE;
	return S_OK;
}
