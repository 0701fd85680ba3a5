package googletest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// apiPrefix is the Directory API's path under the server root.
const apiPrefix = "/admin/directory/v1"

// Routes, as Requests counts them.
const (
	routeUsers   = "/users"
	routeGroups  = "/groups"
	routeMembers = "/groups/{groupKey}/members"
)

// apiError is a Directory API error answer.
type apiError struct {
	status  int
	reason  string
	domain  string
	message string
}

func badRequest(reason, message string) *apiError {
	return &apiError{http.StatusBadRequest, reason, "global", message}
}

// notImplemented answers what the Directory API has but the fake does not
// model; the "googletest:" prefix tells it from Google's own verdicts.
func notImplemented(what string) *apiError {
	return badRequest("invalid", "googletest: "+what+" is not implemented by the fake")
}

var (
	errForbidden = &apiError{http.StatusForbidden, "forbidden", "global", "Not Authorized to access this resource/api"}
	errScopes    = &apiError{http.StatusForbidden, "insufficientPermissions", "global", "Request had insufficient authentication scopes."}
)

// statusNames are the canonical status names Google's error body carries.
var statusNames = map[int]string{
	http.StatusBadRequest:          "INVALID_ARGUMENT",
	http.StatusUnauthorized:        "UNAUTHENTICATED",
	http.StatusForbidden:           "PERMISSION_DENIED",
	http.StatusNotFound:            "NOT_FOUND",
	http.StatusMethodNotAllowed:    "INVALID_ARGUMENT",
	http.StatusTooManyRequests:     "RESOURCE_EXHAUSTED",
	http.StatusInternalServerError: "INTERNAL",
	http.StatusServiceUnavailable:  "UNAVAILABLE",
}

// ErrorBody is Google's JSON error body for an answer of status with one
// error of reason and message, for Faults that answer as the API would.
func ErrorBody(status int, reason, message string) string {
	domain := "global"
	if reason == "userRateLimitExceeded" || reason == "quotaExceeded" || reason == "rateLimitExceeded" {
		domain = "usageLimits"
	}
	data, err := json.Marshal(errorBody(&apiError{status, reason, domain, message}))
	if err != nil {
		panic(err) // maps of strings and ints always marshal
	}
	return string(data)
}

func errorBody(e *apiError) map[string]any {
	status := statusNames[e.status]
	if status == "" {
		status = "UNKNOWN"
	}
	return map[string]any{"error": map[string]any{
		"code":    e.status,
		"message": e.message,
		"errors":  []any{map[string]any{"message": e.message, "domain": e.domain, "reason": e.reason}},
		"status":  status,
	}}
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
	}
	writeJSON(w, e.status, errorBody(e))
}

// route is a parsed API path (after /admin/directory/v1/).
type route struct {
	template string
	groupKey string
	err      *apiError
}

func parseRoute(path string) route {
	seg := strings.Split(strings.TrimSuffix(path, "/"), "/")
	switch {
	case len(seg) == 1 && seg[0] == "users":
		return route{template: routeUsers}
	case len(seg) == 1 && seg[0] == "groups":
		return route{template: routeGroups}
	case len(seg) == 3 && seg[0] == "groups" && seg[2] == "members" && seg[1] != "":
		return route{template: routeMembers, groupKey: seg[1]}
	case seg[0] == "users" || seg[0] == "groups":
		return route{template: "/" + path, err: notImplemented("GET /" + path)}
	}
	return route{template: "/" + path, err: &apiError{http.StatusNotFound, "notFound", "global", "Not Found"}}
}

