package graphtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Delta query, as Microsoft's "Use delta query to track changes in
// Microsoft Graph data", "Get incremental changes for groups" and the
// user: delta and group: delta pages describe it:
//
//   - A round is one or more pages: an @odata.nextLink ($skiptoken) while
//     more follow, an @odata.deltaLink ($deltatoken) on the last. Both are
//     opaque, carry the initial request's $select and $filter, and must be
//     followed as given.
//   - The initial round lists every object, groups with their direct
//     members in members@delta. A deltaLink's round lists what changed
//     since it was issued: created objects in full, updated ones with their
//     selected properties (only the changed ones under Prefer:
//     return=minimal), removed ones as {"id", "@removed": {"reason"}}, and
//     of a group's members only those added or removed. A change to a
//     property that was not selected does not show.
//   - $deltatoken=latest answers no objects and a deltaLink: sync from now.
//   - $select may name members on groups; $filter takes only id eq clauses
//     joined by or, at most 50; $top, $orderby and $expand are refused.
//   - A token lives seven days; after that (or ExpireDeltaTokens) following
//     it answers 400 syncStateNotFound, and after ResetDeltaSync 410 Gone
//     with a Location header holding the round's initial request.
//
// Rounds compare two versions of the directory (SetTenant, Update), so they
// report net changes: an object added and removed in between never shows.

const (
	defaultDeltaPageSize = 100
	deltaTokenLifetime   = 7 * 24 * time.Hour
	maxDeltaFilterIDs    = 50
	// membersProp is the relationship $select names to track membership.
	membersProp = "members"
)

// deltaState is what a state token carries.
type deltaState struct {
	Kind   string   `json:"k"` // "d": a $deltatoken, "s": a $skiptoken
	Coll   string   `json:"c"` // "users" or "groups"
	Epoch  int      `json:"e"`
	Issued int64    `json:"t"` // Unix seconds by Options.Now
	From   int      `json:"f"` // the version changes count from; -1 in an initial round
	To     int      `json:"g"` // the version the round reads (skiptoken)
	Offset int      `json:"o"` // entries already served (skiptoken)
	Select []string `json:"s,omitempty"`
	IDs    []string `json:"i,omitempty"` // $filter=id eq ...
}

type deltaResponse struct {
	Context   string           `json:"@odata.context"`
	NextLink  string           `json:"@odata.nextLink,omitempty"`
	DeltaLink string           `json:"@odata.deltaLink,omitempty"`
	Value     []map[string]any `json:"value"`
}

