//go:build !windows

package dpapi_test

import (
	"errors"
	"testing"

	"github.com/jitkey/jitkey/winhelper/dpapi"
)

func TestNewUnsupportedElsewhere(t *testing.T) {
	if _, err := dpapi.New(); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("New: err = %v, want ErrUnsupported", err)
	}
}
