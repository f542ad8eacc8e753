package adattr

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestFileTime(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  time.Time
		never bool
		bad   bool
	}{
		{in: "0", never: true},
		{in: "9223372036854775807", never: true},
		{in: "116444736000000000", want: time.Unix(0, 0).UTC()},
		{in: "134097348000000000", want: time.Date(2025, 12, 9, 6, 20, 0, 0, time.UTC)},
		{in: "116444736000000001", want: time.Unix(0, 100).UTC()},
		{in: "", bad: true},
		{in: "-1", bad: true},
		{in: "01", bad: true},
		{in: "9223372036854775808", bad: true},
		{in: "12a", bad: true},
		{in: "+5", bad: true},
		{in: "7000000000000000000", bad: true}, // after the year 9999
	} {
		got, never, err := ParseFileTime(c.in)
		if c.bad {
			if !errors.Is(err, ErrAttr) {
				t.Errorf("%q: err %v, want ErrAttr", c.in, err)
			}
			continue
		}
		if err != nil || never != c.never || !got.Equal(c.want) {
			t.Errorf("%q: %v %v %v, want %v %v", c.in, got, never, err, c.want, c.never)
		}
		if !c.never && FormatFileTime(got) != c.in {
			t.Errorf("%q: formats as %q", c.in, FormatFileTime(got))
		}
	}
}

func TestUAC(t *testing.T) {
	if v, err := ParseUAC("66050"); err != nil || v != 0x10202 {
		t.Fatalf("66050: %#x %v", v, err)
	}
	if FormatUAC(UACDisabled) != "1049090" || FormatUAC(UACEnabled) != "1049088" {
		t.Fatalf("formats: %s %s", FormatUAC(UACDisabled), FormatUAC(UACEnabled))
	}
	if v, err := ParseUAC("-2147483648"); err != nil || v != 0x80000000 || FormatUAC(v) != "-2147483648" {
		t.Fatalf("high bit: %#x %v", v, err)
	}
	for _, s := range []string{"", "+1", "01", "2147483648", "0x202", " 514"} {
		if _, err := ParseUAC(s); !errors.Is(err, ErrAttr) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestParseEntry(t *testing.T) {
	attrs := map[string][]string{
		"sAMAccountName":     {"msp-nik"},
		"userAccountControl": {"1049090"},
		"whenChanged":        {"20261206175609.0Z"},
		"accountExpires":     {"134097348000000000"},
		"pwdLastSet":         {"134097348000000000"},
		"description":        {"jitkey JIT account msp-nik"},
		"memberOf":           {"CN=Protected Users,CN=Users,DC=x", "CN=Domain Admins,CN=Users,DC=x"},
	}
	e, err := ParseEntry("CN=msp-nik,OU=JIT,DC=x", attrs)
	if err != nil {
		t.Fatal(err)
	}
	if e.Enabled() || !e.InGroup("cn=domain admins,cn=users,dc=x") || e.InGroup("CN=Other") ||
		e.Changed != time.Date(2026, 12, 6, 17, 56, 9, 0, time.UTC) {
		t.Fatalf("%+v", e)
	}
	if !reflect.DeepEqual(e.Attrs(), attrs) {
		t.Fatalf("round trip: %v", e.Attrs())
	}
	for _, drop := range []string{"sAMAccountName", "userAccountControl", "whenChanged"} {
		m := map[string][]string{}
		for k, v := range attrs {
			if k != drop {
				m[k] = v
			}
		}
		if _, err := ParseEntry("CN=a", m); !errors.Is(err, ErrAttr) {
			t.Errorf("without %s: %v", drop, err)
		}
	}
	m := map[string][]string{}
	for k, v := range attrs {
		m[k] = v
	}
	m["accountExpires"] = []string{"1", "2"}
	if _, err := ParseEntry("CN=a", m); !errors.Is(err, ErrAttr) {
		t.Errorf("two accountExpires: %v", err)
	}
	delete(m, "accountExpires")
	if e, err := ParseEntry("CN=a", m); err != nil || !e.NeverExpires {
		t.Errorf("no accountExpires: %v %+v", err, e)
	}
}
