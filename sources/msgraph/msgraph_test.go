package msgraph_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/msgraph"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

const (
	clientID = "66666666-7777-8888-9999-000000000000"
	secret   = "s3cret-value-never-shown"
)

// corp is a small tenant: alice and bob in oncall-db, carol there through
// the nested db-contractors, dave disabled, a device, a contact and a
// service principal among the members, and erin in no on-call group.
func corp() graphtest.Tenant {
	return graphtest.Tenant{
		Users: []graphtest.User{
			{ID: "u-alice", DisplayName: "Alice Anders", Mail: "alice@example.com", UserPrincipalName: "alice@corp.example", MobilePhone: "+1 415 555 0100", AccountEnabled: true},
			{ID: "u-bob", DisplayName: "Bob Brown", Mail: "Bob@Example.com", UserPrincipalName: "bob@corp.example", BusinessPhones: []string{"+1 415 555 0101"}, AccountEnabled: true},
			{ID: "u-carol", DisplayName: "Carol Chen", Mail: "carol@example.com", UserPrincipalName: "carol@corp.example", AccountEnabled: true},
			{ID: "u-dave", DisplayName: "Dave Disabled", Mail: "dave@example.com", UserPrincipalName: "dave@corp.example", AccountEnabled: false},
			{ID: "u-erin", DisplayName: "Erin Evans", Mail: "erin@example.com", UserPrincipalName: "erin@corp.example", AccountEnabled: true},
		},
		Groups: []graphtest.Group{
			{ID: "g-db", DisplayName: "oncall-db", Description: "Database on-call", Members: []string{"u-alice", "u-bob", "u-dave", "g-contractors", "d-laptop", "c-vendor", "sp-bot"}, Owners: []string{"u-alice"}},
			{ID: "g-contractors", DisplayName: "db-contractors", Members: []string{"u-carol", "g-db"}},
			{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-bob"}},
		},
		Objects: []graphtest.Object{
			{ID: "d-laptop", ODataType: "#microsoft.graph.device", DisplayName: "laptop"},
			{ID: "c-vendor", ODataType: "#microsoft.graph.orgContact", DisplayName: "vendor"},
			{ID: "sp-bot", ODataType: "#microsoft.graph.servicePrincipal", DisplayName: "bot"},
		},
	}
}

func newFake(t *testing.T, tenant graphtest.Tenant, opts graphtest.Options) *graphtest.Server {
	t.Helper()
	opts.ClientID = clientID
	if opts.ClientSecret == "" && opts.Certificate == nil {
		opts.ClientSecret = secret
	}
	srv := graphtest.NewServer(tenant, opts)
	t.Cleanup(srv.Close)
	return srv
}

func configFor(srv *graphtest.Server) *msgraph.Config {
	cfg := msgraph.DefaultConfig()
	cfg.TenantID, cfg.ClientID, cfg.ClientSecret = srv.TenantID(), clientID, secret
	cfg.BaseURL, cfg.TokenURL = srv.BaseURL(), srv.TokenURL()
	cfg.GroupFilter = "startswith(displayName,'oncall-')"
	return cfg
}

func newSource(t *testing.T, cfg *msgraph.Config, opts sources.Options) sources.Source {
	t.Helper()
	src, err := msgraph.New("entra", cfg, opts)
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
	srv := newFake(t, corp(), graphtest.Options{})
	for _, tc := range []struct {
		name       string
		edit       func(*msgraph.Config)
		readOwners bool
		groups     []sources.Group
		skipped    map[string]int
	}{
		{
			name:       "nested, with owners",
			readOwners: true,
			groups: []sources.Group{
				{ID: "g-db", Name: "oncall-db", Description: "Database on-call", Members: []string{"u-alice", "u-bob", "u-carol", "u-dave"}, Owners: []string{"u-alice"}},
				{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
			},
			skipped: map[string]int{"member_device": 1, "member_orgcontact": 1, "member_serviceprincipal": 1},
		},
		{
			name: "direct members only",
			edit: func(c *msgraph.Config) { c.Nested = false },
			groups: []sources.Group{
				{ID: "g-db", Name: "oncall-db", Description: "Database on-call", Members: []string{"u-alice", "u-bob", "u-dave"}},
				{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
			},
			skipped: map[string]int{"member_device": 1, "member_orgcontact": 1, "member_serviceprincipal": 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFor(srv)
			if tc.edit != nil {
				tc.edit(cfg)
			}
			snap := fetch(t, newSource(t, cfg, sources.Options{ReadOwners: tc.readOwners}))
			if !reflect.DeepEqual(snap.Groups, tc.groups) {
				t.Errorf("groups:\n%+v\nwant\n%+v", snap.Groups, tc.groups)
			}
			if !reflect.DeepEqual(snap.Skipped, tc.skipped) {
				t.Errorf("skipped %v, want %v", snap.Skipped, tc.skipped)
			}
			wantUsers := map[string]sources.User{
				"u-alice": {ID: "u-alice", Email: "alice@example.com", Name: "Alice Anders", Phone: "+1 415 555 0100"},
				"u-bob":   {ID: "u-bob", Email: "Bob@Example.com", Name: "Bob Brown", Phone: "+1 415 555 0101"},
				"u-carol": {ID: "u-carol", Email: "carol@example.com", Name: "Carol Chen"},
				"u-dave":  {ID: "u-dave", Email: "dave@example.com", Name: "Dave Disabled", Disabled: true},
				"u-erin":  {ID: "u-erin", Email: "erin@example.com", Name: "Erin Evans"},
			}
			if !reflect.DeepEqual(snap.Users, wantUsers) {
				t.Errorf("users:\n%+v\nwant\n%+v", snap.Users, wantUsers)
			}
		})
	}
}

func TestEmailAttributeUserPrincipalName(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	cfg := configFor(srv)
	cfg.EmailAttribute = "userPrincipalName"
	snap := fetch(t, newSource(t, cfg, sources.Options{}))
	if got := snap.Users["u-alice"].Email; got != "alice@corp.example" {
		t.Errorf("alice's email %q, want her UPN", got)
	}
}

// bigTenant has users users and groups groups of members members each,
// groups chosen in turn.
func bigTenant(users, groups, members int) graphtest.Tenant {
	var t graphtest.Tenant
	for i := range users {
		t.Users = append(t.Users, graphtest.User{
			ID: fmt.Sprintf("u-%05d", i), DisplayName: fmt.Sprintf("User %d", i),
			Mail: fmt.Sprintf("user%05d@example.com", i), AccountEnabled: i%50 != 0,
		})
	}
	for g := range groups {
		grp := graphtest.Group{ID: fmt.Sprintf("g-%03d", g), DisplayName: fmt.Sprintf("oncall-%03d", g)}
		for m := range members {
			grp.Members = append(grp.Members, fmt.Sprintf("u-%05d", (g*members+m)%users))
		}
		t.Groups = append(t.Groups, grp)
	}
	return t
}

// TestLargeTenantRequestCount reads 20,000 users and 50 groups of 300 in
// the documented number of requests: ceil(20000/999) user pages, one page
// of groups, one page of members per group, and one token.
func TestLargeTenantRequestCount(t *testing.T) {
	srv := newFake(t, bigTenant(20000, 50, 300), graphtest.Options{})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 20000 || len(snap.Groups) != 50 {
		t.Fatalf("%d users, %d groups; want 20000, 50", len(snap.Users), len(snap.Groups))
	}
	for _, g := range snap.Groups {
		if len(g.Members) != 300 {
			t.Fatalf("%s has %d members, want 300", g.Name, len(g.Members))
		}
	}
	want := map[string]int{"GET /users": 21, "GET /groups": 1, "GET /groups/{id}/transitiveMembers": 50}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestPagingAtMaximumPageSize reads users over three full-size pages and a
// group whose members span three pages.
func TestPagingAtMaximumPageSize(t *testing.T) {
	srv := newFake(t, bigTenant(2500, 1, 2500), graphtest.Options{})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 2500 || len(snap.Groups[0].Members) != 2500 {
		t.Fatalf("%d users, %d members; want 2500 each", len(snap.Users), len(snap.Groups[0].Members))
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
	want := map[string]int{"GET /users": 3, "GET /groups": 1, "GET /groups/{id}/transitiveMembers": 3}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestTokenExpiringMidFetch expires every token after the first page: the
// 401 gets one fresh token and the fetch goes on.
func TestTokenExpiringMidFetch(t *testing.T) {
	srv := newFake(t, bigTenant(2500, 3, 10), graphtest.Options{})
	srv.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		if n == 2 {
			srv.ExpireTokens()
		}
		return 0, nil, "", false
	})
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{}))
	if len(snap.Users) != 2500 || len(snap.Groups) != 3 {
		t.Fatalf("%d users, %d groups", len(snap.Users), len(snap.Groups))
	}
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first, and one after the expiry)", n)
	}
}