// delta serves GET /{coll}/delta; dir is version gen of the directory.
func (s *Server) delta(r *http.Request, coll string, dir *directory, gen int) (any, *graphError) {
	var deltaTok, skipTok []string
	opts := url.Values{}
	for k, v := range r.URL.Query() {
		switch strings.ToLower(k) { // the docs spell both $deltatoken and $deltaToken
		case "$deltatoken":
			deltaTok = v
		case "$skiptoken":
			skipTok = v
		default:
			opts[k] = v
		}
	}
	s.mu.Lock()
	s.versions[gen] = dir
	issued := deltaState{Coll: coll, Epoch: len(s.retired), Issued: s.opts.Now().Unix()}
	s.mu.Unlock()

	var round deltaState // what this page serves: From, To, Offset, Select, IDs
	switch {
	case skipTok != nil || (deltaTok != nil && deltaTok[0] != "" && !strings.EqualFold(deltaTok[0], "latest")):
		if len(opts) > 0 || (skipTok != nil && deltaTok != nil) {
			return nil, badRequest("Request_BadRequest", "graphtest: a delta link carries its query options in its state token; follow @odata.nextLink and @odata.deltaLink exactly as given")
		}
		kind, tok := "s", skipTok
		if skipTok == nil {
			kind, tok = "d", deltaTok
		}
		st, ok := s.readStateToken(tok[0], kind, coll)
		if !ok {
			return nil, badRequest("Request_BadRequest", "graphtest: this state token was not issued for this request; follow @odata.nextLink and @odata.deltaLink exactly as given")
		}
		if gerr := s.checkState(st); gerr != nil {
			return nil, gerr
		}
		round = st
		if kind == "d" {
			round.To, round.Offset = gen, 0
		}
	default:
		sel, ids, gerr := parseDeltaOptions(coll, opts)
		if gerr != nil {
			return nil, gerr
		}
		round = deltaState{From: -1, To: gen, Select: sel, IDs: ids}
		if deltaTok != nil && strings.EqualFold(deltaTok[0], "latest") {
			issued.Kind, issued.From, issued.Select, issued.IDs = "d", gen, sel, ids
			return deltaResponse{
				Context:   s.deltaContext(coll, sel),
				DeltaLink: s.deltaURL(coll, "$deltatoken", s.stateToken(issued)),
				Value:     []map[string]any{},
			}, nil
		}
	}

	s.mu.Lock()
	from, to := s.versions[round.From], s.versions[round.To] // no version -1: nil
	s.mu.Unlock()
	items := deltaItems(coll, from, to, round.Select, round.IDs, from != nil && preferMinimal(r))
	value, more := deltaPage(items, round.Offset, s.opts.DeltaPageSize)
	resp := deltaResponse{Context: s.deltaContext(coll, round.Select), Value: value}
	issued.Select, issued.IDs = round.Select, round.IDs
	if more {
		issued.Kind, issued.From, issued.To, issued.Offset = "s", round.From, round.To, round.Offset+s.opts.DeltaPageSize
		resp.NextLink = s.deltaURL(coll, "$skiptoken", s.stateToken(issued))
	} else {
		issued.Kind, issued.From = "d", round.To
		resp.DeltaLink = s.deltaURL(coll, "$deltatoken", s.stateToken(issued))
	}
	return resp, nil
}

func (s *Server) deltaContext(coll string, sel []string) string {
	return s.BaseURL() + "/$metadata#" + coll + selectSuffix(sel)
}

func (s *Server) deltaURL(coll, param, token string) string {
	return s.BaseURL() + "/" + coll + "/delta?" + param + "=" + token
}

func preferMinimal(r *http.Request) bool {
	for _, h := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(h, ",") {
			if strings.EqualFold(strings.ReplaceAll(p, " ", ""), "return=minimal") {
				return true
			}
		}
	}
	return false
}

// parseDeltaOptions reads an initial delta request's query options.
func parseDeltaOptions(coll string, opts url.Values) (sel, ids []string, gerr *graphError) {
	for k := range opts {
		if strings.HasPrefix(k, "$") && k != "$select" && k != "$filter" {
			return nil, nil, badRequest("Request_UnsupportedQuery", "The query option '"+k+"' is not supported with delta.")
		}
	}
	allowed, typeName, resource := userProps, "microsoft.graph.user", "User"
	if coll == "groups" {
		allowed, typeName, resource = append(slices.Clone(groupProps), membersProp), "microsoft.graph.group", "Group"
		for _, p := range strings.Split(opts.Get("$select"), ",") {
			if strings.EqualFold(strings.TrimSpace(p), "owners") {
				return nil, nil, notImplemented("tracking owners with delta")
			}
		}
	}
	if sel, gerr = parseSelect(opts.Get("$select"), allowed, typeName); gerr != nil {
		return nil, nil, gerr
	}
	if opts.Has("$filter") {
		if ids, gerr = parseIDFilter(opts.Get("$filter"), resource); gerr != nil {
			return nil, nil, gerr
		}
	}
	return sel, ids, nil
}

var (
	idClause = regexp.MustCompile(`(?i)^\s*id\s+eq\s+'([^']*)'\s*$`)
	orSep    = regexp.MustCompile(`(?i)\s+or\s+`)
)

