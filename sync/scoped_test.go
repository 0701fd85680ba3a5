package sync_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"pgregory.net/rapid"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// scopedRig is a rig whose engine keeps a baseline, after a first full
// sync of dir.
func scopedRig(t *testing.T, api string, dir directory, pol sync.Policy) (*rig, *sync.Baseline) {
	t.Helper()
	r := newAPIRig(t, api, dir, pol)
	r.engine.KeepBaseline = true
	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitOK || rep.Baseline() == nil {
		t.Fatalf("first full sync: exit %d, baseline %v", code, rep.Baseline())
	}
	return r, rep.Baseline()
}

// runScoped runs a scoped sync that must succeed, and returns its new
// baseline and every request it made.
func (r *rig) runScoped(base *sync.Baseline) (*sync.Baseline, []string) {
	r.t.Helper()
	r.rec.reset()
	rep, next, err := r.engine.RunScoped(context.Background(), base, nil, sync.RunOptions{})
	if err != nil {
		r.t.Fatalf("RunScoped: %v", err)
	}
	if code := sync.ExitCode(rep, nil); code != sync.ExitOK || next == nil {
		r.t.Fatalf("RunScoped: exit %d, baseline %v, result %+v", code, next, rep.Result)
	}
	r.rec.mu.Lock()
	defer r.rec.mu.Unlock()
	return next, slices.Clone(r.rec.requests)
}

// fullPlan is what a full sync would do now.
func (r *rig) fullPlan() sync.Plan {
	r.t.Helper()
	prep, err := r.engine.Prepare(context.Background(), sync.RunOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return prep.Plan
}

// listed reports whether requests list a collection (a GET of a list route).
func (r *rig) listed(requests []string) bool {
	for _, req := range requests {
		for _, route := range []string{r.userRoute(), r.teamRoute()} {
			if strings.HasPrefix(req, route+" ") || req == route {
				return true
			}
		}
	}
	return false
}

func TestScopedSyncWritesOnlyWhatChanged(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		dir := corp()
		r, base := scopedRig(t, api, dir, defaultPolicy())

		// Nothing changed in the directory: not one request.
		base, reqs := r.runScoped(base)
		if len(reqs) != 0 {
			t.Errorf("a scoped sync with nothing changed sent %q", reqs)
		}

		// A hire joins db: the hire is created and db written, read by id.
		dir.Users = append(dir.Users, person{ID: "p5", Email: "eve@example.com", Name: "Eve Evans"})
		dir.Groups[1].Members = append(dir.Groups[1].Members, "p5")
		r.write(dir)
		base, reqs = r.runScoped(base)
		if r.listed(reqs) {
			t.Errorf("a scoped sync listed the account: %q", reqs)
		}
		want := r.inStep()
		want.Users["eve@example.com"] = "Eve Evans|"
		want.Teams["db"] = []string{"bob@example.com", "cat@example.com", "eve@example.com"}
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Fatalf("after the hire:\n got %+v\nwant %+v", got, want)
		}
		if writes := r.rec.writes(); len(writes) != 2 {
			t.Errorf("writes for a hire %q, want a user create and a team update", writes)
		}

		// A rename: one user update.
		dir.Users[0].Name = "Ann Archer-Smith"
		r.write(dir)
		base, _ = r.runScoped(base)
		if writes := r.rec.writes(); len(writes) != 1 || !strings.HasPrefix(writes[0], "PUT ") {
			t.Errorf("writes for a rename %q, want one update", writes)
		}
		want.Users["ann@example.com"] = "Ann Archer-Smith|+14155550101"

		// A leaver: out of db and deleted, as a full sync would.
		dir = dir.without("p3")
		r.write(dir)
		_, _ = r.runScoped(base)
		want.Teams["db"] = []string{"bob@example.com", "eve@example.com"}
		delete(want.Users, "cat@example.com")
		if got := r.state(); !reflect.DeepEqual(got, want) {
			t.Fatalf("after the leaver:\n got %+v\nwant %+v", got, want)
		}
		if p := r.fullPlan(); !p.InSync() {
			t.Errorf("the full plan after scoped syncs: %+v", p.Changes)
		}

		// A leaver who is also in a team made by hand: out of the synced
		// teams at once, but the delete, which would take them out of the
		// hand-made team too, is a full sync's to weigh.
		bob := r.user(r.t, "bob@example.com")
		r.setMembers(r.unmanaged.ID, []string{r.owner.ID, bob.ID})
		rep, code := r.run(sync.RunOptions{})
		if code != sync.ExitOK {
			t.Fatalf("full sync: exit %d", code)
		}
		dir = dir.without("p2")
		r.write(dir)
		_, _ = r.runScoped(rep.Baseline())
		if got := r.state(); !slices.Contains(got.Teams["facilities"], "bob@example.com") || slices.Contains(got.Teams["db"], "bob@example.com") {
			t.Errorf("after a leaver in a hand-made team: %+v, want bob only in facilities", got.Teams)
		}
		p := r.fullPlan()
		if len(p.Changes) != 1 || p.Changes[0].Op != sync.OpDelete || p.Changes[0].Name != "bob@example.com" {
			t.Errorf("the full plan after scoped syncs: %+v, want only bob's delete", p.Changes)
		}
	})
}

