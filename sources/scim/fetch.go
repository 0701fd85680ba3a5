package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/scim/internal/filter"
)

// directory is what one fetch read, before it goes into the builder.
type directory struct {
	mu sync.Mutex // guards the maps while single resources are read
	// users are every user read, by id, and userOrder their ids as read.
	users     map[string]*scimUser
	userOrder []string
	// usersComplete: users holds every user, so an unknown id is no user.
	usersComplete bool
	groups        map[string]*scimGroup
	listed        []string // the groups group_filter picked, as listed
	// unlisted are the groups group_filter left out when it was applied
	// here (every group was read): nesting finds them without a request.
	unlisted map[string]*scimGroup
	gone     map[string]bool // ids read by id and not found
}

// Fetch reads the server's capabilities, then every user and the
// filtered groups at once, then the member groups outside the filter and
// (when the server cannot page users) the member users by id. It returns
// an error and no snapshot when any request fails for good.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	caps, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkFilter(caps); err != nil {
		return nil, err
	}
	dir := &directory{users: map[string]*scimUser{}, groups: map[string]*scimGroup{},
		unlisted: map[string]*scimGroup{}, gone: map[string]bool{}}
	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error { return s.readUsers(egCtx, caps, dir) })
	eg.Go(func() error { return s.readGroups(egCtx, caps, dir) })
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	deep, err := s.resolve(ctx, dir)
	if err != nil {
		return nil, err
	}
	snap := s.build(dir, deep)
	s.log.Debug("scim fetch done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)),
		zap.Any("skipped", snap.Skipped))
	return snap, nil
}

func (s *Source) readUsers(ctx context.Context, caps capabilities, dir *directory) error {
	// The goroutine reading groups does not touch the users.
	res, err := list(ctx, s, caps, "/Users", url.Values{"attributes": {userAttributes}}, func(u *scimUser) error {
		if _, dup := dir.users[u.ID]; dup {
			return nil // index paging over a list that grew: the same user again
		}
		dir.users[u.ID] = u
		dir.userOrder = append(dir.userOrder, u.ID)
		return nil
	})
	if err != nil {
		return err
	}
	dir.usersComplete = res.complete
	if !res.complete {
		s.log.Warn("the server cannot page /Users and listed only some users: group members are read by id, "+
			"and other users are unknown to this run (users.delete takes them for gone)",
			zap.Int("listed", res.got), zap.Int("total", res.total))
	}
	return nil
}

func (s *Source) readGroups(ctx context.Context, caps capabilities, dir *directory) error {
	local := s.cfg.GroupFilter != "" && !caps.filter
	q := s.groupQuery(caps)
	if local {
		// Whatever group_filter reads must be in the answers.
		q.Set("attributes", strings.Join(append([]string{groupAttributes}, filter.Attributes(s.filter)...), ","))
	}
	var (
		groups []*scimGroup
		raws   []json.RawMessage // with local: each group's JSON
		res    listResult
		err    error
	)
	if local {
		res, err = list(ctx, s, caps, "/Groups", q, func(g *rawGroup) error {
			groups, raws = append(groups, &g.scimGroup), append(raws, g.raw)
			return nil
		})
	} else {
		res, err = list(ctx, s, caps, "/Groups", q, func(g *scimGroup) error {
			groups = append(groups, g)
			return nil
		})
	}
	if err != nil {
		return err
	}
	if !res.complete {
		return fmt.Errorf("scim: GET /Groups: the server returned %d of %d groups and cannot page; narrow scim.group_filter", res.got, res.total)
	}
	if local {
		s.log.Debug("the server cannot filter; applying group_filter to every group", zap.Int("groups", len(groups)))
	}
	dir.mu.Lock()
	defer dir.mu.Unlock()
	for i, g := range groups {
		if _, dup := dir.groups[g.ID]; dup {
			continue
		}
		if local {
			var raw map[string]any
			if err := json.Unmarshal(raws[i], &raw); err != nil {
				return fmt.Errorf("scim: GET /Groups: decoding group %s: %w", g.ID, err)
			}
			if !s.filter.Match(raw) {
				dir.unlisted[g.ID] = g
				continue
			}
		}
		dir.groups[g.ID] = g
		dir.listed = append(dir.listed, g.ID)
	}
	return nil
}

