package okta

import (
	"context"
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

// A watch-mode sync re-reads only what the System Log named
// (sources.Refresher): each changed user by id, and when a group changed,
// the group list (a rename can take a group into or out of group_search)
// and the members of the groups that changed or are new to it. The rest
// comes from the memo of the last read, built into a snapshot as Fetch
// builds one. Okta groups do not nest.

var _ sources.Refresher = (*Source)(nil)

// maxRefresh is how many changed objects Refresh reads by id: each costs
// a request against Okta's rate limits.
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
// of the org as it is now (see sources.Refresher).
func (s *Source) Refresh(ctx context.Context, last sources.Memo, changes []sources.Change) (*sources.Snapshot, sources.Memo, error) {
	next, err := s.refresh(ctx, last, changes)
	if err != nil {
		return nil, nil, fmt.Errorf("okta: %w", err)
	}
	snap, err := s.build(next)
	if err != nil {
		return nil, nil, err
	}
	return snap, next, nil
}

// refresh is the memo of the org as it is now: last with what changes name
// read again.
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
	s.log.Debug("okta refresh done", zap.Int("users_read", len(userIDs)), zap.Int("groups_changed", len(groupIDs)))
	return next, nil
}

// refreshUsers is m with the users of ids read again, one request each,
// whatever their status. In /users's list a user takes the old one's
// place, is dropped when gone or DEPROVISIONED (which /users leaves out),
// or goes last when new. In the groups' member lists a user read again
// replaces the old one, and one gone (deleted, which takes them out of
// every group) is dropped.
func (s *Source) refreshUsers(ctx context.Context, m *memo, ids map[string]bool) (*memo, error) {
	sorted := slices.Sorted(maps.Keys(ids))
	reqs := make([]httpx.Request, len(sorted))
	for i, id := range sorted {
		reqs[i] = httpx.Request{Method: http.MethodGet, Route: "/users/{id}", Path: "/users/" + url.PathEscape(id)}
	}
	found, err := httpx.GetEach[oktaUser](ctx, s.api, reqs)
	if err != nil {
		return nil, explain(err)
	}
	fresh := map[string]oktaUser{}
	var listed []oktaUser
	for i, u := range found {
		if u == nil {
			continue
		}
		if u.ID != sorted[i] {
			return nil, fmt.Errorf("GET /users/%s answered user %q", sorted[i], u.ID)
		}
		fresh[u.ID] = *u
		if !strings.EqualFold(u.Status, "DEPROVISIONED") {
			listed = append(listed, *u)
		}
	}
	next := &memo{users: sources.Patch(m.users, func(u oktaUser) string { return u.ID }, ids, listed), groups: m.groups}
	if sources.SharesEmail(next.users, listed, func(u oktaUser) string { return u.Profile.Email }) {
		return nil, sources.CannotRefresh("a changed user shares an email with another user")
	}
	next.members = make([][]oktaUser, len(m.members))
	for i, list := range m.members {
		if !slices.ContainsFunc(list, func(u oktaUser) bool { return ids[u.ID] }) {
			next.members[i] = list
			continue
		}
		for _, u := range list {
			if !ids[u.ID] {
				next.members[i] = append(next.members[i], u)
			} else if f, ok := fresh[u.ID]; ok {
				next.members[i] = append(next.members[i], f)
			}
		}
	}
	return next, nil
}

// refreshGroups is m with the group list read again, and the members read
// again of every group that changed or is new to the list; the others keep
// the members m has.
func (s *Source) refreshGroups(ctx context.Context, m *memo, changed map[string]bool) (*memo, error) {
	groups, err := s.readGroups(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]int, len(m.groups))
	for i, g := range m.groups {
		known[g.ID] = i
	}
	members, err := s.members(ctx, groups, func(g oktaGroup) ([]oktaUser, bool) {
		j, ok := known[g.ID]
		if !ok || changed[g.ID] {
			return nil, false
		}
		return m.members[j], true
	})
	if err != nil {
		return nil, err
	}
	return &memo{users: m.users, groups: groups, members: members}, nil
}