// parseIDFilter reads the only $filter delta takes: id eq clauses joined
// by or.
func parseIDFilter(expr, resource string) ([]string, *graphError) {
	var ids []string
	for _, clause := range orSep.Split(expr, -1) {
		m := idClause.FindStringSubmatch(clause)
		if m == nil {
			return nil, badRequest("Request_UnsupportedQuery", "Unsupported query filter for the delta of resource '"+resource+"': only id eq clauses joined by 'or' can filter a delta query.")
		}
		ids = append(ids, m[1])
	}
	if len(ids) > maxDeltaFilterIDs {
		return nil, badRequest("Request_UnsupportedQuery", "Too many id eq clauses in the delta $filter: the limit is 50.")
	}
	return ids, nil
}

// stateToken seals st: its JSON and an HMAC over it, base64url, so a token
// is useless but on the link it came in.
func (s *Server) stateToken(st deltaState) string {
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // a deltaState always marshals
	}
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(s.stateMAC(b))
}

func (s *Server) readStateToken(tok, kind, coll string) (deltaState, bool) {
	payload, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return deltaState{}, false
	}
	b, err1 := base64.RawURLEncoding.DecodeString(payload)
	m, err2 := base64.RawURLEncoding.DecodeString(mac)
	var st deltaState
	if err1 != nil || err2 != nil || !hmac.Equal(m, s.stateMAC(b)) || json.Unmarshal(b, &st) != nil {
		return deltaState{}, false
	}
	return st, st.Kind == kind && st.Coll == coll
}

func (s *Server) stateMAC(b []byte) []byte {
	m := hmac.New(sha256.New, s.skipKey)
	m.Write([]byte("delta\x00"))
	m.Write(b)
	return m.Sum(nil)[:16]
}

