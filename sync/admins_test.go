package sync

import (
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources"
)

// v4Policy is corp's on-call rule on an account whose teams need a member
// and an admin, with lead@example.com as every team's admin.
func v4Policy() Policy {
	return Policy{Rules: rules(oncallRule()), TeamRoles: true, PhonesE164: true, TeamAdmins: []string{"Lead@Example.com"}}
}

// v4Account is convergedAccount with the lead, and its teams with the lead
// as the admin ptsync added.
func v4Account() Current {
	cur := convergedAccount()
	cur.Users = append(cur.Users, account("p9", "lead@example.com", "Lee Lead", ""))
	for i := range cur.Teams {
		t := &cur.Teams[i]
		m, _ := ParseMarker(t.Description)
		m.Admins = []string{"lead@example.com"}
		t.Description = WithMarker(t.Description, m)
		t.AdminIDs = []string{"p9"}
	}
	return cur
}

func TestV4AccountInStep(t *testing.T) {
	p := MakePlan(v4Account(), mustDesired(t, v4Policy(), corpDirectory()), v4Policy())
	if !p.InSync() || len(p.Conflicts) > 0 {
		t.Fatalf("plan of an account in step: %q, conflicts %q", briefs(p.Changes), conflictLines(p.Conflicts))
	}
}

func TestTeamCreatedWithAdminsAndMarkerRecordsThem(t *testing.T) {
	cur := v4Account()
	cur.Teams = nil
	p := MakePlan(cur, mustDesired(t, v4Policy(), corpDirectory()), v4Policy())
	equalLines(t, "changes", briefs(p.Changes), []string{
		"+ team Db members=[bob@example.com,carol@example.com] +bob@example.com +carol@example.com admins=[lead@example.com] +admin:lead@example.com",
		"+ team Payments members=[alice@example.com,bob@example.com] +alice@example.com +bob@example.com admins=[lead@example.com] +admin:lead@example.com",
	})
	m, _ := ParseMarker(p.Changes[0].Description)
	if !slices.Equal(m.Admins, []string{"lead@example.com"}) {
		t.Errorf("create's marker records admins %q, want the lead", m.Admins)
	}
}

// Admins someone made by hand stay; only the admins ptsync added and no
// longer wants go, and the marker then records what ptsync added.
func TestAdminsByHandStayOnlyPtsyncsGo(t *testing.T) {
	cur := v4Account()
	cur.Users = append(cur.Users, account("p8", "old@example.com", "Old Lead", ""))
	pay := &cur.Teams[0] // Payments
	pay.Description = WithMarker("", Marker{Source: "corp", GroupID: "g1", Admins: []string{"old@example.com"}})
	pay.AdminIDs = []string{"p1", "p8"} // alice by hand, old by ptsync
	p := MakePlan(cur, mustDesired(t, v4Policy(), corpDirectory()), v4Policy())
	equalLines(t, "changes", briefs(p.Changes), []string{
		"~ team Payments #t1 description:+marker admins=[alice@example.com,lead@example.com] +admin:lead@example.com -admin:old@example.com",
	})
	m, _ := ParseMarker(p.Changes[0].Description)
	if !slices.Equal(m.Admins, []string{"lead@example.com"}) {
		t.Errorf("marker records %q, want only the admin ptsync added", m.Admins)
	}
	if got := p.Changes[0].Details(); strings.Contains(got, "take over") {
		t.Errorf("an admin bookkeeping marker reads as a takeover: %q", got)
	}

	// A hand-made admin who is also wanted is not recorded as ptsync's: it
	// stays when the configuration stops wanting it.
	cur = v4Account()
	cur.Teams[0].Description = mark("corp", "g1")
	cur.Teams[0].AdminIDs = []string{"p9"}
	p = MakePlan(cur, mustDesired(t, v4Policy(), corpDirectory()), v4Policy())
	for _, c := range p.Changes {
		if c.Name == "Payments" {
			t.Errorf("team whose wanted admin was made by hand is rewritten: %s", brief(c))
		}
	}
}

