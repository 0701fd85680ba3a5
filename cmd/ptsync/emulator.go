package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// runEmulator serves the PagerTree API emulator until interrupted, so a
// config can be tried against something that is not the real account.
func runEmulator(ctx context.Context, e env) int {
	fs := newFlags("emulator", e)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	username := fs.String("username", "admin@example.com", "username POST /public/login accepts")
	password := fs.String("password", "password", "password POST /public/login accepts")
	load := fs.String("load", "", "YAML or JSON file of users and teams to preload")
	var faults pagertreetest.Faults
	fs.DurationVar(&faults.Latency, "latency", 0, "latency added to every request")
	fs.Float64Var(&faults.ErrorRate, "error-rate", 0, "fraction of requests answered 500")
	fs.Float64Var(&faults.RateLimitRate, "rate-limit-rate", 0, "fraction of requests answered 429")
	fs.DurationVar(&faults.RetryAfter, "retry-after", time.Second, "Retry-After sent with 429s")
	fs.Float64Var(&faults.RateLimit, "rate-limit", 0, "server-side requests per second (0: none)")
	fs.IntVar(&faults.TokenTTL, "token-ttl", 0, "requests a login token lasts (0: forever)")
	fs.Float64Var(&faults.DropCreateRate, "drop-create-rate", 0, "fraction of creates committed but answered by a dropped connection")
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "emulator", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}

	srv := pagertreetest.New(pagertreetest.Options{Username: *username, Password: *password})
	srv.SetFaults(faults)
	if *load != "" {
		f, err := os.Open(*load)
		if err != nil {
			return fail(e, "emulator", fmt.Errorf("--load: %w", err))
		}
		err = srv.Load(f)
		f.Close()
		if err != nil {
			return fail(e, "emulator", fmt.Errorf("--load %s: %w", *load, err))
		}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(e, "emulator", fmt.Errorf("listen on %s: %w (is the port in use?)", *listen, err))
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stdout, "PagerTree emulator listening on http://%s (login %s); Ctrl-C stops it\n", ln.Addr(), *username)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fail(e, "emulator", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fail(e, "emulator", err)
	}
	return exitOK
}
