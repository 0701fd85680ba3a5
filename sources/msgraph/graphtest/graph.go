package graphtest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Content types Graph answers with.
const (
	odataJSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	errorJSON = "application/json"
)

// Relationships of a group the fake serves.
const (
	relMembers           = "members"
	relTransitiveMembers = "transitiveMembers"
	relOwners            = "owners"
)

// graphError is a Graph error answer.
type graphError struct {
	status int
	code   string
	msg    string
	header http.Header // sent with the error (a 410's Location)
}

func badRequest(code, msg string) *graphError {
	return &graphError{status: http.StatusBadRequest, code: code, msg: msg}
}

// notImplemented is the answer for what Graph supports but the fake does not
// model; the "graphtest:" prefix tells it from Graph's own verdicts.
func notImplemented(what string) *graphError {
	return badRequest("Request_UnsupportedQuery", "graphtest: "+what+" is not implemented by the fake")
}

// route is a parsed Graph path (after /v1.0/).
type route struct {
	template string // for Requests(), e.g. "/groups/{id}/members/microsoft.graph.user"
	coll     string // "users" or "groups"
	id       string // "" for a collection
	rel      string // group relationship, "" for none
	cast     string // OData type of a cast segment ("#microsoft.graph.user"), "" for none
	delta    bool   // the collection's delta function
	err      *graphError
}

// parseRoute matches a Graph path. Graph's segments are case-insensitive.
func parseRoute(path string) route {
	seg := strings.Split(strings.TrimSuffix(path, "/"), "/")
	notFound := func(i int) route {
		return route{template: "/" + path, err: badRequest("BadRequest", "Resource not found for the segment '"+seg[i]+"'.")}
	}
	var rt route
	switch {
	case strings.EqualFold(seg[0], "users"):
		rt.coll = "users"
	case strings.EqualFold(seg[0], "groups"):
		rt.coll = "groups"
	default:
		return notFound(0)
	}
	rt.template = "/" + rt.coll
	if len(seg) == 1 {
		return rt
	}
	if len(seg) == 2 && (strings.EqualFold(seg[1], "delta") || strings.EqualFold(seg[1], "microsoft.graph.delta")) {
		rt.delta = true
		rt.template += "/delta"
		return rt
	}
	rt.id = seg[1]
	rt.template += "/{id}"
	if len(seg) == 2 {
		return rt
	}
	if rt.coll != "groups" || len(seg) > 4 {
		return notFound(2)
	}
	for _, rel := range []string{relMembers, relTransitiveMembers, relOwners} {
		if strings.EqualFold(seg[2], rel) {
			rt.rel = rel
		}
	}
	if rt.rel == "" {
		return notFound(2)
	}
	rt.template += "/" + rt.rel
	if len(seg) == 3 {
		return rt
	}
	for typ := range entitySets {
		if rt.rel != relOwners && strings.EqualFold(seg[3], strings.TrimPrefix(typ, "#")) {
			rt.cast = typ
		}
	}
	if rt.cast == "" {
		return notFound(3)
	}
	rt.template += "/" + strings.TrimPrefix(rt.cast, "#")
	return rt
}

// serveGraph serves one Graph request: bookkeeping, the fault hook, the
// bearer token, throttling, then the route itself.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request, path string) {
	rt := parseRoute(path)
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.requests[r.Method+" "+rt.template]++
	if s.opts.Now().Before(s.notBefore) {
		s.violations++
	}
	fault, dir, gen := s.fault, s.dir, s.gen
	s.mu.Unlock()

	// Graph echoes the caller's client-request-id and adds its own request-id.
	reqID := newGUID()
	clientReqID := r.Header.Get("client-request-id")
	if clientReqID == "" {
		clientReqID = reqID
	}
	w.Header().Set("request-id", reqID)
	w.Header().Set("client-request-id", clientReqID)

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
	if msg := s.authenticate(r); msg != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		s.writeGraphError(w, &graphError{status: http.StatusUnauthorized, code: "InvalidAuthenticationToken", msg: msg})
		return
	}
	if secs, throttled := s.takeThrottle(); throttled {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		s.writeGraphError(w, &graphError{status: http.StatusTooManyRequests, code: "TooManyRequests", msg: "Please retry again later."})
		return
	}
	if rt.err != nil {
		s.writeGraphError(w, rt.err)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.writeGraphError(w, &graphError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest", msg: "graphtest: the fake is read-only; " + r.Method + " is not implemented"})
		return
	}
	var body any
	var gerr *graphError
	if rt.delta {
		body, gerr = s.delta(r, rt.coll, dir, gen)
	} else {
		body, gerr = s.answer(r, rt, dir)
	}
	if gerr != nil {
		s.writeGraphError(w, gerr)
		return
	}
	writeJSON(w, http.StatusOK, odataJSON, body)
}

