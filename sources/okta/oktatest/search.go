package oktatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file implements Okta's expression language for the search and filter
// parameters (developer.okta.com/docs/api/#filter), a subset of SCIM's
// (RFC 7644 §3.4.2.2): comparisons such as profile.name sw "Eng" joined by
// and and or, grouped with parentheses; and binds tighter than or.
// Attribute names are case-sensitive, operators and keywords are not. Values
// are JSON strings.

// attr is an attribute that expressions may name.
type attr[T any] struct {
	get func(T) string // "" when the item has no value: then nothing matches
	// many, set instead of get, reads a multi-valued attribute (the
	// System Log's target.id): a comparison holds when it holds for any
	// value.
	many func(T) []string
	ops  []string // the operators it allows
	date bool     // values are timestamps, compared in time
}

// values are a's values in v, none when it has none.
func (a attr[T]) values(v T) []string {
	if a.many != nil {
		return a.many(v)
	}
	if s := a.get(v); s != "" {
		return []string{s}
	}
	return nil
}

// schema is what one parameter's expressions may say about a T.
type schema[T any] struct {
	attrs map[string]attr[T]
	// other resolves names that attrs lacks; nil allows none.
	other func(name string) (attr[T], bool)
	// unimplemented reports names Okta knows and the fake does not model:
	// they fail with errUnimplemented rather than as unknown.
	unimplemented func(name string) bool
	// fold makes string comparisons case-insensitive.
	fold bool
}

var (
	searchOps     = []string{"eq", "sw", "gt", "ge", "lt", "le", "pr"}
	searchTextOps = []string{"eq", "sw", "co", "gt", "ge", "lt", "le", "pr"}
	searchDateOps = []string{"eq", "gt", "ge", "lt", "le", "pr"}
	filterDateOps = []string{"eq", "gt", "ge", "lt", "le"}
)

func groupStamp(Group) string { return stamp }
func groupID(g Group) string  { return g.ID }

// groupSearch is the search parameter of GET /api/v1/groups: any group
// property with sw, eq and the orderings, co only on profile.name and
// profile.description; values are compared case-insensitively.
var groupSearch = &schema[Group]{
	fold: true,
	attrs: map[string]attr[Group]{
		"id":                    {get: groupID, ops: searchOps},
		"type":                  {get: func(g Group) string { return g.Type }, ops: searchOps},
		"created":               {get: groupStamp, ops: searchDateOps, date: true},
		"lastUpdated":           {get: groupStamp, ops: searchDateOps, date: true},
		"lastMembershipUpdated": {get: groupStamp, ops: searchDateOps, date: true},
		"profile.name":          {get: func(g Group) string { return g.Name }, ops: searchTextOps},
		"profile.description":   {get: func(g Group) string { return g.Description }, ops: searchTextOps},
	},
	// Any profile attribute may be searched, and source.id of app groups;
	// the fake's groups have none of them.
	other: func(name string) (attr[Group], bool) {
		if strings.HasPrefix(name, "profile.") || name == "source.id" {
			return attr[Group]{get: func(Group) string { return "" }, ops: searchOps}, true
		}
		return attr[Group]{}, false
	},
}

// groupFilter is the filter parameter of GET /api/v1/groups: id and type
// with eq, the update timestamps with eq and the orderings; values are
// compared exactly.
var groupFilter = &schema[Group]{
	attrs: map[string]attr[Group]{
		"id":                    {get: groupID, ops: []string{"eq"}},
		"type":                  {get: func(g Group) string { return g.Type }, ops: []string{"eq"}},
		"lastUpdated":           {get: groupStamp, ops: filterDateOps, date: true},
		"lastMembershipUpdated": {get: groupStamp, ops: filterDateOps, date: true},
	},
}

// errUnimplemented marks an expression that is valid in Okta but uses what
// the fake does not implement.
var errUnimplemented = errors.New("not implemented by oktatest")

// compile parses an expression into a predicate. Its errors say what is
// wrong, for the errorCauses of Okta's E0000031.
func (sc *schema[T]) compile(expr string) (func(T) bool, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser[T]{s: sc, toks: toks}
	match, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return match, nil
}

