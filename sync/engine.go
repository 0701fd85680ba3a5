package sync

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ptsync/ptsync/sources"
)

// Process exit codes a run maps to (SPEC.md "Command line"). The plan
// command's 2 (changes found) is the command's own business.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitWithheld = 3
)

// ErrStalePlan is returned by ApplyPlan when PagerTree changed since the
// plan was made.
var ErrStalePlan = errors.New("PagerTree changed since the plan was made")

// Engine runs sync cycles: fetch every source, read PagerTree, plan, apply.
// One Engine runs one cycle at a time.
type Engine struct {
	// Sources in configuration order: where users merge, the first
	// source's name and phone win.
	Sources   []sources.Source
	PagerTree PagerTree
	Policy    Policy
	// MinSourceUsers is safety.min_source_users: a source returning fewer
	// users aborts the run before any write.
	MinSourceUsers int
	// Concurrency is the number of writes in flight inside a phase.
	Concurrency int
	Metrics     *Metrics    // nil: no metrics
	Logger      *zap.Logger // nil: no logs; each run adds its run_id
	// Memory is the state database (state.dir); nil: no state (see Memory).
	Memory Memory
	// MaxSourceDropPercent is safety.max_source_drop_percent: a source
	// returning that much fewer users or groups than at its last healthy
	// run (Memory.LastGood) aborts the run before any write. 0, or no
	// Memory: no check.
	MaxSourceDropPercent float64
	// Now is the clock runs are dated by and users.delete_grace counted
	// on; nil: time.Now. Durations are measured on the monotonic clock.
	Now func() time.Time
	// KeepBaseline makes RunOnce leave a Baseline in its report (see
	// Report.Baseline), for watch mode's scoped syncs.
	KeepBaseline bool
}

// RunOptions are the switches of one run.
type RunOptions struct {
	DryRun bool
	// AllowDestructive lifts the safety limits for this run only.
	AllowDestructive bool
	// RunID names the run in every log line; NewRunID() when empty. Pass
	// one when the sources and PagerTree client log with it too.
	RunID string
	// AcceptSourceDrop names sources whose shrink beyond
	// safety.max_source_drop_percent this run accepts
	// (--accept-source-drop): their new size becomes the last good one
	// once the run ends healthy.
	AcceptSourceDrop []string
	// Command is the command line that ran the run, for its history.
	Command string
}

// SourceReport is what one source returned.
type SourceReport struct {
	Name    string         `json:"name"`
	Users   int            `json:"users"`
	Groups  int            `json:"groups"`
	Skipped map[string]int `json:"skipped"`
}

// Timings are where a run's time went.
type Timings struct {
	Fetch time.Duration // all sources, concurrently
	Read  time.Duration // listing PagerTree
	Plan  time.Duration // desired state and plan
	Apply time.Duration
	Total time.Duration
}

// Report is one run: what was read, planned and done.
type Report struct {
	RunID string
	// Command is the command line that ran it (RunOptions.Command).
	Command string
	DryRun  bool
	Started time.Time // by Engine.Now
	Sources []SourceReport
	Plan    Plan
	Result  Result
	Timings Timings
	// Status is what the run came to (StatusOK, ...), set when it ends.
	Status string
	// Error is why the run failed before or instead of applying.
	Error string
	// StateError says what the run could not write to the state
	// database (state.dir); the run then exits 1.
	StateError string
	// began is when the run started on the monotonic clock.
	began time.Time
	// baseline is what the run leaves for a scoped one (KeepBaseline).
	baseline *Baseline
}

// Baseline is what a run made with Engine.KeepBaseline leaves for the next
// scoped sync: nil for a dry run, or one that failed or had a change fail.
func (r Report) Baseline() *Baseline { return r.baseline }

// Prepared is a run up to its plan: everything read and decided, nothing
// written. explain reads it; RunOnce applies it.
type Prepared struct {
	RunID     string
	Snapshots []*sources.Snapshot
	Current   Current
	Desired   Desired
	Policy    Policy
	// Remembered is what the state database held for the plan.
	Remembered Remembered
	Plan       Plan
	Timings    Timings
	// first says the state database has no record of ptsync's teams
	// yet: this is its first run (see runMemory.start).
	first bool
	// memos are what the sources that can be refreshed kept of this read,
	// by source name (Engine.KeepBaseline).
	memos *memos
}

