package sync

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

func TestBuildDesiredUsersAndTeams(t *testing.T) {
	want := mustDesired(t, Policy{Rules: rules(oncallRule(), contractorRule())}, corpDirectory(), contractors())

	wantUsers := map[string]WantedUser{
		"alice@example.com": {Email: "alice@example.com", Name: "Alice Example", Phone: "+14155550100", Sources: []Origin{{"corp", "u1"}}},
		"bob@example.com":   {Email: "bob@example.com", Name: "Bob Builder", Phone: "+14155550101", Sources: []Origin{{"corp", "u2"}}},
		"carol@example.com": {Email: "carol@example.com", Name: "Carol Chen", Phone: "+14155550133", Sources: []Origin{{"corp", "u3"}, {"contractors", "c1"}}},
		"jo@vendor.example": {Email: "jo@vendor.example", Name: "Jo Vendor", Phone: "+14155550177", Sources: []Origin{{"contractors", "c2"}}},
	}
	if !reflect.DeepEqual(want.Users, wantUsers) {
		t.Errorf("users:\n got %+v\nwant %+v", want.Users, wantUsers)
	}
	wantTeams := map[string]WantedTeam{
		"corp/g1": {Key: "corp/g1", Source: "corp", GroupID: "g1", GroupName: "oncall-payments", Name: "Payments", Rule: 0,
			Members: []string{"alice@example.com", "bob@example.com"}, OnMissing: "keep"},
		"corp/g2": {Key: "corp/g2", Source: "corp", GroupID: "g2", GroupName: "oncall-db", Name: "Db", Rule: 0,
			Members: []string{"bob@example.com", "carol@example.com"}, OnMissing: "keep"},
		"contractors/gv": {Key: "contractors/gv", Source: "contractors", GroupID: "gv", GroupName: "oncall-vendors", Name: "ONCALL-VENDORS", Rule: 1,
			Members: []string{"carol@example.com", "jo@vendor.example"}, OnMissing: "keep"},
	}
	if !reflect.DeepEqual(want.Teams, wantTeams) {
		t.Errorf("teams:\n got %+v\nwant %+v", want.Teams, wantTeams)
	}
	wantPresent := map[string]bool{"alice@example.com": true, "bob@example.com": true, "carol@example.com": true, "erin@example.com": true, "jo@vendor.example": true}
	if !reflect.DeepEqual(want.Present, wantPresent) {
		t.Errorf("present: got %v, want %v", want.Present, wantPresent)
	}
	if !reflect.DeepEqual(want.Sources, map[string]bool{"corp": true, "contractors": true}) {
		t.Errorf("sources: got %v", want.Sources)
	}
	if !reflect.DeepEqual(want.Skipped, map[string]int{SkipDisabled: 1}) {
		t.Errorf("skipped: got %v", want.Skipped)
	}
}

func TestBuildDesiredSkipsAndMembership(t *testing.T) {
	snap := snapshot("corp",
		[]sources.User{
			dirUser("u1", "", "No Mail", ""),
			dirUser("u2", "Same@Example.com", "Same", ""),
			dirUser("u3", "same@example.com ", "Same Again", ""),
			disabledUser("u4", "off@example.com"),
		},
		group("g1", "oncall-x", "u1", "u2", "u3", "u4", "unknown-id"),
	)
	other := snapshot("hr", []sources.User{dirUser("h1", "off@example.com", "Off In HR", "")})
	want := mustDesired(t, Policy{Rules: rules(oncallRule())}, snap, other)

	if got := want.Teams["corp/g1"].Members; !reflect.DeepEqual(got, []string{"same@example.com"}) {
		t.Errorf("members: got %v, want only same@example.com (no email, disabled here, unknown ids left out; duplicates once)", got)
	}
	if !reflect.DeepEqual(want.Skipped, map[string]int{SkipNoEmail: 1, SkipDisabled: 1}) {
		t.Errorf("skipped: got %v", want.Skipped)
	}
	if !want.Present["off@example.com"] {
		t.Errorf("off@example.com is enabled in source hr, so present")
	}
	if _, ok := want.Users["off@example.com"]; ok {
		t.Errorf("off@example.com is in no synced team, so not wanted with scope team_members")
	}
	if got := want.Users["same@example.com"].Name; got != "Same" {
		t.Errorf("name of merged same@example.com: got %q, want the first by user id, %q", got, "Same")
	}
}

