package oktatest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

const (
	apiToken  = "00fake-api-token"
	clientID  = "0oaFAKECLIENT0000000"
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// clientKey signs the service app's client assertions; otherKey is a key
// the fake does not know.
var (
	clientKey = sync.OnceValue(newKey)
	otherKey  = sync.OnceValue(newKey)
)

func newKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a settable clock for Options.Now. It starts a quarter second into
// a second, so that windows ending on whole seconds show.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 250_000_000, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// newServer starts a fake with an API token and a service app granted
// okta.users.read and okta.groups.read; opt, if not nil, adjusts the options.
func newServer(t *testing.T, org oktatest.Org, opt func(*oktatest.Options)) (*oktatest.Server, *clock) {
	t.Helper()
	c := newClock()
	opts := oktatest.Options{
		APIToken:  apiToken,
		ClientID:  clientID,
		ClientKey: &clientKey().PublicKey,
		Scopes:    []string{"okta.users.read", "okta.groups.read"},
		Now:       c.Now,
	}
	if opt != nil {
		opt(&opts)
	}
	s := oktatest.NewServer(org, opts)
	t.Cleanup(s.Close)
	return s, c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

// get GETs u with auth as the Authorization header, if not "".
func get(t *testing.T, u, auth string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(t, req)
}

func ssws() string { return "SSWS " + apiToken }

func bearer(token string) string { return "Bearer " + token }

// apiError is Okta's error object.
type apiError struct {
	ErrorCode    string            `json:"errorCode"`
	ErrorSummary string            `json:"errorSummary"`
	ErrorLink    string            `json:"errorLink"`
	ErrorID      string            `json:"errorId"`
	ErrorCauses  []json.RawMessage `json:"errorCauses"`
}

// wantError checks that r is Okta's error object with status and code, and
// returns it.
func wantError(t *testing.T, r response, status int, code string) apiError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e apiError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %s: %v", r.body, err)
	}
	if e.ErrorCode != code || e.ErrorLink != code || !strings.HasPrefix(e.ErrorID, "oae") || e.ErrorCauses == nil {
		t.Errorf("error %s, want code %s with errorLink, an errorId and errorCauses", r.body, code)
	}
	return e
}

// decode decodes r's JSON body after checking that r is a 200.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return v
}

type idOnly struct {
	ID string `json:"id"`
}

// ids decodes a list response into its objects' IDs.
func ids(t *testing.T, r response) []string {
	t.Helper()
	var out []string
	for _, o := range decode[[]idOnly](t, r) {
		out = append(out, o.ID)
	}
	return out
}

var linkRE = regexp.MustCompile(`^<([^>]*)>; rel="(self|next)"$`)

// links checks r's Link header lines, a self line and at most one next line
// after it, and returns their URLs; next is "" on the last page.
func links(t *testing.T, r response) (self, next string) {
	t.Helper()
	lines := r.header.Values("Link")
	if len(lines) == 0 || len(lines) > 2 {
		t.Fatalf("Link lines %q", lines)
	}
	for i, l := range lines {
		m := linkRE.FindStringSubmatch(l)
		if m == nil || m[2] != []string{"self", "next"}[i] {
			t.Fatalf("Link line %q", l)
		}
		if i == 0 {
			self = m[1]
		} else {
			next = m[1]
		}
	}
	return self, next
}

// after is the after parameter of a next URL.
func after(t *testing.T, next string) string {
	t.Helper()
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("after")
}

// sign makes a JWT of claims signed by key with alg, which names the hash
// (RS384 and RS512; anything else signs with SHA-256).
func sign(t *testing.T, key *rsa.PrivateKey, alg string, claims map[string]any) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(map[string]string{"alg": alg, "typ": "JWT"}) + "." + seg(claims)
	hash := map[string]crypto.Hash{"RS384": crypto.SHA384, "RS512": crypto.SHA512}[alg]
	if hash == 0 {
		hash = crypto.SHA256
	}
	h := hash.New()
	h.Write([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, hash, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

var jtis struct {
	sync.Mutex
	n int
}

// claims are valid client-assertion claims for s at now, with a new jti.
func claims(s *oktatest.Server, now time.Time) map[string]any {
	jtis.Lock()
	jtis.n++
	jti := fmt.Sprintf("jti-%d", jtis.n)
	jtis.Unlock()
	return map[string]any{
		"iss": clientID,
		"sub": clientID,
		"aud": s.TokenURL(),
		"iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(),
		"jti": jti,
	}
}

// tokenForm is a valid token request for scope, signed now.
func tokenForm(t *testing.T, s *oktatest.Server, now time.Time, scope string) url.Values {
	t.Helper()
	return url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {scope},
		"client_assertion_type": {jwtBearer},
		"client_assertion":      {sign(t, clientKey(), "RS256", claims(s, now))},
	}
}

func postForm(t *testing.T, u string, form url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

type tokenResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

// accessToken gets an access token for scope.
func accessToken(t *testing.T, s *oktatest.Server, c *clock, scope string) string {
	t.Helper()
	tok := decode[tokenResponse](t, postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), scope)))
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	return tok.AccessToken
}

func userID(i int) string  { return fmt.Sprintf("00u%05d", i) }
func groupID(i int) string { return fmt.Sprintf("00g%05d", i) }

// bigOrg has users 00u00000... and groups 00g00000..., each group named
// "Group <i>"; the group IDs are listed in reverse, so the fake must sort
// them. members(i) lists group i's members.
func bigOrg(users, groups int, members func(i int) []string) oktatest.Org {
	var o oktatest.Org
	for i := range users {
		o.Users = append(o.Users, oktatest.User{ID: userID(i), Profile: oktatest.Profile{
			Login: fmt.Sprintf("user%d@example.com", i), Email: fmt.Sprintf("user%d@example.com", i),
			FirstName: "User", LastName: fmt.Sprint(i),
		}})
	}
	for i := groups - 1; i >= 0; i-- {
		g := oktatest.Group{ID: groupID(i), Name: fmt.Sprintf("Group %d", i)}
		if members != nil {
			g.Members = members(i)
		}
		o.Groups = append(o.Groups, g)
	}
	return o
}

// idRange is id(from), ..., id(to-1).
func idRange(id func(int) string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, id(i))
	}
	return out
}
