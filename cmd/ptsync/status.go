package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/server"
	"github.com/ptsync/ptsync/internal/state"
)

// statusConfig is the status: block of a config: whether the status page
// is served and who may open it.
type statusConfig struct {
	Enabled bool
	// Auth is server.AuthNone or server.AuthBasic; basic checks Username
	// and the bcrypt PasswordHash.
	Auth, Username, PasswordHash string
}

// statusOf is cfg's status: block.
//
// Until internal/config has status.*, it is that block's defaults: the
// page on, without auth, so only on a loopback address. Once it has, this
// returns cfg.Status's enabled, auth, username and password_hash.
func statusOf(cfg *config.Config) statusConfig {
	s := cfg.Status
	return statusConfig{Enabled: s.Enabled, Auth: s.Auth, Username: s.Username, PasswordHash: s.PasswordHash}
}

// statusOptions are the status page's options for cfg (loaded from path),
// served on listen from st; daemon says the page is ptsync run's.
func statusOptions(cfg *config.Config, path, listen string, st server.StateSource, daemon bool) server.StatusOptions {
	sc := statusOf(cfg)
	return server.StatusOptions{
		State: st, Listen: listen,
		Auth: sc.Auth, Username: sc.Username, PasswordHash: sc.PasswordHash,
		ConfigPath: path, Daemon: daemon, Version: version,
		MaxSourceDropPercent: cfg.Safety.MaxSourceDropPercent,
	}
}

// statusStdin is where --hash-password reads the password; tests replace
// it.
var statusStdin io.Reader = os.Stdin

// runStatus is `ptsync status`: the daemon's status page for installs
// without a daemon (sync from cron or a systemd timer), served from the
// state directory alone. It never holds the state: each request opens it,
// reads and closes it, so the runs go on; while one runs (or a daemon
// holds the directory) the page says so and answers 503.
func runStatus(ctx context.Context, e env) int {
	fs := newFlags("status", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	listen := fs.String("listen", "", "`ADDR` (host:port) to serve the status page on; default metrics.listen.\nWithout status.auth: basic it must be a loopback address")
	hashPassword := fs.Bool("hash-password", false, "read a password on standard input, print its bcrypt hash for status.password_hash, and exit")
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "status", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *hashPassword {
		return printPasswordHash(e)
	}

	cfg, err := loadConfig(*path)
	if err != nil {
		return printConfigError(e, err)
	}
	sc := statusOf(cfg)
	if !sc.Enabled {
		return fail(e, "status", fmt.Errorf("status.enabled is false in %s: the status page is off", *path))
	}
	if cfg.State.Dir == "" {
		return fail(e, "status", fmt.Errorf("state.dir is not set in %s: the page shows what the state database remembers, and there is none", *path))
	}
	addr := *listen
	if addr == "" {
		addr = cfg.Metrics.Listen
	}
	if err := server.CheckExposure(addr, sc.Auth); err != nil {
		return fail(e, "status", err)
	}
	log, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return fail(e, "status", fmt.Errorf("%s: %w", *path, err))
	}

	st := server.Reopen(cfg.State.Dir, state.Options{})
	switch err := st.View(func(server.Store) error { return nil }); {
	case errors.Is(err, state.ErrInUse):
		log.Warn("the state directory is in use by another ptsync; the page says so until it is free. If that is the daemon (ptsync run), its own status page is on its metrics.listen",
			zap.String("state_dir", cfg.State.Dir))
	case errors.Is(err, server.ErrNoState):
		log.Warn("no run has recorded a state yet; the page says so until one has", zap.String("state_dir", cfg.State.Dir))
	case err != nil:
		return fail(e, "status", fmt.Errorf("state.dir: %w", err))
	}

	srv := server.New(nil, log)
	if err := srv.EnableStatus(statusOptions(cfg, *path, addr, st, false)); err != nil {
		return fail(e, "status", err)
	}
	srv.SetReady()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(e, "status", fmt.Errorf("%s is in use (a daemon on metrics.listen serves this page itself): stop what holds it or pass --listen", addr))
		}
		return fail(e, "status", fmt.Errorf("--listen %s: %w", addr, err))
	}
	log.Info("status page started", zap.String("addr", ln.Addr().String()), zap.String("state_dir", cfg.State.Dir),
		zap.String("auth", cmp.Or(sc.Auth, server.AuthNone)))
	if err := srv.Serve(ctx, ln); err != nil {
		return fail(e, "status", err)
	}
	log.Info("status page stopped")
	return exitOK
}

// printPasswordHash reads one line from statusStdin and prints its bcrypt
// hash.
func printPasswordHash(e env) int {
	line, err := bufio.NewReader(statusStdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fail(e, "status", fmt.Errorf("--hash-password: read standard input: %w", err))
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return fail(e, "status", errors.New("--hash-password: no password on standard input (printf '%s' \"$PASSWORD\" | ptsync status --hash-password)"))
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil { // longer than bcrypt's 72 bytes
		return fail(e, "status", fmt.Errorf("--hash-password: %w", err))
	}
	fmt.Fprintln(e.stdout, string(hash))
	return exitOK
}
