package sync

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Names that try to print plan lines of their own, or to hide what a line
// says: a newline with a fake summary, a newline with a fake create and an
// ANSI escape, and a right-to-left override.
const (
	forgedTeam = "oncall-ops\n\nNo changes. PagerTree is in sync."
	forgedName = "Eve\n+ user ceo@x.test\x1b[31m"
	bidiName   = "Bo \u202egnp.exe"
)

// hostileScenario: two directory users with those display names join
// payments, and PagerTree holds a managed team named forgedTeam whose
// group is gone (on_missing: delete).
func hostileScenario(t *testing.T) ([]*sources.Snapshot, Desired, Current, Plan, Policy) {
	t.Helper()
	corp := editDirectory(func(s *sources.Snapshot) {
		s.Users["u8"] = dirUser("u8", "eve@example.com", forgedName, "")
		s.Users["u9"] = dirUser("u9", "bo@example.com", bidiName, "")
		s.Groups[0].Members = append(s.Groups[0].Members, "u8", "u9")
	})
	pol := Policy{Rules: rules(onMissingRule(config.OnMissingDelete))}
	cur := convergedAccount()
	cur.Teams = append(cur.Teams, ptTeam("t7", forgedTeam, mark("corp", "g-ops"), "p1"))
	want := mustDesired(t, pol, corp)
	return []*sources.Snapshot{corp}, want, cur, MakePlan(cur, want, pol), pol
}

// noForgery fails when out holds a line the hostile names made up, or a
// raw control character.
func noForgery(t *testing.T, what, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if line == "No changes. PagerTree is in sync." || strings.HasPrefix(line, "+ user ceo@x.test") {
			t.Errorf("%s: forged line %q in:\n%s", what, line, out)
		}
	}
	if i := strings.IndexFunc(out, func(r rune) bool { return r == '\x1b' || r == '\r' || r == '\u202e' }); i >= 0 {
		t.Errorf("%s: raw control character %q at %d in:\n%s", what, out[i], i, out)
	}
}

// hasLine fails unless out holds line, whole.
func hasLine(t *testing.T, what, out, line string) {
	t.Helper()
	if !strings.Contains("\n"+out, "\n"+line+"\n") {
		t.Errorf("%s lacks the line\n%s\nin:\n%s", what, line, out)
	}
}

func TestRenderersEscapeHostileNames(t *testing.T) {
	_, _, _, p, _ := hostileScenario(t)
	var text, md bytes.Buffer
	if err := RenderText(&text, p); err != nil {
		t.Fatal(err)
	}
	if err := RenderMarkdown(&md, p); err != nil {
		t.Fatal(err)
	}
	noForgery(t, "text", text.String())
	noForgery(t, "markdown", md.String())

	hasLine(t, "text", text.String(), `+ user eve@example.com ("Eve\n+ user ceo@x.test\x1b[31m")  # wanted from corp`)
	hasLine(t, "text", text.String(), `+ user bo@example.com ("Bo \u202egnp.exe")  # wanted from corp`)
	hasLine(t, "text", text.String(), `- team "oncall-ops\n\nNo changes. PagerTree is in sync."  # group (id "g-ops") is gone from source "corp"; on_missing: delete`)
	hasLine(t, "text", text.String(), "Plan: 2 to create, 1 to update, 1 to delete.")
	hasLine(t, "markdown", md.String(), "| `+` | user | eve@example.com | \"Eve\\\\n+ user ceo@x.test\\\\x1b[31m\" | wanted from corp |")
	hasLine(t, "markdown", md.String(), "| `-` | team | \"oncall-ops\\\\n\\\\nNo changes. PagerTree is in sync.\" |  | group (id \"g-ops\") is gone from source \"corp\"; on_missing: delete |")
}

