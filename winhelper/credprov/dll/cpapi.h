/*
 * cpapi.h: the Windows credential provider interfaces jitkey's provider
 * implements or calls, declared from Microsoft's public documentation of
 * credentialprovider.idl (interface ids, method order and signatures are
 * the COM ABI). Debian 12's mingw-w64 10 has no credentialprovider.h (it
 * arrived in mingw-w64 11); with a newer toolchain this file can give way
 * to it. Only what the provider uses is declared.
 */
#ifndef JK_CPAPI_H
#define JK_CPAPI_H

#include <windows.h>
#include <unknwn.h>
#include <propsys.h>

typedef enum _CREDENTIAL_PROVIDER_USAGE_SCENARIO {
	CPUS_INVALID = 0,
	CPUS_LOGON = 1,
	CPUS_UNLOCK_WORKSTATION = 2,
	CPUS_CHANGE_PASSWORD = 3,
	CPUS_CREDUI = 4,
	CPUS_PLAP = 5
} CREDENTIAL_PROVIDER_USAGE_SCENARIO;

typedef enum _CREDENTIAL_PROVIDER_FIELD_TYPE {
	CPFT_INVALID = 0,
	CPFT_LARGE_TEXT = 1,
	CPFT_SMALL_TEXT = 2,
	CPFT_COMMAND_LINK = 3,
	CPFT_EDIT_TEXT = 4,
	CPFT_PASSWORD_TEXT = 5,
	CPFT_TILE_IMAGE = 6,
	CPFT_CHECKBOX = 7,
	CPFT_COMBOBOX = 8,
	CPFT_SUBMIT_BUTTON = 9
} CREDENTIAL_PROVIDER_FIELD_TYPE;

typedef enum _CREDENTIAL_PROVIDER_FIELD_STATE {
	CPFS_HIDDEN = 0,
	CPFS_DISPLAY_IN_SELECTED_TILE = 1,
	CPFS_DISPLAY_IN_DESELECTED_TILE = 2,
	CPFS_DISPLAY_IN_BOTH = 3
} CREDENTIAL_PROVIDER_FIELD_STATE;

typedef enum _CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE {
	CPFIS_NONE = 0,
	CPFIS_READONLY = 1,
	CPFIS_DISABLED = 2,
	CPFIS_FOCUSED = 3
} CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE;

typedef struct _CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR {
	DWORD dwFieldID;
	CREDENTIAL_PROVIDER_FIELD_TYPE cpft;
	LPWSTR pszLabel;
	GUID guidFieldType;
} CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR;

typedef enum _CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE {
	CPGSR_NO_CREDENTIAL_NOT_FINISHED = 0,
	CPGSR_NO_CREDENTIAL_FINISHED = 1,
	CPGSR_RETURN_CREDENTIAL_FINISHED = 2,
	CPGSR_RETURN_NO_CREDENTIAL_FINISHED = 3
} CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE;

typedef enum _CREDENTIAL_PROVIDER_STATUS_ICON {
	CPSI_NONE = 0,
	CPSI_ERROR = 1,
	CPSI_WARNING = 2,
	CPSI_SUCCESS = 3
} CREDENTIAL_PROVIDER_STATUS_ICON;

typedef struct _CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION {
	ULONG ulAuthenticationPackage;
	GUID clsidCredentialProvider;
	ULONG cbSerialization;
	byte *rgbSerialization;
} CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION;

typedef enum CREDENTIAL_PROVIDER_ACCOUNT_OPTIONS {
	CPAO_NONE = 0x0,
	CPAO_EMPTY_LOCAL = 0x1,
	CPAO_EMPTY_CONNECTED = 0x2
} CREDENTIAL_PROVIDER_ACCOUNT_OPTIONS;

typedef enum CREDENTIAL_PROVIDER_CREDENTIAL_FIELD_OPTIONS {
	CPCFO_NONE = 0x0,
	CPCFO_ENABLE_PASSWORD_REVEAL = 0x1,
	CPCFO_IS_EMAIL_ADDRESS = 0x2,
	CPCFO_ENABLE_TOUCH_KEYBOARD_AUTO_INVOKE = 0x4,
	CPCFO_NUMBERS_ONLY = 0x8,
	CPCFO_SHOW_ENGLISH_KEYBOARD = 0x10
} CREDENTIAL_PROVIDER_CREDENTIAL_FIELD_OPTIONS;