// NewRunID returns a random id for a run.
func NewRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Prepare fetches every source and the PagerTree account and makes the
// plan. It writes nothing. A source that fails, or returns fewer users
// than MinSourceUsers, fails it.
func (e *Engine) Prepare(ctx context.Context, opts RunOptions) (*Prepared, error) {
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	start := time.Now()
	prep, err := e.prepare(ctx, opts, e.logger().With(zap.String("run_id", opts.RunID)))
	e.Metrics.observePlanRun(prep, err, start)
	if err != nil {
		return nil, err
	}
	return prep, nil
}

// prepare is Prepare. On an error it returns what it got that far too: a
// failed run's report still says what the sources it read returned (a
// source the shrink check stopped included).
func (e *Engine) prepare(ctx context.Context, opts RunOptions, log *zap.Logger) (*Prepared, error) {
	prep := &Prepared{RunID: opts.RunID, Policy: e.Policy}
	prep.Policy.AllowDestructive = prep.Policy.AllowDestructive || opts.AllowDestructive
	gate, err := e.recall(prep, opts)
	if err != nil {
		return prep, err
	}

	// The sources and PagerTree are read at once: the run takes as long as
	// the slower of the two, not their sum. Prepare writes nothing, and the
	// first failure cancels the other read.
	read := sourceReader(fetchWhole)
	if e.KeepBaseline {
		prep.memos = &memos{}
		read = prep.memos.fetch
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		start := time.Now()
		snaps, err := e.fetch(gctx, log, gate, read)
		prep.Snapshots, prep.Timings.Fetch = snaps, time.Since(start)
		return err
	})
	g.Go(func() error {
		start := time.Now()
		cur, err := readCurrent(gctx, e.PagerTree)
		prep.Current, prep.Timings.Read = cur, time.Since(start)
		if err == nil {
			log.Info("read PagerTree", zap.Int("users", len(cur.Users)), zap.Int("teams", len(cur.Teams)),
				zap.Duration("duration", prep.Timings.Read))
		}
		return err
	})
	if err := g.Wait(); err != nil {
		return prep, err
	}

	start := time.Now()
	if prep.Desired, err = BuildDesired(prep.Snapshots, prep.Policy); err != nil {
		return prep, fmt.Errorf("desired state: %w", err)
	}
	prep.Plan = PlanWith(prep.Current, prep.Desired, prep.Policy, prep.Remembered)
	prep.Plan.Skipped = SkippedBySource(prep.Snapshots)
	prep.Timings.Plan = time.Since(start)
	e.Metrics.observePending(prep.Plan.Changes, prep.Plan.Withheld)
	logPlan(log, prep.Plan, prep.Timings.Plan)
	return prep, nil
}

// RunOnce runs one cycle: Prepare, then Apply (which, with opts.DryRun,
// writes nothing). The error is for a run that could not plan (a source or
// PagerTree failed, a configuration error); failed changes are in the
// report's Result, not in the error.
func (e *Engine) RunOnce(ctx context.Context, opts RunOptions) (Report, error) {
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	log := e.logger().With(zap.String("run_id", opts.RunID))
	rep := e.newReport(opts)
	log.Info("sync run started", zap.Bool("dry_run", opts.DryRun), zap.Bool("allow_destructive", opts.AllowDestructive),
		zap.Int("sources", len(e.Sources)))

	prep, err := e.prepare(ctx, opts, log)
	rep.Sources = sourceReports(prep.Snapshots)
	if err != nil {
		return e.finish(log, rep, nil, err)
	}
	rep.Plan, rep.Timings = prep.Plan, prep.Timings
	mem := e.newRunMemory(log, opts.DryRun, prep.Plan)
	mem.start(prep.first, prep.Remembered.Owned, prep.Current)
	cur, p := prep.Current, prep.Plan
	var want Desired
	var kept *memos
	if e.KeepBaseline {
		want, kept = prep.Desired, prep.memos
	}
	// Apply needs only the account and the plan: letting the snapshots and
	// desired state go keeps a large run's peak memory down.
	prep = nil
	start := time.Now()
	rep.Result = Apply(ctx, e.PagerTree, cur, p, e.applyOptions(opts.DryRun, log, mem))
	rep.Timings.Apply = time.Since(start)
	rep, err = e.finish(log, rep, mem, nil)
	if e.KeepBaseline && err == nil && !opts.DryRun && runResult(rep, nil) != RunFailure {
		rep.baseline = newBaseline(want, cur, p, rep.Result)
		rep.baseline.memos = kept.done()
	}
	return rep, err
}