// serveAPI serves one Directory API request: bookkeeping, the fault hook,
// the token, throttling, then the route.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	rt := parseRoute(path)
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.requests[r.Method+" "+rt.template]++
	fault, dir := s.fault, s.dir
	s.mu.Unlock()

	if fault != nil {
		if status, header, body, handled := fault(r, n); handled {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
	}
	grant, e := s.authenticate(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if kind, ok := s.takeThrottle(); ok {
		writeError(w, throttleError(kind))
		return
	}
	if rt.err != nil {
		writeError(w, rt.err)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, &apiError{http.StatusMethodNotAllowed, "invalid", "global", "googletest: the fake is read-only; " + r.Method + " is not implemented"})
		return
	}
	if e := authorize(grant, rt.template, dir); e != nil {
		writeError(w, e)
		return
	}
	var body map[string]any
	switch rt.template {
	case routeUsers:
		body, e = s.listUsers(r.URL.Query(), dir)
	case routeGroups:
		body, e = s.listGroups(r.URL.Query(), dir)
	case routeMembers:
		body, e = s.listMembers(r.URL.Query(), rt.groupKey, dir)
	}
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func throttleError(kind Limit) *apiError {
	switch kind {
	case QuotaExceeded:
		return &apiError{http.StatusForbidden, "quotaExceeded", "usageLimits", "Quota exceeded for quota metric 'Concurrent requests' of service 'admin.googleapis.com'."}
	case RateLimitExceeded:
		return &apiError{http.StatusTooManyRequests, "rateLimitExceeded", "usageLimits", "Rate Limit Exceeded"}
	}
	return &apiError{http.StatusForbidden, "userRateLimitExceeded", "usageLimits", "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'."}
}

// authenticate finds the live token of the request.
func (s *Server) authenticate(r *http.Request) (tokenGrant, *apiError) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return tokenGrant{}, &apiError{http.StatusUnauthorized, "required", "global",
			"Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential."}
	}
	s.mu.Lock()
	g, ok := s.tokens[strings.TrimSpace(tok)]
	now := s.opts.Now()
	s.mu.Unlock()
	if !ok || !now.Before(g.expiry) {
		return tokenGrant{}, &apiError{http.StatusUnauthorized, "authError", "global",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}
	}
	return g, nil
}

// routeScopes are the scopes each method accepts (its reference page).
var routeScopes = map[string][]string{
	routeUsers:   {ScopeUser, ScopeUserReadonly, ScopeCloudPlatform},
	routeGroups:  {ScopeGroup, ScopeGroupReadonly},
	routeMembers: {ScopeGroup, ScopeGroupReadonly, ScopeGroupMember, ScopeGroupMemberReadonly},
}

// authorize checks the token's scopes and that it acts as an admin.
func authorize(g tokenGrant, template string, dir *directory) *apiError {
	if !slices.ContainsFunc(g.scopes, func(sc string) bool { return slices.Contains(routeScopes[template], sc) }) {
		return errScopes
	}
	u, ok := dir.userByEmail(g.subject)
	if g.subject == "" || !ok || !u.IsAdmin || u.Suspended {
		return errForbidden
	}
	return nil
}

// commonParams are the standard query parameters every method takes.
var commonParams = []string{"fields", "prettyPrint", "alt", "quotaUser", "key", "$.xgafv"}

// checkParams refuses a parameter the method does not know (Google's front
// end does) or the fake does not model.
func checkParams(q url.Values, known, unmodeled []string) *apiError {
	for name := range q {
		switch {
		case slices.Contains(unmodeled, name):
			return notImplemented("the " + name + " parameter")
		case !slices.Contains(known, name) && !slices.Contains(commonParams, name):
			return badRequest("invalid", `Invalid JSON payload received. Unknown name "`+name+`": Cannot bind query parameter. Field '`+name+`' could not be found in request message.`)
		}
	}
	if alt := q.Get("alt"); alt != "" && alt != "json" {
		return notImplemented("alt=" + alt)
	}
	return nil
}

// bool reads a boolean parameter ("" is false).
func boolParam(q url.Values, name string) (bool, *apiError) {
	switch strings.ToLower(q.Get(name)) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badRequest("invalid", "Invalid value at '"+name+"' (TYPE_BOOL), \""+q.Get(name)+"\"")
}

// inAccount checks the customer and domain parameters and returns the
// domain to keep ("" for all).
func inAccount(q url.Values, dir *directory) (string, *apiError) {
	customer, domain := q.Get("customer"), q.Get("domain")
	switch {
	case customer == "" && domain == "":
		return "", badRequest("badRequest", "Bad Request")
	case customer != "" && customer != "my_customer" && customer != dir.customerID:
		return "", badRequest("badRequest", "Bad Request")
	}
	return strings.ToLower(domain), nil
}

func inDomain(email, domain string) bool {
	return domain == "" || strings.HasSuffix(strings.ToLower(email), "@"+domain)
}

// listing is one list method's paging and rendering.
type listing struct {
	route, kind, key string
	schema           schema
	defaultMax, max  int
	bind             []string // parameters a page token is bound to
}

