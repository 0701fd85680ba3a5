package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/scim"
	"github.com/ptsync/ptsync/sources/scim/scimtest"
)

const (
	bearer   = "scim-bearer-token-never-shown"
	clientID = "ptsync-client"
	secret   = "scim-client-secret-never-shown"
	scope    = "scim.read"
)

func active(v bool) *bool { return &v }

// corp is a small directory: alice and bob in oncall-db, carol there
// through db-contractors (outside the filter, and nesting oncall-db back:
// a cycle), dave disabled, erin in no on-call group, frank with every
// fallback (no displayName, no primary email), gina without any email,
// and a member id of a user deleted since.
func corp() scimtest.Directory {
	return scimtest.Directory{
		Users: []scimtest.User{
			{ID: "u-alice", UserName: "alice", DisplayName: "Alice Anders", Active: active(true),
				Emails:       []scimtest.Multi{{Value: "alice@home.example", Type: "home"}, {Value: "alice@example.com", Type: "work", Primary: true}},
				PhoneNumbers: []scimtest.Multi{{Value: "+1 415 555 0199", Type: "fax"}, {Value: "+1 415 555 0100", Type: "mobile", Primary: true}}},
			{ID: "u-bob", UserName: "bob", DisplayName: "Bob Brown", Active: active(true),
				Emails:       []scimtest.Multi{{Value: "bob@home.example", Type: "home"}, {Value: "Bob@Example.com", Type: "work"}},
				PhoneNumbers: []scimtest.Multi{{Value: "+1 415 555 0102", Type: "mobile"}, {Value: "+1 415 555 0101", Type: "work"}}},
			{ID: "u-carol", UserName: "carol", Name: scimtest.Name{Formatted: "Carol Chen"},
				Emails:       []scimtest.Multi{{Value: "carol@example.com"}},
				PhoneNumbers: []scimtest.Multi{{Value: "+1 415 555 0103", Type: "mobile"}}},
			{ID: "u-dave", UserName: "dave", DisplayName: "Dave Disabled", Active: active(false),
				Emails: []scimtest.Multi{{Value: "dave@example.com", Type: "work"}}},
			{ID: "u-erin", UserName: "erin", DisplayName: "Erin Evans", Active: active(true),
				Emails: []scimtest.Multi{{Value: "erin@example.com", Type: "work"}}},
			{ID: "u-frank", UserName: "frank", Name: scimtest.Name{GivenName: "Frank", FamilyName: "Fox"},
				Emails:       []scimtest.Multi{{Value: "frank@other.example", Type: "other"}, {Value: "frank@home.example", Type: "home"}},
				PhoneNumbers: []scimtest.Multi{{Value: "+1 415 555 0105", Type: "home"}}},
			{ID: "u-gina", UserName: "gina", DisplayName: "Gina NoMail", Active: active(true)},
		},
		Groups: []scimtest.Group{
			{ID: "g-db", DisplayName: "oncall-db", Members: []string{"u-alice", "u-bob", "u-dave", "g-contractors", "u-deleted", "u-gina"}},
			{ID: "g-contractors", DisplayName: "db-contractors", Members: []string{"u-carol", "g-db"}},
			{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-bob", "u-frank"}},
			{ID: "g-all", DisplayName: "everyone", Members: []string{"u-erin"}},
		},
	}
}

var corpUsers = map[string]sources.User{
	"u-alice": {ID: "u-alice", Email: "alice@example.com", Name: "Alice Anders", Phone: "+1 415 555 0100"},
	"u-bob":   {ID: "u-bob", Email: "Bob@Example.com", Name: "Bob Brown", Phone: "+1 415 555 0101"},
	"u-carol": {ID: "u-carol", Email: "carol@example.com", Name: "Carol Chen", Phone: "+1 415 555 0103"},
	"u-dave":  {ID: "u-dave", Email: "dave@example.com", Name: "Dave Disabled", Disabled: true},
	"u-erin":  {ID: "u-erin", Email: "erin@example.com", Name: "Erin Evans"},
	"u-frank": {ID: "u-frank", Email: "frank@other.example", Name: "Frank Fox"},
}

var corpGroups = []sources.Group{
	{ID: "g-db", Name: "oncall-db", Members: []string{"u-alice", "u-bob", "u-carol", "u-dave"}},
	{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob", "u-frank"}},
}

func newFake(t testing.TB, dir scimtest.Directory, opts scimtest.Options) *scimtest.Server {
	t.Helper()
	opts.BearerToken = bearer
	opts.ClientID, opts.ClientSecret = clientID, secret
	if opts.Scope == "" {
		opts.Scope = scope
	}
	srv := scimtest.NewServer(dir, opts)
	t.Cleanup(srv.Close)
	return srv
}

func configFor(srv *scimtest.Server) *scim.Config {
	cfg := scim.DefaultConfig()
	cfg.BaseURL, cfg.BearerToken = srv.BaseURL(), bearer
	cfg.GroupFilter = `displayName sw "oncall-"`
	return cfg
}

func oauthConfigFor(srv *scimtest.Server) *scim.Config {
	cfg := configFor(srv)
	cfg.BearerToken = ""
	cfg.OAuth2 = &scim.OAuth2{TokenURL: srv.TokenURL(), ClientID: clientID, ClientSecret: secret, Scopes: []string{scope}}
	return cfg
}

func newSource(t testing.TB, cfg *scim.Config, opts sources.Options) sources.Source {
	t.Helper()
	src, err := scim.New("idp", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func fetch(t testing.TB, src sources.Source) *sources.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap
}

// TestFetch reads corp under every combination of credentials and
// server capabilities the source adapts to: the snapshot is the same.
func TestFetch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  scimtest.Options
		oauth bool
	}{
		{name: "bearer token"},
		{name: "oauth2 client credentials", oauth: true},
		{name: "secret in the body only", oauth: true, opts: scimtest.Options{SecretInBodyOnly: true}},
		{name: "no filtering: group_filter applied here", opts: scimtest.Options{NoFilter: true}},
		{name: "members without type or $ref", opts: scimtest.Options{OmitMemberType: true}},
		{name: "attributes ignored", opts: scimtest.Options{IgnoreAttributes: true}},
		{name: "no /ServiceProviderConfig", opts: scimtest.Options{NoServiceProviderConfig: true}},
		{name: "pages of one", opts: scimtest.Options{MaxResults: 1}},
		{name: "no paging, lists complete", opts: scimtest.Options{NoPaging: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), tc.opts)
			cfg := configFor(srv)
			if tc.oauth {
				cfg = oauthConfigFor(srv)
			}
			snap := fetch(t, newSource(t, cfg, sources.Options{}))
			if !reflect.DeepEqual(snap.Users, corpUsers) {
				t.Errorf("users:\n%+v\nwant\n%+v", snap.Users, corpUsers)
			}
			if !reflect.DeepEqual(snap.Groups, corpGroups) {
				t.Errorf("groups:\n%+v\nwant\n%+v", snap.Groups, corpGroups)
			}
			wantSkipped := map[string]int{sources.SkipNoEmail: 1, sources.SkipOutsideScope: 1}
			if !reflect.DeepEqual(snap.Skipped, wantSkipped) {
				t.Errorf("skipped %v, want %v", snap.Skipped, wantSkipped)
			}
			if snap.Source != "idp" {
				t.Errorf("source %q", snap.Source)
			}
		})
	}
}

