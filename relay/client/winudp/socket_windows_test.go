package winudp

// openTestSocket is the winsock socket on IPv4 loopback. The tests run
// under Wine in TestWine (winhelper/credprov), which builds them with
// go test -c for windows.
func openTestSocket() (socket, error) { return openSocket(loopback) }
