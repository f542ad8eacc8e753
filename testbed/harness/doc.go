// Package harness runs the real jitkey binaries together on loopback for
// the testbed scenarios and the demo: each process gets its own state
// directory under one temporary root, its output is captured line by line
// (with a name prefix) into a shared log, and scenarios wait for readiness
// lines, kill (-9) and restart processes, run command-line tools and parse
// their --json output, look at Linux accounts inside an account sandbox,
// and cut a process off the network with a network namespace.
//
// Nothing here is faked: the relay, console, agents and phones are the
// binaries `make build` puts in ./bin (see Binaries), talking real QUIC
// over loopback, with real SQLite files and real shadow-utils in a sandbox
// (package agent/accounts/linux/sandbox).
package harness
