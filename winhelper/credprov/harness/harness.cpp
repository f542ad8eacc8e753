// harness.exe: drives jitkey_cp.dll as LogonUI would, outside LogonUI
// (for Wine): LoadLibrary, DllGetClassObject, then for each scenario
// SetUsageScenario, Advise, the field descriptors, GetCredentialCount,
// GetCredentialAt, the credential's Advise, a message loop that prints
// every field change, and GetSerialization once the provider reports a
// credential (CredentialsChanged). It prints the serialization's
// account name and sizes, never the password. In CPUS_CREDUI (with
// CREDUIWIN_ENUMERATE_ADMINS, as UAC calls it) it first probes whether
// credui.dll packs buffers at all (Wine 8's CredPackAuthenticationBufferW
// and CredUnPackAuthenticationBufferW are stubs that return FALSE) and
// unpacks the serialization with CredUnPackAuthenticationBufferW; where
// packing is a stub it reports that GetSerialization failed for that
// reason (exit code 4) rather than a CredUI serialization.
//
//   harness.exe DLL SCENARIO SECONDS [QRFILE [--offline USERNAME CODE | --push EMAIL]]
//     SCENARIO: logon, unlock or credui
//     QRFILE:   the tile's Nth bitmap is written to QRFILE-N.pgm as a PGM
//               picture before "bitmap #N WxH" is printed ("-": not
//               written)
//     --offline: once the tile offers the offline-code fields (by itself
//               when the agent says it is offline, or through its "Use an
//               offline code" link), type USERNAME and CODE and press
//               Submit, as a technician would (the code is not printed)
//     --push:   once the tile offers "Send notification" (the agent is
//               online), click it, type EMAIL and press Submit; the number
//               the tile then shows is printed ("field 3: N")
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpapi.h"

#define SECURITY_WIN32
#include <ntsecapi.h>
#include <wincred.h>

static int g_changed = 0;
static const char *g_qrfile = nullptr;

static void wprint(const char *what, DWORD id, LPCWSTR s)
{
	char buf[1024];
	WideCharToMultiByte(CP_UTF8, 0, s ? s : L"", -1, buf, sizeof buf, nullptr, nullptr);
	printf("%s %lu: %s\n", what, (unsigned long)id, buf);
	fflush(stdout);
}

static int g_bitmaps = 0;

// save_bitmap prints "bitmap #N WxH" for the tile's Nth bitmap after
// writing it to QRPREFIX-N.pgm (if a prefix was given).
static void save_bitmap(HBITMAP b)
{
	DIBSECTION ds;
	if (GetObjectW(b, sizeof ds, &ds) != sizeof ds || ds.dsBm.bmBitsPixel != 32) {
		printf("bitmap: not a 32-bit DIB section\n");
		fflush(stdout);
		return;
	}
	int n = ++g_bitmaps;
	int w = ds.dsBm.bmWidth, h = ds.dsBm.bmHeight;
	if (g_qrfile != nullptr) {
		char path[MAX_PATH];
		snprintf(path, sizeof path, "%s-%d.pgm", g_qrfile, n);
		FILE *f = fopen(path, "wb");
		if (f != nullptr) {
			fprintf(f, "P5\n%d %d\n255\n", w, h);
			const uint32_t *px = static_cast<const uint32_t *>(ds.dsBm.bmBits);
			for (int i = 0; i < w * h; i++)
				fputc(int(px[i] & 0xff), f);
			fclose(f);
		}
	}
	printf("bitmap #%d %dx%d\n", n, w, h);
	fflush(stdout);
}

struct Events final : public ICredentialProviderCredentialEvents, public ICredentialProviderEvents {
	// One object serves both event interfaces; QueryInterface is not used
	// by the provider.
	IFACEMETHODIMP_(ULONG) AddRef() override { return 2; }
	IFACEMETHODIMP_(ULONG) Release() override { return 1; }
	IFACEMETHODIMP QueryInterface(REFIID, void **ppv) override
	{
		*ppv = nullptr;
		return E_NOINTERFACE;
	}
	IFACEMETHODIMP SetFieldState(ICredentialProviderCredential *, DWORD, CREDENTIAL_PROVIDER_FIELD_STATE) override { return S_OK; }
	IFACEMETHODIMP SetFieldInteractiveState(ICredentialProviderCredential *, DWORD, CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE) override { return S_OK; }
	IFACEMETHODIMP SetFieldString(ICredentialProviderCredential *, DWORD id, LPCWSTR s) override
	{
		if (id == 2 || id == 3) // status and number
			wprint("field", id, s);
		return S_OK;
	}
	IFACEMETHODIMP SetFieldCheckbox(ICredentialProviderCredential *, DWORD, BOOL, LPCWSTR) override { return S_OK; }
	IFACEMETHODIMP SetFieldBitmap(ICredentialProviderCredential *, DWORD, HBITMAP b) override
	{
		save_bitmap(b);
		return S_OK;
	}
	IFACEMETHODIMP SetFieldComboBoxSelectedItem(ICredentialProviderCredential *, DWORD, DWORD) override { return S_OK; }
	IFACEMETHODIMP DeleteFieldComboBoxItem(ICredentialProviderCredential *, DWORD, DWORD) override { return S_OK; }
	IFACEMETHODIMP AppendFieldComboBoxItem(ICredentialProviderCredential *, DWORD, LPCWSTR) override { return S_OK; }
	IFACEMETHODIMP SetFieldSubmitButton(ICredentialProviderCredential *, DWORD, DWORD) override { return S_OK; }
	IFACEMETHODIMP OnCreatingWindow(HWND *h) override
	{
		*h = nullptr;
		return E_NOTIMPL;
	}
	IFACEMETHODIMP CredentialsChanged(UINT_PTR ctx) override
	{
		printf("CredentialsChanged(%llu)\n", (unsigned long long)ctx);
		fflush(stdout);
		g_changed = 1;
		return S_OK;
	}
};

