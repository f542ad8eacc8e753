package accounts

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name   string
		maxLen int
		want   bool
	}{
		{"msp-jdoe", MaxNameLinux, true},
		{"msp_j-doe2", MaxNameWindows, true},
		{"a", 1, true},
		{"", MaxNameLinux, false},
		{"Msp-jdoe", MaxNameLinux, false},
		{"-msp", MaxNameLinux, false},
		{"_msp", MaxNameLinux, false},
		{"1msp", MaxNameLinux, false},
		{"msp.jdoe", MaxNameLinux, false},
		{"msp jdoe", MaxNameLinux, false},
		{"msp:jdoe", MaxNameLinux, false},
		{"msp-jdoé", MaxNameLinux, false},
		{"msp-abcdefghijklmnop", MaxNameWindows, true},
		{"msp-abcdefghijklmnopq", MaxNameWindows, false},
		{strings.Repeat("a", 32), MaxNameLinux, true},
		{strings.Repeat("a", 33), MaxNameLinux, false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name, tt.maxLen); got != tt.want {
			t.Errorf("ValidName(%q, %d) = %v, want %v", tt.name, tt.maxLen, got, tt.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	tests := []struct {
		prefix, user string
		maxLen       int
		want         string
	}{
		{"msp-", "jdoe", MaxNameLinux, "msp-jdoe"},
		{"msp-", "JDoe", MaxNameLinux, "msp-jdoe"},
		{"msp-", "John.Doe@Example.com", MaxNameWindows, "msp-john-doe"},
		{"msp-", "a@b@c.example", MaxNameLinux, "msp-a-b"},
		{"msp-", "  jean--luc  picard ", MaxNameLinux, "msp-jean-luc-picard"},
		{"msp-", "José Müller", MaxNameLinux, "msp-jos-m-ller"},
		{"msp-", "__x__", MaxNameLinux, "msp-x"},
		{"msp-", "", MaxNameLinux, "msp-user"},
		{"msp-", "@example.com", MaxNameLinux, "msp-user"},
		{"msp-", "...", MaxNameLinux, "msp-user"},
		{"msp-", "; rm -rf /", MaxNameLinux, "msp-rm-rf"},
		{"msp-", "-o", MaxNameLinux, "msp-o"},
		{"MSP ", "x", MaxNameLinux, "msp-x"},
		{"", "42", MaxNameLinux, "u42"},
		{"", "-jdoe", MaxNameLinux, "jdoe"},
		{"", "", MaxNameLinux, "user"},
		{"msp-", "averyveryverylongusername", MaxNameWindows, "msp-averyveryverylon"},
		{"msp-", "averyveryverylo-ngusername", MaxNameWindows, "msp-averyveryverylo"},
		{"msp-", "averyveryverylongusername", MaxNameLinux, "msp-averyveryverylongusername"},
	}
	for _, tt := range tests {
		got := SanitizeName(tt.prefix, tt.user, tt.maxLen)
		if got != tt.want {
			t.Errorf("SanitizeName(%q, %q, %d) = %q, want %q", tt.prefix, tt.user, tt.maxLen, got, tt.want)
		}
		if !ValidName(got, tt.maxLen) {
			t.Errorf("SanitizeName(%q, %q, %d) = %q is not a valid name", tt.prefix, tt.user, tt.maxLen, got)
		}
	}
}

func TestWithSuffix(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		maxLen int
		want   string
	}{
		{"msp-jdoe", 2, MaxNameLinux, "msp-jdoe-2"},
		{"msp-jdoe", 0, MaxNameLinux, "msp-jdoe"},
		{"msp-averylongname", 2, MaxNameWindows, "msp-averylongname-2"},
		{"msp-averylongusername", 12, MaxNameWindows, "msp-averylonguser-12"},
		{"msp-abcdefghijklmnop", 2, MaxNameWindows, "msp-abcdefghijklmn-2"},
		{"msp-abcdefghijklm-op", 3, MaxNameWindows, "msp-abcdefghijklm-3"},
		{"msp-abcdefghijkl-nop", 3, MaxNameWindows, "msp-abcdefghijkl-n-3"},
		{"msp-abcdefghijklmnop", 100, MaxNameWindows, "msp-abcdefghijkl-100"},
	}
	for _, tt := range tests {
		got := WithSuffix(tt.name, tt.n, tt.maxLen)
		if got != tt.want {
			t.Errorf("WithSuffix(%q, %d, %d) = %q, want %q", tt.name, tt.n, tt.maxLen, got, tt.want)
		}
		if !ValidName(got, tt.maxLen) {
			t.Errorf("WithSuffix(%q, %d, %d) = %q is not valid", tt.name, tt.n, tt.maxLen, got)
		}
	}
}

// TestCollisionResolution shows the caller's loop: usernames that sanitise
// to the same name get distinct, valid names.
func TestCollisionResolution(t *testing.T) {
	taken := map[string]bool{}
	for _, u := range []string{"j.doe", "J-Doe", "j_doe@x.example", "j doe", "J.DOE@y.example"} {
		base := SanitizeName(DefaultPrefix, u, MaxNameWindows)
		name := base
		for n := 2; taken[name]; n++ {
			name = WithSuffix(base, n, MaxNameWindows)
		}
		if !ValidName(name, MaxNameWindows) {
			t.Fatalf("%q is not valid", name)
		}
		taken[name] = true
	}
	want := []string{"msp-j-doe", "msp-j-doe-2", "msp-j_doe", "msp-j-doe-3", "msp-j-doe-4"}
	for _, w := range want {
		if !taken[w] {
			t.Errorf("missing %q in %v", w, taken)
		}
	}
	if len(taken) != len(want) {
		t.Errorf("got %d names, want %d", len(taken), len(want))
	}
}
