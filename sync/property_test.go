package sync

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// The pools random directories and accounts draw from are small, so that
// emails, group ids and team names collide often: collisions are where
// matching, adoption, renames and conflicts happen.
var (
	propEmails = []string{"ann@x.test", "ben@x.test", "cat@x.test", "dan@x.test", "eve@x.test", "fay@x.test", "gus@x.test", "hal@x.test"}
	propNames  = []string{"", "Ann", "Ben Long", "Cat", "Dan"}
	propPhones = []string{"", "+14155550100", "+1 415 555 0100", "415-555-0101", "+442079460958", "not a number"}
	propGroups = map[string][]string{ // source -> group names it may have
		"corp": {"oncall-a", "oncall-b", "oncall-c", "staff"},
		"hr":   {"team-a", "team-b", "other"},
	}
	propGroupIDs  = []string{"g1", "g2", "g3", "g4"}
	propTeamNames = []string{"oncall-a", "oncall-b", "oncall-c", "TEAM-A", "TEAM-B", "Hand Made"}
)

// subset draws a random subset of items, in order.
func subset[E any](t *rapid.T, items []E, label string) []E {
	var out []E
	for i, it := range items {
		if rapid.Bool().Draw(t, fmt.Sprintf("%s[%d]", label, i)) {
			out = append(out, it)
		}
	}
	return out
}

// drawEmail draws a pool email, sometimes with other case and spaces: the
// match key must see through them.
func drawEmail(t *rapid.T, label string) string {
	e := rapid.SampledFrom(propEmails).Draw(t, label)
	switch rapid.IntRange(0, 3).Draw(t, label+".form") {
	case 0:
		return strings.ToUpper(e[:1]) + e[1:]
	case 1:
		return " " + e
	}
	return e
}

func drawDirectory(t *rapid.T) []*sources.Snapshot {
	var snaps []*sources.Snapshot
	for _, source := range subset(t, []string{"corp", "hr"}, "sources") {
		s := sources.NewSnapshot(source)
		for i := range rapid.IntRange(0, 7).Draw(t, source+".users") {
			id := fmt.Sprintf("%s-u%d", source, i)
			email := drawEmail(t, id+".email")
			if rapid.IntRange(0, 9).Draw(t, id+".noemail") == 0 {
				email = ""
			}
			s.Users[id] = sources.User{ID: id, Email: email,
				Name:     rapid.SampledFrom(propNames).Draw(t, id+".name"),
				Phone:    rapid.SampledFrom(propPhones).Draw(t, id+".phone"),
				Disabled: rapid.IntRange(0, 4).Draw(t, id+".disabled") == 0}
		}
		userIDs := sortedKeys(s.Users)
		names := rapid.Permutation(propGroups[source]).Draw(t, source+".groupnames")
		ids := rapid.Permutation(propGroupIDs).Draw(t, source+".groupids")
		for i := range rapid.IntRange(0, min(len(names), len(ids))).Draw(t, source+".groups") {
			s.Groups = append(s.Groups, sources.Group{ID: ids[i], Name: names[i], Members: subset(t, userIDs, source+"."+ids[i])})
		}
		snaps = append(snaps, s)
	}
	return snaps
}

func drawAccount(t *rapid.T) Current {
	var cur Current
	for i, email := range subset(t, append(slices.Clone(propEmails), "owner@x.test", "ops@x.test"), "pt.users") {
		id := fmt.Sprintf("pt-u%d", i)
		cur.Users = append(cur.Users, AccountUser{ID: id, Email: email,
			Name:  rapid.SampledFrom(propNames).Draw(t, id+".name"),
			Phone: rapid.SampledFrom(propPhones).Draw(t, id+".phone"),
			Admin: rapid.IntRange(0, 4).Draw(t, id+".admin") == 0})
	}
	var userIDs []string
	for _, u := range cur.Users {
		userIDs = append(userIDs, u.ID)
	}
	for i := range rapid.IntRange(0, 6).Draw(t, "pt.teams") {
		id := fmt.Sprintf("pt-t%d", i)
		var description string
		switch rapid.IntRange(0, 3).Draw(t, id+".owner") {
		case 0:
			description = "made by hand"
		case 1, 2:
			source := rapid.SampledFrom([]string{"corp", "hr", "retired"}).Draw(t, id+".source")
			group := rapid.SampledFrom(append(slices.Clone(propGroupIDs), "g-gone")).Draw(t, id+".group")
			description = WithMarker(rapid.SampledFrom([]string{"", "notes"}).Draw(t, id+".notes"), Marker{Source: source, GroupID: group})
		}
		members := subset(t, append(slices.Clone(userIDs), "ghost"), id+".members")
		cur.Teams = append(cur.Teams, AccountTeam{ID: id, Name: rapid.SampledFrom(propTeamNames).Draw(t, id+".name"),
			Description: description, MemberIDs: members})
	}
	return cur
}

