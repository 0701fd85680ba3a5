// Package graphtest is an in-process fake of the slice of Microsoft Graph v1.0
// that a directory-sync client reads (users, groups, group members, transitive
// members and owners) and of the Microsoft identity platform's OAuth 2.0
// client-credentials token endpoint. It is written from Microsoft's public
// documentation, not from any client, so a client that passes against it has
// been checked against the documented protocol:
//
//   - Token endpoint: POST {URL}/{tenant}/oauth2/v2.0/token, form-encoded, with
//     client_secret in the body or in an HTTP Basic header (both documented), or
//     a certificate-signed client_assertion. Errors carry the identity platform's
//     body (error, error_description "AADSTSnnnn: ...", error_codes, timestamp,
//     trace_id, correlation_id).
//   - Graph: every request needs a live bearer token; lists page with an
//     absolute, opaque @odata.nextLink that must be followed exactly as given;
//     $top is 1..999 (default 100); users come back with Graph's default
//     property set unless $select names others; an OData cast segment such as
//     /transitiveMembers/microsoft.graph.user is an advanced query and needs the
//     ConsistencyLevel: eventual header and $count=true on every page.
//   - Delta query (GET /users/delta, GET /groups/delta; see delta.go): rounds
//     of pages ending in an @odata.deltaLink, changes since that link
//     computed from the directory's versions (SetTenant, Update), members@delta,
//     @removed, $deltatoken=latest, Prefer: return=minimal, and the two
//     documented ends of a delta token (ExpireDeltaTokens, ResetDeltaSync).
//
// The server listens on 127.0.0.1 only (httptest). It is safe for concurrent
// use. Features Graph has but the fake does not model answer 400
// Request_UnsupportedQuery with a message starting "graphtest:", so a test
// cannot mistake a gap in the fake for Graph's verdict.
package graphtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// User is a directory user. Empty strings are rendered as JSON null, as Graph
// renders unset properties.
type User struct {
	ID, DisplayName, Mail, UserPrincipalName, MobilePhone string
	BusinessPhones                                        []string
	AccountEnabled                                        bool
}

// Group is a directory group.
type Group struct {
	ID, DisplayName, Description string
	// Mail is the group's SMTP address ("" for a security group without mail).
	Mail string
	// Members holds the ids of direct members: users, groups, or Objects.
	Members []string
	// Owners holds the ids of owners (users, or Objects such as service principals).
	Owners []string
}

// Object is a non-user, non-group directory object that can be a member.
// ODataType is "#microsoft.graph.device", "#microsoft.graph.orgContact" or
// "#microsoft.graph.servicePrincipal".
type Object struct{ ID, ODataType, DisplayName string }

// Tenant is the directory the fake serves.
type Tenant struct {
	ID      string // tenant id (GUID); NewServer picks a random one when empty
	Users   []User
	Groups  []Group
	Objects []Object
}

// Options configures the fake's app registration and clock.
type Options struct {
	// ClientID is the only application (client) id the token endpoint knows.
	ClientID string
	// ClientSecret is the accepted secret; "" disables secret authentication.
	ClientSecret string
	// SecretExpired makes the right secret fail with AADSTS7000222.
	SecretExpired bool
	// Certificate, when set, is the registered certificate: client_assertion
	// JWTs signed by its RSA key (RS256 or PS256) whose header names it by
	// x5t#S256 (base64url SHA-256 of the DER) or the legacy x5t (SHA-1) are
	// accepted.
	Certificate *x509.Certificate
	// TokenLifetime is the expires_in of issued tokens (default 1h). Graph
	// refuses a token past it with 401 InvalidAuthenticationToken.
	TokenLifetime time.Duration
	// Now is the clock (default time.Now) for token lifetimes, assertion
	// validity, delta token lifetimes and Retry-After bookkeeping, so tests
	// can move time.
	Now func() time.Time
	// DeltaPageSize is how many entries one delta page holds (default 100),
	// an object and each members@delta entry counting one: Graph sizes
	// delta pages itself ($top is not supported) and splits a large
	// group's members@delta across pages.
	DeltaPageSize int
}

// Fault is a hook called before each Graph request is served, with the request
// and its 1-based sequence number among Graph requests. When it returns
// handled=true, that answer is written instead of Graph's.
type Fault func(r *http.Request, n int) (status int, header http.Header, body string, handled bool)

// Server is a running fake. Create it with NewServer and Close it when done.
type Server struct {
	srv  *httptest.Server
	opts Options
	// skipKey authenticates $skiptoken values, so a client that edits or
	// rebuilds a nextLink instead of following it gets a 400.
	skipKey []byte
	// certS256 and certS1 are the registered certificate's thumbprints
	// (base64url, as the assertion header carries them); certKey its key.
	certS256, certS1 string
	certKey          *rsa.PublicKey

	mu  sync.Mutex
	dir *directory
	// gen numbers the directory's versions: SetTenant and Update bump it.
	gen int
	// versions holds the versions a delta state token names, the rounds'
	// changes being the differences between two of them.
	versions map[int]*directory
	// retired has one entry per retired delta epoch (the current epoch is
	// len(retired)): true when its tokens get 410 Gone (ResetDeltaSync),
	// false when they get syncStateNotFound (ExpireDeltaTokens).
	retired       []bool
	tokens        map[string]time.Time // access token -> expiry
	seq           int                  // Graph requests so far
	requests      map[string]int
	tokenRequests int
	fault         Fault
	throttleLeft  int
	throttleFor   time.Duration
	notBefore     time.Time // no Graph request should arrive before this (Retry-After)
	violations    int
}

