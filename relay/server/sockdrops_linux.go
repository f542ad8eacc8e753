package server

import (
	"bufio"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// socketDrops returns a function that reads how many datagrams the
// kernel dropped on pc's socket because its receive buffer was full (the
// drops column of /proc/net/udp and udp6), or nil if pc is not a socket.
// A lost datagram costs the peer a QUIC retransmission timeout, which
// doubles with each loss in a row.
func socketDrops(pc net.PacketConn) func() (int64, bool) {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var ino uint64
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		serr = syscall.Fstat(int(fd), &st)
		ino = st.Ino
	}); err != nil || serr != nil {
		return nil
	}
	inode := strconv.FormatUint(ino, 10)
	return func() (int64, bool) {
		for _, name := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
			if n, ok := udpDrops(name, inode); ok {
				return n, true
			}
		}
		return 0, false
	}
}

// udpDrops finds the socket with inode in a /proc/net/udp table.
func udpDrops(name, inode string) (int64, bool) {
	f, err := os.Open(name)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		fs := strings.Fields(sc.Text())
		if len(fs) >= 13 && fs[9] == inode {
			n, err := strconv.ParseInt(fs[12], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