func drawPolicy(t *rapid.T) Policy {
	onMissing := []string{config.OnMissingKeep, config.OnMissingEmpty, config.OnMissingDelete}
	pol := Policy{
		Rules: []config.TeamRule{
			{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", Adopt: rapid.Bool().Draw(t, "corp.adopt"),
				OnMissing: rapid.SampledFrom(onMissing).Draw(t, "corp.on_missing")},
			{Source: "hr", Match: "re:^team-", Name: "{{ upper .Name }}", Adopt: rapid.Bool().Draw(t, "hr.adopt"),
				OnMissing: rapid.SampledFrom(onMissing).Draw(t, "hr.on_missing")},
		},
		Scope:            rapid.SampledFrom([]string{config.ScopeTeamMembers, config.ScopeAll}).Draw(t, "scope"),
		DeleteUsers:      rapid.Bool().Draw(t, "delete"),
		Protect:          rapid.SampledFrom([][]string{nil, {"ann@*"}, {"*@x.test"}}).Draw(t, "protect"),
		PhoneRegion:      rapid.SampledFrom([]string{"", "US"}).Draw(t, "region"),
		AllowDestructive: rapid.Bool().Draw(t, "allow"),
	}
	if !pol.AllowDestructive {
		// Off half the time: over the limit every destructive change is
		// withheld, which hides what the other safety rules do.
		pol.MaxDestructive = rapid.SampledFrom([]int{0, 0, 0, 1, 2, 3}).Draw(t, "max_destructive")
	}
	return pol
}

// unmanaged reports whether the plan must leave team t alone: it carries
// no marker of a synced source and the plan does not adopt it.
func unmanaged(t AccountTeam, want Desired, p Plan) bool {
	if m, ok := ParseMarker(t.Description); ok && want.Sources[m.Source] {
		return false
	}
	return !slices.ContainsFunc(p.Changes, func(c Change) bool { return c.ID == t.ID && c.Description != "" })
}

// drawFailures picks, in half the cases, a random subset of the plan's
// writes for the fake to fail, by the key fakeAccount.fail takes. Team
// writes and user creates fail more often than user updates and deletes:
// a user delete that goes through after its team's write failed is what
// empties teams.
func drawFailures(t *rapid.T, p Plan) map[string]bool {
	fail := map[string]bool{}
	if !rapid.Bool().Draw(t, "inject") {
		return fail
	}
	for i, c := range p.Changes {
		odds := 2 // one in odds fails
		if c.Kind == KindUser && c.Op != OpCreate {
			odds = 8
		}
		if rapid.IntRange(1, odds).Draw(t, fmt.Sprintf("fail[%d]", i)) != 1 {
			continue
		}
		switch {
		case c.Op != OpCreate:
			fail[c.ID] = true
		case c.Kind == KindUser:
			fail[EmailKey(c.Name)] = true
		default:
			fail[c.Name] = true
		}
	}
	return fail
}

