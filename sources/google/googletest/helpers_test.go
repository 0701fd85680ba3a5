package googletest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/google/googletest"
)

const (
	saEmail = "reader@ptsync-test.iam.gserviceaccount.com"
	keyID   = "3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"
	admin   = "admin@example.com"
	custID  = "C01ab2cd3"
)

var (
	saKey    = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
	rogueKey = sync.OnceValue(func() *rsa.PrivateKey { return mustKey() })
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func serviceAccount() googletest.ServiceAccount {
	return googletest.ServiceAccount{Email: saEmail, ClientID: "101112131415161718192", KeyID: keyID, Key: &saKey().PublicKey}
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// domain is a small account: alice (owner) and bob in oncall-db with the
// nested contractors (carol, a suspended dave, and oncall-db back: a
// cycle) and an external vendor; bob alone in oncall-web; the admin.
func domain() googletest.Domain {
	return googletest.Domain{
		CustomerID: custID,
		Users: []googletest.User{
			{ID: "1001", PrimaryEmail: admin, GivenName: "Dir", FamilyName: "Admin", IsAdmin: true},
			{ID: "1002", PrimaryEmail: "alice@example.com", GivenName: "Alice", FamilyName: "Anders", Aliases: []string{"ali@example.com"},
				Phones: []googletest.Phone{{Value: "+1 415 555 0100", Type: "mobile", Primary: true}, {Value: "555", Type: "custom", CustomType: "pager"}}},
			{ID: "1003", PrimaryEmail: "bob@example.com", FullName: "Robert Brown"},
			{ID: "1004", PrimaryEmail: "carol@example.com", GivenName: "Carol", FamilyName: "Chen", Archived: true},
			{ID: "1005", PrimaryEmail: "dave@example.com", GivenName: "Dave", FamilyName: "Doe", Suspended: true},
			{ID: "1006", PrimaryEmail: "erin@example.org", GivenName: "Erin", FamilyName: "Evans"},
		},
		Groups: []googletest.Group{
			{ID: "g1", Email: "oncall-db@example.com", Name: "DB on-call", Description: "Database", Aliases: []string{"dba@example.com"}, Members: []googletest.Member{
				{ID: "1002", Role: googletest.RoleOwner}, {ID: "1003"}, {ID: "g2"}, {Email: "vendor@partner.example", Role: googletest.RoleManager},
			}},
			{ID: "g2", Email: "contractors@example.com", Name: "Contractor's group", Members: []googletest.Member{
				{ID: "1004", Role: googletest.RoleManager}, {ID: "1005"}, {ID: "1003", Role: googletest.RoleOwner}, {ID: "g1"},
			}},
			{ID: "g3", Email: "oncall-web@example.com", Name: "Web on-call", Members: []googletest.Member{{ID: "1003"}}},
			{ID: "g4", Email: "everyone@example.com", Name: "Everyone", Members: []googletest.Member{{ID: custID}}},
		},
	}
}

func start(t testing.TB, d googletest.Domain, opts googletest.Options) *googletest.Server {
	t.Helper()
	if opts.ServiceAccount.Email == "" {
		opts.ServiceAccount = serviceAccount()
	}
	if opts.DelegatedScopes == nil {
		opts.DelegatedScopes = googletest.ReadOnlyScopes
	}
	s := googletest.NewServer(d, opts)
	t.Cleanup(s.Close)
	return s
}

// jwtFor signs claims with key, header alg RS256 and kid, as Google's
// documentation describes the assertion; it knows nothing of the fake.
func jwtFor(key *rsa.PrivateKey, header, claims map[string]any) string {
	h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": keyID}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(h) + "." + seg(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		panic(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claimsAt are valid claims for s at now, changed by edit (a nil value
// deletes the claim).
func claimsAt(s *googletest.Server, now time.Time, edit map[string]any) map[string]any {
	c := map[string]any{
		"iss":   saEmail,
		"sub":   admin,
		"scope": strings.Join(googletest.ReadOnlyScopes, " "),
		"aud":   s.TokenURL(),
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	for k, v := range edit {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// json decodes the body into a generic value.
func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

func do(t testing.TB, method, rawURL, token string, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, data}
}

// tokenRequest posts form to the token endpoint.
func tokenRequest(t testing.TB, s *googletest.Server, form url.Values) response {
	t.Helper()
	return do(t, http.MethodPost, s.TokenURL(), "", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

func grant(assertion string) url.Values {
	return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
}

// get sends GET {BaseURL}{path}?query with token.
func get(t testing.TB, s *googletest.Server, token, path string, query url.Values) response {
	t.Helper()
	u := s.BaseURL() + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return do(t, http.MethodGet, u, token, nil, "")
}

// adminToken is a live token of the admin with the read-only scopes.
func adminToken(s *googletest.Server) string {
	return s.IssueToken(admin, googletest.ReadOnlyScopes...)
}

// apiError reads Google's error body: status, reason, message.
func apiError(t testing.TB, r response) (code int, reason, message, status, domain string) {
	t.Helper()
	var b struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Status  string `json:"status"`
			Errors  []struct {
				Message, Domain, Reason string
			} `json:"errors"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || len(b.Error.Errors) != 1 {
		t.Fatalf("not Google's error body: %s", r)
	}
	e := b.Error
	if e.Errors[0].Message != e.Message || e.Code != r.status {
		t.Fatalf("inconsistent error body: %s", r)
	}
	return e.Code, e.Errors[0].Reason, e.Message, e.Status, e.Errors[0].Domain
}

// ids lists the "id" of each object in body[key].
func ids(body map[string]any, key string) []string {
	var out []string
	list, _ := body[key].([]any)
	for _, item := range list {
		out = append(out, fmt.Sprint(item.(map[string]any)["id"]))
	}
	return out
}

// listAll reads every page of a list, following nextPageToken, and
// returns the ids and the number of pages.
func listAll(t testing.TB, s *googletest.Server, token, path, key string, query url.Values) ([]string, int) {
	t.Helper()
	var all []string
	pages := 0
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		r := get(t, s, token, path, q)
		if r.status != http.StatusOK {
			t.Fatalf("page %d: %s", pages+1, r)
		}
		pages++
		body := r.json(t)
		all = append(all, ids(body, key)...)
		next, _ := body["nextPageToken"].(string)
		if next == "" {
			return all, pages
		}
		q.Set("pageToken", next)
	}
}
