package sync_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sync"
)

// savePlan makes a plan as ptsync plan --out does and reads it back as
// ptsync apply does.
func savePlan(t *testing.T, r *rig, opts sync.RunOptions) sync.Plan {
	t.Helper()
	prep, err := r.engine.Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	prep.Plan.Origin.AllowDestructive = prep.Policy.AllowDestructive
	return roundTrip(t, prep.Plan)
}

// roundTrip writes p as a plan file and reads it back, failing the test
// when the file does not read.
func roundTrip(t *testing.T, p sync.Plan) sync.Plan {
	t.Helper()
	var buf bytes.Buffer
	if err := sync.RenderJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	read, err := sync.ReadPlan(&buf)
	if err != nil {
		t.Fatalf("the plan file does not read: %v", err)
	}
	return read
}

// tamper edits a copy of p and fixes its summary up, as an attacker who
// wants the file to read would.
func tamper(t *testing.T, p sync.Plan, edit func(p *sync.Plan)) sync.Plan {
	t.Helper()
	p.Changes = slices.Clone(p.Changes)
	edit(&p)
	p.Summary = sync.Summary{}
	for _, c := range p.Changes {
		switch c.Op {
		case sync.OpCreate:
			p.Summary.Create++
		case sync.OpUpdate:
			p.Summary.Update++
		case sync.OpDelete:
			p.Summary.Delete++
		}
	}
	return roundTrip(t, p)
}

// change finds the plan's change of kind and name.
func change(t *testing.T, p sync.Plan, kind sync.Kind, name string) (int, sync.Change) {
	t.Helper()
	i := slices.IndexFunc(p.Changes, func(c sync.Change) bool { return c.Kind == kind && c.Name == name })
	if i < 0 {
		t.Fatalf("the plan has no %s %s change", kind, name)
	}
	return i, p.Changes[i]
}

// leaverRig is a synced account (corp's teams, the admin owner, a
// protected user, a hand-made team) whose directory then changed: bob left
// and eve joined payments. Its honest plan creates eve, updates both teams
// and deletes bob.
func leaverRig(t *testing.T, api string) (*rig, userView) {
	t.Helper()
	pol := defaultPolicy()
	pol.Protect = []string{"boss@example.com"}
	r := newAPIRig(t, api, corp(), pol)
	boss := r.addUser(t, userView{Name: "Boss", Email: "boss@example.com"})
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("first sync: exit %d", code)
	}
	dir := corp().without("p2")
	dir.Users = append(dir.Users, person{ID: "p5", Email: "eve@example.com", Name: "Eve Evans"})
	dir.Groups[0].Members = append(dir.Groups[0].Members, "p5")
	r.write(dir)
	return r, boss
}

