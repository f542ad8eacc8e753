// Package testbed holds the end-to-end scenarios: each test runs the real
// jitkey binaries (relay, console, agents, phones, login surfaces) as
// processes on loopback through package harness, including fault
// injection. See README.md for the map from features to scenarios.
package testbed
