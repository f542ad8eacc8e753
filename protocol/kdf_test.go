package protocol

import (
	"bytes"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestLabelsComplete parses kdf.go and checks that every Label constant
// appears in Labels exactly once, and that the table holds nothing else.
func TestLabelsComplete(t *testing.T) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "kdf.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]string{} // value -> constant name
	for _, d := range file.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Label" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				if prev, dup := declared[v]; dup {
					t.Errorf("%s and %s share the value %q", prev, name.Name, v)
				}
				declared[v] = name.Name
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("no Label constants found")
	}
	inTable := map[Label]bool{}
	for _, l := range Labels {
		if inTable[l.Label] {
			t.Errorf("label %q twice in Labels", l.Label)
		}
		inTable[l.Label] = true
		if _, ok := declared[string(l.Label)]; !ok {
			t.Errorf("Labels has %q, which is not a declared constant", l.Label)
		}
		if !strings.HasPrefix(string(l.Label), "jitkey/v1/") || strings.IndexByte(string(l.Label), 0) >= 0 {
			t.Errorf("label %q: want prefix jitkey/v1/ and no NUL", l.Label)
		}
		if l.Length < 4 || l.Length > 64 || l.Purpose == "" {
			t.Errorf("label %q: length %d, purpose %q", l.Label, l.Length, l.Purpose)
		}
	}
	for v, name := range declared {
		if !inTable[Label(v)] {
			t.Errorf("constant %s (%q) is missing from Labels", name, v)
		}
	}
}

func TestDerive(t *testing.T) {
	secret := []byte("jitkey test secret")
	// Known answer, computed independently (Python hmac):
	// HKDF-SHA256(IKM=secret, salt="", info="jitkey/v1/qr/psk\x00context", L=32).
	want, _ := hex.DecodeString("4de680bea1dba935b685f180a0ae89fe3d8f8a98119dcce31a9d340237afed54")
	got, err := Derive(secret, LabelQRPSK, []byte("context"), 32)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("known answer: %x, %v", got, err)
	}

	seen := map[string]Label{}
	for _, l := range Labels {
		t.Run(string(l.Label), func(t *testing.T) {
			out, err := Derive(secret, l.Label, nil, l.Length)
			if err != nil || len(out) != l.Length {
				t.Fatalf("len %d, %v", len(out), err)
			}
			full, _ := Derive(secret, l.Label, nil, 64)
			if prev, ok := seen[string(full)]; ok {
				t.Fatalf("same output as %s", prev)
			}
			seen[string(full)] = l.Label
			ctx, _ := Derive(secret, l.Label, []byte{1}, l.Length)
			if bytes.Equal(ctx, out) {
				t.Fatal("context does not change the output")
			}
		})
	}
	if _, err := Derive(secret, LabelQRPSK, nil, 255*32+1); err == nil {
		t.Error("Derive accepted a length beyond HKDF's limit")
	}
	id, err := DeriveSessionID(secret, LabelQRSession)
	full, _ := Derive(secret, LabelQRSession, nil, 16)
	if err != nil || !bytes.Equal(id[:], full) {
		t.Fatalf("DeriveSessionID: %x %v", id, err)
	}
}
