// Package pagertreetest is an in-memory emulator of the PagerTree API, in
// one of two modes. v3, the default, is the API the seed reference
// describes: login with a raw token in Authorization, /user and /team CRUD,
// limit/offset/page lists, the {"errors":[{"message"}]} error body. v4 is
// PagerTree's public v4 API (PagerTree/pt4-docusaurus, docs/api): a Bearer
// API key, /api/v4/account_users with nested user, emails and phones,
// /api/v4/teams with member and admin account users, the same lists, and
// errors carrying their "code". A server speaks one: the other's routes
// answer 404. Fault knobs (latency, 5xx, 429 with Retry-After, a server-side
// rate limit, token expiry, creates whose answer is lost) and request
// counters let tests prove a client's behaviour without sleeping.
package pagertreetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default credentials POST /public/login accepts when Options leaves them empty.
const (
	DefaultUsername = "admin@example.com"
	DefaultPassword = "password"
)

// Options configures a Server.
type Options struct {
	// API is the API served: "v3" (also when empty) or "v4". New panics on
	// anything else.
	API string
	// Username and Password are the credentials POST /public/login accepts
	// (DefaultUsername and DefaultPassword when empty; v3 only). The
	// username is compared without regard to letter case, the password
	// exactly.
	Username, Password string
	// APIKey is the key v4 accepts as "Authorization: Bearer <key>"
	// (DefaultAPIKey when empty; v4 only).
	APIKey string
	// AccountID is the account_id every v4 object carries (a new ULID
	// when empty). Two emulators started together issue the same ids, so
	// a test of two accounts names them.
	AccountID string
}

// Faults are the knobs that make the emulator misbehave. The zero value
// misbehaves in no way. Rates are fractions in [0, 1]. Faults apply to
// every route, /public/login included, in both modes.
type Faults struct {
	// Latency is added to every request, outside any lock, so concurrent
	// requests overlap as they would against a remote server.
	Latency time.Duration
	// ErrorRate is the fraction of requests answered 500 before anything
	// else is done (nothing is committed).
	ErrorRate float64
	// RateLimitRate is the fraction of requests answered 429 with a
	// Retry-After header, before anything is committed.
	RateLimitRate float64
	// RetryAfter is what every 429 advertises. The header carries whole
	// seconds, rounded up; zero means one second.
	RetryAfter time.Duration
	// RateLimit is a server-side limit in requests per second (0 = none),
	// enforced by a token bucket of RateBurst; a request over it is
	// answered 429 with Retry-After.
	RateLimit float64
	// RateBurst is the token bucket's size; 0 means 2: one request of slack
	// so that a client limiting itself to RateLimit with a burst of 1 is
	// not punished for network jitter.
	RateBurst int
	// RateTolerance is how far ahead of its turn at RateLimit a request
	// may arrive without counting in Stats.RateViolations: the room left
	// for transit times that vary between a client's limiter and this
	// server's clock. Zero leaves none.
	RateTolerance time.Duration
	// TokenTTL makes a token expire after this many authenticated requests
	// (0 = never): request TokenTTL+1 with it is answered 401. v4 API keys
	// do not expire.
	TokenTTL int
	// DropCreateRate is the fraction of successful creates (POST /user,
	// /team, /api/v4/account_users, /api/v4/teams) whose object is
	// committed but whose connection is then closed without an answer, as
	// when a response is lost in transit.
	DropCreateRate float64
	// Seed seeds the random source that picks faulted requests, so a
	// sequence of requests meets the same faults every run.
	Seed int64
}

