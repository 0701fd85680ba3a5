package googletest

import (
	"strings"
)

// schema is what a partial response may select in a resource: each field
// and, for an object, its own fields. A nil schema is a leaf: a string,
// number or boolean, or a field the API types as "any" (a user's phones,
// emails and aliases), inside which nothing can be selected.
type schema map[string]schema

var (
	userSchema = schema{
		"kind": nil, "id": nil, "etag": nil, "primaryEmail": nil,
		"name":    {"givenName": nil, "familyName": nil, "fullName": nil, "displayName": nil},
		"isAdmin": nil, "isDelegatedAdmin": nil, "lastLoginTime": nil, "creationTime": nil, "deletionTime": nil,
		"agreedToTerms": nil, "suspended": nil, "suspensionReason": nil, "archived": nil,
		"changePasswordAtNextLogin": nil, "ipWhitelisted": nil, "password": nil, "hashFunction": nil,
		"emails": nil, "aliases": nil, "nonEditableAliases": nil, "phones": nil, "addresses": nil,
		"organizations": nil, "relations": nil, "externalIds": nil, "ims": nil, "websites": nil, "locations": nil,
		"languages": nil, "keywords": nil, "gender": nil, "notes": nil, "posixAccounts": nil, "sshPublicKeys": nil,
		"customSchemas": nil, "customerId": nil, "orgUnitPath": nil, "isMailboxSetup": nil,
		"isEnrolledIn2Sv": nil, "isEnforcedIn2Sv": nil, "includeInGlobalAddressList": nil,
		"thumbnailPhotoUrl": nil, "thumbnailPhotoEtag": nil, "recoveryEmail": nil, "recoveryPhone": nil,
		"isGuestUser": nil,
	}
	groupSchema = schema{
		"kind": nil, "id": nil, "etag": nil, "email": nil, "name": nil, "directMembersCount": nil,
		"description": nil, "adminCreated": nil, "aliases": nil, "nonEditableAliases": nil,
	}
	memberSchema = schema{
		"kind": nil, "etag": nil, "id": nil, "email": nil, "role": nil, "type": nil, "status": nil, "delivery_settings": nil,
	}
	usersSchema   = schema{"kind": nil, "etag": nil, "trigger_event": nil, "nextPageToken": nil, "users": userSchema}
	groupsSchema  = schema{"kind": nil, "etag": nil, "nextPageToken": nil, "groups": groupSchema}
	membersSchema = schema{"kind": nil, "etag": nil, "nextPageToken": nil, "members": memberSchema}
)

// selection is a parsed fields parameter: each selected field and, when
// only part of it is selected, that part (nil: the whole field).
type selection map[string]selection

// parseFields reads a fields parameter ("nextPageToken,users(id,name/
// fullName)": commas between fields, a/b for b inside a, a(b,c) for b and
// c inside a) and checks it against sc. "" selects everything (nil).
func parseFields(raw string, sc schema) (selection, *apiError) {
	if raw == "" {
		return nil, nil
	}
	p := &fieldParser{in: raw}
	sel, ok := p.list(sc, "")
	if !ok || p.pos != len(p.in) {
		if p.err != nil {
			return nil, p.err
		}
		return nil, invalidFields(raw)
	}
	return sel, nil
}

func invalidFields(what string) *apiError {
	return badRequest("invalidParameter", "Invalid field selection "+what)
}

type fieldParser struct {
	in  string
	pos int
	err *apiError
}

// list reads fields separated by commas, up to the end or a ')'.
func (p *fieldParser) list(sc schema, prefix string) (selection, bool) {
	sel := selection{}
	for {
		if !p.field(sel, sc, prefix) {
			return nil, false
		}
		if p.pos < len(p.in) && p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		return sel, true
	}
}

// field reads one path (a/b/c) with an optional (sub-list) and merges it
// into sel.
func (p *fieldParser) field(sel selection, sc schema, prefix string) bool {
	name := p.name()
	if name == "" {
		return false
	}
	sub, known := sc[name]
	if !known {
		p.err = invalidFields(prefix + name)
		return false
	}
	var inner selection
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '/':
		p.pos++
		if sub == nil {
			p.err = invalidFields(prefix + name + "/")
			return false
		}
		inner = selection{}
		if !p.field(inner, sub, prefix+name+"/") {
			return false
		}
	case p.pos < len(p.in) && p.in[p.pos] == '(':
		p.pos++
		if sub == nil {
			p.err = invalidFields(prefix + name + "(")
			return false
		}
		var ok bool
		if inner, ok = p.list(sub, prefix+name+"/"); !ok {
			return false
		}
		if p.pos >= len(p.in) || p.in[p.pos] != ')' {
			return false
		}
		p.pos++
	}
	merge(sel, name, inner)
	return true
}

