package server

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/ptsync/ptsync/internal/state"
)

// Store is what the status page reads of the state database; *state.DB
// is one. The page only reads: nothing here writes.
type Store interface {
	// Runs returns the newest n runs, newest first.
	Runs(n int) ([]state.Run, error)
	// Report returns the JSON report of run id.
	Report(id string) ([]byte, error)
	// LastGood returns the source sizes of the last healthy runs.
	LastGood() (map[string]state.SourceCount, error)
}

// StateSource gives each page request the state to read, for the length
// of the request.
type StateSource interface {
	// View calls fn with the state.
	View(fn func(Store) error) error
}

// Held is the state of a process that holds it open: the daemon's own,
// which bbolt's exclusive lock keeps any other process from opening.
func Held(db Store) StateSource { return held{db} }

type held struct{ db Store }

func (h held) View(fn func(Store) error) error { return fn(h.db) }

// ErrNoState is wrapped by a Reopen source's error when the state
// directory has no database yet.
var ErrNoState = errors.New("no state database yet")

// DefaultReopenLockTimeout is how long a Reopen source waits for another
// ptsync to release the state, per request: a sync run holds it for its
// length, the daemon for its life, so waiting longer helps nobody.
const DefaultReopenLockTimeout = time.Second

// Reopen is the state of dir for a process that must not hold it (ptsync
// status): each request opens it read-only (state.OpenReadOnly), reads and
// closes it again, so a sync run from cron or a timer can take it between
// two requests. While
// another ptsync holds it, View fails with an error wrapping
// state.ErrInUse; before any run has written one, with one wrapping
// ErrNoState (Reopen never creates a state directory).
// A zero opts.LockTimeout is DefaultReopenLockTimeout.
func Reopen(dir string, opts state.Options) StateSource {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultReopenLockTimeout
	}
	return reopen{dir, opts}
}

type reopen struct {
	dir  string
	opts state.Options
}

func (r reopen) View(fn func(Store) error) error {
	db, err := state.OpenReadOnly(r.dir, r.opts)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w in %s: no run has recorded one there (is state.dir set for the runs?)", ErrNoState, r.dir)
	}
	if err != nil {
		return err
	}
	err = fn(db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("state: close %s: %w", r.dir, cerr)
	}
	return err
}
