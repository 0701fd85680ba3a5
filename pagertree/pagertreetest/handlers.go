package pagertreetest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// maxBodyBytes bounds a request body; the API's bodies are small.
const maxBodyBytes = 1 << 20

// v3 route templates, as counted in Stats.Requests.
const (
	routeLogin     = "/public/login"
	routeUsers     = "/user"
	routeUser      = "/user/:id"
	routeTeams     = "/team"
	routeTeam      = "/team/:id"
	routeUnmatched = "(unmatched)"
)

// route is a request path matched to its template.
type route struct {
	template string
	id       string // the :id of /user/:id, /team/:id and the like
}

// matchRoute matches path to a route of the server's API.
func (s *Server) matchRoute(path string) route {
	if s.v4 != nil {
		return matchRouteV4(path)
	}
	return matchRouteV3(path)
}

func matchRouteV3(path string) route {
	switch path {
	case routeLogin, routeUsers, routeTeams:
		return route{template: path}
	}
	if id, ok := itemID(path, routeUsers); ok {
		return route{template: routeUser, id: id}
	}
	if id, ok := itemID(path, routeTeams); ok {
		return route{template: routeTeam, id: id}
	}
	return route{template: routeUnmatched}
}

// itemID returns the id of path "collection/id".
func itemID(path, collection string) (string, bool) {
	id, ok := strings.CutPrefix(path, collection+"/")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// allow lists the methods a route answers.
func (rt route) allow() []string {
	switch rt.template {
	case routeLogin:
		return []string{http.MethodPost}
	case routeUsers, routeTeams, routeAccountUsers, routeTeamsV4:
		return []string{http.MethodGet, http.MethodPost}
	case routeUser, routeTeam, routeAccountUser, routeTeamV4:
		return []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	case routeUserV4:
		return []string{http.MethodDelete}
	}
	return nil
}

// isWrite reports whether a request would change users, account users or
// teams.
func (rt route) isWrite(method string) bool {
	if rt.template == routeLogin || rt.template == routeUnmatched {
		return false
	}
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodDelete
}

// response is an answer decided under the lock and written outside it.
type response struct {
	status     int
	body       any // nil: no body
	retryAfter int // seconds; 0: no Retry-After header
	allow      string
	drop       bool // close the connection without answering
}

func errorResponse(status int, message string) response {
	return response{status: status, body: pagertree.ErrorBody{Errors: []pagertree.ErrorMessage{{Message: message}}}}
}

// serve decides the answer to a request: faults first, then routing,
// authentication and the handler. It counts the answer. Errors are
// decided in the seed's shape and given v4's "code" in v4 mode.
func (s *Server) serve(r *http.Request, rt route, body []byte, bodyErr error, overLimit bool) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := s.decide(r, rt, body, bodyErr, overLimit)
	if b, ok := resp.body.(pagertree.ErrorBody); ok && s.v4 != nil {
		resp.body = pagertree.ErrorBodyV4{Errors: b.Errors, Code: resp.status}
	}
	if resp.drop {
		s.stats.Dropped++
	} else {
		s.stats.Status[resp.status]++
	}
	return resp
}