func TestRuleAdminsAndOwners(t *testing.T) {
	snap := corpDirectory()
	snap.Users["u7"] = dirUser("u7", "owner@example.com", "Olive Owner", "")
	snap.Groups[0].Owners = []string{"u7", "u4"} // u4 is disabled: not an admin
	pol := v4Policy()
	pol.Rules[0].Admins = []string{"carol@example.com"}
	pol.Rules[0].AdminsFromOwners = true
	want := mustDesired(t, pol, snap)
	if got := want.Teams["corp/g1"].Admins; !slices.Equal(got, []string{"carol@example.com", "owner@example.com"}) {
		t.Errorf("Payments admins = %q, want the rule's and the enabled owner (not pagertree.team_admins)", got)
	}
	if _, ok := want.Users["owner@example.com"]; !ok {
		t.Error("an owner made admin is not a wanted user, so the admin could never be written")
	}
}

func TestTeamsThatCannotBeV4Teams(t *testing.T) {
	snap := corpDirectory()
	snap.Groups = append(snap.Groups, group("g5", "oncall-empty"), group("g6", "oncall-gone", "u4"))
	cur := v4Account()
	p := MakePlan(cur, mustDesired(t, v4Policy(), snap), v4Policy())
	equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{
		`Empty: group "oncall-empty" of source "corp" has no member ptsync can add, and an empty group cannot be a v4 team (a team needs a member); the team is created once it has one`,
		`Gone: group "oncall-gone" of source "corp" has no member ptsync can add, and an empty group cannot be a v4 team (a team needs a member); the team is created once it has one`,
	})
	if !p.InSync() {
		t.Errorf("changes: %q", briefs(p.Changes))
	}

	// v3 teams may be empty: the same directory creates them there.
	v3 := Policy{Rules: rules(oncallRule())}
	p = MakePlan(convergedAccount(), mustDesired(t, v3, snap), v3)
	equalLines(t, "v3 changes", briefs(p.Changes), []string{"+ team Empty members=[]", "+ team Gone members=[]"})

	// An admin who is no PagerTree user leaves the team alone.
	pol := v4Policy()
	pol.TeamAdmins = []string{"nobody@example.com"}
	p = MakePlan(cur, mustDesired(t, pol, corpDirectory()), pol)
	for _, c := range p.Changes {
		if c.Kind == KindTeam {
			t.Errorf("team written with an unknown admin: %s", brief(c))
		}
	}
	if len(p.Conflicts) != 2 || !strings.Contains(p.Conflicts[0].Reason, "admin nobody@example.com is not a PagerTree user") {
		t.Errorf("conflicts: %q", conflictLines(p.Conflicts))
	}

	// on_missing: empty cannot empty a v4 team.
	pol = v4Policy()
	pol.Rules[0].OnMissing = "empty"
	gone := editDirectory(func(s *sources.Snapshot) { s.Groups = s.Groups[1:] })
	p = MakePlan(cur, mustDesired(t, pol, gone), pol)
	if !p.InSync() || len(p.Conflicts) != 1 || !strings.Contains(p.Conflicts[0].Reason, "a v4 team cannot be emptied") {
		t.Errorf("on_missing empty on v4: changes %q, conflicts %q", briefs(p.Changes), conflictLines(p.Conflicts))
	}
}

// Deleting a team's last admin is withheld whatever the limits: PagerTree
// refuses it.
func TestDeletingLastAdminWithheld(t *testing.T) {
	cur := v4Account()
	cur.Users = append(cur.Users, account("p7", "zed@example.com", "Zed Gone", ""))
	cur.Teams = append(cur.Teams, AccountTeam{ID: "t9", Name: "Facilities", Description: "by hand", MemberIDs: []string{"p1"}, AdminIDs: []string{"p7"}})
	pol := v4Policy()
	pol.DeleteUsers, pol.AllowDestructive = true, true
	p := MakePlan(cur, mustDesired(t, pol, corpDirectory()), pol)
	for _, c := range p.Changes {
		if c.Op == OpDelete && c.Name == "zed@example.com" {
			t.Fatalf("the last admin of a team is deleted: %s", brief(c))
		}
	}
	if len(p.Withheld) != 1 || !strings.Contains(p.Withheld[0].WithheldReason, `team "Facilities" with no admin`) {
		t.Errorf("withheld: %q", briefs(p.Withheld))
	}
}