func TestScopedSyncDefersToAFullOne(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		for _, tc := range []struct {
			name   string
			change func(r *rig, dir *directory)
		}{
			{"a new group", func(r *rig, dir *directory) {
				dir.Groups = append(dir.Groups, group{ID: "g-web", Name: "oncall-web", Members: []string{"p1"}})
			}},
			{"a renamed group", func(r *rig, dir *directory) { dir.Groups[1].Name = "oncall-database" }},
			{"a group gone", func(r *rig, dir *directory) { dir.Groups = dir.Groups[1:] }},
			{"a team's marker removed by hand", func(r *rig, dir *directory) {
				dir.Groups[1].Members = append(dir.Groups[1].Members, "p1")
				r.setDescription(r.team("db").ID, "hand-written notes")
			}},
			{"a team deleted by hand", func(r *rig, dir *directory) {
				dir.Groups[1].Members = append(dir.Groups[1].Members, "p1")
				r.deleteTeam(r.team("db").ID)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := corp()
				r, base := scopedRig(t, api, dir, defaultPolicy())
				tc.change(r, &dir)
				r.write(dir)
				before := r.state()
				r.rec.reset()
				_, next, err := r.engine.RunScoped(context.Background(), base, nil, sync.RunOptions{})
				if !errors.Is(err, sync.ErrFullSyncNeeded) || next != nil {
					t.Fatalf("RunScoped: %v, baseline %v; want ErrFullSyncNeeded", err, next)
				}
				if writes := r.rec.writes(); len(writes) != 0 {
					t.Errorf("RunScoped wrote %q before deferring to a full sync", writes)
				}
				if got := r.state(); !reflect.DeepEqual(got, before) {
					t.Errorf("PagerTree changed: %+v, was %+v", got, before)
				}
			})
		}
	})
}

// TestScopedSyncsConvergeLikeAFullSync: whatever the directory edits, a
// scoped sync after each (a full one where it defers) leaves PagerTree
// exactly as a full sync would: nothing is left for the full sync to do
// but what it would withhold too.
func TestScopedSyncsConvergeLikeAFullSync(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		rapid.Check(t, func(rt *rapid.T) {
			dir := corp()
			r, base := scopedRig(t, api, dir, defaultPolicy())
			for step := range rapid.IntRange(1, 6).Draw(rt, "steps") {
				dir = editDirectory(rt, dir, fmt.Sprintf("step%d", step))
				r.write(dir)
				rep, next, err := r.engine.RunScoped(context.Background(), base, nil, sync.RunOptions{})
				if errors.Is(err, sync.ErrFullSyncNeeded) {
					if rep, err = r.engine.RunOnce(context.Background(), sync.RunOptions{}); err == nil {
						next = rep.Baseline()
					}
				}
				// A group gone empty is withheld (exit 3), by either sync.
				if err != nil || sync.ExitCode(rep, nil) == sync.ExitError || next == nil {
					rt.Fatalf("step %d: %v, exit %d, result %+v", step, err, sync.ExitCode(rep, nil), rep.Result)
				}
				base = next
				if p := r.fullPlan(); len(p.Changes) > 0 {
					rt.Fatalf("step %d: a full sync would still do %+v", step, p.Changes)
				}
			}
		})
	})
}