func TestApplyPlanRefusesTamperedPlans(t *testing.T) {
	const outsider = "mallory@evil.test"
	createOutsider := sync.Change{Op: sync.OpCreate, Kind: sync.KindUser, Name: outsider, UserName: "Mallory"}
	tests := []struct {
		name string
		edit func(p *sync.Plan, r *rig, boss userView)
		want []string // each refused change, as its line starts
	}{
		{
			name: "delete the account owner, an admin",
			edit: func(p *sync.Plan, r *rig, _ userView) {
				p.Changes = append(p.Changes, sync.Change{Op: sync.OpDelete, Kind: sync.KindUser, Name: "owner@example.com", ID: r.owner.ID, Destructive: 1})
			},
			want: []string{"- user owner@example.com: not in a fresh plan"},
		},
		{
			name: "delete a protected user",
			edit: func(p *sync.Plan, _ *rig, boss userView) {
				p.Changes = append(p.Changes, sync.Change{Op: sync.OpDelete, Kind: sync.KindUser, Name: "boss@example.com", ID: boss.ID, Destructive: 1})
			},
			want: []string{"- user boss@example.com: not in a fresh plan"},
		},
		{
			name: "delete a hand-made team",
			edit: func(p *sync.Plan, r *rig, _ userView) {
				p.Changes = append(p.Changes, sync.Change{Op: sync.OpDelete, Kind: sync.KindTeam, Name: "facilities", ID: r.unmanaged.ID, Destructive: 1})
			},
			want: []string{"- team facilities: not in a fresh plan"},
		},
		{
			name: "take a hand-made team over",
			edit: func(p *sync.Plan, r *rig, _ userView) {
				p.Changes = append(p.Changes, sync.Change{Op: sync.OpUpdate, Kind: sync.KindTeam, Name: "facilities", ID: r.unmanaged.ID,
					Description: sync.Marker{Source: "corp", GroupID: "g-pay"}.String(), Fields: []sync.FieldChange{{Field: "description"}}})
			},
			want: []string{"~ team facilities: not in a fresh plan"},
		},
		{
			name: "add an outside email to a managed team",
			edit: func(p *sync.Plan, _ *rig, _ userView) {
				i, c := change(t, *p, sync.KindTeam, "payments")
				c.Members = append(slices.Clone(c.Members), outsider)
				c.MembersAdded = append(slices.Clone(c.MembersAdded), outsider)
				p.Changes[i] = c
				p.Changes = append(p.Changes, createOutsider)
			},
			want: []string{"~ team payments: differs from a fresh plan's in members, members_added", "+ user mallory@evil.test: not in a fresh plan"},
		},
		{
			name: "replace a managed team's members with an outside email",
			edit: func(p *sync.Plan, _ *rig, _ userView) {
				i, c := change(t, *p, sync.KindTeam, "db")
				c.MembersRemoved = []string{"bob@example.com", "cat@example.com"}
				c.Members, c.MembersAdded, c.Destructive = []string{outsider}, []string{outsider}, 2
				p.Changes[i] = c
				p.Changes = append(p.Changes, createOutsider)
			},
			want: []string{"~ team db: differs from a fresh plan's in members, members_added, members_removed, destructive", "+ user mallory@evil.test: not in a fresh plan"},
		},
		{
			name: "change a new user's name",
			edit: func(p *sync.Plan, _ *rig, _ userView) {
				i, c := change(t, *p, sync.KindUser, "eve@example.com")
				c.UserName = "Eve (CEO)"
				p.Changes[i] = c
			},
			want: []string{"+ user eve@example.com: differs from a fresh plan's in user_name"},
		},
		{
			name: "list a change twice",
			edit: func(p *sync.Plan, _ *rig, _ userView) {
				_, c := change(t, *p, sync.KindUser, "bob@example.com")
				p.Changes = append(p.Changes, c)
			},
			want: []string{"- user bob@example.com: listed twice"},
		},
		{
			name: "all of it at once, as the issue's edited plan did",
			edit: func(p *sync.Plan, r *rig, _ userView) {
				i, c := change(t, *p, sync.KindTeam, "payments")
				c.MembersRemoved = []string{"ann@example.com", "bob@example.com"}
				c.Members, c.MembersAdded = []string{outsider}, []string{outsider}
				p.Changes[i] = c
				p.Changes = append(p.Changes, createOutsider,
					sync.Change{Op: sync.OpDelete, Kind: sync.KindUser, Name: "owner@example.com", ID: r.owner.ID, Destructive: 1},
					sync.Change{Op: sync.OpDelete, Kind: sync.KindTeam, Name: "facilities", ID: r.unmanaged.ID, Destructive: 1})
			},
			want: []string{
				"~ team payments: differs from a fresh plan's in members, members_added, members_removed",
				"+ user mallory@evil.test: not in a fresh plan",
				"- user owner@example.com: not in a fresh plan",
				"- team facilities: not in a fresh plan",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachAPI(t, func(t *testing.T, api string) {
				r, boss := leaverRig(t, api)
				honest := savePlan(t, r, sync.RunOptions{})
				before := r.state()
				p := tamper(t, honest, func(p *sync.Plan) { tt.edit(p, r, boss) })
				r.emu.ResetStats()

				rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
				if st := r.emu.Stats(); st.WriteAttempts != 0 {
					t.Errorf("a tampered plan sent %d write requests", st.WriteAttempts)
				}
				if !reflect.DeepEqual(r.state(), before) {
					t.Error("a tampered plan changed PagerTree")
				}
				var refused *sync.RefusedError
				if !errors.Is(err, sync.ErrPlanRefused) || !errors.As(err, &refused) {
					t.Fatalf("ApplyPlan error = %v, want a *RefusedError", err)
				}
				var got []string
				for _, r := range refused.Refusals {
					got = append(got, r.String())
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("refusals =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasSuffix(msg, "PagerTree or the directory changed since, or the file was edited; make a new plan with ptsync plan --out") {
					t.Errorf("error is not one line saying what to do: %q", msg)
				}
				if sync.ExitCode(rep, err) != sync.ExitError {
					t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
				}

				// The honest plan still applies: the refusal was the edit's.
				if rep, err := r.engine.ApplyPlan(context.Background(), honest, sync.RunOptions{}); err != nil || rep.Result.Counts != (sync.Counts{Applied: 4}) {
					t.Errorf("the honest plan: %v, counts %+v", err, rep.Result.Counts)
				}
			})
		})
	}
}

func TestApplyPlanWithholdsWhatAFreshPlanWithholds(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r, _ := leaverRig(t, api)
		r.engine.Policy.MaxDestructive = 1
		honest := savePlan(t, r, sync.RunOptions{})
		if len(honest.Withheld) != 3 {
			t.Fatalf("withheld %d changes, want bob's removal from two teams and his delete", len(honest.Withheld))
		}

		moved := tamper(t, honest, func(p *sync.Plan) {
			for _, c := range p.Withheld {
				c.WithheldReason = ""
				p.Changes = append(p.Changes, c)
			}
		})
		r.emu.ResetStats()
		_, err := r.engine.ApplyPlan(context.Background(), moved, sync.RunOptions{})
		if !errors.Is(err, sync.ErrPlanRefused) || !strings.Contains(err.Error(), "- user bob@example.com: withheld by the safety limits in a fresh plan: 3 destructive changes exceed safety.max_destructive (1)") {
			t.Errorf("withheld changes moved into the plan: error %v", err)
		}
		if st := r.emu.Stats(); st.WriteAttempts != 0 {
			t.Errorf("the refused plan sent %d write requests", st.WriteAttempts)
		}

		rep, err := r.engine.ApplyPlan(context.Background(), honest, sync.RunOptions{})
		if err != nil || rep.Result.Counts != (sync.Counts{Applied: 2, Withheld: 3}) || sync.ExitCode(rep, err) != sync.ExitWithheld {
			t.Errorf("the honest plan: %v, counts %+v, want 2 applied and 3 withheld (exit 3)", err, rep.Result.Counts)
		}
		if got := r.state().Teams["db"]; !reflect.DeepEqual(got, []string{"bob@example.com", "cat@example.com"}) {
			t.Errorf("db = %v, want bob kept: his removal was withheld", got)
		}
	})
}

