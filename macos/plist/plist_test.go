package plist_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/macos/plist"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecordedOutputs decodes the recorded command outputs and checks
// values the backends rely on.
func TestRecordedOutputs(t *testing.T) {
	v, err := plist.Decode(readTestdata(t, "dscl-read-user.plist"))
	if err != nil {
		t.Fatal(err)
	}
	aa, ok := v.Get("dsAttrTypeStandard:AuthenticationAuthority")
	got, sok := aa.Strings()
	if !ok || !sok || !slices.Contains(got, ";DisabledUser;") || !strings.Contains(got[0], "<SALTED-SHA512-PBKDF2") {
		t.Fatalf("AuthenticationAuthority = %q", got)
	}
	pd, _ := v.Get("dsAttrTypeNative:accountPolicyData")
	if s, _ := pd.Strings(); len(s) != 1 || !strings.HasPrefix(s[0], "<?xml") {
		t.Fatalf("accountPolicyData = %q", s)
	}
	c, err := plist.Decode(readTestdata(t, "authdb-system.login.console.plist"))
	if err != nil {
		t.Fatal(err)
	}
	mech, _ := c.Get("mechanisms")
	ms, _ := mech.Strings()
	if len(ms) != 18 || ms[2] != "loginwindow:login" {
		t.Fatalf("mechanisms = %q", ms)
	}
	if tries, _ := c.Get("tries"); tries.Kind != plist.Integer || tries.Int != 10000 {
		t.Fatalf("tries = %+v", tries)
	}
	if sh, _ := c.Get("shared"); sh.Kind != plist.Bool || !sh.Bool {
		t.Fatalf("shared = %+v", sh)
	}
	for _, f := range []string{"authdb-system.preferences.plist", "authdb-system.privilege.admin.plist", "dscl-read-admin.plist", "dscl-read-user-plain.plist"} {
		if _, err := plist.Decode(readTestdata(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestRoundTrip: what Decode reads, Encode writes back so that it
// decodes to the same tree; the authorization right comes back byte for
// byte (Encode writes Apple's layout).
func TestRoundTrip(t *testing.T) {
	for _, f := range []string{"authdb-system.login.console.plist", "dscl-read-admin.plist"} {
		in := readTestdata(t, f)
		v, err := plist.Decode(in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := plist.Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if f == "dscl-read-admin.plist" && !bytes.Equal(in, out) {
			t.Errorf("%s: re-encoded differs:\n%s", f, out)
		}
		w, err := plist.Decode(out)
		if err != nil || !reflect.DeepEqual(v, w) {
			t.Fatalf("%s: round trip: %v\n%+v\n%+v", f, err, v, w)
		}
	}
}

func TestRejects(t *testing.T) {
	wrap := func(s string) string { return `<?xml version="1.0"?><plist version="1.0">` + s + `</plist>` }
	bad := map[string]string{
		"not xml":          "hello",
		"other root":       `<dict></dict>`,
		"empty plist":      wrap(""),
		"two roots":        wrap("<string>a</string><string>b</string>"),
		"unknown element":  wrap("<set/>"),
		"key outside dict": wrap("<array><key>a</key></array>"),
		"missing value":    wrap("<dict><key>a</key></dict>"),
		"value where key":  wrap("<dict><string>a</string></dict>"),
		"duplicate key":    wrap("<dict><key>a</key><true/><key>a</key><false/></dict>"),
		"bad integer":      wrap("<integer>1x</integer>"),
		"bad real":         wrap("<real>NaN</real>"),
		"bad data":         wrap("<data>!!</data>"),
		"bad date":         wrap("<date>yesterday</date>"),
		"text in array":    wrap("<array>x</array>"),
		"nested in string": wrap("<string><true/></string>"),
		"attribute":        wrap(`<string a="1">x</string>`),
		"trailing content": wrap("<true/>") + "<x/>",
		"unclosed":         `<plist><dict>`,
		"too deep":         wrap(strings.Repeat("<array>", plist.MaxDepth+1) + strings.Repeat("</array>", plist.MaxDepth+1)),
		"entity":           `<!DOCTYPE plist [<!ENTITY x "y">]><plist><string>&x;</string></plist>`,
	}
	for name, doc := range bad {
		if _, err := plist.Decode([]byte(doc)); !errors.Is(err, plist.ErrSyntax) {
			t.Errorf("%s: err = %v, want ErrSyntax", name, err)
		}
	}
	if _, err := plist.Decode(make([]byte, plist.MaxSize+1)); !errors.Is(err, plist.ErrSyntax) {
		t.Errorf("oversized: %v", err)
	}
}

func TestEncodeRefusesControlCharacters(t *testing.T) {
	if _, err := plist.Encode(plist.StringValue("a\x01b")); err == nil {
		t.Fatal("control character encoded")
	}
	if _, err := plist.Encode(plist.StringValue("a\rb")); err == nil {
		t.Fatal("CR encoded (XML parsers turn it into LF)")
	}
}

func TestSetGet(t *testing.T) {
	v := plist.Value{Kind: plist.Dict}
	v.Set("a", plist.StringValue("1"))
	v.Set("b", plist.ArrayValue(plist.StringValue("x")))
	v.Set("a", plist.StringValue("2"))
	if a, _ := v.Get("a"); a.Str != "2" || len(v.Dict) != 2 || v.Dict[0].Key != "a" {
		t.Fatalf("%+v", v)
	}
	if _, ok := v.Get("c"); ok {
		t.Fatal("missing key found")
	}
	if _, ok := plist.StringValue("x").Strings(); ok {
		t.Fatal("Strings of a string")
	}
}

// FuzzDecode: whatever Decode accepts, Encode writes and Decode reads back
// as the same tree.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"dscl-read-user.plist", "dscl-read-user-plain.plist", "dscl-read-admin.plist",
		"authdb-system.login.console.plist", "authdb-system.preferences.plist", "authdb-system.privilege.admin.plist"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`<plist><array><data>AAEC</data><date>2026-12-06T18:00:00Z</date><integer>-5</integer><real>1.5e3</real><dict/><array/></array></plist>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := plist.Decode(doc)
		if err != nil {
			if !errors.Is(err, plist.ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		out, err := plist.Encode(v)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		w, err := plist.Decode(out)
		if err != nil {
			t.Fatalf("re-encoded document does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(v, w) {
			t.Fatalf("round trip changed the value:\n%+v\n%+v", v, w)
		}
	})
}
