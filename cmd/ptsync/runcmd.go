package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/server"
	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// defaultDrainTimeout fits inside Kubernetes' default 30 s termination
// grace period, so a run cut short is cancelled (and says so in the log)
// rather than killed.
const defaultDrainTimeout = 25 * time.Second

// overrunGrace is how long past its cycle_timeout a cycle may take to end
// (it is cancelled at the deadline, and unwinds) before /readyz reports it
// as having run past cycle_timeout.
const overrunGrace = time.Second

// Why /readyz answers 503 outside a failed run.
const (
	notReadyNoRunYet = "no sync run has finished yet"
	notReadyStopping = "shutting down"
)

// runRun is the daemon: a sync at start and then on schedule, metrics and
// health over HTTP, the config reloaded on SIGHUP, and a drain when ctx
// ends (main ends it on SIGINT and SIGTERM).
func runRun(ctx context.Context, e env) int {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runDaemon(ctx, e, hup)
}

// runDaemon is runRun with the reload signal passed in, so tests need not
// signal their own process: every value on reload reloads the config.
func runDaemon(ctx context.Context, e env, reload <-chan os.Signal) int {
	fs := newFlags("run", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	drainTimeout := fs.Duration("drain-timeout", defaultDrainTimeout,
		"on SIGTERM or SIGINT, how long a running sync may go on before it is cancelled")
	accept := acceptSourceDropFlag(fs)
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "run", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if *drainTimeout < 0 {
		return fail(e, "run", fmt.Errorf("--drain-timeout %v is negative", *drainTimeout))
	}

	loaded, err := loadDaemonConfig(*path, e.stderr)
	if err != nil {
		var problems config.Problems
		if errors.As(err, &problems) {
			return printConfigError(e, err)
		}
		return fail(e, "run", err)
	}
	// The state is opened once, for the daemon's life: a second ptsync on
	// the same directory is refused, and this one stops before it serves.
	db, err := openState(loaded.cfg)
	if err != nil {
		return fail(e, "run", err)
	}
	if db != nil {
		defer db.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cookies := map[string][]byte{}
	if db != nil {
		if cookies, err = db.FeedCookies(); err != nil {
			return fail(e, "run", err)
		}
	}
	d := &daemon{
		path:         *path,
		stderr:       e.stderr,
		loaded:       loaded,
		metrics:      sync.NewMetrics(reg, version),
		server:       server.New(reg, loaded.log),
		state:        db,
		command:      commandLine("run", e.args),
		accept:       *accept,
		feedEvents:   make(chan feedEvent),
		watch:        newWatchState(loaded.cfg.Watch, cookies),
		watchMetrics: newWatchMetrics(reg),
		feedBoard:    newFeedBoard(),
	}
	d.server.SetFeeds(d.feedBoard.list)
	listen := loaded.cfg.Metrics.Listen
	if db != nil && statusOf(loaded.cfg).Enabled {
		// The page reads the state this daemon holds: no other process can.
		if err := d.server.EnableStatus(statusOptions(loaded.cfg, *path, listen, server.Held(db), true)); err != nil {
			return fail(e, "run", err)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(e, "run", fmt.Errorf("metrics.listen %s is in use: stop what holds it or change metrics.listen in %s", listen, *path))
		}
		return fail(e, "run", fmt.Errorf("metrics.listen %s: %w", listen, err))
	}
	d.server.SetNotReady(notReadyNoRunYet)
	// The HTTP side outlives ctx: /healthz and /metrics keep answering
	// while a running sync drains.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- d.server.Serve(serveCtx, ln) }()
	loaded.log.Info("daemon started", zap.String("version", version), zap.String("config", *path),
		zap.String("schedule", loaded.cfg.Schedule), zap.String("addr", ln.Addr().String()),
		zap.Duration("drain_timeout", *drainTimeout))

	if err := d.loop(ctx, reload, served, *drainTimeout); err != nil {
		d.log().Error("daemon stopped: the HTTP server failed", zap.Error(err))
		return fail(e, "run", err)
	}
	stopServing()
	if err := <-served; err != nil {
		d.log().Warn("the HTTP server did not shut down cleanly", zap.Error(err))
	}
	d.log().Info("daemon stopped")
	return exitOK
}

// daemonConfig is one loaded configuration and what is built from it.
type daemonConfig struct {
	cfg      *config.Config
	schedule cron.Schedule
	log      *zap.Logger
}

// loadDaemonConfig loads and checks the config at path as `run` needs it:
// valid, with a schedule that fires and sources this build can make. The
// error is config.Problems for a file that is not valid.
func loadDaemonConfig(path string, logTo io.Writer) (daemonConfig, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return daemonConfig{}, err
	}
	schedule, err := config.ParseSchedule(cfg.Schedule)
	if err != nil { // Load validated it, a schedule that never fires included: this is a bug
		return daemonConfig{}, fmt.Errorf("%s: schedule: %w", path, err)
	}
	log, err := newLogger(cfg.Log, logTo)
	if err != nil {
		return daemonConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	// Building the sources and the client connects nowhere, but catches
	// what the schema cannot (a source type this build lacks) now rather
	// than at every cycle.
	if _, err := newEngine(cfg, zap.NewNop(), zap.NewNop(), nil, true); err != nil {
		return daemonConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return daemonConfig{cfg: cfg, schedule: schedule, log: log}, nil
}

// daemon is the state of `ptsync run`. Only loop's goroutine touches
// loaded; a cycle gets the config it runs with as an argument.
type daemon struct {
	path    string
	stderr  io.Writer // where the logger of each loaded config writes
	loaded  daemonConfig
	metrics *sync.Metrics // one set for the process: counters span cycles
	server  *server.Server
	// lastSuccess is when the last cycle that did not fail ended; zero
	// before the first.
	lastSuccess time.Time
	// state is the state database the daemon opened at start (nil: none);
	// every cycle remembers through it and is recorded in it.
	state   *state.DB
	command string // the daemon's command line, for the run history
	// accept are the --accept-source-drop sources: accepted by every
	// cycle until one ends healthy, which records their new size.
	accept []string

	// Watch mode: the running feeds (nil: none), their events, the
	// changes waiting for a sync, and what the running cycle took.
	feeds        *feeds
	feedEvents   chan feedEvent
	watch        *watchState
	watchMetrics *watchMetrics
	feedBoard    *feedBoard
	inflight     inflightWatch
	// baseline is what the last cycle left for a scoped one; nil when
	// the next watch cycle must be a full one.
	baseline *sync.Baseline
}

// cycleEnd is how a cycle ended: why it leaves the daemon not ready (""
// if it does not), and the baseline it leaves for watch mode.
type cycleEnd struct {
	notReady string
	baseline *sync.Baseline
	cfg      *config.Config // the config the cycle ran with
}

// inflightWatch is what the running cycle covers of watch mode: the
// changes pending when it started, and the feeds' cookies then.
type inflightWatch struct {
	changes []pendingChange
	cookies map[string][]byte
}

func (d *daemon) log() *zap.Logger { return d.loaded.log }

// loop runs a cycle now and then on schedule, one at a time, until ctx
// ends; then it drains. It returns early only when the HTTP server fails.
func (d *daemon) loop(ctx context.Context, reload <-chan os.Signal, served <-chan error, drainTimeout time.Duration) error {
	// Cycles get a context of their own: when ctx ends, the running one
	// may finish, for drainTimeout at most.
	cycleCtx, cancelCycle := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCycle()
	finished := make(chan cycleEnd, 1)
	running := false
	start := func(trigger string) {
		running = true
		loaded := d.loaded
		runID := sync.NewRunID()
		accept := slices.Clone(d.accept)
		d.inflight.changes, d.inflight.cookies = d.watch.take()
		if trigger != "" {
			loaded.log.Info("watch: syncing directory changes", zap.String("run_id", runID),
				zap.Int("changes", len(d.inflight.changes)))
		}
		// The cycle is cancelled at its deadline; should it still not end
		// overrunGrace later (a peer that ignores the cancel), /readyz
		// says so. A cycle that is only unwinding from its cancel is not
		// reported as stuck.
		timeout := loaded.cfg.CycleTimeout
		deadline := time.Now().Add(timeout)
		d.server.SetDeadline(deadline.Add(overrunGrace),
			fmt.Sprintf("sync run %s has run past cycle_timeout (%s)", runID, shortDuration(timeout)))
		command := d.command
		if trigger != "" {
			command += " (" + trigger + ")"
		}
		// A watch cycle is scoped to what changed when there is a baseline
		// to scope it with; it falls back to a full one where it cannot be.
		var base *sync.Baseline
		if trigger != "" {
			base = d.baseline
		}
		// The cycle leaves the next baseline; a full one does not need this
		// one, whose memos of the sources could be as large as a read.
		d.baseline = nil
		changes := bySource(d.inflight.changes)
		go func() { finished <- d.cycle(cycleCtx, loaded, runID, accept, deadline, command, base, changes) }()
	}

	d.restartFeeds(ctx)
	defer func() { d.feeds.stop() }()
	start("")
	timer := time.NewTimer(d.untilNext())
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			if running {
				d.log().Warn("scheduled sync run skipped: the previous one is still running", zap.String("schedule", d.loaded.cfg.Schedule))
			} else {
				start("")
			}
			timer.Reset(d.untilNext())
		case ev := <-d.feedEvents:
			d.watch.add(ev)
		case <-d.watch.timer.C:
			if running {
				d.watch.due = true // started when the running cycle ends
			} else {
				start("watch")
			}
		case end := <-finished:
			running = false
			reason := end.notReady
			if end.cfg == d.loaded.cfg { // not one of a config reloaded since
				d.baseline = end.baseline
			}
			d.server.ClearDeadline()
			if reason == "" {
				d.accept = nil // the accepted sizes are the last good ones now
				d.lastSuccess = time.Now()
				d.server.SetReady()
				d.expectNextSuccess()
				d.watchSynced()
			} else {
				d.server.SetNotReady(reason)
			}
			if d.watch.due {
				start("watch")
			}
		case <-reload:
			if d.reload() {
				timer.Reset(d.untilNext())
				d.expectNextSuccess()
				d.restartFeeds(ctx)
				d.baseline = nil // its rules and sources may have changed
			}
		case err := <-served:
			if running {
				cancelCycle()
				<-finished
			}
			return err
		case <-ctx.Done():
			d.server.ClearDeadline()
			d.server.SetNotReady(notReadyStopping)
			if running {
				d.drain(finished, cancelCycle, drainTimeout)
			}
			return nil
		}
	}
}

// drain waits for the running cycle to finish, cancelling it once
// timeout has passed.
func (d *daemon) drain(finished <-chan cycleEnd, cancel context.CancelFunc, timeout time.Duration) {
	d.log().Info("stopping: waiting for the running sync run to finish", zap.Duration("drain_timeout", timeout))
	grace := time.NewTimer(timeout)
	defer grace.Stop()
	select {
	case <-finished:
		return
	case <-grace.C:
	}
	d.log().Warn("stopping: the running sync run outlasted --drain-timeout; cancelling it (the next run converges)",
		zap.Duration("drain_timeout", timeout))
	cancel()
	<-finished
}

// staleAfter is how many schedule intervals may pass without a cycle
// that succeeds before the daemon stops calling itself ready: one missed
// or failed cycle is noise, three in a row are not.
const staleAfter = 3

// expectNextSuccess makes readiness lapse when no cycle succeeds within
// staleAfter schedule intervals of the last one that did: cycles that
// hang, or never start, fail no run and would otherwise go unnoticed.
func (d *daemon) expectNextSuccess() {
	if d.lastSuccess.IsZero() {
		return // not ready yet anyway
	}
	interval := scheduleInterval(d.loaded.schedule, time.Now())
	d.server.SetExpiry(d.lastSuccess.Add(staleAfter*interval),
		fmt.Sprintf("no successful sync since %s (%d × schedule)", d.lastSuccess.UTC().Format(time.RFC3339), staleAfter))
}

// scheduleInterval is the gap between the schedule's next two firings
// after now: @every's period, or for a cron spec the one coming up.
func scheduleInterval(s cron.Schedule, now time.Time) time.Duration {
	next := s.Next(now)
	return s.Next(next).Sub(next)
}

// untilNext is the wait for the next scheduled cycle. loadDaemonConfig
// made sure the schedule has one.
func (d *daemon) untilNext() time.Duration {
	return time.Until(d.loaded.schedule.Next(time.Now()))
}

// cycle runs one sync with an engine of its own, so every line the run
// logs carries its run_id, while the metrics carry on across cycles; it is
// cancelled at cycle_timeout. With a baseline (a watch cycle) the sync is
// scoped to the changes the feeds reported since, or a full one where it
// cannot be.
func (d *daemon) cycle(ctx context.Context, loaded daemonConfig, runID string, accept []string, deadline time.Time,
	command string, base *sync.Baseline, changes map[string][]sources.Change) cycleEnd {
	ctx, cancel := context.WithDeadlineCause(ctx, deadline, cycleTimeoutError{loaded.cfg.CycleTimeout})
	defer cancel()
	engine, err := newEngine(loaded.cfg, loaded.log, loaded.log.With(zap.String("run_id", runID)), d.metrics, true)
	if err != nil {
		loaded.log.Error("sync run could not start", zap.String("run_id", runID), zap.Error(err))
		return cycleEnd{notReady: oneLine(fmt.Sprintf("sync run %s could not start: %v", runID, err))}
	}
	engine.Memory = memoryOf(d.state)
	engine.KeepBaseline = loaded.cfg.Watch.Enabled
	opts := sync.RunOptions{RunID: runID, AcceptSourceDrop: accept, Command: command}
	var rep sync.Report
	var next *sync.Baseline
	scoped := false
	if base != nil {
		rep, next, err = engine.RunScoped(ctx, base, changes, opts)
		scoped = !errors.Is(err, sync.ErrFullSyncNeeded)
		if !scoped {
			loaded.log.Info("watch: a full sync instead of a scoped one", zap.String("run_id", runID), zap.Error(err))
		}
	}
	if !scoped {
		rep, err = engine.RunOnce(ctx, opts)
		next = rep.Baseline()
	}
	return cycleEnd{notReady: failedBecause(ctx, runID, rep, err), baseline: next, cfg: loaded.cfg}
}

// failedBecause is why a cycle's run leaves the daemon not ready, or ""
// when it did not fail (a run whose destructive changes were withheld did
// not fail).
func failedBecause(ctx context.Context, runID string, rep sync.Report, err error) string {
	if sync.ExitCode(rep, err) != sync.ExitError {
		return ""
	}
	if err != nil {
		return oneLine(fmt.Sprintf("last sync run %s failed: %v", runID, runError(ctx, err)))
	}
	if rep.StateError != "" {
		return oneLine(fmt.Sprintf("last sync run %s failed: state.dir: %s", runID, rep.StateError))
	}
	c := rep.Result.Counts
	if c.Cancelled > 0 {
		<-ctx.Done() // past its deadline (see sync's Apply) or ended: its cause is set now
		return oneLine(fmt.Sprintf("last sync run %s failed: run cancelled (%v): %d changes cancelled, %d failed",
			runID, context.Cause(ctx), c.Cancelled, c.Failed))
	}
	return fmt.Sprintf("last sync run %s failed: %d of %d changes failed", runID, c.Failed, len(rep.Result.Changes))
}

// reload loads the config file again. A bad file is logged and the
// running config kept; a good one is used from the next cycle on. It
// reports whether the config changed.
func (d *daemon) reload() bool {
	d.log().Info("reloading the config", zap.String("config", d.path))
	next, err := loadDaemonConfig(d.path, d.stderr)
	if err != nil {
		var problems config.Problems
		lines := []string{err.Error()}
		if errors.As(err, &problems) {
			lines = make([]string, len(problems))
			for i, p := range problems {
				lines[i] = p.Error()
			}
		}
		d.log().Error("config reload failed; keeping the running config", zap.String("config", d.path), zap.Strings("problems", lines))
		return false
	}
	if was, now := d.loaded.cfg.Metrics.Listen, next.cfg.Metrics.Listen; was != now {
		next.log.Warn("metrics.listen changed: restart ptsync to listen there; still listening as before",
			zap.String("listening", was), zap.String("configured", now))
	}
	if was, now := d.loaded.cfg.State, next.cfg.State; was != now {
		// The state directory is held for the daemon's life. Without
		// the state it needs, a users.delete_grace deletes nobody.
		next.log.Warn("state changed: restart ptsync to use the new state.dir and keep_reports; still using the state it started with",
			zap.String("using", was.Dir), zap.Int("using_keep_reports", was.KeepReports),
			zap.String("configured", now.Dir), zap.Int("configured_keep_reports", now.KeepReports))
	}
	if statusOf(d.loaded.cfg) != statusOf(next.cfg) {
		next.log.Warn("status changed: restart ptsync to serve the status page with it; still serving it as before")
	}
	d.loaded = next
	next.log.Info("config reloaded; the next sync run uses it", zap.String("config", d.path), zap.String("schedule", next.cfg.Schedule))
	return true
}

// oneLine keeps a multi-line error on /readyz's single line.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", "; ")
}