// page answers one page of n items, rendering only those on it:
// maxResults, the pageToken (bound to the route and the bound parameters)
// and the fields selection.
func (s *Server) page(q url.Values, l listing, n int, render func(i int) any) (map[string]any, *apiError) {
	sel, e := parseFields(q.Get("fields"), l.schema)
	if e != nil {
		return nil, e
	}
	size := l.defaultMax
	if raw := q.Get("maxResults"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > l.max {
			return nil, badRequest("invalid", "Invalid value '"+raw+"'. Values must be within the range: [1, "+strconv.Itoa(l.max)+"]")
		}
		size = n
	}
	binding := []string{l.route}
	for _, name := range l.bind {
		binding = append(binding, name+"="+q.Get(name))
	}
	offset := 0
	if tok := q.Get("pageToken"); tok != "" {
		var ok bool
		if offset, ok = s.readPageToken(tok, binding); !ok {
			return nil, badRequest("invalid", "Invalid page token")
		}
	}
	offset = min(offset, n)
	end := min(offset+size, n)
	body := map[string]any{"kind": l.kind, "etag": etag(s.pageKey, binding...)}
	if end > offset {
		items := make([]any, 0, end-offset)
		for i := offset; i < end; i++ {
			items = append(items, render(i))
		}
		body[l.key] = items
	}
	if end < n {
		body["nextPageToken"] = s.pageToken(end, binding)
	}
	if sel != nil {
		return prune(body, sel).(map[string]any), nil
	}
	return body, nil
}

// pageToken is an opaque token for the page at offset: the offset and a
// MAC binding it to the request's parameters.
func (s *Server) pageToken(offset int, binding []string) string {
	o := strconv.Itoa(offset)
	return base64.RawURLEncoding.EncodeToString([]byte(o)) + "." + mac(s.pageKey, append([]string{o}, binding...)...)
}

func (s *Server) readPageToken(tok string, binding []string) (int, bool) {
	enc, sig, ok := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if !ok || err != nil {
		return 0, false
	}
	offset, err := strconv.Atoi(string(raw))
	if err != nil || offset < 0 || sig != mac(s.pageKey, append([]string{string(raw)}, binding...)...) {
		return 0, false
	}
	return offset, true
}

func etag(key []byte, parts ...string) string {
	return `"` + mac(key, append([]string{"etag"}, parts...)...)[:27] + `"`
}

// listUsers is users.list.
func (s *Server) listUsers(q url.Values, dir *directory) (map[string]any, *apiError) {
	known := []string{"customer", "domain", "maxResults", "pageToken", "projection", "viewType", "showDeleted"}
	unmodeled := []string{"query", "orderBy", "sortOrder", "customFieldMask", "event"}
	if e := checkParams(q, known, unmodeled); e != nil {
		return nil, e
	}
	domain, e := inAccount(q, dir)
	if e != nil {
		return nil, e
	}
	switch strings.ToLower(q.Get("projection")) {
	case "", "basic", "full":
	case "custom":
		return nil, notImplemented("projection=custom")
	default:
		return nil, badRequest("invalid", "Invalid value at 'projection', \""+q.Get("projection")+"\"")
	}
	switch strings.ToLower(q.Get("viewType")) {
	case "", "admin_view":
	case "domain_public":
		return nil, notImplemented("viewType=domain_public")
	default:
		return nil, badRequest("invalid", "Invalid value at 'view_type', \""+q.Get("viewType")+"\"")
	}
	if deleted, e := boolParam(q, "showDeleted"); e != nil || deleted {
		if e != nil {
			return nil, e
		}
		return nil, notImplemented("showDeleted=true")
	}
	users := dir.users
	if domain != "" {
		users = nil
		for _, u := range dir.users {
			if inDomain(u.PrimaryEmail, domain) {
				users = append(users, u)
			}
		}
	}
	return s.page(q, listing{route: routeUsers, kind: "admin#directory#users", key: "users", schema: usersSchema,
		defaultMax: 100, max: 500, bind: []string{"customer", "domain", "projection", "viewType"}},
		len(users), func(i int) any { return s.renderUser(users[i], dir) })
}

// listGroups is groups.list.
func (s *Server) listGroups(q url.Values, dir *directory) (map[string]any, *apiError) {
	known := []string{"customer", "domain", "maxResults", "pageToken", "query"}
	unmodeled := []string{"userKey", "orderBy", "sortOrder"}
	if e := checkParams(q, known, unmodeled); e != nil {
		return nil, e
	}
	domain, e := inAccount(q, dir)
	if e != nil {
		return nil, e
	}
	match, e := parseGroupQuery(q.Get("query"), dir)
	if e != nil {
		return nil, e
	}
	var groups []Group
	for _, g := range dir.groups {
		if inDomain(g.Email, domain) && match(g) {
			groups = append(groups, g)
		}
	}
	return s.page(q, listing{route: routeGroups, kind: "admin#directory#groups", key: "groups", schema: groupsSchema,
		defaultMax: 200, max: 200, bind: []string{"customer", "domain", "query"}},
		len(groups), func(i int) any { return s.renderGroup(groups[i]) })
}