// Stats are the emulator's counters since it started or ResetStats.
type Stats struct {
	// Requests counts every request received, faulted or not, by "METHOD
	// route" where route is the template: "GET /user", "PUT /team/:id",
	// "POST /public/login", "DELETE /api/v4/account_users/:id"; a path
	// matching no route of the server's API counts as "METHOD (unmatched)".
	Requests map[string]int
	// Status counts answers by HTTP status. Dropped creates, and requests
	// whose client went away during the latency, are not here.
	Status map[int]int
	// WriteAttempts counts POST, PUT and DELETE requests on the routes of
	// users, account users and teams, whatever became of them.
	WriteAttempts int
	// Writes counts those writes that changed the state, including the
	// creates whose answer was dropped.
	Writes int
	// Dropped counts creates committed whose connection was then closed
	// with no answer.
	Dropped int
	// RetryAfterViolations counts requests that arrived from a client
	// (keyed by its Authorization value, or its IP address when it sent
	// none) before the Retry-After it was last given had elapsed. With
	// several workers sharing one token, a request already on its way when
	// another got a 429 counts too; EarlyRetries has no such blind spot.
	RetryAfterViolations int
	// EarlyRetries counts repeats of a request answered 429 (same client
	// IP address, method, URL and body) that arrived before its Retry-After
	// had elapsed.
	EarlyRetries int
	// RateViolations counts requests, answered 429 or not, that arrived
	// more than Faults.RateTolerance ahead of their turn at
	// Faults.RateLimit: the generic cell rate algorithm (ITU-T I.371),
	// whose delay variation tolerance is that room. It stays zero exactly
	// when, for any request and the n-th request after it, the two arrived
	// at least n/RateLimit − RateTolerance apart. Unlike the 429s of the
	// bucket it ignores RateBurst: a client that sends even one request
	// more than the rate in some window arrives a whole turn early there.
	RateViolations int
	// MaxInFlight is the largest number of requests being served at once,
	// latency included: a measure of a client's concurrency.
	MaxInFlight int
}

// Server is the emulator. It is an http.Handler; NewServer also starts it
// on a local address. All methods are safe for concurrent use.
type Server struct {
	opts Options
	http *httptest.Server
	// now is the clock for Retry-After deadlines, the rate limit and
	// timestamps; tests replace it to avoid sleeping.
	now func() time.Time

	mu        sync.Mutex
	faults    Faults
	faultRand *rand.Rand
	limiter   *rate.Limiter // nil without Faults.RateLimit
	// nextTurn is when the next request is due at Faults.RateLimit (the
	// algorithm's theoretical arrival time); zero before the first.
	nextTurn time.Time
	stats    Stats
	inFlight int
	// Retry-After deadlines given, by client and by request (see Stats).
	clientDeadlines  map[string]time.Time
	requestDeadlines map[string]time.Time
	tokens           map[string]*session

	state          // v3's account
	v4    *stateV4 // v4's account; nil in v3 mode, which this tells
}

// session is what the emulator knows of one issued token.
type session struct {
	uses int // authenticated requests made with it
}

// New returns an emulator that is not listening: mount it in an
// http.Server of your own (as `ptsync emulator` does).
func New(opts Options) *Server {
	if opts.API != "" && opts.API != "v3" && opts.API != "v4" {
		panic(fmt.Sprintf(`pagertreetest: Options.API %q: want "v3", "v4" or empty`, opts.API))
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	s := &Server{
		opts:   opts,
		now:    time.Now,
		tokens: map[string]*session{},
		state:  newState(),
	}
	if opts.API == "v4" {
		s.v4 = newStateV4(s.now())
		if opts.AccountID != "" {
			s.v4.account = opts.AccountID
		}
	}
	s.SetFaults(Faults{})
	s.ResetStats()
	return s
}

// NewServer returns an emulator serving on 127.0.0.1 at URL(). Close it
// when done.
func NewServer(opts Options) *Server {
	s := New(opts)
	s.http = httptest.NewServer(s)
	return s
}

// URL is the base URL of a Server made by NewServer ("" for New), e.g.
// "http://127.0.0.1:41234", with no trailing slash.
func (s *Server) URL() string {
	if s.http == nil {
		return ""
	}
	return s.http.URL
}

// Close stops a Server made by NewServer; it does nothing for New.
func (s *Server) Close() {
	if s.http != nil {
		s.http.Close()
	}
}

// SetFaults replaces the fault knobs, reseeds the fault random source,
// refills the rate limit's bucket and restarts its RateViolations schedule.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.faultRand = rand.New(rand.NewPCG(uint64(f.Seed), 0))
	s.limiter = nil
	s.nextTurn = time.Time{}
	if f.RateLimit > 0 {
		burst := f.RateBurst
		if burst <= 0 {
			burst = 2
		}
		s.limiter = rate.NewLimiter(rate.Limit(f.RateLimit), burst)
	}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Status = maps.Clone(s.stats.Status)
	return st
}

