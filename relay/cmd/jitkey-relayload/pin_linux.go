package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pinSelf binds every thread of this process to cpus (a taskset list such
// as "0" or "0-1,3"); empty cpus leaves it unbound. Threads the runtime starts later inherit the mask of
// the thread that creates them, so binding the existing ones is enough.
func pinSelf(cpus string) error {
	if cpus == "" {
		return nil
	}
	var set unix.CPUSet
	if err := parseCPUList(cpus, &set); err != nil {
		return err
	}
	if err := setAffinity(&set); err != nil {
		return err
	}
	// The runtime sized GOMAXPROCS from the mask it started with; more
	// Ps than CPUs would make this process's threads compete with each
	// other on its CPUs.
	runtime.GOMAXPROCS(set.Count())
	return nil
}

// setAffinity binds every thread of this process to set.
func setAffinity(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("pin: list threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin: thread %d: %w", tid, err)
		}
	}
	return nil
}

// checkCPUs reports a CPU list that cannot be bound to (empty: none is
// asked for), before a child is started with it: taskset would only fail
// once the child runs, with an error that does not say why.
func checkCPUs(cpus string) error {
	if cpus == "" {
		return nil
	}
	var set unix.CPUSet
	return parseCPUList(cpus, &set)
}

// pinnedCommand returns the command line that runs name bound to cpus
// (through taskset, which sets the mask before exec, so every thread of
// the child has it), or name itself when cpus is empty.
func pinnedCommand(cpus, name string, args []string) (string, []string) {
	if cpus == "" {
		return name, args
	}
	return "taskset", append([]string{"-c", cpus, name}, args...)
}

// parseCPUList reads a list of CPU numbers and ranges ("0", "2-3,5").
func parseCPUList(s string, set *unix.CPUSet) error {
	set.Zero()
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return fmt.Errorf("pin: bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return fmt.Errorf("pin: bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	if set.Count() == 0 {
		return fmt.Errorf("pin: empty CPU list %q", s)
	}
	return nil
}
