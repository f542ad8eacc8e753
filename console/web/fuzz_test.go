package web

import (
	"net/url"
	"reflect"
	"testing"
)

// roundTrip checks a form decoder on a raw query: what decodes
// re-encodes to a form that decodes to the same value.
func roundTrip[T any](t *testing.T, raw string, decode func(url.Values) (*T, error), encode func(*T) url.Values) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return
	}
	f, err := decode(v)
	if err != nil {
		if _, ok := err.(*formError); !ok {
			t.Fatalf("decoder error %T %v is not a formError", err, err)
		}
		return
	}
	g, err := decode(encode(f))
	if err != nil {
		t.Fatalf("re-encoded form %q does not decode: %v", encode(f).Encode(), err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("round trip changed the form: %+v -> %+v", f, g)
	}
}

func FuzzDecodeTenantForm(f *testing.F) {
	for _, s := range []string{"name=acme&mode=named&max_session=8h&inactivity_days=30",
		"name=globex&mode=shared&push_login=on&otp_online=on&selective_login=on&domain_accounts=on&max_session=90m&inactivity_days=7",
		"mode=named&max_session=8h&inactivity_days=30&push_login=off", "mode=named&mode=shared",
		"name=acme&mode=named&max_session=8h&inactivity_days=30&require_reason=on&ticket_pattern=INC-%5B0-9%5D%2B&warn_before=10m&end_user_notice=on&push_max_pending=5&push_per_hour=20&push_block=30m",
		"mode=named&max_session=8h&inactivity_days=30&breakglass_off=on",
		"mode=named&max_session=1h&inactivity_days=1&ticket_pattern=&warn_before=0s&push_max_pending=&push_block=",
		"mode=named&max_session=1h&inactivity_days=1&warn_before=-1s&push_per_hour=x&ticket_pattern=a&ticket_pattern=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		roundTrip(t, raw, decodeTenantForm, (*tenantForm).encode)
	})
}

func FuzzDecodeTechForm(f *testing.F) {
	for _, s := range []string{"username=nik&email=nik%40acme.example&role_acme=admin&role_globex=read-only",
		"username=sam&email=sam%40acme.example&global_admin=on", "username=x&email=y&role_a=owner", "username=x&email=y&role_=none"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		roundTrip(t, raw, decodeTechForm, (*techForm).encode)
	})
}

func FuzzDecodeShareForm(f *testing.F) {
	for _, s := range []string{"device=00112233445566778899aabbccddeeff&share=all-admins&share=nik",
		"device=00112233445566778899aabbccddeeff", "device=00112233445566778899aabbccddeeff&share=nik&share=nik", "device=XYZ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		roundTrip(t, raw, decodeShareForm, (*shareForm).encode)
	})
}

func FuzzDecodeTokenForm(f *testing.F) {
	for _, s := range []string{"tenant=acme&expires=24h0m0s&uses=1", "tenant=acme&expires=1h&uses=1000", "tenant=&expires=-1h&uses=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		roundTrip(t, raw, decodeTokenForm, (*tokenForm).encode)
	})
}

func FuzzDecodeAuditForm(f *testing.F) {
	for _, s := range []string{"tenant=acme&tech=nik&device=W11&since=24h", "since=2026-12-01T08:00", "since=2026-12-01", "since=yesterday"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		roundTrip(t, raw, decodeAuditForm, (*auditForm).encode)
	})
}
