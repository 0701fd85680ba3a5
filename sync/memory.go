package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// Memory is what ptsync remembers from one run to the next: the state
// database of state.dir. The engine reads it before it plans and writes it
// once a run has ended. A nil Memory is no state, and runs behave as they
// do without one: no shrink check against earlier runs, no delete grace
// (a grace with no memory never ends), and every team carrying ptsync's
// marker counts as ptsync's.
//
// The command line adapts *state.DB to it; sync imports no state package.
type Memory interface {
	// LastGood is each source's size at its last healthy run.
	LastGood() (map[string]SourceSize, error)
	// SetLastGood records sizes; sources not named keep theirs.
	SetLastGood(map[string]SourceSize) error
	// Missing is, per email key, when a healthy run first found that
	// managed PagerTree user absent from every source.
	Missing() (map[string]time.Time, error)
	// UpdateMissing records now for each email not yet missing, forgets
	// every recorded email not in emails, and returns the times after.
	UpdateMissing(emails []string) (map[string]time.Time, error)
	// OwnedTeams are the ids of the teams ptsync created or adopted;
	// recorded is false until OwnTeams was first called.
	OwnedTeams() (ids map[string]bool, recorded bool, err error)
	// OwnTeams adds team ids (and marks the set recorded, even with none).
	OwnTeams(ids ...string) error
	// ForgetTeams removes team ids (deleted teams).
	ForgetTeams(ids ...string) error
	// RecordRun keeps a finished run in the history, with its report.
	RecordRun(rep Report) error
}

// SourceSize is what one source returned.
type SourceSize struct {
	Users, Groups int
	At            time.Time // when the run that saw it started
}

// Remembered is what earlier runs left in the state database, as planning
// needs it. Its zero value, beside a zero DeleteGrace, is planning without
// state.
type Remembered struct {
	// Now is the run's clock; users.delete_grace is counted up to it.
	Now time.Time
	// MissingSince is, per email key, when a healthy run first found the
	// user absent from every source. A leaver not in it is missing since Now.
	MissingSince map[string]time.Time
	// Owned are the ids of the teams ptsync created or adopted. nil means
	// not recorded (no state, or a state directory's first run): then every
	// team carrying ptsync's marker is taken as ptsync's, as without state.
	Owned map[string]bool
}

// PendingDelete is a leaver users.delete_grace keeps for now: not a change
// of this run, shown so nobody is surprised by the delete when it comes.
type PendingDelete struct {
	Email string `json:"email"`
	ID    string `json:"id"`
	// Since is when a healthy run first found them absent from every
	// source; After is Since plus users.delete_grace, from when the delete
	// is planned.
	Since time.Time `json:"missing_since"`
	After time.Time `json:"delete_after"`
}

// Run statuses: what a finished run came to, as the run history records
// it. Each maps to the exit code of the command that ran it: ok 0,
// withheld 3, changes_failed, cancelled and error 1.
const (
	StatusOK            = "ok"
	StatusChangesFailed = "changes_failed"
	StatusWithheld      = "withheld"
	StatusError         = "error"
	StatusCancelled     = "cancelled"
)

// ErrSourceDrop is wrapped by the error of a run a source's shrink stopped
// (safety.max_source_drop_percent).
var ErrSourceDrop = errors.New("a source shrank beyond safety.max_source_drop_percent")

// sourceGate is the shrink check of one run: each source's last good size,
// the limit, and the sources --accept-source-drop lets through.
type sourceGate struct {
	lastGood map[string]SourceSize
	percent  float64
	accept   map[string]bool
}

// check fails a snapshot that is more than the limit smaller, in users or
// in groups, than its source's last good run, unless the source's drop
// was accepted for this run (then it logs that).
func (g sourceGate) check(snap *sources.Snapshot, log *zap.Logger) error {
	last, ok := g.lastGood[snap.Source]
	if g.percent <= 0 || !ok {
		return nil
	}
	var drops []string
	for _, k := range []struct {
		kind      string
		now, then int
	}{{"users", len(snap.Users), last.Users}, {"groups", len(snap.Groups), last.Groups}} {
		if k.then <= 0 || k.now >= k.then {
			continue
		}
		if pct := float64(k.then-k.now) * 100 / float64(k.then); pct > g.percent {
			drops = append(drops, fmt.Sprintf("%d %s, %s fewer than the %d of its last good run", k.now, k.kind, percent(pct), k.then))
		}
	}
	if len(drops) == 0 {
		return nil
	}
	if g.accept[snap.Source] {
		log.Warn("source shrank beyond safety.max_source_drop_percent; accepted for this run (--accept-source-drop)",
			zap.String("source", snap.Source), zap.Int("users", len(snap.Users)), zap.Int("last_good_users", last.Users),
			zap.Int("groups", len(snap.Groups)), zap.Int("last_good_groups", last.Groups), zap.Time("last_good_at", last.At))
		return nil
	}
	return &sourceDropError{fmt.Sprintf("source %q returned %s (%s), beyond safety.max_source_drop_percent (%g%%); nothing was written: check the source's filter and base DN, or if the directory really shrank, accept its new size for one run with --accept-source-drop %s",
		snap.Source, strings.Join(drops, " and "), stamp(last.At), g.percent, snap.Source)}
}