func (s *Server) decide(r *http.Request, rt route, body []byte, bodyErr error, overLimit bool) response {
	if overLimit {
		return s.tooManyRequests(r, body, "rate limit exceeded")
	}
	if s.faults.RateLimitRate > 0 && s.faultRand.Float64() < s.faults.RateLimitRate {
		return s.tooManyRequests(r, body, "too many requests")
	}
	if s.faults.ErrorRate > 0 && s.faultRand.Float64() < s.faults.ErrorRate {
		return errorResponse(http.StatusInternalServerError, "internal server error")
	}
	if rt.template == routeUnmatched {
		return errorResponse(http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	}
	if allow := rt.allow(); !slices.Contains(allow, r.Method) {
		resp := errorResponse(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+rt.template)
		resp.allow = strings.Join(allow, ", ")
		return resp
	}
	if bodyErr != nil {
		return errorResponse(http.StatusBadRequest, "cannot read the request body")
	}
	if rt.template == routeLogin {
		return s.login(body)
	}
	authenticate, handle := s.authenticate, s.handle
	if s.v4 != nil {
		authenticate, handle = s.authenticateV4, s.handleV4
	}
	if resp, ok := authenticate(r); !ok {
		return resp
	}
	resp := handle(r, rt, body)
	if rt.isWrite(r.Method) && resp.status < 300 {
		s.stats.Writes++
		if r.Method == http.MethodPost && s.faults.DropCreateRate > 0 && s.faultRand.Float64() < s.faults.DropCreateRate {
			resp.drop = true
		}
	}
	return resp
}

// tooManyRequests answers 429 and remembers the deadline it gives, by
// client and by request, to count those who do not wait.
func (s *Server) tooManyRequests(r *http.Request, body []byte, message string) response {
	seconds := max(1, int(math.Ceil(s.faults.RetryAfter.Seconds())))
	deadline := s.now().Add(time.Duration(seconds) * time.Second)
	s.clientDeadlines[clientKey(r)] = deadline
	s.requestDeadlines[requestKey(r, body)] = deadline
	resp := errorResponse(http.StatusTooManyRequests, message)
	resp.retryAfter = seconds
	return resp
}

func (s *Server) login(body []byte) response {
	var creds struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(body, &creds); err != nil {
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	switch {
	case creds.Username == "":
		return errorResponse(http.StatusBadRequest, "'username' is a required parameter")
	case creds.Password == "":
		return errorResponse(http.StatusBadRequest, "'password' is a required parameter")
	case !strings.EqualFold(creds.Username, s.opts.Username) || creds.Password != s.opts.Password:
		return errorResponse(http.StatusUnauthorized, "invalid username or password")
	}
	token := newToken()
	s.tokens[token] = &session{}
	return response{status: http.StatusOK, body: map[string]string{"token": token}}
}

// newToken returns an unguessable opaque token.
func newToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// authenticate checks the raw token in Authorization and counts its use.
func (s *Server) authenticate(r *http.Request) (response, bool) {
	token := r.Header.Get("Authorization")
	if token == "" {
		return errorResponse(http.StatusUnauthorized, "a token is required in the Authorization header"), false
	}
	sess := s.tokens[token]
	if sess == nil {
		if strings.HasPrefix(token, "Bearer ") {
			return errorResponse(http.StatusUnauthorized, "invalid token: it goes raw in Authorization, without \"Bearer\""), false
		}
		return errorResponse(http.StatusUnauthorized, "invalid or expired token"), false
	}
	if ttl := s.faults.TokenTTL; ttl > 0 && sess.uses >= ttl {
		delete(s.tokens, token)
		return errorResponse(http.StatusUnauthorized, "invalid or expired token"), false
	}
	sess.uses++
	return response{}, true
}

// handle serves an authenticated request on /user or /team.
func (s *Server) handle(r *http.Request, rt route, body []byte) response {
	now := s.now()
	var (
		result any
		err    error
		status = http.StatusOK
	)
	switch rt.template + " " + r.Method {
	case routeUsers + " GET":
		result, err = list(r.URL.Query(), s.users, func(u *pagertree.User) pagertree.User { return *u })
	case routeUsers + " POST":
		var c userChanges
		if err = decodeJSON(body, &c); err == nil {
			status = http.StatusCreated
			result, err = s.addUser(pagertree.User{
				Name:  deref(c.Name),
				Email: deref(c.Email),
				Phone: deref(c.Phone),
				Roles: deref(c.Roles),
			}, now)
		}
	case routeUser + " GET":
		result, err = s.user(rt.id)
	case routeUser + " PUT":
		var c userChanges
		if err = decodeJSON(body, &c); err == nil {
			result, err = s.updateUser(rt.id, c, now)
		}
	case routeUser + " DELETE":
		status, err = http.StatusNoContent, s.deleteUser(rt.id, now)
	case routeTeams + " GET":
		result, err = list(r.URL.Query(), s.teams, copyTeam)
	case routeTeams + " POST":
		var c teamChanges
		if err = decodeJSON(body, &c); err == nil {
			status = http.StatusCreated
			result, err = s.addTeam(pagertree.Team{
				Name:          deref(c.Name),
				Description:   deref(c.Description),
				MemberUserIDs: deref(c.MemberUserIDs),
			}, now)
		}
	case routeTeam + " GET":
		result, err = s.team(rt.id)
	case routeTeam + " PUT":
		var c teamChanges
		if err = decodeJSON(body, &c); err == nil {
			result, err = s.updateTeam(rt.id, c, now)
		}
	case routeTeam + " DELETE":
		status, err = http.StatusNoContent, s.deleteTeam(rt.id)
	}
	switch {
	case errors.Is(err, errNotFound):
		return errorResponse(http.StatusNotFound, err.Error())
	case errors.Is(err, errConflict):
		return errorResponse(http.StatusConflict, err.Error())
	case err != nil:
		return errorResponse(http.StatusBadRequest, err.Error())
	}
	return response{status: status, body: result}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// decodeJSON decodes one JSON value into v. Unknown fields are ignored, as
// the API ignores them; an empty body is an empty object.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return &apiError{errInvalid, "malformed JSON body: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{errInvalid, "malformed JSON body: data after the JSON value"}
	}
	return nil
}

// list answers one page of items: limit 1..100 (default 10) with offset or
// a 1-based page.
func list[S, T any](q url.Values, items []S, view func(S) T) (pagertree.List[T], error) {
	limit, offset, err := pageBounds(q)
	if err != nil {
		return pagertree.List[T]{}, err
	}
	total := len(items)
	start := min(offset, total)
	end := min(start+limit, total)
	page := pagertree.List[T]{Data: make([]T, 0, end-start), HasMore: end < total, TotalCount: total}
	for _, item := range items[start:end] {
		page.Data = append(page.Data, view(item))
	}
	return page, nil
}

func pageBounds(q url.Values) (limit, offset int, err error) {
	limit = 10
	if q.Has("limit") {
		limit, err = strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 || limit > 100 {
			return 0, 0, invalid("'limit' must be an integer between 1 and 100")
		}
	}
	if q.Has("offset") && q.Has("page") {
		return 0, 0, invalid("give either 'offset' or 'page', not both")
	}
	if q.Has("offset") {
		offset, err = strconv.Atoi(q.Get("offset"))
		if err != nil || offset < 0 {
			return 0, 0, invalid("'offset' must be an integer of at least 0")
		}
	}
	if q.Has("page") {
		page, err := strconv.Atoi(q.Get("page"))
		if err != nil || page < 1 {
			return 0, 0, invalid("'page' must be an integer of at least 1")
		}
		offset = math.MaxInt
		if page-1 <= math.MaxInt/limit {
			offset = (page - 1) * limit
		}
	}
	return limit, offset, nil
}

// write sends resp. It runs outside the lock.
func (s *Server) write(w http.ResponseWriter, resp response) {
	if resp.drop {
		dropConnection(w)
		return
	}
	h := w.Header()
	if resp.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	if resp.allow != "" {
		h.Set("Allow", resp.allow)
	}
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	data, err := json.Marshal(resp.body)
	if err != nil {
		// Only the emulator's own types are encoded; this is a bug in it.
		panic(fmt.Sprintf("pagertreetest: encoding a response: %v", err))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(data) // a client that went away is not the emulator's problem
}

// dropConnection closes the connection with no answer at all.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 and recorders cannot hand over the connection; aborting
		// the handler resets the stream or connection instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
