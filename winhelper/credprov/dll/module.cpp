// module.cpp: the DLL's COM entry points (the only two exports, see
// jitkey_cp.def) and its class factory.
#include <new>

#include "provider.h"

static LONG g_refs = 0;
HINSTANCE g_instance = nullptr;

void DllAddRef() { InterlockedIncrement(&g_refs); }
void DllRelease() { InterlockedDecrement(&g_refs); }

namespace {

class ClassFactory final : public IClassFactory {
public:
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
		if (riid == IID_IUnknown || riid == IID_IClassFactory) {
			*ppv = static_cast<IClassFactory *>(this);
			AddRef();
			return S_OK;
		}
		*ppv = nullptr;
		return E_NOINTERFACE;
	}
	IFACEMETHODIMP CreateInstance(IUnknown *outer, REFIID riid, void **ppv) override
	{
		if (ppv == nullptr)
			return E_INVALIDARG;
		*ppv = nullptr;
		if (outer != nullptr)
			return CLASS_E_NOAGGREGATION;
		return Provider_CreateInstance(riid, ppv);
	}
	IFACEMETHODIMP LockServer(BOOL lock) override
	{
		if (lock)
			DllAddRef();
		else
			DllRelease();
		return S_OK;
	}
	ClassFactory() { DllAddRef(); }

private:
	~ClassFactory() { DllRelease(); }
	LONG ref_ = 1;
};

} // namespace

extern "C" BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID)
{
	if (reason == DLL_PROCESS_ATTACH) {
		g_instance = instance;
		DisableThreadLibraryCalls(instance);
	}
	return TRUE;
}

extern "C" HRESULT WINAPI DllCanUnloadNow() { return g_refs > 0 ? S_FALSE : S_OK; }

extern "C" HRESULT WINAPI DllGetClassObject(REFCLSID clsid, REFIID riid, void **ppv)
{
	if (ppv == nullptr)
		return E_INVALIDARG;
	*ppv = nullptr;
	if (clsid != JK_CLSID_Provider)
		return CLASS_E_CLASSNOTAVAILABLE;
	ClassFactory *f = new (std::nothrow) ClassFactory();
	if (f == nullptr)
		return E_OUTOFMEMORY;
	HRESULT hr = f->QueryInterface(riid, ppv);
	f->Release();
	return hr;
}