// TestRequests checks what is asked: the capabilities once, users and
// groups with the attributes read, the filter, and the one nested group
// outside it by id.
func TestRequests(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{})
	fetch(t, newSource(t, configFor(srv), sources.Options{}))
	want := map[string]int{"GET /ServiceProviderConfig": 1, "GET /Users": 1, "GET /Groups": 1, "GET /Groups/{id}": 1}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	for _, c := range srv.Calls() {
		q := c.Query
		switch c.Route {
		case "/Users":
			if q.Get("attributes") != "active,displayName,name,emails,phoneNumbers" || q.Get("startIndex") != "1" || q.Get("count") != "200" || q.Has("filter") {
				t.Errorf("/Users query %v", q)
			}
		case "/Groups":
			if q.Get("attributes") != "displayName,members" || q.Get("filter") != `displayName sw "oncall-"` || q.Get("startIndex") != "1" || q.Get("count") != "200" {
				t.Errorf("/Groups query %v", q)
			}
		case "/Groups/{id}":
			if q.Get("attributes") != "displayName,members" {
				t.Errorf("/Groups/{id} query %v", q)
			}
		}
	}

	noFilter := newFake(t, corp(), scimtest.Options{NoFilter: true})
	fetch(t, newSource(t, configFor(noFilter), sources.Options{}))
	for _, c := range noFilter.Calls() {
		if c.Route == "/Groups" && (c.Query.Has("filter") || c.Query.Get("attributes") != "displayName,members,displayName") {
			t.Errorf("/Groups on a server without filtering: %v", c.Query)
		}
	}
	// Every group was listed: the nested one outside the filter is not
	// read again.
	want = map[string]int{"GET /ServiceProviderConfig": 1, "GET /Users": 1, "GET /Groups": 1}
	if got := noFilter.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests without server filtering %v, want %v", got, want)
	}
}

