package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleDocs returns one populated value of every CBOR type the package
// decodes. They seed the fuzz targets and the round-trip test.
func sampleDocs(t testing.TB) []any {
	f := newFixture(t)
	tc, err := SignEd25519(DocTechCert, &f.tech, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := SignEd25519(DocDeviceCert, &f.device, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	pol := f.policy
	pol.Shares = []DeviceShare{{DeviceID: f.device.DeviceID, Entries: []string{"nik", ShareAllAdmins}}}
	pol.Roster = []RosterEntry{{Serial: 42, TechID: "tech-nik", Username: "nik", Email: "nik@msp.example", Relay: testRelayB}}
	ps, err := SignEd25519(DocPolicy, &pol, f.msp)
	if err != nil {
		t.Fatal(err)
	}
	ap := Approval{Serial: 42, DeviceID: f.device.DeviceID, HandshakeHash: bytes.Repeat([]byte{1}, 32),
		Action: ActionLogon, Decision: DecisionApprove, Time: testNow.Unix(), Nonce: [16]byte{9}}
	return []any{
		&f.tech, &f.device, &pol, &ap, &tc,
		&Grant{Tenant: testTenant, Role: RoleAdmin},
		&OfflineParams{Digits: 6, Period: 30},
		&DeviceShare{Entries: []string{ShareAllUsers}},
		&RosterEntry{Username: "nik"},
		&AuditRecord{DeviceID: f.device.DeviceID, Seq: 1, Time: 1, Event: "login.approved", Method: MethodQR},
		&ErrorMsg{Code: CodeRefused, Text: "refused"},
		&EnrollToken{Tenant: testTenant, Console: "aaaa@" + testRelayA, RelayPins: [][32]byte{{1}}, Expires: 5},
		&EnrollRequest{Name: "pc", OS: "linux", Relay: testRelayA, IdentitySig: make([]byte, 64)},
		&EnrollResponse{DeviceCert: dc, Policy: ps},
		&PairRequest{Relay: testRelayB, IdentitySig: make([]byte, 64), ApprovalSig: make([]byte, 64), Label: "sim"},
		&PairResponse{TechCert: tc, Org: "MSP", Policies: []Signed{ps}, Directory: []Signed{dc},
			OfflineSecrets: []TenantSecret{{Tenant: testTenant, Secret: make([]byte, 32)}}},
		&TenantSecret{Tenant: testTenant, Secret: make([]byte, 32)},
		&LoginHello{TechCert: tc},
		&LoginRequest{DeviceCert: dc, Action: ActionLogon, Account: "msp-nik", Choices: []uint8{AccountLocal}, Time: 1},
		&LoginResult{OK: true, Account: "msp-nik", OfflineSecret: make([]byte, 20)},
		&PolicyPush{Policies: []Signed{ps}, Directory: []Signed{dc}},
		&PolicyPush{Policies: []Signed{}, Directory: []Signed{dc}, OfflineSecrets: []TenantSecret{{Tenant: testTenant, Secret: make([]byte, 32)}},
			Page: 3, More: true},
		&PairResponse{TechCert: tc, Org: "MSP", Policies: []Signed{ps}, Directory: []Signed{}, More: true},
		&PageAck{Page: 2},
		&PolicyAck{Versions: []TenantVersion{{Tenant: testTenant, Version: 3}}},
		&TenantVersion{Tenant: testTenant, Version: 3},
		&AuditBatch{Records: []Signed{tc}, PolicyVersion: 3, Name: "pc", OS: "linux"},
		&AuditAck{UpTo: 4, Policy: &ps},
		&AuditAck{UpTo: 4},
		&SyncRequest{},
	}
}

func TestMarshalRoundTripEveryType(t *testing.T) {
	for _, v := range sampleDocs(t) {
		t.Run(reflect.TypeOf(v).Elem().Name(), func(t *testing.T) {
			b, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := Unmarshal(b, got); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			again, err := Marshal(got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encode differs: %v\n%x\n%x", err, b, again)
			}
		})
	}
}

// TestUnmarshalStrict feeds hand-made encodings of TenantVersion
// {1: "acme", 2: 5}, canonically a2 01 64 61636d65 02 05.
func TestUnmarshalStrict(t *testing.T) {
	big := make([]byte, MaxMessageSize+1)
	tests := []struct {
		name string
		in   string
		raw  []byte
		want error // nil: accepted
	}{
		{"canonical", "a2 01 6461636d65 02 05", nil, nil},
		{"int not shortest", "a2 01 6461636d65 02 1805", nil, ErrNonCanonical},
		{"int 8-byte form", "a2 01 6461636d65 02 1b0000000000000005", nil, ErrNonCanonical},
		{"key not shortest", "a2 1801 6461636d65 02 05", nil, ErrNonCanonical},
		{"map keys out of order", "a2 02 05 01 6461636d65", nil, ErrNonCanonical},
		{"map length not shortest", "b802 01 6461636d65 02 05", nil, ErrNonCanonical},
		{"text length not shortest", "a2 01 780461636d65 02 05", nil, ErrNonCanonical},
		{"missing field", "a1 01 6461636d65", nil, ErrNonCanonical},
		{"null for text", "a2 01 f6 02 05", nil, ErrNonCanonical},
		{"duplicate key", "a3 01 6461636d65 02 05 01 6461636d65", nil, ErrMalformed},
		{"duplicate key different value", "a3 01 6461636d65 02 05 02 06", nil, ErrMalformed},
		{"unknown field", "a3 01 6461636d65 02 05 03 00", nil, ErrMalformed},
		{"text key", "a2 01 6461636d65 6156 05", nil, ErrMalformed},
		{"indefinite map", "bf 01 6461636d65 02 05 ff", nil, ErrMalformed},
		{"indefinite text", "a2 01 7f6461636d65ff 02 05", nil, ErrMalformed},
		{"tagged map", "d9d9f7 a2 01 6461636d65 02 05", nil, ErrMalformed},
		{"tagged int (bignum)", "a2 01 6461636d65 02 c24105", nil, ErrMalformed},
		{"trailing byte", "a2 01 6461636d65 02 05 00", nil, ErrMalformed},
		{"trailing map", "a2 01 6461636d65 02 05 a0", nil, ErrMalformed},
		{"truncated", "a2 01 6461636d65 02", nil, ErrMalformed},
		{"empty", "", nil, ErrMalformed},
		{"invalid utf-8", "a2 01 62fffe 02 05", nil, ErrMalformed},
		{"negative for uint", "a2 01 6461636d65 02 20", nil, ErrMalformed},
		{"float for uint", "a2 01 6461636d65 02 f94500", nil, ErrMalformed},
		{"array not map", "82 6461636d65 05", nil, ErrMalformed},
		{"oversized", "", big, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.raw
			if in == nil {
				in = unhex(t, tt.in)
			}
			var v TenantVersion
			err := Unmarshal(in, &v)
			if tt.want == nil {
				if err != nil || v != (TenantVersion{Tenant: "acme", Version: 5}) {
					t.Fatalf("got %+v, %v", v, err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if tt.want == ErrMalformed && errors.Is(err, ErrNonCanonical) {
				t.Fatalf("error %v should not be ErrNonCanonical", err)
			}
		})
	}
}

func TestUnmarshalByteArrays(t *testing.T) {
	// A fixed-size field ([16]byte Nonce of an Approval) given a byte
	// string of the wrong length must not be silently padded or cut.
	var a Approval
	b, err := Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	// Nonce (key 10) is the last field: 0a 50 <16 zero bytes>.
	i := bytes.Index(b, append([]byte{0x0a, 0x50}, make([]byte, 16)...))
	if i < 0 {
		t.Fatalf("nonce not found in %x", b)
	}
	short := append(append(bytes.Clone(b[:i]), 0x0a, 0x4f), make([]byte, 15)...)
	long := append(append(bytes.Clone(b[:i]), 0x0a, 0x51), make([]byte, 17)...)
	for name, in := range map[string][]byte{"short": short, "long": long} {
		t.Run(name, func(t *testing.T) {
			var got Approval
			wantErr(t, Unmarshal(in, &got), ErrMalformed)
		})
	}
}

func TestMarshalTooLarge(t *testing.T) {
	_, err := Marshal(&ErrorMsg{Text: strings.Repeat("x", MaxMessageSize)})
	wantErr(t, err, ErrFrameTooLarge)
}

func TestMarshalDeterministic(t *testing.T) {
	// Policy lists keep their order; encoding twice gives the same bytes
	// and fields appear in key order 1..17.
	p := validPolicy()
	a, _ := Marshal(&p)
	b, _ := Marshal(&p)
	if !bytes.Equal(a, b) {
		t.Fatal("two encodings differ")
	}
	if a[0] != 0xb1 || a[1] != 0x01 { // map(17), key 1
		t.Fatalf("policy encoding starts %x", a[:2])
	}
}

// TestAppendMarshal (review finding F9): a message with a secret is
// encoded straight into the caller's array, byte for byte what Marshal
// gives, and an encoding that does not fit fails and leaves nothing in
// the spare capacity.
func TestAppendMarshal(t *testing.T) {
	type secretMsg struct {
		Name   string `cbor:"1,keyasint"`
		Secret []byte `cbor:"2,keyasint"`
	}
	v := secretMsg{Name: "msp-nik", Secret: bytes.Repeat([]byte("S3cr3t!"), 20)}
	want, err := Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 1, 1024)
	dst[0] = 0x7f
	out, err := AppendMarshal(dst, &v)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &dst[0] || cap(out) != cap(dst) {
		t.Fatal("AppendMarshal did not encode into the caller's array")
	}
	if out[0] != 0x7f || !bytes.Equal(out[1:], want) {
		t.Fatalf("AppendMarshal = %x, want 7f%x", out, want)
	}

	small := make([]byte, 0, 40)
	if _, err := AppendMarshal(small, &v); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("too small a buffer: %v, want ErrFrameTooLarge", err)
	}
	if bytes.Contains(small[:cap(small)], []byte("S3cr3t")) {
		t.Fatal("a failed AppendMarshal left the secret in the caller's buffer")
	}
}
