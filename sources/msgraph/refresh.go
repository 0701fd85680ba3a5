package msgraph

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
)

// A watch-mode sync re-reads only what the delta feed named
// (sources.Refresher): each changed user by id, and when a group changed,
// the group list (one request per 999 groups: a rename can take a group
// into or out of group_filter) and the members of the groups that changed,
// of the groups they are nested in, and of groups new to the list. The
// rest comes from the memo of the last read, built into a snapshot as
// Fetch builds one.

var _ sources.Refresher = (*Source)(nil)

// maxRefresh is how many changed objects Refresh reads by id: each costs
// a request or more, and a whole read of a large tenant costs tens.
const maxRefresh = 100

// FetchMemo is Fetch, also returning the memo Refresh patches.
func (s *Source) FetchMemo(ctx context.Context) (*sources.Snapshot, sources.Memo, error) {
	m, err := s.read(ctx)
	if err != nil {
		return nil, nil, err
	}
	snap, err := s.build(m)
	if err != nil {
		return nil, nil, err
	}
	return snap, m, nil
}

// Refresh reads again what changes name and returns the snapshot and memo
// of the tenant as it is now (see sources.Refresher).
func (s *Source) Refresh(ctx context.Context, last sources.Memo, changes []sources.Change) (*sources.Snapshot, sources.Memo, error) {
	cannot := func(why string) (*sources.Snapshot, sources.Memo, error) {
		return nil, nil, fmt.Errorf("msgraph: %w: %s", sources.ErrCannotRefresh, why)
	}
	m, _ := last.(*memo)
	if m == nil {
		return cannot("no earlier read of this source to patch")
	}
	userIDs, groupIDs := map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		switch {
		case c.ID == "" || c.Partial:
			return cannot("the change feed did not say which object changed")
		case c.Kind == sources.ChangeUser:
			userIDs[c.ID] = true
		case c.Kind == sources.ChangeGroup:
			groupIDs[c.ID] = true
		default:
			return cannot(fmt.Sprintf("a change of unknown kind %q", c.Kind))
		}
	}
	if n := len(userIDs) + len(groupIDs); n > maxRefresh {
		return cannot(fmt.Sprintf("%d objects changed, more than %d", n, maxRefresh))
	}
	next := m
	if len(userIDs) > 0 {
		users, err := s.readUsers(ctx, slices.Sorted(maps.Keys(userIDs)))
		if err != nil {
			return nil, nil, err
		}
		var why string
		email := func(u graphUser) string { return strings.ToLower(strings.TrimSpace(s.user(u).Email)) }
		if next, why = m.patchUsers(userIDs, users, email); why != "" {
			return cannot(why)
		}
	}
	if len(groupIDs) > 0 {
		var err error
		if next, err = s.refreshGroups(ctx, next, groupIDs); err != nil {
			return nil, nil, err
		}
	}
	snap, err := s.build(next)
	if err != nil {
		return nil, nil, err
	}
	s.log.Debug("msgraph refresh done", zap.Int("users_read", len(userIDs)), zap.Int("groups_changed", len(groupIDs)))
	return snap, next, nil
}

// readUsers reads the users of ids, one request each; a user Graph no
// longer has (deleted) is left out.
func (s *Source) readUsers(ctx context.Context, ids []string) ([]graphUser, error) {
	found := make([]*graphUser, len(ids))
	err := s.eachOf(ctx, len(ids), func(ctx context.Context, i int) error {
		var u graphUser
		_, err := s.api.DecodeJSON(ctx, httpx.Request{Method: http.MethodGet, Route: "/users/{id}",
			Path: "/users/" + url.PathEscape(ids[i]), Query: url.Values{"$select": {userFields}}}, &u)
		var apiErr *httpx.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil
		}
		if err == nil && u.ID != ids[i] {
			err = fmt.Errorf("msgraph: GET /users/%s answered user %q", ids[i], u.ID)
		}
		found[i] = &u
		return err
	})
	if err != nil {
		return nil, err
	}
	var users []graphUser
	for _, u := range found {
		if u != nil {
			users = append(users, *u)
		}
	}
	return users, nil
}

// patchUsers is m with the users of ids read again: in place, dropped when
// gone (and then from every member list: Graph removes a deleted user from
// their groups), or last when new. why says when Graph's order could
// change the snapshot (a changed user sharing an email with another).
func (m *memo) patchUsers(ids map[string]bool, users []graphUser, email func(graphUser) string) (*memo, string) {
	fresh := map[string]graphUser{}
	for _, u := range users {
		fresh[u.ID] = u
	}
	next := &memo{groups: m.groups, members: m.members}
	gone := map[string]bool{}
	for _, u := range m.users {
		switch f, ok := fresh[u.ID]; {
		case !ids[u.ID]:
			next.users = append(next.users, u)
		case ok:
			next.users = append(next.users, f)
			delete(fresh, u.ID)
		default:
			gone[u.ID] = true
		}
	}
	for _, u := range users {
		if _, isNew := fresh[u.ID]; isNew {
			next.users = append(next.users, u)
		}
	}
	emails := map[string]int{}
	for _, u := range next.users {
		emails[email(u)]++
	}
	for _, u := range users {
		if e := email(u); e != "" && emails[e] > 1 {
			return nil, "a changed user shares an email with another user"
		}
	}
	if len(gone) > 0 {
		next.members = make([]memberList, len(m.members))
		for i, l := range m.members {
			if slices.ContainsFunc(l.users, func(id string) bool { return gone[id] }) || slices.ContainsFunc(l.owners, func(id string) bool { return gone[id] }) {
				l.users = slices.DeleteFunc(slices.Clone(l.users), func(id string) bool { return gone[id] })
				l.owners = slices.DeleteFunc(slices.Clone(l.owners), func(id string) bool { return gone[id] })
			}
			next.members[i] = l
		}
	}
	return next, ""
}

// refreshGroups is m with the group list read again, and the members read
// again of every group that changed, holds one that changed (nested), or
// is new to the list; the others keep the members m has.
func (s *Source) refreshGroups(ctx context.Context, m *memo, changed map[string]bool) (*memo, error) {
	groups, err := s.readGroups(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]int, len(m.groups))
	for i, g := range m.groups {
		known[g.ID] = i
	}
	next := &memo{users: m.users, groups: groups, members: make([]memberList, len(groups))}
	var stale []int
	for i, g := range groups {
		j, ok := known[g.ID]
		if !ok || changed[g.ID] || slices.ContainsFunc(m.members[j].groups, func(id string) bool { return changed[id] }) {
			stale = append(stale, i)
			continue
		}
		next.members[i] = m.members[j]
	}
	err = s.eachOf(ctx, len(stale), func(ctx context.Context, k int) (err error) {
		i := stale[k]
		next.members[i], err = s.readMembers(ctx, groups[i].ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}
