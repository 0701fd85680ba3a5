package main

import (
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
	return state.Memory{DB: db}
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
