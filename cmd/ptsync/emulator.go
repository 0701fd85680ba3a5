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
	api := fs.String("api", "v3", "the API to serve: v3 (the seed's: login, /user, /team) or v4 (/api/v4/account_users, /api/v4/teams)")
	username := fs.String("username", pagertreetest.DefaultUsername, "username POST /public/login accepts (v3)")
	password := fs.String("password", pagertreetest.DefaultPassword, "password POST /public/login accepts (v3)")
	apiKey := fs.String("api-key", pagertreetest.DefaultAPIKey, "the Bearer key the API accepts (v4)")
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

	if *api != "v3" && *api != "v4" {
		return fail(e, "emulator", fmt.Errorf("--api %q: want v3 or v4", *api))
	}
	srv := pagertreetest.New(pagertreetest.Options{API: *api, Username: *username, Password: *password, APIKey: *apiKey})
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
	who := "login " + *username
	if *api == "v4" {
		who = "API v4, key " + *apiKey
	}
	fmt.Fprintf(e.stdout, "PagerTree emulator listening on http://%s (%s); Ctrl-C stops it\n", ln.Addr(), who)

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