func (sc *schema[T]) lookup(name string) (attr[T], bool) {
	if a, ok := sc.attrs[name]; ok {
		return a, true
	}
	if sc.other != nil {
		return sc.other(name)
	}
	return attr[T]{}, false
}

// A token is a parenthesis, a string literal (kind '"', text decoded) or a
// word (kind 'w').
type token struct {
	kind byte
	text string
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{c, s[i : i+1]})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, errors.New("unterminated string")
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("bad string %s", s[i:j+1])
			}
			toks = append(toks, token{'"', v})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{'w', s[i:j]})
			i = j
		}
	}
	return toks, nil
}

type parser[T any] struct {
	s    *schema[T]
	toks []token
	pos  int
}

func (p *parser[T]) next() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	p.pos++
	return p.toks[p.pos-1], true
}

// keyword consumes the next token if it is the word kw in any case.
func (p *parser[T]) keyword(kw string) bool {
	if p.pos < len(p.toks) && p.toks[p.pos].kind == 'w' && strings.EqualFold(p.toks[p.pos].text, kw) {
		p.pos++
		return true
	}
	return false
}

func (p *parser[T]) or() (func(T) bool, error) {
	left, err := p.and()
	for err == nil && p.keyword("or") {
		var right func(T) bool
		if right, err = p.and(); err == nil {
			l := left
			left = func(v T) bool { return l(v) || right(v) }
		}
	}
	return left, err
}

func (p *parser[T]) and() (func(T) bool, error) {
	left, err := p.primary()
	for err == nil && p.keyword("and") {
		var right func(T) bool
		if right, err = p.primary(); err == nil {
			l := left
			left = func(v T) bool { return l(v) && right(v) }
		}
	}
	return left, err
}

// primary is a parenthesized expression or a comparison.
func (p *parser[T]) primary() (func(T) bool, error) {
	t, ok := p.next()
	switch {
	case !ok:
		return nil, errors.New("expression ends early")
	case t.kind == '(':
		match, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, ok := p.next(); !ok || t.kind != ')' {
			return nil, errors.New("missing )")
		}
		return match, nil
	case t.kind != 'w':
		return nil, fmt.Errorf("unexpected %q", t.text)
	}
	name := t.text
	a, ok := p.s.lookup(name)
	switch {
	case !ok && p.s.unimplemented != nil && p.s.unimplemented(name):
		return nil, fmt.Errorf("%w: %s", errUnimplemented, name)
	case !ok:
		return nil, fmt.Errorf("unknown attribute %q", name)
	}
	t, ok = p.next()
	if !ok || t.kind != 'w' {
		return nil, fmt.Errorf("%s: operator expected", name)
	}
	op := strings.ToLower(t.text)
	if !slices.Contains(a.ops, op) {
		return nil, fmt.Errorf("operator %q is not supported for %s", op, name)
	}
	if op == "pr" {
		return func(v T) bool { return len(a.values(v)) > 0 }, nil
	}
	t, ok = p.next()
	if !ok || t.kind != '"' {
		return nil, fmt.Errorf("%s %s: a quoted value expected", name, op)
	}
	return p.s.compare(a, op, t.text)
}

func (sc *schema[T]) compare(a attr[T], op, want string) (func(T) bool, error) {
	if op == "ne" {
		eq, err := sc.compare(a, "eq", want)
		if err != nil {
			return nil, err
		}
		return func(v T) bool { return !eq(v) }, nil
	}
	var one func(got string) bool
	if a.date {
		w, err := time.Parse(time.RFC3339, want)
		if err != nil {
			return nil, fmt.Errorf("%q is not a timestamp", want)
		}
		one = func(got string) bool {
			g, err := time.Parse(time.RFC3339, got)
			return err == nil && holds(op, g.Compare(w))
		}
	} else {
		norm := func(s string) string { return s }
		if sc.fold {
			norm = strings.ToLower
		}
		want = norm(want)
		one = func(got string) bool {
			got = norm(got)
			switch op {
			case "sw":
				return strings.HasPrefix(got, want)
			case "ew":
				return strings.HasSuffix(got, want)
			case "co":
				return strings.Contains(got, want)
			}
			return holds(op, strings.Compare(got, want))
		}
	}
	return func(v T) bool { return slices.ContainsFunc(a.values(v), one) }, nil
}

// holds reports whether a comparison's result c satisfies op.
func holds(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}
