package sync

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// withUsers returns cur with more PagerTree users.
func withUsers(cur Current, users ...AccountUser) Current {
	cur.Users = append(slices.Clone(cur.Users), users...)
	return cur
}

// withTeams returns cur with its teams replaced by teams.
func withTeams(cur Current, teams ...AccountTeam) Current {
	cur.Teams = teams
	return cur
}

// editDirectory returns corpDirectory changed by edit.
func editDirectory(edit func(s *sources.Snapshot)) *sources.Snapshot {
	s := corpDirectory()
	edit(s)
	return s
}

func leaverBob(s *sources.Snapshot) { s.Users["u2"] = disabledUser("u2", "bob@example.com") }

func hireFrank(s *sources.Snapshot) {
	s.Users["u6"] = dirUser("u6", "frank@example.com", "Frank Fresh", "")
	s.Groups[0].Members = append(s.Groups[0].Members, "u6")
}

// contractors is a second source: carol again (with a phone and another
// name) and jo, in one group.
func contractors() *sources.Snapshot {
	return snapshot("contractors",
		[]sources.User{
			dirUser("c1", "carol@example.com", "Carol C.", "+1 415 555 0133"),
			dirUser("c2", "jo@vendor.example", "Jo Vendor", "+14155550177"),
		},
		group("gv", "oncall-vendors", "c1", "c2"),
	)
}

func contractorRule() config.TeamRule {
	return config.TeamRule{Source: "contractors", Match: "re:^oncall-(vendors|partners)$", Name: "{{ upper .Name }}"}
}

func rules(rs ...config.TeamRule) []config.TeamRule { return rs }

func onMissingRule(action string) config.TeamRule {
	r := oncallRule()
	r.OnMissing = action
	return r
}

func adoptRule() config.TeamRule {
	r := oncallRule()
	r.Adopt = true
	return r
}

// staffDirectory is corpDirectory plus n staff members who are in no synced
// group, and the PagerTree account that already has them.
func staffDirectory(n int) (*sources.Snapshot, Current) {
	s := corpDirectory()
	cur := convergedAccount()
	for i := range n {
		id := fmt.Sprintf("s%03d", i)
		email := fmt.Sprintf("staff%03d@example.com", i)
		s.Users[id] = dirUser(id, email, "Staff", "")
		cur.Users = append(cur.Users, account("p"+id, email, "Staff", ""))
	}
	return s, cur
}

