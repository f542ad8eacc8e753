//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel has no parent-death signal.
func dieWithParent(*exec.Cmd) {}

// selfCPU is not measured here.
func selfCPU() float64 { return 0 }