// A v4 person has several emails: the directory's matches on any, and an
// invited account user exists (no create) and is shown as invited.
func TestOtherEmailsAndInvited(t *testing.T) {
	cur := v4Account()
	cur.Users[0].Email, cur.Users[0].Emails = "alice@old.example", []string{"ALICE@example.com"}
	cur.Users[2].Invited = true // carol
	p := MakePlan(cur, mustDesired(t, v4Policy(), corpDirectory()), v4Policy())
	if !p.InSync() {
		t.Errorf("changes: %q", briefs(p.Changes))
	}
	if !slices.Equal(p.Invited, []string{"carol@example.com"}) {
		t.Errorf("invited = %q", p.Invited)
	}
	var text strings.Builder
	if err := RenderText(&text, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "Invited, not accepted yet (1; they exist and are not created again): carol@example.com") {
		t.Errorf("text plan does not show the invited user:\n%s", text.String())
	}
}

// A v4 group gone empty leaves its team's members in place, with or
// without --allow-destructive: PagerTree refuses an empty team.
func TestV4GroupGoneEmptyKeepsItsMembers(t *testing.T) {
	for _, allow := range []bool{false, true} {
		pol := v4Policy()
		pol.AllowDestructive = allow
		snap := editDirectory(func(s *sources.Snapshot) { s.Groups[1].Members = nil; s.Groups[1].Name = "oncall-database" })
		p := MakePlan(v4Account(), mustDesired(t, pol, snap), pol)
		equalLines(t, "changes", briefs(p.Changes), []string{`~ team Database #t2 name:"Db">"Database"`})
		if len(p.Withheld) > 0 || len(p.Conflicts) != 1 || !strings.Contains(p.Conflicts[0].Reason, "a v4 team cannot be emptied") {
			t.Errorf("allow-destructive %v: withheld %q, conflicts %q", allow, briefs(p.Withheld), conflictLines(p.Conflicts))
		}
	}
}

// Over the safety limits a team update's member removals are withheld; its
// admin change is not destructive and still goes ahead, even when nothing
// else of the change is left (here: the lead, whom someone removed by hand,
// is made admin again; the marker already records them).
func TestAdminChangeSurvivesWithheldRemovals(t *testing.T) {
	pol := v4Policy()
	pol.MaxDestructive = 1
	cur := v4Account()
	for i := range cur.Teams {
		cur.Teams[i].AdminIDs = []string{"p3"} // carol by hand; the lead was taken off
	}
	snap := editDirectory(func(s *sources.Snapshot) { s.Groups[0].Members = []string{"u1"} })
	snap.Groups[1].Members = []string{"u3"}
	p := MakePlan(cur, mustDesired(t, pol, snap), pol)
	equalLines(t, "changes", briefs(p.Changes), []string{
		"~ team Db #t2 admins=[carol@example.com,lead@example.com] +admin:lead@example.com",
		"~ team Payments #t1 admins=[carol@example.com,lead@example.com] +admin:lead@example.com",
	})
	equalLines(t, "withheld", briefs(p.Withheld), []string{
		"~ team Db #t2 members=[carol@example.com] -bob@example.com destroys=1",
		"~ team Payments #t1 members=[alice@example.com] -bob@example.com destroys=1",
	})
}

// An admin id no listed user has is not counted as an admin: ptsync does
// not remove the last listed admin on the strength of it, and a fresh plan
// passes its own saved-plan check.
func TestUnlistedAdminIsNotCountedAsOne(t *testing.T) {
	pol := v4Policy()
	pol.TeamAdmins = nil
	pol.Rules[0].AdminsFromOwners = true // and the groups have no owners
	cur := v4Account()
	cur.Teams[0].AdminIDs = []string{"ghost", "p9"}
	p := MakePlan(cur, mustDesired(t, pol, corpDirectory()), pol)
	for _, c := range p.Changes {
		if c.AdminsSet {
			t.Errorf("admins written: %s", brief(c))
		}
	}
	if len(p.Conflicts) != 2 || !strings.Contains(p.Conflicts[0].Reason, "a v4 team needs an admin") {
		t.Errorf("conflicts: %q", conflictLines(p.Conflicts))
	}
	if _, err := VerifySaved(p, p, cur); err != nil {
		t.Errorf("a fresh plan fails its own check: %v", err)
	}
}
