//go:build !windows

package netuser

import "errors"

// NewSystemAPI returns errors.ErrUnsupported: netapi32 exists only on
// Windows (package netusertest has a fake).
func NewSystemAPI() (API, error) { return nil, errors.ErrUnsupported }
