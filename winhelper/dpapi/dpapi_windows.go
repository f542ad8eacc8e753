//go:build windows

package dpapi

import (
	"unsafe"

	"golang.org/x/sys/windows"
)

func systemProtector() (Protector, error) { return system{}, nil }

type system struct{}

func blob(b []byte) *windows.DataBlob {
	if len(b) == 0 {
		return &windows.DataBlob{}
	}
	return &windows.DataBlob{Size: uint32(len(b)), Data: &b[0]}
}

// take copies DPAPI's output into Go memory, wipes and frees it.
func take(out *windows.DataBlob) []byte {
	defer windows.LocalFree(windows.Handle(unsafe.Pointer(out.Data)))
	b := unsafe.Slice(out.Data, out.Size)
	res := append([]byte(nil), b...)
	clear(b)
	return res
}

func (system) Protect(data, entropy []byte, flags uint32) ([]byte, error) {
	var out windows.DataBlob
	if err := windows.CryptProtectData(blob(data), nil, blob(entropy), 0, nil, flags, &out); err != nil {
		return nil, err
	}
	return take(&out), nil
}

func (system) Unprotect(sealed, entropy []byte, flags uint32) ([]byte, error) {
	var out windows.DataBlob
	if err := windows.CryptUnprotectData(blob(sealed), nil, blob(entropy), 0, nil, flags, &out); err != nil {
		return nil, err
	}
	return take(&out), nil
}