// A plan made with --allow-destructive records it, and apply plans afresh
// the same way: the changes the limits would withhold are applied.
func TestApplyPlanMadeWithAllowDestructive(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r, _ := leaverRig(t, api)
		r.engine.Policy.MaxDestructive = 1
		p := savePlan(t, r, sync.RunOptions{AllowDestructive: true})
		if !p.Origin.AllowDestructive || len(p.Withheld) != 0 {
			t.Fatalf("origin %+v, %d withheld: want --allow-destructive recorded and nothing withheld", p.Origin, len(p.Withheld))
		}
		rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
		if err != nil || rep.Result.Counts != (sync.Counts{Applied: 4}) {
			t.Fatalf("ApplyPlan: %v, counts %+v", err, rep.Result.Counts)
		}
		if _, ok := r.state().Users["bob@example.com"]; ok {
			t.Error("bob was not deleted")
		}
	})
}

func TestApplyPlanAppliesAReviewedSubset(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r, _ := leaverRig(t, api)
		honest := savePlan(t, r, sync.RunOptions{})
		part := tamper(t, honest, func(p *sync.Plan) {
			p.Changes = slices.DeleteFunc(p.Changes, func(c sync.Change) bool { return c.Name == "eve@example.com" || c.Name == "payments" })
		})
		rep, err := r.engine.ApplyPlan(context.Background(), part, sync.RunOptions{})
		if err != nil || rep.Result.Counts != (sync.Counts{Applied: 2}) {
			t.Fatalf("ApplyPlan: %v, counts %+v", err, rep.Result.Counts)
		}
		want := map[string][]string{"facilities": {"owner@example.com"}, "payments": {"ann@example.com"}, "db": {"cat@example.com"}}
		if got := r.state().Teams; !reflect.DeepEqual(got, want) {
			t.Errorf("teams = %v, want %v (bob out, eve not yet in)", got, want)
		}
	})
}

// Dropping a team's membership write but keeping the user deletes it
// counted on would empty the team: refused, though each change is in a
// fresh plan.
func TestApplyPlanRefusesAPartThatEmptiesATeam(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r, _ := leaverRig(t, api)
		dir := corp().without("p2").without("p3")
		dir.Groups[1].Members = []string{"p1"} // db: ann replaces bob and cat
		r.write(dir)
		honest := savePlan(t, r, sync.RunOptions{})
		part := tamper(t, honest, func(p *sync.Plan) {
			p.Changes = slices.DeleteFunc(p.Changes, func(c sync.Change) bool { return c.Name == "db" })
		})
		r.emu.ResetStats()
		_, err := r.engine.ApplyPlan(context.Background(), part, sync.RunOptions{})
		want := "saved plan refused; nothing was written: ~ team db: applying only part of a fresh plan would leave it with no members (keep its membership change, or drop the user deletes that empty it); make a new plan with ptsync plan --out"
		if err == nil || err.Error() != want {
			t.Errorf("error = %v\nwant    %s", err, want)
		}
		if st := r.emu.Stats(); st.WriteAttempts != 0 {
			t.Errorf("the refused plan sent %d write requests", st.WriteAttempts)
		}
		if rep, err := r.engine.ApplyPlan(context.Background(), honest, sync.RunOptions{}); err != nil || rep.Result.Counts.Failed != 0 {
			t.Errorf("the whole plan: %v, counts %+v", err, rep.Result.Counts)
		}
	})
}

// A group whose name would render a team name with a newline fails the run
// before any request that writes, naming the group.
func TestGroupNameWithControlCharactersFailsTheRun(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		dir := corp()
		dir.Groups = append(dir.Groups, group{ID: "g-ops", Name: "oncall-ops\n\nNo changes. PagerTree is in sync.", Members: []string{"p1"}})
		r := newAPIRig(t, api, dir, defaultPolicy())
		rep, err := r.engine.RunOnce(context.Background(), sync.RunOptions{})
		want := `desired state: teams[0].name for group "oncall-ops\n\nNo changes. PagerTree is in sync." (id "g-ops") of source "corp" renders team name "ops\n\nNo changes. PagerTree is in sync.", which holds control characters`
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error = %v, want it to start with %s", err, want)
		}
		if w := r.rec.writes(); len(w) != 0 {
			t.Errorf("write requests: %v", w)
		}
		if sync.ExitCode(rep, err) != sync.ExitError {
			t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
		}
	})
}
