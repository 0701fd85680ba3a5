package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

func TestRunOnceSyncsThenMakesNoWrites(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		rep, code := r.run(sync.RunOptions{})
		if code != sync.ExitOK {
			t.Fatalf("exit code %d, result %+v", code, rep.Result)
		}
		want := r.inStep()
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Errorf("PagerTree after the first sync =\n%+v\nwant\n%+v", got, want)
		}
		if rep.Result.Counts != (sync.Counts{Applied: 5}) {
			t.Errorf("counts = %+v, want 5 applied (3 users, 2 teams)", rep.Result.Counts)
		}
		createUser, createTeam := "POST "+r.userRoute(), "POST "+r.teamRoute()
		if got := r.rec.writes(); !reflect.DeepEqual(got, []string{createUser, createUser, createUser, createTeam, createTeam}) {
			t.Errorf("writes = %v: want the users created before the teams, one request each", got)
		}
		marker := "[managed by ptsync: source=corp group=g-pay]"
		if r.v4() {
			// v4: the marker also records the admin ptsync added
			// (pagertree.team_admins), so it can remove only its own.
			marker = "[managed by ptsync: source=corp group=g-pay admins=owner@example.com]"
		}
		if d := r.team("payments").Description; d != marker {
			t.Errorf("payments description = %q, want the marker %q", d, marker)
		}
		if got := r.team("facilities"); !reflect.DeepEqual(got, r.unmanaged) {
			t.Errorf("the unmanaged team changed:\n%+v\nwas\n%+v", got, r.unmanaged)
		}
		if rep.RunID == "" || !reflect.DeepEqual(rep.Sources, []sync.SourceReport{{Name: "corp", Users: 4, Groups: 3, Skipped: map[string]int{}}}) {
			t.Errorf("report run_id %q sources %+v", rep.RunID, rep.Sources)
		}

		r.emu.ResetStats()
		rep, code = r.run(sync.RunOptions{})
		st := r.emu.Stats()
		if code != sync.ExitOK || !rep.Plan.InSync() || len(rep.Result.Changes) != 0 {
			t.Errorf("second run: exit %d, plan %+v", code, rep.Plan)
		}
		if st.WriteAttempts != 0 || st.Writes != 0 {
			t.Errorf("second run made %d write requests (%d writes), want 0", st.WriteAttempts, st.Writes)
		}
		if want := map[string]int{"GET " + r.userRoute(): 1, "GET " + r.teamRoute(): 1}; !reflect.DeepEqual(st.Requests, want) {
			t.Errorf("second run requests = %v, want exactly %v", st.Requests, want)
		}
	})
}

// TestConvergedRunCostsOnlyListPages: ceil(N/100) list requests per
// collection and nothing else, at a size that needs several pages.
func TestConvergedRunCostsOnlyListPages(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		dir := directory{}
		for g := range 120 {
			dir.Groups = append(dir.Groups, group{ID: fmt.Sprintf("g%03d", g), Name: fmt.Sprintf("oncall-%03d", g)})
		}
		for i := range 250 {
			id := fmt.Sprintf("p%03d", i)
			dir.Users = append(dir.Users, person{ID: id, Email: id + "@example.com", Name: "Person " + id})
			g := &dir.Groups[i%120]
			g.Members = append(g.Members, id)
		}
		r := newAPIRig(t, api, dir, defaultPolicy())
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		r.emu.ResetStats()
		rep, code := r.run(sync.RunOptions{})
		st := r.emu.Stats()
		// 251 users (the owner too) and 121 teams (the unmanaged one too).
		want := map[string]int{"GET " + r.userRoute(): 3, "GET " + r.teamRoute(): 2}
		if code != sync.ExitOK || !rep.Plan.InSync() || st.Writes != 0 || !reflect.DeepEqual(st.Requests, want) {
			t.Errorf("converged run: exit %d, in sync %v, writes %d, requests %v; want 0, true, 0, %v",
				code, rep.Plan.InSync(), st.Writes, st.Requests, want)
		}
		if got, want := len(r.teams()), 121; got != want {
			t.Errorf("%d teams in PagerTree, want %d: every group has a member", got, want)
		}
	})
}