func TestMakePlan(t *testing.T) {
	staff90, staffAccount90 := staffDirectory(90)
	staff89, staffAccount89 := staffDirectory(89)
	threeLeavers := []AccountUser{account("px1", "x1@example.com", "X", ""), account("px2", "x2@example.com", "X", ""), account("px3", "x3@example.com", "X", "")}
	legacy := ptTeam("t9", "Legacy", mark("corp", "g9"), "p1")

	tests := []struct {
		name      string
		snaps     []*sources.Snapshot
		pol       Policy // Rules default to oncallRule
		cur       Current
		changes   []string
		withheld  []string
		conflicts []string
	}{
		{
			name: "empty account: users then teams are created",
			changes: []string{
				"+ user alice@example.com (Alice Example, +14155550100)",
				"+ user bob@example.com (Bob Builder, +14155550101)",
				"+ user carol@example.com (Carol Chen, )",
				"+ team Db members=[bob@example.com,carol@example.com] +bob@example.com +carol@example.com",
				"+ team Payments members=[alice@example.com,bob@example.com] +alice@example.com +bob@example.com",
			},
		},
		{
			name: "converged account: no changes",
			cur:  convergedAccount(),
		},
		{
			name: "a user name that differs is updated, the email matched case-insensitively",
			cur: Current{
				Users: []AccountUser{
					account("p1", " ALICE@example.com", "Alice", "+14155550100"),
					account("p2", "bob@example.com", "Bob Builder", "+14155550101"),
					account("p3", "carol@example.com", "Carol Chen", ""),
				},
				Teams: convergedAccount().Teams,
			},
			changes: []string{`~ user alice@example.com #p1 name:"Alice">"Alice Example"`},
		},
		{
			name: "phones equal in E.164 are no change",
			cur: Current{
				Users: []AccountUser{
					account("p1", "alice@example.com", "Alice Example", "+1 (415) 555-0100"),
					account("p2", "bob@example.com", "Bob Builder", "+1 415 555 0101"),
					account("p3", "carol@example.com", "Carol Chen", ""),
				},
				Teams: convergedAccount().Teams,
			},
		},
		{
			name: "a national number equals its E.164 form in the default region",
			pol:  Policy{PhoneRegion: "US"},
			cur: Current{
				Users: []AccountUser{
					account("p1", "alice@example.com", "Alice Example", "(415) 555-0100"),
					account("p2", "bob@example.com", "Bob Builder", "415.555.0101"),
					account("p3", "carol@example.com", "Carol Chen", ""),
				},
				Teams: convergedAccount().Teams,
			},
		},
		{
			name: "a phone that differs is updated, an empty directory phone clears nothing",
			cur: Current{
				Users: []AccountUser{
					account("p1", "alice@example.com", "Alice Example", "+14155550100"),
					account("p2", "bob@example.com", "Bob Builder", "+14155559999"),
					account("p3", "carol@example.com", "Carol Chen", "+14155550199"),
				},
				Teams: convergedAccount().Teams,
			},
			changes: []string{`~ user bob@example.com #p2 phone:"+14155559999">"+14155550101"`},
		},
		{
			name:    "a renamed group renames its team in place, sending only the name",
			cur:     withTeams(convergedAccount(), ptTeam("t1", "payments-old", mark("corp", "g1"), "p2", "p1"), convergedAccount().Teams[1]),
			changes: []string{`~ team Payments #t1 name:"payments-old">"Payments"`},
		},
		{
			name:    "a rename carries the membership change in the same write",
			cur:     withTeams(convergedAccount(), ptTeam("t1", "payments-old", mark("corp", "g1"), "p1"), convergedAccount().Teams[1]),
			changes: []string{`~ team Payments #t1 name:"payments-old">"Payments" members=[alice@example.com,bob@example.com] +bob@example.com`},
		},
		{
			name:      "a rename onto an unmanaged team's name is a conflict; membership still syncs",
			cur:       withTeams(convergedAccount(), ptTeam("t1", "payments-old", mark("corp", "g1"), "p1"), convergedAccount().Teams[1], ptTeam("t7", "Payments", "", "p3")),
			changes:   []string{`~ team payments-old #t1 members=[alice@example.com,bob@example.com] +bob@example.com`},
			conflicts: []string{`Payments: cannot rename team "payments-old" to "Payments": team t7 already has that name and ptsync does not manage it`},
		},
		{
			name:    "adopt: true takes over an unmanaged team of the wanted name",
			pol:     Policy{Rules: rules(adoptRule())},
			cur:     withTeams(convergedAccount(), ptTeam("t1", "Payments", "Our payments team", "p1"), convergedAccount().Teams[1]),
			changes: []string{`~ team Payments #t1 description:+marker members=[alice@example.com,bob@example.com] +bob@example.com`},
		},
		{
			name:      "without adopt an unmanaged team of the wanted name is a conflict and left alone",
			cur:       withTeams(convergedAccount(), ptTeam("t1", "Payments", "Our payments team", "p1"), convergedAccount().Teams[1]),
			conflicts: []string{`Payments: team "Payments" exists and is not managed by ptsync; set adopt: true on teams[0] to take it over`},
		},
		{
			name:      "two unmanaged teams of the wanted name are a conflict even with adopt",
			pol:       Policy{Rules: rules(adoptRule())},
			cur:       withTeams(convergedAccount(), ptTeam("t1", "Payments", ""), ptTeam("t5", "Payments", ""), convergedAccount().Teams[1]),
			conflicts: []string{`Payments: 2 teams are named "Payments" (t1, t5); rename or delete all but one`},
		},
		{
			name:      "two teams carrying one marker are a conflict and both left alone",
			pol:       Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur:       withTeams(convergedAccount(), ptTeam("t1", "Payments", mark("corp", "g1")), ptTeam("t5", "Payments 2", mark("corp", "g1")), convergedAccount().Teams[1]),
			conflicts: []string{`Payments: 2 teams (t1, t5) carry the ptsync marker of group "oncall-payments" of source "corp"; remove it from all but one`},
		},
		{
			name:    "a team whose group was recreated under a new id is taken over by name",
			pol:     Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur:     withTeams(convergedAccount(), ptTeam("t8", "Payments", mark("corp", "g-old"), "p1", "p2"), convergedAccount().Teams[1]),
			changes: []string{`~ team Payments #t8 description:+marker`},
		},
		{
			name:      "a team managed for a source this config does not sync is never touched",
			pol:       Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur:       withTeams(convergedAccount(), ptTeam("t8", "Payments", mark("old", "g1"), "p1"), convergedAccount().Teams[1], ptTeam("t9", "Other", mark("old", "g2"), "p1")),
			conflicts: []string{`Payments: team "Payments" is managed by ptsync for source "old", which this configuration does not sync; remove its marker to let this rule adopt it`},
		},
		{
			name: "protected users are never changed or deleted",
			pol:  Policy{Protect: []string{"ALICE@*", "owner@example.com"}, DeleteUsers: true},
			cur: withUsers(withTeams(convergedAccount(), convergedAccount().Teams...),
				account("p0", "owner@example.com", "Owner", ""), account("p9", "zed@example.com", "Zed", "")),
			changes: []string{"- user zed@example.com #p9 destroys=1"},
		},
		{
			name: "account admins are never changed or deleted",
			pol:  Policy{DeleteUsers: true},
			cur: Current{
				Users: []AccountUser{admin("p1", "alice@example.com", "Al"), account("p2", "bob@example.com", "Bob Builder", "+14155550101"),
					account("p3", "carol@example.com", "Carol Chen", ""), admin("p0", "owner@example.com", "Owner")},
				Teams: convergedAccount().Teams,
			},
		},
		{
			name: "on_missing keep leaves a team whose group is gone alone",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingKeep))},
			cur:  withTeams(convergedAccount(), append(convergedAccount().Teams, legacy)...),
		},
		{
			name:     "on_missing empty empties the team, and emptying is always withheld",
			pol:      Policy{Rules: rules(onMissingRule(config.OnMissingEmpty))},
			cur:      withTeams(convergedAccount(), append(convergedAccount().Teams, legacy)...),
			withheld: []string{"~ team Legacy #t9 members=[] -alice@example.com destroys=1"},
		},
		{
			name:    "on_missing empty with --allow-destructive",
			pol:     Policy{Rules: rules(onMissingRule(config.OnMissingEmpty)), AllowDestructive: true},
			cur:     withTeams(convergedAccount(), append(convergedAccount().Teams, legacy)...),
			changes: []string{"~ team Legacy #t9 members=[] -alice@example.com destroys=1"},
		},
		{
			name:    "on_missing delete deletes the team",
			pol:     Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur:     withTeams(convergedAccount(), append(convergedAccount().Teams, legacy)...),
			changes: []string{"- team Legacy #t9 destroys=1"},
		},
		{
			name: "of a source's rules the least destructive on_missing applies",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingDelete), config.TeamRule{Source: "corp", Match: "team-*", Name: "{{ .Name }}", OnMissing: config.OnMissingEmpty})},
			cur:  withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t9", "Legacy", mark("corp", "g9")))...),
		},
		{
			name:    "scope all wants every enabled user, in a synced group or not",
			pol:     Policy{Scope: config.ScopeAll},
			cur:     convergedAccount(),
			changes: []string{"+ user erin@example.com (Erin Early, )"},
		},
		{
			name:  "users merge across sources: name and phone from the first source that has them",
			snaps: []*sources.Snapshot{corpDirectory(), contractors()},
			pol:   Policy{Rules: rules(oncallRule(), contractorRule())},
			cur:   convergedAccount(),
			changes: []string{
				"+ user jo@vendor.example (Jo Vendor, +14155550177)",
				`~ user carol@example.com #p3 phone:"">"+14155550133"`,
				"+ team ONCALL-VENDORS members=[carol@example.com,jo@vendor.example] +carol@example.com +jo@vendor.example",
			},
		},
		{
			name:  "users merge across sources: configuration order decides",
			snaps: []*sources.Snapshot{contractors(), corpDirectory()},
			pol:   Policy{Rules: rules(oncallRule(), contractorRule())},
			cur:   convergedAccount(),
			changes: []string{
				"+ user jo@vendor.example (Jo Vendor, +14155550177)",
				`~ user carol@example.com #p3 name:"Carol Chen">"Carol C." phone:"">"+14155550133"`,
				"+ team ONCALL-VENDORS members=[carol@example.com,jo@vendor.example] +carol@example.com +jo@vendor.example",
			},
		},
		{
			name:  "a leaver is removed from their teams and kept without users.delete",
			snaps: []*sources.Snapshot{editDirectory(leaverBob)},
			cur:   convergedAccount(),
			changes: []string{
				"~ team Db #t2 members=[carol@example.com] -bob@example.com destroys=1",
				"~ team Payments #t1 members=[alice@example.com] -bob@example.com destroys=1",
			},
		},
		{
			name:  "with users.delete a leaver (disabled in the directory) is deleted",
			snaps: []*sources.Snapshot{editDirectory(leaverBob)},
			pol:   Policy{DeleteUsers: true},
			cur:   convergedAccount(),
			changes: []string{
				"~ team Db #t2 members=[carol@example.com] -bob@example.com destroys=1",
				"~ team Payments #t1 members=[alice@example.com] -bob@example.com destroys=1",
				"- user bob@example.com #p2 destroys=1",
			},
		},
		{
			name:    "a user still in the directory but in no synced team is not deleted",
			pol:     Policy{DeleteUsers: true},
			cur:     withUsers(convergedAccount(), account("p5", "erin@example.com", "Erin Early", ""), account("p6", "gone@example.com", "Gone", "")),
			changes: []string{"- user gone@example.com #p6 destroys=1"},
		},
		{
			name:  "over max_destructive every destructive change is withheld, the rest applied",
			snaps: []*sources.Snapshot{editDirectory(func(s *sources.Snapshot) { leaverBob(s); hireFrank(s) })},
			pol:   Policy{DeleteUsers: true, MaxDestructive: 2},
			cur:   convergedAccount(),
			changes: []string{
				"+ user frank@example.com (Frank Fresh, )",
				"~ team Payments #t1 members=[alice@example.com,bob@example.com,frank@example.com] +frank@example.com",
			},
			withheld: []string{
				"~ team Db #t2 members=[carol@example.com] -bob@example.com destroys=1",
				"~ team Payments #t1 members=[alice@example.com,frank@example.com] -bob@example.com destroys=1",
				"- user bob@example.com #p2 destroys=1",
			},
		},
		{
			name:  "at max_destructive nothing is withheld",
			snaps: []*sources.Snapshot{editDirectory(leaverBob)},
			pol:   Policy{DeleteUsers: true, MaxDestructive: 3},
			cur:   convergedAccount(),
			changes: []string{
				"~ team Db #t2 members=[carol@example.com] -bob@example.com destroys=1",
				"~ team Payments #t1 members=[alice@example.com] -bob@example.com destroys=1",
				"- user bob@example.com #p2 destroys=1",
			},
		},
		{
			name:    "max_destructive 0 is no limit",
			pol:     Policy{DeleteUsers: true},
			cur:     withUsers(convergedAccount(), threeLeavers...),
			changes: []string{"- user x1@example.com #px1 destroys=1", "- user x2@example.com #px2 destroys=1", "- user x3@example.com #px3 destroys=1"},
		},
		{
			name:     "over max_destructive_percent of a base of 100 withholds",
			snaps:    []*sources.Snapshot{staff90},
			pol:      Policy{DeleteUsers: true, MaxDestructivePercent: 2},
			cur:      withUsers(staffAccount90, threeLeavers...),
			withheld: []string{"- user x1@example.com #px1 destroys=1", "- user x2@example.com #px2 destroys=1", "- user x3@example.com #px3 destroys=1"},
		},
		{
			name:    "within max_destructive_percent nothing is withheld",
			snaps:   []*sources.Snapshot{staff90},
			pol:     Policy{DeleteUsers: true, MaxDestructivePercent: 3},
			cur:     withUsers(staffAccount90, threeLeavers...),
			changes: []string{"- user x1@example.com #px1 destroys=1", "- user x2@example.com #px2 destroys=1", "- user x3@example.com #px3 destroys=1"},
		},
		{
			name:    "max_destructive_percent does not apply to a base under 100",
			snaps:   []*sources.Snapshot{staff89},
			pol:     Policy{DeleteUsers: true, MaxDestructivePercent: 2},
			cur:     withUsers(staffAccount89, threeLeavers...),
			changes: []string{"- user x1@example.com #px1 destroys=1", "- user x2@example.com #px2 destroys=1", "- user x3@example.com #px3 destroys=1"},
		},
		{
			name:     "a change that would empty a team with members is always withheld",
			snaps:    []*sources.Snapshot{editDirectory(func(s *sources.Snapshot) { s.Groups[1].Members = []string{"u4"} })},
			cur:      convergedAccount(),
			withheld: []string{"~ team Db #t2 members=[] -bob@example.com -carol@example.com destroys=2"},
		},
		{
			name: "deleting a user a withheld emptying keeps in a team is withheld too",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingEmpty)), DeleteUsers: true},
			cur: withUsers(withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t9", "Legacy", mark("corp", "g9"), "p9"))...),
				account("p9", "zed@example.com", "Zed", "")),
			withheld: []string{"~ team Legacy #t9 members=[] -zed@example.com destroys=1", "- user zed@example.com #p9 destroys=1"},
		},
		{
			name:    "--allow-destructive lifts the limits and the empty-team rule",
			snaps:   []*sources.Snapshot{editDirectory(func(s *sources.Snapshot) { s.Groups[1].Members = []string{"u4"}; leaverBob(s) })},
			pol:     Policy{DeleteUsers: true, MaxDestructive: 1, AllowDestructive: true},
			cur:     convergedAccount(),
			changes: []string{"~ team Db #t2 members=[] -bob@example.com -carol@example.com destroys=2", "~ team Payments #t1 members=[alice@example.com] -bob@example.com destroys=1", "- user bob@example.com #p2 destroys=1"},
		},
		{
			name: "member ids that name no account user are ignored",
			cur:  withTeams(convergedAccount(), ptTeam("t1", "Payments", mark("corp", "g1"), "p1", "ghost", "p2", "p1"), convergedAccount().Teams[1]),
		},
		{
			name:  "the first matching rule of a group's source wins",
			snaps: []*sources.Snapshot{corpDirectory()},
			pol: Policy{Rules: rules(
				config.TeamRule{Source: "other", Match: "*", Name: "never {{ .Name }}"},
				config.TeamRule{Source: "corp", Match: "oncall-pay*", Name: "P-{{ .ID }}"},
				oncallRule())},
			cur:     convergedAccount(),
			changes: []string{`~ team P-g1 #t1 name:"Payments">"P-g1"`},
		},
		{
			name:  "two users with one email up to case: the teams involving it and both users are left alone",
			snaps: []*sources.Snapshot{editDirectory(hireFrank)},
			cur: withUsers(Current{
				Users: []AccountUser{
					account("p1", "alice@example.com", "Alice Example", "+14155550100"),
					account("p2", "bob@example.com", "Bob Builder", "+14155550101"),
					account("p3", "carol@example.com", "Carol", ""),
				},
				Teams: convergedAccount().Teams,
			}, account("p9", "Carol@Example.com", "Impostor", "")),
			changes: []string{
				"+ user frank@example.com (Frank Fresh, )",
				"~ team Payments #t1 members=[alice@example.com,bob@example.com,frank@example.com] +frank@example.com",
			},
			conflicts: []string{twinConflict("Db", "users p3, p9 have the email carol@example.com"), twinUsers("carol@example.com", "p3, p9")},
		},
		{
			name: "a team to create with a member whose email two users have is not created",
			cur: withUsers(withTeams(convergedAccount(), convergedAccount().Teams[0]),
				account("p9", " carol@example.com", "Impostor", "")),
			conflicts: []string{twinConflict("Db", "users p3, p9 have the email carol@example.com"), twinUsers("carol@example.com", "p3, p9")},
		},
		{
			name: "every email shared in a team is named",
			cur: withUsers(convergedAccount(),
				account("p8", "ALICE@example.com", "Impostor", ""), account("p9", "Bob@example.com", "Impostor", "")),
			conflicts: []string{
				twinConflict("Db", "users p2, p9 have the email bob@example.com"),
				twinConflict("Payments", "users p1, p8 have the email alice@example.com and users p2, p9 have the email bob@example.com"),
				twinUsers("alice@example.com", "p1, p8"),
				twinUsers("bob@example.com", "p2, p9"),
			},
		},
		{
			name: "leavers who share an email are not deleted, nor the members of a team they are in",
			pol:  Policy{DeleteUsers: true},
			cur: withUsers(withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t9", "Legacy", mark("corp", "g9"), "p1", "p7", "p8"))...),
				account("p6", "xan@example.com", "Xan", ""), account("p7", "yan@example.com", "Yan", ""),
				account("p8", "zed@example.com", "Zed", ""), account("p9", "Zed@Example.COM ", "Zed", "")),
			changes:   []string{"- user xan@example.com #p6 destroys=1"},
			conflicts: []string{twinConflict("Legacy", "users p8, p9 have the email zed@example.com"), twinUsers("zed@example.com", "p8, p9")},
		},
		{
			name: "a gone group's team holding a shared email is neither deleted nor emptied",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur: withUsers(withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t9", "Legacy", mark("corp", "g9"), "p8"))...),
				account("p8", "zed@example.com", "Zed", ""), account("p9", "zed@EXAMPLE.com", "Zed", "")),
			conflicts: []string{twinConflict("Legacy", "users p8, p9 have the email zed@example.com"), twinUsers("zed@example.com", "p8, p9")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.snaps == nil {
				tc.snaps = []*sources.Snapshot{corpDirectory()}
			}
			if tc.pol.Rules == nil {
				tc.pol.Rules = rules(oncallRule())
			}
			p := MakePlan(tc.cur, mustDesired(t, tc.pol, tc.snaps...), tc.pol)
			equalLines(t, "changes", briefs(p.Changes), tc.changes)
			equalLines(t, "withheld", briefs(p.Withheld), tc.withheld)
			equalLines(t, "conflicts", conflictLines(p.Conflicts), tc.conflicts)
			if got := summarize(p.Changes); p.Summary != got {
				t.Errorf("summary %+v, changes count %+v", p.Summary, got)
			}
			for _, c := range p.Withheld {
				if c.WithheldReason == "" {
					t.Errorf("withheld %s has no reason", brief(c))
				}
			}
			for _, c := range p.Changes {
				if c.WithheldReason != "" {
					t.Errorf("applied %s has a withheld reason %q", brief(c), c.WithheldReason)
				}
			}
		})
	}
}