// newReport starts the report of a run.
func (e *Engine) newReport(opts RunOptions) Report {
	return Report{RunID: opts.RunID, Command: opts.Command, DryRun: opts.DryRun, Started: e.now(), began: time.Now()}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// ApplyPlan applies a saved plan without trusting it. It plans afresh from
// the sources and PagerTree, under the saved plan's --allow-destructive,
// and refuses the whole plan, writing nothing, when PagerTree changed since
// the plan was made (ErrStalePlan: its fingerprint no longer matches) or
// when any saved change is not one the fresh plan makes (ErrPlanRefused,
// see VerifySaved). So whatever the file says, Apply only ever gets part of
// what a sync would do now. Withheld changes are the fresh plan's, and stay
// withheld. Where the plan was made is the caller's to check (CheckOrigin).
func (e *Engine) ApplyPlan(ctx context.Context, p Plan, opts RunOptions) (Report, error) {
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	log := e.logger().With(zap.String("run_id", opts.RunID))
	rep := e.newReport(opts)
	rep.Plan = p
	log.Info("applying a saved plan", zap.Bool("dry_run", opts.DryRun), zap.String("fingerprint", p.Fingerprint),
		zap.Bool("allow_destructive", p.Origin.AllowDestructive))

	opts.AllowDestructive = p.Origin.AllowDestructive
	prep, err := e.prepare(ctx, opts, log)
	rep.Sources = sourceReports(prep.Snapshots)
	if err != nil {
		return e.finish(log, rep, nil, err)
	}
	rep.Timings = prep.Timings
	if saved, now := p.Origin.AccountID, prep.Current.AccountID; saved != "" && saved != now {
		return e.finish(log, rep, nil, fmt.Errorf("%w: it was made for PagerTree account %s, and this one is %s; make a new plan",
			ErrPlanRefused, SafeText(saved), cmp.Or(SafeText(now), "not known (it lists nothing)")))
	}
	if now := prep.Plan.Fingerprint; now != p.Fingerprint {
		return e.finish(log, rep, nil, fmt.Errorf("%w (plan %s, PagerTree now %s): make a new plan with ptsync plan --out",
			ErrStalePlan, shortHash(p.Fingerprint), shortHash(now)))
	}
	verified, err := VerifySaved(p, prep.Plan, prep.Current)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			for _, r := range refused.Refusals {
				log.Error("saved change refused", changeFields(r.Change, zap.String("reason", r.Why))...)
			}
		}
		return e.finish(log, rep, nil, err)
	}
	rep.Plan = verified
	// The fresh plan's leavers: the saved plan may carry only part of
	// its deletes, and the clocks are about who is missing now.
	mem := e.newRunMemory(log, opts.DryRun, prep.Plan)
	mem.start(prep.first, prep.Remembered.Owned, prep.Current)
	cur := prep.Current
	prep = nil // as in RunOnce: Apply needs only the account and the plan
	start := time.Now()
	rep.Result = Apply(ctx, e.PagerTree, cur, verified, e.applyOptions(opts.DryRun, log, mem))
	rep.Timings.Apply = time.Since(start)
	return e.finish(log, rep, mem, nil)
}

func (e *Engine) applyOptions(dryRun bool, log *zap.Logger, mem *runMemory) ApplyOptions {
	opt := ApplyOptions{DryRun: dryRun, Concurrency: e.Concurrency, Log: log, Metrics: e.Metrics}
	if mem != nil {
		opt.AfterPhase = mem.afterPhase
	}
	return opt
}

