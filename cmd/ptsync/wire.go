package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// oneShot is what plan, sync, apply and explain share: the loaded config,
// the run's logger and an engine wired from the config.
type oneShot struct {
	cfg     *config.Config
	runID   string
	engine  *sync.Engine
	metrics *prometheus.Registry // the run's ptsync_* metrics, for --metrics-file
	// command is the command line, as the run's history names it.
	command string
	// db is the state database of state.dir, nil without one; the engine
	// remembers through it. close releases it.
	db *state.DB
}

// close releases the state directory, for the next ptsync.
func (o *oneShot) close() {
	if o.db != nil {
		_ = o.db.Close()
	}
}

// loadOneShot loads the config at path and wires an engine for one run.
// Every log line carries the run's id: the engine adds it to its own, and
// the sources and PagerTree client are built with it. On failure it has
// printed the error and returns the exit code.
func loadOneShot(e env, name, path string, withSources bool) (*oneShot, int, bool) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, printConfigError(e, err), false
	}
	base, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return nil, fail(e, name, fmt.Errorf("%s: %w", path, err)), false
	}
	runID := sync.NewRunID()
	reg := prometheus.NewRegistry()
	metrics := sync.NewMetrics(reg, version)
	engine, err := newEngine(cfg, base, base.With(zap.String("run_id", runID)), metrics, withSources)
	if err != nil {
		return nil, fail(e, name, err), false
	}
	db, err := openState(cfg)
	if err != nil {
		return nil, fail(e, name, err), false
	}
	engine.Memory = memoryOf(db)
	return &oneShot{cfg: cfg, runID: runID, engine: engine, metrics: reg, command: commandLine(name, e.args), db: db}, exitOK, true
}

// newEngine wires sources, the PagerTree client and the policy of cfg into
// an engine. engineLog is the engine's logger (it adds run_id itself);
// peerLog is given to the sources and the client.
func newEngine(cfg *config.Config, engineLog, peerLog *zap.Logger, metrics *sync.Metrics, withSources bool) (*sync.Engine, error) {
	var srcs []sources.Source
	if withSources {
		for _, sc := range cfg.Sources {
			src, err := newSource(cfg, sc, peerLog, metrics)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, src)
		}
	}
	client, err := newPagerTreeClient(cfg.PagerTree, peerLog, metrics)
	if err != nil {
		return nil, err
	}
	return &sync.Engine{
		Sources:        srcs,
		PagerTree:      ptaccount.For(cfg.PagerTree.API, client),
		Policy:         newPolicy(cfg),
		MinSourceUsers: cfg.Safety.MinSourceUsers,
		Concurrency:    cfg.PagerTree.Concurrency,
		Metrics:        metrics,
		Logger:         engineLog,
		// The shrink check needs a state to compare with; the caller sets
		// Engine.Memory when there is one.
		MaxSourceDropPercent: cfg.Safety.MaxSourceDropPercent,
		Now:                  clock,
	}, nil
}

// newPolicy is the planning policy of cfg.
func newPolicy(cfg *config.Config) sync.Policy {
	return sync.Policy{
		Rules:                 cfg.Teams,
		Scope:                 cfg.Users.Scope,
		DeleteUsers:           cfg.Users.Delete,
		DeleteGrace:           cfg.Users.DeleteGrace,
		Protect:               cfg.Users.Protect,
		PhoneRegion:           cfg.Users.PhoneRegion,
		MaxDestructive:        cfg.Safety.MaxDestructive,
		MaxDestructivePercent: cfg.Safety.MaxDestructivePercent,
		TeamAdmins:            cfg.PagerTree.TeamAdmins,
		TeamRoles:             cfg.PagerTree.API == config.APIv4,
		PhonesE164:            cfg.PagerTree.API == config.APIv4,
	}
}

// cycleTimeoutError is the cause of a run's context ending at
// cycle_timeout, so the run's error can say so rather than only "context
// deadline exceeded".
type cycleTimeoutError struct{ timeout time.Duration }

func (e cycleTimeoutError) Error() string {
	return fmt.Sprintf("cycle_timeout (%s) reached", shortDuration(e.timeout))
}

// withCycleTimeout bounds one run (a daemon cycle, or a one-shot plan or
// sync) by cfg's cycle_timeout.
func withCycleTimeout(ctx context.Context, cfg *config.Config) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, cfg.CycleTimeout, cycleTimeoutError{cfg.CycleTimeout})
}

// runError is err, the error of a run under ctx, saying first that
// cycle_timeout cancelled the run when it did.
func runError(ctx context.Context, err error) error {
	var timeout cycleTimeoutError
	if err != nil && errors.As(context.Cause(ctx), &timeout) {
		return fmt.Errorf("%w: %w", timeout, err)
	}
	return err
}

// shortDuration writes d as a config would: 30m, 1h, 1h30m, 200ms, not
// 30m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// metricsFileFlag adds --metrics-file to a one-shot command.
func metricsFileFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics-file", "", "write the run's ptsync_* metrics to this file in Prometheus text format\n(for node_exporter's textfile collector when ptsync runs from cron or a timer)")
}

// writeMetricsFile writes the run's metrics to path when it is set, by a
// rename so a collector never reads half a file. It runs whatever the run's
// outcome: a failed run is what the metrics must show.
func writeMetricsFile(e env, name string, run *oneShot, path string) bool {
	if path == "" {
		return true
	}
	if err := prometheus.WriteToTextfile(path, run.metrics); err != nil {
		fail(e, name, fmt.Errorf("--metrics-file: %w", err))
		return false
	}
	return true
}

// parseWithArg parses flags placed before or after one positional
// argument (ptsync apply PLAN.json --config F reads as well as the other
// order) and returns that argument. ok is false when the command should
// return code at once.
func parseWithArg(fs *flag.FlagSet, e env, what string) (arg string, code int, ok bool) {
	if code, ok := parseFlags(fs, e); !ok {
		return "", code, false
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(e.stderr, "%s: missing %s (run '%s -h' for usage)\n", fs.Name(), what, fs.Name())
		return "", exitError, false
	}
	arg = fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", exitOK, false
		}
		return "", exitError, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "%s: unexpected argument %q after %s %q\n", fs.Name(), fs.Arg(0), what, arg)
		return "", exitError, false
	}
	return arg, exitOK, true
}
