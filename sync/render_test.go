package sync

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// richScenario exercises every kind of line a plan can print: creates,
// updates, a rename, an adoption, a team delete, user deletes, withheld
// removals, a member id that names no listed user (kept), a conflict and
// entries the sources skipped.
func richScenario() ([]*sources.Snapshot, Current, Policy) {
	corp := editDirectory(func(s *sources.Snapshot) {
		leaverBob(s)
		hireFrank(s)
		s.Groups[1].Name = "oncall-database"
		s.Groups = append(s.Groups, group("g4", "oncall-web", "u1"))
	})
	corp.Skip(sources.SkipNoEmail)
	corp.Skip(sources.SkipNoEmail)
	corp.Skip(sources.SkipOutsideScope)
	partners := contractors()
	partners.Groups = append(partners.Groups, group("gp", "oncall-partners", "c2"))
	partners.Skip(sources.SkipDuplicateEmail)
	adoptContractors := contractorRule()
	adoptContractors.Adopt = true
	pol := Policy{
		Rules:          rules(onMissingRule(config.OnMissingDelete), adoptContractors),
		DeleteUsers:    true,
		Protect:        []string{"owner@example.com"},
		MaxDestructive: 2,
	}
	cur := convergedAccount()
	cur.Users[0].Name = "Alice"
	cur.Users = append(cur.Users,
		admin("p0", "owner@example.com", "Owner"),
		account("p8", "zed@example.com", "Zed", "+14155550999"))
	cur.Teams[1].MemberIDs = append(cur.Teams[1].MemberIDs, "p-unlisted")
	cur.Teams = append(cur.Teams,
		ptTeam("t3", "ONCALL-VENDORS", "Vendors | escalation", "p3"),
		ptTeam("t4", "Web", "Hand-made", "p1"),
		ptTeam("t9", "Legacy", mark("corp", "g9"), "p1", "p8"))
	return []*sources.Snapshot{corp, partners}, cur, pol
}

func richPlan(t *testing.T) Plan {
	t.Helper()
	snaps, cur, pol := richScenario()
	p := MakePlan(cur, mustDesired(t, pol, snaps...), pol)
	p.Skipped = SkippedBySource(snaps)
	p.Origin = PlanOrigin{PagerTreeURL: "https://pagertree.example.com", ConfigHash: "sha256:" + strings.Repeat("c0", 32)}
	return p
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./sync/ -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rerun with -update if the change is intended)\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

func TestRenderGolden(t *testing.T) {
	p := richPlan(t)
	renderers := []struct {
		file   string
		render func(*bytes.Buffer, Plan) error
	}{
		{"plan.txt.golden", func(b *bytes.Buffer, p Plan) error { return RenderText(b, p) }},
		{"plan.json.golden", func(b *bytes.Buffer, p Plan) error { return RenderJSON(b, p) }},
		{"plan.md.golden", func(b *bytes.Buffer, p Plan) error { return RenderMarkdown(b, p) }},
	}
	for _, r := range renderers {
		t.Run(r.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.render(&b, p); err != nil {
				t.Fatal(err)
			}
			golden(t, r.file, b.Bytes())
		})
	}
}

