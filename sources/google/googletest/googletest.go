// Package googletest is an in-process fake of the slice of Google's Admin
// SDK Directory API that a directory-sync client reads (users.list,
// groups.list, members.list) and of Google's OAuth 2.0 token endpoint for
// service accounts with domain-wide delegation. It is written from Google's
// public documentation, not from any client, so a client that passes
// against it has been checked against the documented protocol:
//
//   - Token endpoint: POST {URL}/token, form-encoded, grant_type
//     urn:ietf:params:oauth:grant-type:jwt-bearer and an assertion: a JWT
//     signed RS256 with the service account's key (header kid its
//     private_key_id), claims iss (its client_email), sub (the user to act
//     as), scope (space-separated), aud (the token endpoint) and iat and exp
//     at most an hour apart. The signature is verified with the registered
//     public key. A sub that is no user of the domain is invalid_grant; a
//     scope not delegated to the account's client id in the Admin console
//     is unauthorized_client (401). Tokens answer {access_token, expires_in,
//     token_type}.
//   - Directory API under {URL}/admin/directory/v1: every request needs a
//     live bearer token with a scope the method accepts, acting as an admin
//     (else 403 forbidden, "Not Authorized to access this resource/api").
//     Lists page with an opaque nextPageToken that the client sends back as
//     pageToken with the same parameters; maxResults is 1..500 for users
//     (default 100) and 1..200 for groups and members (default 200); the
//     fields parameter selects a partial response. Unknown parameters are
//     refused, as Google's front end refuses them. Errors carry Google's
//     body: {"error":{"code","message","errors":[{"message","domain",
//     "reason"}],"status"}}, with the rate-limit reasons of the limits page
//     (403 userRateLimitExceeded and quotaExceeded, 429 rateLimitExceeded,
//     no Retry-After).
//
// Where Google's documentation is silent the fake makes a choice and says
// so: members.list with includeDerivedMembership lists the group's own
// members first, then those of nested groups not listed yet (nested GROUP
// members included), each with the role it holds where it was found.
// Google refuses a membership cycle; the fake serves one (a client may
// meet one in data that changed between its reads).
//
// The server listens on 127.0.0.1 only (httptest) and is safe for
// concurrent use. What the Directory API has but the fake does not model
// answers 400 with a message starting "googletest:", so a test cannot take
// a gap in the fake for Google's verdict.
package googletest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Directory API OAuth scopes.
const (
	ScopeUser                = "https://www.googleapis.com/auth/admin.directory.user"
	ScopeUserReadonly        = "https://www.googleapis.com/auth/admin.directory.user.readonly"
	ScopeGroup               = "https://www.googleapis.com/auth/admin.directory.group"
	ScopeGroupReadonly       = "https://www.googleapis.com/auth/admin.directory.group.readonly"
	ScopeGroupMember         = "https://www.googleapis.com/auth/admin.directory.group.member"
	ScopeGroupMemberReadonly = "https://www.googleapis.com/auth/admin.directory.group.member.readonly"
	ScopeCloudPlatform       = "https://www.googleapis.com/auth/cloud-platform"
)

// ReadOnlyScopes are the three read-only scopes a directory reader is
// delegated.
var ReadOnlyScopes = []string{ScopeUserReadonly, ScopeGroupReadonly, ScopeGroupMemberReadonly}

// Member roles and types, as the API spells them.
const (
	RoleOwner   = "OWNER"
	RoleManager = "MANAGER"
	RoleMember  = "MEMBER"

	TypeUser     = "USER"
	TypeGroup    = "GROUP"
	TypeCustomer = "CUSTOMER"
)

// Phone is one entry of a user's phones.
type Phone struct {
	Value      string
	Type       string // "mobile", "work", "home", ... or "custom" with CustomType
	CustomType string
	Primary    bool
}

// User is a user of the domain.
type User struct {
	ID           string // the user's unique id
	PrimaryEmail string
	GivenName    string
	FamilyName   string
	// FullName defaults to GivenName and FamilyName.
	FullName  string
	Suspended bool
	Archived  bool
	// IsAdmin lets the user be the subject the Directory API serves.
	IsAdmin bool
	Phones  []Phone
	Aliases []string
}

// Member is one direct member of a group.
type Member struct {
	// ID is a User's or Group's ID, or the Domain's CustomerID for the
	// whole domain (type CUSTOMER). Empty, Email is a user outside the
	// domain.
	ID    string
	Email string
	// Role is RoleOwner, RoleManager or RoleMember ("" is RoleMember).
	Role string
}

// Group is a group of the domain.
type Group struct {
	ID, Email, Name, Description string
	Aliases                      []string
	Members                      []Member
}

// Domain is the Workspace account the fake serves.
type Domain struct {
	// CustomerID is the account's id ("C01234567"); NewServer picks one
	// when empty. "my_customer" stands for it in requests.
	CustomerID string
	Users      []User
	Groups     []Group
}

// ServiceAccount is the registered service account.
type ServiceAccount struct {
	// Email is its client_email, the JWT's iss.
	Email string
	// ClientID is the numeric client id that domain-wide delegation is
	// granted to.
	ClientID string
	// KeyID is the key's private_key_id, the JWT header's kid; Key its
	// public half.
	KeyID string
	Key   *rsa.PublicKey
}

