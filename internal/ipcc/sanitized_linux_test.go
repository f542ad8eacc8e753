//go:build linux && cgo

package ipcc_test

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/jitkey/jitkey/protocol"
	"github.com/jitkey/jitkey/qrcode"
)

var fuzzSeconds = flag.Int("jkfuzz", 2, "seconds TestDecoderSanitized runs the sanitized C fuzz loop")

// TestDecoderSanitized builds the C decoder with AddressSanitizer and
// UndefinedBehaviorSanitizer into a fuzz loop (cfuzz/jkfuzz.c) and runs
// it on mutations of real agent messages: any read outside a message,
// or undefined behaviour, aborts it. (FuzzDecode compares verdicts with
// the Go codec; this one checks memory safety.)
func TestDecoderSanitized(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	bin := filepath.Join(t.TempDir(), "jkfuzz")
	cmd := exec.CommandContext(t.Context(), "gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
		"-I", dir, "-o", bin, filepath.Join(dir, "cfuzz", "jkfuzz.c"), filepath.Join(dir, "jkmsg.c"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build jkfuzz: %v\n%s", err, out)
	}
	term, err := qrcode.Terminal("JK:W50380VW2+M9N$U8%2BC7EKAA68")
	if err != nil {
		t.Fatal(err)
	}
	var seeds []byte
	for _, m := range []struct {
		typ protocol.IPCMsgType
		v   any
	}{
		{protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true}},
		{protocol.IPCMsgStatus, &protocol.IPCStatus{Online: true, SecondApproval: true}},
		{protocol.IPCMsgQR, &protocol.IPCQR{Text: "JK:W50380VW2+M9N$U8%2BC7EKAA68", PNG: []byte("\x89PNG\r\n"), Terminal: term, Expires: 1_800_000_000}},
		{protocol.IPCMsgCredential, &protocol.IPCCredential{Username: `CORP\msp-nik`, Password: []byte("0123456789abcdef0123456789abcdef"), Session: protocol.SessionID{1}, Deadline: -1}},
		{protocol.IPCMsgDenied, &protocol.IPCDenied{Code: protocol.CodeDenied, Reason: "denied by the technician ✓"}},
		{protocol.IPCMsgEnded, &protocol.IPCEnded{OK: true}},
		{protocol.IPCMsgNumber, &protocol.IPCNumber{Number: 42}},
	} {
		body := msg(t, m.typ, m.v)
		seeds = binary.BigEndian.AppendUint32(seeds, uint32(len(body)))
		seeds = append(seeds, body...)
	}
	seedFile := filepath.Join(t.TempDir(), "seeds")
	if err := os.WriteFile(seedFile, seeds, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, seedFile, strconv.Itoa(*fuzzSeconds), fmt.Sprint(os.Getpid())).CombinedOutput()
	if err != nil {
		t.Fatalf("jkfuzz: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[0] != "execs" || f[2] != "accepted" || f[1] == "0" {
		t.Fatalf("jkfuzz: %s", out)
	}
	t.Logf("sanitized decoder: %s", strings.TrimSpace(string(out)))
}
