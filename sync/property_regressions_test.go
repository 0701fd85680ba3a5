package sync_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// Regression tests of the engine bugs the property tests found on v4,
// each reduced to one deterministic case on the emulator through the real
// client and adapter; each failed before its fix.

// bugSource is a source that returns one snapshot.
type bugSource struct{ snap *sources.Snapshot }

func (s bugSource) Name() string { return s.snap.Source }

func (s bugSource) Fetch(context.Context) (*sources.Snapshot, error) { return s.snap, nil }

// bugDirectory is source corp with users and groups.
func bugDirectory(users []sources.User, groups ...sources.Group) *sources.Snapshot {
	s := sources.NewSnapshot("corp")
	for _, u := range users {
		s.Users[u.ID] = u
	}
	s.Groups = groups
	return s
}

// bugPolicy syncs corp's oncall-* groups to teams of the same name; on
// v4 owner@x.test is every team's admin.
func bugPolicy(api string) sync.Policy {
	pol := sync.Policy{
		Rules: []config.TeamRule{{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}},
		Scope: config.ScopeTeamMembers,
	}
	if api == pagertree.APIv4 {
		pol.TeamRoles, pol.PhonesE164, pol.TeamAdmins = true, true, []string{"owner@x.test"}
	}
	return pol
}

// bugOwner is the account user every v4 team's admin rule names.
var bugOwner = sync.AccountUser{ID: "usr_owner", Email: "owner@x.test", Name: "Owner"}

// bugEngine is an engine over the rig, syncing snap.
func bugEngine(r *propRig, snap *sources.Snapshot, pol sync.Policy) *sync.Engine {
	return &sync.Engine{Sources: []sources.Source{bugSource{snap}}, PagerTree: r.pt, Policy: pol, Concurrency: 1, Logger: zap.NewNop()}
}

// bugRun runs the engine once.
func bugRun(t *testing.T, e *sync.Engine) sync.Report {
	t.Helper()
	rep, err := e.RunOnce(t.Context(), sync.RunOptions{})
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return rep
}

// bugFailures are a run's failed changes, one line each.
func bugFailures(rep sync.Report) []string {
	var out []string
	for _, c := range rep.Result.Changes {
		if c.Outcome == sync.OutcomeFailed {
			out = append(out, propBrief(c.Change)+": "+c.Error)
		}
	}
	return out
}

// bugInSync fails unless the run planned nothing.
func bugInSync(t *testing.T, what string, rep sync.Report) {
	t.Helper()
	if len(rep.Plan.Changes) > 0 {
		t.Errorf("%s planned:\n  %s", what, strings.Join(propBriefs(rep.Plan.Changes), "\n  "))
	}
}

// a directory phone that does not put in E.164 (here, no
// phone_region) must not keep the person out of PagerTree. v4 takes only
// E.164, and refuses the create that carries the number: the user is
// never created, and their team neither (no member left).
func TestUserWithAPhoneNotInE164IsCreated(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			r := newPropRig(t, api, propAccount{Users: []sync.AccountUser{bugOwner}})
			e := bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "ann@x.test", Name: "Ann", Phone: "415-555-0101"}},
				sources.Group{ID: "g1", Name: "oncall-a", Members: []string{"u1"}}), bugPolicy(api))
			if failed := bugFailures(bugRun(t, e)); len(failed) > 0 {
				t.Errorf("first run failed:\n  %s", strings.Join(failed, "\n  "))
			}
			bugInSync(t, "second run", bugRun(t, e))
		})
	}
}

// an admin rule may name an account user by any of its
// emails. Here team_admins names lead's second email; the planner keys
// lead by the primary one, so it sees the admin missing and adds them
// again every run.
func TestV4AdminNamedByASecondEmailIsAddedOnce(t *testing.T) {
	lead := sync.AccountUser{ID: "usr_lead", Email: "lead@x.test", Emails: []string{"oncall-lead@x.test"}, Name: "Lead"}
	r := newPropRig(t, pagertree.APIv4, propAccount{Users: []sync.AccountUser{lead}})
	pol := bugPolicy(pagertree.APIv4)
	pol.TeamAdmins = []string{"oncall-lead@x.test"}
	e := bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "ann@x.test", Name: "Ann"}},
		sources.Group{ID: "g1", Name: "oncall-a", Members: []string{"u1"}}), pol)
	if failed := bugFailures(bugRun(t, e)); len(failed) > 0 {
		t.Fatalf("first run failed:\n  %s", strings.Join(failed, "\n  "))
	}
	bugInSync(t, "second run", bugRun(t, e))
}

