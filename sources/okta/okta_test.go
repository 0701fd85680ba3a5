package okta_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/okta"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

const (
	apiToken = "00okta-api-token-never-shown"
	clientID = "0oa-service-app"
)

func person(id, status, email, display, first, last, mobile, primary string) oktatest.User {
	return oktatest.User{ID: id, Status: status, Profile: oktatest.Profile{
		Login: email, Email: email, DisplayName: display, FirstName: first, LastName: last,
		MobilePhone: mobile, PrimaryPhone: primary,
	}}
}

// corp has one user of every status, and erin in no on-call group.
func corp() oktatest.Org {
	return oktatest.Org{
		Users: []oktatest.User{
			person("u-alice", "ACTIVE", "alice@example.com", "Alice Anders", "Alice", "Anders", "+1 415 555 0100", "+1 415 555 0199"),
			person("u-bob", "LOCKED_OUT", "bob@example.com", "", "Bob", "Brown", "", "+1 415 555 0101"),
			person("u-carol", "RECOVERY", "carol@example.com", "Carol Chen", "", "", "", ""),
			person("u-dan", "PASSWORD_EXPIRED", "dan@example.com", "Dan Diaz", "", "", "", ""),
			person("u-pat", "PROVISIONED", "pat@example.com", "Pat Park", "", "", "", ""),
			person("u-sue", "SUSPENDED", "sue@example.com", "Sue Stone", "", "", "", ""),
			person("u-stan", "STAGED", "stan@example.com", "Stan Stage", "", "", "", ""),
			person("u-dee", "DEPROVISIONED", "dee@example.com", "Dee Parted", "", "", "", ""),
			person("u-erin", "ACTIVE", "erin@example.com", "Erin Evans", "", "", "", ""),
		},
		Groups: []oktatest.Group{
			{ID: "g-db", Name: "oncall-db", Description: "Database on-call", Members: []string{"u-alice", "u-bob", "u-carol", "u-dan", "u-pat", "u-sue", "u-stan", "u-dee"}},
			{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
			{ID: "g-all", Name: "everyone", Members: []string{"u-erin"}},
		},
	}
}

func newFake(t *testing.T, org oktatest.Org, opts oktatest.Options) *oktatest.Server {
	t.Helper()
	if opts.APIToken == "" && opts.ClientKey == nil {
		opts.APIToken = apiToken
	}
	srv := oktatest.NewServer(org, opts)
	t.Cleanup(srv.Close)
	return srv
}

func configFor(srv *oktatest.Server) *okta.Config {
	cfg := okta.DefaultConfig()
	cfg.OrgURL, cfg.APIToken = srv.URL(), apiToken
	cfg.GroupSearch = `profile.name sw "oncall-"`
	cfg.Complete()
	return cfg
}

func newSource(t *testing.T, cfg *okta.Config, opts sources.Options) sources.Source {
	t.Helper()
	src, err := okta.New("okta", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func fetch(t *testing.T, src sources.Source) *sources.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap
}

func TestFetch(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	wantUsers := map[string]sources.User{
		"u-alice": {ID: "u-alice", Email: "alice@example.com", Name: "Alice Anders", Phone: "+1 415 555 0100"},
		"u-bob":   {ID: "u-bob", Email: "bob@example.com", Name: "Bob Brown", Phone: "+1 415 555 0101"},
		"u-carol": {ID: "u-carol", Email: "carol@example.com", Name: "Carol Chen"},
		"u-dan":   {ID: "u-dan", Email: "dan@example.com", Name: "Dan Diaz"},
		"u-pat":   {ID: "u-pat", Email: "pat@example.com", Name: "Pat Park"},
		"u-sue":   {ID: "u-sue", Email: "sue@example.com", Name: "Sue Stone", Disabled: true},
		"u-stan":  {ID: "u-stan", Email: "stan@example.com", Name: "Stan Stage", Disabled: true},
		// /users leaves deprovisioned users out; the group still lists her.
		"u-dee":  {ID: "u-dee", Email: "dee@example.com", Name: "Dee Parted", Disabled: true},
		"u-erin": {ID: "u-erin", Email: "erin@example.com", Name: "Erin Evans"},
	}
	if !reflect.DeepEqual(snap.Users, wantUsers) {
		t.Errorf("users:\n%+v\nwant\n%+v", snap.Users, wantUsers)
	}
	wantGroups := []sources.Group{
		{ID: "g-db", Name: "oncall-db", Description: "Database on-call", Members: []string{"u-alice", "u-bob", "u-carol", "u-dan", "u-dee", "u-pat", "u-stan", "u-sue"}},
		{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
	}
	if !reflect.DeepEqual(snap.Groups, wantGroups) {
		t.Errorf("groups:\n%+v\nwant\n%+v", snap.Groups, wantGroups)
	}
}

func bigOrg(users, groups, members int) oktatest.Org {
	var o oktatest.Org
	for i := range users {
		email := fmt.Sprintf("user%05d@example.com", i)
		o.Users = append(o.Users, person(fmt.Sprintf("u%05d", i), "ACTIVE", email, fmt.Sprintf("User %d", i), "", "", "", ""))
	}
	for g := range groups {
		grp := oktatest.Group{ID: fmt.Sprintf("g%03d", g), Name: fmt.Sprintf("oncall-%03d", g)}
		for m := range members {
			grp.Members = append(grp.Members, fmt.Sprintf("u%05d", (g*members+m)%users))
		}
		o.Groups = append(o.Groups, grp)
	}
	return o
}

// TestLargeOrgRequestCount reads 20,000 users and 50 groups of 300 in the
// documented number of requests: ceil(20000/200) user pages, one page of
// groups, ceil(300/200) member pages per group.
func TestLargeOrgRequestCount(t *testing.T) {
	srv := newFake(t, bigOrg(20000, 50, 300), oktatest.Options{})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 20000 || len(snap.Groups) != 50 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	for _, g := range snap.Groups {
		if len(g.Members) != 300 {
			t.Fatalf("%s has %d members, want 300", g.Name, len(g.Members))
		}
	}
	want := map[string]int{"GET /api/v1/users": 100, "GET /api/v1/groups": 1, "GET /api/v1/groups/{id}/users": 100}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestPagingFollowsLinkNext reads three full pages of users and of one
// group's members.
func TestPagingFollowsLinkNext(t *testing.T) {
	srv := newFake(t, bigOrg(600, 1, 600), oktatest.Options{})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 600 || len(snap.Groups[0].Members) != 600 {
		t.Fatalf("%d users, %d members; want 600 each", len(snap.Users), len(snap.Groups[0].Members))
	}
	want := map[string]int{"GET /api/v1/users": 3, "GET /api/v1/groups": 1, "GET /api/v1/groups/{id}/users": 3}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestRateLimitRespected runs the fetch against a bucket of 5 requests a
// second: ptsync waits for X-Rate-Limit-Reset instead of sending a request
// while Remaining is 0.
func TestRateLimitRespected(t *testing.T) {
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprint("concurrency ", concurrency), func(t *testing.T) {
			srv := newFake(t, bigOrg(1400, 3, 10), oktatest.Options{RateLimit: 5, RateWindow: time.Second})
			cfg := configFor(srv)
			cfg.Concurrency = concurrency
			snap := fetch(t, newSource(t, cfg, sources.Options{}))
			if len(snap.Users) != 1400 || len(snap.Groups) != 3 {
				t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
			}
			if v := srv.RateLimitViolations(); v != 0 {
				t.Errorf("%d requests were sent while Remaining was 0", v)
			}
		})
	}
}

// TestRateLimited429Retried answers one 429 E0000047: the request is
// retried after the reset the headers name.
func TestRateLimited429Retried(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	srv.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if n != 2 {
			return 0, nil, "", false
		}
		now := time.Now()
		h := http.Header{
			"X-Rate-Limit-Limit":     {"600"},
			"X-Rate-Limit-Remaining": {"0"},
			"X-Rate-Limit-Reset":     {fmt.Sprint(now.Add(time.Second).Unix())},
			"Date":                   {now.UTC().Format(http.TimeFormat)},
		}
		return http.StatusTooManyRequests, h, `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"x","errorCauses":[]}`, true
	})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Groups) != 2 {
		t.Errorf("%d groups, want 2", len(snap.Groups))
	}
}

