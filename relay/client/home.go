package client

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// A peer names its home relay by an address string, and peers spell one
// relay differently ("localhost:4433", "127.0.0.1:4433", "[::1]:4433",
// "Relay.example.:4433"). The client must reach its own home relay through
// its home connection only: a second connection authenticated with the
// same identity would make the relay replace the home connection (SPEC.md
// 12.3, mailbox takeover), and Run would stop with ErrReplaced. It
// recognises its home relay in three ways:
//
//   - by relayKey, a canonical spelling, without dialling;
//   - by pin, after the QUIC handshake of a dial to another spelling and
//     before its Hello (errHomeRelay); the spelling is then remembered as
//     an alias of home;
//   - if a dial still authenticated at the home relay (its pin was not yet
//     known, as the first home connection was still in its handshake), Run
//     sees the replacement caused by its own connection and reconnects
//     instead of returning ErrReplaced (selfReplaced).

// errHomeRelay: a relay dialled as foreign presented the home relay's pin.
var errHomeRelay = errors.New("client: relay is the home relay")

// relayKey is the form in which relay addresses are compared: spellings
// with the same key name the same relay. A host name is lower-case without
// a trailing dot, an IP address is in netip's canonical form (an
// IPv4-mapped IPv6 address as IPv4), and the port is decimal without
// leading zeros. An address that does not split into host and numeric port
// is its own key.
func relayKey(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return addr
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(p)).String()
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return net.JoinHostPort(host, strconv.FormatUint(p, 10))
}

// isHome reports whether key names the home relay. c.mu must be held.
func (c *Client) isHome(key string) bool {
	return key == c.homeKey || c.homeAlias[key]
}

// claimPin is called by a dial after the QUIC handshake and before Hello,
// with the relay's pin. A home dial records it as the home pin (forgetting
// the aliases of another pin) and gets the event number of its claim. A
// foreign dial gets errHomeRelay if pin is the home pin; otherwise it is
// counted as live for pin until endForeign.
func (c *Client) claimPin(pin [32]byte, home bool) (event uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !home {
		if c.isHomePin(pin) {
			return 0, errHomeRelay
		}
		u := c.foreignUse[pin]
		u.live++
		c.foreignUse[pin] = u
		return 0, nil
	}
	if c.homePinSet && c.homePin != pin {
		clear(c.homeAlias)
	}
	c.homePin, c.homePinSet = pin, true
	c.events++
	return c.events, nil
}

// endForeign ends what claimPin counted for a foreign dial, at a new
// event number.
func (c *Client) endForeign(pin [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events++
	u := c.foreignUse[pin]
	u.live--
	u.ended = c.events
	c.foreignUse[pin] = u
}

// isHomePin reports whether pin is the home relay's. c.mu must be held.
func (c *Client) isHomePin(pin [32]byte) bool {
	return c.homePinSet && c.homePin == pin
}

// selfReplaced is called by Run when the relay replaced the home
// connection rc. If a foreign connection of this client to a relay with
// the home pin (dialled before the home pin was known) was open at some
// time after rc's claim, its Hello may have reached the relay after rc's
// and replaced rc: selfReplaced closes the foreign connections to the home
// relay, remembers their addresses as aliases of home, and returns true,
// and Run reconnects. Otherwise another holder of the identity key took
// the mailbox.
func (c *Client) selfReplaced(rc *relayConn) bool {
	c.mu.Lock()
	if u := c.foreignUse[rc.pin]; u.live == 0 && u.ended < rc.claim {
		c.mu.Unlock()
		return false
	}
	var stale []*relayConn
	for key, f := range c.foreign {
		if f.pin == rc.pin {
			c.homeAlias[key] = true
			delete(c.foreign, key)
			stale = append(stale, f)
		}
	}
	c.mu.Unlock()
	c.log.Warn("home relay connection replaced by this client's own connection to another address of the home relay; reconnecting", "relay", c.cfg.Home)
	for _, f := range stale {
		f.shutdown(errHomeRelay)
	}
	return true
}
