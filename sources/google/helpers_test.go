package google_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/google"
	"github.com/ptsync/ptsync/sources/google/googletest"
)

const (
	admin   = "admin@example.com"
	keyID   = "5f1e7c0a9b8d6e4f3a2b1c0d9e8f7a6b5c4d3e2f"
	saEmail = "ptsync-directory@ptsync-test.iam.gserviceaccount.com"
)

// keys are made once: RSA key generation is the slowest part of a test.
var (
	serviceKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	otherKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func serviceAccount() googletest.ServiceAccount {
	return googletest.ServiceAccount{Email: saEmail, ClientID: "104729811234567890123", KeyID: keyID, Key: &serviceKey().PublicKey}
}

// customer is the fake account's id, so a test can name it as a member.
const customer = "C03az79cb"

// corp is a small domain: alice (owner), bob (manager) and dave
// (suspended) in oncall-db, which holds db-contractors, where carol and
// erin (archived) are and which holds oncall-db back (a cycle); bob in
// oncall-web; an external vendor in oncall-db; frank in no on-call group.
func corp() googletest.Domain {
	return googletest.Domain{
		CustomerID: customer,
		Users: []googletest.User{
			{ID: "100000000000000000001", PrimaryEmail: "alice@example.com", GivenName: "Alice", FamilyName: "Anders",
				Phones: []googletest.Phone{{Value: "+1 415 555 0199", Type: "work"}, {Value: "+1 415 555 0100", Type: "work", Primary: true}}},
			{ID: "100000000000000000002", PrimaryEmail: "Bob@Example.com", FullName: "Bob Brown",
				Phones: []googletest.Phone{{Value: "+1 415 555 0101", Type: "work"}, {Value: "+1 415 555 0102", Type: "mobile"}}},
			{ID: "100000000000000000003", PrimaryEmail: "carol@example.com", GivenName: "Carol", FamilyName: "Chen",
				Phones: []googletest.Phone{{Value: " +1 415 555 0103 ", Type: "home"}}},
			{ID: "100000000000000000004", PrimaryEmail: "dave@example.com", GivenName: "Dave", FamilyName: "Suspended", Suspended: true},
			{ID: "100000000000000000005", PrimaryEmail: "erin@example.com", GivenName: "Erin", FamilyName: "Archived", Archived: true},
			{ID: "100000000000000000006", PrimaryEmail: "frank@example.com", GivenName: "Frank", FamilyName: "Free"},
			{ID: "100000000000000000007", PrimaryEmail: admin, GivenName: "Dir", FamilyName: "Admin", IsAdmin: true},
		},
		Groups: []googletest.Group{
			{ID: "g-db", Email: "oncall-db@example.com", Name: "DB on-call", Description: "Database on-call", Members: []googletest.Member{
				{ID: "100000000000000000001", Role: googletest.RoleOwner},
				{ID: "100000000000000000002", Role: googletest.RoleManager},
				{ID: "100000000000000000004"},
				{ID: "g-contractors"},
				{Email: "vendor@partner.example"},
			}},
			{ID: "g-contractors", Email: "db-contractors@example.com", Name: "DB contractors", Members: []googletest.Member{
				{ID: "100000000000000000003"},
				{ID: "100000000000000000005", Role: googletest.RoleOwner},
				{ID: "g-db"},
			}},
			{ID: "g-web", Email: "oncall-web@example.com", Name: "Web on-call", Members: []googletest.Member{
				{ID: "100000000000000000002"},
			}},
		},
	}
}

// wantUsers is every user of corp as the source reports them.
func wantUsers() map[string]sources.User {
	return map[string]sources.User{
		"100000000000000000001": {ID: "100000000000000000001", Email: "alice@example.com", Name: "Alice Anders", Phone: "+1 415 555 0100"},
		"100000000000000000002": {ID: "100000000000000000002", Email: "Bob@Example.com", Name: "Bob Brown", Phone: "+1 415 555 0102"},
		"100000000000000000003": {ID: "100000000000000000003", Email: "carol@example.com", Name: "Carol Chen", Phone: "+1 415 555 0103"},
		"100000000000000000004": {ID: "100000000000000000004", Email: "dave@example.com", Name: "Dave Suspended", Disabled: true},
		"100000000000000000005": {ID: "100000000000000000005", Email: "erin@example.com", Name: "Erin Archived", Disabled: true},
		"100000000000000000006": {ID: "100000000000000000006", Email: "frank@example.com", Name: "Frank Free"},
		"100000000000000000007": {ID: "100000000000000000007", Email: admin, Name: "Dir Admin"},
	}
}

func newFake(t testing.TB, domain googletest.Domain, opts googletest.Options) *googletest.Server {
	t.Helper()
	if opts.ServiceAccount.Email == "" {
		opts.ServiceAccount = serviceAccount()
	}
	if opts.DelegatedScopes == nil {
		opts.DelegatedScopes = googletest.ReadOnlyScopes
	}
	srv := googletest.NewServer(domain, opts)
	t.Cleanup(srv.Close)
	return srv
}

// writeKey writes the service account's JSON key, signed with key and
// naming tokenURI, and returns its path.
func writeKey(t testing.TB, key *rsa.PrivateKey, tokenURI string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, googletest.ServiceAccountKey(serviceAccount(), key, tokenURI), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// configFor points a config at srv: the key's token_uri is the fake's
// token endpoint, and token_url stays at its default.
func configFor(t testing.TB, srv *googletest.Server) *google.Config {
	t.Helper()
	cfg := google.DefaultConfig()
	cfg.CredentialsFile = writeKey(t, serviceKey(), srv.TokenURL())
	cfg.Subject = admin
	cfg.BaseURL = srv.BaseURL()
	cfg.GroupQuery = "email:oncall-*"
	return cfg
}

func newSource(t testing.TB, cfg *google.Config, opts sources.Options) sources.Source {
	t.Helper()
	src, err := google.New("workspace", cfg, opts)
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

// bigDomain has users users and groups groups (oncall-000...) of members
// members each, users chosen in turn; every 50th user is suspended.
func bigDomain(users, groups, members int) googletest.Domain {
	d := googletest.Domain{CustomerID: customer}
	for i := range users {
		d.Users = append(d.Users, googletest.User{
			ID: fmt.Sprintf("2%020d", i), PrimaryEmail: fmt.Sprintf("user%05d@example.com", i),
			GivenName: "User", FamilyName: fmt.Sprint(i), Suspended: i%50 == 1,
		})
	}
	d.Users = append(d.Users, googletest.User{ID: "100000000000000000007", PrimaryEmail: admin, FullName: "Dir Admin", IsAdmin: true})
	for g := range groups {
		grp := googletest.Group{ID: fmt.Sprintf("g%03d", g), Email: fmt.Sprintf("oncall-%03d@example.com", g), Name: fmt.Sprintf("On-call %03d", g)}
		for m := range members {
			grp.Members = append(grp.Members, googletest.Member{ID: fmt.Sprintf("2%020d", (g*members+m)%users)})
		}
		d.Groups = append(d.Groups, grp)
	}
	return d
}

// recorder is a sources.Observer that keeps routes and retry reasons.
type recorder struct {
	mu      sync.Mutex
	routes  map[string]int
	retries map[string]int
	total   atomic.Int64
}

func newRecorder() *recorder { return &recorder{routes: map[string]int{}, retries: map[string]int{}} }

func (r *recorder) ObserveRequest(method, route string, code int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes[fmt.Sprintf("%s %s %d", method, route, code)]++
	r.total.Add(1)
}

func (r *recorder) ObserveRetry(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries[reason]++
}

func logLines(logs *observer.ObservedLogs) []string {
	var lines []string
	for _, e := range logs.All() {
		lines = append(lines, fmt.Sprint(e.Message, e.ContextMap()))
	}
	return lines
}