// sourceDropError is the error of a run a source's shrink stopped.
type sourceDropError struct{ msg string }

func (e *sourceDropError) Error() string        { return e.msg }
func (e *sourceDropError) Is(target error) bool { return target == ErrSourceDrop }

// percent writes a share for a message: 40%, 33.3%.
func percent(p float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", p), ".0") + "%"
}

// runMemory writes to the state what one run that is not a dry run
// leaves there: ptsync's teams as they change (on a state directory's
// first run, the marked teams PagerTree holds; after the teams phase, the
// teams it created or adopted; after the team deletes, those it deleted),
// so a run cut short keeps what it wrote; and, once the run has ended
// healthy (status ok or withheld), the sources' sizes and the missing
// users' clocks, so a failed run or a source error never moves them.
// Errors are collected, not fatal: the run goes on and exits 1.
type runMemory struct {
	mem Memory
	log *zap.Logger
	// missing are the leavers the plan found (pending or not).
	missing []string
	errs    []error
}

// newRunMemory is the run's memory writer, or nil when there is no state
// or the run is a dry run (which records its history row only).
func (e *Engine) newRunMemory(log *zap.Logger, dryRun bool, p Plan) *runMemory {
	if e.Memory == nil || dryRun {
		return nil
	}
	return &runMemory{mem: e.Memory, log: log, missing: p.leavers()}
}

// start brings the record of ptsync's teams up to date with cur, the
// account as the run read it (whole), before the run writes anything. On
// a state directory's first run (first) it records every team of cur that
// carries ptsync's marker as ptsync's, once, logging each: ptsync trusts
// what it finds then, and from then on only what it wrote. Later, it
// forgets the recorded teams cur no longer has (deleted by hand), so an
// id PagerTree might hand out again is never trusted.
func (m *runMemory) start(first bool, owned map[string]bool, cur Current) {
	if m == nil {
		return
	}
	if first {
		ids := []string{}
		for _, t := range cur.Teams {
			if mk, ok := ParseMarker(t.Description); ok {
				ids = append(ids, t.ID)
				m.log.Info("state: first run with this state directory; recorded a team carrying ptsync's marker as ptsync's",
					zap.String("team", SafeText(t.Name)), zap.String("id", t.ID), zap.String("marker", SafeText(mk.Key())))
			}
		}
		m.note(m.mem.OwnTeams(ids...))
		return
	}
	present := make(map[string]bool, len(cur.Teams))
	for _, t := range cur.Teams {
		present[t.ID] = true
	}
	var gone []string
	for id := range owned {
		if !present[id] {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		m.log.Info("state: forgot teams ptsync had recorded that PagerTree no longer has", zap.Strings("ids", gone))
		m.note(m.mem.ForgetTeams(gone...))
	}
}

// afterPhase records the teams a phase created or adopted (a write that
// went through, even without some members) and those it deleted.
func (m *runMemory) afterPhase(phase Phase, done []ChangeResult) {
	if m == nil || (phase != PhaseTeams && phase != PhaseDeleteTeams) {
		return
	}
	var ids []string
	for _, r := range done {
		if r.Kind == KindTeam && r.ID != "" && r.written && (r.Op == OpDelete || r.Op == OpCreate || r.Description != "") {
			ids = append(ids, r.ID)
		}
	}
	switch {
	case len(ids) == 0:
	case phase == PhaseTeams:
		m.note(m.mem.OwnTeams(ids...))
	default:
		m.note(m.mem.ForgetTeams(ids...))
	}
}

// end records the sources' sizes and the leavers' clocks after a healthy
// run, and returns every error the run's state writes met.
func (m *runMemory) end(rep Report) error {
	if m == nil {
		return nil
	}
	if runResult(rep, nil) != RunFailure {
		sizes := make(map[string]SourceSize, len(rep.Sources))
		for _, s := range rep.Sources {
			sizes[s.Name] = SourceSize{Users: s.Users, Groups: s.Groups, At: rep.Started}
		}
		m.note(m.mem.SetLastGood(sizes))
		_, err := m.mem.UpdateMissing(m.missing)
		m.note(err)
	}
	return errors.Join(m.errs...)
}

func (m *runMemory) note(err error) {
	if err != nil {
		m.errs = append(m.errs, err)
	}
}

// status is what a run came to (see StatusOK): an error before or instead
// of applying, the state left unwritten, a cancelled or failed change,
// withheld changes, or ok. A dry run is ok unless it failed.
func status(rep Report, err error) string {
	switch {
	case err != nil && isCancel(err):
		return StatusCancelled
	case err != nil || rep.StateError != "":
		return StatusError
	case rep.Result.Counts.Cancelled > 0:
		return StatusCancelled
	case rep.Result.Counts.Failed > 0:
		return StatusChangesFailed
	case rep.Result.Counts.Withheld > 0 && !rep.DryRun:
		return StatusWithheld
	}
	return StatusOK
}

// isCancel reports whether err is a run's context ending (cancelled, or
// at cycle_timeout).
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
