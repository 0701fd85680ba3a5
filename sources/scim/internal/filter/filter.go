// Package filter parses and evaluates SCIM filters (RFC 7644 §3.4.2.2)
// against resources decoded from JSON (map[string]any). The SCIM source
// uses it to apply group_filter itself when a service provider cannot
// filter, and the scimtest fake to filter like a service provider.
//
// Supported: attribute expressions with every operator (eq ne co sw ew gt
// lt ge le pr), and/or/not with RFC precedence (not, then and, then or),
// grouping parentheses, value paths (emails[type eq "work"]), sub-attributes
// (name.familyName) and attribute paths prefixed by a schema URN. Attribute
// names and operators are case-insensitive; string comparisons are too,
// except on the attributes RFC 7643 makes caseExact (id, externalId and
// the value and $ref of members).
package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expr is a parsed filter.
type Expr interface {
	// Match reports whether resource (a JSON object) satisfies the filter.
	Match(resource map[string]any) bool
	// attrs appends the attribute paths the expression reads.
	attrs(prefix string, out []string) []string
}

// Error is a filter that does not parse; a service provider answers it
// with 400 invalidFilter.
type Error struct {
	Filter string
	Pos    int // byte offset of the problem
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid filter at offset %d: %s", e.Pos, e.Msg)
}

// Parse parses a filter.
func Parse(s string) (Expr, error) {
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	e, err := p.or(false)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s", t)
	}
	return e, nil
}

