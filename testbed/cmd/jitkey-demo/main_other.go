//go:build !linux

// Command jitkey-demo is `make demo`; it runs only on Linux (account
// sandboxes, network namespaces).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "jitkey-demo: runs on Linux only")
	os.Exit(1)
}