// twinConflict is the conflict of a team left alone because PagerTree has
// more than one user with an email it involves.
func twinConflict(team, shared string) string {
	return team + ": PagerTree " + shared + " (up to case and spaces); ptsync cannot tell which one is meant, so this team and its members are left alone: delete or correct all but one"
}

// twinUsers is the conflict of the PagerTree users who share email.
func twinUsers(email, ids string) string {
	return "user " + email + ": PagerTree users " + ids + " have this email (up to case and spaces); ptsync cannot tell which one is meant, so none is updated or deleted: delete or correct all but one"
}

// TestAdoptionLeftForATwinIsNotInTheBase: a team adopt: true would take
// over, left alone because two users share an email in it, is not
// managed: its members do not count in the safety base.
func TestAdoptionLeftForATwinIsNotInTheBase(t *testing.T) {
	pol := Policy{Rules: rules(adoptRule())}
	cur := withUsers(withTeams(convergedAccount(), ptTeam("t1", "Payments", "Our payments team", "p1", "p2"), convergedAccount().Teams[1]),
		account("p9", "BOB@example.com", "Impostor", ""))
	p := MakePlan(cur, mustDesired(t, pol, corpDirectory()), pol)
	equalLines(t, "changes", briefs(p.Changes), nil)
	equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{
		twinConflict("Db", "users p2, p9 have the email bob@example.com"),
		twinConflict("Payments", "users p2, p9 have the email bob@example.com"),
		twinUsers("bob@example.com", "p2, p9"),
	})
	// 4 manageable users and Db's 2 members; not Payments' 2.
	if p.Base != 6 {
		t.Errorf("base %d, want 6", p.Base)
	}
}

