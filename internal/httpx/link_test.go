package httpx_test

import (
	"net/http"
	"testing"

	"github.com/ptsync/ptsync/internal/httpx"
)

func TestLinkNext(t *testing.T) {
	const next = "https://example.okta.com/api/v1/users?after=00u1&limit=200"
	tests := []struct {
		name  string
		links []string // one Link header each
		want  string
	}{
		{name: "no Link header", want: ""},
		{name: "Okta: self and next in two headers", links: []string{
			`<https://example.okta.com/api/v1/users?limit=200>; rel="self"`,
			`<` + next + `>; rel="next"`,
		}, want: next},
		{name: "self only: the last page", links: []string{`<https://example.okta.com/api/v1/users?limit=200>; rel="self"`}, want: ""},
		{name: "two entries in one header", links: []string{
			`<https://example.okta.com/api/v1/users?limit=200>; rel="self", <` + next + `>; rel="next"`,
		}, want: next},
		{name: "next first", links: []string{`<` + next + `>; rel="next", <https://x/self>; rel="self"`}, want: next},
		{name: "unquoted rel", links: []string{`<` + next + `>;rel=next`}, want: next},
		{name: "a rel list", links: []string{`<https://x/1>; rel="prev first", <` + next + `>; rel="next last"`}, want: next},
		{name: "case is ignored", links: []string{`<` + next + `>; REL="Next"`}, want: next},
		{name: "other parameters, quoted commas and semicolons", links: []string{
			`<https://x/a>; title="a, b; rel=next"; rel="prev", <` + next + `>; type="application/json"; rel="next"`,
		}, want: next},
		{name: "escaped quote in a parameter", links: []string{`<https://x/a>; title="say \"rel=next\", ok"; rel=prev, <` + next + `>; rel=next`}, want: next},
		{name: "a comma and a semicolon inside the target", links: []string{`<https://x/a?ids=1,2;3>; rel="next"`}, want: "https://x/a?ids=1,2;3"},
		{name: "spaces around", links: []string{`  < ` + next + ` >  ;  rel = "next"  `}, want: next},
		{name: "the first rel counts", links: []string{`<https://x/a>; rel="self"; rel="next"`}, want: ""},
		{name: "rel next-page is not next", links: []string{`<https://x/a>; rel="next-page"`}, want: ""},
		{name: "a malformed entry is skipped", links: []string{`https://x/bad; rel="next", <` + next + `>; rel="next"`}, want: next},
		{name: "garbage after the target", links: []string{`<https://x/bad> junk; rel="next", <` + next + `>; rel="next"`}, want: next},
		{name: "an unterminated target", links: []string{`<https://x/bad; rel="next"`}, want: ""},
		{name: "an unterminated quote", links: []string{`<https://x/a>; title="open, <https://x/b>; rel="next"`}, want: ""},
		{name: "an empty target", links: []string{`<>; rel="next", <` + next + `>; rel="next"`}, want: next},
		{name: "empty values", links: []string{"", ",", " ; "}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.links {
				h.Add("Link", l)
			}
			if got := httpx.LinkNext(h); got != tt.want {
				t.Fatalf("LinkNext(%q) = %q, want %q", tt.links, got, tt.want)
			}
		})
	}
}

func FuzzLinkNext(f *testing.F) {
	for _, seed := range []string{
		`<https://x/a>; rel="next"`,
		`<https://x/a>; title="a, b"; rel="prev", <https://x/b>; rel=next`,
		`<https://x/a`,
		`"<`,
		`;;;,,,<>`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, link string) {
		_ = httpx.LinkNext(http.Header{"Link": {link}}) // must end, without panicking
	})
}
