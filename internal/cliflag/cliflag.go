// Package cliflag parses the command lines of jitkey's binaries, whose
// flags may come before or after the positional arguments
// ("jitkey-phone scan PAYLOAD --approve").
package cliflag

import "flag"

// Parse parses args with fs, taking flags wherever they stand, and returns
// the positional arguments in order. Everything after a "--" is
// positional, even if it starts with "-" (a flag value of "--", as in
// "--name --", counts as that terminator too).
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// fs.Parse stops at the first positional argument or just after
		// a "--", which it consumes: everything after that is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