// NewServer starts a fake serving tenant. It panics when the tenant is
// inconsistent (duplicate ids, members or owners naming unknown ids, an Object
// with an unknown type) or the certificate's key is not RSA: those are bugs in
// the test, not behaviours to fake.
func NewServer(tenant Tenant, opts Options) *Server {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.DeltaPageSize <= 0 {
		opts.DeltaPageSize = defaultDeltaPageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if tenant.ID == "" {
		tenant.ID = newGUID()
	}
	s := &Server{
		opts:     opts,
		skipKey:  randomBytes(32),
		tokens:   make(map[string]time.Time),
		requests: make(map[string]int),
		versions: make(map[int]*directory),
		dir:      mustIndex(tenant),
	}
	if c := opts.Certificate; c != nil {
		key, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			panic(fmt.Sprintf("graphtest: certificate key is %T; the identity platform takes RSA certificates", c.PublicKey))
		}
		s256 := sha256.Sum256(c.Raw)
		s1 := sha1.Sum(c.Raw)
		s.certKey = key
		s.certS256 = base64.RawURLEncoding.EncodeToString(s256[:])
		s.certS1 = base64.RawURLEncoding.EncodeToString(s1[:])
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server root, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.srv.URL }

// BaseURL is the Graph v1.0 root, URL()+"/v1.0".
func (s *Server) BaseURL() string { return s.srv.URL + "/v1.0" }

// TokenURL is the tenant's token endpoint, URL()+"/{tenant id}/oauth2/v2.0/token".
func (s *Server) TokenURL() string { return s.tokenURL(s.TenantID()) }

func (s *Server) tokenURL(tenantID string) string {
	return s.srv.URL + "/" + tenantID + "/oauth2/v2.0/token"
}

// TenantID is the id of the tenant being served.
func (s *Server) TenantID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.tenantID
}

// SetTenant replaces the directory, for tests that change it between runs.
// An empty t.ID keeps the current tenant id. It panics like NewServer on an
// inconsistent tenant. Delta queries report the differences as changes.
func (s *Server) SetTenant(t Tenant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setTenantLocked(t)
}

// Update changes the directory in place: fn edits a copy of the tenant
// being served (add or remove users, groups and members, rename), which
// then replaces it as with SetTenant. fn runs under the server's lock, so
// requests see the change whole; it must not call the Server.
func (s *Server) Update(fn func(t *Tenant)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.dir.tenant()
	fn(&t)
	s.setTenantLocked(t)
}

func (s *Server) setTenantLocked(t Tenant) {
	if t.ID == "" {
		t.ID = s.dir.tenantID
	}
	s.dir = mustIndex(t)
	s.gen++
}

// ExpireDeltaTokens ends every delta state token issued so far (deltaLinks
// and the nextLinks of delta rounds), as their seven-day lifetime does:
// following one answers 400 syncStateNotFound, and the client must start
// over.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = append(s.retired, false)
}

// ResetDeltaSync ends every delta state token issued so far as a
// synchronization reset does (the tenant's maintenance or migration):
// following one answers 410 Gone with a Location header naming the
// round's initial request, and the client must start over.
func (s *Server) ResetDeltaSync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retired = append(s.retired, true)
}

// IssueToken returns a live access token without a token request, for tests
// of Graph behaviour that do not care how the token was obtained.
func (s *Server) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked()
}

func (s *Server) issueLocked() string {
	tok := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenLifetime)
	return tok
}

// ExpireTokens makes every token issued so far invalid: Graph then answers 401
// InvalidAuthenticationToken, "Lifetime validation failed, the token is
// expired.". Tokens issued afterwards are live.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok := range s.tokens {
		s.tokens[tok] = time.Time{}
	}
}

// Requests returns how many Graph requests (not token requests) arrived, by
// method and route template: "GET /groups", "GET /groups/{id}/members",
// "GET /groups/{id}/transitiveMembers/microsoft.graph.user", "GET /users", ...
// A path that matches no route is counted under its literal path. Every
// request counts, whatever it was answered (401, 429, a Fault).
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// TotalRequests is the number of Graph requests so far.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// TokenRequests is the number of token-endpoint requests so far, failed ones
// included.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// SetFault installs f (nil removes it).
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Throttle makes the next n authenticated Graph requests answer 429 Too Many
// Requests with "Retry-After: <seconds>" (retryAfter rounded up to whole
// seconds, as the header carries) and the body
// {"error":{"code":"TooManyRequests",...}}. Requests with a bad token get their
// 401 and do not use up the n.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleLeft = n
	s.throttleFor = retryAfter
}

// RetryAfterViolations counts Graph requests that arrived, by Options.Now,
// before the Retry-After of the latest 429 had elapsed. Graph throttles per
// application and tenant, so any request counts, not only the retried one.
func (s *Server) RetryAfterViolations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// takeThrottle reports whether this request is to be throttled, and for how
// many seconds.
func (s *Server) takeThrottle() (seconds int, throttled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttleLeft <= 0 {
		return 0, false
	}
	s.throttleLeft--
	seconds = int(math.Ceil(s.throttleFor.Seconds()))
	if until := s.opts.Now().Add(time.Duration(seconds) * time.Second); until.After(s.notBefore) {
		s.notBefore = until
	}
	return seconds, true
}

// serveHTTP sends /v1.0/... to Graph and /{tenant}/oauth2/v2.0/token to the
// identity platform.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1.0/"); ok {
		s.serveGraph(w, r, rest)
		return
	}
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(seg) == 4 && strings.EqualFold(seg[1], "oauth2") && strings.EqualFold(seg[2], "v2.0") && strings.EqualFold(seg[3], "token") {
		s.serveToken(w, r, seg[0])
		return
	}
	http.NotFound(w, r)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// newGUID returns a random (version 4) GUID in Graph's lower-case form.
func newGUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
