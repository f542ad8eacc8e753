// Package linuxtest holds test helpers for the Linux accounts backend: a
// real backend on a sandbox (package sandbox) and processes run as an
// account's uid, started and checked from outside the backend. It builds
// only on Linux, and Backend needs root.
package linuxtest
