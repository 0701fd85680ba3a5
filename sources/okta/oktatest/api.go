package oktatest

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Okta error codes the fake answers with, from Okta's error-code catalogue.
const (
	codeValidation     = "E0000001" // 400 Api validation failed: {0}
	codeInvalidSession = "E0000005" // 403 Invalid session
	codeNotFound       = "E0000007" // 404 Not found: {0}
	codeInvalidToken   = "E0000011" // 401 Invalid token provided
	codeMethod         = "E0000022" // 405
	codeBadSearch      = "E0000031" // 400 Invalid search criteria.
	codeRateLimited    = "E0000047" // 429
	codeInvalidParam   = "E0000053" // 400 Invalid filter or parameter (System Log)
	codeUnsupported    = "E0000060" // 501 Unsupported operation.
)

// Page sizes from Okta's API reference: each list's default and maximum
// limit. A larger limit is capped, not refused.
const (
	groupsLimit      = 10000 // GET /api/v1/groups, default and maximum
	groupsQueryLimit = 300   // GET /api/v1/groups?q=..., default
	groupUsersLimit  = 1000  // GET /api/v1/groups/{id}/users, default and maximum
	usersLimit       = 200   // GET /api/v1/users, default and maximum
)

// stamp is every timestamp the fake reports: its objects have no history.
const stamp = "2024-01-02T03:04:05.000Z"

// userTypeID is the ID of the org's one user type.
const userTypeID = "otyFAKE0000000000000"

type apiError struct {
	ErrorCode    string       `json:"errorCode"`
	ErrorSummary string       `json:"errorSummary"`
	ErrorLink    string       `json:"errorLink"`
	ErrorID      string       `json:"errorId"`
	ErrorCauses  []errorCause `json:"errorCauses"`
}

type errorCause struct {
	ErrorSummary string `json:"errorSummary"`
}

// writeError answers with Okta's error object. errorLink repeats errorCode,
// as Okta's does.
func writeError(w http.ResponseWriter, status int, code, summary string, causes ...string) {
	e := apiError{ErrorCode: code, ErrorSummary: summary, ErrorLink: code, ErrorID: randomID("oae"), ErrorCauses: []errorCause{}}
	for _, c := range causes {
		e.ErrorCauses = append(e.ErrorCauses, errorCause{c})
	}
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the fake's own types always marshal
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// randomID is prefix followed by 26 random letters and digits.
func randomID(prefix string) string {
	return prefix + rand.Text()
}

// unsupported answers 501 when the query uses a parameter that Okta
// documents but the fake does not implement, so that no client mistakes an
// ignored parameter for Okta's behaviour.
func unsupported(w http.ResponseWriter, q url.Values, params ...string) bool {
	for _, p := range params {
		if q.Has(p) {
			writeError(w, http.StatusNotImplemented, codeUnsupported, "Unsupported operation.",
				"oktatest does not implement the "+p+" parameter of this endpoint")
			return true
		}
	}
	return false
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request, _ time.Time) {
	q := r.URL.Query()
	if unsupported(w, q, "expand", "sortBy", "sortOrder") {
		return
	}
	var conds []func(Group) bool
	for _, p := range []struct {
		param string
		s     *schema[Group]
	}{{"search", groupSearch}, {"filter", groupFilter}} {
		if !q.Has(p.param) {
			continue
		}
		cond, err := p.s.compile(q.Get(p.param))
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadSearch, "Invalid search criteria.", p.param+": "+err.Error())
			return
		}
		conds = append(conds, cond)
	}
	var groups []Group
	for _, g := range s.snapshot().groups {
		if !slices.ContainsFunc(conds, func(c func(Group) bool) bool { return !c(g) }) {
			groups = append(groups, g)
		}
	}

	if q.Has("q") {
		// "Paging and searching are currently mutually exclusive. You can't
		// page a query." Exact matches come first.
		limit, ok := limitParam(w, q, groupsQueryLimit, groupsLimit)
		if !ok {
			return
		}
		prefix := strings.ToLower(q.Get("q"))
		var exact, partial []Group
		for _, g := range groups {
			switch name := strings.ToLower(g.Name); {
			case name == prefix:
				exact = append(exact, g)
			case strings.HasPrefix(name, prefix):
				partial = append(partial, g)
			}
		}
		found := append(exact, partial...)
		s.setLinks(w, r, nil, 0)
		writeJSON(w, http.StatusOK, s.groupsJSON(found[:min(limit, len(found))]))
		return
	}

	limit, ok := limitParam(w, q, groupsLimit, groupsLimit)
	if !ok {
		return
	}
	after, ok := s.afterParam(w, q, "groups")
	if !ok {
		return
	}
	pg, more := page(groups, func(g Group) string { return g.ID }, after, limit)
	var next *cursor
	if more {
		next = &cursor{"groups", pg[len(pg)-1].ID}
	}
	s.setLinks(w, r, next, limit)
	writeJSON(w, http.StatusOK, s.groupsJSON(pg))
}