// bigDirectory has users users (every 50th inactive) and groups groups
// of members members each, members chosen in turn.
func bigDirectory(users, groups, members int) scimtest.Directory {
	var d scimtest.Directory
	for i := range users {
		d.Users = append(d.Users, scimtest.User{
			ID: fmt.Sprintf("u-%05d", i), UserName: fmt.Sprintf("user%05d", i), DisplayName: fmt.Sprintf("User %d", i),
			Emails: []scimtest.Multi{{Value: fmt.Sprintf("user%05d@example.com", i), Type: "work", Primary: true}},
			Active: active(i%50 != 0),
		})
	}
	for g := range groups {
		grp := scimtest.Group{ID: fmt.Sprintf("g-%04d", g), DisplayName: fmt.Sprintf("oncall-%04d", g)}
		for m := range members {
			grp.Members = append(grp.Members, fmt.Sprintf("u-%05d", (g*members+m)%users))
		}
		d.Groups = append(d.Groups, grp)
	}
	return d
}

// TestPagingAtMaximumPageSize reads 2,500 users and 2,100 groups, three
// pages each at the server's largest page (1,000), by 1-based startIndex.
func TestPagingAtMaximumPageSize(t *testing.T) {
	srv := newFake(t, bigDirectory(2500, 2100, 2), scimtest.Options{MaxResults: 1000})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 2500 || len(snap.Groups) != 2100 {
		t.Fatalf("%d users, %d groups; want 2500, 2100", len(snap.Users), len(snap.Groups))
	}
	disabled := 0
	for _, u := range snap.Users {
		if u.Disabled {
			disabled++
		}
	}
	if disabled != 50 {
		t.Errorf("%d disabled users, want 50", disabled)
	}
	for _, g := range snap.Groups {
		if len(g.Members) != 2 {
			t.Fatalf("%s has %d members", g.Name, len(g.Members))
		}
	}
	want := map[string]int{"GET /ServiceProviderConfig": 1, "GET /Users": 3, "GET /Groups": 3}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	var starts []string
	for _, c := range srv.Calls() {
		if c.Route == "/Users" {
			starts = append(starts, c.Query.Get("startIndex")+"+"+c.Query.Get("count"))
		}
	}
	if want := []string{"1+1000", "1001+1000", "2001+1000"}; !slices.Equal(starts, want) {
		t.Errorf("/Users pages %v, want %v", starts, want)
	}
}

