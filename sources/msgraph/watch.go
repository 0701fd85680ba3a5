package msgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
)

// Watch mode follows Graph's delta queries (/users/delta, /groups/delta):
// every poll follows each collection's deltaLink, which answers what
// changed since it was issued, and keeps the deltaLink of the answer's
// last page for the next poll. A feed starts from now with
// $deltatoken=latest, which Graph documents for directory resources: no
// initial round, whose pages would list the whole tenant to learn nothing
// a sync does not read anyway.

var _ sources.Watcher = (*Source)(nil)

// defaultPoll is the poll interval when the daemon gives none.
const defaultPoll = 30 * time.Second

// Delta queries track only the properties selected; these are what a
// snapshot is made of. members makes group deltas carry membership changes
// (members@delta).
var (
	userDeltaQuery  = url.Values{"$select": {userFields}}
	groupDeltaQuery = url.Values{"$select": {"displayName,description,members"}}
)

// minimal asks deltaLink rounds for the changed properties only: a group
// item that carries none but members@delta is a membership change, which
// tells it from a rename (see groupChange).
var minimal = http.Header{"Prefer": {"return=minimal"}}

// cookie is what Event.Cookie carries: each collection's deltaLink.
type cookie struct {
	Users  string `json:"users"`
	Groups string `json:"groups"`
}

// deltaPage is one page of a delta round: items as raw objects, since
// what a group item carries tells what changed.
type deltaPage struct {
	Value     []map[string]json.RawMessage `json:"value"`
	NextLink  string                       `json:"@odata.nextLink"`
	DeltaLink string                       `json:"@odata.deltaLink"`
}

// feed is one Watch call's state.
type feed struct {
	s     *Source
	links cookie
	// scope holds the groups whose membership changes are reported: those
	// group_filter picks and, when nested, the groups nested in them. nil
	// (no group_filter) reports every group.
	scope map[string]bool
	// stale says scope may have changed: a group was renamed or created,
	// or a group joined or left a group of the scope.
	stale bool
}