func TestBuildDesiredErrors(t *testing.T) {
	twoGroups := snapshot("corp", nil, group("g1", "oncall-DB"), group("g2", "oncall-db"))
	tests := []struct {
		name  string
		rules []config.TeamRule
		snaps []*sources.Snapshot
		want  []string // substrings of the error
	}{
		{
			name:  "two groups of one source render one team name",
			rules: rules(config.TeamRule{Source: "corp", Match: "oncall-*", Name: `{{ .Name | trimPrefix "oncall-" | lower }}`}),
			snaps: []*sources.Snapshot{twoGroups},
			want:  []string{`team name "db" is rendered by two groups: "oncall-DB" of source "corp" and "oncall-db" of source "corp"`},
		},
		{
			name: "two groups of two sources render one team name",
			rules: rules(
				config.TeamRule{Source: "corp", Match: "oncall-db", Name: "DB"},
				config.TeamRule{Source: "hr", Match: "*", Name: "DB"}),
			snaps: []*sources.Snapshot{twoGroups, snapshot("hr", nil, group("h9", "database"))},
			want:  []string{`"oncall-db" of source "corp" and "database" of source "hr"`},
		},
		{
			name:  "bad glob",
			rules: rules(config.TeamRule{Source: "corp", Match: "oncall-[", Name: "x"}),
			want:  []string{`teams[0].match "oncall-["`, "syntax error in pattern"},
		},
		{
			name:  "bad regexp",
			rules: rules(config.TeamRule{Source: "corp", Match: "re:oncall-(", Name: "x"}),
			want:  []string{`teams[0].match "re:oncall-("`, "missing closing )"},
		},
		{
			name:  "bad template",
			rules: rules(config.TeamRule{Source: "corp", Match: "*", Name: "{{ .Name "}),
			want:  []string{"teams[0].name"},
		},
		{
			name:  "template naming a field a group does not have",
			rules: rules(config.TeamRule{Source: "corp", Match: "*", Name: "{{ .Title }}"}),
			snaps: []*sources.Snapshot{twoGroups},
			want:  []string{`teams[0].name for group "oncall-DB" of source "corp"`, "Title"},
		},
		{
			name:  "template rendering an empty name",
			rules: rules(config.TeamRule{Source: "corp", Match: "*", Name: `{{ trimPrefix "oncall-DB" .Name }}`}),
			snaps: []*sources.Snapshot{twoGroups},
			want:  []string{`teams[0].name for group "oncall-DB" of source "corp" renders an empty or invalid team name`},
		},
		{
			name:  "one group id twice",
			rules: rules(config.TeamRule{Source: "corp", Match: "*", Name: "{{ .Name }}"}),
			snaps: []*sources.Snapshot{snapshot("corp", nil, group("g1", "a"), group("g1", "b"))},
			want:  []string{`source "corp" returned group id "g1" twice`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildDesired(tc.snaps, Policy{Rules: tc.rules})
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRuleMatching(t *testing.T) {
	tests := []struct {
		match, group string
		want         bool
	}{
		{"oncall-*", "oncall-db", true},
		{"oncall-*", "team-oncall-db", false},
		{"oncall-*", "Oncall-db", false}, // case-sensitive
		{"oncall-?b", "oncall-db", true},
		{"oncall-[a-c]*", "oncall-db", false},
		{"re:^oncall-(db|web)$", "oncall-web", true},
		{"re:^oncall-(db|web)$", "oncall-dba", false},
		{"re:db", "oncall-db-2", true}, // unanchored
		{"re:(?i)^ONCALL-", "oncall-db", true},
	}
	for _, tc := range tests {
		t.Run(tc.match+" "+tc.group, func(t *testing.T) {
			rs, err := compileRules(rules(config.TeamRule{Source: "corp", Match: tc.match, Name: "x"}))
			if err != nil {
				t.Fatal(err)
			}
			if _, got := ruleFor(rs, "corp", tc.group); got != tc.want {
				t.Errorf("match %q on %q: got %t, want %t", tc.match, tc.group, got, tc.want)
			}
			if _, got := ruleFor(rs, "other", tc.group); got {
				t.Errorf("a corp rule matched a group of source other")
			}
		})
	}
}

func TestTeamNameTemplates(t *testing.T) {
	g := sources.Group{ID: "g-42", Name: "oncall-payments_eu", Description: "Payments (EU)"}
	tests := []struct{ template, want string }{
		{"{{ .Name }}", "oncall-payments_eu"},
		{"{{ .ID }}", "g-42"},
		{"{{ .Description }}", "Payments (EU)"},
		{"{{ upper .Name }}", "ONCALL-PAYMENTS_EU"},
		{`{{ .Name | trimPrefix "oncall-" | title }}`, "Payments_Eu"},
		{`{{ trimSuffix "_eu" .Name | trimPrefix "oncall-" | title }}`, "Payments"},
		{`{{ .Name | trimPrefix "oncall-" | replace "_" " " | title }}`, "Payments Eu"},
		{`{{ lower .Description }}`, "payments (eu)"},
		{`  {{ .ID }}  `, "g-42"},
	}
	for _, tc := range tests {
		t.Run(tc.template, func(t *testing.T) {
			rs, err := compileRules(rules(config.TeamRule{Source: "corp", Match: "*", Name: tc.template}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := rs[0].teamName("corp", g)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
