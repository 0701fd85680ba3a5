package httpx

import (
	"net/http"
	"strings"
)

// LinkNext returns the target of the first RFC 8288 Link header entry whose
// rel includes "next" (Okta's paging), or "" when there is none. It reads
// every Link header and every entry of each, so commas and semicolons
// inside <...> and quoted parameters are taken as text, rel may be quoted
// or a token and may list several relation types ("next last"), and names
// are matched without regard to case. The target is returned as written.
func LinkNext(h http.Header) string {
	for _, value := range h.Values("Link") {
		p := linkParser{s: value}
		for {
			target, params, ok := p.entry()
			if !ok {
				break
			}
			if target == "" {
				continue
			}
			for _, rel := range strings.Fields(params["rel"]) {
				if strings.EqualFold(rel, "next") {
					return target
				}
			}
		}
	}
	return ""
}

// linkParser reads the entries of one Link header value.
type linkParser struct {
	s string
	i int
}

// entry reads the next entry: its target and its parameters (names lower
// case, the first of each name kept). A malformed entry has target "" and
// the parser resumes after it; ok is false at the end of the value.
func (p *linkParser) entry() (target string, params map[string]string, ok bool) {
	p.skip(" \t,")
	if p.i >= len(p.s) {
		return "", nil, false
	}
	if p.s[p.i] != '<' {
		p.skipEntry()
		return "", nil, true
	}
	end := strings.IndexByte(p.s[p.i:], '>')
	if end < 0 {
		p.i = len(p.s)
		return "", nil, true
	}
	target = strings.TrimSpace(p.s[p.i+1 : p.i+end])
	p.i += end + 1
	params = map[string]string{}
	for {
		p.skip(" \t")
		if p.i >= len(p.s) || p.s[p.i] == ',' {
			return target, params, true
		}
		if p.s[p.i] != ';' {
			p.skipEntry()
			return "", nil, true
		}
		p.i++
		p.skip(" \t")
		name := strings.ToLower(p.token())
		p.skip(" \t")
		value := ""
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			p.skip(" \t")
			if p.i < len(p.s) && p.s[p.i] == '"' {
				value = p.quoted()
			} else {
				value = p.token()
			}
		}
		if _, seen := params[name]; name != "" && !seen {
			params[name] = value
		}
	}
}

// skip moves past any of the bytes in set.
func (p *linkParser) skip(set string) {
	for p.i < len(p.s) && strings.IndexByte(set, p.s[p.i]) >= 0 {
		p.i++
	}
}

// token reads up to the next separator of a parameter.
func (p *linkParser) token() string {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte(" \t;,=\"", p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted string, the opening quote at p.i, undoing
// backslash escapes. An unterminated one runs to the end of the value.
func (p *linkParser) quoted() string {
	var b strings.Builder
	for p.i++; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			p.i++
			return b.String()
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			b.WriteByte(p.s[p.i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skipEntry moves past the rest of a malformed entry: to the next comma
// outside <...> and quoted strings.
func (p *linkParser) skipEntry() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ',':
			return
		case '"':
			p.quoted()
			continue
		case '<':
			if end := strings.IndexByte(p.s[p.i:], '>'); end >= 0 {
				p.i += end + 1
				continue
			}
			p.i = len(p.s)
			return
		}
		p.i++
	}
}
