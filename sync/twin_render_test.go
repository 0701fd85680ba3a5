package sync

import (
	"bytes"
	"strings"
	"testing"
)

// TestTwinUsersAreReported: PagerTree users who share an email are a
// conflict of their own in every renderer, even when no team involves them.
func TestTwinUsersAreReported(t *testing.T) {
	pol := Policy{Rules: rules(oncallRule()), DeleteUsers: true}
	cur := withUsers(convergedAccount(), account("p8", "zed@example.com", "Zed", ""), account("p9", "ZED@example.com", "Zed Two", ""))
	p := MakePlan(cur, mustDesired(t, pol, corpDirectory()), pol)
	equalLines(t, "changes", briefs(p.Changes), nil)
	equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{twinUsers("zed@example.com", "p8, p9")})
	for name, render := range map[string]func(*bytes.Buffer) error{
		"text":     func(b *bytes.Buffer) error { return RenderText(b, p) },
		"markdown": func(b *bytes.Buffer) error { return RenderMarkdown(b, p) },
		"json":     func(b *bytes.Buffer) error { return RenderJSON(b, p) },
	} {
		var b bytes.Buffer
		if err := render(&b); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"text": "! user zed@example.com: ", "markdown": "- **user zed@example.com**: ", "json": `"user": "zed@example.com"`}[name]
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s output does not hold %q:\n%s", name, want, b.String())
		}
	}
}