// resolve reads what the listed groups' members name but the lists did
// not hold: member groups outside group_filter (GET /Groups/{id}), level
// by level down to sources.DefaultMaxDepth, and, when the user list is
// incomplete, member users (GET /Users/{id}). It reports whether nesting
// went deeper than it read.
func (s *Source) resolve(ctx context.Context, dir *directory) (deeper bool, err error) {
	level := slices.Clone(dir.listed)
	for depth := 1; len(level) > 0; depth++ {
		var users, groups, either, reached []string
		queued := map[string]bool{}
		for _, gid := range level {
			for _, m := range dir.groups[gid].Members {
				id := m.Value
				if id == "" || queued[id] || dir.users[id] != nil || dir.groups[id] != nil || dir.gone[id] {
					continue
				}
				if g, ok := dir.unlisted[id]; ok && depth <= sources.DefaultMaxDepth {
					dir.groups[id] = g // read with the list already
					reached = append(reached, id)
					continue
				}
				switch kind := m.kind(); {
				case kind == kindUser && !dir.usersComplete:
					users = append(users, id)
				case kind == kindGroup, kind == kindUnknown && dir.usersComplete:
					groups = append(groups, id)
				case kind == kindUnknown:
					either = append(either, id)
				default:
					continue // a user created since /Users was read, or another type: counted in build
				}
				queued[id] = true
			}
		}
		if depth > sources.DefaultMaxDepth && len(groups)+len(either) > 0 {
			// The builder flattens no deeper; users of this level still count.
			deeper, groups, either = true, nil, nil
		}
		found := reached
		var foundMu sync.Mutex
		eg, egCtx := errgroup.WithContext(ctx)
		eg.SetLimit(s.cfg.Concurrency)
		get := func(ids []string, kinds ...string) {
			for _, id := range ids {
				eg.Go(func() error {
					for _, kind := range kinds {
						ok, err := s.readOne(egCtx, dir, kind, id)
						if err != nil {
							return err
						}
						if ok {
							if kind == kindGroup {
								foundMu.Lock()
								found = append(found, id)
								foundMu.Unlock()
							}
							return nil
						}
					}
					dir.mu.Lock()
					dir.gone[id] = true
					dir.mu.Unlock()
					return nil
				})
			}
		}
		get(users, kindUser)
		get(groups, kindGroup)
		get(either, kindUser, kindGroup)
		if err := eg.Wait(); err != nil {
			return false, err
		}
		slices.Sort(found) // the builder sees groups in a fixed order
		level = found
	}
	return deeper, nil
}

// readOne reads one user or group by id into dir; a 404 is ok=false.
func (s *Source) readOne(ctx context.Context, dir *directory, kind, id string) (ok bool, err error) {
	path, route, attrs := "/Users/", "/Users/{id}", userAttributes
	if kind == kindGroup {
		path, route, attrs = "/Groups/", "/Groups/{id}", groupAttributes
	}
	req := httpx.Request{Method: http.MethodGet, Route: route, Path: path + url.PathEscape(id),
		Query: url.Values{"attributes": {attrs}}, Header: accept}
	resp, err := s.api.Do(ctx, req)
	var apiErr *httpx.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, s.explain(err)
	}
	dir.mu.Lock()
	defer dir.mu.Unlock()
	if kind == kindGroup {
		var g scimGroup
		if err := json.Unmarshal(resp.Body, &g); err != nil {
			return false, fmt.Errorf("scim: GET %s: decoding the answer: %w", route, err)
		}
		g.ID = id
		dir.groups[id] = &g
		return true, nil
	}
	var u scimUser
	if err := json.Unmarshal(resp.Body, &u); err != nil {
		return false, fmt.Errorf("scim: GET %s: decoding the answer: %w", route, err)
	}
	u.ID = id
	dir.users[id] = &u
	dir.userOrder = append(dir.userOrder, id)
	return true, nil
}

// build turns what was read into the snapshot: users in the order read,
// the listed groups then the member groups outside the filter, members
// resolved by id and nested groups flattened by the builder; only the
// listed groups are in the snapshot.
func (s *Source) build(dir *directory, deeper bool) *sources.Snapshot {
	b := sources.NewBuilder(s.name, s.log)
	refs := make(map[string]sources.UserRef, len(dir.users))
	for _, id := range dir.userOrder {
		ref, err := b.AddUser(dir.users[id].user())
		if err != nil { // ids are unique in dir.users: not reached
			s.log.Warn("user left out", zap.Error(err))
			continue
		}
		refs[id] = ref
	}
	ids := slices.Clone(dir.listed)
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
	}
	var others []string
	for id := range dir.groups {
		if !listed[id] {
			others = append(others, id)
		}
	}
	slices.Sort(others)
	ids = append(ids, others...)
	grefs := make(map[string]sources.GroupRef, len(ids))
	for _, id := range ids {
		grefs[id] = b.AddGroup(sources.Group{ID: id, Name: strings.TrimSpace(dir.groups[id].DisplayName)})
	}
	outside := map[string]bool{}
	for _, id := range ids {
		g := grefs[id]
		for _, m := range dir.groups[id].Members {
			if ref, ok := refs[m.Value]; ok {
				b.AddMember(g, ref)
			} else if sub, ok := grefs[m.Value]; ok {
				b.AddSubgroup(g, sub)
			} else if kind := m.kind(); kind != kindUser && kind != kindGroup && kind != kindUnknown {
				b.Skip("member_"+kind, 1) // neither user nor group: nothing to page
			} else if m.Value != "" && (dir.gone[m.Value] || kind == kindUser) {
				outside[m.Value] = true // gone, or created after /Users was read: the next run has them
			} // else a group deeper than the depth limit
		}
	}
	b.Skip(sources.SkipOutsideScope, len(outside))
	if deeper {
		s.log.Warn("group nesting is deeper than the depth limit; deeper members left out", zap.Int("max_depth", sources.DefaultMaxDepth))
	}
	snap := b.Snapshot(true, sources.DefaultMaxDepth)
	snap.Groups = slices.DeleteFunc(snap.Groups, func(g sources.Group) bool { return !listed[g.ID] })
	return snap
}