// TestPlanApplyPlanConverges: for random directories and accounts, planning,
// applying and planning again leaves nothing to do but what the safety
// limits still withhold, objects ptsync does not manage are untouched (but
// for the deleted users PagerTree takes out of every team), and no team
// that had members is left with none unless --allow-destructive. When the
// account fails some of the writes, no team is left with none either, and
// the next run, without failures, converges the same way.
func TestPlanApplyPlanConverges(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		snaps, cur, pol := drawDirectory(rt), drawAccount(rt), drawPolicy(rt)
		want, err := BuildDesired(snaps, pol)
		if err != nil {
			rt.Fatalf("BuildDesired: %v", err)
		}
		first := MakePlan(cur, want, pol)
		account := newFakeAccount(cur)
		account.fail = drawFailures(rt, first)
		res := Apply(t.Context(), account, cur, first, ApplyOptions{Concurrency: 3})
		for _, r := range res.Changes {
			if r.Outcome == OutcomeFailed && len(account.fail) == 0 {
				rt.Fatalf("%s failed: %s", brief(r.Change), r.Error)
			}
		}
		after := account.current()
		noTeamEmptied(rt, cur, after, pol, first)

		deleted := map[string]bool{} // users the run deleted
		for _, u := range cur.Users {
			if !slices.ContainsFunc(after.Users, func(a AccountUser) bool { return a.ID == u.ID }) {
				deleted[u.ID] = true
			}
		}
		for _, team := range cur.Teams {
			if !unmanaged(team, want, first) {
				continue
			}
			if n := account.written[team.ID]; n > 0 {
				rt.Fatalf("unmanaged team %s %q written %d times", team.ID, team.Name, n)
			}
			// Deleting a user takes them out of every team, unmanaged ones
			// included; nothing else about the team may change.
			untouched := team
			untouched.MemberIDs = slices.DeleteFunc(slices.Clone(team.MemberIDs), func(id string) bool { return deleted[id] })
			i := slices.IndexFunc(after.Teams, func(a AccountTeam) bool { return a.ID == team.ID })
			if i < 0 || !teamsEqual(after.Teams[i], untouched) {
				rt.Fatalf("unmanaged team %s %q changed", team.ID, team.Name)
			}
		}
		for _, u := range cur.Users {
			if (u.Admin || protected(EmailKey(u.Email), pol.Protect)) && account.written[u.ID] > 0 {
				rt.Fatalf("admin or protected user %s written", u.Email)
			}
		}

		if len(account.fail) > 0 {
			// The next run, with every write going through, is a run from
			// the state the failures left: it must converge like any other.
			account.fail = nil
			first, cur = MakePlan(after, want, pol), after
			for _, r := range Apply(t.Context(), account, cur, first, ApplyOptions{Concurrency: 3}).Changes {
				if r.Outcome == OutcomeFailed {
					rt.Fatalf("retry: %s failed: %s", brief(r.Change), r.Error)
				}
			}
			after = account.current()
			noTeamEmptied(rt, cur, after, pol, first)
		}
		second := MakePlan(after, want, pol)
		if len(second.Changes) > 0 {
			rt.Fatalf("second plan not empty:\n  %s\nfirst plan:\n  %s", strings.Join(briefs(second.Changes), "\n  "), strings.Join(briefs(first.Changes), "\n  "))
		}
		if got, wantWithheld := briefs(second.Withheld), briefs(first.Withheld); !slices.Equal(got, wantWithheld) {
			rt.Fatalf("withheld changed:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantWithheld, "\n  "))
		}
		if pol.AllowDestructive && len(second.Withheld) > 0 {
			rt.Fatalf("withheld under --allow-destructive: %v", briefs(second.Withheld))
		}
	})
}

// noTeamEmptied fails unless every team of before that had members and is
// still there in after has some, or the run allowed destruction.
func noTeamEmptied(t *rapid.T, before, after Current, pol Policy, p Plan) {
	if pol.AllowDestructive {
		return
	}
	for _, team := range before.Teams {
		i := slices.IndexFunc(after.Teams, func(a AccountTeam) bool { return a.ID == team.ID })
		if i >= 0 && hasMember(team, before.Users) && !hasMember(after.Teams[i], after.Users) {
			t.Fatalf("team %s %q had members and was left with none:\n  %s", team.ID, team.Name, strings.Join(briefs(p.Changes), "\n  "))
		}
	}
}

// hasMember reports whether any of the team's member ids names one of users.
func hasMember(t AccountTeam, users []AccountUser) bool {
	return slices.ContainsFunc(t.MemberIDs, func(id string) bool {
		return slices.ContainsFunc(users, func(u AccountUser) bool { return u.ID == id })
	})
}

func teamsEqual(a, b AccountTeam) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && slices.Equal(a.MemberIDs, b.MemberIDs)
}

// outsider is an email no random directory holds.
const outsider = "mallory@evil.test"

