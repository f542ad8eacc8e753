// Package relay is jitkey's thin, stateless QUIC relay. It forwards bounded,
// opaque, end-to-end encrypted frames between connected peers and keeps no
// state but its live connection table.
//
// The wire format lives in package protocol (relayframe.go); the server in
// relay/server; the peer library in relay/client; sealed push tickets and the
// push-gateway webhook in relay/push; the binaries in relay/cmd. SPEC.md's
// relay section (section 12 of SPEC.md) is the normative description.
package relay
