package scimtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ptsync/ptsync/sources/scim/internal/filter"
)

// SCIM URNs (RFC 7643 §8.7, RFC 7644 §3.12, §3.4.2).
const (
	userSchema   = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	spcSchema    = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	listSchema   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	errorSchema  = "urn:ietf:params:scim:api:messages:2.0:Error"
	contentType  = "application/scim+json"
	resourceDate = "2024-01-02T03:04:05Z"
)

// index is one directory rendered as SCIM resources, read-only once built.
type index struct {
	users, groups []map[string]any // in directory order
	byID          map[string]map[string]any
	kind          map[string]string // id -> "Users" | "Groups"
}

func newIndex(dir Directory, base string, omitMemberType bool) *index {
	idx := &index{byID: map[string]map[string]any{}, kind: map[string]string{}}
	claim := func(id, kind string) {
		if id == "" {
			panic("scimtest: a " + kind + " without an id")
		}
		if _, dup := idx.kind[id]; dup {
			panic("scimtest: id " + id + " is used twice")
		}
		idx.kind[id] = kind
	}
	names := map[string]string{}
	for _, u := range dir.Users {
		claim(u.ID, "Users")
		names[u.ID] = u.DisplayName
	}
	for _, g := range dir.Groups {
		claim(g.ID, "Groups")
		names[g.ID] = g.DisplayName
	}
	memberOf := map[string][]any{}
	for _, g := range dir.Groups {
		for _, m := range g.Members {
			if idx.kind[m] == "Users" {
				memberOf[m] = append(memberOf[m], map[string]any{
					"value": g.ID, "$ref": base + "/Groups/" + g.ID, "display": g.DisplayName, "type": "direct",
				})
			}
		}
	}
	for _, u := range dir.Users {
		r := map[string]any{
			"schemas":  []any{userSchema},
			"id":       u.ID,
			"userName": u.UserName,
			"meta":     meta("User", base+"/Users/"+u.ID),
		}
		setString(r, "externalId", u.ExternalID)
		setString(r, "displayName", u.DisplayName)
		name := map[string]any{}
		setString(name, "formatted", u.Name.Formatted)
		setString(name, "givenName", u.Name.GivenName)
		setString(name, "familyName", u.Name.FamilyName)
		if len(name) > 0 {
			r["name"] = name
		}
		if u.Active != nil {
			r["active"] = *u.Active
		}
		setMulti(r, "emails", u.Emails)
		setMulti(r, "phoneNumbers", u.PhoneNumbers)
		if groups := memberOf[u.ID]; len(groups) > 0 {
			r["groups"] = groups
		}
		idx.users = append(idx.users, r)
		idx.byID[u.ID] = r
	}
	for _, g := range dir.Groups {
		r := map[string]any{
			"schemas":     []any{groupSchema},
			"id":          g.ID,
			"displayName": g.DisplayName,
			"meta":        meta("Group", base+"/Groups/"+g.ID),
		}
		setString(r, "externalId", g.ExternalID)
		var members []any
		for _, m := range g.Members {
			item := map[string]any{"value": m}
			kind := idx.kind[m]
			if kind == "" {
				kind = "Users"
			}
			if !omitMemberType {
				item["type"] = strings.TrimSuffix(kind, "s")
				item["$ref"] = base + "/" + kind + "/" + m
			}
			setString(item, "display", names[m])
			members = append(members, item)
		}
		if len(members) > 0 {
			r["members"] = members
		}
		idx.groups = append(idx.groups, r)
		idx.byID[g.ID] = r
	}
	return idx
}

func meta(resourceType, location string) map[string]any {
	return map[string]any{
		"resourceType": resourceType, "created": resourceDate, "lastModified": resourceDate,
		"location": location, "version": `W/"1"`,
	}
}

func setString(m map[string]any, key, value string) {
	if value != "" {
		m[key] = value
	}
}

func setMulti(r map[string]any, key string, values []Multi) {
	var items []any
	for _, v := range values {
		item := map[string]any{"value": v.Value}
		setString(item, "type", v.Type)
		if v.Primary {
			item["primary"] = true
		}
		items = append(items, item)
	}
	if len(items) > 0 {
		r[key] = items
	}
}

func (s *Server) serveServiceProviderConfig(w http.ResponseWriter) {
	o := s.opts
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []any{spcSchema},
		"documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
		"patch":            map[string]any{"supported": false},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": !o.NoFilter, "maxResults": o.MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		// The SCIM cursor-pagination draft's capability object.
		"pagination": map[string]any{
			"cursor": false, "index": !o.NoPaging, "defaultPaginationMethod": "index",
			"defaultPageSize": o.MaxResults, "maxPageSize": o.MaxResults,
		},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "Authentication scheme using the OAuth Bearer Token Standard", "primary": true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.BaseURL() + "/ServiceProviderConfig"},
	})
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, dir *index, resourceType, id string) {
	q := r.URL.Query()
	res, ok := dir.byID[id]
	if !ok || dir.kind[id] != resourceType {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("Resource %s not found", id))
		return
	}
	proj, err := s.projection(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidValue", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, proj.apply(res))
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, dir *index, resourceType string) {
	q := r.URL.Query()
	all := dir.users
	if resourceType == "Groups" {
		all = dir.groups
	}
	if f := q.Get("filter"); f != "" {
		if s.opts.NoFilter {
			writeError(w, http.StatusBadRequest, "invalidFilter", "Filtering is not supported by this service provider")
			return
		}
		expr, err := filter.Parse(f)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalidFilter", err.Error())
			return
		}
		var matched []map[string]any
		for _, res := range all {
			if expr.Match(res) {
				matched = append(matched, res)
			}
		}
		all = matched
	}
	proj, err := s.projection(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidValue", err.Error())
		return
	}
	startIndex, count := 1, s.opts.MaxResults
	if !s.opts.NoPaging {
		if v := q.Get("startIndex"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("startIndex %q is not an integer", v))
				return
			}
			startIndex = max(n, 1) // RFC 7644 §3.4.2.4: below 1 is taken as 1
		}
		if v := q.Get("count"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalidValue", fmt.Sprintf("count %q is not an integer", v))
				return
			}
			count = min(max(n, 0), s.opts.MaxResults) // negative is 0
		}
		if s.opts.IgnoreStartIndex {
			startIndex = 1
		}
	}
	from := min(startIndex-1, len(all))
	to := min(from+count, len(all))
	resources := make([]any, 0, to-from)
	for _, res := range all[from:to] {
		resources = append(resources, proj.apply(res))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []any{listSchema},
		"totalResults": max(len(all)+s.opts.TotalResultsDelta, 0),
		"startIndex":   startIndex,
		"itemsPerPage": len(resources),
		"Resources":    resources,
	})
}