// listMembers is members.list.
func (s *Server) listMembers(q url.Values, groupKey string, dir *directory) (map[string]any, *apiError) {
	known := []string{"includeDerivedMembership", "maxResults", "pageToken", "roles"}
	if e := checkParams(q, known, nil); e != nil {
		return nil, e
	}
	derived, e := boolParam(q, "includeDerivedMembership")
	if e != nil {
		return nil, e
	}
	var roles []string
	if raw := q.Get("roles"); raw != "" {
		for _, r := range strings.Split(raw, ",") {
			r = strings.ToUpper(strings.TrimSpace(r))
			if r != RoleOwner && r != RoleManager && r != RoleMember {
				return nil, badRequest("invalid", "Invalid Input: roles")
			}
			roles = append(roles, r)
		}
	}
	g, ok := dir.group(groupKey)
	if !ok {
		return nil, &apiError{http.StatusNotFound, "notFound", "global", "Resource Not Found: groupKey"}
	}
	var members []memberEntry
	for _, m := range dir.members(g, derived) {
		if roles == nil || slices.Contains(roles, m.role) {
			members = append(members, m)
		}
	}
	return s.page(q, listing{route: routeMembers, kind: "admin#directory#members", key: "members", schema: membersSchema,
		defaultMax: 200, max: 200, bind: []string{"groupKey=" + g.ID, "includeDerivedMembership", "roles"}},
		len(members), func(i int) any { return s.renderMember(members[i]) })
}

// renderUser is a user as users.list shows it (projection basic).
func (s *Server) renderUser(u User, dir *directory) map[string]any {
	emails := []any{map[string]any{"address": u.PrimaryEmail, "primary": true}}
	for _, a := range u.Aliases {
		emails = append(emails, map[string]any{"address": a})
	}
	out := map[string]any{
		"kind":         "admin#directory#user",
		"id":           u.ID,
		"etag":         etag(s.pageKey, "user", u.ID),
		"primaryEmail": u.PrimaryEmail,
		"name": map[string]any{
			"givenName":   u.GivenName,
			"familyName":  u.FamilyName,
			"fullName":    u.FullName,
			"displayName": u.FullName,
		},
		"isAdmin":                    u.IsAdmin,
		"isDelegatedAdmin":           false,
		"lastLoginTime":              "1970-01-01T00:00:00.000Z",
		"creationTime":               "2024-01-15T09:30:00.000Z",
		"agreedToTerms":              true,
		"suspended":                  u.Suspended,
		"archived":                   u.Archived,
		"changePasswordAtNextLogin":  false,
		"ipWhitelisted":              false,
		"emails":                     emails,
		"customerId":                 dir.customerID,
		"orgUnitPath":                "/",
		"isMailboxSetup":             true,
		"isEnrolledIn2Sv":            false,
		"isEnforcedIn2Sv":            false,
		"includeInGlobalAddressList": true,
	}
	if u.Suspended {
		out["suspensionReason"] = "ADMIN"
	}
	if len(u.Aliases) > 0 {
		out["aliases"] = toAny(u.Aliases)
	}
	if len(u.Phones) > 0 {
		var phones []any
		for _, p := range u.Phones {
			ph := map[string]any{"value": p.Value, "type": p.Type}
			if p.Primary {
				ph["primary"] = true
			}
			if p.CustomType != "" {
				ph["customType"] = p.CustomType
			}
			phones = append(phones, ph)
		}
		out["phones"] = phones
	}
	return out
}

// renderGroup is a group as groups.list shows it.
func (s *Server) renderGroup(g Group) map[string]any {
	out := map[string]any{
		"kind":               "admin#directory#group",
		"id":                 g.ID,
		"etag":               etag(s.pageKey, "group", g.ID),
		"email":              g.Email,
		"name":               g.Name,
		"directMembersCount": strconv.Itoa(len(g.Members)), // int64, so a JSON string
		"description":        g.Description,
		"adminCreated":       true,
	}
	if len(g.Aliases) > 0 {
		out["aliases"] = toAny(g.Aliases)
	}
	return out
}

// renderMember is a member as members.list shows it.
func (s *Server) renderMember(m memberEntry) map[string]any {
	out := map[string]any{
		"kind":   "admin#directory#member",
		"etag":   etag(s.pageKey, "member", m.typ, m.id),
		"id":     m.id,
		"role":   m.role,
		"type":   m.typ,
		"status": m.status,
	}
	if m.email != "" {
		out["email"] = m.email
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