func (s *Server) listGroupUsers(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	if unsupported(w, q, "search", "expand") {
		return
	}
	members, ok := s.snapshot().members[id]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "Not found: Resource not found: "+id+" (UserGroup)")
		return
	}
	s.listUserPage(w, r, "groups/"+id+"/users", members, groupUsersLimit)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ time.Time) {
	if unsupported(w, r.URL.Query(), "search", "filter", "q", "sortBy", "sortOrder", "fields", "expand") {
		return
	}
	// "This operation omits users that have a status of DEPROVISIONED."
	var users []User
	for _, u := range s.snapshot().users {
		if u.Status != "DEPROVISIONED" {
			users = append(users, u)
		}
	}
	s.listUserPage(w, r, "users", users, usersLimit)
}

// getUser answers GET /api/v1/users/{id}: the user of that id or login,
// whatever its status (DEPROVISIONED included, unlike the list), or 404
// E0000007.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request, id string) {
	if unsupported(w, r.URL.Query(), "expand") {
		return
	}
	for _, u := range s.snapshot().users {
		if u.ID == id || strings.EqualFold(u.Profile.Login, id) {
			writeJSON(w, http.StatusOK, s.userJSON(u))
			return
		}
	}
	writeError(w, http.StatusNotFound, codeNotFound, "Not found: Resource not found: "+id+" (User)")
}