// projection is what attributes or excludedAttributes ask for.
type projection struct {
	include bool // attributes given: keep only those (and id, schemas)
	paths   []filter.Path
}

func (s *Server) projection(q url.Values) (projection, error) {
	attrs, excluded := q.Get("attributes"), q.Get("excludedAttributes")
	if s.opts.IgnoreAttributes || (attrs == "" && excluded == "") {
		return projection{}, nil
	}
	p := projection{include: attrs != ""}
	list := attrs
	if !p.include {
		list = excluded
	}
	for _, a := range strings.Split(list, ",") {
		path, err := filter.ParsePath(strings.TrimSpace(a))
		if err != nil {
			return projection{}, err
		}
		p.paths = append(p.paths, path)
	}
	return p, nil
}

// alwaysReturned are the attributes RFC 7643 returns whatever is asked.
var alwaysReturned = map[string]bool{"id": true, "schemas": true}

// apply returns res cut to the projection: a new map; res is not changed.
func (p projection) apply(res map[string]any) map[string]any {
	if len(p.paths) == 0 {
		return res
	}
	out := map[string]any{}
	if !p.include {
		for k, v := range res {
			out[k] = v
		}
		for _, path := range p.paths {
			if path.URN != "" || alwaysReturned[strings.ToLower(path.Attr)] {
				continue
			}
			if key, v, ok := lookupKey(out, path.Attr); ok {
				if path.Sub == "" {
					delete(out, key)
				} else {
					out[key] = dropSub(v, path.Sub)
				}
			}
		}
		return out
	}
	for k, v := range res {
		if alwaysReturned[k] {
			out[k] = v
		}
	}
	whole := map[string]bool{} // URN + attribute kept whole
	for _, path := range p.paths {
		src, dst := res, out
		if path.URN != "" {
			ext, _ := filter.Lookup(res, path.URN)
			if src, _ = ext.(map[string]any); src == nil {
				continue
			}
			if dst, _ = out[path.URN].(map[string]any); dst == nil {
				dst = map[string]any{}
				out[path.URN] = dst
			}
		}
		key, v, ok := lookupKey(src, path.Attr)
		switch {
		case !ok:
		case path.Sub == "":
			dst[key] = v
			whole[path.URN+":"+key] = true
		case !whole[path.URN+":"+key]:
			dst[key] = keepSub(dst[key], v, path.Sub)
		}
	}
	return out
}

func lookupKey(m map[string]any, name string) (string, any, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// keepSub adds sub of v (of each of its items when multi-valued) to prev,
// what was kept of the attribute so far (nil, or maps this function made):
// name.formatted keeps name's formatted.
func keepSub(prev, v any, sub string) any {
	pick := func(prev, item any) any {
		obj, ok := item.(map[string]any)
		if !ok {
			return prev
		}
		kept, _ := prev.(map[string]any)
		if kept == nil {
			kept = map[string]any{}
		}
		if k, sv, ok := lookupKey(obj, sub); ok {
			kept[k] = sv
		}
		return kept
	}
	list, ok := v.([]any)
	if !ok {
		return pick(prev, v)
	}
	prevList, _ := prev.([]any)
	items := make([]any, len(list))
	for i, item := range list {
		var p any
		if i < len(prevList) {
			p = prevList[i]
		}
		items[i] = pick(p, item)
	}
	return items
}

// dropSub returns v without sub in each of its items.
func dropSub(v any, sub string) any {
	drop := func(item any) any {
		obj, ok := item.(map[string]any)
		if !ok {
			return item
		}
		c := map[string]any{}
		for k, sv := range obj {
			if !strings.EqualFold(k, sub) {
				c[k] = sv
			}
		}
		return c
	}
	if list, ok := v.([]any); ok {
		items := make([]any, len(list))
		for i, item := range list {
			items[i] = drop(item)
		}
		return items
	}
	return drop(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeBody(w, status, contentType, v)
}

func writeBody(w http.ResponseWriter, status int, ctype string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // the fake only marshals what it built
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes an RFC 7644 §3.12 error body.
func writeError(w http.ResponseWriter, status int, scimType, detail string) {
	body := map[string]any{"schemas": []any{errorSchema}, "status": strconv.Itoa(status), "detail": detail}
	if scimType != "" {
		body["scimType"] = scimType
	}
	writeJSON(w, status, body)
}
