// Package oktatest is an in-process fake of the parts of Okta that a
// directory reader uses: the Management API's users and groups, the System
// Log of their changes, and the org authorization server's token endpoint
// for OAuth service apps (client_credentials with private_key_jwt). It
// listens on 127.0.0.1 only.
//
// It was written from Okta's public documentation (developer.okta.com, the
// okta-management-openapi-spec and Okta's error-code catalogue), not from a
// client, so that a client tested against it meets Okta's behaviour:
//
//   - Lists page with an opaque after cursor and RFC 8288 Link headers, sent
//     as separate header lines: always <…>; rel="self", and <…?after=…&limit=N>;
//     rel="next" only while more remain. Clients must follow next as given.
//   - GET /api/v1/groups: limit defaults to 10000, its documented maximum;
//     larger values are capped, not rejected. search takes filter
//     expressions (eq, sw, co, gt, ge, lt, le, pr; and, or, parentheses).
//     q is a name prefix match that does not page: at most limit results
//     (default 300), exact matches first, never a next link.
//   - GET /api/v1/groups/{id}/users: limit defaults to 1000 and is capped at
//     1000; an unknown group is 404 E0000007.
//   - GET /api/v1/users: limit defaults to 200 and is capped at 200;
//     DEPROVISIONED users are left out.
//   - GET /api/v1/logs (scope okta.logs.read) lists the events the change
//     helpers (AddMember, CreateUser, DeactivateUser...) logged, published
//     by the fake's clock, as LogEvent objects (uuid, published, eventType,
//     actor, target with User and UserGroup entries). since and until are
//     RFC 3339; since defaults to 7 days before until and is refused
//     (400 E0000053) when over 180 days back; events over 90 days old are
//     not returned. limit defaults to 100 and is capped at 1000. A request
//     without until in ASCENDING order (the default) is a polling request:
//     it filters on persistence time (Options.LogDelay after published) and
//     always has a next link, which returns later what was persisted since.
//     Others are bounded: published between since and until, a next link
//     only while more remain. filter takes eventType, target.id,
//     target.type, actor.id and actor.type with eq, ne, sw, ew, co, the
//     orderings and pr; an invalid filter is 400 E0000053.
//   - SSWS failures are 401 E0000011; a request with no credentials is 403
//     E0000005. Bearer failures carry no body, only a WWW-Authenticate
//     challenge: 401 invalid_token for unknown or expired tokens, 403
//     insufficient_scope for a token without the endpoint's scope (a .manage
//     scope includes .read).
//   - The token endpoint grants the requested scopes the app holds and drops
//     the others (400 consent_required only when none is held). A client
//     assertion's exp may be at most an hour ahead, and an assertion with a
//     jti is refused the second time: sign a new one for every token
//     request. Errors are OAuth JSON ({"error", "error_description"}).
//   - Rate limits, when configured, are counted per bucket (/api/v1/groups*,
//     /api/v1/users*, /api/v1/logs, /oauth2/v1/token, the rest of /api/v1) with
//     X-Rate-Limit-Limit, -Remaining and -Reset (UTC epoch seconds) on every
//     response; an exhausted bucket answers 429 E0000047 until its reset.
//
// Features of Okta that the fake does not implement (expand, sortBy, fields,
// search on users, q on logs...) answer 501 E0000060 rather than being
// ignored.
package oktatest