#ifndef CREDUIWIN_ENUMERATE_ADMINS
#define CREDUIWIN_ENUMERATE_ADMINS 0x100
#endif

struct ICredentialProviderCredentialEvents;
struct ICredentialProviderEvents;

/* {63913a93-40c1-481a-818d-4072ff8c70cc} */
struct ICredentialProviderCredential : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE Advise(ICredentialProviderCredentialEvents *pcpce) = 0;
	virtual HRESULT STDMETHODCALLTYPE UnAdvise() = 0;
	virtual HRESULT STDMETHODCALLTYPE SetSelected(BOOL *pbAutoLogon) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetDeselected() = 0;
	virtual HRESULT STDMETHODCALLTYPE GetFieldState(DWORD dwFieldID, CREDENTIAL_PROVIDER_FIELD_STATE *pcpfs,
							CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE *pcpfis) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetStringValue(DWORD dwFieldID, LPWSTR *ppsz) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetBitmapValue(DWORD dwFieldID, HBITMAP *phbmp) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetCheckboxValue(DWORD dwFieldID, BOOL *pbChecked, LPWSTR *ppszLabel) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetSubmitButtonValue(DWORD dwFieldID, DWORD *pdwAdjacentTo) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetComboBoxValueCount(DWORD dwFieldID, DWORD *pcItems, DWORD *pdwSelectedItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetComboBoxValueAt(DWORD dwFieldID, DWORD dwItem, LPWSTR *ppszItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetStringValue(DWORD dwFieldID, LPCWSTR psz) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetCheckboxValue(DWORD dwFieldID, BOOL bChecked) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetComboBoxSelectedValue(DWORD dwFieldID, DWORD dwSelectedItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE CommandLinkClicked(DWORD dwFieldID) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetSerialization(CREDENTIAL_PROVIDER_GET_SERIALIZATION_RESPONSE *pcpgsr,
							   CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *pcpcs,
							   LPWSTR *ppszOptionalStatusText,
							   CREDENTIAL_PROVIDER_STATUS_ICON *pcpsiOptionalStatusIcon) = 0;
	virtual HRESULT STDMETHODCALLTYPE ReportResult(LONG ntsStatus, LONG ntsSubstatus, LPWSTR *ppszOptionalStatusText,
						       CREDENTIAL_PROVIDER_STATUS_ICON *pcpsiOptionalStatusIcon) = 0;
};

/* {fd672c54-40ea-4d6e-9b49-cfb1a7507bd7} */
struct ICredentialProviderCredential2 : public ICredentialProviderCredential {
	virtual HRESULT STDMETHODCALLTYPE GetUserSid(LPWSTR *sid) = 0;
};

/* {dbc6fb30-c843-49e3-a645-573e6f39446a} */
struct ICredentialProviderCredentialWithFieldOptions : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE GetFieldOptions(DWORD fieldID, CREDENTIAL_PROVIDER_CREDENTIAL_FIELD_OPTIONS *options) = 0;
};

/* {fa6fa76b-66b7-4b11-95f1-86171118e816} */
struct ICredentialProviderCredentialEvents : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE SetFieldState(ICredentialProviderCredential *pcpc, DWORD dwFieldID, CREDENTIAL_PROVIDER_FIELD_STATE cpfs) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldInteractiveState(ICredentialProviderCredential *pcpc, DWORD dwFieldID,
								   CREDENTIAL_PROVIDER_FIELD_INTERACTIVE_STATE cpfis) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldString(ICredentialProviderCredential *pcpc, DWORD dwFieldID, LPCWSTR psz) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldCheckbox(ICredentialProviderCredential *pcpc, DWORD dwFieldID, BOOL bChecked, LPCWSTR pszLabel) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldBitmap(ICredentialProviderCredential *pcpc, DWORD dwFieldID, HBITMAP hbmp) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldComboBoxSelectedItem(ICredentialProviderCredential *pcpc, DWORD dwFieldID, DWORD dwSelectedItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE DeleteFieldComboBoxItem(ICredentialProviderCredential *pcpc, DWORD dwFieldID, DWORD dwItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE AppendFieldComboBoxItem(ICredentialProviderCredential *pcpc, DWORD dwFieldID, LPCWSTR pszItem) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetFieldSubmitButton(ICredentialProviderCredential *pcpc, DWORD dwFieldID, DWORD dwAdjacentTo) = 0;
	virtual HRESULT STDMETHODCALLTYPE OnCreatingWindow(HWND *phwndOwner) = 0;
};

/* {34201e5a-a787-41a3-a5a4-bd6dcf2a854e} */
struct ICredentialProviderEvents : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE CredentialsChanged(UINT_PTR upAdviseContext) = 0;
};

/* {d27c3481-5a1c-45b2-8aaa-c20ebbe8229e} */
struct ICredentialProvider : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE SetUsageScenario(CREDENTIAL_PROVIDER_USAGE_SCENARIO cpus, DWORD dwFlags) = 0;
	virtual HRESULT STDMETHODCALLTYPE SetSerialization(const CREDENTIAL_PROVIDER_CREDENTIAL_SERIALIZATION *pcpcs) = 0;
	virtual HRESULT STDMETHODCALLTYPE Advise(ICredentialProviderEvents *pcpe, UINT_PTR upAdviseContext) = 0;
	virtual HRESULT STDMETHODCALLTYPE UnAdvise() = 0;
	virtual HRESULT STDMETHODCALLTYPE GetFieldDescriptorCount(DWORD *pdwCount) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetFieldDescriptorAt(DWORD dwIndex, CREDENTIAL_PROVIDER_FIELD_DESCRIPTOR **ppcpfd) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetCredentialCount(DWORD *pdwCount, DWORD *pdwDefault, BOOL *pbAutoLogonWithDefault) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetCredentialAt(DWORD dwIndex, ICredentialProviderCredential **ppcpc) = 0;
};