func TestExplainEscapesHostileNames(t *testing.T) {
	snaps, want, cur, p, pol := hostileScenario(t)
	var user, team bytes.Buffer
	if err := Explain("eve@example.com", snaps, want, cur, p, pol).Render(&user); err != nil {
		t.Fatal(err)
	}
	if err := Explain(forgedTeam, snaps, want, cur, p, pol).Render(&team); err != nil {
		t.Fatal(err)
	}
	noForgery(t, "explain user", user.String())
	noForgery(t, "explain team", team.String())

	hasLine(t, "explain user", user.String(), `  source corp: user u8 "Eve\n+ user ceo@x.test\x1b[31m", phone "", enabled`)
	hasLine(t, "explain user", user.String(), `  + user eve@example.com ("Eve\n+ user ceo@x.test\x1b[31m")  # wanted from corp`)
	hasLine(t, "explain team", team.String(), `team "oncall-ops\n\nNo changes. PagerTree is in sync."`)
	hasLine(t, "explain team", team.String(), `  - team "oncall-ops\n\nNo changes. PagerTree is in sync."  # group (id "g-ops") is gone from source "corp"; on_missing: delete`)
}

// An id from PagerTree is printed unquoted in explain's findings: a
// finding it would break is quoted whole.
func TestExplainQuotesAFindingWithAHostileID(t *testing.T) {
	snaps, want, cur, p, pol := hostileScenario(t)
	cur.Users[0].ID = "p1\nwanted: yes"
	var out bytes.Buffer
	if err := Explain("alice@example.com", snaps, want, cur, p, pol).Render(&out); err != nil {
		t.Fatal(err)
	}
	hasLine(t, "explain", out.String(), `  "PagerTree: user p1\nwanted: yes \"Alice Example\", phone \"+14155550100\""`)
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "wanted: yes") {
			t.Errorf("forged line %q in:\n%s", line, out.String())
		}
	}
}

func TestBuildDesiredRefusesControlCharactersInTeamNames(t *testing.T) {
	for _, name := range []string{forgedTeam, "oncall-\x1b[2Jops", "oncall-ops\u202e", "oncall-o\u0085ps"} {
		corp := editDirectory(func(s *sources.Snapshot) { s.Groups = append(s.Groups, group("g-ops", name, "u1")) })
		_, err := BuildDesired([]*sources.Snapshot{corp}, Policy{Rules: rules(oncallRule())})
		want := fmt.Sprintf(`teams[0].name for group %q (id "g-ops") of source "corp" renders team name `, name)
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "which holds control characters") {
			t.Errorf("group %q: error %v, want one starting %s", name, err, want)
		}
	}
	// Printable names in any script, and emoji, are names.
	corp := editDirectory(func(s *sources.Snapshot) {
		s.Groups = append(s.Groups, group("g-ops", "oncall-Ops Zürich 東京 👩‍🚒", "u1"))
	})
	if _, err := BuildDesired([]*sources.Snapshot{corp}, Policy{Rules: rules(oncallRule())}); err != nil {
		t.Errorf("a printable name refused: %v", err)
	}
}

func TestSafeTextAndEscapeControls(t *testing.T) {
	tests := []struct{ in, safe, escaped string }{
		{"Payments", "Payments", "Payments"},
		{"Zürich 東京 👩‍🚒", "Zürich 東京 👩‍🚒", "Zürich 東京 👩‍🚒"},
		{"a\nb", `"a\nb"`, `a\nb`},
		{"a\rb", `"a\rb"`, `a\rb`},
		{"\x1b[31mred", `"\x1b[31mred"`, `\x1b[31mred`},
		{"csi\u009b2J", `"csi\u009b2J"`, `csi\u009b2J`},
		{"del\x7f", `"del\x7f"`, `del\x7f`},
		{"rtl\u202eexe.txt", `"rtl\u202eexe.txt"`, `rtl\u202eexe.txt`},
		{"iso\u2066x\u2069", `"iso\u2066x\u2069"`, `iso\u2066x\u2069`},
		{"line\u2028sep", `"line\u2028sep"`, `line\u2028sep`},
		{"bad\xffutf8", `"bad\xffutf8"`, `bad\xffutf8`},
		{`say "hi"`, `say "hi"`, `say "hi"`},
	}
	for _, tt := range tests {
		if got := SafeText(tt.in); got != tt.safe {
			t.Errorf("SafeText(%q) = %s, want %s", tt.in, got, tt.safe)
		}
		if got := EscapeControls(tt.in); got != tt.escaped {
			t.Errorf("EscapeControls(%q) = %s, want %s", tt.in, got, tt.escaped)
		}
	}
}