// mutatePlan edits a copy of a saved plan at random: half the time it keeps
// only a random subset of the changes (what a reviewer may do), then it
// makes up to three edits of the kinds an attacker makes to a plan file,
// and fixes the summary up so the file still reads. It reports whether it
// changed anything.
func mutatePlan(t *rapid.T, p Plan, cur Current) (Plan, bool) {
	p.Changes = slices.Clone(p.Changes)
	dropped := false
	if rapid.Bool().Draw(t, "subset") {
		kept := subset(t, p.Changes, "keep")
		dropped = len(kept) < len(p.Changes)
		p.Changes = kept
	}
	edits := rapid.IntRange(0, 3).Draw(t, "edits")
	teamChange := func(label string) int {
		var teams []int
		for i, c := range p.Changes {
			if c.Kind == KindTeam {
				teams = append(teams, i)
			}
		}
		if len(teams) == 0 {
			return -1
		}
		return rapid.SampledFrom(teams).Draw(t, label)
	}
	anyUser := func(label string) AccountUser {
		if len(cur.Users) == 0 {
			return AccountUser{ID: "pt-u0", Email: "ann@x.test"}
		}
		return rapid.SampledFrom(cur.Users).Draw(t, label)
	}
	anyTeam := func(label string) AccountTeam {
		if len(cur.Teams) == 0 {
			return AccountTeam{ID: "pt-t0", Name: "Hand Made"}
		}
		return rapid.SampledFrom(cur.Teams).Draw(t, label)
	}
	for e := range edits {
		label := fmt.Sprintf("edit[%d]", e)
		switch rapid.IntRange(0, 13).Draw(t, label) {
		case 0: // drop a change: a reviewer's subset
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".drop")
				p.Changes = slices.Delete(p.Changes, i, i+1)
			}
		case 1: // list a change twice
			if len(p.Changes) > 0 {
				p.Changes = append(p.Changes, rapid.SampledFrom(p.Changes).Draw(t, label+".dup"))
			}
		case 2: // apply what the limits withheld
			if len(p.Withheld) > 0 {
				c := rapid.SampledFrom(p.Withheld).Draw(t, label+".withheld")
				c.WithheldReason = ""
				p.Changes = append(p.Changes, c)
			}
		case 3: // delete any user: an admin, a protected one
			u := anyUser(label + ".user")
			p.Changes = append(p.Changes, Change{Op: OpDelete, Kind: KindUser, Name: EmailKey(u.Email), ID: u.ID, Destructive: 1})
		case 4: // delete any team: a hand-made one
			tm := anyTeam(label + ".team")
			p.Changes = append(p.Changes, Change{Op: OpDelete, Kind: KindTeam, Name: tm.Name, ID: tm.ID, Destructive: 1})
		case 5: // set any team's members
			tm := anyTeam(label + ".team")
			members := subset(t, append(slices.Clone(propEmails), outsider), label+".members")
			p.Changes = append(p.Changes, Change{Op: OpUpdate, Kind: KindTeam, Name: tm.Name, ID: tm.ID,
				Members: members, MembersSet: true, MembersAdded: members})
		case 6: // create a user the directory does not want
			p.Changes = append(p.Changes, Change{Op: OpCreate, Kind: KindUser, Name: outsider, UserName: "Mallory"})
		case 7: // add an outside email to a team write
			if i := teamChange(label + ".change"); i >= 0 {
				c := &p.Changes[i]
				c.Members = append(slices.Clone(c.Members), outsider)
				c.MembersAdded = append(slices.Clone(c.MembersAdded), outsider)
				c.MembersSet = true
			}
		case 8: // replace a team's members with an outside email
			if i := teamChange(label + ".change"); i >= 0 {
				c := &p.Changes[i]
				c.MembersRemoved = append(slices.Clone(c.MembersRemoved), c.Members...)
				c.Members, c.MembersAdded, c.MembersSet = []string{outsider}, []string{outsider}, true
			}
		case 9: // point a change at another object
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".change")
				if p.Changes[i].Kind == KindUser {
					p.Changes[i].ID = anyUser(label + ".user").ID
				} else {
					p.Changes[i].ID = anyTeam(label + ".team").ID
				}
			}
		case 10: // claim --allow-destructive
			p.Origin.AllowDestructive = !p.Origin.AllowDestructive
		case 11: // take a team over by writing a marker into it
			if i := teamChange(label + ".change"); i >= 0 && p.Changes[i].Op == OpUpdate {
				p.Changes[i].Description = mark("corp", rapid.SampledFrom(propGroupIDs).Draw(t, label+".group"))
			}
		case 12: // turn an update into a delete
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".change")
				if p.Changes[i].Op == OpUpdate {
					p.Changes[i].Op = OpDelete
				}
			}
		case 13: // keep ids the team does not hold
			if i := teamChange(label + ".change"); i >= 0 {
				p.Changes[i].KeepIDs = append(slices.Clone(p.Changes[i].KeepIDs), anyUser(label+".user").ID)
			}
		}
	}
	p.Summary = summarize(p.Changes)
	return p, dropped || edits > 0
}