static bool visible(ICredentialProviderCredential *c, DWORD id)
{
	CREDENTIAL_PROVIDER_FIELD_STATE st;
	CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE is;
	return SUCCEEDED(c->GetFieldState(id, &st, &is)) && st != CPFS_HIDDEN;
}

static void set_utf8(ICredentialProviderCredential *c, DWORD id, const char *s, const char *what)
{
	wchar_t w[256];
	MultiByteToWideChar(CP_UTF8, 0, s, -1, w, 256);
	printf("SetStringValue(%lu, %s) = 0x%08lx\n", (unsigned long)id, what, (unsigned long)c->SetStringValue(id, w));
	SecureZeroMemory(w, sizeof w);
}

// submit presses Submit (GetSerialization) on a tile that sends what
// (the code, the push) to the agent, which answers later.
static void submit(ICredentialProviderCredential *c, const char *what)
{
	CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE r;
	CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION cs;
	LPWSTR st = nullptr;
	CREDENTIAL_PROVIDER_STATUS_ICON icon;
	HRESULT hr = c->GetSerialization(&r, &cs, &st, &icon);
	printf("Submit: GetSerialization = 0x%08lx response %d (0: not finished, the %s is with the agent)\n", (unsigned long)hr, int(r), what);
	fflush(stdout);
}

// Offline types the username and code into the tile's offline fields
// once they are shown (field ids: 5 username, 6 code, 9 the "Use an
// offline code" link) and presses Submit; it returns whether it did.
static bool Offline(ICredentialProviderCredential *c, const char *user, const char *code)
{
	if (!visible(c, 6)) {
		if (visible(c, 9)) {
			printf("CommandLinkClicked(9 \"Use an offline code\") = 0x%08lx\n", (unsigned long)c->CommandLinkClicked(9));
			fflush(stdout);
		}
		if (!visible(c, 6))
			return false;
	}
	printf("offline-code fields shown: username %s, code %s\n", visible(c, 5) ? "visible" : "hidden", visible(c, 6) ? "visible" : "hidden");
	set_utf8(c, 5, user, user);
	set_utf8(c, 6, code, "(code not shown)");
	submit(c, "code");
	return true;
}

// Push clicks "Send notification" (field 8) once the tile offers it,
// types email into the email field (4) and presses Submit; it returns
// whether it did.
static bool Push(ICredentialProviderCredential *c, const char *email)
{
	if (!visible(c, 8))
		return false;
	printf("CommandLinkClicked(8 \"Send notification\") = 0x%08lx\n", (unsigned long)c->CommandLinkClicked(8));
	if (!visible(c, 4)) {
		printf("push: the email field is not shown\n");
		fflush(stdout);
		return true;
	}
	set_utf8(c, 4, email, email);
	submit(c, "push");
	return true;
}

