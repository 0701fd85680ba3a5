// Package sources holds the model every directory source returns and the
// interface each source type implements. Concrete sources live in
// sub-packages and never import the sync engine.
package sources

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// User is one person as a directory reports them.
type User struct {
	// ID is the directory's stable id: entryUUID, objectGUID, a Graph id.
	ID       string
	Email    string
	Name     string
	Phone    string
	Disabled bool
}

// Group is one directory group. Members holds user IDs (keys of
// Snapshot.Users) with nested groups already flattened; Owners holds the
// user IDs of the group's owners where the source reads them (the natural
// admins of its team).
type Group struct {
	ID          string
	Name        string
	Description string
	Members     []string
	Owners      []string
}

// Snapshot is everything one source returned in one fetch. A Snapshot is
// only ever returned whole: a source that fails part way returns an error
// and no snapshot.
type Snapshot struct {
	Source string
	Users  map[string]User // keyed by User.ID
	Groups []Group
	// Skipped counts entries left out, by reason (see the Skip* constants).
	Skipped map[string]int
}

// Reasons a source leaves an entry out of a Snapshot. An entry a source
// cannot read is not among them: it fails the fetch, since the sync would
// take a user or group left out for one removed and delete it downstream.
const (
	SkipNoEmail        = "no_email"
	SkipInvalidEmail   = "invalid_email" // not a plain address (net/mail), which PagerTree refuses
	SkipDuplicateEmail = "duplicate_email"
	SkipOutsideScope   = "outside_scope" // a member outside the user search
)

// NewSnapshot returns an empty snapshot for the named source.
func NewSnapshot(source string) *Snapshot {
	return &Snapshot{Source: source, Users: map[string]User{}, Skipped: map[string]int{}}
}

// Skip counts one entry left out for reason.
func (s *Snapshot) Skip(reason string) { s.Skipped[reason]++ }

// Source is one configured directory.
type Source interface {
	Name() string
	// Fetch reads the whole directory view the source is configured for.
	Fetch(ctx context.Context) (*Snapshot, error)
}

// Checker is implemented by sources that can test their connection and
// credentials without a full fetch (ptsync validate --connect).
type Checker interface {
	Check(ctx context.Context) error
}

// Options is what every source is built with besides its settings.
type Options struct {
	Log *zap.Logger
	// Observer, when set, is told of every HTTP request an API source
	// makes and of every retry.
	Observer Observer
	// ReadOwners asks for each group's owners (Group.Owners), which cost a
	// request per group on the API sources: set when a team rule makes
	// them team admins.
	ReadOwners bool
}

// Logger is o.Log, or a logger that drops everything when there is none.
func (o Options) Logger() *zap.Logger {
	if o.Log == nil {
		return zap.NewNop()
	}
	return o.Log
}

// Observer receives one call per HTTP request attempt (code 0: no answer)
// and one per retry.
type Observer interface {
	ObserveRequest(method, route string, code int, d time.Duration)
	ObserveRetry(reason string)
}

// Factory builds the source called name from settings, its type's own
// configuration block (already completed and checked by the loader).
type Factory func(name string, settings any, opts Options) (Source, error)
