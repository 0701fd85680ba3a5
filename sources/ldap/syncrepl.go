package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/sources"
)

// errNoSync says the server does not answer sync searches on the
// configured bases: OpenLDAP lists the sync control in its root DSE as soon
// as the syncprov module is loaded, but only a database with the overlay
// takes the (critical) control; the others answer
// unavailableCriticalExtension, as a server without it does.
var errNoSync = errors.New("the server does not answer sync searches")

// syncSearch is the user or the group search of the sync feed, and where
// its refresh phase is.
type syncSearch struct {
	kind   string // sources.ChangeUser or sources.ChangeGroup
	q      query
	idAttr string
	// cookie is the server's latest for this search.
	cookie []byte
	// resumed: the search started from a cookie, so the entries of its
	// refresh phase are changes; without one they are the whole content.
	resumed bool
	// refreshed: the refresh phase is over, what follows is persisted.
	refreshed bool
	// present: the refresh ran a present phase, which lists the entries
	// still there instead of those deleted (syncprov without a session log
	// covering the cookie).
	present bool
}

// syncMessage is what one sync search received: an entry or an
// intermediate message with their controls, or its end.
type syncMessage struct {
	search   *syncSearch
	entry    *goldap.Entry
	controls []goldap.Control
	ended    bool
	err      error
}

// watchSync follows the sync feed; see followSync.
func (s *Source) watchSync(ctx context.Context, w *watch) error {
	err := s.followSync(ctx, w, w.resume(feedSync))
	if errors.Is(err, errCookieRefused) {
		w.restart(s, err)
		err = s.followSync(ctx, w, w.resume(feedSync))
	}
	return err
}

// followSync runs the user and the group search as RFC 4533 sync searches
// in refreshAndPersist mode, on one connection, until ctx ends or one
// fails. Once both refresh phases are over it sends the established event:
// with the changes since the cookie when resuming, and when resuming
// brought a present phase, a change without ID for each search, since the
// deletions it hides are unknown. Then each persisted entry is an event.
func (s *Source) followSync(ctx context.Context, w *watch, from watchCookie) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := s.connectSync(ctx)
	if err != nil {
		return err
	}
	// In this order: cancelling unblocks the searches and the forwarders,
	// which go-ldap's Close waits for.
	var forwarders sync.WaitGroup
	defer forwarders.Wait()
	defer conn.Close()
	defer cancel()

	us, gs := s.cfg.users, s.cfg.groups
	searches := []*syncSearch{
		{kind: sources.ChangeUser, idAttr: us.idAttr, cookie: from.Users, resumed: from.Users != nil,
			q: query{what: "sync users", base: us.base, scope: us.scope, filter: us.filter}},
		{kind: sources.ChangeGroup, idAttr: gs.idAttr, cookie: from.Groups, resumed: from.Groups != nil,
			q: query{what: "sync groups", base: gs.base, scope: gs.scope, filter: gs.filter}},
	}
	messages := make(chan syncMessage)
	for _, search := range searches {
		req := goldap.NewSearchRequest(search.q.base, search.q.scope, goldap.NeverDerefAliases, 0, 0, false,
			search.q.filter, dedupe([]string{search.idAttr, attrModifyTimestamp}), nil)
		resp := conn.Syncrepl(ctx, req, 64, goldap.SyncRequestModeRefreshAndPersist, search.cookie, false)
		forwarders.Go(func() { forward(ctx, search, resp, messages) })
	}

	established := false
	var caughtUp []sources.Change
	for {
		var m syncMessage
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m = <-messages:
		}
		if m.ended {
			return s.syncEnded(ctx, m, established)
		}
		changes := m.search.read(m)
		if established {
			if len(changes) > 0 {
				if err := w.send(ctx, sources.Event{Changes: changes, Cookie: syncCookie(searches).encode()}); err != nil {
					return err
				}
			}
			continue
		}
		caughtUp = append(caughtUp, changes...)
		if !refreshed(searches) {
			continue
		}
		established = true
		for _, search := range searches {
			if search.resumed && search.present {
				caughtUp = append(caughtUp, sources.Change{Kind: search.kind})
			}
		}
		if err := w.established(ctx, caughtUp, syncCookie(searches)); err != nil {
			return err
		}
		caughtUp = nil
	}
}

// forward sends what resp receives to messages, then its end.
func forward(ctx context.Context, search *syncSearch, resp goldap.Response, messages chan<- syncMessage) {
	for resp.Next() {
		select {
		case messages <- syncMessage{search: search, entry: resp.Entry(), controls: resp.Controls()}:
		case <-ctx.Done():
			return
		}
	}
	select {
	case messages <- syncMessage{search: search, ended: true, err: resp.Err()}:
	case <-ctx.Done():
	}
}