// checkState answers for a token that has ended: 410 Gone after a
// synchronization reset, else syncStateNotFound for an expired one (400,
// the code and message Microsoft gives for identity resources' expired
// delta links).
func (s *Server) checkState(st deltaState) *graphError {
	s.mu.Lock()
	retired, reset := st.Epoch < len(s.retired), st.Epoch < len(s.retired) && s.retired[st.Epoch]
	age := s.opts.Now().Sub(time.Unix(st.Issued, 0))
	s.mu.Unlock()
	switch {
	case reset:
		initial := []string{}
		if st.Select != nil {
			initial = append(initial, "$select="+strings.Join(st.Select, ","))
		}
		if st.IDs != nil {
			clauses := make([]string, len(st.IDs))
			for i, id := range st.IDs {
				clauses[i] = "id eq '" + id + "'"
			}
			initial = append(initial, "$filter="+url.QueryEscape(strings.Join(clauses, " or ")))
		}
		initial = append(initial, "$deltatoken=")
		return &graphError{status: http.StatusGone, code: "resyncRequired",
			msg:    "The delta token is no longer valid, and the app must reset the sync state.",
			header: http.Header{"Location": {s.BaseURL() + "/" + st.Coll + "/delta?" + strings.Join(initial, "&")}}}
	case retired || age >= deltaTokenLifetime:
		return badRequest("syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
	}
	return nil
}

// deltaItem is one object of a round.
type deltaItem struct {
	id      string
	e       entity   // the object now; nil when removed
	reason  string   // the @removed reason, when removed
	props   []string // the properties sent
	members []memberChange
}

type memberChange struct {
	typ, id string
	removed bool
}

// deltaItems lists what changed in coll from one version to another (from
// nil: everything in to), for the selected properties (sel nil: the
// defaults) and ids (nil: all).
func deltaItems(coll string, from, to *directory, sel, ids []string, minimal bool) []deltaItem {
	now, defaults := to.users, userDefaults
	if coll == "groups" {
		now, defaults = to.groups, groupProps
	}
	var before []entity
	if from != nil {
		before = from.users
		if coll == "groups" {
			before = from.groups
		}
	}
	tracked := defaults
	if sel != nil {
		tracked = slices.DeleteFunc(slices.Clone(sel), func(p string) bool { return p == membersProp })
	}
	withMembers := coll == "groups" && (sel == nil || slices.Contains(sel, membersProp))
	wanted := func(id string) bool { return ids == nil || slices.Contains(ids, id) }

	var items []deltaItem
	for _, e := range now {
		if !wanted(e.id()) {
			continue
		}
		var old entity
		if from != nil {
			if o, ok := from.byID[e.id()]; ok && o.odataType() == e.odataType() {
				old = o
			}
		}
		it := deltaItem{id: e.id(), e: e}
		changed := false
		for _, p := range tracked {
			v, _ := e.prop(p)
			if old == nil {
				if v != nil { // a property never set is left out
					it.props = append(it.props, p)
				}
				continue
			}
			ov, _ := old.prop(p)
			diff := !reflect.DeepEqual(v, ov)
			changed = changed || diff
			if diff || (!minimal && v != nil) {
				it.props = append(it.props, p)
			}
		}
		if withMembers {
			it.members = memberChanges(old, e, from, to)
		}
		if old != nil && !changed && len(it.members) == 0 {
			continue
		}
		items = append(items, it)
	}
	for _, e := range before {
		if cur, ok := to.byID[e.id()]; (ok && cur.odataType() == e.odataType()) || !wanted(e.id()) {
			continue
		}
		items = append(items, deltaItem{id: e.id(), reason: removalReason(e)})
	}
	return items
}

// removalReason is "changed" for what Entra ID keeps restorable for 30
// days (users, Microsoft 365 groups, which have mail) and "deleted" for
// what is gone for good (security groups).
func removalReason(e entity) string {
	if g, ok := e.(groupEntity); ok && g.g.Mail == "" {
		return "deleted"
	}
	return "changed"
}

// memberChanges is what members@delta says of group e: its direct members
// added since old (all of them when old is nil), then those removed.
func memberChanges(old, e entity, from, to *directory) []memberChange {
	now := e.(groupEntity).g.Members
	var before []string
	if og, ok := old.(groupEntity); ok {
		before = og.g.Members
	}
	var out []memberChange
	was := make(map[string]bool, len(before))
	for _, id := range before {
		was[id] = true
	}
	is := make(map[string]bool, len(now))
	for _, id := range now {
		is[id] = true
		if !was[id] {
			out = append(out, memberChange{typ: to.byID[id].odataType(), id: id})
		}
	}
	for _, id := range before {
		if !is[id] {
			out = append(out, memberChange{typ: from.byID[id].odataType(), id: id, removed: true})
		}
	}
	return out
}

// deltaPage renders the size entries from offset: an object counts one and
// each of its members@delta entries one, so a group with many member
// changes spans pages, sent again on each with the next of its members.
func deltaPage(items []deltaItem, offset, size int) (value []map[string]any, more bool) {
	value = []map[string]any{}
	pos := 0
	for _, it := range items {
		start := pos
		pos += 1 + len(it.members)
		if pos <= offset || start >= offset+size {
			continue
		}
		// Member i is entry start+1+i.
		lo, hi := max(offset-start-1, 0), min(offset+size-start-1, len(it.members))
		value = append(value, it.render(it.members[lo:max(lo, hi)]))
	}
	return value, pos > offset+size
}

func (it deltaItem) render(members []memberChange) map[string]any {
	if it.e == nil {
		return map[string]any{"id": it.id, "@removed": map[string]string{"reason": it.reason}}
	}
	m := map[string]any{"id": it.id}
	for _, p := range it.props {
		m[p], _ = it.e.prop(p)
	}
	if len(members) > 0 {
		list := make([]map[string]any, len(members))
		for i, mc := range members {
			list[i] = map[string]any{"@odata.type": mc.typ, "id": mc.id}
			if mc.removed {
				list[i]["@removed"] = map[string]string{"reason": "deleted"}
			}
		}
		m["members@delta"] = list
	}
	return m
}