// listUserPage answers with one page of users, which are sorted by ID; list
// names the list for its cursors.
func (s *Server) listUserPage(w http.ResponseWriter, r *http.Request, list string, users []User, maxLimit int) {
	q := r.URL.Query()
	limit, ok := limitParam(w, q, maxLimit, maxLimit)
	if !ok {
		return
	}
	after, ok := s.afterParam(w, q, list)
	if !ok {
		return
	}
	pg, more := page(users, func(u User) string { return u.ID }, after, limit)
	var next *cursor
	if more {
		next = &cursor{list, pg[len(pg)-1].ID}
	}
	s.setLinks(w, r, next, limit)
	out := make([]userJSON, 0, len(pg))
	for _, u := range pg {
		out = append(out, s.userJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// limitParam reads the limit parameter, capping it at maxLimit.
func limitParam(w http.ResponseWriter, q url.Values, def, maxLimit int) (int, bool) {
	if !q.Has("limit") {
		return def, true
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 {
		writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: limit", "limit: must be a positive integer")
		return 0, false
	}
	return min(n, maxLimit), true
}

// A cursor is what an after value stands for: the last ID of a page of list.
type cursor struct {
	list, last string
}

// afterParam resolves the after parameter to the ID that the next page
// follows. Cursors are random, so any that the fake did not hand out for
// this list, edited ones included, is refused.
func (s *Server) afterParam(w http.ResponseWriter, q url.Values, list string) (string, bool) {
	a := q.Get("after")
	if a == "" {
		return "", true
	}
	s.mu.Lock()
	c, ok := s.cursors[a]
	s.mu.Unlock()
	if !ok || c.list != list {
		writeError(w, http.StatusBadRequest, codeValidation, "Api validation failed: after", "after: not a cursor of this list")
		return "", false
	}
	return c.last, true
}

// page returns up to limit items after the one whose ID is after, and
// whether more follow. items are sorted by ID.
func page[T any](items []T, id func(T) string, after string, limit int) ([]T, bool) {
	i, found := slices.BinarySearchFunc(items, after, func(it T, after string) int {
		return strings.Compare(id(it), after)
	})
	if found {
		i++
	}
	end := min(i+limit, len(items))
	return items[i:end], end < len(items)
}

// setLinks sets the RFC 8288 Link header lines: self, the request's own URL,
// and, unless next is nil, next: a URL with a new cursor for next and limit.
func (s *Server) setLinks(w http.ResponseWriter, r *http.Request, next *cursor, limit int) {
	h := w.Header()
	h.Add("Link", "<"+s.base+r.URL.RequestURI()+`>; rel="self"`)
	if next == nil {
		return
	}
	c := randomID("")
	s.mu.Lock()
	s.cursors[c] = *next
	s.mu.Unlock()
	rest := r.URL.Query()
	rest.Del("after")
	rest.Del("limit")
	u := s.base + r.URL.EscapedPath() + "?after=" + url.QueryEscape(c) + "&limit=" + strconv.Itoa(limit)
	if len(rest) > 0 {
		u += "&" + rest.Encode()
	}
	h.Add("Link", "<"+u+`>; rel="next"`)
}

type href struct {
	Href string `json:"href"`
}

type logo struct {
	Name string `json:"name"`
	Href string `json:"href"`
	Type string `json:"type"`
}

type groupJSON struct {
	ID                    string   `json:"id"`
	Created               string   `json:"created"`
	LastUpdated           string   `json:"lastUpdated"`
	LastMembershipUpdated string   `json:"lastMembershipUpdated"`
	ObjectClass           []string `json:"objectClass"`
	Type                  string   `json:"type"`
	Profile               struct {
		Name        string  `json:"name"`
		Description *string `json:"description"`
	} `json:"profile"`
	Links struct {
		Logo  []logo `json:"logo"`
		Users href   `json:"users"`
		Apps  href   `json:"apps"`
	} `json:"_links"`
}

func (s *Server) groupsJSON(groups []Group) []groupJSON {
	out := make([]groupJSON, 0, len(groups))
	for _, g := range groups {
		j := groupJSON{ID: g.ID, Created: stamp, LastUpdated: stamp, LastMembershipUpdated: stamp, Type: g.Type}
		j.ObjectClass = []string{"okta:user_group"}
		if g.Type == "APP_GROUP" {
			j.ObjectClass = []string{"okta:windows_security_principal"}
		}
		j.Profile.Name = g.Name
		j.Profile.Description = nullable(g.Description)
		self := s.base + groupsPath + "/" + url.PathEscape(g.ID)
		j.Links.Logo = []logo{
			{"medium", s.base + "/img/logos/groups/okta-medium.png", "image/png"},
			{"large", s.base + "/img/logos/groups/okta-large.png", "image/png"},
		}
		j.Links.Users = href{self + "/users"}
		j.Links.Apps = href{self + "/apps"}
		out = append(out, j)
	}
	return out
}

type userJSON struct {
	ID              string  `json:"id"`
	Status          string  `json:"status"`
	Created         string  `json:"created"`
	Activated       *string `json:"activated"`
	StatusChanged   *string `json:"statusChanged"`
	LastLogin       *string `json:"lastLogin"`
	LastUpdated     string  `json:"lastUpdated"`
	PasswordChanged *string `json:"passwordChanged"`
	Type            struct {
		ID string `json:"id"`
	} `json:"type"`
	Profile struct {
		FirstName    string  `json:"firstName"`
		LastName     string  `json:"lastName"`
		MobilePhone  *string `json:"mobilePhone"`
		Login        string  `json:"login"`
		Email        string  `json:"email"`
		DisplayName  *string `json:"displayName,omitempty"`
		PrimaryPhone *string `json:"primaryPhone,omitempty"`
	} `json:"profile"`
	Credentials struct {
		Password *struct{} `json:"password,omitempty"`
		Provider struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"provider"`
	} `json:"credentials"`
	Links struct {
		Self href `json:"self"`
	} `json:"_links"`
}

// userJSON shapes u as Okta's user object. Timestamps of what has not
// happened are null, as Okta's are: a STAGED user was never activated, a
// PROVISIONED one has not set a password or signed in.
func (s *Server) userJSON(u User) userJSON {
	j := userJSON{ID: u.ID, Status: u.Status, Created: stamp, LastUpdated: stamp}
	t := stamp
	switch u.Status {
	case "STAGED":
	case "PROVISIONED":
		j.Activated, j.StatusChanged = &t, &t
	default:
		j.Activated, j.StatusChanged, j.LastLogin, j.PasswordChanged = &t, &t, &t, &t
		j.Credentials.Password = &struct{}{}
	}
	j.Type.ID = userTypeID
	p := u.Profile
	j.Profile.FirstName, j.Profile.LastName, j.Profile.Login, j.Profile.Email = p.FirstName, p.LastName, p.Login, p.Email
	// Okta sends mobilePhone as null when unset and may leave other unset
	// attributes out.
	j.Profile.MobilePhone = nullable(p.MobilePhone)
	j.Profile.DisplayName = nullable(p.DisplayName)
	j.Profile.PrimaryPhone = nullable(p.PrimaryPhone)
	j.Credentials.Provider.Type, j.Credentials.Provider.Name = "OKTA", "OKTA"
	j.Links.Self = href{s.base + usersPath + "/" + url.PathEscape(u.ID)}
	return j
}

// nullable is nil for "", which encodes as JSON null.
func nullable(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}