// TestLargeDirectoryRequestCount: 20,000 users and 50 groups of 300 in
// 1 + ceil(20000/1000) + 1 requests and one token.
func TestLargeDirectoryRequestCount(t *testing.T) {
	srv := newFake(t, bigDirectory(20000, 50, 300), scimtest.Options{MaxResults: 1000})
	snap := fetch(t, newSource(t, oauthConfigFor(srv), sources.Options{}))
	if len(snap.Users) != 20000 || len(snap.Groups) != 50 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	want := map[string]int{"GET /ServiceProviderConfig": 1, "GET /Users": 20, "GET /Groups": 1}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestNoPagingReadsMembersByID: a server that cannot page lists 3 of 7
// users; the group members beyond them are read by id, and the rest are
// not known (logged).
func TestNoPagingReadsMembersByID(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{NoPaging: true, MaxResults: 4})
	core, logs := observer.New(zapcore.WarnLevel)
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{Log: zap.New(core)}))
	if !reflect.DeepEqual(snap.Groups, corpGroups) {
		t.Errorf("groups:\n%+v\nwant\n%+v", snap.Groups, corpGroups)
	}
	// The first four users as listed, and the members read by id: erin is
	// in no on-call group and beyond the listed four.
	want := maps(corpUsers, "u-erin")
	if !reflect.DeepEqual(snap.Users, want) {
		t.Errorf("users:\n%+v\nwant\n%+v", snap.Users, want)
	}
	if got := srv.Requests(); got["GET /Users/{id}"] != 3 || got["GET /Users"] != 1 || got["GET /Groups"] != 1 {
		t.Errorf("requests %v: want one list of each and 3 users by id (frank, gina, and the deleted member)", got)
	}
	for _, c := range srv.Calls() {
		if (c.Route == "/Users" || c.Route == "/Groups") && (c.Query.Has("startIndex") || c.Query.Has("count")) {
			t.Errorf("paging asked of a server that cannot page: %v", c.Query)
		}
	}
	if logs.FilterMessageSnippet("cannot page /Users").Len() != 1 {
		t.Errorf("no warning that only members were read: %v", logs.All())
	}

	// Groups beyond the one unpaged answer cannot be read at all.
	few := newFake(t, bigDirectory(10, 5, 1), scimtest.Options{NoPaging: true, MaxResults: 4})
	_, err := newSource(t, configFor(few), sources.Options{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "returned 4 of 5 groups and cannot page; narrow scim.group_filter") {
		t.Errorf("Fetch = %v, want the groups refused", err)
	}
}

func maps(m map[string]sources.User, without ...string) map[string]sources.User {
	out := map[string]sources.User{}
	for k, v := range m {
		if !slices.Contains(without, k) {
			out[k] = v
		}
	}
	return out
}

// TestNestedGroups: members of type Group are flattened down through
// groups outside group_filter, a cycle ends, a diamond counts once, and
// only the filtered groups are returned.
func TestNestedGroups(t *testing.T) {
	dir := scimtest.Directory{
		Users: []scimtest.User{
			{ID: "u1", Emails: []scimtest.Multi{{Value: "u1@example.com"}}},
			{ID: "u2", Emails: []scimtest.Multi{{Value: "u2@example.com"}}},
			{ID: "u3", Emails: []scimtest.Multi{{Value: "u3@example.com"}}},
		},
		Groups: []scimtest.Group{
			{ID: "a", DisplayName: "oncall-a", Members: []string{"b", "c"}},
			{ID: "b", DisplayName: "team-b", Members: []string{"u1", "d"}},
			{ID: "c", DisplayName: "team-c", Members: []string{"d", "a"}},
			{ID: "d", DisplayName: "team-d", Members: []string{"u2", "b"}},
			{ID: "e", DisplayName: "oncall-e", Members: []string{"u3", "a"}},
		},
	}
	for _, tc := range []struct {
		opts scimtest.Options
		byID int
	}{
		{scimtest.Options{}, 3}, // b, c, d once each
		{scimtest.Options{OmitMemberType: true}, 3},
		{scimtest.Options{NoFilter: true}, 0}, // every group listed already
	} {
		srv := newFake(t, dir, tc.opts)
		snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
		want := []sources.Group{
			{ID: "a", Name: "oncall-a", Members: []string{"u1", "u2"}},
			{ID: "e", Name: "oncall-e", Members: []string{"u1", "u2", "u3"}},
		}
		if !reflect.DeepEqual(snap.Groups, want) {
			t.Errorf("%+v: groups\n%+v\nwant\n%+v", tc.opts, snap.Groups, want)
		}
		if n := srv.Requests()["GET /Groups/{id}"]; n != tc.byID {
			t.Errorf("%+v: %d groups read by id, want %d", tc.opts, n, tc.byID)
		}
	}
}