// TestUserDeleteNeverEmptiesATeam: PagerTree takes a deleted user out of
// every team, managed or not, so a user delete is held to the empty-team
// rule too, for the teams as the plan's applied team changes leave them.
func TestUserDeleteNeverEmptiesATeam(t *testing.T) {
	zed, yan := account("p9", "zed@example.com", "Zed", ""), account("p8", "yan@example.com", "Yan", "")
	leavers := withUsers(convergedAccount(), zed, yan)
	teams := func(extra ...AccountTeam) Current {
		return withTeams(leavers, append(convergedAccount().Teams, extra...)...)
	}
	const (
		absent  = "absent from every source"
		strips  = " (PagerTree takes a deleted user out of every team)"
		leaveHM = `deleting them would leave team "Hand Made" with no members` + strips
	)
	tests := []struct {
		name     string
		pol      Policy // DeleteUsers is set; Rules default to oncallRule
		cur      Current
		changes  []string // brief  # Reason
		withheld []string // brief  # WithheldReason
	}{
		{
			name:     "the last member of a hand-made team is not deleted",
			cur:      teams(ptTeam("t5", "Hand Made", "made by hand", "p9")),
			changes:  []string{"- user yan@example.com #p8 destroys=1  # " + absent},
			withheld: []string{"- user zed@example.com #p9 destroys=1  # " + leaveHM},
		},
		{
			name: "the last member of a kept team whose group is gone is not deleted",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingKeep))},
			cur:  teams(ptTeam("t9", "Legacy", mark("corp", "g9"), "p9", "ghost")),
			changes: []string{
				"- user yan@example.com #p8 destroys=1  # " + absent,
			},
			withheld: []string{`- user zed@example.com #p9 destroys=1  # deleting them would leave team "Legacy" with no members` + strips},
		},
		{
			name: "leavers who are all of a team are all withheld, naming every team they would empty",
			cur: teams(ptTeam("t5", "Hand Made", "made by hand", "p9", "p8"), ptTeam("t6", "Night", "", "p9"),
				ptTeam("t7", "Day", "", "p9", "p1")),
			withheld: []string{
				"- user yan@example.com #p8 destroys=1  # " + leaveHM,
				`- user zed@example.com #p9 destroys=1  # deleting them would leave teams "Hand Made", "Night" with no members` + strips,
			},
		},
		{
			name: "a leaver on a hand-made team beside others is deleted, and the reason names the team",
			cur:  teams(ptTeam("t5", "Hand Made", "made by hand", "p9", "p1"), ptTeam("t6", "Night", "", "p2", "p9")),
			changes: []string{
				"- user yan@example.com #p8 destroys=1  # " + absent,
				`- user zed@example.com #p9 destroys=1  # ` + absent + `; the delete also takes them out of teams "Hand Made", "Night"` + strips,
			},
		},
		{
			name: "a team the plan deletes holds no delete back",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			cur:  teams(ptTeam("t9", "Legacy", mark("corp", "g9"), "p9")),
			changes: []string{
				"- team Legacy #t9 destroys=1  # " + `group (id "g9") is gone from source "corp"; on_missing: delete`,
				"- user yan@example.com #p8 destroys=1  # " + absent,
				"- user zed@example.com #p9 destroys=1  # " + absent,
			},
		},
		{
			name: "a team the plan fills holds no delete back",
			pol:  Policy{Rules: rules(adoptRule())},
			cur:  withTeams(leavers, ptTeam("t1", "Payments", "made by hand", "p9"), convergedAccount().Teams[1]),
			changes: []string{
				"~ team Payments #t1 description:+marker members=[alice@example.com,bob@example.com] +alice@example.com +bob@example.com -zed@example.com destroys=1" +
					`  # group "oncall-payments" of source "corp"; adopted by teams[0] (adopt: true)`,
				"- user yan@example.com #p8 destroys=1  # " + absent,
				"- user zed@example.com #p9 destroys=1  # " + absent,
			},
		},
		{
			name: "a withheld emptying keeps its member, whose delete is withheld for it",
			pol:  Policy{Rules: rules(onMissingRule(config.OnMissingEmpty))},
			cur:  teams(ptTeam("t9", "Legacy", mark("corp", "g9"), "p9")),
			changes: []string{
				"- user yan@example.com #p8 destroys=1  # " + absent,
			},
			withheld: []string{
				`~ team Legacy #t9 members=[] -zed@example.com destroys=1  # would leave team Legacy with no members`,
				"- user zed@example.com #p9 destroys=1  # still a member of team Legacy, whose removal is withheld",
			},
		},
		{
			name: "--allow-destructive deletes the last member anyway, and says so",
			pol:  Policy{AllowDestructive: true},
			cur:  teams(ptTeam("t5", "Hand Made", "made by hand", "p9")),
			changes: []string{
				"- user yan@example.com #p8 destroys=1  # " + absent,
				`- user zed@example.com #p9 destroys=1  # ` + absent + `; the delete also takes them out of team "Hand Made"` + strips + `; --allow-destructive lets it leave team "Hand Made" with no members`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.pol.DeleteUsers = true
			if tc.pol.Rules == nil {
				tc.pol.Rules = rules(oncallRule())
			}
			p := MakePlan(tc.cur, mustDesired(t, tc.pol, corpDirectory()), tc.pol)
			var changes, withheld []string
			for _, c := range p.Changes {
				changes = append(changes, brief(c)+"  # "+c.Reason)
			}
			for _, c := range p.Withheld {
				withheld = append(withheld, brief(c)+"  # "+c.WithheldReason)
			}
			equalLines(t, "changes", changes, tc.changes)
			equalLines(t, "withheld", withheld, tc.withheld)
		})
	}
}