// Attributes lists the attribute paths e reads, as written (a value path's
// inner attributes joined to its attribute: emails.type), each once.
func Attributes(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range e.attrs("", nil) {
		if k := strings.ToLower(a); !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// CoreSchemas are the schema URNs whose attributes sit at the top level of
// a resource: a path prefixed by one of them is the bare attribute.
var CoreSchemas = []string{
	"urn:ietf:params:scim:schemas:core:2.0:User",
	"urn:ietf:params:scim:schemas:core:2.0:Group",
}

// caseExact are the attributes compared case-sensitively (RFC 7643: id,
// externalId, and the value and $ref of a group's members), lower case.
var caseExact = map[string]bool{"id": true, "externalid": true, "members.value": true, "members.$ref": true}

// Path is an attribute path: an optional schema URN, an attribute name and
// an optional sub-attribute.
type Path struct {
	URN, Attr, Sub string
}

// ParsePath reads an attribute path as written in a filter or in the
// attributes and excludedAttributes parameters.
func ParsePath(s string) (Path, error) {
	var p Path
	if len(s) > 4 && strings.EqualFold(s[:4], "urn:") {
		i := strings.LastIndexByte(s, ':')
		p.URN, s = s[:i], s[i+1:]
		for _, core := range CoreSchemas {
			if strings.EqualFold(p.URN, core) {
				p.URN = ""
			}
		}
	}
	p.Attr, p.Sub, _ = strings.Cut(s, ".")
	if !validName(p.Attr) || (p.Sub != "" && !validName(p.Sub)) || strings.Contains(p.Sub, ".") {
		return Path{}, fmt.Errorf("%q is not an attribute path", s)
	}
	return p, nil
}

// validName is ATTRNAME (ALPHA *(ALPHA / DIGIT / "-" / "_")), or $ref.
func validName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func (p Path) String() string {
	s := p.Attr
	if p.Sub != "" {
		s += "." + p.Sub
	}
	if p.URN != "" {
		s = p.URN + ":" + s
	}
	return s
}

// Lookup returns the value of key in m, its name compared without regard
// to case (SCIM attribute names are case-insensitive).
func Lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// Values returns the values p names in resource: several when the
// attribute is multi-valued. A multi-valued complex attribute without a
// sub-attribute stands for the value sub-attribute of each of its items.
func (p Path) Values(resource map[string]any) []any {
	root := resource
	if p.URN != "" {
		ext, _ := Lookup(resource, p.URN)
		root, _ = ext.(map[string]any)
		if root == nil {
			return nil
		}
	}
	v, ok := Lookup(root, p.Attr)
	if !ok || v == nil {
		return nil
	}
	var items []any
	if list, ok := v.([]any); ok {
		items = list
	} else {
		items = []any{v}
	}
	var out []any
	for _, item := range items {
		obj, isObj := item.(map[string]any)
		switch {
		case p.Sub != "" && isObj:
			if sv, ok := Lookup(obj, p.Sub); ok && sv != nil {
				out = append(out, sv)
			}
		case p.Sub != "":
		case isObj:
			if sv, ok := Lookup(obj, "value"); ok && sv != nil {
				out = append(out, sv)
			} else if _, multi := v.([]any); !multi {
				out = append(out, obj) // a single complex value: only pr uses it
			}
		default:
			out = append(out, item)
		}
	}
	return out
}

func (p Path) exact(prefix string) bool {
	key := strings.ToLower(p.Attr)
	switch {
	case prefix != "":
		key = strings.ToLower(prefix) + "." + key
	case p.Sub != "":
		key += "." + strings.ToLower(p.Sub)
	case caseExact[key+".value"]:
		return true // members eq "x" compares members.value
	}
	return caseExact[key]
}

// ---- expressions

type compare struct {
	path   Path
	op     string // eq ne co sw ew gt lt ge le pr
	value  any    // string, float64, bool or nil (null)
	parent string // the attribute of the enclosing value path, if any
}

func (c *compare) attrs(prefix string, out []string) []string {
	s := c.path.String()
	if prefix != "" {
		s = prefix + "." + s
	}
	return append(out, s)
}

func (c *compare) Match(r map[string]any) bool {
	values := c.path.Values(r)
	switch c.op {
	case "pr":
		for _, v := range values {
			if present(v) {
				return true
			}
		}
		return false
	case "ne":
		return !c.any(values, "eq")
	}
	return c.any(values, c.op)
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// any reports whether one of values satisfies op against c.value. A null
// value equals an absent attribute.
func (c *compare) any(values []any, op string) bool {
	if c.value == nil {
		return op == "eq" && len(values) == 0
	}
	exact := c.path.exact(c.parent)
	for _, v := range values {
		if cmpOne(v, op, c.value, exact) {
			return true
		}
	}
	return false
}

func cmpOne(v any, op string, want any, exact bool) bool {
	switch w := want.(type) {
	case string:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if !exact {
			s, w = strings.ToLower(s), strings.ToLower(w)
		}
		switch op {
		case "eq":
			return s == w
		case "co":
			return strings.Contains(s, w)
		case "sw":
			return strings.HasPrefix(s, w)
		case "ew":
			return strings.HasSuffix(s, w)
		case "gt":
			return s > w
		case "ge":
			return s >= w
		case "lt":
			return s < w
		case "le":
			return s <= w
		}
	case float64:
		n, ok := v.(float64)
		if !ok {
			if jn, isNum := v.(json.Number); isNum {
				f, err := jn.Float64()
				n, ok = f, err == nil
			}
		}
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return n == w
		case "gt":
			return n > w
		case "ge":
			return n >= w
		case "lt":
			return n < w
		case "le":
			return n <= w
		}
	case bool:
		b, ok := v.(bool)
		return ok && op == "eq" && b == w
	}
	return false
}

type logical struct {
	and         bool
	left, right Expr
}

func (l *logical) Match(r map[string]any) bool {
	if l.and {
		return l.left.Match(r) && l.right.Match(r)
	}
	return l.left.Match(r) || l.right.Match(r)
}

func (l *logical) attrs(prefix string, out []string) []string {
	return l.right.attrs(prefix, l.left.attrs(prefix, out))
}

type not struct{ e Expr }

func (n *not) Match(r map[string]any) bool { return !n.e.Match(r) }

func (n *not) attrs(prefix string, out []string) []string { return n.e.attrs(prefix, out) }

// valuePath is attr[filter]: some item of the multi-valued attr matches.
type valuePath struct {
	path  Path
	inner Expr
}

func (v *valuePath) Match(r map[string]any) bool {
	root := r
	if v.path.URN != "" {
		ext, _ := Lookup(r, v.path.URN)
		root, _ = ext.(map[string]any)
	}
	val, _ := Lookup(root, v.path.Attr)
	var items []any
	switch val := val.(type) {
	case []any:
		items = val
	case map[string]any:
		items = []any{val}
	}
	for _, item := range items {
		if obj, ok := item.(map[string]any); ok && v.inner.Match(obj) {
			return true
		}
	}
	return false
}

func (v *valuePath) attrs(prefix string, out []string) []string {
	return v.inner.attrs(v.path.String(), out)
}

// ---- lexer and parser

type tokenKind int

const (
	tEOF tokenKind = iota
	tWord
	tString
	tNumber
	tLParen
	tRParen
	tLBracket
	tRBracket
)

type token struct {
	kind tokenKind
	text string // a word as written, a string's value, a number's text
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of filter"
	case tString:
		return strconv.Quote(t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

type parser struct {
	src  string
	toks []token
	i    int
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return &Error{Filter: p.src, Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			kind := map[byte]tokenKind{'(': tLParen, ')': tRParen, '[': tLBracket, ']': tRBracket}[c]
			p.toks = append(p.toks, token{kind, string(c), i})
			i++
		case c == '"':
			end, val, err := scanString(s, i)
			if err != nil {
				return &Error{Filter: s, Pos: i, Msg: err.Error()}
			}
			p.toks = append(p.toks, token{tString, val, i})
			i = end
		case c == '-' || isDigit(c):
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || strings.IndexByte(".eE+-", s[j]) >= 0) {
				j++
			}
			if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
				return &Error{Filter: s, Pos: i, Msg: fmt.Sprintf("%q is not a number", s[i:j])}
			}
			p.toks = append(p.toks, token{tNumber, s[i:j], i})
			i = j
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()[]\"", s[j]) < 0 {
				j++
			}
			if j == i {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return &Error{Filter: s, Pos: i, Msg: fmt.Sprintf("unexpected %q", r)}
			}
			p.toks = append(p.toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	p.toks = append(p.toks, token{tEOF, "", len(s)})
	return nil
}

// scanString reads the JSON string starting at s[i] and returns the offset
// after it and its value.
func scanString(s string, i int) (int, string, error) {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '"':
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return 0, "", fmt.Errorf("bad string: %v", err)
			}
			return j + 1, v, nil
		}
	}
	return 0, "", fmt.Errorf("unterminated string")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) keyword(t token, kw string) bool {
	return t.kind == tWord && strings.EqualFold(t.text, kw)
}

