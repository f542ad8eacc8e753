// Package mobilesim is the technician's phone app as a command-line
// simulator (jitkey-phone). Its parts live in sub-packages: wallet (the
// phone's storage), biometric (the gate in front of the approval key), app
// (the flows: pairing, QR login, sync, listening for pushes, offline codes)
// and cli (the commands, run in-process by tests and by cmd/jitkey-phone).
package mobilesim
