//go:build linux

package testbed

import "regexp"

var regexpDenied = regexp.MustCompile(`^denied: `)
