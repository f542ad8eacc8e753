package vault

import (
	"bytes"
	"testing"
)

func TestFromKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	a, err := FromKey(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	key[0] = 8 // FromKey copied it
	b, _ := FromKey(bytes.Repeat([]byte{7}, 32), nil)
	sealed, err := a.Seal([]byte("secret"), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.Open(sealed, []byte("ctx")); err != nil || string(pt) != "secret" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := FromKey(make([]byte, 31), nil); err == nil {
		t.Fatal("short key accepted")
	}
}
