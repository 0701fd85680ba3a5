package google_test

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/google"
	"github.com/ptsync/ptsync/sources/google/googletest"
	"github.com/ptsync/ptsync/sources/registry"
)

const (
	routeUsers   = "GET /users"
	routeGroups  = "GET /groups"
	routeMembers = "GET /groups/{groupKey}/members"
)

func TestFetch(t *testing.T) {
	dbAll := []string{"100000000000000000001", "100000000000000000002", "100000000000000000003", "100000000000000000004", "100000000000000000005"}
	owners := []string{"100000000000000000001", "100000000000000000002"}
	web := []string{"100000000000000000002"}
	for _, tc := range []struct {
		name       string
		edit       func(*google.Config)
		readOwners bool
		groups     []sources.Group
		requests   map[string]int
	}{
		{
			name:       "nested by Google (derived membership), with owners",
			readOwners: true,
			groups: []sources.Group{
				{ID: "g-db", Name: "DB on-call", Description: "Database on-call", Members: dbAll, Owners: owners},
				{ID: "g-web", Name: "Web on-call", Members: web},
			},
			// Owners cost a request per group: derived pages mix in the
			// nested groups' own owners.
			requests: map[string]int{routeUsers: 1, routeGroups: 1, routeMembers: 4},
		},
		{
			name: "nested by Google, no owners wanted",
			groups: []sources.Group{
				{ID: "g-db", Name: "DB on-call", Description: "Database on-call", Members: dbAll},
				{ID: "g-web", Name: "Web on-call", Members: web},
			},
			requests: map[string]int{routeUsers: 1, routeGroups: 1, routeMembers: 2},
		},
		{
			name:       "nested here (self-expanded, through a cycle), with owners",
			edit:       func(c *google.Config) { c.DerivedMembership = false },
			readOwners: true,
			groups: []sources.Group{
				{ID: "g-db", Name: "DB on-call", Description: "Database on-call", Members: dbAll, Owners: owners},
				{ID: "g-web", Name: "Web on-call", Members: web},
			},
			// db-contractors is read once, for its members only.
			requests: map[string]int{routeUsers: 1, routeGroups: 1, routeMembers: 3},
		},
		{
			name:       "direct members only",
			edit:       func(c *google.Config) { c.Nested = false },
			readOwners: true,
			groups: []sources.Group{
				{ID: "g-db", Name: "DB on-call", Description: "Database on-call", Members: []string{"100000000000000000001", "100000000000000000002", "100000000000000000004"}, Owners: owners},
				{ID: "g-web", Name: "Web on-call", Members: web},
			},
			requests: map[string]int{routeUsers: 1, routeGroups: 1, routeMembers: 2},
		},
		{
			name: "groups named by email",
			edit: func(c *google.Config) { c.NameAttribute = "email" },
			groups: []sources.Group{
				{ID: "g-db", Name: "oncall-db@example.com", Description: "Database on-call", Members: dbAll},
				{ID: "g-web", Name: "oncall-web@example.com", Members: web},
			},
			requests: map[string]int{routeUsers: 1, routeGroups: 1, routeMembers: 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), googletest.Options{})
			cfg := configFor(t, srv)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			snap := fetch(t, newSource(t, cfg, sources.Options{ReadOwners: tc.readOwners}))
			if !reflect.DeepEqual(snap.Groups, tc.groups) {
				t.Errorf("groups:\n%+v\nwant\n%+v", snap.Groups, tc.groups)
			}
			if want := map[string]int{sources.SkipOutsideScope: 1}; !reflect.DeepEqual(snap.Skipped, want) {
				t.Errorf("skipped %v, want %v (the external vendor)", snap.Skipped, want)
			}
			if !reflect.DeepEqual(snap.Users, wantUsers()) {
				t.Errorf("users:\n%+v\nwant\n%+v", snap.Users, wantUsers())
			}
			if got := srv.Requests(); !reflect.DeepEqual(got, tc.requests) {
				t.Errorf("requests %v, want %v", got, tc.requests)
			}
			if n := srv.TokenRequests(); n != 1 {
				t.Errorf("%d token requests, want 1", n)
			}
		})
	}
}

