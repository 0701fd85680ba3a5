package msgraph

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"

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
	next, err := s.refresh(ctx, last, changes)
	if err != nil {
		return nil, nil, fmt.Errorf("msgraph: %w", err)
	}
	snap, err := s.build(next)
	if err != nil {
		return nil, nil, err
	}
	return snap, next, nil
}

// refresh is the memo of the tenant as it is now: last with what changes
// name read again.
func (s *Source) refresh(ctx context.Context, last sources.Memo, changes []sources.Change) (*memo, error) {
	m, _ := last.(*memo)
	if m == nil {
		return nil, sources.CannotRefresh("no earlier read of this source to patch")
	}
	userIDs, groupIDs, err := sources.ChangedIDs(changes, maxRefresh)
	if err != nil {
		return nil, err
	}
	next := m
	if len(userIDs) > 0 {
		if next, err = s.refreshUsers(ctx, m, userIDs); err != nil {
			return nil, err
		}
	}
	if len(groupIDs) > 0 {
		if next, err = s.refreshGroups(ctx, next, groupIDs); err != nil {
			return nil, err
		}
	}
	s.log.Debug("msgraph refresh done", zap.Int("users_read", len(userIDs)), zap.Int("groups_changed", len(groupIDs)))
	return next, nil
}

// refreshUsers is m with the users of ids read again, one request each: in
// place, dropped when gone (and then from every member list: Graph takes a
// deleted user out of their groups), or last when new.
func (s *Source) refreshUsers(ctx context.Context, m *memo, ids map[string]bool) (*memo, error) {
	sorted := slices.Sorted(maps.Keys(ids))
	reqs := make([]httpx.Request, len(sorted))
	for i, id := range sorted {
		reqs[i] = httpx.Request{Method: http.MethodGet, Route: "/users/{id}", Path: "/users/" + url.PathEscape(id),
			Query: url.Values{"$select": {userFields}}}
	}
	found, err := httpx.GetEach[graphUser](ctx, s.api, reqs)
	if err != nil {
		return nil, err
	}
	var users []graphUser
	present := map[string]bool{}
	for i, u := range found {
		if u == nil {
			continue
		}
		if u.ID != sorted[i] {
			return nil, fmt.Errorf("GET /users/%s answered user %q", sorted[i], u.ID)
		}
		users = append(users, *u)
		present[u.ID] = true
	}
	next := &memo{users: sources.Patch(m.users, func(u graphUser) string { return u.ID }, ids, users), groups: m.groups, members: m.members}
	if sources.SharesEmail(next.users, users, func(u graphUser) string { return s.user(u).Email }) {
		return nil, sources.CannotRefresh("a changed user shares an email with another user")
	}
	if len(users) == len(ids) {
		return next, nil // nobody gone
	}
	gone := func(id string) bool { return ids[id] && !present[id] }
	next.members = make([]memberList, len(m.members))
	for i, l := range m.members {
		if slices.ContainsFunc(l.users, gone) || slices.ContainsFunc(l.owners, gone) {
			l.users = slices.DeleteFunc(slices.Clone(l.users), gone)
			l.owners = slices.DeleteFunc(slices.Clone(l.owners), gone)
		}
		next.members[i] = l
	}
	return next, nil
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
	members, err := s.members(ctx, groups, func(g graphGroup) (memberList, bool) {
		j, ok := known[g.ID]
		if !ok || changed[g.ID] || slices.ContainsFunc(m.members[j].groups, func(id string) bool { return changed[id] }) {
			return memberList{}, false
		}
		return m.members[j], true
	})
	if err != nil {
		return nil, err
	}
	return &memo{users: m.users, groups: groups, members: members}, nil
}