// read takes in one message of the search: its cookie, the end of the
// refresh phase, and the changes it reports, which it returns unless they
// are the content a refresh without cookie lists.
func (search *syncSearch) read(m syncMessage) []sources.Change {
	var changes []sources.Change
	for _, c := range m.controls {
		switch c := c.(type) {
		case *goldap.ControlSyncState:
			search.keep(c.Cookie)
			switch c.State {
			case goldap.SyncStatePresent: // unchanged, in a present phase
			case goldap.SyncStateDelete:
				changes = append(changes, search.deleted(c.EntryUUID.String()))
			default: // added, or modified
				if m.entry != nil { // a hostile server could put the control on an intermediate message
					changes = append(changes, sources.Change{ID: changeID(m.entry, search.idAttr), Kind: search.kind, At: modifiedAt(m.entry)})
				}
			}
		case *goldap.ControlSyncInfo:
			switch {
			case c.NewCookie != nil:
				search.keep(c.NewCookie.Cookie)
			case c.RefreshDelete != nil:
				search.keep(c.RefreshDelete.Cookie)
				search.refreshed = search.refreshed || c.RefreshDelete.RefreshDone
			case c.RefreshPresent != nil:
				search.keep(c.RefreshPresent.Cookie)
				search.present = true
				search.refreshed = search.refreshed || c.RefreshPresent.RefreshDone
			case c.SyncIdSet != nil:
				search.keep(c.SyncIdSet.Cookie)
				if c.SyncIdSet.RefreshDeletes { // else: the entries still present
					for _, id := range c.SyncIdSet.SyncUUIDs {
						changes = append(changes, search.deleted(id.String()))
					}
				}
			}
		}
	}
	if !search.resumed && !search.refreshed {
		return nil
	}
	return changes
}

// deleted is the change for the entry whose entryUUID a deletion names:
// without ID when the snapshots use another id attribute, since the entry
// is gone and cannot be asked for it.
func (search *syncSearch) deleted(entryUUID string) sources.Change {
	ch := sources.Change{Kind: search.kind, Deleted: true}
	if isEntryUUID(search.idAttr) {
		ch.ID = entryUUID
	}
	return ch
}

func (search *syncSearch) keep(cookie []byte) {
	if len(cookie) > 0 {
		search.cookie = cookie
	}
}

func refreshed(searches []*syncSearch) bool {
	for _, search := range searches {
		if !search.refreshed {
			return false
		}
	}
	return true
}

func syncCookie(searches []*syncSearch) watchCookie {
	return watchCookie{Feed: feedSync, Users: searches[0].cookie, Groups: searches[1].cookie}
}

// syncEnded is the error for a sync search that ended: in
// refreshAndPersist mode the server never ends one of its own accord.
func (s *Source) syncEnded(ctx context.Context, m syncMessage, established bool) error {
	search, shown := m.search, s.cfg.shownURL
	switch err := m.err; {
	case ctx.Err() != nil:
		return ctx.Err()
	case err == nil:
		return fmt.Errorf("ldap %s (base %q): %s: the server ended the sync search", shown, search.q.base, search.q.what)
	case !established && search.resumed && answered(err):
		return fmt.Errorf("%w: %w", errCookieRefused, err)
	case !established && goldap.IsErrorWithCode(err, goldap.LDAPResultUnavailableCriticalExtension):
		return fmt.Errorf("%w: %w", errNoSync, err)
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		// Not opError's hint, which is about paged searches.
		return fmt.Errorf("ldap %s (base %q): %s: %w; a sync search returns every entry at once, without paging: give the bind account an unlimited size limit (slapd.conf: limits dn.exact=\"<bind_dn>\" size=unlimited)",
			shown, search.q.base, search.q.what, err)
	}
	return opError(shown, search.q.what, search.q.base, m.err)
}

// connectSync connects and binds as connect does, then hands the
// connection over to go-ldap's client: a persistent search needs its
// reader goroutine, which the fetch's synchronous client does not have.
// The connection stays tied to ctx.
func (s *Source) connectSync(ctx context.Context) (*goldap.Conn, error) {
	ep := s.home()
	conn, _, err := dialTied(ctx, s.cfg.timeout, ep, func(raw net.Conn) (*goldap.Conn, error) {
		bound, err := s.setUp(ep, raw)
		if err != nil {
			return nil, err
		}
		handed, err := bound.detach()
		if err != nil {
			bound.Close()
			return nil, opError(ep.shown, "connect", "", err)
		}
		conn := goldap.NewConn(handed, ep.url.Scheme == "ldaps" || ep.startTLS)
		conn.Start()
		return conn, nil
	})
	return conn, err
}