// users.protect protects a person whatever email of theirs
// it names, as a directory email matches an account user on any of its
// emails. The planner checks the primary email only, so the protected
// address eve@x.test, ops's second email, is updated (the directory
// names eve otherwise) or deleted (eve left).
func TestV4ProtectedBySecondEmailIsNeverWritten(t *testing.T) {
	ops := sync.AccountUser{ID: "usr_ops", Email: "ops@x.test", Emails: []string{"eve@x.test"}, Name: "Ops"}
	for _, tc := range []struct {
		name  string
		users []sources.User
	}{
		{"in the directory", []sources.User{{ID: "u1", Email: "eve@x.test", Name: "Eve Other"}, {ID: "u2", Email: "ann@x.test", Name: "Ann"}}},
		{"left the directory", []sources.User{{ID: "u2", Email: "ann@x.test", Name: "Ann"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newPropRig(t, pagertree.APIv4, propAccount{Users: []sync.AccountUser{bugOwner, ops}})
			pol := bugPolicy(pagertree.APIv4)
			pol.Scope, pol.DeleteUsers, pol.Protect = config.ScopeAll, true, []string{"eve@*"}
			rep := bugRun(t, bugEngine(r, bugDirectory(tc.users), pol))
			for _, c := range rep.Plan.Changes {
				if c.ID == ops.ID {
					t.Errorf("planned %s", propBrief(c))
				}
			}
			if n := r.proxy.written(ops.ID); n > 0 {
				t.Errorf("%d writes to %s, whose email eve@x.test users.protect names", n, ops.ID)
			}
		})
	}
}

// the group of a managed team was recreated under a new id,
// and the rule takes its admins from the group's owners, of whom the new
// group has none. The team's only admin is one ptsync added, whom it
// keeps (a v4 team needs an admin): planAdmins reports the conflict and
// hands back no marker, updateTeam falls back to the team's old marker
// and, as this is a takeover, writes it back as it is. Every later run
// plans that same write, which changes nothing.
func TestV4TakeoverOfATeamWhoseAdminsPtsyncAddedConverges(t *testing.T) {
	ops := sync.AccountUser{ID: "usr_ops", Email: "ops@x.test", Name: "Ops"}
	old := sync.Marker{Source: "corp", GroupID: "g-old", Admins: []string{"ops@x.test"}}
	r := newPropRig(t, pagertree.APIv4, propAccount{
		Users: []sync.AccountUser{bugOwner, ops},
		Teams: []sync.AccountTeam{{ID: "tem_a", Name: "oncall-a", Description: old.String(), MemberIDs: []string{ops.ID}, AdminIDs: []string{ops.ID}}},
	})
	pol := bugPolicy(pagertree.APIv4)
	pol.TeamAdmins, pol.Rules[0].AdminsFromOwners = nil, true
	e := bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "ann@x.test", Name: "Ann"}},
		sources.Group{ID: "g-new", Name: "oncall-a", Members: []string{"u1"}}), pol)
	if failed := bugFailures(bugRun(t, e)); len(failed) > 0 {
		t.Fatalf("first run failed:\n  %s", strings.Join(failed, "\n  "))
	}
	bugInSync(t, "second run", bugRun(t, e))
}

// directory users fay and dan are, by their emails, one
// account user (fay@x.test, with dan@x.test as second email). The plan
// sets its name from each in turn, and keys it in teams by fay@x.test
// while team oncall-a wants dan@x.test: every run renames the user and
// rewrites the team (+dan -fay, one destructive change).
func TestV4TwoDirectoryUsersOfOneAccountUserConverge(t *testing.T) {
	fay := sync.AccountUser{ID: "usr_fay", Email: "fay@x.test", Emails: []string{"dan@x.test"}, Name: "Cat"}
	r := newPropRig(t, pagertree.APIv4, propAccount{Users: []sync.AccountUser{bugOwner, fay}})
	e := bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "fay@x.test", Name: "Ben Long"}, {ID: "u2", Email: "dan@x.test", Name: "Cat"}},
		sources.Group{ID: "g1", Name: "oncall-a", Members: []string{"u2"}}), bugPolicy(pagertree.APIv4))
	e.Policy.Scope = config.ScopeAll
	if failed := bugFailures(bugRun(t, e)); len(failed) > 0 {
		t.Fatalf("first run failed:\n  %s", strings.Join(failed, "\n  "))
	}
	bugInSync(t, "second run", bugRun(t, e))
}

// a team create none of whose members has a user (the
// only member's create failed) is sent with no member. A team update in
// that case is not written ("none of its members has a PagerTree user");
// a create should not be either: v4 refuses it, v3 makes an on-call team
// that pages no one.
func TestTeamCreateWithoutAMemberWithAUserIsNotSent(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			r := newPropRig(t, api, propAccount{Users: []sync.AccountUser{bugOwner}})
			r.proxy.setFailures(map[string]bool{"POST user ann@x.test": true})
			bugRun(t, bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "ann@x.test", Name: "Ann"}},
				sources.Group{ID: "g1", Name: "oncall-a", Members: []string{"u1"}}), bugPolicy(api)))
			if refused := r.proxy.refusals(); len(refused) > 0 {
				t.Errorf("PagerTree refused:\n  %s", strings.Join(refused, "\n  "))
			}
			for _, tm := range r.truth().Teams {
				t.Errorf("team %q created with members %v", tm.Name, tm.MemberIDs)
			}
		})
	}
}