// TestNestingDeeperThanTheLimit: a chain of 12 nested groups is read and
// flattened 10 levels down, and the cut is logged.
func TestNestingDeeperThanTheLimit(t *testing.T) {
	var dir scimtest.Directory
	for i := range 13 {
		dir.Users = append(dir.Users, scimtest.User{ID: fmt.Sprintf("u%02d", i), Emails: []scimtest.Multi{{Value: fmt.Sprintf("u%02d@example.com", i)}}})
		g := scimtest.Group{ID: fmt.Sprintf("g%02d", i), DisplayName: fmt.Sprintf("level-%02d", i), Members: []string{fmt.Sprintf("u%02d", i)}}
		if i < 12 {
			g.Members = append(g.Members, fmt.Sprintf("g%02d", i+1))
		}
		dir.Groups = append(dir.Groups, g)
	}
	dir.Groups[0].DisplayName = "oncall-top"
	srv := newFake(t, dir, scimtest.Options{})
	core, logs := observer.New(zapcore.WarnLevel)
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{Log: zap.New(core)}))
	var want []string
	for i := range 11 {
		want = append(want, fmt.Sprintf("u%02d", i))
	}
	if len(snap.Groups) != 1 || !slices.Equal(snap.Groups[0].Members, want) {
		t.Errorf("groups %+v, want oncall-top with %v", snap.Groups, want)
	}
	if n := srv.Requests()["GET /Groups/{id}"]; n != 10 {
		t.Errorf("%d groups read by id, want 10", n)
	}
	if logs.FilterMessageSnippet("deeper than the depth limit").Len() == 0 {
		t.Errorf("the cut is not logged: %v", logs.All())
	}
}

// TestTokenRenewedMidFetch expires every token after the second request:
// the 401 gets one fresh token and the fetch goes on.
func TestTokenRenewedMidFetch(t *testing.T) {
	srv := newFake(t, bigDirectory(2500, 3, 10), scimtest.Options{MaxResults: 1000})
	srv.SetFault(func(_ *http.Request, n int) (int, http.Header, string, bool) {
		if n == 3 {
			srv.ExpireTokens()
		}
		return 0, nil, "", false
	})
	var retries retryCounter
	snap := fetch(t, newSource(t, oauthConfigFor(srv), sources.Options{Observer: &retries}))
	if len(snap.Users) != 2500 || len(snap.Groups) != 3 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, and one after the expiry)", n)
	}
	if retries.count("401") == 0 {
		t.Errorf("no 401 renewal observed: %v", retries.reasons())
	}
}

// TestThrottlingHonoursRetryAfter: a 429 with Retry-After: 1 is retried,
// not before the second is up.
func TestThrottlingHonoursRetryAfter(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{})
	srv.Throttle(1, time.Second)
	var retries retryCounter
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{Observer: &retries}))
	if !reflect.DeepEqual(snap.Groups, corpGroups) {
		t.Errorf("groups %+v", snap.Groups)
	}
	if v := srv.RetryAfterViolations(); v != 0 {
		t.Errorf("%d requests came before their Retry-After", v)
	}
	if n := retries.count("429"); n != 1 {
		t.Errorf("%d 429 retries observed, want 1", n)
	}
}