// recall reads what the state database holds for the run into
// prep.Remembered and returns the run's shrink check. The sources named by
// --accept-source-drop must be sources of the run, and need a state.
func (e *Engine) recall(prep *Prepared, opts RunOptions) (sourceGate, error) {
	prep.Remembered = Remembered{Now: e.now()}
	gate := sourceGate{percent: e.MaxSourceDropPercent, accept: map[string]bool{}}
	names := make([]string, len(e.Sources))
	for i, src := range e.Sources {
		names[i] = src.Name()
	}
	for _, name := range opts.AcceptSourceDrop {
		if !slices.Contains(names, name) {
			return gate, fmt.Errorf("--accept-source-drop %s: no source of that name (sources: %s)", SafeText(name), strings.Join(names, ", "))
		}
		gate.accept[name] = true
	}
	if e.Memory == nil {
		if len(opts.AcceptSourceDrop) > 0 {
			return gate, errors.New("--accept-source-drop needs state.dir: without the state database there is no last good size to compare a source with, so there is nothing to accept")
		}
		return gate, nil
	}
	var err error
	if gate.lastGood, err = e.Memory.LastGood(); err != nil {
		return gate, fmt.Errorf("state.dir: %w", err)
	}
	if prep.Remembered.MissingSince, err = e.Memory.Missing(); err != nil {
		return gate, fmt.Errorf("state.dir: %w", err)
	}
	owned, recorded, err := e.Memory.OwnedTeams()
	if err != nil {
		return gate, fmt.Errorf("state.dir: %w", err)
	}
	if !recorded {
		prep.first = true
	} else {
		if owned == nil {
			owned = map[string]bool{}
		}
		prep.Remembered.Owned = owned
	}
	return gate, nil
}

// finish writes what the run leaves in the state database (mem; nil when
// it did not plan, or is a dry run) and its history row, logs the end of
// the run and records its metrics.
func (e *Engine) finish(log *zap.Logger, rep Report, mem *runMemory, err error) (Report, error) {
	rep.Timings.Total = time.Since(rep.began)
	if serr := mem.end(rep); serr != nil {
		rep.StateError = serr.Error()
		log.Error("the run could not write its state to state.dir; the run counts as failed", zap.Error(serr))
	}
	if err != nil {
		rep.Error = err.Error()
	}
	rep.Status = status(rep, err)
	if e.Memory != nil {
		if rerr := e.Memory.RecordRun(rep); rerr != nil {
			log.Error("the run could not be recorded in state.dir's history; the run counts as failed", zap.Error(rerr))
			rep.StateError = strings.TrimPrefix(rep.StateError+"; ", "; ") + rerr.Error()
			rep.Status = status(rep, err)
		}
	}
	result := runResult(rep, err)
	e.Metrics.observeRun(result, rep.Timings.Total, time.Now(), rep.DryRun)
	fields := []zap.Field{zap.String("result", result), zap.String("status", rep.Status), zap.Bool("dry_run", rep.DryRun),
		zap.Int("applied", rep.Result.Counts.Applied), zap.Int("failed", rep.Result.Counts.Failed),
		zap.Int("withheld", rep.Result.Counts.Withheld), zap.Int("cancelled", rep.Result.Counts.Cancelled),
		zap.Duration("duration", rep.Timings.Total)}
	if err != nil {
		log.Error("sync run failed; nothing was written", append(fields, zap.Error(err))...)
		return rep, err
	}
	log.Info("sync run finished", fields...)
	return rep, nil
}

// fetch reads every source at once. The first failure cancels the others
// and fails the run: no partial directory is ever planned against. On a
// failure it returns, beside the error, the snapshots it has (nil where a
// source did not answer), a source that failed a safety check included,
// for the run's report.
func (e *Engine) fetch(ctx context.Context, log *zap.Logger, gate sourceGate, read sourceReader) ([]*sources.Snapshot, error) {
	snaps := make([]*sources.Snapshot, len(e.Sources))
	refreshed := make([]bool, len(e.Sources))
	g, gctx := errgroup.WithContext(ctx)
	for i, src := range e.Sources {
		g.Go(func() error {
			start := time.Now()
			snap, patched, err := read(gctx, src)
			if err != nil {
				return fmt.Errorf("source %q: %w", src.Name(), err)
			}
			if snap.Source == "" {
				snap.Source = src.Name()
			}
			snaps[i], refreshed[i] = snap, patched
			if n := len(snap.Users); n < e.MinSourceUsers {
				return fmt.Errorf("source %q returned %d users, fewer than safety.min_source_users (%d); nothing was written: check the source's filter and base DN",
					src.Name(), n, e.MinSourceUsers)
			}
			if err := gate.check(snap, log); err != nil {
				return err
			}
			msg := "fetched source"
			if patched {
				msg = "refreshed source" // only what its feed said changed was read
			}
			log.Info(msg, zap.String("source", src.Name()), zap.Int("users", len(snap.Users)),
				zap.Int("groups", len(snap.Groups)), zap.Any("skipped", snap.Skipped), zap.Duration("duration", time.Since(start)))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return snaps, err
	}
	// Recorded only once every source is healthy, so a failed run leaves
	// the last good counts in place.
	for i, s := range snaps {
		e.Metrics.observeSource(s, refreshed[i])
	}
	return snaps, nil
}

// readCurrent lists PagerTree's users and teams at once.
func readCurrent(ctx context.Context, r Reader) (Current, error) {
	var cur Current
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		users, err := r.ListUsers(gctx)
		if err != nil {
			return fmt.Errorf("list PagerTree users: %w", err)
		}
		cur.Users = users
		return nil
	})
	g.Go(func() error {
		teams, err := r.ListTeams(gctx)
		if err != nil {
			return fmt.Errorf("list PagerTree teams: %w", err)
		}
		cur.Teams = teams
		return nil
	})
	if err := g.Wait(); err != nil {
		return Current{}, err
	}
	id, err := accountOf(cur)
	cur.AccountID = id
	return cur, err
}

