package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The floor is the smallest forwarder of the same flow: TLS 1.3 over TCP,
// a 4-byte peer id instead of authentication, frames written straight to
// the recipient's connection under a mutex, and a per-frame ack. Frames:
//
//	length u32 (of what follows) || type u8 || id u32 || payload
//
// type 1 send (id = recipient), 2 deliver (id = sender), 3 ack.

const (
	floorSend    = 1
	floorDeliver = 2
	floorAck     = 3
)

type floorConn struct {
	c  *tls.Conn
	mu sync.Mutex
	bw *bufio.Writer
}

func (f *floorConn) write(typ byte, id uint32, payload []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var h [9]byte
	binary.BigEndian.PutUint32(h[:], uint32(5+len(payload)))
	h[4] = typ
	binary.BigEndian.PutUint32(h[5:], id)
	f.bw.Write(h[:])
	f.bw.Write(payload)
	return f.bw.Flush()
}

func readFloor(r io.Reader, buf []byte) (byte, uint32, []byte, error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < 5 || n > 1<<17 {
		return 0, 0, nil, errors.New("floor: bad length")
	}
	if cap(buf) < int(n-5) {
		buf = make([]byte, n-5)
	}
	buf = buf[:n-5]
	_, err := io.ReadFull(r, buf)
	return h[4], binary.BigEndian.Uint32(h[5:]), buf, err
}

// serveFloor runs the floor forwarder until its listener fails; it prints
// "addr=... metrics=..." and serves a frames counter.
func serveFloor(ctx context.Context, addr string, out io.Writer) error {
	_, priv, _ := ed25519.GenerateKey(nil)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}})
	if err != nil {
		return err
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var forwarded atomic.Int64
	go http.Serve(mln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "frames_forwarded_total %d\ngo_gc_cycles_total %d\n", forwarded.Load(), ms.NumGC)
	}))
	fmt.Fprintf(out, "addr=%s metrics=%s\n", ln.Addr(), mln.Addr())
	var mu sync.RWMutex
	peers := map[uint32]*floorConn{}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			tc := c.(*tls.Conn)
			fc := &floorConn{c: tc, bw: bufio.NewWriter(tc)}
			br := bufio.NewReader(tc)
			var id [4]byte
			if _, err := io.ReadFull(br, id[:]); err != nil {
				return
			}
			me := binary.BigEndian.Uint32(id[:])
			mu.Lock()
			peers[me] = fc
			mu.Unlock()
			buf := make([]byte, 2048)
			for {
				typ, to, p, err := readFloor(br, buf)
				if err != nil || typ != floorSend {
					return
				}
				mu.RLock()
				dst := peers[to]
				mu.RUnlock()
				if dst != nil && dst.write(floorDeliver, me, p) == nil {
					forwarded.Add(1)
				}
				fc.write(floorAck, 0, nil)
			}
		}()
	}
}

type floorEndpoint struct {
	fc   *floorConn
	acks chan struct{}
	msgs chan []byte
}

func dialFloor(addr string, id uint32) (*floorEndpoint, error) {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		return nil, err
	}
	e := &floorEndpoint{fc: &floorConn{c: c, bw: bufio.NewWriter(c)}, acks: make(chan struct{}, 1), msgs: make(chan []byte, 64)}
	var h [4]byte
	binary.BigEndian.PutUint32(h[:], id)
	if _, err := c.Write(h[:]); err != nil {
		return nil, err
	}
	go func() {
		br := bufio.NewReader(c)
		for {
			typ, _, p, err := readFloor(br, nil)
			if err != nil {
				close(e.msgs)
				return
			}
			if typ == floorAck {
				e.acks <- struct{}{}
			} else {
				e.msgs <- p
			}
		}
	}()
	return e, nil
}

func (e *floorEndpoint) send(ctx context.Context, to int, p []byte) error {
	if err := e.fc.write(floorSend, uint32(to), p); err != nil {
		return err
	}
	select {
	case <-e.acks:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *floorEndpoint) recv(ctx context.Context) ([]byte, error) {
	select {
	case m, ok := <-e.msgs:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// benchFloor measures the floor forwarder with the same flow.
func benchFloor(ctx context.Context, o options, rel *result, log *slog.Logger) (*result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p, err := startProcEnv(ctx, nil, o.relayCPUs, self, "-floor", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	addr, metrics := p.field("addr"), p.field("metrics")
	eps := make([]endpoint, 2*o.pairs)
	for i := range eps {
		e, err := dialFloor(addr, uint32(i))
		if err != nil {
			return nil, fmt.Errorf("dial floor: %w", err)
		}
		defer e.fc.c.Close()
		eps[i] = e
	}
	r := &result{name: "floor"}
	fo := o
	fo.halfRate = rel.latRate // same offered rate as the relay's latency phase
	drive(ctx, fo, eps, p, r,
		func() int64 { return scrape(metrics, "frames_forwarded_total") },
		func() int64 { return scrape(metrics, "go_gc_cycles_total") }, log)
	return r, nil
}
