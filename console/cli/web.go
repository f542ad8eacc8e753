package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/jitkey/jitkey/console"
	"github.com/jitkey/jitkey/console/server"
	"github.com/jitkey/jitkey/console/signin"
	"github.com/jitkey/jitkey/console/web"
)

// webOpts are serve's web console flags.
type webOpts struct {
	addr, cert, key, origin string
	maxAge, idle            time.Duration
}

func webFlags(fs *flag.FlagSet) *webOpts {
	o := &webOpts{}
	fs.StringVar(&o.addr, "web", "", "serve the web console on HOST:PORT (plain HTTP only on loopback)")
	fs.StringVar(&o.cert, "web-cert", "", "TLS certificate (PEM) for the web console")
	fs.StringVar(&o.key, "web-key", "", "TLS private key (PEM) for the web console")
	fs.StringVar(&o.origin, "web-origin", "", "the web console's origin as browsers reach it (default: from --web)")
	fs.DurationVar(&o.maxAge, "web-session", web.DefaultMaxAge, "web session lifetime")
	fs.DurationVar(&o.idle, "web-idle", web.DefaultMaxIdle, "web session idle time")
	return o
}

// isLoopback reports whether host names this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (o *webOpts) check() error {
	if o.addr == "" {
		if o.cert != "" || o.key != "" || o.origin != "" {
			return usagef("--web-cert, --web-key and --web-origin need --web HOST:PORT")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return usagef("--web %q must be HOST:PORT", o.addr)
	}
	if (o.cert == "") != (o.key == "") {
		return usagef("give both --web-cert and --web-key, or neither")
	}
	if o.cert == "" && !isLoopback(host) {
		return &console.Refusal{Reason: fmt.Sprintf("--web %s is not a loopback address: plain HTTP is served on loopback only; give --web-cert and --web-key for TLS", o.addr)}
	}
	if o.maxAge < time.Minute || o.idle < time.Second {
		return usagef("--web-session must be at least 1m and --web-idle at least 1s")
	}
	return nil
}

// start listens and serves the web console (nothing without --web). It
// prints "web=<origin>" on stdout and returns the sign-in registry for the
// relay side; the server stops when ctx ends.
func (o *webOpts) start(ctx context.Context, env *Env, con *console.Console, log *slog.Logger) (server.SignIn, error) {
	if o.addr == "" {
		return nil, nil
	}
	var tlsCfg *tls.Config
	if o.cert != "" {
		c, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, &console.Refusal{Reason: fmt.Sprintf("web certificate: %v", err)}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, &console.Refusal{Reason: fmt.Sprintf("web: %v", err)}
	}
	origin := o.origin
	if origin == "" {
		host, _, _ := net.SplitHostPort(o.addr)
		if host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
			ln.Close()
			return nil, usagef("--web %s listens on every address: give --web-origin https://NAME:PORT", o.addr)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		scheme := "http"
		if tlsCfg != nil {
			scheme = "https"
		}
		origin = (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}).String()
	}
	wlog := log.With("part", "web")
	reg := signin.New(signin.Config{Console: con, Origin: origin, Now: env.Now, Rand: env.Rand, Logger: wlog})
	ws, err := web.New(web.Config{Console: con, SignIn: reg, Origin: origin, MaxAge: o.maxAge, MaxIdle: o.idle,
		Now: env.Now, Rand: env.Rand, Logger: wlog})
	if err != nil {
		ln.Close()
		return nil, usagef("%v", err)
	}
	hs := &http.Server{Handler: ws, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(wlog.Handler(), slog.LevelWarn)}
	go func() {
		var err error
		if tlsCfg != nil {
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			wlog.Error("web console stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	wlog.Info("web console serving", "origin", origin, "listen", ln.Addr().String())
	fmt.Fprintf(env.Stdout, "web=%s\n", origin)
	return reg, nil
}
