package client

// Online reports whether the home relay connection is up now, and returns
// a channel that is closed at the next change of the home connection (a
// reconnect, or Run noticing a dead one). The agent tells its login
// surfaces from this whether a QR code can be answered or an offline code
// is needed.
func (c *Client) Online() (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.home != nil && c.home.alive(), c.homeChange
}
