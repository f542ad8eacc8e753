//go:build !windows

package dpapi

import "errors"

func systemProtector() (Protector, error) { return nil, errors.ErrUnsupported }
