// Package scimtest is an in-process fake of a SCIM 2.0 service provider
// (RFC 7643 schemas, RFC 7644 protocol), read side only, and of an OAuth
// 2.0 client-credentials token endpoint (RFC 6749 §4.4). It is written from
// the RFCs, not from any client, so a client that passes against it has
// been checked against the documented protocol:
//
//   - GET {BaseURL}/ServiceProviderConfig describes what the server does:
//     filter.supported and filter.maxResults (RFC 7643 §5) and the
//     pagination object of the SCIM cursor-pagination draft (index paging,
//     maxPageSize). It is served without checking credentials, as RFC 7644
//     §4 lets a provider do for its discovery endpoints.
//   - GET {BaseURL}/Users and /Groups are list queries (RFC 7644 §3.4.2):
//     filter (§3.4.2.2, every operator, and/or/not, value paths), 1-based
//     startIndex and count (§3.4.2.4: count capped at maxResults, startIndex
//     below 1 taken as 1, count below 0 as 0), attributes and
//     excludedAttributes (§3.4.2.5, sub-attributes included), answered with a
//     ListResponse (totalResults, startIndex, itemsPerPage, Resources).
//     GET /Users/{id} and /Groups/{id} read one resource.
//   - Every error is a SCIM error body (RFC 7644 §3.12): schemas
//     urn:ietf:params:scim:api:messages:2.0:Error, status as a string,
//     scimType where the RFC names one, and detail.
//   - Every resource request needs "Authorization: Bearer <token>": the
//     static Options.BearerToken or a live token from the token endpoint.
//   - POST {URL}/oauth2/token takes grant_type=client_credentials with the
//     client authenticated by HTTP Basic (form-encoded id and secret, RFC
//     6749 §2.3.1) or in the body, and issues expiring bearer tokens; its
//     errors are RFC 6749 §5.2 bodies.
//
// Resources are listed in the order the Directory gives them, so paging is
// stable. Options switch capabilities off (filtering, paging, attribute
// projection, member types) and make the server misbehave (a totalResults
// that lies, startIndex ignored), and Fault and Throttle inject answers.
// The server listens on 127.0.0.1 only (httptest) and is safe for
// concurrent use.
package scimtest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Multi is one item of a multi-valued attribute (emails, phoneNumbers).
type Multi struct {
	Value, Type string
	Primary     bool
}

// Name is a user's name attribute.
type Name struct {
	Formatted, GivenName, FamilyName string
}

// User is a SCIM user. Empty strings and empty lists are left out of the
// resource, as a provider leaves out unassigned attributes.
type User struct {
	ID, ExternalID, UserName, DisplayName string
	Name                                  Name
	Emails, PhoneNumbers                  []Multi
	// Active is the active attribute; nil leaves it out.
	Active *bool
}

// Group is a SCIM group.
type Group struct {
	ID, ExternalID, DisplayName string
	// Members holds the ids of member users and groups. An id that names
	// neither is listed as a User (a provider may keep a member it has
	// since deleted).
	Members []string
}

// Directory is what the fake serves.
type Directory struct {
	Users  []User
	Groups []Group
}

