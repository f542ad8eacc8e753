package protocol

import (
	"bytes"
	"testing"
)

// TestTOTPRFC6238 checks TOTP against the SHA-1 test vectors of RFC 6238
// appendix B (8 digits, period 30) and their 6-digit truncations.
func TestTOTPRFC6238(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		t    int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		got, err := TOTP(key, tc.t, 30, 8)
		if err != nil || got != tc.want {
			t.Errorf("T=%d: %q, %v; want %s", tc.t, got, err, tc.want)
		}
		got, err = TOTP(key, tc.t, 30, 6)
		if err != nil || got != tc.want[2:] {
			t.Errorf("T=%d, 6 digits: %q, %v; want %s", tc.t, got, err, tc.want[2:])
		}
	}
	for _, bad := range []struct {
		t              int64
		period, digits int
	}{{59, 30, 7}, {59, 45, 6}, {-1, 30, 6}} {
		if _, err := TOTP(key, bad.t, bad.period, bad.digits); err == nil {
			t.Errorf("TOTP accepted %+v", bad)
		}
	}
}

// TestSharedKeys checks the two levels of shared-mode offline keys
// against Derive with the contexts SPEC.md 11.6 names, and that each
// level is bound to its context.
func TestSharedKeys(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, TenantSecretLen)
	nik, err := SharedTechKey(secret, "tech-nik")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Derive(secret, LabelOTPSharedTech, []byte("tech-nik"), 32)
	if !bytes.Equal(nik, want) {
		t.Fatalf("tech key %x, want %x", nik, want)
	}
	sam, _ := SharedTechKey(secret, "tech-sam")
	if bytes.Equal(nik, sam) {
		t.Fatal("two technicians got the same key")
	}
	var dev DeviceID
	dev[0] = 1
	code, err := SharedCodeKey(nik, dev)
	if err != nil {
		t.Fatal(err)
	}
	want, _ = Derive(nik, LabelOTPSharedCode, dev[:], 20)
	if !bytes.Equal(code, want) || len(code) != CodeKeyLen {
		t.Fatalf("code key %x, want %x", code, want)
	}
	other := dev
	other[15] = 1
	if c2, _ := SharedCodeKey(nik, other); bytes.Equal(c2, code) {
		t.Fatal("two devices got the same code key")
	}
	if _, err := SharedTechKey(secret[:31], "tech-nik"); err == nil {
		t.Error("SharedTechKey accepted a short secret")
	}
	if _, err := SharedTechKey(secret, ""); err == nil {
		t.Error("SharedTechKey accepted an empty tech id")
	}
	if _, err := SharedCodeKey(nik[:16], dev); err == nil {
		t.Error("SharedCodeKey accepted a short tech key")
	}
}