// TestSilentSourceKeepsItsTeams: a source that returns no group any teams
// rule matches, while PagerTree holds teams managed from it, looks like a
// filter gone wrong: none of its teams is deleted or emptied, whatever
// on_missing says, unless --allow-destructive.
func TestSilentSourceKeepsItsTeams(t *testing.T) {
	const silent = `source "corp" returned no group matching the teams rules; refusing to delete or empty every team it manages (check the group search and the rules, or rerun with --allow-destructive)`
	noOncall := editDirectory(func(s *sources.Snapshot) { s.Groups = s.Groups[2:] }) // staff only
	vendorsGone := contractorRule()
	vendorsGone.OnMissing = config.OnMissingDelete
	tests := []struct {
		name     string
		pol      Policy
		snaps    []*sources.Snapshot
		cur      Current
		changes  []string // team changes only: brief  # Reason
		withheld []string // brief  # WithheldReason
	}{
		{
			name:  "on_missing delete: every delete is withheld",
			pol:   Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			snaps: []*sources.Snapshot{noOncall},
			cur:   convergedAccount(),
			withheld: []string{
				"- team Db #t2 destroys=1  # " + silent,
				"- team Payments #t1 destroys=1  # " + silent,
			},
		},
		{
			name:  "on_missing empty: every emptying is withheld",
			pol:   Policy{Rules: rules(onMissingRule(config.OnMissingEmpty))},
			snaps: []*sources.Snapshot{noOncall},
			cur:   convergedAccount(),
			withheld: []string{
				"~ team Db #t2 members=[] -bob@example.com -carol@example.com destroys=2  # " + silent,
				"~ team Payments #t1 members=[] -alice@example.com -bob@example.com destroys=2  # " + silent,
			},
		},
		{
			name:  "--allow-destructive deletes them",
			pol:   Policy{Rules: rules(onMissingRule(config.OnMissingDelete)), AllowDestructive: true},
			snaps: []*sources.Snapshot{noOncall},
			cur:   convergedAccount(),
			changes: []string{
				`- team Db #t2 destroys=1  # group (id "g2") is gone from source "corp"; on_missing: delete`,
				`- team Payments #t1 destroys=1  # group (id "g1") is gone from source "corp"; on_missing: delete`,
			},
		},
		{
			name:    "one matched group left: the gone one is deleted",
			pol:     Policy{Rules: rules(onMissingRule(config.OnMissingDelete))},
			snaps:   []*sources.Snapshot{editDirectory(func(s *sources.Snapshot) { s.Groups = slices.Delete(s.Groups, 1, 2) })},
			cur:     convergedAccount(),
			changes: []string{`- team Db #t2 destroys=1  # group (id "g2") is gone from source "corp"; on_missing: delete`},
		},
		{
			name:  "another source's gone group is still deleted",
			pol:   Policy{Rules: rules(onMissingRule(config.OnMissingDelete), vendorsGone)},
			snaps: []*sources.Snapshot{noOncall, contractors()},
			cur:   withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t7", "PARTNERS", mark("contractors", "gp"), "p3"))...),
			changes: []string{
				`+ team ONCALL-VENDORS members=[carol@example.com,jo@vendor.example] +carol@example.com +jo@vendor.example  # group "oncall-vendors" of source "contractors"; new team from teams[1]`,
				`- team PARTNERS #t7 destroys=1  # group (id "gp") is gone from source "contractors"; on_missing: delete`,
			},
			withheld: []string{
				"- team Db #t2 destroys=1  # " + silent,
				"- team Payments #t1 destroys=1  # " + silent,
			},
		},
		{
			name:  "a team another source's group takes over by name is that group's",
			pol:   Policy{Rules: rules(onMissingRule(config.OnMissingDelete), contractorRule())},
			snaps: []*sources.Snapshot{noOncall, contractors()},
			cur:   withTeams(convergedAccount(), append(convergedAccount().Teams, ptTeam("t7", "ONCALL-VENDORS", mark("corp", "g7"), "p1", "p3"))...),
			changes: []string{
				`~ team ONCALL-VENDORS #t7 description:+marker members=[carol@example.com,jo@vendor.example] +jo@vendor.example -alice@example.com destroys=1` +
					`  # group "oncall-vendors" of source "contractors"; its group (id "g7") is gone; taken over by group "oncall-vendors" of source "contractors"`,
			},
			withheld: []string{
				"- team Db #t2 destroys=1  # " + silent,
				"- team Payments #t1 destroys=1  # " + silent,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := MakePlan(tc.cur, mustDesired(t, tc.pol, tc.snaps...), tc.pol)
			var changes, withheld []string
			for _, c := range p.Changes {
				if c.Kind == KindTeam {
					changes = append(changes, brief(c)+"  # "+c.Reason)
				}
			}
			for _, c := range p.Withheld {
				withheld = append(withheld, brief(c)+"  # "+c.WithheldReason)
			}
			equalLines(t, "team changes", changes, tc.changes)
			equalLines(t, "withheld", withheld, tc.withheld)
		})
	}
}

