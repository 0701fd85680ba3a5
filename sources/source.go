// Package sources holds the model every directory source returns and the
// interface each source type implements. Concrete sources live in
// sub-packages and never import the sync engine.
package sources

import (
	"context"
	"fmt"
	"sort"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
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
// Snapshot.Users) with nested groups already flattened.
type Group struct {
	ID          string
	Name        string
	Description string
	Members     []string
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

// Factory builds a Source from its configuration block.
type Factory func(cfg config.Source, log *zap.Logger) (Source, error)

// Registry maps a source type name (ldap, file, ...) to its factory. The
// command line builds one and passes it in; nothing registers itself.
type Registry map[string]Factory

// New builds the source cfg describes.
func (r Registry) New(cfg config.Source, log *zap.Logger) (Source, error) {
	f, ok := r[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("source %q: type %q is not supported by this build (supported: %v)", cfg.Name, cfg.Type, r.Types())
	}
	return f(cfg, log.With(zap.String("source", cfg.Name)))
}

// Types lists the registered type names, sorted.
func (r Registry) Types() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