// editDirectory makes one random edit a directory sees: a hire, a leaver,
// a rename, a phone change, someone joining or leaving a group.
func editDirectory(t *rapid.T, dir directory, label string) directory {
	out := directory{Users: slices.Clone(dir.Users)}
	for _, g := range dir.Groups {
		g.Members = slices.Clone(g.Members)
		out.Groups = append(out.Groups, g)
	}
	switch rapid.IntRange(0, 5).Draw(t, label+".kind") {
	case 0: // a hire, in some groups
		id := fmt.Sprintf("h-%s", label)
		out.Users = append(out.Users, person{ID: id, Email: id + "@example.com", Name: "Hire " + label})
		for i := range out.Groups {
			if rapid.Bool().Draw(t, fmt.Sprintf("%s.join%d", label, i)) {
				out.Groups[i].Members = append(out.Groups[i].Members, id)
			}
		}
	case 1: // a leaver
		if len(out.Users) > 1 {
			out = out.without(out.Users[rapid.IntRange(0, len(out.Users)-1).Draw(t, label+".leaver")].ID)
		}
	case 2: // a rename
		i := rapid.IntRange(0, len(out.Users)-1).Draw(t, label+".renamed")
		out.Users[i].Name = "Renamed " + label
	case 3: // a phone
		i := rapid.IntRange(0, len(out.Users)-1).Draw(t, label+".phone")
		out.Users[i].Phone = rapid.SampledFrom([]string{"", "+1 415 555 0199", "+44 20 7946 0000"}).Draw(t, label+".number")
	default: // someone joins or leaves a group, never its last member
		g := &out.Groups[rapid.IntRange(0, len(out.Groups)-1).Draw(t, label+".group")]
		u := out.Users[rapid.IntRange(0, len(out.Users)-1).Draw(t, label+".member")].ID
		if i := slices.Index(g.Members, u); i >= 0 && len(g.Members) > 1 {
			g.Members = slices.Delete(g.Members, i, i+1)
		} else if i < 0 {
			g.Members = append(g.Members, u)
		}
	}
	return out
}