func TestServerErrorOnPageTwoFailsTheFetch(t *testing.T) {
	srv := newFake(t, bigOrg(500, 1, 10), oktatest.Options{})
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if r.URL.Query().Get("after") != "" {
			return http.StatusInternalServerError, http.Header{"Retry-After": {"0"}},
				`{"errorCode":"E0000009","errorSummary":"Internal Server Error","errorLink":"E0000009","errorId":"x","errorCauses":[]}`, true
		}
		return 0, nil, "", false
	})
	snap, err := newSource(t, configFor(srv), sources.Options{}).Fetch(context.Background())
	if err == nil || snap != nil {
		t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
	}
	if !strings.Contains(err.Error(), "GET /users answered 500") || !strings.Contains(err.Error(), "E0000009") {
		t.Errorf("error %q does not say which request failed and how", err)
	}
}

func TestBadAPIToken(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	cfg := configFor(srv)
	cfg.APIToken = "00not-the-token-xyz"
	core, logs := observer.New(zapcore.DebugLevel)
	src := newSource(t, cfg, sources.Options{Log: zap.New(core)})
	for _, err := range []error{src.(sources.Checker).Check(context.Background()), fetchErr(src)} {
		if err == nil || !strings.Contains(err.Error(), "the API token is invalid or revoked") {
			t.Fatalf("error = %v, want the invalid token hint", err)
		}
		if strings.Contains(err.Error(), cfg.APIToken) {
			t.Errorf("the token shows in %q", err)
		}
	}
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, cfg.APIToken) {
			t.Errorf("the token shows in the log: %s", line)
		}
	}
}

