package ldap

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// Watch mode (sources.Watcher) follows one of three change feeds, each
// with a search for users and one for groups, so that every change comes
// with its kind:
//
//   - sync (syncrepl.go): RFC 4533 refreshAndPersist searches, on a server
//     with OpenLDAP's syncprov overlay;
//   - poll (poll.go): modifyTimestamp polled on any other LDAP server;
//   - DirSync (dirsync.go): Active Directory's DirSync control, polled.

var _ sources.Watcher = (*Source)(nil)

// The feeds, as a cookie names them.
const (
	feedSync    = "sync"
	feedPoll    = "poll"
	feedDirSync = "dirsync"
)

// defaultWatchPoll is how often a polled feed asks when WatchOptions.Poll
// is not set.
const defaultWatchPoll = 5 * time.Second

// watchCookie is the source's Event.Cookie: the feed it resumes and where.
// It is JSON so that a cookie of another feed (the server lost its syncprov
// overlay, active_directory was turned on) is told apart and not sent to
// the server.
type watchCookie struct {
	Feed string `json:"feed"`
	// Users and Groups are the server's cookies for the user and the group
	// search (sync and DirSync).
	Users  []byte `json:"users,omitempty"`
	Groups []byte `json:"groups,omitempty"`
	// Mark is the newest modifyTimestamp a poll has seen (poll).
	Mark string `json:"mark,omitempty"`
}

func (c watchCookie) encode() []byte {
	b, _ := json.Marshal(c) // strings and byte slices always marshal
	return b
}

// watch is one call of Watch: where to send events, and the cookie it was
// asked to resume from.
type watch struct {
	events chan<- sources.Event
	poll   time.Duration
	cookie []byte
	// stale is set when the cookie is of no use to the feed that last
	// asked for it (resume); reset once the server refused it (restart).
	// Either way that feed starts afresh, and its first event says so.
	stale, reset bool
}

// errCookieRefused wraps the server's answer to a search that resumed
// from a cookie and failed before its feed was established: whatever the
// server's reason (OpenLDAP answers e-syncRefreshRequired or
// unwillingToPerform, Samba unavailableCriticalExtension), the feed starts
// again without the cookie, and only once that one is established does its
// first event carry Reset; if it fails too, its error is returned.
var errCookieRefused = errors.New("the server refused the cookie")

// Watch follows the directory's change feed (see sources.Watcher): sync
// when the server supports it, else polling; DirSync on Active Directory.
func (s *Source) Watch(ctx context.Context, opts sources.WatchOptions, events chan<- sources.Event) error {
	w := &watch{events: events, poll: opts.Poll, cookie: opts.Cookie}
	if w.poll <= 0 {
		w.poll = defaultWatchPoll
	}
	var err error
	if s.cfg.ad {
		err = s.watchDirSync(ctx, w)
	} else {
		err = s.watchSync(ctx, w)
		if errors.Is(err, errNoSync) {
			s.log.Info("the LDAP server does not answer sync searches (no syncprov overlay on the database): watch polls modifyTimestamp instead, and does not see deletions",
				zap.String("url", s.cfg.shownURL), zap.Duration("every", w.poll))
			err = s.watchPoll(ctx, w)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// resume returns the cookie w was asked to resume from when feed made it;
// any other cookie (another feed's, or one that does not parse) cannot be
// used, and the feed starts afresh. A server without syncprov is first
// asked for the sync feed, then polled: whether a cookie is stale is up to
// the feed that runs.
func (w *watch) resume(feed string) watchCookie {
	fresh := watchCookie{Feed: feed}
	w.stale = false
	if w.cookie == nil {
		return fresh
	}
	var c watchCookie
	if err := json.Unmarshal(w.cookie, &c); err != nil || c.Feed != feed {
		w.stale = true
		return fresh
	}
	return c
}

// restart forgets the cookie after the server refused it (errCookieRefused),
// so that the feed starts afresh and its first event says so.
func (w *watch) restart(s *Source, err error) {
	s.log.Info("the directory could not resume the change feed from its cookie: starting afresh, changes made meanwhile are synced in full",
		zap.String("url", s.cfg.shownURL), zap.Error(err))
	w.cookie, w.reset = nil, true
}

// send hands ev to the daemon, or returns ctx's error when it ends first.
func (w *watch) send(ctx context.Context, ev sources.Event) error {
	if !sources.Send(ctx, w.events, ev) {
		return ctx.Err()
	}
	return nil
}

// every calls poll every w.poll until ctx ends or poll fails, and sends
// the changes it reports with the cookie after them: the loop of the
// polled feeds (DirSync, modifyTimestamp).
func (w *watch) every(ctx context.Context, poll func() ([]sources.Change, watchCookie, error)) error {
	tick := time.NewTicker(w.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		changes, cookie, err := poll()
		if err != nil {
			return err
		}
		if len(changes) > 0 {
			if err := w.send(ctx, sources.Event{Changes: changes, Cookie: cookie.encode()}); err != nil {
				return err
			}
		}
	}
}

// established is the feed's first event: its cookie, the changes a resumed
// feed caught up with, and whether the cookie had to be dropped.
func (w *watch) established(ctx context.Context, changes []sources.Change, cookie watchCookie) error {
	return w.send(ctx, sources.Event{Changes: changes, Cookie: cookie.encode(), Reset: w.reset || w.stale})
}

// answered reports whether err is an LDAP result the server sent, rather
// than a failure to reach it.
func answered(err error) bool {
	var le *goldap.Error
	return errors.As(err, &le) && (le.ResultCode < goldap.ErrorNetwork || le.ResultCode == goldap.LDAPResultSyncRefreshRequired)
}

// changeID is the id a change carries: the one a snapshot gives e (see
// entryID), or "" when e does not say it, which asks for a full sync.
func changeID(e *goldap.Entry, idAttr string) string {
	id, err := entryID(e, idAttr)
	if err != nil {
		return ""
	}
	return id
}

// modifiedAt reads e's modifyTimestamp; zero when it has none.
func modifiedAt(e *goldap.Entry) time.Time {
	at, err := ber.ParseGeneralizedTime([]byte(e.GetEqualFoldAttributeValue(attrModifyTimestamp)))
	if err != nil {
		return time.Time{}
	}
	return at
}

const attrModifyTimestamp = "modifyTimestamp"

// isEntryUUID reports whether the id attribute is entryUUID, the one a
// sync deletion names an entry by.
func isEntryUUID(idAttr string) bool { return strings.EqualFold(idAttr, "entryUUID") }
