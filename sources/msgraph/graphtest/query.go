package graphtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Page sizes of directory collections: 100 unless $top asks for 1..999.
const (
	defaultTop = 100
	maxTop     = 999
)

// listing describes a collection for paging and query options.
type listing struct {
	set        string   // entity set named in @odata.context
	selectable []string // properties $select may name
	withType   bool     // items carry @odata.type (directoryObject collections)
	cast       bool     // an OData cast segment: an advanced query
	// filters maps each filterable property to its operators, each to whether
	// it needs the advanced query parameters; nil means $filter is not
	// implemented on this collection.
	filters  map[string]map[string]bool
	resource string // type name in $filter errors, e.g. "User"
}

// typeName is the OData type $select errors name.
func (l listing) typeName() string {
	for typ, set := range entitySets {
		if set == l.set {
			return strings.TrimPrefix(typ, "#")
		}
	}
	return "microsoft.graph.directoryObject"
}

// The $filter clauses Graph supports by default on these properties, plus
// endsWith, which the advanced-query documentation allows on mail and
// userPrincipalName only with ConsistencyLevel: eventual and $count=true.
var (
	userFilters = map[string]map[string]bool{
		"id":                {"eq": false},
		"displayName":       {"eq": false, "startswith": false},
		"mail":              {"eq": false, "startswith": false, "endswith": true},
		"userPrincipalName": {"eq": false, "startswith": false, "endswith": true},
		"accountEnabled":    {"eq": false},
	}
	groupFilters = map[string]map[string]bool{
		"id":          {"eq": false},
		"displayName": {"eq": false, "startswith": false},
		"mail":        {"eq": false, "startswith": false, "endswith": true},
	}
)

// listResponse is a page of a collection. Graph sends @odata.nextLink only
// when there is a next page, and @odata.count only on the first page of an
// advanced query with $count=true.
type listResponse struct {
	Context  string           `json:"@odata.context"`
	Count    *int             `json:"@odata.count,omitempty"`
	NextLink string           `json:"@odata.nextLink,omitempty"`
	Value    []map[string]any `json:"value"`
}

// page applies r's query options to items and returns the page asked for.
func (s *Server) page(r *http.Request, l listing, items []entity) (any, *graphError) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "$top", "$select", "$filter", "$count", "$skiptoken":
		default:
			if strings.HasPrefix(k, "$") {
				return nil, notImplemented(k)
			}
		}
	}
	// Advanced query parameters are a header and $count=true. Graph does not
	// carry headers into a nextLink, so each page must send the header again.
	advanced := strings.EqualFold(r.Header.Get("ConsistencyLevel"), "eventual") && strings.EqualFold(q.Get("$count"), "true")
	if l.cast && !advanced {
		return nil, badRequest("Request_UnsupportedQuery", advancedMessage("OData cast"))
	}
	offset := 0
	if q.Has("$skiptoken") {
		var ok bool
		if offset, ok = s.readSkipToken(q.Get("$skiptoken"), r.URL.Path, q); !ok {
			return nil, badRequest("Request_BadRequest", "graphtest: this $skiptoken was not issued for this request; follow @odata.nextLink exactly as given")
		}
	}
	top := defaultTop
	if q.Has("$top") {
		n, err := strconv.Atoi(q.Get("$top"))
		if err != nil {
			return nil, badRequest("BadRequest", "Invalid value '"+q.Get("$top")+"' for query option '$top'.")
		}
		if n < 1 || n > maxTop {
			return nil, badRequest("Request_UnsupportedQuery", "Invalid page size specified: '"+strconv.Itoa(n)+"'. Must be between 1 and 999 inclusive.")
		}
		top = n
	}
	sel, gerr := parseSelect(q.Get("$select"), l.selectable, l.typeName())
	if gerr != nil {
		return nil, gerr
	}
	if q.Has("$filter") {
		if l.filters == nil {
			return nil, notImplemented("$filter on a relationship")
		}
		keep, gerr := parseFilter(q.Get("$filter"), l, advanced)
		if gerr != nil {
			return nil, gerr
		}
		var kept []entity
		for _, e := range items {
			if keep(e) {
				kept = append(kept, e)
			}
		}
		items = kept
	}

	offset = min(offset, len(items))
	end := min(offset+top, len(items))
	resp := listResponse{
		Context: s.BaseURL() + "/$metadata#" + l.set + selectSuffix(sel),
		Value:   make([]map[string]any, 0, end-offset),
	}
	if advanced && !q.Has("$skiptoken") {
		n := len(items)
		resp.Count = &n
	}
	for _, e := range items[offset:end] {
		resp.Value = append(resp.Value, render(e, sel, l.withType))
	}
	if end < len(items) {
		resp.NextLink = s.nextLink(r, q, end)
	}
	return resp, nil
}

func advancedMessage(what string) string {
	return what + " is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
}