// TestSelfExpandedReadsNestedGroupsOutsideTheQuery: a group nested in an
// on-call group counts however it is named, and is read once however many
// on-call groups hold it; it does not become a group of the snapshot.
func TestSelfExpandedReadsNestedGroupsOutsideTheQuery(t *testing.T) {
	d := corp()
	d.Groups[2].Members = append(d.Groups[2].Members, googletest.Member{ID: "g-contractors"}) // oncall-web holds it too
	srv := newFake(t, d, googletest.Options{})
	cfg := configFor(t, srv)
	cfg.DerivedMembership = false
	snap := fetch(t, newSource(t, cfg, sources.Options{}))
	if len(snap.Groups) != 2 {
		t.Fatalf("groups %+v, want oncall-db and oncall-web only", snap.Groups)
	}
	want := []string{"100000000000000000001", "100000000000000000002", "100000000000000000003", "100000000000000000004", "100000000000000000005"}
	if got := snap.Groups[1].Members; !reflect.DeepEqual(got, want) {
		t.Errorf("oncall-web members %v, want %v (bob, and db-contractors, and oncall-db within it)", got, want)
	}
	if got := srv.Requests()[routeMembers]; got != 3 {
		t.Errorf("%d member requests, want 3 (db-contractors once)", got)
	}
}

// TestPagingAtMaximumPageSize reads users, groups and members over at
// least three full pages each, at each list's largest page.
func TestPagingAtMaximumPageSize(t *testing.T) {
	d := bigDomain(1250, 450, 1)
	for m := 1; m < 450; m++ { // the first group: 450 members
		d.Groups[0].Members = append(d.Groups[0].Members, googletest.Member{ID: fmt.Sprintf("2%020d", m)})
	}
	srv := newFake(t, d, googletest.Options{})
	var maxResults seenParams
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		maxResults.add(r.URL.Path, r.URL.Query().Get("maxResults"))
		return 0, nil, "", false
	})
	snap := fetch(t, newSource(t, configFor(t, srv), sources.Options{}))
	if len(snap.Users) != 1251 || len(snap.Groups) != 450 || len(snap.Groups[0].Members) != 450 {
		t.Fatalf("%d users, %d groups, %d members of the first; want 1251, 450, 450", len(snap.Users), len(snap.Groups), len(snap.Groups[0].Members))
	}
	disabled := 0
	for _, u := range snap.Users {
		if u.Disabled {
			disabled++
		}
	}
	if disabled != 25 {
		t.Errorf("%d disabled users, want 25", disabled)
	}
	// 1251 users: 500+500+251; 450 groups: 200+200+50; the first group's
	// 450 members: 200+200+50, and one page for each other group.
	want := map[string]int{routeUsers: 3, routeGroups: 3, routeMembers: 3 + 449}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if got := maxResults.values(); !reflect.DeepEqual(got, map[string]string{"users": "500", "groups": "200", "members": "200"}) {
		t.Errorf("maxResults sent: %v", got)
	}
}

// seenParams records, from the fake's goroutines, a query parameter of
// each list's requests.
type seenParams struct {
	mu   sync.Mutex
	seen map[string]string
}

func (p *seenParams) add(path, value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]string{}
	}
	list := path[strings.LastIndex(path, "/")+1:]
	if prev, ok := p.seen[list]; ok && prev != value {
		value = prev + "," + value
	}
	p.seen[list] = value
}

