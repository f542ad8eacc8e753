//go:build deps

// Package deps pins the module's chosen dependencies until code imports them.
package deps

import (
	_ "github.com/flynn/noise"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/makiuchi-d/gozxing"
	_ "github.com/pquerna/otp/totp"
	_ "github.com/quic-go/quic-go"
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/sys/unix"
	_ "modernc.org/sqlite"
	_ "rsc.io/qr"
)