// Options configures the fake's credentials, capabilities and faults.
type Options struct {
	// BearerToken, when set, is a static token every request may carry.
	BearerToken string
	// ClientID and ClientSecret are the one client the token endpoint
	// knows; with ClientID empty the endpoint refuses every request.
	ClientID, ClientSecret string
	// SecretInBodyOnly makes the token endpoint refuse HTTP Basic client
	// authentication (RFC 6749 §2.3.1 lets a server take the secret in the
	// body; some take it only there).
	SecretInBodyOnly bool
	// Scope, when set, must be among the scopes of a token request.
	Scope string
	// TokenLifetime is the expires_in of issued tokens (default 1h); a token
	// past it is refused with 401.
	TokenLifetime time.Duration

	// MaxResults is the most resources one list answer holds (default 200),
	// advertised as filter.maxResults and pagination.maxPageSize.
	MaxResults int
	// NoFilter advertises filter.supported false and answers a filter with
	// 400 invalidFilter.
	NoFilter bool
	// NoPaging advertises pagination.index false; lists then ignore
	// startIndex and count and answer the first MaxResults resources
	// (totalResults still counts them all).
	NoPaging bool
	// NoServiceProviderConfig makes /ServiceProviderConfig answer 404.
	NoServiceProviderConfig bool
	// IgnoreAttributes makes the server answer whole resources whatever
	// attributes and excludedAttributes ask.
	IgnoreAttributes bool
	// OmitMemberType leaves type and $ref out of groups' members, as
	// RFC 7643 allows: only value is required.
	OmitMemberType bool

	// TotalResultsDelta is added to every totalResults reported: a server
	// that lies.
	TotalResultsDelta int
	// IgnoreStartIndex makes lists advertise paging yet always answer from
	// the first resource: every page repeats the first.
	IgnoreStartIndex bool

	// Now is the clock (default time.Now) for token lifetimes and
	// Retry-After bookkeeping.
	Now func() time.Time
}

// Fault is called before each SCIM request (not token requests) is served,
// with the request and its 1-based sequence number among SCIM requests.
// When it returns handled=true, that answer is written instead.
type Fault func(r *http.Request, n int) (status int, header http.Header, body string, handled bool)

// Call is one SCIM request as it arrived.
type Call struct {
	Method, Route string
	Query         url.Values
}

// Server is a running fake. Create it with NewServer and Close it when
// done.
type Server struct {
	srv  *httptest.Server
	opts Options

	mu            sync.Mutex
	dir           *index
	tokens        map[string]time.Time // access token -> expiry
	seq           int
	requests      map[string]int
	calls         []Call
	tokenRequests int
	fault         Fault
	throttleLeft  int
	throttleFor   time.Duration
	notBefore     map[string]time.Time // by route: no request before this (Retry-After)
	violations    int
}

// basePath is where the SCIM endpoints live.
const basePath = "/scim/v2"

// NewServer starts a fake serving dir. It panics on an inconsistent
// directory (an empty or duplicate id): a bug in the test.
func NewServer(dir Directory, opts Options) *Server {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 200
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, tokens: map[string]time.Time{}, requests: map[string]int{}, notBefore: map[string]time.Time{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.dir = newIndex(dir, s.BaseURL(), opts.OmitMemberType)
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server root, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.srv.URL }

// BaseURL is the SCIM root, URL()+"/scim/v2".
func (s *Server) BaseURL() string { return s.srv.URL + basePath }

// TokenURL is the token endpoint, URL()+"/oauth2/token".
func (s *Server) TokenURL() string { return s.srv.URL + "/oauth2/token" }

// SetDirectory replaces what the server serves.
func (s *Server) SetDirectory(dir Directory) {
	idx := newIndex(dir, s.BaseURL(), s.opts.OmitMemberType)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = idx
}

// IssueToken returns a live access token without a token request.
func (s *Server) IssueToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked()
}

func (s *Server) issueLocked() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenLifetime)
	return tok
}

// ExpireTokens makes every token issued so far invalid; later ones are
// live. The static BearerToken is not affected.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok := range s.tokens {
		s.tokens[tok] = time.Time{}
	}
}

// Requests returns how many SCIM requests arrived, by method and route
// template: "GET /Users", "GET /Users/{id}", "GET /Groups",
// "GET /Groups/{id}", "GET /ServiceProviderConfig". Every request counts,
// whatever its answer.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

// Calls returns every SCIM request so far, in order of arrival.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// TotalRequests is the number of SCIM requests so far.
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

// Throttle makes the next n authenticated SCIM requests answer 429 with
// "Retry-After: <seconds>" (retryAfter rounded up to whole seconds) and a
// SCIM error body.
func (s *Server) Throttle(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleLeft, s.throttleFor = n, retryAfter
}

// RetryAfterViolations counts SCIM requests that arrived, by Options.Now,
// before the Retry-After of the latest 429 to a request of the same route
// had elapsed. (Requests of other routes may already be in flight when a
// 429 is answered, so they do not count.)
func (s *Server) RetryAfterViolations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