func (p *seenParams) values() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// TestLargeDomainRequestCount reads 20,000 users and 50 groups of 300 in
// the documented number of requests: ceil(20000/500) user pages, one page
// of groups, two pages of members per group, and one token.
func TestLargeDomainRequestCount(t *testing.T) {
	srv := newFake(t, bigDomain(20000, 50, 300), googletest.Options{})
	snap := fetch(t, newSource(t, configFor(t, srv), sources.Options{}))
	if len(snap.Users) != 20001 || len(snap.Groups) != 50 {
		t.Fatalf("%d users, %d groups; want 20001, 50", len(snap.Users), len(snap.Groups))
	}
	for _, g := range snap.Groups {
		if len(g.Members) != 300 {
			t.Fatalf("%s has %d members, want 300", g.Name, len(g.Members))
		}
	}
	want := map[string]int{routeUsers: 41, routeGroups: 1, routeMembers: 100}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestTokenExpiringMidFetch expires every token after the first page: the
// 401 gets one fresh token and the fetch goes on.
func TestTokenExpiringMidFetch(t *testing.T) {
	srv := newFake(t, bigDomain(1200, 3, 10), googletest.Options{})
	srv.SetFault(func(_ *http.Request, n int) (int, http.Header, string, bool) {
		if n == 2 {
			srv.ExpireTokens()
		}
		return 0, nil, "", false
	})
	rec := newRecorder()
	snap := fetch(t, newSource(t, configFor(t, srv), sources.Options{Observer: rec}))
	if len(snap.Users) != 1201 || len(snap.Groups) != 3 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, and one after the expiry)", n)
	}
	if rec.routes["GET /users 401"] != 1 || rec.retries["401"] != 1 {
		t.Errorf("observed %v, retries %v; want one 401 on /users and one renewal", rec.routes, rec.retries)
	}
}

// TestThrottlingRetried: Google's rate-limit answers (403
// userRateLimitExceeded and quotaExceeded, 429 rateLimitExceeded) are
// retried with backoff, counted as 429 retries.
func TestThrottlingRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   googletest.Limit
		status int
	}{
		{"403 userRateLimitExceeded", googletest.UserRateLimitExceeded, 403},
		{"403 quotaExceeded", googletest.QuotaExceeded, 403},
		{"429 rateLimitExceeded", googletest.RateLimitExceeded, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), googletest.Options{})
			srv.Throttle(3, tc.kind)
			rec := newRecorder()
			snap := fetch(t, newSource(t, configFor(t, srv), sources.Options{Observer: rec}))
			if len(snap.Groups) != 2 || len(snap.Users) != 7 {
				t.Fatalf("%d groups, %d users", len(snap.Groups), len(snap.Users))
			}
			if rec.retries["429"] != 3 || rec.routes[fmt.Sprintf("GET /users %d", tc.status)] != 3 {
				t.Errorf("observed %v, retries %v; want three %d answers retried", rec.routes, rec.retries, tc.status)
			}
		})
	}
}

// TestOtherForbiddenIsAPermissionError: a 403 that is no rate limit ends
// the fetch at once with the API's message and a hint.
func TestOtherForbiddenIsAPermissionError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  googletest.Fault
		edit   func(*googletest.Domain)
		want   []string
		routes int
	}{
		{
			name: "subject is no admin",
			edit: func(d *googletest.Domain) { d.Users[6].IsAdmin = false },
			want: []string{"google: GET /users answered 403: Not Authorized to access this resource/api (forbidden)", "must be an admin"},
		},
		{
			name: "API not enabled",
			fault: func(*http.Request, int) (int, http.Header, string, bool) {
				return 403, nil, googletest.ErrorBody(403, "accessNotConfigured", "Admin SDK API has not been used in project 1234 before or it is disabled."), true
			},
			want: []string{"answered 403: Admin SDK API has not been used", "enable the Admin SDK API"},
		},
		{
			name: "daily limit (not retried, as the limits page says)",
			fault: func(*http.Request, int) (int, http.Header, string, bool) {
				return 403, nil, googletest.ErrorBody(403, "dailyLimitExceeded", "Daily Limit Exceeded"), true
			},
			want: []string{"answered 403: Daily Limit Exceeded (dailyLimitExceeded)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := corp()
			if tc.edit != nil {
				tc.edit(&d)
			}
			srv := newFake(t, d, googletest.Options{})
			srv.SetFault(tc.fault)
			src := newSource(t, configFor(t, srv), sources.Options{})
			snap, err := src.Fetch(context.Background())
			if err == nil || snap != nil {
				t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if n := srv.TotalRequests(); n != 1 {
				t.Errorf("%d API requests, want 1 (no retry)", n)
			}
		})
	}
}