// Options configures the fake's service account and clock.
type Options struct {
	ServiceAccount ServiceAccount
	// DelegatedScopes are the scopes the Admin console grants the service
	// account's client id (Security → API controls → Domain-wide
	// delegation). A token request for any other scope with a sub is
	// refused with unauthorized_client. Nil grants none.
	DelegatedScopes []string
	// TokenLifetime is the life of issued tokens (default 1h; expires_in is
	// a second less, as Google's 3599). The API refuses a token past it
	// with 401.
	TokenLifetime time.Duration
	// Now is the clock (default time.Now) for tokens and JWT times.
	Now func() time.Time
}

// Fault is a hook called before each Directory API request is served, with
// the request and its 1-based sequence number among API requests. When it
// returns handled=true, that answer is written instead of the API's.
type Fault func(r *http.Request, n int) (status int, header http.Header, body string, handled bool)

// Limit is one of the Directory API's rate-limit answers.
type Limit int

// The rate-limit answers of the Directory API's limits page.
const (
	// UserRateLimitExceeded is 403 userRateLimitExceeded: the queries per
	// minute per user of the Cloud project.
	UserRateLimitExceeded Limit = iota
	// QuotaExceeded is 403 quotaExceeded: concurrent requests of an
	// operation.
	QuotaExceeded
	// RateLimitExceeded is 429 rateLimitExceeded: the account's limit.
	RateLimitExceeded
)

// Server is a running fake. Create it with NewServer and Close it when done.
type Server struct {
	srv  *httptest.Server
	opts Options
	// pageKey authenticates page tokens, so a client that makes one up or
	// sends it with other parameters gets a 400.
	pageKey []byte

	mu            sync.Mutex
	dir           *directory
	tokens        map[string]tokenGrant
	seq           int // API requests so far
	requests      map[string]int
	tokenRequests int
	fault         Fault
	throttleLeft  int
	throttleKind  Limit
}

// tokenGrant is what an issued access token allows.
type tokenGrant struct {
	expiry  time.Time
	subject string // "" for the service account itself
	scopes  []string
}

// NewServer starts a fake serving domain. It panics when the domain is
// inconsistent (an empty or duplicate id or email, a member naming no user,
// group or the customer): those are bugs in the test, not behaviours to
// fake.
func NewServer(domain Domain, opts Options) *Server {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		pageKey:  randomBytes(32),
		tokens:   map[string]tokenGrant{},
		requests: map[string]int{},
		dir:      mustIndex(domain),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server root, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.srv.URL }

// BaseURL is the Directory API root, URL()+"/admin/directory/v1".
func (s *Server) BaseURL() string { return s.srv.URL + apiPrefix }

// TokenURL is the token endpoint, URL()+"/token": the JWT's audience.
func (s *Server) TokenURL() string { return s.srv.URL + "/token" }

// CustomerID is the id of the account served.
func (s *Server) CustomerID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.customerID
}

// SetDomain replaces the directory, for tests that change it between runs.
// An empty d.CustomerID keeps the current one. It panics like NewServer.
func (s *Server) SetDomain(d Domain) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.CustomerID == "" {
		d.CustomerID = s.dir.customerID
	}
	s.dir = mustIndex(d)
}

// IssueToken returns a live access token acting as subject with scopes,
// without a token request, for tests of the API that do not care how the
// token was obtained.
func (s *Server) IssueToken(subject string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked(subject, scopes)
}

func (s *Server) issueLocked(subject string, scopes []string) string {
	tok := "ya29.fake." + base64.RawURLEncoding.EncodeToString(randomBytes(32))
	s.tokens[tok] = tokenGrant{expiry: s.opts.Now().Add(s.opts.TokenLifetime), subject: subject, scopes: scopes}
	return tok
}

// ExpireTokens makes every token issued so far invalid: the API then
// answers 401 authError. Tokens issued afterwards are live.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, g := range s.tokens {
		g.expiry = time.Time{}
		s.tokens[tok] = g
	}
}

// Requests returns how many API requests (not token requests) arrived, by
// method and route: "GET /users", "GET /groups", "GET
// /groups/{groupKey}/members". A path that matches no route is counted
// under its literal path. Every request counts, however it was answered.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// TotalRequests is the number of API requests so far.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// TokenRequests is the number of token requests so far, failed ones
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

// Throttle makes the next n authenticated API requests answer with the
// rate-limit error kind (Google's body, no Retry-After). Requests refused
// for their token do not use up the n.
func (s *Server) Throttle(n int, kind Limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleLeft, s.throttleKind = n, kind
}

// takeThrottle reports whether this request is to be throttled, and how.
func (s *Server) takeThrottle() (Limit, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttleLeft <= 0 {
		return 0, false
	}
	s.throttleLeft--
	return s.throttleKind, true
}

// serveHTTP sends /admin/directory/v1/... to the API and /token to the
// token endpoint.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix+"/"); ok {
		s.serveAPI(w, r, rest)
		return
	}
	if r.URL.Path == "/token" {
		s.serveToken(w, r)
		return
	}
	http.NotFound(w, r)
}

// ServiceAccountKey returns the JSON key of a service account as Google
// Cloud console downloads it (Keys → Add key → JSON), holding key as
// PKCS#8 PEM, for a test to write where the client reads it.
func ServiceAccountKey(sa ServiceAccount, key *rsa.PrivateKey, tokenURI string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	project := "ptsync-test"
	if at := strings.Index(sa.Email, "@"); at >= 0 {
		project, _, _ = strings.Cut(sa.Email[at+1:], ".")
	}
	data, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              sa.KeyID,
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                sa.Email,
		"client_id":                   sa.ClientID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/" + sa.Email,
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return data
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// mac is the HMAC-SHA256 of parts under key, base64url.
func mac(key []byte, parts ...string) string {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// writeJSON writes v without HTML escaping.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client hung up; nothing to do
}
