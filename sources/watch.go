package sources

import (
	"context"
	"time"
)

// Watcher is a source with a change feed (watch mode): it reports
// directory changes as they happen, so the daemon syncs within seconds
// instead of waiting for its schedule.
type Watcher interface {
	// Watch follows the source's change feed and sends what changed on
	// events until ctx ends, then returns nil; if the feed fails it
	// returns the error and the daemon calls Watch again, with backoff,
	// from the last cookie it was sent.
	//
	// Once its feed is established, Watch sends an Event (with no
	// changes, or with the first ones): the daemon reports the feed
	// connected from then until Watch returns.
	//
	// opts.Cookie resumes a feed from an Event.Cookie sent earlier,
	// possibly by another process; nil starts from now. A cookie the
	// directory no longer accepts (expired, from another server) is not an
	// error: Watch sends an Event with Reset set and goes on from a fresh
	// feed.
	Watch(ctx context.Context, opts WatchOptions, events chan<- Event) error
}

// WatchOptions are what a feed is started with.
type WatchOptions struct {
	// Cookie resumes the feed (Event.Cookie); nil: from now.
	Cookie []byte
	// Poll is how often a feed that polls (Active Directory's DirSync,
	// Graph delta, Okta's System Log, or an LDAP server without the sync
	// overlay) asks for changes: watch.debounce.
	Poll time.Duration
}

// Event is one batch of changes from a feed.
type Event struct {
	// Changes are the objects the feed says changed.
	Changes []Change
	// Cookie resumes the feed after these changes; nil keeps the last one.
	// The daemon stores it (state.dir) only after a sync that saw them.
	Cookie []byte
	// Reset says the feed could not resume from its cookie and started
	// afresh: changes may have been missed, so a full sync is due.
	Reset bool
}

// Kinds of Change.
const (
	ChangeUser  = "user"
	ChangeGroup = "group"
)

// Change is one directory object a feed reported changed.
type Change struct {
	// ID is the object's id as the source's snapshots carry it (User.ID or
	// Group.ID). Empty when the feed cannot tell which object changed (a
	// polled timestamp moved): a full sync is due.
	ID string
	// Kind is ChangeUser or ChangeGroup; empty when the feed cannot tell.
	Kind string
	// Deleted says the object is gone (or left the feed's scope).
	Deleted bool
	// Partial says the feed does not report every change (a polled
	// modifyTimestamp sees no deletion, nor an entry leaving the search):
	// re-reading the objects it names is not enough, the source is read
	// whole (see Refresher).
	Partial bool
	// At is when the directory says the change was made (modifyTimestamp,
	// whenChanged, the event's published time); zero when the feed does
	// not say, and then the time it was seen is used.
	At time.Time
}

// Send hands ev to the daemon and reports whether it did: false when ctx
// ended first, so a feed never blocks past its cancel.
func Send(ctx context.Context, events chan<- Event, ev Event) bool {
	select {
	case events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