// parseSelect returns the canonical names $select asks for, nil for none.
func parseSelect(raw string, allowed []string, typeName string) ([]string, *graphError) {
	var sel []string
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		i := slices.IndexFunc(allowed, func(a string) bool { return strings.EqualFold(a, p) })
		if i < 0 {
			return nil, badRequest("BadRequest", "Parsing OData Select and Expand failed: Could not find a property named '"+p+"' on type '"+typeName+"'.")
		}
		if !slices.Contains(sel, allowed[i]) {
			sel = append(sel, allowed[i])
		}
	}
	return sel, nil
}

// selectSuffix is the "(a,b)" an @odata.context carries for a $select.
func selectSuffix(sel []string) string {
	if sel == nil {
		return ""
	}
	return "(" + strings.Join(sel, ",") + ")"
}

var (
	funcClause = regexp.MustCompile(`(?i)^\s*(startswith|endswith)\s*\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)\s*$`)
	eqClause   = regexp.MustCompile(`(?i)^\s*(\w+)\s+eq\s+(?:'((?:[^']|'')*)'|(true|false))\s*$`)
)

// parseFilter compiles a single eq, startswith or endswith clause. Directory
// string comparisons are case-insensitive.
func parseFilter(expr string, l listing, advanced bool) (func(entity) bool, *graphError) {
	var op, prop string
	var want any
	if m := funcClause.FindStringSubmatch(expr); m != nil {
		op, prop, want = strings.ToLower(m[1]), m[2], strings.ReplaceAll(m[3], "''", "'")
	} else if m := eqClause.FindStringSubmatch(expr); m != nil {
		op, prop, want = "eq", m[1], strings.ReplaceAll(m[2], "''", "'")
		if m[3] != "" {
			want = strings.EqualFold(m[3], "true")
		}
	} else {
		return nil, notImplemented("a $filter other than one eq, startswith or endswith clause")
	}
	var canon string
	for p := range l.filters {
		if strings.EqualFold(p, prop) {
			canon = p
		}
	}
	needsAdvanced, ok := l.filters[canon][op]
	if !ok {
		return nil, badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified for property '"+prop+"' of resource '"+l.resource+"'.")
	}
	if needsAdvanced && !advanced {
		// endsWith is the only operator here that needs them.
		return nil, badRequest("Request_UnsupportedQuery", advancedMessage("Operator 'endsWith'"))
	}
	if _, isBool := want.(bool); isBool != (canon == "accountEnabled") {
		return nil, badRequest("BadRequest", "Invalid filter clause: the value compared with '"+canon+"' has the wrong type.")
	}
	return func(e entity) bool {
		v, _ := e.prop(canon)
		if b, ok := want.(bool); ok {
			got, ok := v.(bool)
			return ok && got == b
		}
		got, ok := v.(string)
		if !ok {
			return false // null matches nothing
		}
		got, w := strings.ToLower(got), strings.ToLower(want.(string))
		switch op {
		case "startswith":
			return strings.HasPrefix(got, w)
		case "endswith":
			return strings.HasSuffix(got, w)
		}
		return got == w
	}, nil
}

// A $skiptoken is 8 bytes of offset, 8 random bytes, and 16 bytes of HMAC
// over those, the path and the other query options: opaque to the client,
// and useless on any request but the one its nextLink names.
func (s *Server) skipToken(offset int, path string, q url.Values) string {
	payload := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(payload, uint64(offset))
	copy(payload[8:], randomBytes(8))
	return base64.RawURLEncoding.EncodeToString(append(payload, s.skipMAC(payload, path, q)...))
}

func (s *Server) readSkipToken(tok, path string, q url.Values) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != 32 || !hmac.Equal(b[16:], s.skipMAC(b[:16], path, q)) {
		return 0, false
	}
	off := binary.BigEndian.Uint64(b[:8])
	if off > math.MaxInt32 {
		return 0, false
	}
	return int(off), true
}

func (s *Server) skipMAC(payload []byte, path string, q url.Values) []byte {
	rest := url.Values{}
	for k, v := range q {
		if k != "$skiptoken" {
			rest[k] = v
		}
	}
	m := hmac.New(sha256.New, s.skipKey)
	m.Write(payload)
	m.Write([]byte("\x00" + strings.ToLower(path) + "\x00" + rest.Encode()))
	return m.Sum(nil)[:16]
}

// nextLink is the absolute URL of the page starting at offset: this request's
// URL with its query options kept as sent and a fresh $skiptoken, as Graph's
// nextLinks keep "$top=5&$skiptoken=..." unescaped.
func (s *Server) nextLink(r *http.Request, q url.Values, offset int) string {
	var parts []string
	for _, p := range strings.Split(r.URL.RawQuery, "&") {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); p == "" || (err == nil && key == "$skiptoken") {
			continue
		}
		parts = append(parts, p)
	}
	parts = append(parts, "$skiptoken="+s.skipToken(offset, r.URL.Path, q))
	return s.srv.URL + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}