func TestLeaverIsRemoved(t *testing.T) {
	tests := []struct {
		name  string
		leave func(directory) directory
	}{
		{"removed from the directory", func(d directory) directory { return d.without("p2") }},
		{"disabled in the directory", func(d directory) directory {
			d.Users[1].Disabled = true
			return d
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachAPI(t, func(t *testing.T, api string) {
				r := newAPIRig(t, api, corp(), defaultPolicy())
				if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
					t.Fatalf("first run exit %d", code)
				}
				payments, db := r.team("payments"), r.team("db")
				r.write(tt.leave(corp()))
				rep, code := r.run(sync.RunOptions{})
				if code != sync.ExitOK {
					t.Fatalf("exit %d, result %+v", code, rep.Result)
				}
				st := r.state()
				if _, ok := st.Users["bob@example.com"]; ok {
					t.Error("bob is still a PagerTree user")
				}
				if want := []string{"ann@example.com"}; !reflect.DeepEqual(st.Teams["payments"], want) {
					t.Errorf("payments = %v, want %v", st.Teams["payments"], want)
				}
				if want := []string{"cat@example.com"}; !reflect.DeepEqual(st.Teams["db"], want) {
					t.Errorf("db = %v, want %v", st.Teams["db"], want)
				}
				if got := r.team("payments"); got.ID != payments.ID || got.ScheduleID != payments.ScheduleID {
					t.Errorf("payments was replaced: %+v, was %+v", got, payments)
				}
				if got := r.team("db"); got.ScheduleID != db.ScheduleID {
					t.Errorf("db schedule changed")
				}
				if want := r.withOwnerAdmins(state{Teams: st.Teams}).Admins; !reflect.DeepEqual(st.Admins, want) {
					t.Errorf("admins = %v, want %v (the owner stays every team's admin)", st.Admins, want)
				}
				if rep.Result.Counts != (sync.Counts{Applied: 3}) {
					t.Errorf("counts = %+v, want 3 applied (2 team updates, 1 user delete)", rep.Result.Counts)
				}
			})
		})
	}
}