func TestThrottlingHonoursRetryAfter(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	srv.Throttle(2, time.Second)
	var retries atomic.Int64
	start := time.Now()
	snap := fetch(t, newSource(t, configFor(srv), sources.Options{Observer: retryCounter{&retries}}))
	if len(snap.Groups) != 2 {
		t.Fatalf("%d groups, want 2", len(snap.Groups))
	}
	if v := srv.RetryAfterViolations(); v != 0 {
		t.Errorf("%d requests came before their Retry-After", v)
	}
	if retries.Load() != 2 {
		t.Errorf("%d retries observed, want 2", retries.Load())
	}
	if time.Since(start) < 2*time.Second {
		t.Errorf("the fetch took %v; two Retry-After: 1 answers mean at least 2s", time.Since(start))
	}
}

type retryCounter struct{ n *atomic.Int64 }

func (retryCounter) ObserveRequest(string, string, int, time.Duration) {}
func (r retryCounter) ObserveRetry(reason string) {
	if reason == "429" {
		r.n.Add(1)
	}
}

// TestServerErrorOnPageTwoFailsTheFetch: a 5xx that does not go away on
// the second page of users fails the whole fetch, with no snapshot.
func TestServerErrorOnPageTwoFailsTheFetch(t *testing.T) {
	srv := newFake(t, bigTenant(1500, 1, 10), graphtest.Options{})
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		if r.URL.Query().Get("$skiptoken") != "" {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"0"}},
				`{"error":{"code":"serviceNotAvailable","message":"try later"}}`, true
		}
		return 0, nil, "", false
	})
	src := newSource(t, configFor(srv), sources.Options{})
	snap, err := src.Fetch(context.Background())
	if err == nil || snap != nil {
		t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
	}
	if !strings.Contains(err.Error(), "GET /users answered 503") || !strings.Contains(err.Error(), "serviceNotAvailable") {
		t.Errorf("error %q does not say which request failed and how", err)
	}
}

func TestBadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts graphtest.Options
		edit func(*msgraph.Config)
		want string
	}{
		{"wrong secret", graphtest.Options{}, func(c *msgraph.Config) { c.ClientSecret = "wrong-secret-xyz" }, "(AADSTS7000215): the client secret is wrong"},
		{"expired secret", graphtest.Options{SecretExpired: true}, nil, "(AADSTS7000222): the client secret has expired"},
		{"unknown application", graphtest.Options{}, func(c *msgraph.Config) { c.ClientID = "00000000-0000-0000-0000-000000000000" }, "(AADSTS700016): no such application in this tenant"},
		{"unknown tenant", graphtest.Options{}, func(c *msgraph.Config) {
			c.TokenURL = strings.Replace(c.TokenURL, c.TenantID, "11111111-0000-0000-0000-000000000000", 1)
		}, "(AADSTS90002): no such tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, corp(), tc.opts)
			cfg := configFor(srv)
			if tc.edit != nil {
				tc.edit(cfg)
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
			for _, text := range append([]string{err.Error()}, logLines(logs)...) {
				if strings.Contains(text, cfg.ClientSecret) {
					t.Errorf("the secret shows in %q", text)
				}
			}
		})
	}
}

func logLines(logs *observer.ObservedLogs) []string {
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, fmt.Sprint(e.Message, e.ContextMap()))
	}
	return lines
}

// TestCertificateCredential signs client assertions with a certificate's
// key instead of sending a secret.
func TestCertificateCredential(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ptsync"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "PRIVATE KEY", pkcs8)

	srv := newFake(t, corp(), graphtest.Options{Certificate: cert})
	cfg := configFor(srv)
	cfg.ClientSecret, cfg.CertificateFile, cfg.PrivateKeyFile = "", certFile, keyFile
	src := newSource(t, cfg, sources.Options{})
	if err := src.(sources.Checker).Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if snap := fetch(t, src); len(snap.Users) != 5 {
		t.Errorf("%d users, want 5", len(snap.Users))
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(dir, "other.pem")
	writePEM(t, otherKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other))
	cfg.PrivateKeyFile = otherKey
	if _, err := msgraph.New("entra", cfg, sources.Options{}); err == nil || !strings.Contains(err.Error(), "does not belong to the certificate") {
		t.Errorf("New with a key of another certificate: %v", err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCancelledFetch ends at once with the context's error.
func TestCancelledFetch(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	srv.SetFault(func(*http.Request, int) (int, http.Header, string, bool) {
		cancel()
		return 0, nil, "", false
	})
	_, err := newSource(t, configFor(srv), sources.Options{}).Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Fetch = %v, want context canceled", err)
	}
	if got := srv.Requests(); slices.Max(mapValues(got)) > 1 {
		t.Errorf("requests after cancel: %v", got)
	}
}

func mapValues(m map[string]int) []int {
	var v []int
	for _, n := range m {
		v = append(v, n)
	}
	return append(v, 0)
}