/* {13793285-3ea6-40fd-b420-15f47da41fbb} */
struct ICredentialProviderUser : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE GetSid(LPWSTR *sid) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetProviderID(GUID *providerID) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetStringValue(REFPROPERTYKEY key, LPWSTR *stringValue) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetValue(REFPROPERTYKEY key, PROPVARIANT *value) = 0;
};

/* {90c119ae-0f18-4520-a1f1-114366a40fe8} */
struct ICredentialProviderUserArray : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE SetProviderFilter(REFGUID guidProviderToFilterTo) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetAccountOptions(CREDENTIAL_PROVIDER_ACCOUNT_OPTIONS *credentialProviderAccountOptions) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetCount(DWORD *userCount) = 0;
	virtual HRESULT STDMETHODCALLTYPE GetAt(DWORD userIndex, ICredentialProviderUser **user) = 0;
};

/* {095c1484-1c0c-4388-9c6d-500e61bf84bd} */
struct ICredentialProviderSetUserArray : public IUnknown {
	virtual HRESULT STDMETHODCALLTYPE SetUserArray(ICredentialProviderUserArray *users) = 0;
};

/* Interface ids (values from the documentation, as GUID structs). */
static const IID JK_IID_ICredentialProvider = {0xd27c3481, 0x5a1c, 0x45b2, {0x8a, 0xaa, 0xc2, 0x0e, 0xbb, 0xe8, 0x22, 0x9e}};
static const IID JK_IID_ICredentialProviderSetUserArray = {0x095c1484, 0x1c0c, 0x4388, {0x9c, 0x6d, 0x50, 0x0e, 0x61, 0xbf, 0x84, 0xbd}};
static const IID JK_IID_ICredentialProviderCredential = {0x63913a93, 0x40c1, 0x481a, {0x81, 0x8d, 0x40, 0x72, 0xff, 0x8c, 0x70, 0xcc}};
static const IID JK_IID_ICredentialProviderCredential2 = {0xfd672c54, 0x40ea, 0x4d6e, {0x9b, 0x49, 0xcf, 0xb1, 0xa7, 0x50, 0x7b, 0xd7}};
static const IID JK_IID_ICredentialProviderCredentialWithFieldOptions = {0xdbc6fb30, 0xc843, 0x49e3, {0xa6, 0x45, 0x57, 0x3e, 0x6f, 0x39, 0x44, 0x6a}};

/* jitkey's provider: {DDD21E6B-4784-44B2-BABD-1645E90BE16F}. */
static const CLSID JK_CLSID_Provider = {0xddd21e6b, 0x4784, 0x44b2, {0xba, 0xbd, 0x16, 0x45, 0xe9, 0x0b, 0xe1, 0x6f}};
#define JK_CLSID_STRING L"{DDD21E6B-4784-44B2-BABD-1645E90BE16F}"

#endif