// TestLeaverAloneOnAHandMadeTeamIsKept: PagerTree takes a deleted user out
// of every team, so deleting the only member of a team ptsync does not
// manage would empty it. That delete is withheld; the leaver's managed
// memberships still go.
func TestLeaverAloneOnAHandMadeTeamIsKept(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		bob := r.user(t, "bob@example.com")
		// On v4 the team needs an admin: the owner, so that only its
		// members are what bob's delete would empty.
		night := r.addTeam(t, teamView{Name: "night-shift", Description: "made by hand", MemberIDs: []string{bob.ID}, AdminIDs: []string{r.owner.ID}})
		r.write(corp().without("p2"))

		rep, code := r.run(sync.RunOptions{})
		if code != sync.ExitWithheld {
			t.Fatalf("exit %d, want %d; result %+v", code, sync.ExitWithheld, rep.Result)
		}
		want := r.withOwnerAdmins(state{
			Users: map[string]string{"owner@example.com": "Owner|", "ann@example.com": "Ann Archer|+14155550101",
				"bob@example.com": "Bob Baker|", "cat@example.com": "Cat Cole|+442079460958"},
			Teams: map[string][]string{"facilities": {"owner@example.com"}, "night-shift": {"bob@example.com"},
				"payments": {"ann@example.com"}, "db": {"cat@example.com"}},
		})
		if st := r.state(); !reflect.DeepEqual(st, want) {
			t.Errorf("PagerTree =\n%+v\nwant\n%+v", st, want)
		}
		if got := r.team("night-shift"); !reflect.DeepEqual(got, night) {
			t.Errorf("the hand-made team changed:\n%+v\nwas\n%+v", got, night)
		}
		withheld := rep.Result.Changes[len(rep.Result.Changes)-1]
		if rep.Result.Counts != (sync.Counts{Applied: 2, Withheld: 1}) || withheld.Name != "bob@example.com" ||
			!strings.Contains(withheld.Error, `leave team "night-shift" with no members`) {
			t.Errorf("counts %+v, last change %+v: want bob's delete withheld for night-shift", rep.Result.Counts, withheld)
		}

		rep, code = r.run(sync.RunOptions{AllowDestructive: true})
		if r.v4() {
			// v4: PagerTree refuses a team with no member, so the delete
			// that would empty night-shift stays withheld whatever
			// --allow-destructive says, and nothing changes.
			withheld := rep.Result.Changes[len(rep.Result.Changes)-1]
			if code != sync.ExitWithheld || rep.Result.Counts != (sync.Counts{Withheld: 1}) || withheld.Name != "bob@example.com" ||
				!strings.Contains(withheld.Error, `leave team "night-shift" with no members`) {
				t.Errorf("--allow-destructive run: exit %d, counts %+v, last change %+v; want bob's delete still withheld (exit %d)",
					code, rep.Result.Counts, withheld, sync.ExitWithheld)
			}
			if st := r.state(); !reflect.DeepEqual(st, want) {
				t.Errorf("after --allow-destructive PagerTree =\n%+v\nwant it unchanged:\n%+v", st, want)
			}
			if got := r.team("night-shift"); !reflect.DeepEqual(got, night) {
				t.Errorf("the hand-made team changed:\n%+v\nwas\n%+v", got, night)
			}
			return
		}
		if code != sync.ExitOK {
			t.Fatalf("--allow-destructive run: exit %d", code)
		}
		want.Teams["night-shift"] = []string{}
		delete(want.Users, "bob@example.com")
		if st := r.state(); !reflect.DeepEqual(st, want) {
			t.Errorf("after --allow-destructive PagerTree =\n%+v\nwant\n%+v", st, want)
		}
	})
}

// TestLeaverWhoIsTheOnlyAdminOfAHandMadeTeam: on v4 a team needs an
// admin, and PagerTree takes a deleted account user out of every team, so
// deleting a hand-made team's only admin is withheld whatever
// --allow-destructive says. v3 teams have no admins: there the leaver is
// deleted.
func TestLeaverWhoIsTheOnlyAdminOfAHandMadeTeam(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		bob := r.user(t, "bob@example.com")
		// The owner is its member, so only its admin is what bob's delete
		// would take away (v3 ignores the admins).
		night := r.addTeam(t, teamView{Name: "night-shift", Description: "made by hand", MemberIDs: []string{r.owner.ID}, AdminIDs: []string{bob.ID}})
		r.write(corp().without("p2"))

		for _, opts := range []sync.RunOptions{{}, {AllowDestructive: true}} {
			rep, code := r.run(opts)
			st := r.state()
			if !r.v4() {
				if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{Applied: 3}) {
					t.Errorf("%+v: exit %d, counts %+v; want bob's memberships and bob gone (3 applied)", opts, code, rep.Result.Counts)
				}
				if _, ok := st.Users["bob@example.com"]; ok {
					t.Errorf("%+v: bob is still a PagerTree user", opts)
				}
				break // converged: a second run has nothing to withhold
			}
			withheld := rep.Result.Changes[len(rep.Result.Changes)-1]
			if code != sync.ExitWithheld || rep.Result.Counts.Withheld != 1 || rep.Result.Counts.Failed != 0 || withheld.Name != "bob@example.com" ||
				!strings.Contains(withheld.Error, `leave team "night-shift" with no admin`) {
				t.Errorf("%+v: exit %d, counts %+v, last change %+v; want bob's delete withheld for night-shift's admin", opts, code, rep.Result.Counts, withheld)
			}
			if _, ok := st.Users["bob@example.com"]; !ok {
				t.Errorf("%+v: bob, night-shift's only admin, was deleted", opts)
			}
			if want := []string{"bob@example.com"}; !reflect.DeepEqual(st.Admins["night-shift"], want) {
				t.Errorf("%+v: night-shift admins = %v, want %v", opts, st.Admins["night-shift"], want)
			}
			if want := []string{"ann@example.com"}; !reflect.DeepEqual(st.Teams["payments"], want) {
				t.Errorf("%+v: payments = %v, want bob's managed membership gone: %v", opts, st.Teams["payments"], want)
			}
		}
		if got := r.team("night-shift"); !reflect.DeepEqual(got, night) {
			t.Errorf("the hand-made team changed:\n%+v\nwas\n%+v", got, night)
		}
	})
}

