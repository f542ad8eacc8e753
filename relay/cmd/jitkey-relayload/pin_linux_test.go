package main

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"0", []int{0}},
		{"1", []int{1}},
		{"0-2", []int{0, 1, 2}},
		{"0,3-4", []int{0, 3, 4}},
	} {
		var set unix.CPUSet
		if err := parseCPUList(c.in, &set); err != nil {
			t.Fatalf("parseCPUList(%q): %v", c.in, err)
		}
		if set.Count() != len(c.want) {
			t.Errorf("parseCPUList(%q): %d CPUs, want %v", c.in, set.Count(), c.want)
		}
		for _, n := range c.want {
			if !set.IsSet(n) {
				t.Errorf("parseCPUList(%q): CPU %d not set", c.in, n)
			}
		}
	}
	for _, bad := range []string{"", "x", "2-1", "1-", ",", "-1"} {
		var set unix.CPUSet
		if err := parseCPUList(bad, &set); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
}

func TestCheckCPUs(t *testing.T) {
	for _, ok := range []string{"", "1", "0-1"} {
		if err := checkCPUs(ok); err != nil {
			t.Errorf("checkCPUs(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"x", "2-1", ","} {
		if checkCPUs(bad) == nil {
			t.Errorf("checkCPUs(%q) accepted", bad)
		}
	}
}

func TestPinnedCommand(t *testing.T) {
	name, args := pinnedCommand("", "relay", []string{"-a"})
	if name != "relay" || len(args) != 1 {
		t.Errorf("unpinned: %s %v", name, args)
	}
	name, args = pinnedCommand("1", "relay", []string{"-a"})
	if name != "taskset" || len(args) != 4 || args[0] != "-c" || args[1] != "1" || args[2] != "relay" || args[3] != "-a" {
		t.Errorf("pinned: %s %v", name, args)
	}
}

func TestPinSelf(t *testing.T) {
	if err := pinSelf(""); err != nil {
		t.Errorf("pinSelf(\"\"): %v", err)
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	// Bind to the CPUs we already have: the test must not change the
	// machine's scheduling for the rest of the package.
	first := -1
	for c := 0; c < 1024; c++ {
		if before.IsSet(c) {
			first = c
			break
		}
	}
	procs := runtime.GOMAXPROCS(0)
	if err := pinSelf(cpuRange(first, first)); err != nil {
		t.Fatal(err)
	}
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS after pinning to one CPU: %d", n)
	}
	defer func() {
		runtime.GOMAXPROCS(procs)
		if err := setAffinity(&before); err != nil {
			t.Errorf("restore the mask: %v", err)
		}
	}()
	var got unix.CPUSet
	if err := unix.SchedGetaffinity(0, &got); err != nil {
		t.Fatal(err)
	}
	if got.Count() != 1 || !got.IsSet(first) {
		t.Errorf("after pinSelf(%d): mask has %d CPUs", first, got.Count())
	}
}