// TestMutatedPlanIsRefusedOrHarmless: a saved plan, edited at random (a
// reviewer's subset, or an attacker's additions with the summary fixed
// up), is either refused by ApplyPlan's check against a fresh plan, or,
// applied, leaves every invariant true: no admin or protected user
// written, no team ptsync does not manage written, no team that had
// members left with none (unless the plan says --allow-destructive), and
// only emails the directory wants added as members. An unedited plan is
// never refused.
func TestMutatedPlanIsRefusedOrHarmless(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		snaps, cur, pol := drawDirectory(rt), drawAccount(rt), drawPolicy(rt)
		want, err := BuildDesired(snaps, pol)
		if err != nil {
			rt.Fatalf("BuildDesired: %v", err)
		}
		made := MakePlan(cur, want, pol)
		made.Origin.AllowDestructive = pol.AllowDestructive
		edited, mutated := mutatePlan(rt, made, cur)

		var file bytes.Buffer
		if err := RenderJSON(&file, edited); err != nil {
			rt.Fatal(err)
		}
		saved, err := ReadPlan(&file)
		if err != nil {
			if !mutated {
				rt.Fatalf("an unedited plan does not read back: %v", err)
			}
			return
		}
		freshPol := pol
		freshPol.AllowDestructive = saved.Origin.AllowDestructive
		fresh := MakePlan(cur, want, freshPol)
		toApply, err := VerifySaved(saved, fresh, cur)
		if err != nil {
			if !mutated {
				rt.Fatalf("an unedited plan was refused: %v", err)
			}
			var refused *RefusedError
			if !errors.As(err, &refused) || len(refused.Refusals) == 0 {
				rt.Fatalf("refused without saying which change: %v", err)
			}
			return
		}

		account := newFakeAccount(cur)
		Apply(t.Context(), account, cur, toApply, ApplyOptions{Concurrency: 3})
		after := account.current()
		for _, u := range cur.Users {
			if (u.Admin || protected(EmailKey(u.Email), pol.Protect)) && account.written[u.ID] > 0 {
				rt.Fatalf("admin or protected user %s written by %v", u.Email, briefs(toApply.Changes))
			}
		}
		for _, team := range cur.Teams {
			if unmanaged(team, want, fresh) && account.written[team.ID] > 0 {
				rt.Fatalf("unmanaged team %s %q written by %v", team.ID, team.Name, briefs(toApply.Changes))
			}
		}
		noTeamEmptied(rt, cur, after, freshPol, toApply)
		onlyWantedMembersAdded(rt, cur, after, want)
	})
}

// onlyWantedMembersAdded fails when a team of after holds a member it did
// not hold in before whose email the directory does not want.
func onlyWantedMembersAdded(t *rapid.T, before, after Current, want Desired) {
	emails := map[string]string{}
	for _, u := range after.Users {
		emails[u.ID] = EmailKey(u.Email)
	}
	had := map[string][]string{}
	for _, team := range before.Teams {
		had[team.ID] = team.MemberIDs
	}
	for _, team := range after.Teams {
		for _, id := range team.MemberIDs {
			if slices.Contains(had[team.ID], id) {
				continue
			}
			if _, ok := want.Users[emails[id]]; !ok {
				t.Fatalf("team %s %q gained member %s (%q), whom the directory does not want", team.ID, team.Name, id, emails[id])
			}
		}
	}
}
