package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sync"
)

// stateLockTimeout is how long a command waits for another ptsync to
// release state.dir before it gives up; tests shorten it.
var stateLockTimeout = 2 * time.Second

// clock dates every run and counts users.delete_grace; tests replace it.
var clock = time.Now

// openState opens cfg's state directory, or returns nil when it has none.
// Another ptsync holding it is refused with one line saying so.
func openState(cfg *config.Config) (*state.DB, error) {
	if cfg.State.Dir == "" {
		return nil, nil
	}
	db, err := state.Open(cfg.State.Dir, state.Options{LockTimeout: stateLockTimeout, KeepReports: cfg.State.KeepReports, Now: clock})
	if errors.Is(err, state.ErrInUse) {
		return nil, fmt.Errorf("%w; only one ptsync may use a state directory at a time: wait for the other one (the daemon, or a sync still running) to finish, or stop it", err)
	}
	if err != nil {
		return nil, fmt.Errorf("state.dir %s: %w", cfg.State.Dir, err)
	}
	return db, nil
}

// memoryOf is the engine's Memory over db, or nil (no state) for a nil db.
func memoryOf(db *state.DB) sync.Memory {
	if db == nil {
		return nil
	}
	return stateMemory{db}
}

// stateMemory adapts the state database to what the engine remembers
// through (sync.Memory): sync imports no state package.
type stateMemory struct{ db *state.DB }

func (m stateMemory) LastGood() (map[string]sync.SourceSize, error) {
	counts, err := m.db.LastGood()
	if err != nil {
		return nil, err
	}
	out := make(map[string]sync.SourceSize, len(counts))
	for name, c := range counts {
		out[name] = sync.SourceSize{Users: c.Users, Groups: c.Groups, At: c.At}
	}
	return out, nil
}

func (m stateMemory) SetLastGood(sizes map[string]sync.SourceSize) error {
	counts := make(map[string]state.SourceCount, len(sizes))
	for name, s := range sizes {
		counts[name] = state.SourceCount{Users: s.Users, Groups: s.Groups, At: s.At}
	}
	return m.db.SetLastGood(counts)
}

func (m stateMemory) Missing() (map[string]time.Time, error) { return m.db.Missing() }

func (m stateMemory) UpdateMissing(emails []string) (map[string]time.Time, error) {
	return m.db.UpdateMissing(emails)
}

func (m stateMemory) OwnedTeams() (map[string]bool, bool, error) { return m.db.OwnedTeams() }
func (m stateMemory) OwnTeams(ids ...string) error               { return m.db.OwnTeams(ids...) }
func (m stateMemory) ForgetTeams(ids ...string) error            { return m.db.ForgetTeams(ids...) }

// RecordRun keeps the run's history row and its JSON report.
func (m stateMemory) RecordRun(rep sync.Report) error {
	var report bytes.Buffer
	if err := sync.WriteReport(&report, rep); err != nil {
		return err
	}
	c := rep.Result.Counts
	run := state.Run{
		ID: rep.RunID, Command: rep.Command, DryRun: rep.DryRun, Started: rep.Started, Ended: rep.Ended(),
		Result: rep.Status, Error: rep.Error,
		Counts: state.Counts{Applied: c.Applied, Failed: c.Failed, Withheld: c.Withheld, Cancelled: c.Cancelled, DryRun: c.DryRun},
	}
	if run.Error == "" && rep.StateError != "" {
		run.Error = "state.dir: " + rep.StateError
	}
	if len(rep.Sources) > 0 {
		run.Sources = make(map[string]state.SourceCount, len(rep.Sources))
		for _, s := range rep.Sources {
			run.Sources[s.Name] = state.SourceCount{Users: s.Users, Groups: s.Groups, At: rep.Started}
		}
	}
	return m.db.RecordRun(run, report.Bytes())
}

// sourceList is a repeatable flag of source names.
type sourceList []string

func (l *sourceList) String() string { return strings.Join(*l, ",") }

func (l *sourceList) Set(name string) error {
	*l = append(*l, name)
	return nil
}

// acceptSourceDropFlag adds --accept-source-drop to a command.
func acceptSourceDropFlag(fs *flag.FlagSet) *sourceList {
	var l sourceList
	fs.Var(&l, "accept-source-drop", "accept `SOURCE`'s new, smaller size for this run, past\nsafety.max_source_drop_percent (repeatable; needs state.dir)")
	return &l
}

// commandLine is how a run's history names the command that ran it.
func commandLine(name string, args []string) string {
	return strings.TrimSpace("ptsync " + name + " " + strings.Join(args, " "))
}