func TestGroupRenameRenamesTeamInPlace(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		before := r.team("db")
		dir := corp()
		dir.Groups[1].Name = "oncall-database"
		r.write(dir)
		r.rec.reset()
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("exit %d", code)
		}
		after := r.team("database")
		if after.ID != before.ID || after.ScheduleID != before.ScheduleID || !reflect.DeepEqual(after.MemberIDs, before.MemberIDs) ||
			!reflect.DeepEqual(after.AdminIDs, before.AdminIDs) || after.Description != before.Description {
			t.Errorf("renamed team = %+v, was %+v: want same id, schedule, members, admins and marker", after, before)
		}
		if got, want := r.rec.writes(), []string{"PUT " + r.teamRoute() + "/" + before.ID}; !reflect.DeepEqual(got, want) {
			t.Errorf("writes = %v, want %v", got, want)
		}
	})
}

func TestDestructiveChangesWithheldOverTheLimit(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		pol := defaultPolicy()
		pol.MaxDestructive = 2
		r := newAPIRig(t, api, corp(), pol)
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		// Ann and Bob leave (2 user deletes + 3 member removals = 5 > 2) and
		// Eve is hired onto payments.
		dir := corp().without("p1").without("p2")
		dir.Users = append(dir.Users, person{ID: "p5", Email: "eve@example.com", Name: "Eve Evans"})
		dir.Groups[0].Members = []string{"p5"}
		r.write(dir)

		rep, code := r.run(sync.RunOptions{})
		if code != sync.ExitWithheld {
			t.Fatalf("exit %d, want %d; result %+v", code, sync.ExitWithheld, rep.Result)
		}
		st := r.state()
		if want := []string{"ann@example.com", "bob@example.com", "eve@example.com"}; !reflect.DeepEqual(st.Teams["payments"], want) {
			t.Errorf("payments = %v, want the hire added and nobody removed: %v", st.Teams["payments"], want)
		}
		for _, email := range []string{"ann@example.com", "bob@example.com"} {
			if _, ok := st.Users[email]; !ok {
				t.Errorf("%s was deleted despite the limit", email)
			}
		}
		if rep.Result.Counts.Withheld == 0 || rep.Result.Counts.Failed != 0 {
			t.Errorf("counts = %+v, want withheld changes and no failure", rep.Result.Counts)
		}

		rep, code = r.run(sync.RunOptions{AllowDestructive: true})
		if code != sync.ExitOK {
			t.Fatalf("--allow-destructive run: exit %d, result %+v", code, rep.Result)
		}
		st = r.state()
		want := r.withOwnerAdmins(state{
			Users: map[string]string{"owner@example.com": "Owner|", "cat@example.com": "Cat Cole|+442079460958", "eve@example.com": "Eve Evans|"},
			Teams: map[string][]string{"facilities": {"owner@example.com"}, "payments": {"eve@example.com"}, "db": {"cat@example.com"}},
		})
		if !reflect.DeepEqual(st, want) {
			t.Errorf("after --allow-destructive =\n%+v\nwant\n%+v", st, want)
		}
	})
}