// dan, the only admin of team oncall-a (one ptsync added),
// left the directory; the plan makes owner admin in dan's place and
// deletes dan. The team's write fails. Apply holds back a user delete
// whose team was not written only when the user is a member of it, so
// dan's delete is sent, and PagerTree refuses it (the team's only admin).
func TestV4AdminDeleteWaitsForTheTeamWrite(t *testing.T) {
	cat := sync.AccountUser{ID: "usr_cat", Email: "cat@x.test", Name: "Cat"}
	dan := sync.AccountUser{ID: "usr_dan", Email: "dan@x.test", Name: "Dan"}
	r := newPropRig(t, pagertree.APIv4, propAccount{
		Users: []sync.AccountUser{bugOwner, cat, dan},
		Teams: []sync.AccountTeam{{ID: "tem_a", Name: "oncall-a", Description: sync.Marker{Source: "corp", GroupID: "g1", Admins: []string{"dan@x.test"}}.String(),
			MemberIDs: []string{cat.ID}, AdminIDs: []string{dan.ID}}},
	})
	pol := bugPolicy(pagertree.APIv4)
	pol.DeleteUsers = true
	r.proxy.setFailures(map[string]bool{"PUT tem_a": true})
	rep := bugRun(t, bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "cat@x.test", Name: "Cat"}},
		sources.Group{ID: "g1", Name: "oncall-a", Members: []string{"u1"}}), pol))
	if !slices.ContainsFunc(rep.Plan.Changes, func(c sync.Change) bool { return c.Op == sync.OpDelete && c.ID == dan.ID }) {
		t.Fatalf("the plan does not delete dan:\n  %s", strings.Join(propBriefs(rep.Plan.Changes), "\n  "))
	}
	if n := r.proxy.written(dan.ID); n > 0 {
		t.Errorf("dan's delete was sent though team oncall-a, whose only admin dan is, was not written; PagerTree refused:\n  %s",
			strings.Join(r.proxy.refusals(), "\n  "))
	}
}

// team oncall-a's group is gone (on_missing: delete) and
// its only member eve left the directory. A plan made with
// --allow-destructive deletes both; a reviewer keeps only eve's delete.
// ApplyPlan checks that a subset empties no team only without
// --allow-destructive, and never that it leaves every team an admin, so
// it sends the delete, which v4 refuses (eve is the team's only member)
// whatever the flags. The subset should be refused before anything is
// sent, as MakePlan withholds such a delete on v4 even with
// --allow-destructive.
func TestV4SavedSubsetThatPagerTreeWouldRefuseIsRefused(t *testing.T) {
	eve := sync.AccountUser{ID: "usr_eve", Email: "eve@x.test", Name: "Eve"}
	r := newPropRig(t, pagertree.APIv4, propAccount{
		Users: []sync.AccountUser{bugOwner, eve},
		Teams: []sync.AccountTeam{{ID: "tem_a", Name: "oncall-a", Description: sync.Marker{Source: "corp", GroupID: "g-gone"}.String(),
			MemberIDs: []string{eve.ID}, AdminIDs: []string{bugOwner.ID}}},
	})
	pol := bugPolicy(pagertree.APIv4)
	pol.DeleteUsers, pol.Rules[0].OnMissing = true, config.OnMissingDelete
	e := bugEngine(r, bugDirectory([]sources.User{{ID: "u1", Email: "ann@x.test", Name: "Ann"}},
		sources.Group{ID: "g1", Name: "oncall-b", Members: []string{"u1"}}), pol)
	prep, err := e.Prepare(t.Context(), sync.RunOptions{AllowDestructive: true})
	if err != nil {
		t.Fatal(err)
	}
	saved := prep.Plan
	saved.Origin.AllowDestructive = true
	saved.Changes = slices.DeleteFunc(slices.Clone(saved.Changes), func(c sync.Change) bool { return c.ID != eve.ID })
	if len(saved.Changes) != 1 || saved.Changes[0].Op != sync.OpDelete {
		t.Fatalf("the plan does not delete eve:\n  %s", strings.Join(propBriefs(prep.Plan.Changes), "\n  "))
	}
	saved.Summary = propSummary(saved.Changes)
	_, err = e.ApplyPlan(t.Context(), saved, sync.RunOptions{})
	if refused := r.proxy.refusals(); len(refused) > 0 {
		t.Errorf("PagerTree refused:\n  %s", strings.Join(refused, "\n  "))
	}
	if !errors.Is(err, sync.ErrPlanRefused) {
		t.Errorf("ApplyPlan = %v, want the subset refused", err)
	}
}