import (
	"crypto/rsa"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// User is a user of the fake org.
type User struct {
	ID string
	// Status is one of ACTIVE (the default), STAGED, PROVISIONED, RECOVERY,
	// LOCKED_OUT, PASSWORD_EXPIRED, SUSPENDED and DEPROVISIONED.
	Status  string
	Profile Profile
}

// Profile holds the base profile attributes of a User.
type Profile struct {
	Login, Email, FirstName, LastName, DisplayName, MobilePhone, PrimaryPhone string
}

// Group is a group of the fake org.
type Group struct {
	ID, Name, Description string
	Type                  string   // OKTA_GROUP (the default), APP_GROUP or BUILT_IN
	Members               []string // user IDs
}

// Org is what the fake serves. NewServer and SetOrg panic on an Org that
// could not exist in Okta: an empty or repeated ID, a member that is not a
// user, an unknown status or group type.
type Org struct {
	Users  []User
	Groups []Group
}

// Options configure a Server.
type Options struct {
	// APIToken is accepted as "Authorization: SSWS <token>"; "" accepts none.
	APIToken string

	// The OAuth service app. The token endpoint accepts client_credentials
	// requests whose private_key_jwt client assertion is signed by the
	// private half of ClientKey (RS256, RS384 or RS512), with iss = sub =
	// ClientID and aud = TokenURL(). Scopes are the app's granted scopes,
	// such as okta.users.read and okta.groups.read.
	ClientID  string
	ClientKey *rsa.PublicKey
	Scopes    []string
	// TokenLifetime is how long access tokens work; Okta fixes it at one
	// hour, the default.
	TokenLifetime time.Duration

	// RateLimit is how many requests each bucket allows per RateWindow
	// (default one minute, as Okta's). Zero means no limit and no
	// X-Rate-Limit headers.
	RateLimit  int
	RateWindow time.Duration

	// LogDelay is how long after it is published an event is persisted in
	// the System Log, and so seen by requests; zero: at once. Polling
	// requests filter on the persistence time, bounded ones on published.
	LogDelay time.Duration

	// Now is the fake's clock (default time.Now). It is called from the
	// server's goroutines.
	Now func() time.Time
}

// Fault, when set with SetFault, sees each request before the fake does;
// n counts the server's requests from 1. When handled is true the fake
// answers with status, header and body instead and does nothing else: the
// request uses no rate-limit quota and needs no credentials.
type Fault func(r *http.Request, n int) (status int, header http.Header, body string, handled bool)

// Server is a running fake Okta org. Its methods are safe for concurrent use.
type Server struct {
	srv  *httptest.Server
	base string // URL()
	opts Options

	mu            sync.Mutex
	org           *index
	fault         Fault
	requests      map[string]int
	total         int
	tokenRequests int
	violations    int
	buckets       map[string]*bucket
	tokens        map[string]accessToken
	assertions    map[string]time.Time // jti of accepted client assertions -> their exp
	cursors       map[string]cursor
	log           []logEvent
	logSeq        int
	logCursors    map[string]logPos
}

// NewServer starts a fake Okta org serving org. Close it when done.
func NewServer(org Org, opts Options) *Server {
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Scopes = slices.Clone(opts.Scopes)
	s := &Server{
		opts:       opts,
		org:        newIndex(org),
		requests:   map[string]int{},
		buckets:    map[string]*bucket{},
		tokens:     map[string]accessToken{},
		assertions: map[string]time.Time{},
		cursors:    map[string]cursor{},
		logCursors: map[string]logPos{},
	}
	// The base URL is known before the server starts, so the handler never
	// reads a field written after its goroutines began.
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	s.base = "http://" + s.srv.Listener.Addr().String()
	s.srv.Start()
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the org URL, such as http://127.0.0.1:41234.
func (s *Server) URL() string { return s.base }

// TokenURL is the org authorization server's token endpoint, which is also
// the audience that client assertions must name.
func (s *Server) TokenURL() string { return s.base + tokenPath }

// ExpireTokens ends every access token issued so far: each gets 401
// invalid_token from then on.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		t.expires = time.Time{}
		s.tokens[k] = t
	}
}

// Requests counts the requests received by route, such as
// "GET /api/v1/groups", "GET /api/v1/groups/{id}/users", "GET /api/v1/users",
// "GET /api/v1/logs" and "POST /oauth2/v1/token". Rejected and faulted requests count too.
func (s *Server) Requests() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// TotalRequests counts every request received, token requests included.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// TokenRequests counts the requests to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// RateLimitViolations counts requests that arrived while their bucket's
// X-Rate-Limit-Remaining was already 0 and before its X-Rate-Limit-Reset;
// each was answered 429 E0000047.
func (s *Server) RateLimitViolations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// SetFault installs f; nil removes it.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetOrg replaces what the fake serves. Cursors already handed out stay
// valid: they resume after the last ID they returned. It logs nothing in
// the System Log; the change helpers (AddMember, CreateUser...) do.
func (s *Server) SetOrg(o Org) {
	ix := newIndex(o)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org = ix
}

const (
	tokenPath         = "/oauth2/v1/token"
	groupsPath        = "/api/v1/groups"
	usersPath         = "/api/v1/users"
	groupUsersPattern = "/api/v1/groups/{id}/users"
	userPattern       = "/api/v1/users/{id}"
)

// A route is how the fake handles one kind of request.
type route struct {
	name   string // the key in Requests
	bucket string // rate-limit bucket
	serve  func(w http.ResponseWriter, r *http.Request, now time.Time)
}