// or := and ("or" and)*
func (p *parser) or(inner bool) (Expr, error) {
	left, err := p.and(inner)
	if err != nil {
		return nil, err
	}
	for p.keyword(p.peek(), "or") {
		p.next()
		right, err := p.and(inner)
		if err != nil {
			return nil, err
		}
		left = &logical{and: false, left: left, right: right}
	}
	return left, nil
}

// and := unary ("and" unary)*
func (p *parser) and(inner bool) (Expr, error) {
	left, err := p.unary(inner)
	if err != nil {
		return nil, err
	}
	for p.keyword(p.peek(), "and") {
		p.next()
		right, err := p.unary(inner)
		if err != nil {
			return nil, err
		}
		left = &logical{and: true, left: left, right: right}
	}
	return left, nil
}

// unary := "not" "(" or ")" | "(" or ")" | attrExp | valuePath
func (p *parser) unary(inner bool) (Expr, error) {
	t := p.peek()
	if p.keyword(t, "not") && p.toks[p.i+1].kind == tLParen {
		p.next()
		e, err := p.group(inner)
		if err != nil {
			return nil, err
		}
		return &not{e}, nil
	}
	if t.kind == tLParen {
		return p.group(inner)
	}
	return p.attrExp(inner)
}

func (p *parser) group(inner bool) (Expr, error) {
	p.next() // (
	e, err := p.or(inner)
	if err != nil {
		return nil, err
	}
	if t := p.next(); t.kind != tRParen {
		return nil, p.errAt(t, "want ), got %s", t)
	}
	return e, nil
}

var operators = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "lt": true, "ge": true, "le": true, "pr": true}

func (p *parser) attrExp(inner bool) (Expr, error) {
	t := p.next()
	if t.kind != tWord {
		return nil, p.errAt(t, "want an attribute path, got %s", t)
	}
	path, err := ParsePath(t.text)
	if err != nil {
		return nil, p.errAt(t, "%v", err)
	}
	if p.peek().kind == tLBracket {
		if inner {
			return nil, p.errAt(p.peek(), "a value path cannot nest another")
		}
		if path.Sub != "" {
			return nil, p.errAt(t, "a value path's attribute has no sub-attribute")
		}
		p.next()
		e, err := p.or(true)
		if err != nil {
			return nil, err
		}
		if t := p.next(); t.kind != tRBracket {
			return nil, p.errAt(t, "want ], got %s", t)
		}
		setParent(e, path.Attr)
		return &valuePath{path: path, inner: e}, nil
	}
	opTok := p.next()
	op := strings.ToLower(opTok.text)
	if opTok.kind != tWord || !operators[op] {
		return nil, p.errAt(opTok, "want an operator (eq ne co sw ew gt lt ge le pr), got %s", opTok)
	}
	c := &compare{path: path, op: op}
	if op == "pr" {
		return c, nil
	}
	vt := p.next()
	switch {
	case vt.kind == tString:
		c.value = vt.text
	case vt.kind == tNumber:
		c.value, _ = strconv.ParseFloat(vt.text, 64)
	case p.keyword(vt, "true"):
		c.value = true
	case p.keyword(vt, "false"):
		c.value = false
	case p.keyword(vt, "null"):
		c.value = nil
	default:
		return nil, p.errAt(vt, "want a value (a string, number, true, false or null), got %s", vt)
	}
	switch c.value.(type) {
	case bool, nil:
		if op != "eq" && op != "ne" {
			return nil, p.errAt(vt, "%s cannot compare %s", op, vt.text)
		}
	case float64:
		if op == "co" || op == "sw" || op == "ew" {
			return nil, p.errAt(vt, "%s compares strings, not %s", op, vt.text)
		}
	}
	return c, nil
}

// setParent tells the comparisons inside a value path the attribute they
// are relative to, for caseExact.
func setParent(e Expr, parent string) {
	switch e := e.(type) {
	case *compare:
		e.parent = parent
	case *logical:
		setParent(e.left, parent)
		setParent(e.right, parent)
	case *not:
		setParent(e.e, parent)
	}
}