// retryCounter is a sources.Observer counting retries by reason and
// requests by route and code.
type retryCounter struct {
	mu       sync.Mutex
	retries  map[string]int
	requests map[string]int
}

func (r *retryCounter) ObserveRequest(method, route string, code int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests == nil {
		r.requests = map[string]int{}
	}
	r.requests[fmt.Sprintf("%s %s %d", method, route, code)]++
}

func (r *retryCounter) ObserveRetry(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retries == nil {
		r.retries = map[string]int{}
	}
	r.retries[reason]++
}

func (r *retryCounter) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retries[reason]
}

func (r *retryCounter) reasons() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps2(r.retries)
}

func maps2(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestRequestMetrics: every request reaches the Observer by route and
// code.
func TestRequestMetrics(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{})
	var obs retryCounter
	fetch(t, newSource(t, configFor(srv), sources.Options{Observer: &obs}))
	want := map[string]int{
		"GET /ServiceProviderConfig 200": 1, "GET /Users 200": 1, "GET /Groups 200": 1, "GET /Groups/{id} 200": 1,
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if !reflect.DeepEqual(obs.requests, want) {
		t.Errorf("observed %v, want %v", obs.requests, want)
	}
}

// TestFailureOnPageTwoFailsTheFetch: an error on the second page of
// users or of groups fails the whole fetch, with no snapshot and the SCIM
// error's detail; a 5xx is retried first, and fails too when it stays.
func TestFailureOnPageTwoFailsTheFetch(t *testing.T) {
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{"/scim/v2/Users", 400, "scim: GET /Users answered 400: startIndex beyond the snapshot (invalidValue)"},
		{"/scim/v2/Groups", 400, "scim: GET /Groups answered 400: startIndex beyond the snapshot (invalidValue)"},
		{"/scim/v2/Users", 503, "scim: GET /Users answered 503: startIndex beyond the snapshot (invalidValue) (gave up after 6 attempts)"},
	} {
		srv := newFake(t, bigDirectory(1500, 1500, 1), scimtest.Options{MaxResults: 1000})
		srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
			if r.URL.Path == tc.path && r.URL.Query().Get("startIndex") != "1" {
				return tc.status, http.Header{"Retry-After": {"0"}}, fmt.Sprintf(
					`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","scimType":"invalidValue","detail":"startIndex beyond the snapshot"}`, tc.status), true
			}
			return 0, nil, "", false
		})
		snap, err := newSource(t, configFor(srv), sources.Options{}).Fetch(context.Background())
		if err == nil || snap != nil {
			t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q does not say which request failed and how (%q)", err, tc.want)
		}
	}
}