static int fail(const char *what, HRESULT hr)
{
	printf("FAIL %s: 0x%08lx\n", what, (unsigned long)hr);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: harness DLL logon|unlock|credui SECONDS [QRFILE]\n");
		return 2;
	}
	g_qrfile = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : nullptr;
	const char *offline_user = nullptr, *offline_code = nullptr, *push_email = nullptr;
	if (argc > 7 && strcmp(argv[5], "--offline") == 0) {
		offline_user = argv[6];
		offline_code = argv[7];
	}
	if (argc > 6 && strcmp(argv[5], "--push") == 0)
		push_email = argv[6];
	bool submitted = false;
	CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus = strcmp(argv[2], "unlock") == 0 ? CPUS_UNLOCK_WORKSTATION
						  : strcmp(argv[2], "credui") == 0 ? CPUS_CREDUI
										    : CPUS_LOGON;
	int seconds = atoi(argv[3]);
	CoInitializeEx(nullptr, COINIT_APARTMENTTHREADED);
	HMODULE dll = LoadLibraryA(argv[1]);
	if (dll == nullptr)
		return fail("LoadLibrary", HRESULT_FROM_WIN32(GetLastError()));
	typedef HRESULT(WINAPI * GetClassObject)(REFCLSID, REFIID, void **);
	auto get = reinterpret_cast<GetClassObject>(reinterpret_cast<void *>(GetProcAddress(dll, "DllGetClassObject")));
	if (get == nullptr)
		return fail("GetProcAddress", E_FAIL);
	IClassFactory *cf = nullptr;
	HRESULT hr = get(JK_CLSID_Provider, IID_IClassFactory, reinterpret_cast<void **>(&cf));
	if (FAILED(hr))
		return fail("DllGetClassObject", hr);
	ICredentialProvider *p = nullptr;
	hr = cf->CreateInstance(nullptr, JK_IID_ICredentialProvider, reinterpret_cast<void **>(&p));
	cf->Release();
	if (FAILED(hr))
		return fail("CreateInstance", hr);
	printf("provider created\n");
	if (FAILED(hr = p->SetUsageScenario(CPUS_CHANGE_PASSWORD, 0)) && hr != E_NOTIMPL)
		return fail("SetUsageScenario(change password)", hr);
	printf("SetUsageScenario(CPUS_CHANGE_PASSWORD) = 0x%08lx (E_NOTIMPL expected)\n", (unsigned long)hr);
	if (FAILED(hr = p->SetUsageScenario(cpus, cpus == CPUS_CREDUI ? CREDUIWIN_ENUMERATE_ADMINS : 0)))
		return fail("SetUsageScenario", hr);
	printf("SetUsageScenario(%s) = S_OK\n", argv[2]);
	bool can_pack = false;
	if (cpus == CPUS_CREDUI) {
		// On Windows a size query answers FALSE with the size needed; a
		// stub leaves the size at 0.
		DWORD need = 0;
		wchar_t pu[] = L"PROBE\\probe", pp[] = L"probe";
		CredPackAuthenticationBufferW(0, pu, pp, nullptr, &need);
		can_pack = need > 0;
		printf("credui.dll CredPackAuthenticationBufferW: %s\n", can_pack ? "packs" : "a stub (returns FALSE, no size)");
	}
	Events ev;
	p->Advise(&ev, 42);
	DWORD n = 0;
	p->GetFieldDescriptorCount(&n);
	printf("GetFieldDescriptorCount = %lu\n", (unsigned long)n);
	for (DWORD i = 0; i < n; i++) {
		CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR *d = nullptr;
		if (SUCCEEDED(p->GetFieldDescriptorAt(i, &d))) {
			char label[128];
			WideCharToMultiByte(CP_UTF8, 0, d->pszLabel, -1, label, sizeof label, nullptr, nullptr);
			printf("  field %lu type %d %s\n", (unsigned long)d->dwFieldID, int(d->cpft), label);
			CoTaskMemFree(d->pszLabel);
			CoTaskMemFree(d);
		}
	}
	DWORD count = 0, def = 0;
	BOOL autologon = FALSE;
	if (FAILED(hr = p->GetCredentialCount(&count, &def, &autologon)))
		return fail("GetCredentialCount", hr);
	printf("GetCredentialCount = %lu default %ld autologon %d\n", (unsigned long)count, long(def), int(autologon));
	ICredentialProviderCredential *c = nullptr;
	if (FAILED(hr = p->GetCredentialAt(0, &c)))
		return fail("GetCredentialAt", hr);
	ICredentialProviderCredential2 *c2 = nullptr;
	if (SUCCEEDED(c->QueryInterface(JK_IID_ICredentialProviderCredential2, reinterpret_cast<void **>(&c2)))) {
		LPWSTR sid = nullptr;
		printf("ICredentialProviderCredential2: GetUserSid = 0x%08lx (S_FALSE: other user tile)\n", (unsigned long)c2->GetUserSid(&sid));
		c2->Release();
	}
	c->Advise(&ev);
	LPWSTR s = nullptr;
	if (SUCCEEDED(c->GetStringValue(2, &s))) {
		wprint("initial", 2, s);
		CoTaskMemFree(s);
	}
	DWORD until = GetTickCount() + DWORD(seconds) * 1000;
	int rc = 3;
	while (GetTickCount() < until) {
		MSG m;
		if (MsgWaitForMultipleObjects(0, nullptr, FALSE, 200, QS_ALLINPUT) == WAIT_OBJECT_0)
			while (PeekMessageW(&m, nullptr, 0, 0, PM_REMOVE)) {
				TranslateMessage(&m);
				DispatchMessageW(&m);
			}
		if (offline_user && !submitted && Offline(c, offline_user, offline_code))
			submitted = true;
		if (push_email && !submitted && Push(c, push_email))
			submitted = true;
		if (!g_changed)
			continue;
		g_changed = 0;
		p->GetCredentialCount(&count, &def, &autologon);
		printf("GetCredentialCount = %lu default %ld autologon %d\n", (unsigned long)count, long(def), int(autologon));
		if (!autologon)
			continue;
		BOOL al = FALSE;
		c->SetSelected(&al);
		CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE r;
		CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION cs;
		LPWSTR st = nullptr;
		CREDENTIAL_PROVIDER_STATUS_ICON icon;
		hr = c->GetSerialization(&r, &cs, &st, &icon);
		if (FAILED(hr) || r != CPGSR_RETURN_CREDENTIAL_FINISHED) {
			printf("GetSerialization = 0x%08lx response %d\n", (unsigned long)hr, int(r));
			rc = 1;
			if (cpus == CPUS_CREDUI && !can_pack && hr == E_FAIL) {
				printf("CredUI: no serialization: credui.dll's CredPackAuthenticationBufferW is a stub here\n");
				rc = 4;
			}
			break;
		}
		printf("GetSerialization: response RETURN_CREDENTIAL_FINISHED, package %lu, %lu bytes\n",
		       (unsigned long)cs.ulAuthenticationPackage, (unsigned long)cs.cbSerialization);
		if (cpus != CPUS_CREDUI && cs.cbSerialization >= sizeof(KERB_INTERACTIVE_UNLOCK_LOGON)) {
			auto *k = reinterpret_cast<KERB_INTERACTIVE_UNLOCK_LOGON *>(cs.rgbSerialization);
			ULONG_PTR off = reinterpret_cast<ULONG_PTR>(k->Logon.UserName.Buffer);
			wchar_t user[128] = {};
			memcpy(user, cs.rgbSerialization + off, k->Logon.UserName.Length < 254 ? k->Logon.UserName.Length : 254);
			char user8[256];
			WideCharToMultiByte(CP_UTF8, 0, user, -1, user8, sizeof user8, nullptr, nullptr);
			printf("KERB_INTERACTIVE_UNLOCK_LOGON: MessageType %d, user %s\n", int(k->Logon.MessageType), user8);
			printf("password: %u bytes (not shown)\n", unsigned(k->Logon.Password.Length));
		}
		rc = 0;
		if (cpus == CPUS_CREDUI) {
			wchar_t user[CREDUI_MAX_USERNAME_LENGTH + 1] = {}, dom[CREDUI_MAX_DOMAIN_TARGET_LENGTH + 1] = {};
			wchar_t pw[CREDUI_MAX_PASSWORD_LENGTH + 1] = {};
			DWORD un = CREDUI_MAX_USERNAME_LENGTH + 1, dn = CREDUI_MAX_DOMAIN_TARGET_LENGTH + 1, pn = CREDUI_MAX_PASSWORD_LENGTH + 1;
			if (CredUnPackAuthenticationBufferW(0, cs.rgbSerialization, cs.cbSerialization, user, &un, dom, &dn, pw, &pn)) {
				char user8[512], dom8[512];
				WideCharToMultiByte(CP_UTF8, 0, user, -1, user8, sizeof user8, nullptr, nullptr);
				WideCharToMultiByte(CP_UTF8, 0, dom, -1, dom8, sizeof dom8, nullptr, nullptr);
				printf("CredUI serialization (CredUnPackAuthenticationBufferW): user %s, domain \"%s\"\n", user8, dom8);
				printf("password: %lu characters (not shown)\n", (unsigned long)(pn ? pn - 1 : 0));
			} else {
				printf("CredUnPackAuthenticationBufferW failed: 0x%08lx\n", (unsigned long)GetLastError());
				rc = 1;
			}
			SecureZeroMemory(pw, sizeof pw);
		}
		SecureZeroMemory(cs.rgbSerialization, cs.cbSerialization);
		CoTaskMemFree(cs.rgbSerialization);
		break;
	}
	if (rc == 3) {
		// No credential in time: Submit without input answers "not finished".
		CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE r;
		CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION cs;
		LPWSTR st = nullptr;
		CREDENTIAL_PROVIDER_STATUS_ICON icon;
		hr = c->GetSerialization(&r, &cs, &st, &icon);
		printf("GetSerialization without credential = 0x%08lx response %d (0: not finished)\n", (unsigned long)hr, int(r));
	}
	c->UnAdvise();
	c->Release();
	p->UnAdvise();
	p->Release();
	printf("DllCanUnloadNow = 0x%08lx\n", (unsigned long)reinterpret_cast<HRESULT(WINAPI *)()>(reinterpret_cast<void *>(GetProcAddress(dll, "DllCanUnloadNow")))());
	printf("done rc=%d\n", rc);
	return rc;
}