func (s *Server) takeThrottle(route string) (seconds int, throttled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttleLeft <= 0 {
		return 0, false
	}
	s.throttleLeft--
	seconds = int(math.Ceil(s.throttleFor.Seconds()))
	if until := s.opts.Now().Add(time.Duration(seconds) * time.Second); until.After(s.notBefore[route]) {
		s.notBefore[route] = until
	}
	return seconds, true
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth2/token":
		s.serveToken(w, r)
	case r.URL.Path == basePath || strings.HasPrefix(r.URL.Path, basePath+"/"):
		s.serveSCIM(w, r, strings.TrimPrefix(r.URL.Path, basePath))
	default:
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("scimtest: no endpoint %s", r.URL.Path))
	}
}

// route is the template of a SCIM path: "/Users/{id}" for "/Users/u-1".
func route(path string) (tmpl, resourceType, id string) {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(seg) == 1 && (seg[0] == "Users" || seg[0] == "Groups" || seg[0] == "ServiceProviderConfig"):
		return "/" + seg[0], seg[0], ""
	case len(seg) == 2 && (seg[0] == "Users" || seg[0] == "Groups") && seg[1] != "":
		return "/" + seg[0] + "/{id}", seg[0], seg[1]
	}
	return path, "", ""
}

func (s *Server) serveSCIM(w http.ResponseWriter, r *http.Request, path string) {
	tmpl, resourceType, id := route(path)
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.requests[r.Method+" "+tmpl]++
	s.calls = append(s.calls, Call{Method: r.Method, Route: tmpl, Query: r.URL.Query()})
	fault := s.fault
	if nb, ok := s.notBefore[r.Method+" "+tmpl]; ok && s.opts.Now().Before(nb) {
		s.violations++
	}
	s.mu.Unlock()

	if fault != nil {
		if status, h, body, handled := fault(r, n); handled {
			for k, v := range h {
				w.Header()[k] = v
			}
			if w.Header().Get("Content-Type") == "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
	}
	if !acceptable(r.Header.Get("Accept")) {
		writeError(w, http.StatusNotAcceptable, "", "the Accept header allows neither application/scim+json nor application/json")
		return
	}
	if tmpl == "/ServiceProviderConfig" {
		if s.opts.NoServiceProviderConfig {
			writeError(w, http.StatusNotFound, "", "Endpoint /ServiceProviderConfig not found")
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "", "ServiceProviderConfig is read-only")
			return
		}
		s.serveServiceProviderConfig(w)
		return
	}
	if !s.authorized(w, r) {
		return
	}
	if secs, throttled := s.takeThrottle(r.Method + " " + tmpl); throttled {
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, "", "Too many requests; retry later")
		return
	}
	if resourceType == "" {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("Endpoint %s not found", path))
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotImplemented, "", fmt.Sprintf("scimtest: %s %s is not modelled (the fake is read-only)", r.Method, tmpl))
		return
	}
	s.mu.Lock()
	dir := s.dir
	s.mu.Unlock()
	if id != "" {
		s.serveGet(w, r, dir, resourceType, id)
		return
	}
	s.serveList(w, r, dir, resourceType)
}

// acceptable reports whether an Accept header admits a SCIM answer.
func acceptable(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "application/scim+json", "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

// authorized checks the bearer token and writes the 401 when it fails.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scimtest"`)
		writeError(w, http.StatusUnauthorized, "", "Authorization failure. The authorization header is invalid or missing.")
		return false
	}
	if s.opts.BearerToken != "" && tok == s.opts.BearerToken {
		return true
	}
	s.mu.Lock()
	exp, ok := s.tokens[tok]
	now := s.opts.Now()
	s.mu.Unlock()
	if !ok || !now.Before(exp) {
		detail := "Authorization failure. The bearer token is not valid."
		if ok {
			detail = "Authorization failure. The bearer token has expired."
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="scimtest", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "", detail)
		return false
	}
	return true
}
