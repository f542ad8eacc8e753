// Package protocol defines jitkey's wire formats: deterministic CBOR
// messages, key encodings and fingerprints, signed documents with domain
// separation, the HKDF label table, the login QR payload, the Noise
// handshake runners, paged transfers of a phone's view, relay framing,
// local IPC framing and messages, audit chains, and the shared-mode
// offline code keys.
//
// The package performs no I/O: it imports neither QUIC nor SQLite nor any
// operating-system package (a test enforces this). SPEC.md at the
// repository root is the normative description; the comments here carry the
// byte layouts.
package protocol
