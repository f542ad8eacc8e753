package winudp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// unixSocket is the same socket over the BSD calls of Linux (socket,
// bind, poll, recvfrom, sendto, close), IPv4 loopback, so that the Conn's
// logic (deadlines, waking, Close, errReset) runs here on real UDP.
type unixSocket struct {
	s, w  int
	waddr unix.Sockaddr
	local netip.AddrPort
}

func openTestSocket() (socket, error) { return openUnix() }

func openUnix() (*unixSocket, error) {
	us := &unixSocket{s: -1, w: -1}
	for _, p := range []*int{&us.s, &us.w} {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		if err != nil {
			us.close()
			return nil, err
		}
		*p = fd
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			us.close()
			return nil, err
		}
	}
	sa, err := unix.Getsockname(us.s)
	if err != nil {
		us.close()
		return nil, err
	}
	a := sa.(*unix.SockaddrInet4)
	us.local = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	if us.waddr, err = unix.Getsockname(us.w); err != nil {
		us.close()
		return nil, err
	}
	return us, nil
}

func (us *unixSocket) wait(timeout time.Duration) (readable, woken bool, err error) {
	fds := []unix.PollFd{{Fd: int32(us.s), Events: unix.POLLIN}, {Fd: int32(us.w), Events: unix.POLLIN}}
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	for {
		_, err = unix.Poll(fds, ms)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("poll: %w", err)
	}
	return fds[0].Revents&unix.POLLIN != 0, fds[1].Revents&unix.POLLIN != 0, nil
}

func (us *unixSocket) recvFrom(b []byte) (int, netip.AddrPort, error) {
	n, sa, err := unix.Recvfrom(us.s, b, 0)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	a := sa.(*unix.SockaddrInet4)
	return n, netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
}

func (us *unixSocket) sendTo(b []byte, to netip.AddrPort) error {
	return unix.Sendto(us.s, b, 0, &unix.SockaddrInet4{Addr: to.Addr().Unmap().As4(), Port: int(to.Port())})
}

func (us *unixSocket) wake() error { return unix.Sendto(us.w, []byte{0}, 0, us.waddr) }

func (us *unixSocket) drainWake() error {
	var b [16]byte
	_, _, err := unix.Recvfrom(us.w, b[:], 0)
	return err
}

func (us *unixSocket) setBuffer(read bool, n int) error {
	opt := unix.SO_SNDBUF
	if read {
		opt = unix.SO_RCVBUF
	}
	return unix.SetsockoptInt(us.s, unix.SOL_SOCKET, opt, n)
}

func (us *unixSocket) localAddr() netip.AddrPort { return us.local }

func (us *unixSocket) close() error {
	var errs []error
	for _, fd := range []int{us.s, us.w} {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
		}
	}
	return errors.Join(errs...)
}