func (s *Server) route(r *http.Request) route {
	p := r.URL.Path
	switch {
	case p == tokenPath:
		return route{r.Method + " " + tokenPath, tokenPath, s.token}
	case p == groupsPath:
		return route{r.Method + " " + groupsPath, "/api/v1/groups*", s.api(scopeGroupsRead, s.listGroups)}
	case p == usersPath:
		return route{r.Method + " " + usersPath, "/api/v1/users*", s.api(scopeUsersRead, s.listUsers)}
	case p == logsPath:
		return route{r.Method + " " + logsPath, logsPath, s.api(scopeLogsRead, s.listLogs)}
	}
	if id, ok := strings.CutPrefix(p, usersPath+"/"); ok && id != "" && !strings.Contains(id, "/") {
		// Okta's own bucket for one user: "/api/v1/users/${id}".
		return route{r.Method + " " + userPattern, userPattern, s.api(scopeUsersRead,
			func(w http.ResponseWriter, r *http.Request, _ time.Time) { s.getUser(w, r, id) })}
	}
	if id, ok := groupUsersID(p); ok {
		return route{r.Method + " " + groupUsersPattern, "/api/v1/groups*", s.api(scopeGroupsRead,
			func(w http.ResponseWriter, r *http.Request, now time.Time) { s.listGroupUsers(w, r, id) })}
	}
	return route{r.Method + " " + p, "/api/v1", func(w http.ResponseWriter, r *http.Request, _ time.Time) {
		writeError(w, http.StatusNotFound, codeNotFound, "Not found: Resource not found: "+r.URL.Path)
	}}
}

// groupUsersID returns the {id} of /api/v1/groups/{id}/users.
func groupUsersID(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, groupsPath+"/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/users")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.route(r)
	s.mu.Lock()
	s.total++
	n := s.total
	s.requests[rt.name]++
	if r.URL.Path == tokenPath {
		s.tokenRequests++
	}
	fault := s.fault
	s.mu.Unlock()

	// The fault is called without the lock: it may call the Server.
	if fault != nil {
		if status, header, body, handled := fault(r, n); handled {
			for k, vs := range header {
				for _, v := range vs {
					w.Header().Add(k, v)
				}
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
	}

	now := s.opts.Now()
	h := w.Header()
	// Okta's SDKs compute their backoff as X-Rate-Limit-Reset minus Date, so
	// Date follows the fake's clock.
	h.Set("Date", now.UTC().Format(http.TimeFormat))
	h.Set("X-Okta-Request-Id", randomID("req"))
	if !s.admit(w, rt.bucket, now) {
		return
	}
	rt.serve(w, r, now)
}

// index is an Org validated and arranged for serving. Lists are sorted by ID,
// the order the fake pages in.
type index struct {
	users   []User
	groups  []Group
	members map[string][]User // by group ID, for every group
}

var (
	userStatuses = []string{"ACTIVE", "STAGED", "PROVISIONED", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED", "DEPROVISIONED"}
	groupTypes   = []string{"OKTA_GROUP", "APP_GROUP", "BUILT_IN"}
)

func newIndex(o Org) *index {
	ix := &index{members: map[string][]User{}}
	byUser := map[string]User{}
	for _, u := range o.Users {
		if u.Status == "" {
			u.Status = "ACTIVE"
		}
		switch _, dup := byUser[u.ID]; {
		case u.ID == "":
			panic("oktatest: a user has no ID")
		case dup:
			panic(fmt.Sprintf("oktatest: user ID %q repeated", u.ID))
		case !slices.Contains(userStatuses, u.Status):
			panic(fmt.Sprintf("oktatest: user %q has unknown status %q", u.ID, u.Status))
		}
		byUser[u.ID] = u
		ix.users = append(ix.users, u)
	}
	for _, g := range o.Groups {
		if g.Type == "" {
			g.Type = "OKTA_GROUP"
		}
		switch _, dup := ix.members[g.ID]; {
		case g.ID == "":
			panic("oktatest: a group has no ID")
		case dup:
			panic(fmt.Sprintf("oktatest: group ID %q repeated", g.ID))
		case !slices.Contains(groupTypes, g.Type):
			panic(fmt.Sprintf("oktatest: group %q has unknown type %q", g.ID, g.Type))
		}
		var members []User
		seen := map[string]bool{}
		for _, id := range g.Members {
			u, ok := byUser[id]
			if !ok {
				panic(fmt.Sprintf("oktatest: group %q has member %q, who is not a user", g.ID, id))
			}
			if seen[id] {
				panic(fmt.Sprintf("oktatest: group %q lists member %q twice", g.ID, id))
			}
			seen[id] = true
			members = append(members, u)
		}
		slices.SortFunc(members, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
		ix.members[g.ID] = members
		ix.groups = append(ix.groups, g)
	}
	slices.SortFunc(ix.users, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(ix.groups, func(a, b Group) int { return strings.Compare(a.ID, b.ID) })
	return ix
}

func (s *Server) snapshot() *index {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.org
}