// ResetStats zeroes the counters and forgets the Retry-After deadlines
// given so far.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{Requests: map[string]int{}, Status: map[int]int{}, MaxInFlight: s.inFlight}
	s.clientDeadlines = map[string]time.Time{}
	s.requestDeadlines = map[string]time.Time{}
}

// ExpireTokens invalidates every v3 token issued so far: the next request
// with any of them is answered 401. v4 API keys do not expire.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ServeHTTP serves the PagerTree API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.matchRoute(r.URL.Path)
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	latency, overLimit := s.arrive(r, rt, body)
	defer s.leave()
	if latency > 0 {
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return // the client went away; there is no one to answer
		}
	}
	s.write(w, s.serve(r, rt, body, bodyErr, overLimit))
}

// arrive counts a request, checks it against the Retry-After deadlines
// given before and returns the latency to add and whether the request is
// over the rate limit. Both checks are made on arrival, before the latency,
// so that timer jitter does not blur them.
func (s *Server) arrive(r *http.Request, rt route, body []byte) (latency time.Duration, overLimit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.stats.Requests[r.Method+" "+rt.template]++
	if rt.isWrite(r.Method) {
		s.stats.WriteAttempts++
	}
	s.inFlight++
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.inFlight)
	if early(s.clientDeadlines, clientKey(r), now) {
		s.stats.RetryAfterViolations++
	}
	if early(s.requestDeadlines, requestKey(r, body), now) {
		s.stats.EarlyRetries++
	}
	overLimit = s.limiter != nil && !s.limiter.AllowN(now, 1)
	if s.faults.RateLimit > 0 {
		s.checkTurn(now)
	}
	return s.faults.Latency, overLimit
}

// checkTurn counts a request that arrived too far ahead of its turn at
// the rate limit (see Stats.RateViolations). An early request does not
// move the schedule, so each extra request counts once; an idle spell does
// not bank turns for a burst later.
func (s *Server) checkTurn(now time.Time) {
	if now.Before(s.nextTurn.Add(-s.faults.RateTolerance)) {
		s.stats.RateViolations++
		return
	}
	// Capped so that a tiny rate cannot overflow a Duration (or time).
	interval := time.Duration(min(float64(time.Second)/s.faults.RateLimit, float64(maxInterval)))
	if s.nextTurn.Before(now) {
		s.nextTurn = now
	}
	s.nextTurn = s.nextTurn.Add(interval)
}

// maxInterval bounds the interval between turns at the rate limit.
const maxInterval = 100 * 365 * 24 * time.Hour

func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
}

// early reports whether key is still before its deadline, forgetting
// deadlines that have passed.
func early(deadlines map[string]time.Time, key string, now time.Time) bool {
	deadline, ok := deadlines[key]
	if !ok {
		return false
	}
	if now.Before(deadline) {
		return true
	}
	delete(deadlines, key)
	return false
}

// clientKey names the client a request comes from: its Authorization value
// (kept in memory only) or, without one, its IP address.
func clientKey(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		return "auth " + auth
	}
	return "ip " + remoteIP(r)
}

// requestKey names a request so that a retry of it can be recognised.
func requestKey(r *http.Request, body []byte) string {
	sum := sha256.Sum256(body)
	return remoteIP(r) + " " + r.Method + " " + r.URL.RequestURI() + " " + hex.EncodeToString(sum[:])
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
