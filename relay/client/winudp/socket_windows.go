package winudp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/windows"
)

// fdSet is winsock's fd_set (winsock2.h: u_int fd_count; SOCKET
// fd_array[FD_SETSIZE], FD_SETSIZE 64).
type fdSet struct {
	count uint32
	array [64]windows.Handle
}

func (s *fdSet) has(h windows.Handle) bool {
	for _, x := range s.array[:min(int(s.count), len(s.array))] {
		if x == h {
			return true
		}
	}
	return false
}

// timeval is winsock's struct timeval (two 32-bit longs).
type timeval struct {
	sec, usec int32
}

// Fallback reports whether err, from net.ListenUDP, is Wine's refusal of
// SIO_UDP_CONNRESET (WSAEOPNOTSUPP), for which Listen is the way out.
func Fallback(err error) bool {
	return errors.Is(err, windows.WSAEOPNOTSUPP)
}

// Listen opens a UDP socket on an unspecified address and a free port:
// dual-stack IPv6 if the system allows it, otherwise IPv4. It logs a
// Warn line that the fallback is in use.
func Listen(log *slog.Logger, cause error) (*Conn, error) {
	s, err := openSocket(netip.Addr{})
	if err != nil {
		return nil, fmt.Errorf("winudp: listen: %w", err)
	}
	log.Warn("relay socket opened with plain winsock calls (net.ListenUDP failed, as under Wine 8)",
		"local", s.local.String(), "cause", cause)
	return newConn(s), nil
}

type winSocket struct {
	s, w  windows.Handle   // the socket and the waker
	v6    bool             // s is a dual-stack IPv6 socket
	waddr windows.Sockaddr // the waker's own address
	local netip.AddrPort
}

// loopback is 127.0.0.1, the waker's address (and the tests' socket's).
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// openSocket opens the socket bound to bind and port 0: dual-stack IPv6
// (IPv4 if that fails) for the zero Addr, otherwise IPv4 on bind.
func openSocket(bind netip.Addr) (*winSocket, error) {
	ws := &winSocket{s: windows.InvalidHandle, w: windows.InvalidHandle}
	ok := false
	defer func() {
		if !ok {
			ws.close()
		}
	}()
	// Dual-stack first, as net.ListenUDP("udp", nil) does.
	if !bind.IsValid() {
		ws.trySocket6()
	}
	if !ws.v6 {
		s, err := windows.Socket(windows.AF_INET, windows.SOCK_DGRAM, windows.IPPROTO_UDP)
		if err != nil {
			return nil, fmt.Errorf("socket: %w", err)
		}
		ws.s = s
		sa := &windows.SockaddrInet4{}
		if bind.Is4() {
			sa.Addr = bind.As4()
		}
		if err := windows.Bind(s, sa); err != nil {
			return nil, fmt.Errorf("bind: %w", err)
		}
	}
	sa, err := windows.Getsockname(ws.s)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	ws.local = addrPort(sa)

	w, err := windows.Socket(windows.AF_INET, windows.SOCK_DGRAM, windows.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("waker socket: %w", err)
	}
	ws.w = w
	if err := windows.Bind(w, &windows.SockaddrInet4{Addr: loopback.As4()}); err != nil {
		return nil, fmt.Errorf("waker bind: %w", err)
	}
	if ws.waddr, err = windows.Getsockname(w); err != nil {
		return nil, fmt.Errorf("waker getsockname: %w", err)
	}
	ok = true
	return ws, nil
}

// trySocket6 opens a dual-stack IPv6 socket on [::]:0, as
// net.ListenUDP("udp", nil) does, if the system allows it.
func (ws *winSocket) trySocket6() {
	s, err := windows.Socket(windows.AF_INET6, windows.SOCK_DGRAM, windows.IPPROTO_UDP)
	if err != nil {
		return
	}
	if windows.SetsockoptInt(s, windows.IPPROTO_IPV6, windows.IPV6_V6ONLY, 0) != nil ||
		windows.Bind(s, &windows.SockaddrInet6{}) != nil {
		windows.Closesocket(s)
		return
	}
	ws.s, ws.v6 = s, true
}

func addrPort(sa windows.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *windows.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *windows.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func (ws *winSocket) wait(timeout time.Duration) (readable, woken bool, err error) {
	set := fdSet{count: 2}
	set.array[0], set.array[1] = ws.s, ws.w
	var tv *timeval
	if timeout >= 0 {
		us := (timeout + time.Microsecond - 1) / time.Microsecond
		tv = &timeval{sec: int32(us / 1e6), usec: int32(us % 1e6)}
	}
	if _, err := wsaSelect(0, &set, nil, nil, tv); err != nil {
		return false, false, fmt.Errorf("select: %w", err)
	}
	return set.has(ws.s), set.has(ws.w), nil
}

func (ws *winSocket) recvFrom(b []byte) (int, netip.AddrPort, error) {
	n, sa, err := windows.Recvfrom(ws.s, b, 0)
	switch {
	case errors.Is(err, windows.WSAECONNRESET), errors.Is(err, windows.WSAENETRESET):
		return 0, netip.AddrPort{}, errReset
	case err != nil:
		return 0, netip.AddrPort{}, fmt.Errorf("recvfrom: %w", err)
	}
	return n, addrPort(sa), nil
}

func (ws *winSocket) sendTo(b []byte, to netip.AddrPort) error {
	var sa windows.Sockaddr
	a := to.Addr().Unmap()
	switch {
	case ws.v6:
		sa = &windows.SockaddrInet6{Addr: a.As16(), Port: int(to.Port())}
	case a.Is4():
		sa = &windows.SockaddrInet4{Addr: a.As4(), Port: int(to.Port())}
	default:
		return fmt.Errorf("sendto %s: %w", to, net.InvalidAddrError("IPv6 address on an IPv4 socket"))
	}
	if err := windows.Sendto(ws.s, b, 0, sa); err != nil {
		return fmt.Errorf("sendto: %w", err)
	}
	return nil
}

func (ws *winSocket) wake() error {
	if err := windows.Sendto(ws.w, []byte{0}, 0, ws.waddr); err != nil {
		return fmt.Errorf("wake: %w", err)
	}
	return nil
}

func (ws *winSocket) drainWake() error {
	var b [16]byte
	if _, _, err := windows.Recvfrom(ws.w, b[:], 0); err != nil {
		return fmt.Errorf("drain waker: %w", err)
	}
	return nil
}

func (ws *winSocket) setBuffer(read bool, n int) error {
	opt := windows.SO_SNDBUF
	if read {
		opt = windows.SO_RCVBUF
	}
	return windows.SetsockoptInt(ws.s, windows.SOL_SOCKET, opt, n)
}

func (ws *winSocket) localAddr() netip.AddrPort { return ws.local }

func (ws *winSocket) close() error {
	var errs []error
	for _, h := range []windows.Handle{ws.s, ws.w} {
		if h != windows.InvalidHandle {
			if err := windows.Closesocket(h); err != nil {
				errs = append(errs, fmt.Errorf("closesocket: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
