package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// fetchProfile saves the relay's profile at path (below /debug/pprof/).
func fetchProfile(ctx context.Context, o options, path, file string, log *slog.Logger) {
	if o.profile == "" || o.relayPprof == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.relayPprof+path, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			defer resp.Body.Close()
			var f *os.File
			if f, err = os.Create(filepath.Join(o.profile, file)); err == nil {
				_, err = io.Copy(f, resp.Body)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
			}
		}
	}
	if err != nil {
		log.Warn("relay profile", "file", file, "err", err)
		return
	}
	log.Info("wrote relay profile", "file", filepath.Join(o.profile, file))
}

// profileMax starts the CPU profiles of the maximum-rate phase of system
// name: the relay's (fetched over HTTP) and this program's. The returned
// function waits for both.
func profileMax(ctx context.Context, o options, name string, log *slog.Logger) func() {
	if o.profile == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if name == "relay" {
			fetchProfile(ctx, o, fmt.Sprintf("profile?seconds=%d", max(1, int(o.duration/time.Second))), "relay-cpu.pb.gz", log)
		}
	}()
	f, err := os.Create(filepath.Join(o.profile, "load-"+name+"-cpu.pb.gz"))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
			f = nil
		}
	}
	if err != nil {
		log.Warn("load generator profile", "err", err)
	}
	return func() {
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		<-done
	}
}