func TestDryRunMakesNoWriteRequests(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		before := r.state()
		r.emu.ResetStats()
		rep, code := r.run(sync.RunOptions{DryRun: true})
		st := r.emu.Stats()
		if st.WriteAttempts != 0 {
			t.Errorf("dry run sent %d write requests", st.WriteAttempts)
		}
		if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{DryRun: 5}) || rep.Plan.Summary != (sync.Summary{Create: 5}) {
			t.Errorf("dry run: exit %d, counts %+v, summary %+v", code, rep.Result.Counts, rep.Plan.Summary)
		}
		if !reflect.DeepEqual(r.state(), before) {
			t.Error("dry run changed PagerTree")
		}
	})
}

func TestSavedPlan(t *testing.T) {
	saved := func(t *testing.T, r *rig) sync.Plan {
		t.Helper()
		prep, err := r.engine.Prepare(context.Background(), sync.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := sync.RenderJSON(&buf, prep.Plan); err != nil {
			t.Fatal(err)
		}
		p, err := sync.ReadPlan(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("refused after PagerTree changed", func(t *testing.T) {
		forEachAPI(t, func(t *testing.T, api string) {
			r := newAPIRig(t, api, corp(), defaultPolicy())
			p := saved(t, r)
			r.addUser(t, userView{Name: "Walk In", Email: "walkin@example.com"})
			r.emu.ResetStats()
			rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
			if !errors.Is(err, sync.ErrStalePlan) {
				t.Fatalf("ApplyPlan error = %v, want ErrStalePlan", err)
			}
			if !strings.Contains(err.Error(), "make a new plan with ptsync plan --out") {
				t.Errorf("error %q does not say what to do", err)
			}
			if st := r.emu.Stats(); st.WriteAttempts != 0 {
				t.Errorf("a refused plan sent %d write requests", st.WriteAttempts)
			}
			if sync.ExitCode(rep, err) != sync.ExitError {
				t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
			}
		})
	})

	t.Run("applied while PagerTree is unchanged", func(t *testing.T) {
		forEachAPI(t, func(t *testing.T, api string) {
			r := newAPIRig(t, api, corp(), defaultPolicy())
			p := saved(t, r)
			rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
			if err != nil || rep.Result.Counts != (sync.Counts{Applied: 5}) {
				t.Fatalf("ApplyPlan: %v, counts %+v", err, rep.Result.Counts)
			}
			r.emu.ResetStats()
			if rep, _ := r.run(sync.RunOptions{}); !rep.Plan.InSync() || r.emu.Stats().Writes != 0 {
				t.Errorf("a sync after the applied plan is not empty: %+v", rep.Plan)
			}
		})
	})
}

// TestSourceProblemsAbortBeforeAnyWrite: PagerTree is read alongside the
// sources, but a source problem ends the run before any write.
func TestSourceProblemsAbortBeforeAnyWrite(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, r *rig)
		wantErr string
	}{
		{
			name: "unreadable file",
			setup: func(_ *testing.T, r *rig) {
				_ = os.WriteFile(r.path, []byte("users:\n  - {id: a, emial: a@x.example}\n"), 0o600)
			},
			wantErr: `source "corp": `,
		},
		{
			name:    "missing file",
			setup:   func(_ *testing.T, r *rig) { _ = os.Remove(r.path) },
			wantErr: `source "corp": read users file: `,
		},
		{
			name:    "fewer users than min_source_users",
			setup:   func(_ *testing.T, r *rig) { r.engine.MinSourceUsers = 5 },
			wantErr: `source "corp" returned 4 users, fewer than safety.min_source_users (5); nothing was written`,
		},
		{
			name: "a second source fails",
			setup: func(t *testing.T, r *rig) {
				bad, _ := file.New("contractors", &file.Config{Path: filepath.Join(t.TempDir(), "none.yaml")}, sources.Options{})
				r.engine.Sources = append(r.engine.Sources, bad)
			},
			wantErr: `source "contractors": read users file: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachAPI(t, func(t *testing.T, api string) {
				r := newAPIRig(t, api, corp(), defaultPolicy())
				tt.setup(t, r)
				rep, err := r.engine.RunOnce(context.Background(), sync.RunOptions{})
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to start with %q", err, tt.wantErr)
				}
				if w := r.rec.writes(); len(w) != 0 {
					t.Errorf("PagerTree writes made, want none: %v", w)
				}
				if sync.ExitCode(rep, err) != sync.ExitError {
					t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
				}
			})
		})
	}
}

func TestFailedChangeDoesNotStopTheOthers(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		r.rec.fail = func(method, path string, body []byte) bool {
			return method == http.MethodPost && path == r.userRoute() && bytes.Contains(body, []byte("bob@example.com"))
		}
		rep, code := r.run(sync.RunOptions{})
		if code != sync.ExitError {
			t.Fatalf("exit %d, want 1", code)
		}
		outcomes := map[string]sync.Outcome{}
		for _, c := range rep.Result.Changes {
			outcomes[c.Name] = c.Outcome
		}
		want := map[string]sync.Outcome{
			"ann@example.com": sync.OutcomeApplied,
			"bob@example.com": sync.OutcomeFailed,
			"cat@example.com": sync.OutcomeApplied,
			"payments":        sync.OutcomeFailed, // created without bob
			"db":              sync.OutcomeFailed,
		}
		if !reflect.DeepEqual(outcomes, want) {
			t.Errorf("outcomes = %v, want %v", outcomes, want)
		}
		st := r.state()
		if !reflect.DeepEqual(st.Teams["payments"], []string{"ann@example.com"}) || !reflect.DeepEqual(st.Teams["db"], []string{"cat@example.com"}) {
			t.Errorf("teams = %v, want them created without bob", st.Teams)
		}
		if !strings.Contains(fmt.Sprint(rep.Result.Changes), "rejected by the test") {
			t.Errorf("no change carries the test's 422 message: %+v", rep.Result.Changes)
		}

		// The fault gone, the next run converges, and the one after writes nothing.
		r.rec.fail = nil
		if rep, code := r.run(sync.RunOptions{}); code != sync.ExitOK || rep.Result.Counts != (sync.Counts{Applied: 3}) {
			t.Errorf("second run: exit %d counts %+v, want bob created and added to 2 teams", code, rep.Result.Counts)
		}
		if got, want := r.state(), r.inStep(); !reflect.DeepEqual(got, want) {
			t.Errorf("PagerTree after the second run =\n%+v\nwant\n%+v", got, want)
		}
		r.emu.ResetStats()
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK || r.emu.Stats().Writes != 0 {
			t.Errorf("third run: exit %d, %d writes", code, r.emu.Stats().Writes)
		}
	})
}

// TestEmptyAndGoneGroups: a group with no member, and a managed team whose
// group is gone under on_missing: empty and then delete. v3 teams may be
// empty; a v4 team needs a member, so there the empty group is not created
// and the gone group's team is not emptied (both conflicts, reported),
// while on_missing: delete deletes it on both.
func TestEmptyAndGoneGroups(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		dir := corp()
		dir.Groups = append(dir.Groups,
			group{ID: "g-ops", Name: "oncall-ops", Members: []string{"p1", "p3"}},
			group{ID: "g-empty", Name: "oncall-empty", Members: []string{}})
		pol := defaultPolicy()
		pol.Rules[0].OnMissing = config.OnMissingEmpty
		r := newAPIRig(t, api, dir, pol)
		conflicts := func(rep sync.Report) map[string]string {
			out := map[string]string{}
			for _, c := range rep.Plan.Conflicts {
				out[c.Team+c.User] = c.Reason
			}
			return out
		}
		const emptyConflict = `group "oncall-empty" of source "corp" has no member ptsync can add, and an empty group cannot be a v4 team (a team needs a member); the team is created once it has one`

		rep, code := r.run(sync.RunOptions{})
		want := r.inStep()
		want.Teams["ops"] = []string{"ann@example.com", "cat@example.com"}
		wantCounts, wantConflicts := sync.Counts{Applied: 7}, map[string]string{}
		if r.v4() {
			// v4: PagerTree refuses a team with no member, so the empty
			// group is a conflict and no team.
			want.Admins["ops"] = []string{ownerEmail}
			wantCounts, wantConflicts = sync.Counts{Applied: 6}, map[string]string{"empty": emptyConflict}
		} else {
			want.Teams["empty"] = []string{}
		}
		if code != sync.ExitOK || rep.Result.Counts != wantCounts || !reflect.DeepEqual(conflicts(rep), wantConflicts) {
			t.Errorf("first run: exit %d, counts %+v, conflicts %v; want 0, %+v, %v", code, rep.Result.Counts, conflicts(rep), wantCounts, wantConflicts)
		}
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Errorf("PagerTree after the first run =\n%+v\nwant\n%+v", got, want)
		}

		// The ops group goes, under on_missing: empty. Emptying a team is
		// withheld without --allow-destructive (on either version), so the
		// run allows it.
		dir.Groups = slices.DeleteFunc(dir.Groups, func(g group) bool { return g.ID == "g-ops" })
		r.write(dir)
		r.rec.reset()
		rep, code = r.run(sync.RunOptions{AllowDestructive: true})
		if r.v4() {
			// v4: a team cannot be emptied, whatever --allow-destructive
			// says; its members stay and the plan says why.
			wantConflicts["ops"] = `group (id "g-ops") is gone from source "corp"; on_missing: empty, but a v4 team cannot be emptied (it needs a member); its members stay: delete the team, or set on_missing: delete`
			if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{}) || !reflect.DeepEqual(conflicts(rep), wantConflicts) {
				t.Errorf("on_missing empty: exit %d, counts %+v, conflicts %v; want 0, nothing done, %v", code, rep.Result.Counts, conflicts(rep), wantConflicts)
			}
			if w := r.rec.writes(); len(w) != 0 {
				t.Errorf("on_missing empty: writes %v, want none", w)
			}
			delete(wantConflicts, "ops")
		} else {
			want.Teams["ops"] = []string{}
			if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{Applied: 1}) || len(rep.Plan.Conflicts) != 0 {
				t.Errorf("on_missing empty: exit %d, counts %+v, conflicts %v; want ops emptied", code, rep.Result.Counts, conflicts(rep))
			}
			if w, ops := r.rec.writes(), r.team("ops"); !reflect.DeepEqual(w, []string{"PUT " + r.teamRoute() + "/" + ops.ID}) {
				t.Errorf("on_missing empty: writes %v, want ops emptied in one write", w)
			}
		}
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Errorf("PagerTree after on_missing empty =\n%+v\nwant\n%+v", got, want)
		}

		// on_missing: delete deletes the team, on either version.
		r.engine.Policy.Rules[0].OnMissing = config.OnMissingDelete
		ops := r.team("ops")
		r.rec.reset()
		rep, code = r.run(sync.RunOptions{})
		if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{Applied: 1}) || !reflect.DeepEqual(conflicts(rep), wantConflicts) {
			t.Errorf("on_missing delete: exit %d, counts %+v, conflicts %v; want ops deleted, conflicts %v", code, rep.Result.Counts, conflicts(rep), wantConflicts)
		}
		if w := r.rec.writes(); !reflect.DeepEqual(w, []string{"DELETE " + r.teamRoute() + "/" + ops.ID}) {
			t.Errorf("on_missing delete: writes %v, want ops deleted", w)
		}
		delete(want.Teams, "ops")
		if r.v4() {
			delete(want.Admins, "ops")
		}
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Errorf("PagerTree after on_missing delete =\n%+v\nwant\n%+v", got, want)
		}
	})
}
