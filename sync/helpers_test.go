package sync

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Fixtures shared by the plan, render and explain tests.

func dirUser(id, email, name, phone string) sources.User {
	return sources.User{ID: id, Email: email, Name: name, Phone: phone}
}

func disabledUser(id, email string) sources.User {
	return sources.User{ID: id, Email: email, Name: "Gone " + id, Disabled: true}
}

func group(id, name string, members ...string) sources.Group {
	return sources.Group{ID: id, Name: name, Members: members}
}

func snapshot(source string, users []sources.User, groups ...sources.Group) *sources.Snapshot {
	s := sources.NewSnapshot(source)
	for _, u := range users {
		s.Users[u.ID] = u
	}
	s.Groups = groups
	return s
}

func account(id, email, name, phone string) AccountUser {
	return AccountUser{ID: id, Email: email, Name: name, Phone: phone}
}

func admin(id, email, name string) AccountUser {
	return AccountUser{ID: id, Email: email, Name: name, Admin: true}
}

func ptTeam(id, name, description string, members ...string) AccountTeam {
	return AccountTeam{ID: id, Name: name, Description: description, MemberIDs: members}
}

func mark(source, groupID string) string { return Marker{Source: source, GroupID: groupID}.String() }

// oncallRule turns corp's oncall-* groups into teams named by the rest of
// the group name, title-cased.
func oncallRule() config.TeamRule {
	return config.TeamRule{Source: "corp", Match: "oncall-*", Name: `{{ trimPrefix "oncall-" .Name | title }}`, OnMissing: config.OnMissingKeep}
}

// corpDirectory: alice and bob on payments, bob and carol on db, dave
// disabled, erin only in a group no rule matches.
func corpDirectory() *sources.Snapshot {
	return snapshot("corp",
		[]sources.User{
			dirUser("u1", "Alice@Example.com ", "Alice Example", "+1 415-555-0100"),
			dirUser("u2", "bob@example.com", "Bob Builder", "+14155550101"),
			dirUser("u3", "carol@example.com", "Carol Chen", ""),
			disabledUser("u4", "dave@example.com"),
			dirUser("u5", "erin@example.com", "Erin Early", ""),
		},
		group("g1", "oncall-payments", "u1", "u2"),
		group("g2", "oncall-db", "u2", "u3", "u4"),
		group("g3", "staff", "u1", "u2", "u3", "u4", "u5"),
	)
}

// convergedAccount is PagerTree exactly as corpDirectory wants it.
func convergedAccount() Current {
	return Current{
		Users: []AccountUser{
			account("p1", "alice@example.com", "Alice Example", "+14155550100"),
			account("p2", "bob@example.com", "Bob Builder", "+14155550101"),
			account("p3", "carol@example.com", "Carol Chen", ""),
		},
		Teams: []AccountTeam{
			ptTeam("t1", "Payments", mark("corp", "g1"), "p1", "p2"),
			ptTeam("t2", "Db", "Database on-call\n"+mark("corp", "g2"), "p2", "p3"),
		},
	}
}

// brief is a change in one comparable line: sign, kind, name, id, fields,
// the member list when set, members added and removed, destructive count.
func brief(c Change) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", symbol(c.Op), c.Kind, c.Name)
	if c.ID != "" {
		fmt.Fprintf(&b, " #%s", c.ID)
	}
	if c.Kind == KindUser && c.Op == OpCreate {
		fmt.Fprintf(&b, " (%s, %s)", c.UserName, c.UserPhone)
	}
	for _, f := range c.Fields {
		if f.Field == "description" {
			fmt.Fprintf(&b, " description:+marker")
			continue
		}
		fmt.Fprintf(&b, " %s:%q>%q", f.Field, f.Old, f.New)
	}
	if c.MembersSet {
		fmt.Fprintf(&b, " members=[%s]", strings.Join(c.Members, ","))
	}
	for _, m := range c.MembersAdded {
		fmt.Fprintf(&b, " +%s", m)
	}
	for _, m := range c.MembersRemoved {
		fmt.Fprintf(&b, " -%s", m)
	}
	if c.AdminsSet {
		fmt.Fprintf(&b, " admins=[%s]", strings.Join(c.Admins, ","))
	}
	for _, a := range c.AdminsAdded {
		fmt.Fprintf(&b, " +admin:%s", a)
	}
	for _, a := range c.AdminsRemoved {
		fmt.Fprintf(&b, " -admin:%s", a)
	}
	if c.Destructive > 0 {
		fmt.Fprintf(&b, " destroys=%d", c.Destructive)
	}
	return b.String()
}

func briefs(cs []Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, brief(c))
	}
	return out
}

func conflictLines(cs []Conflict) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.User != "" {
			out = append(out, "user "+c.User+": "+c.Reason)
			continue
		}
		out = append(out, c.Team+": "+c.Reason)
	}
	return out
}

func mustDesired(t *testing.T, pol Policy, snaps ...*sources.Snapshot) Desired {
	t.Helper()
	want, err := BuildDesired(snaps, pol)
	if err != nil {
		t.Fatalf("BuildDesired: %v", err)
	}
	return want
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