// TestTeamWriteKeepsUnlistedMembers: a member id that names no listed user
// (the listing may have missed someone) is neither diffed nor counted, and
// the team write keeps it: only the real removal is made and counted.
func TestTeamWriteKeepsUnlistedMembers(t *testing.T) {
	cur := convergedAccount()
	cur.Users = append(cur.Users, AccountUser{ID: "p7", Name: "No Email"})
	cur.Teams[1].MemberIDs = []string{"p2", "p-unlisted", "p3", "p7"}
	carolLeavesDb := editDirectory(func(s *sources.Snapshot) { s.Groups[1].Members = []string{"u2"} })
	pol := Policy{Rules: rules(oncallRule())}
	p := MakePlan(cur, mustDesired(t, pol, carolLeavesDb), pol)

	equalLines(t, "changes", briefs(p.Changes), []string{"~ team Db #t2 members=[bob@example.com] -carol@example.com destroys=1"})
	if got := p.Changes[0].KeepIDs; !slices.Equal(got, []string{"p-unlisted", "p7"}) {
		t.Errorf("keep ids = %v, want [p-unlisted p7]", got)
	}
	if p.Destructive != 1 {
		t.Errorf("plan destroys %d, want 1 (carol only)", p.Destructive)
	}
	w := &recordingWriter{}
	Apply(t.Context(), w, cur, p, ApplyOptions{})
	if want := []string{"update team t2 members=p2,p-unlisted,p7"}; !slices.Equal(w.calls, want) {
		t.Errorf("calls = %v, want %v", w.calls, want)
	}
}