func fetchErr(src sources.Source) error {
	_, err := src.Fetch(context.Background())
	return err
}

// serviceApp writes a service app's key and returns the fake's options and
// a config that authenticates with private_key_jwt.
func serviceApp(t *testing.T, scopes []string) (oktatest.Options, func(*oktatest.Server) *okta.Config) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "okta.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := oktatest.Options{ClientID: clientID, ClientKey: &key.PublicKey, Scopes: scopes}
	return opts, func(srv *oktatest.Server) *okta.Config {
		cfg := configFor(srv)
		cfg.APIToken, cfg.ClientID, cfg.PrivateKeyFile = "", clientID, keyFile
		return cfg
	}
}

// TestServiceAppTokenExpiringMidFetch authenticates with private_key_jwt;
// every token expires after the first page, and the 401 gets one fresh
// token, signed with a fresh assertion.
func TestServiceAppTokenExpiringMidFetch(t *testing.T) {
	opts, cfgFor := serviceApp(t, []string{"okta.users.read", "okta.groups.read"})
	srv := newFake(t, bigOrg(500, 2, 10), opts)
	srv.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Query().Get("after") != "" {
			srv.ExpireTokens()
			srv.SetFault(nil)
		}
		return 0, nil, "", false
	})
	snap := fetch(t, newSource(t, cfgFor(srv), sources.Options{}))
	if len(snap.Users) != 500 || len(snap.Groups) != 2 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestServiceAppErrors(t *testing.T) {
	t.Run("no scope granted", func(t *testing.T) {
		opts, cfgFor := serviceApp(t, []string{"okta.apps.read"})
		srv := newFake(t, corp(), opts)
		err := fetchErr(newSource(t, cfgFor(srv), sources.Options{}))
		if err == nil || !strings.Contains(err.Error(), "granted none of the requested scopes") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("key not registered", func(t *testing.T) {
		opts, _ := serviceApp(t, nil)
		_, cfgFor := serviceApp(t, nil) // another key
		opts.Scopes = []string{"okta.users.read", "okta.groups.read"}
		srv := newFake(t, corp(), opts)
		err := fetchErr(newSource(t, cfgFor(srv), sources.Options{}))
		if err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("only users granted", func(t *testing.T) {
		opts, cfgFor := serviceApp(t, []string{"okta.users.read"})
		srv := newFake(t, corp(), opts)
		err := fetchErr(newSource(t, cfgFor(srv), sources.Options{}))
		if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "okta.groups.read") {
			t.Fatalf("error = %v", err)
		}
	})
}
