package okta

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
	cannot := func(why string) (*sources.Snapshot, sources.Memo, error) {
		return nil, nil, fmt.Errorf("okta: %w: %s", sources.ErrCannotRefresh, why)
	}
	m, _ := last.(*memo)
	if m == nil {
		return cannot("no earlier read of this source to patch")
	}
	userIDs, groupIDs := map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		switch {
		case c.ID == "" || c.Partial:
			return cannot("the System Log event named no user or group")
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
		if next, why = m.patchUsers(userIDs, users); why != "" {
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
	s.log.Debug("okta refresh done", zap.Int("users_read", len(userIDs)), zap.Int("groups_changed", len(groupIDs)))
	return snap, next, nil
}

// readUsers reads the users of ids, one request each, whatever their
// status; a user Okta no longer has (deleted) is left out.
func (s *Source) readUsers(ctx context.Context, ids []string) ([]oktaUser, error) {
	found := make([]*oktaUser, len(ids))
	err := s.eachOf(ctx, len(ids), func(ctx context.Context, i int) error {
		var u oktaUser
		_, err := s.api.DecodeJSON(ctx, httpx.Request{Method: http.MethodGet, Route: "/users/{id}",
			Path: "/users/" + url.PathEscape(ids[i])}, &u)
		var apiErr *httpx.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
			return nil
		}
		if err == nil && u.ID != ids[i] {
			err = fmt.Errorf("okta: GET /users/%s answered user %q", ids[i], u.ID)
		}
		found[i] = &u
		return explain(err)
	})
	if err != nil {
		return nil, err
	}
	var users []oktaUser
	for _, u := range found {
		if u != nil {
			users = append(users, *u)
		}
	}
	return users, nil
}

// patchUsers is m with the users of ids read again. In /users's list, a
// user takes the old one's place, is dropped when gone or DEPROVISIONED
// (which /users leaves out), or goes last when new; in the groups' member
// lists, a user read again replaces the old one, and one gone (deleted,
// which takes them out of every group) is dropped. why says when Okta's
// order could change the snapshot (a changed user sharing an email with
// another).
func (m *memo) patchUsers(ids map[string]bool, users []oktaUser) (*memo, string) {
	fresh := map[string]oktaUser{}
	for _, u := range users {
		fresh[u.ID] = u
	}
	listed := func(u oktaUser) bool { return !strings.EqualFold(u.Status, "DEPROVISIONED") }
	next := &memo{groups: m.groups}
	placed := map[string]bool{}
	for _, u := range m.users {
		switch f, ok := fresh[u.ID]; {
		case !ids[u.ID]:
			next.users = append(next.users, u)
		case ok && listed(f):
			next.users = append(next.users, f)
			placed[u.ID] = true
		}
	}
	for _, u := range users {
		if !placed[u.ID] && listed(u) && !slices.ContainsFunc(m.users, func(o oktaUser) bool { return o.ID == u.ID }) {
			next.users = append(next.users, u)
		}
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

	emails := map[string]int{}
	for _, u := range next.users {
		emails[strings.ToLower(strings.TrimSpace(u.Profile.Email))]++
	}
	for _, u := range users {
		if e := strings.ToLower(strings.TrimSpace(u.Profile.Email)); e != "" && emails[e] > 1 {
			return nil, "a changed user shares an email with another user"
		}
	}
	return next, ""
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
	next := &memo{users: m.users, groups: groups, members: make([][]oktaUser, len(groups))}
	var stale []int
	for i, g := range groups {
		if j, ok := known[g.ID]; ok && !changed[g.ID] {
			next.members[i] = m.members[j]
		} else {
			stale = append(stale, i)
		}
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