// setDescription and deleteTeam change the account by hand, as a person
// in PagerTree's UI would.
func (r *rig) setDescription(id, description string) {
	r.t.Helper()
	if err := r.engine.PagerTree.UpdateTeam(context.Background(), id, sync.TeamPatch{Description: &description}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) setMembers(id string, memberIDs []string) {
	r.t.Helper()
	if err := r.engine.PagerTree.UpdateTeam(context.Background(), id, sync.TeamPatch{MemberIDs: &memberIDs}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) deleteTeam(id string) {
	r.t.Helper()
	if err := r.engine.PagerTree.DeleteTeam(context.Background(), id); err != nil {
		r.t.Fatal(err)
	}
}

// refresher is a source that can be refreshed, over the rig's file
// source: it records what the engine asks of it, and answers what the
// file holds, refusing a refresh when told to (cannot) or failing it.
type refresher struct {
	sources.Source
	cannot, fail bool
	fetches      int
	refreshes    []refreshCall
	memo         int // the last memo handed out
}

type refreshCall struct {
	memo    sources.Memo
	changes []sources.Change
}

func (f *refresher) FetchMemo(ctx context.Context) (*sources.Snapshot, sources.Memo, error) {
	f.fetches++
	snap, err := f.Fetch(ctx)
	f.memo++
	return snap, f.memo, err
}

func (f *refresher) Refresh(ctx context.Context, memo sources.Memo, changes []sources.Change) (*sources.Snapshot, sources.Memo, error) {
	f.refreshes = append(f.refreshes, refreshCall{memo, changes})
	switch {
	case f.cannot:
		return nil, nil, fmt.Errorf("test: %w", sources.ErrCannotRefresh)
	case f.fail:
		return nil, nil, errors.New("test: the directory went away")
	}
	snap, err := f.Fetch(ctx)
	f.memo++
	return snap, f.memo, err
}

// TestScopedSyncRefreshesSources: a source that can be refreshed is read
// from the memo the last sync left, with the changes its feed reported;
// one that cannot be is read whole, and one whose refresh fails fails the
// sync before any write.
func TestScopedSyncRefreshesSources(t *testing.T) {
	dir := corp()
	r := newAPIRig(t, "v3", dir, defaultPolicy())
	src := &refresher{Source: r.engine.Sources[0]}
	r.engine.Sources = []sources.Source{src}
	r.engine.KeepBaseline = true
	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitOK || src.fetches != 1 || len(src.refreshes) != 0 {
		t.Fatalf("full sync: exit %d, %d whole reads and %d refreshes, want 1 and 0", code, src.fetches, len(src.refreshes))
	}
	base := rep.Baseline()

	// A hire, as the feed reports them: refreshed from the full sync's memo.
	dir.Users = append(dir.Users, person{ID: "p5", Email: "eve@example.com", Name: "Eve Evans"})
	dir.Groups[1].Members = append(dir.Groups[1].Members, "p5")
	r.write(dir)
	hire := []sources.Change{{ID: "p5", Kind: sources.ChangeUser}, {ID: dir.Groups[1].ID, Kind: sources.ChangeGroup}}
	changes := map[string][]sources.Change{src.Name(): hire, "elsewhere": {{ID: "x"}}}
	_, next, err := r.engine.RunScoped(context.Background(), base, changes, sync.RunOptions{})
	if err != nil || next == nil {
		t.Fatalf("RunScoped: %v, baseline %v", err, next)
	}
	if want := []refreshCall{{1, hire}}; src.fetches != 1 || !reflect.DeepEqual(src.refreshes, want) {
		t.Fatalf("refreshes %+v and %d whole reads, want %+v and 1", src.refreshes, src.fetches, want)
	}
	if got := r.state().Teams["db"]; !slices.Contains(got, "eve@example.com") {
		t.Errorf("db after the refreshed hire: %q", got)
	}

	// The next one refreshes from the memo this one left.
	_, next, err = r.engine.RunScoped(context.Background(), next, nil, sync.RunOptions{})
	if err != nil || len(src.refreshes) != 2 || src.refreshes[1].memo != 2 || src.refreshes[1].changes != nil {
		t.Fatalf("RunScoped: %v; refreshes %+v, want the second from memo 2 with no changes", err, src.refreshes)
	}

	// A refresh that cannot be done: the source is read whole, and the
	// sync goes on.
	src.cannot = true
	dir.Users[0].Name = "Ann Archer-Smith"
	r.write(dir)
	_, next, err = r.engine.RunScoped(context.Background(), next, changes, sync.RunOptions{})
	if err != nil || next == nil || src.fetches != 2 {
		t.Fatalf("RunScoped: %v, baseline %v, %d whole reads; want the source read whole", err, next, src.fetches)
	}
	if got := r.state().Users["ann@example.com"]; got != "Ann Archer-Smith|+14155550101" {
		t.Errorf("ann after a whole read: %q", got)
	}

	// A refresh that fails fails the sync, and nothing is written.
	src.cannot, src.fail = false, true
	dir.Users[0].Name = "Ann Archer"
	r.write(dir)
	r.rec.reset()
	_, after, err := r.engine.RunScoped(context.Background(), next, changes, sync.RunOptions{})
	if err == nil || errors.Is(err, sync.ErrFullSyncNeeded) || after != nil {
		t.Errorf("RunScoped with a failing refresh: %v, baseline %v; want the source's error", err, after)
	}
	if writes := r.rec.writes(); len(writes) != 0 {
		t.Errorf("a sync whose source failed wrote %q", writes)
	}

	// Two whole reads (the full sync, the refresh that could not be) and
	// two refreshes; the failed one counts as neither.
	want := fmt.Sprintf(`# HELP ptsync_source_reads_total Reads of each source by sync runs, by how: whole (every object) or refreshed (a watch sync that re-read only the objects the change feed named).
# TYPE ptsync_source_reads_total counter
ptsync_source_reads_total{read="refreshed",source=%[1]q} 2
ptsync_source_reads_total{read="whole",source=%[1]q} 2
`, src.Name())
	if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want), "ptsync_source_reads_total"); err != nil {
		t.Error(err)
	}
}
