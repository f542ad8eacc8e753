//go:build !linux

package server

import "net"

// socketDrops is not available here: there is no /proc/net/udp.
func socketDrops(net.PacketConn) func() (int64, bool) { return nil }