// authenticate returns "" for a live bearer token, else Graph's 401 message.
func (s *Server) authenticate(r *http.Request) string {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "Access token is empty."
	}
	s.mu.Lock()
	exp, ok := s.tokens[strings.TrimSpace(tok)]
	now := s.opts.Now()
	s.mu.Unlock()
	switch {
	case !ok:
		return "Access token validation failure. Invalid audience."
	case !now.Before(exp):
		return "Lifetime validation failed, the token is expired."
	}
	return ""
}

// answer builds the JSON body for a GET on rt.
func (s *Server) answer(r *http.Request, rt route, dir *directory) (any, *graphError) {
	if rt.id != "" && rt.rel == "" {
		return s.getOne(r, rt, dir)
	}
	var (
		items []entity
		l     listing
	)
	switch {
	case rt.coll == "users":
		items, l = dir.users, listing{set: "users", selectable: userProps, filters: userFilters, resource: "User"}
	case rt.coll == "groups" && rt.rel == "":
		items, l = dir.groups, listing{set: "groups", selectable: groupProps, filters: groupFilters, resource: "Group"}
	default:
		g, ok := dir.group(rt.id)
		if !ok {
			return nil, resourceNotFound(rt.id)
		}
		switch rt.rel {
		case relMembers:
			items = dir.lookup(g.Members)
		case relTransitiveMembers:
			items = dir.transitiveMembers(g)
		case relOwners:
			items = dir.lookup(g.Owners)
		}
		l = listing{set: "directoryObjects", selectable: directoryObjectProps, withType: true}
		if rt.cast != "" {
			// Items of a cast collection are all of the cast type, so Graph
			// leaves @odata.type out of them.
			l = listing{set: entitySets[rt.cast], selectable: castProps(rt.cast), cast: true}
			items = ofType(items, rt.cast)
		}
	}
	return s.page(r, l, items)
}

func castProps(typ string) []string {
	switch typ {
	case typeUser:
		return userProps
	case typeGroup:
		return groupProps
	}
	return objectProps
}

func ofType(items []entity, typ string) []entity {
	var out []entity
	for _, e := range items {
		if e.odataType() == typ {
			out = append(out, e)
		}
	}
	return out
}

func resourceNotFound(id string) *graphError {
	return &graphError{status: http.StatusNotFound, code: "Request_ResourceNotFound", msg: "Resource '" + id + "' does not exist or one of its queried reference-property objects are not present."}
}

// getOne serves GET /users/{id or userPrincipalName} and GET /groups/{id}.
func (s *Server) getOne(r *http.Request, rt route, dir *directory) (any, *graphError) {
	q := r.URL.Query()
	for k := range q {
		if strings.HasPrefix(k, "$") && k != "$select" {
			return nil, notImplemented(k + " on a single object")
		}
	}
	e, ok := dir.byID[rt.id]
	if !ok && rt.coll == "users" {
		e, ok = dir.byUPN[strings.ToLower(rt.id)]
	}
	want := typeUser
	if rt.coll == "groups" {
		want = typeGroup
	}
	if !ok || e.odataType() != want {
		return nil, resourceNotFound(rt.id)
	}
	sel, gerr := parseSelect(q.Get("$select"), e.props(), strings.TrimPrefix(e.odataType(), "#"))
	if gerr != nil {
		return nil, gerr
	}
	body := render(e, sel, false)
	body["@odata.context"] = s.BaseURL() + "/$metadata#" + rt.coll + selectSuffix(sel) + "/$entity"
	return body, nil
}

// writeGraphError writes Graph's error body, whose innerError repeats the
// request ids.
func (s *Server) writeGraphError(w http.ResponseWriter, e *graphError) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	writeJSON(w, e.status, errorJSON, map[string]any{
		"error": map[string]any{
			"code":    e.code,
			"message": e.msg,
			"innerError": map[string]string{
				"date":              s.opts.Now().UTC().Format(time.DateOnly + "T" + time.TimeOnly),
				"request-id":        w.Header().Get("request-id"),
				"client-request-id": w.Header().Get("client-request-id"),
			},
		},
	})
}

// writeJSON writes v without HTML escaping, so nextLinks read as Graph's do
// (with "&", not "\u0026").
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client hung up; nothing to do
}