// accountOf is the one account the listed objects carry, or "" (v3, or
// an empty account). Objects of two accounts mean the listing is not of
// one account, and nothing can be planned from it.
func accountOf(cur Current) (string, error) {
	id := ""
	check := func(other string) error {
		switch {
		case other == "" || other == id:
		case id == "":
			id = other
		default:
			return fmt.Errorf("PagerTree listed objects of two accounts (%s and %s); a run plans against one account", SafeText(id), SafeText(other))
		}
		return nil
	}
	for _, u := range cur.Users {
		if err := check(u.AccountID); err != nil {
			return "", err
		}
	}
	for _, t := range cur.Teams {
		if err := check(t.AccountID); err != nil {
			return "", err
		}
	}
	return id, nil
}

// logPlan logs the plan's totals, and each conflict and withheld change.
func logPlan(log *zap.Logger, p Plan, d time.Duration) {
	log.Info("plan made", zap.Int("create", p.Summary.Create), zap.Int("update", p.Summary.Update),
		zap.Int("delete", p.Summary.Delete), zap.Int("withheld", len(p.Withheld)),
		zap.Int("conflicts", len(p.Conflicts)), zap.Int("pending_deletes", len(p.PendingDeletes)),
		zap.Int("destructive", p.Destructive), zap.Int("base", p.Base),
		zap.Duration("duration", d))
	for _, c := range p.Conflicts {
		if c.User != "" {
			log.Warn("users left alone", zap.String("email", c.User), zap.String("reason", c.Reason))
			continue
		}
		log.Warn("team left alone", zap.String("team", c.Team), zap.String("reason", c.Reason))
	}
}

// ExitCode maps a run to the process exit code: 1 when it failed, any
// change failed or it was cancelled before its end, 3 when destructive
// changes were withheld, else 0.
func ExitCode(rep Report, err error) int {
	switch runResult(rep, err) {
	case RunFailure:
		return ExitError
	case RunWithheld:
		return ExitWithheld
	}
	return ExitOK
}

// runResult is what a run came to, the one place that decides it: failure
// (an error, a failed change, a cancelled one), withheld, or success.
func runResult(rep Report, err error) string {
	switch {
	case err != nil || rep.StateError != "" || rep.Result.Counts.Failed > 0 || rep.Result.Counts.Cancelled > 0:
		return RunFailure
	case rep.Result.Counts.Withheld > 0:
		return RunWithheld
	}
	return RunSuccess
}

func (e *Engine) logger() *zap.Logger {
	if e.Logger == nil {
		return zap.NewNop()
	}
	return e.Logger
}

// shortHash keeps a fingerprint readable in a one-line error.
func shortHash(fp string) string {
	const keep = len("sha256:") + 12
	if len(fp) > keep {
		return fp[:keep]
	}
	return fp
}

// sourceReports is what each snapshot holds, for a run's report.
func sourceReports(snaps []*sources.Snapshot) []SourceReport {
	var out []SourceReport
	for _, s := range snaps {
		if s == nil {
			continue
		}
		out = append(out, SourceReport{Name: s.Source, Users: len(s.Users), Groups: len(s.Groups), Skipped: s.Skipped})
	}
	return out
}