// Watch follows the tenant's delta queries every opts.Poll; see the
// sources.Watcher contract.
func (s *Source) Watch(ctx context.Context, opts sources.WatchOptions, events chan<- sources.Event) error {
	err := (&feed{s: s}).run(ctx, opts, events)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (f *feed) run(ctx context.Context, opts sources.WatchOptions, events chan<- sources.Event) error {
	poll := opts.Poll
	if poll <= 0 {
		poll = defaultPoll
	}
	reset := false
	if opts.Cookie != nil {
		if err := json.Unmarshal(opts.Cookie, &f.links); err != nil || !f.ours(f.links.Users) || !f.ours(f.links.Groups) {
			// Not a cookie of this tenant's Graph endpoint (or of this
			// source type): start afresh, as from an expired one.
			f.s.log.Warn("msgraph watch: the stored cookie is not a delta link of base_url; starting from now")
			f.links, reset = cookie{}, true
		} else if err := f.loadScope(ctx); err != nil {
			return err
		}
	}
	established := false
	for {
		var ev sources.Event
		if f.links == (cookie{}) {
			if err := f.start(ctx); err != nil {
				return err
			}
			ev.Reset = reset
		} else {
			changes, err := f.poll(ctx)
			if gone(err) {
				f.s.log.Warn("msgraph watch: Graph no longer accepts the delta links; starting from now", zap.Error(err))
				f.links, reset = cookie{}, true
				continue
			}
			if err != nil {
				return err
			}
			ev.Changes = changes
		}
		reset = false
		if !established || ev.Reset || len(ev.Changes) > 0 {
			ev.Cookie, _ = json.Marshal(f.links) // two strings: cannot fail
			if !sources.Send(ctx, events, ev) {
				return nil
			}
			established = true
		}
		if err := httpx.Sleep(ctx, poll); err != nil {
			return nil
		}
	}
}

// ours says link is under base_url: a cookie's links are followed as
// given, and the client would refuse one for another host (base_url has
// changed since) with an error where a fresh start is due.
func (f *feed) ours(link string) bool {
	return strings.HasPrefix(link, strings.TrimSuffix(f.s.cfg.BaseURL, "/")+"/")
}

// gone says Graph refused a delta link for good: 410 Gone (a
// synchronization reset), or syncStateNotFound / resyncRequired (an
// expired token, seven days for directory objects, answered with a 4xx).
func gone(err error) bool {
	var apiErr *httpx.APIError
	return errors.As(err, &apiErr) && (apiErr.Status == http.StatusGone ||
		strings.EqualFold(apiErr.Code, "syncStateNotFound") || strings.EqualFold(apiErr.Code, "resyncRequired"))
}

// start gets deltaLinks from now for both collections, then the scope:
// a group renamed into the filter in between is in both, and is reported
// for its rename.
func (f *feed) start(ctx context.Context) error {
	var err error
	if f.links.Users, err = f.round(ctx, "/users/delta", latest("/users/delta", userDeltaQuery), nil); err != nil {
		return err
	}
	if f.links.Groups, err = f.round(ctx, "/groups/delta", latest("/groups/delta", groupDeltaQuery), nil); err != nil {
		return err
	}
	return f.loadScope(ctx)
}

func latest(path string, q url.Values) httpx.Request {
	q = url.Values{"$select": q["$select"], "$deltatoken": {"latest"}}
	return httpx.Request{Method: http.MethodGet, Route: path, Path: path, Query: q}
}

// poll follows both deltaLinks and returns what changed, each object once.
// The links move on only when both rounds are read, so a failed poll is
// read again whole from the same cookie.
func (f *feed) poll(ctx context.Context) ([]sources.Change, error) {
	var changes []sources.Change
	seen := map[sources.Change]int{} // by kind and id: the index in changes
	add := func(c sources.Change) {
		key := sources.Change{ID: c.ID, Kind: c.Kind}
		if i, ok := seen[key]; ok {
			changes[i] = c // a later page knows better
			return
		}
		seen[key] = len(changes)
		changes = append(changes, c)
	}
	users, err := f.round(ctx, "/users/delta", httpx.Request{URL: f.links.Users, Header: minimal}, func(item map[string]json.RawMessage) {
		id, removed := identify(item)
		add(sources.Change{ID: id, Kind: sources.ChangeUser, Deleted: removed})
	})
	if err != nil {
		return nil, err
	}
	groups, err := f.round(ctx, "/groups/delta", httpx.Request{URL: f.links.Groups, Header: minimal}, func(item map[string]json.RawMessage) {
		if c, ok := f.groupChange(item); ok {
			add(c)
		}
	})
	if err != nil {
		return nil, err
	}
	f.links = cookie{Users: users, Groups: groups}
	if f.stale {
		if err := f.loadScope(ctx); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

// round reads a delta round from req (its route set here) and returns the
// deltaLink of its last page.
func (f *feed) round(ctx context.Context, route string, req httpx.Request, each func(map[string]json.RawMessage)) (string, error) {
	req.Method, req.Route = http.MethodGet, route
	var deltaLink string
	err := httpx.Pages(ctx, f.s.api, req, func(p *deltaPage, _ *httpx.Response) (string, error) {
		for _, item := range p.Value {
			each(item)
		}
		if p.NextLink == "" && p.DeltaLink == "" {
			return "", fmt.Errorf("msgraph: GET %s: a page with neither @odata.nextLink nor @odata.deltaLink", route)
		}
		deltaLink = p.DeltaLink
		return p.NextLink, nil
	})
	return deltaLink, err
}

// identify reads a delta item's id and whether it is removed (@removed,
// whatever the reason: "changed", restorable for 30 days, or "deleted").
func identify(item map[string]json.RawMessage) (id string, removed bool) {
	_ = json.Unmarshal(item["id"], &id)
	_, removed = item["@removed"]
	return id, removed
}

// groupChange decides whether a group delta item is reported. Graph's group
// delta takes no $filter but on ids, so group_filter is applied here:
//
//   - a removed group is reported (rare, and it may have been in scope
//     before this feed knew the scope);
//   - a group with changed properties (renamed, created, described) is
//     reported wherever it is, since a rename can take it into or out of
//     the filter, and the scope is read again after the poll;
//   - a membership change alone counts only for a group of the scope.
func (f *feed) groupChange(item map[string]json.RawMessage) (sources.Change, bool) {
	id, removed := identify(item)
	c := sources.Change{ID: id, Kind: sources.ChangeGroup, Deleted: removed}
	if f.scope == nil || removed {
		return c, true
	}
	for key := range item {
		if key != "id" && key != "members@delta" && !strings.HasPrefix(key, "@") {
			f.stale = true
			return c, true
		}
	}
	if !f.scope[id] {
		return c, false
	}
	var members []graphObject
	_ = json.Unmarshal(item["members@delta"], &members)
	for _, m := range members {
		if m.Type == "#microsoft.graph.group" && f.s.cfg.Nested {
			f.stale = true // the groups nested in the scope changed
		}
	}
	return c, true
}

// loadScope reads the ids of the groups group_filter picks and, when
// nested, of the groups nested in them, whose members' changes also change
// the snapshot (transitiveMembers): one request per 999 groups, and one
// per group of the filter when nested.
func (f *feed) loadScope(ctx context.Context) error {
	f.stale = false
	if f.s.cfg.GroupFilter == "" {
		return nil
	}
	scope := map[string]bool{}
	q := url.Values{"$select": {"id"}, "$top": {fmt.Sprint(pageSize)}, "$filter": {f.s.cfg.GroupFilter}}
	var roots []string
	if err := each(ctx, f.s.api, httpx.Request{Method: http.MethodGet, Route: "/groups", Path: "/groups", Query: q}, func(g graphGroup) error {
		roots = append(roots, g.ID)
		scope[g.ID] = true
		return nil
	}); err != nil {
		return err
	}
	if f.s.cfg.Nested {
		var mu sync.Mutex
		err := f.s.api.ForEach(ctx, len(roots), func(ctx context.Context, i int) error {
			// The cast is an advanced query: header and $count on every page.
			req := httpx.Request{Method: http.MethodGet, Route: "/groups/{id}/transitiveMembers/microsoft.graph.group",
				Path:   "/groups/" + url.PathEscape(roots[i]) + "/transitiveMembers/microsoft.graph.group",
				Query:  url.Values{"$select": {"id"}, "$top": {fmt.Sprint(pageSize)}, "$count": {"true"}},
				Header: http.Header{"ConsistencyLevel": {"eventual"}}}
			return each(ctx, f.s.api, req, func(g graphGroup) error {
				mu.Lock()
				scope[g.ID] = true
				mu.Unlock()
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	f.scope = scope
	return nil
}