func TestRenderInSync(t *testing.T) {
	p := MakePlan(convergedAccount(), mustDesired(t, Policy{Rules: rules(oncallRule())}, corpDirectory()), Policy{})
	var text, js bytes.Buffer
	if err := RenderText(&text, p); err != nil {
		t.Fatal(err)
	}
	if got := text.String(); got != "No changes. PagerTree is in sync.\n" {
		t.Errorf("text: got %q", got)
	}
	// What the sources skipped shows even when nothing changes.
	p.Skipped = map[string]map[string]int{"corp": {"no_email": 1}}
	text.Reset()
	if err := RenderText(&text, p); err != nil {
		t.Fatal(err)
	}
	if got, want := text.String(), "Source corp skipped 1 entry: no_email 1.\n\nNo changes. PagerTree is in sync.\n"; got != want {
		t.Errorf("text with skips: got %q, want %q", got, want)
	}
	p.Skipped = nil
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"changes": []`, `"withheld": []`, `"summary": {`, `"create": 0`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js.String())
		}
	}
}

func TestReadPlanRoundTrip(t *testing.T) {
	plans := map[string]Plan{
		"rich":    richPlan(t),
		"in sync": MakePlan(convergedAccount(), mustDesired(t, Policy{Rules: rules(oncallRule())}, corpDirectory()), Policy{}),
		"emptying allowed": MakePlan(withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t9", "Legacy", mark("corp", "g9"), "p1", "p-unlisted"))...),
			mustDesired(t, Policy{Rules: rules(onMissingRule(config.OnMissingEmpty))}, corpDirectory()),
			Policy{Rules: rules(onMissingRule(config.OnMissingEmpty)), AllowDestructive: true}),
	}
	for name, p := range plans {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := RenderJSON(&b, p); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPlan(&b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v", got, p)
			}
		})
	}
}

func TestReadPlanRejects(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not JSON", "plan", "read plan: invalid character"},
		{"unknown key", `{"changes":[],"fingerprint":"sha256:x","extra":1}`, `unknown field "extra"`},
		{"no fingerprint", `{"changes":[]}`, "no fingerprint"},
		{"bad op", `{"changes":[{"op":"merge","kind":"user","name":"a@x"}],"fingerprint":"f"}`, `unknown op "merge"`},
		{"update without id", `{"changes":[{"op":"update","kind":"team","name":"T"}],"summary":{"update":1},"fingerprint":"f"}`, `update team "T" has no id`},
		{"summary edited", `{"changes":[{"op":"create","kind":"user","name":"a@x"}],"summary":{"create":2},"fingerprint":"f"}`, "does not match its changes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPlan(strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	base := convergedAccount()
	fp := Fingerprint(base)
	reordered := Current{
		Users: []AccountUser{base.Users[2], base.Users[0], base.Users[1]},
		Teams: []AccountTeam{base.Teams[1], ptTeam("t1", "Payments", mark("corp", "g1"), "p2", "p1")},
	}
	if got := Fingerprint(reordered); got != fp {
		t.Errorf("list order changed the fingerprint")
	}
	edits := map[string]func(c *Current){
		"user email":       func(c *Current) { c.Users[0].Email = "alice2@example.com" },
		"user name":        func(c *Current) { c.Users[0].Name = "Al" },
		"user phone":       func(c *Current) { c.Users[0].Phone = "+1" },
		"user admin":       func(c *Current) { c.Users[0].Admin = true },
		"user added":       func(c *Current) { c.Users = append(c.Users, account("p9", "z@x", "Z", "")) },
		"team name":        func(c *Current) { c.Teams[0].Name = "Pay" },
		"team description": func(c *Current) { c.Teams[0].Description += " " },
		"team member":      func(c *Current) { c.Teams[0].MemberIDs = []string{"p1"} },
		"team removed":     func(c *Current) { c.Teams = c.Teams[:1] },
		"fields shifted":   func(c *Current) { c.Users[0].Name, c.Users[0].Phone = "Alice Example+", "14155550100" },
	}
	for name, edit := range edits {
		c := convergedAccount()
		edit(&c)
		if Fingerprint(c) == fp {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
}

func TestChangePhaseAndPatches(t *testing.T) {
	p := richPlan(t)
	last := Phase(0)
	for _, c := range p.Changes {
		if c.Phase() < last {
			t.Errorf("%s (phase %d) after phase %d", brief(c), c.Phase(), last)
		}
		last = c.Phase()
	}
	rename := Change{Op: OpUpdate, Kind: KindTeam, Name: "New", ID: "t1", Fields: []FieldChange{{Field: "name", Old: "Old", New: "New"}}}
	if rename.Phase() != PhaseTeams {
		t.Errorf("rename phase %d, want PhaseTeams", rename.Phase())
	}
	if patch := rename.TeamPatch(nil, nil); patch.Name == nil || *patch.Name != "New" || patch.Description != nil || patch.MemberIDs != nil {
		t.Errorf("a rename must send only the name: %+v", patch)
	}
	members := Change{Op: OpUpdate, Kind: KindTeam, Name: "T", ID: "t1", Members: []string{}, MembersSet: true, MembersRemoved: []string{"a@x"}}
	if members.Phase() != PhaseMemberships {
		t.Errorf("membership phase %d, want PhaseMemberships", members.Phase())
	}
	if patch := members.TeamPatch(nil, nil); patch.Name != nil || patch.MemberIDs == nil || len(*patch.MemberIDs) != 0 {
		t.Errorf("an emptying must send an empty member list and no name: %+v", patch)
	}
	phone := Change{Op: OpUpdate, Kind: KindUser, Name: "a@x", ID: "p1", Fields: []FieldChange{{Field: "phone", Old: "", New: "+1415"}}}
	if patch := phone.UserPatch(); patch.Name != nil || patch.Phone == nil || *patch.Phone != "+1415" {
		t.Errorf("a phone update must send only the phone: %+v", patch)
	}
}
