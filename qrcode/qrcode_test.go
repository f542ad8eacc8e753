package qrcode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitkey/jitkey/protocol"
)

// A login payload is about 180 base45 characters; use a realistic one.
const sample = "JK:" + "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:" +
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:" +
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:" +
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func TestPNGRoundTrip(t *testing.T) {
	img, err := PNG(sample, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(img)
	if err != nil {
		t.Fatal(err)
	}
	if got != sample {
		t.Fatalf("decoded %q, want %q", got, sample)
	}
}

// TestZbarimgReadsOurPNG checks our PNG with an independent decoder.
func TestZbarimgReadsOurPNG(t *testing.T) {
	img, err := PNG(sample, 4)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "code.png")
	if err := os.WriteFile(f, img, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("zbarimg", "--nodbus", "--raw", "-q", f).Output()
	if err != nil {
		t.Fatalf("zbarimg (installed by make test): %v", err)
	}
	if got := strings.TrimSuffix(string(out), "\n"); got != sample {
		t.Fatalf("zbarimg read %q, want %q", got, sample)
	}
}

// TestDecodeQrencodePNG checks that we read what an independent encoder made.
func TestDecodeQrencodePNG(t *testing.T) {
	f := filepath.Join(t.TempDir(), "code.png")
	if out, err := exec.Command("qrencode", "-o", f, "-s", "4", sample).CombinedOutput(); err != nil {
		t.Fatalf("qrencode (installed by make test): %v %s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got != sample {
		t.Fatalf("Decode(qrencode png) = %q, %v", got, err)
	}
}

func TestTerminalShape(t *testing.T) {
	s, err := Terminal(sample)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	w := len([]rune(lines[0]))
	for i, l := range lines {
		if len([]rune(l)) != w {
			t.Fatalf("line %d has width %d, want %d", i, len([]rune(l)), w)
		}
	}
	if w < 2*len(lines)-2 || w > 2*len(lines)+2 {
		t.Fatalf("not square: %d columns, %d rows of two modules", w, len(lines))
	}
}

func TestDecodeRejects(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range blank.Pix {
		blank.Pix[i] = 0xff
	}
	var buf bytes.Buffer
	png.Encode(&buf, blank)
	if _, err := Decode(buf.Bytes()); !errors.Is(err, ErrNoCode) {
		t.Errorf("blank picture: %v, want ErrNoCode", err)
	}
	if _, err := Decode([]byte("not a picture")); !errors.Is(err, ErrNotPicture) {
		t.Errorf("garbage: %v, want ErrNotPicture", err)
	}
	if _, err := Decode(make([]byte, MaxImageBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized picture: %v, want ErrTooLarge", err)
	}
	// A small PNG whose header declares 65536x65536 pixels (16 GiB as
	// RGBA) is refused from its header, before decoding allocates.
	buf.Reset()
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	bomb := buf.Bytes()
	binary.BigEndian.PutUint32(bomb[16:], 1<<16) // IHDR width
	binary.BigEndian.PutUint32(bomb[20:], 1<<16) // IHDR height
	binary.BigEndian.PutUint32(bomb[29:], crc32.ChecksumIEEE(bomb[12:29]))
	if _, err := Decode(bomb); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "65536x65536 pixels is too large") {
		t.Errorf("picture declaring 65536x65536 pixels: %v, want refused as too large", err)
	}
}

// TestLoginPayloadsAlwaysDecode renders many login payloads (fixed
// randomness) and decodes each PNG. Before the pure-code fallback in Decode,
// about 1 in 100 of these failed with ErrNoCode.
func TestLoginPayloadsAlwaysDecode(t *testing.T) {
	rnd := mrand.NewChaCha8([32]byte{'j', 'i', 't', 'k', 'e', 'y'})
	for i := range 500 {
		q := protocol.QRPayload{Kind: protocol.QRLogin, Action: protocol.ActionLogon,
			Time: time.Unix(1_790_000_000+int64(i), 0), Relay: "127.0.0.1:40123"}
		rnd.Read(q.DeviceID[:])
		rnd.Read(q.Static[:])
		rnd.Read(q.Mailbox[:])
		rnd.Read(q.Secret[:])
		text, err := q.Encode()
		if err != nil {
			t.Fatal(err)
		}
		img, err := PNG(text, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Decode(img); err != nil || got != text {
			t.Fatalf("payload %d: Decode = %q, %v", i, got, err)
		}
	}
}

// TestReadFile: a file larger than MaxImageBytes is refused from its size
// (here a sparse file of 1 TiB, which reading would take minutes and
// memory to refuse), and what is not a regular file is not read at all.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge.png")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		f.Close()
		t.Skipf("no sparse file: %v", err)
	}
	f.Close()
	if _, err := ReadFile(huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1 TiB file: %v, want ErrTooLarge", err)
	}
	if _, err := ReadFile(dir); !errors.Is(err, ErrNotPicture) {
		t.Errorf("directory: %v, want ErrNotPicture", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.png")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	small := filepath.Join(dir, "small.png")
	pic, err := PNG("JK:TEST", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small, pic, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(small); err != nil || !bytes.Equal(b, pic) {
		t.Errorf("small file: %d bytes, %v", len(b), err)
	}
}