// TestSCIMErrorsSurfaced: an RFC 7644 §3.12 error is shown with its
// detail, scimType and a hint.
func TestSCIMErrorsSurfaced(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{})
	cfg := configFor(srv)
	cfg.GroupFilter = `displayName sw`
	_, err := newSource(t, cfg, sources.Options{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /Groups answered 400: invalid filter at offset 14") ||
		!strings.Contains(err.Error(), "(invalidFilter): check scim.group_filter") {
		t.Errorf("Fetch = %v", err)
	}

	// A server that cannot filter, with a filter this source cannot read
	// either, is refused before any list.
	noFilter := newFake(t, corp(), scimtest.Options{NoFilter: true})
	_, err = newSource(t, configFor2(noFilter, `displayName sw`), sources.Options{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the server cannot filter, and group_filter cannot be applied here either") {
		t.Errorf("Fetch = %v", err)
	}

	forbidden := newFake(t, corp(), scimtest.Options{})
	forbidden.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		return 403, nil, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"403","detail":"Insufficient scope"}`,
			strings.HasSuffix(r.URL.Path, "/Users")
	})
	_, err = newSource(t, configFor(forbidden), sources.Options{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /Users answered 403: Insufficient scope: the token may not read users and groups") {
		t.Errorf("Fetch = %v", err)
	}
}

// TestWrongBaseURL: a base URL that is not the SCIM root says so.
func TestWrongBaseURL(t *testing.T) {
	srv := newFake(t, corp(), scimtest.Options{})
	cfg := configFor(srv)
	cfg.BaseURL = srv.URL() + "/scim"
	err := newSource(t, cfg, sources.Options{}).(sources.Checker).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /Groups answered 404") || !strings.Contains(err.Error(), "check scim.base_url") {
		t.Errorf("Check = %v", err)
	}
}

func configFor2(srv *scimtest.Server, filter string) *scim.Config {
	cfg := configFor(srv)
	cfg.GroupFilter = filter
	return cfg
}

// TestDishonestServerIsBounded: a totalResults that lies, or pages that
// never advance, end the read.
func TestDishonestServerIsBounded(t *testing.T) {
	t.Run("totalResults too small: stop there", func(t *testing.T) {
		srv := newFake(t, bigDirectory(50, 1, 1), scimtest.Options{MaxResults: 10, TotalResultsDelta: -25})
		snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
		if len(snap.Users) != 30 {
			t.Errorf("%d users, want 30: the reported 25 reached on the third page, read whole", len(snap.Users))
		}
		if n := srv.Requests()["GET /Users"]; n != 3 {
			t.Errorf("%d user pages, want 3", n)
		}
	})
	t.Run("totalResults too large: the short list fails", func(t *testing.T) {
		srv := newFake(t, bigDirectory(50, 1, 1), scimtest.Options{MaxResults: 10, TotalResultsDelta: 1_000_000})
		_, err := newSource(t, configFor(srv), sources.Options{}).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "reported 10000") || !strings.Contains(err.Error(), "before an empty page") {
			t.Errorf("Fetch = %v", err)
		}
		// /Groups (one group) ends at its second page; /Users at its sixth
		// at most (5 full, 1 empty).
		if got := srv.Requests(); got["GET /Users"] > 6 || got["GET /Groups"] > 2 {
			t.Errorf("requests %v", got)
		}
	})
	t.Run("startIndex ignored: the repeated page fails", func(t *testing.T) {
		srv := newFake(t, bigDirectory(50, 1, 1), scimtest.Options{MaxResults: 10, IgnoreStartIndex: true, TotalResultsDelta: 1_000_000})
		_, err := newSource(t, configFor(srv), sources.Options{}).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "repeats the previous one: the server does not page by startIndex") {
			t.Errorf("Fetch = %v", err)
		}
		if got := srv.Requests(); got["GET /Users"] > 2 || got["GET /Groups"] > 2 {
			t.Errorf("requests %v", got)
		}
	})
	t.Run("pages without end", func(t *testing.T) {
		// Every page is new and totalResults never arrives: the read
		// stops at its bound. A fault serves fabricated pages.
		defer scim.SetMaxListed(5000)()
		srv := newFake(t, corp(), scimtest.Options{})
		var served atomic.Int64
		srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
			if r.URL.Path != "/scim/v2/Users" {
				return 0, nil, "", false
			}
			n := served.Add(1)
			var b strings.Builder
			b.WriteString(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"Resources":[`)
			for i := range 100 {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `{"id":"x-%d-%d"}`, n, i)
			}
			b.WriteString("]}")
			return 200, nil, b.String(), true
		})
		_, err := newSource(t, configFor(srv), sources.Options{}).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no end in sight") {
			t.Errorf("Fetch = %v", err)
		}
		if n := served.Load(); n != 50 {
			t.Errorf("%d pages served, want 50 (the bound of 5,000 resources)", n)
		}
	})
}

func TestBadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*scim.Config)
		want   string
		secret string
	}{
		{"wrong bearer token", func(c *scim.Config) { c.BearerToken = "not-the-token-xyz" },
			"answered 401: Authorization failure. The bearer token is not valid.: the server refused the bearer token (check scim.bearer_token", ""},
		{"wrong client secret", func(c *scim.Config) { c.BearerToken, c.OAuth2 = "", oauth(c, "wrong-secret-xyz", scope) },
			"getting a token: the token endpoint answered 401 invalid_client: the token endpoint refused oauth2.client_id or oauth2.client_secret", "wrong-secret-xyz"},
		{"scope not granted", func(c *scim.Config) { c.BearerToken, c.OAuth2 = "", oauth(c, secret, "scim.write") },
			"the token endpoint answered 400 invalid_scope: a scope in oauth2.scopes is unknown or not granted to the client", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), scimtest.Options{})
			cfg := configFor(srv)
			tc.edit(cfg)
			core, logs := observer.New(zapcore.DebugLevel)
			src := newSource(t, cfg, sources.Options{Log: zap.New(core)})
			_, err := src.Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Fetch error = %v, want one containing %q", err, tc.want)
			}
			checkErr := src.(sources.Checker).Check(context.Background())
			if checkErr == nil {
				t.Fatalf("Check passed with bad credentials")
			}
			if cfg.BearerToken != "" && !strings.Contains(checkErr.Error(), "the server refused the bearer token (check scim.bearer_token") {
				t.Errorf("Check error %q has no hint", checkErr)
			}
			for _, text := range append([]string{err.Error(), checkErr.Error()}, logLines(logs)...) {
				for _, s := range []string{cfg.BearerToken, tc.secret, bearer} {
					if s != "" && strings.Contains(text, s) {
						t.Errorf("a secret shows in %q", text)
					}
				}
			}
		})
	}
}

func oauth(c *scim.Config, secret, scope string) *scim.OAuth2 {
	return &scim.OAuth2{TokenURL: strings.Replace(c.BaseURL, "/scim/v2", "/oauth2/token", 1), ClientID: clientID, ClientSecret: secret, Scopes: []string{scope}}
}

func logLines(logs *observer.ObservedLogs) []string {
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, fmt.Sprint(e.Message, e.ContextMap()))
	}
	return lines
}

// TestCheck gets a token and reads one page of one group and one user.
func TestCheck(t *testing.T) {
	for _, opts := range []scimtest.Options{{}, {NoFilter: true, NoPaging: true}} {
		srv := newFake(t, corp(), opts)
		src := newSource(t, oauthConfigFor(srv), sources.Options{})
		if err := src.(sources.Checker).Check(context.Background()); err != nil {
			t.Fatalf("Check: %v", err)
		}
		want := map[string]int{"GET /ServiceProviderConfig": 1, "GET /Groups": 1, "GET /Users": 1}
		if got := srv.Requests(); !reflect.DeepEqual(got, want) {
			t.Errorf("requests %v, want %v", got, want)
		}
		if srv.TokenRequests() != 1 {
			t.Errorf("%d token requests", srv.TokenRequests())
		}
		for _, c := range srv.Calls() {
			if c.Route == "/Groups" && c.Query.Has("filter") == opts.NoFilter {
				t.Errorf("%+v: /Groups query %v", opts, c.Query)
			}
			if c.Route != "/ServiceProviderConfig" && c.Query.Get("count") != "1" {
				t.Errorf("%s query %v, want count=1", c.Route, c.Query)
			}
		}
	}
}

// TestCancelledFetch ends at once with the context's error.
func TestCancelledFetch(t *testing.T) {
	srv := newFake(t, bigDirectory(3000, 3, 5), scimtest.Options{MaxResults: 100})
	ctx, cancel := context.WithCancel(context.Background())
	srv.SetFault(func(_ *http.Request, n int) (int, http.Header, string, bool) {
		if n == 3 {
			cancel()
		}
		return 0, nil, "", false
	})
	_, err := newSource(t, configFor(srv), sources.Options{}).Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Fetch = %v, want context canceled", err)
	}
	if n := srv.TotalRequests(); n > 5 {
		t.Errorf("%d requests: the fetch went on after the cancel", n)
	}
}
