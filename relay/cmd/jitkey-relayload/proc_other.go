//go:build !linux

package main

import (
	"errors"
	"os/exec"
)

// dieWithParent is a no-op where the kernel has no parent-death signal.
func dieWithParent(*exec.Cmd) {}

// selfCPU is not measured here.
func selfCPU() float64 { return 0 }

// pinSelf is not supported here.
func pinSelf(cpus string) error {
	if cpus != "" {
		return errors.New("pin: CPU pinning needs Linux")
	}
	return nil
}

// checkCPUs refuses any CPU list: pinning needs Linux.
func checkCPUs(cpus string) error { return pinSelf(cpus) }

// pinnedCommand runs name unpinned: pinning needs Linux.
func pinnedCommand(_, name string, args []string) (string, []string) { return name, args }