// merge adds name (with inner, nil for all of it) to sel.
func merge(sel selection, name string, inner selection) {
	old, had := sel[name]
	switch {
	case !had:
		sel[name] = inner
	case old == nil || inner == nil:
		sel[name] = nil // the whole field was asked for
	default:
		for k, v := range inner {
			merge(old, k, v)
		}
	}
}

func (p *fieldParser) name() string {
	start := p.pos
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			p.pos++
			continue
		}
		break
	}
	return p.in[start:p.pos]
}

// prune keeps of v what sel selects, in objects and in each object of an
// array.
func prune(v any, sel selection) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range sel {
			val, ok := x[k]
			switch {
			case !ok:
			case sub == nil:
				out[k] = val
			default:
				out[k] = prune(val, sub)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e, sel)
		}
		return out
	}
	return v
}

// groupClause is one clause of a groups.list query: field = value, or
// field:prefix*.
type groupClause struct {
	field, value string
	prefix       bool
}

// parseGroupQuery reads a groups.list query ("Search for groups": clauses
// separated by spaces and joined by AND; fields email and name with = or
// :{PREFIX}*, memberKey with =, never memberKey with the others; a value
// with spaces in single quotes, \' inside) and returns its test. Matching
// is without regard to case.
func parseGroupQuery(q string, dir *directory) (func(Group) bool, *apiError) {
	bad := badRequest("invalid", "Invalid Input")
	var clauses []groupClause
	hasMemberKey, hasOther := false, false
	i := 0
	for {
		for i < len(q) && (q[i] == ' ' || q[i] == '\t') {
			i++
		}
		if i == len(q) {
			break
		}
		start := i
		for i < len(q) && (q[i] >= 'a' && q[i] <= 'z' || q[i] >= 'A' && q[i] <= 'Z') {
			i++
		}
		field := q[start:i]
		if i == len(q) || (q[i] != '=' && q[i] != ':') {
			return nil, bad
		}
		c := groupClause{field: field, prefix: q[i] == ':'}
		i++
		var value strings.Builder
		if i < len(q) && q[i] == '\'' {
			i++
			for {
				switch {
				case i == len(q):
					return nil, bad // no closing quote
				case q[i] == '\\' && i+1 < len(q):
					value.WriteByte(q[i+1])
					i += 2
					continue
				case q[i] == '\'':
					i++
				default:
					value.WriteByte(q[i])
					i++
					continue
				}
				break
			}
		} else {
			for i < len(q) && q[i] != ' ' && q[i] != '\t' {
				value.WriteByte(q[i])
				i++
			}
		}
		c.value = value.String()
		switch {
		case field != "email" && field != "name" && field != "memberKey":
			return nil, bad
		case c.prefix && (field == "memberKey" || !strings.HasSuffix(c.value, "*")):
			return nil, bad
		case c.value == "" || (c.prefix && c.value == "*"):
			return nil, bad
		}
		if c.prefix {
			c.value = strings.TrimSuffix(c.value, "*")
		}
		if field == "memberKey" {
			hasMemberKey = true
		} else {
			hasOther = true
		}
		clauses = append(clauses, c)
	}
	if hasMemberKey && hasOther {
		return nil, bad
	}
	return func(g Group) bool {
		for _, c := range clauses {
			if !c.matches(g, dir) {
				return false
			}
		}
		return true
	}, nil
}

func (c groupClause) matches(g Group, dir *directory) bool {
	var got string
	switch c.field {
	case "email":
		got = g.Email
	case "name":
		got = g.Name
	case "memberKey":
		for _, m := range g.Members {
			e := dir.entry(m)
			if strings.EqualFold(e.id, c.value) || (e.email != "" && strings.EqualFold(e.email, c.value)) {
				return true
			}
			if u, ok := dir.userByEmail(c.value); ok && e.typ == TypeUser && u.ID == e.id {
				return true // an alias of the member
			}
		}
		return false
	}
	if c.prefix {
		return strings.HasPrefix(strings.ToLower(got), strings.ToLower(c.value))
	}
	return strings.EqualFold(got, c.value)
}