// TestFailureOnPageTwoFailsTheFetch: an error that does not go away on the
// second page of any list fails the whole fetch, with no snapshot.
func TestFailureOnPageTwoFailsTheFetch(t *testing.T) {
	for _, list := range []string{"users", "groups", "members"} {
		t.Run(list, func(t *testing.T) {
			d := bigDomain(600, 250, 1)
			for m := 1; m < 250; m++ {
				d.Groups[0].Members = append(d.Groups[0].Members, googletest.Member{ID: fmt.Sprintf("2%020d", m)})
			}
			srv := newFake(t, d, googletest.Options{})
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if strings.HasSuffix(r.URL.Path, "/"+list) && r.URL.Query().Get("pageToken") != "" {
					return http.StatusBadRequest, nil, googletest.ErrorBody(400, "invalid", "Invalid page token"), true
				}
				return 0, nil, "", false
			})
			snap, err := newSource(t, configFor(t, srv), sources.Options{}).Fetch(context.Background())
			if err == nil || snap != nil {
				t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
			}
			if !strings.Contains(err.Error(), "answered 400: Invalid page token (invalid)") {
				t.Errorf("error %q does not say which request failed and how", err)
			}
		})
	}
}

// TestTransientFailureOnPageTwoIsRetried: a 503 that goes away is retried
// and the fetch completes.
func TestTransientFailureOnPageTwoIsRetried(t *testing.T) {
	srv := newFake(t, bigDomain(600, 1, 1), googletest.Options{})
	var failed atomic.Bool
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if r.URL.Query().Get("pageToken") != "" && !failed.Swap(true) {
			return http.StatusServiceUnavailable, nil, googletest.ErrorBody(503, "backendError", "Backend Error"), true
		}
		return 0, nil, "", false
	})
	if snap := fetch(t, newSource(t, configFor(t, srv), sources.Options{})); len(snap.Users) != 601 {
		t.Errorf("%d users, want 601", len(snap.Users))
	}
}

// TestSamePageTokenTwiceFails: a list that never ends is an error, not a
// loop.
func TestSamePageTokenTwiceFails(t *testing.T) {
	srv := newFake(t, corp(), googletest.Options{})
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if strings.HasSuffix(r.URL.Path, "/users") {
			return 200, http.Header{"Content-Type": {"application/json"}}, `{"users":[],"nextPageToken":"again"}`, true
		}
		return 0, nil, "", false
	})
	_, err := newSource(t, configFor(t, srv), sources.Options{}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the same nextPageToken twice") {
		t.Fatalf("Fetch error = %v", err)
	}
}

// TestCustomerMemberRefused: a group holding the whole domain (a CUSTOMER
// member) fails the fetch with a plain error, directly or nested, however
// nesting is read.
func TestCustomerMemberRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		group  int // index in corp's groups
		edit   func(*google.Config)
		wantIn string
	}{
		{"direct, derived membership", 0, nil, "oncall-db@example.com"},
		{"direct, no nesting", 0, func(c *google.Config) { c.Nested = false }, "oncall-db@example.com"},
		{"nested, derived membership", 1, nil, "oncall-db@example.com"},
		{"nested, self-expanded", 1, func(c *google.Config) { c.DerivedMembership = false }, "db-contractors@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := corp()
			d.Groups[tc.group].Members = append(d.Groups[tc.group].Members, googletest.Member{ID: customer})
			srv := newFake(t, d, googletest.Options{})
			cfg := configFor(t, srv)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			snap, err := newSource(t, cfg, sources.Options{}).Fetch(context.Background())
			if err == nil || snap != nil {
				t.Fatalf("Fetch = %v, %v; want an error", snap, err)
			}
			want := "google: group " + tc.wantIn + " has the whole domain (customer " + customer + ") as a member"
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to contain %q", err, want)
			}
		})
	}
}

// TestNestedCustomerIgnoredWithoutNesting: with nested: false, a nested
// group's CUSTOMER member is never seen.
func TestNestedCustomerIgnoredWithoutNesting(t *testing.T) {
	d := corp()
	d.Groups[1].Members = append(d.Groups[1].Members, googletest.Member{ID: customer})
	srv := newFake(t, d, googletest.Options{})
	cfg := configFor(t, srv)
	cfg.Nested = false
	fetch(t, newSource(t, cfg, sources.Options{}))
}

func TestBadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts googletest.Options
		edit func(*testing.T, *google.Config, *googletest.Server)
		want string
	}{
		{
			name: "delegation lacks a scope",
			opts: googletest.Options{DelegatedScopes: []string{googletest.ScopeUserReadonly, googletest.ScopeGroupReadonly}},
			want: "the token endpoint answered 401 unauthorized_client (Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.): domain-wide delegation is not granted to this client id for these scopes (Admin console → Security → API controls)",
		},
		{
			name: "wrong key",
			edit: func(t *testing.T, c *google.Config, srv *googletest.Server) {
				c.CredentialsFile = writeKey(t, otherKey(), srv.TokenURL())
			},
			want: "the token endpoint answered 400 invalid_grant (Invalid JWT Signature.): the key is wrong or revoked, or subject is not an admin",
		},
		{
			name: "subject not in the domain",
			edit: func(_ *testing.T, c *google.Config, _ *googletest.Server) { c.Subject = "nobody@example.com" },
			want: "the token endpoint answered 400 invalid_grant (Invalid email or User ID): the key is wrong or revoked, or subject is not an admin",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), tc.opts)
			cfg := configFor(t, srv)
			if tc.edit != nil {
				tc.edit(t, cfg, srv)
			}
			core, logs := observer.New(zapcore.DebugLevel)
			src := newSource(t, cfg, sources.Options{Log: zap.New(core)})
			_, err := src.Fetch(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Fetch error = %v, want one containing %q", err, tc.want)
			}
			checkErr := src.(sources.Checker).Check(context.Background())
			if checkErr == nil || !strings.Contains(checkErr.Error(), tc.want) {
				t.Errorf("Check error = %v, want one containing %q", checkErr, tc.want)
			}
			if n := srv.TotalRequests(); n != 0 {
				t.Errorf("%d API requests without a token", n)
			}
			noSecrets(t, cfg.CredentialsFile, append([]string{err.Error(), checkErr.Error()}, logLines(logs)...))
		})
	}
}

// noSecrets fails when any text holds a piece of the key file's private
// key.
func noSecrets(t *testing.T, keyFile string, texts []string) {
	t.Helper()
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), "-----BEGIN PRIVATE KEY-----")
	block, _ := pem.Decode([]byte("-----BEGIN PRIVATE KEY-----" + strings.ReplaceAll(rest, `\n`, "\n")))
	if block == nil {
		t.Fatal("no key in the key file")
	}
	secret := base64.StdEncoding.EncodeToString(block.Bytes)
	for _, text := range texts {
		for i := 0; i+24 <= len(secret); i += 24 {
			if strings.Contains(text, secret[i:i+24]) {
				t.Fatalf("a piece of the private key shows in %q", text)
			}
		}
		if strings.Contains(text, "ya29.") {
			t.Errorf("an access token shows in %q", text)
		}
	}
}

func TestCheck(t *testing.T) {
	srv := newFake(t, corp(), googletest.Options{})
	var mu sync.Mutex
	var seen []string
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]+" maxResults="+r.URL.Query().Get("maxResults"))
		return 0, nil, "", false
	})
	src := newSource(t, configFor(t, srv), sources.Options{})
	if err := src.(sources.Checker).Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"groups maxResults=1", "users maxResults=1"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Check sent %v, want %v", seen, want)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestCheckNonAdminSubject: validate --connect says subject is no admin.
func TestCheckNonAdminSubject(t *testing.T) {
	d := corp()
	d.Users[6].IsAdmin = false
	srv := newFake(t, d, googletest.Options{})
	err := newSource(t, configFor(t, srv), sources.Options{}).(sources.Checker).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GET /groups answered 403") || !strings.Contains(err.Error(), "must be an admin") {
		t.Fatalf("Check = %v", err)
	}
}

// TestTokenURLOverridesTheKeys: token_url, set, is where the JWT goes and
// its audience, whatever the key's token_uri says.
func TestTokenURLOverridesTheKeys(t *testing.T) {
	srv := newFake(t, corp(), googletest.Options{})
	cfg := configFor(t, srv)
	cfg.CredentialsFile = writeKey(t, serviceKey(), "http://127.0.0.1:1/unreachable-token")
	cfg.TokenURL = srv.TokenURL()
	if snap := fetch(t, newSource(t, cfg, sources.Options{})); len(snap.Groups) != 2 {
		t.Errorf("%d groups, want 2", len(snap.Groups))
	}
}

// TestCancelledFetch ends at once with the context's error.
func TestCancelledFetch(t *testing.T) {
	srv := newFake(t, bigDomain(1200, 1, 1), googletest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	srv.SetFault(func(*http.Request, int) (int, http.Header, string, bool) {
		cancel()
		return 0, nil, "", false
	})
	_, err := newSource(t, configFor(t, srv), sources.Options{}).Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Fetch = %v, want context canceled", err)
	}
	if n := srv.TotalRequests(); n != 1 {
		t.Errorf("%d API requests, want 1: none after the cancel", n)
	}
}

// TestCancelledTokenRequest: cancelling the fetch ends a token request that
// hangs, there and then: the token endpoint sees its request go.
func TestCancelledTokenRequest(t *testing.T) {
	arrived, gone, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm() // the server notices a closed connection once the body is read
		close(arrived)
		select {
		case <-r.Context().Done():
			close(gone)
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	srv := newFake(t, corp(), googletest.Options{})
	cfg := configFor(t, srv)
	cfg.TokenURL = hang.URL + "/token"
	cfg.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err := newSource(t, cfg, sources.Options{}).Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Fetch = %v, want context canceled", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the token request went on after the cancel")
	}
}

// TestObserverSeesRoutes: every request reaches the source's Observer with
// its route template.
func TestObserverSeesRoutes(t *testing.T) {
	srv := newFake(t, corp(), googletest.Options{})
	rec := newRecorder()
	fetch(t, newSource(t, configFor(t, srv), sources.Options{Observer: rec}))
	want := map[string]int{"GET /users 200": 1, "GET /groups 200": 1, "GET /groups/{groupKey}/members 200": 2}
	if !reflect.DeepEqual(rec.routes, want) {
		t.Errorf("observed %v, want %v", rec.routes, want)
	}
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	good := string(googletest.ServiceAccountKey(serviceAccount(), serviceKey(), "https://oauth2.googleapis.com/token"))
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not JSON", "-----BEGIN PRIVATE KEY-----", "not a service account JSON key"},
		{"an OAuth client, not a service account", `{"installed":{"client_id":"x"}}`, `a key of type "", want a service account key`},
		{"authorized user", `{"type":"authorized_user","client_id":"x","refresh_token":"r"}`, `a key of type "authorized_user"`},
		{"no client_email", strings.Replace(good, `"client_email"`, `"email"`, 1), "the key has no client_email"},
		{"no private key", strings.Replace(good, `"private_key"`, `"key"`, 1), "the key has no private_key"},
		{"key not PEM", strings.Replace(good, "-----BEGIN PRIVATE KEY-----", "", 1), "private_key: not a PEM key"},
		{"bad token_uri", strings.Replace(good, "https://oauth2.googleapis.com/token", "oauth2.googleapis.com", 1), "token_uri is not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := google.DefaultConfig()
			cfg.CredentialsFile, cfg.Subject = path, admin
			_, err := google.New("workspace", cfg, sources.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `source "workspace": google.credentials_file: `+path) {
				t.Fatalf("New = %v, want an error naming the file and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "MII") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
	cfg := google.DefaultConfig()
	cfg.CredentialsFile, cfg.Subject = filepath.Join(dir, "missing.json"), admin
	if _, err := google.New("workspace", cfg, sources.Options{}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("New with a missing key file: %v", err)
	}
}

func TestConfigChecks(t *testing.T) {
	cfg := google.DefaultConfig()
	cfg.CredentialsFile, cfg.Subject = "/k.json", admin
	cfg.NameAttribute, cfg.Concurrency, cfg.Timeout = "title", 0, 0
	_, err := google.New("workspace", cfg, sources.Options{})
	for _, want := range []string{"google.name_attribute", "google.concurrency", "google.timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v, want a problem with %s", err, want)
		}
	}
}

func TestRegistered(t *testing.T) {
	if registry.Builtin()["google"].New == nil {
		t.Fatal("the registry cannot build a google source")
	}
}
