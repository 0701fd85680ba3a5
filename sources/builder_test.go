package sources_test

import (
	"reflect"
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
)

func mustAdd(t *testing.T, b *sources.Builder, u sources.User) sources.UserRef {
	t.Helper()
	ref, err := b.AddUser(u)
	if err != nil {
		t.Fatalf("AddUser(%+v): %v", u, err)
	}
	return ref
}

// TestBuilderFlattensDepthAndCycles walks a chain g0 -> g1 -> g2 -> g3 ->
// g0, each group holding one user of its own.
func TestBuilderFlattensDepthAndCycles(t *testing.T) {
	tests := []struct {
		nested   bool
		maxDepth int
		want     [][]string // members of g0..g3
		warned   bool
	}{
		{nested: false, maxDepth: 10, want: [][]string{{"u0"}, {"u1"}, {"u2"}, {"u3"}}},
		{nested: true, maxDepth: 1, want: [][]string{{"u0", "u1"}, {"u1", "u2"}, {"u2", "u3"}, {"u0", "u3"}}, warned: true},
		{nested: true, maxDepth: 3, want: [][]string{{"u0", "u1", "u2", "u3"}, {"u0", "u1", "u2", "u3"}, {"u0", "u1", "u2", "u3"}, {"u0", "u1", "u2", "u3"}}},
	}
	for _, tc := range tests {
		core, logs := observer.New(zapcore.WarnLevel)
		b := sources.NewBuilder("corp", zap.New(core))
		var groups []sources.GroupRef
		for i := range 4 {
			u := mustAdd(t, b, sources.User{ID: "u" + string(rune('0'+i)), Email: "u" + string(rune('0'+i)) + "@x.example"})
			g := b.AddGroup(sources.Group{ID: "g" + string(rune('0'+i)), Name: "g" + string(rune('0'+i))})
			b.AddMember(g, u)
			groups = append(groups, g)
		}
		for i, g := range groups {
			b.AddSubgroup(g, groups[(i+1)%4])
		}
		snap := b.Snapshot(tc.nested, tc.maxDepth)
		for i, g := range snap.Groups {
			if !slices.Equal(g.Members, tc.want[i]) {
				t.Errorf("nested %v, max depth %d: g%d members = %v, want %v", tc.nested, tc.maxDepth, i, g.Members, tc.want[i])
			}
		}
		if got := logs.FilterMessageSnippet("depth limit").Len() > 0; got != tc.warned {
			t.Errorf("max depth %d: warned %t, want %t", tc.maxDepth, got, tc.warned)
		}
	}
}

func TestBuilderMergesOnePersonPerEmail(t *testing.T) {
	b := sources.NewBuilder("corp", nil)
	disabled := mustAdd(t, b, sources.User{ID: "old", Email: "Jo@Example.com", Disabled: true})
	enabled := mustAdd(t, b, sources.User{ID: "new", Email: " jo@example.COM ", Name: "Jo"})
	third := mustAdd(t, b, sources.User{ID: "third", Email: "jo@example.com", Name: "Jo Three"})
	noEmail := mustAdd(t, b, sources.User{ID: "ghost", Email: "  "})
	firstStays := mustAdd(t, b, sources.User{ID: "a1", Email: "a@example.com", Disabled: true})
	secondDisabled := mustAdd(t, b, sources.User{ID: "a2", Email: "a@example.com", Disabled: true})

	if disabled != enabled || enabled != third {
		t.Errorf("refs %d %d %d: want one person", disabled, enabled, third)
	}
	if noEmail != sources.NoUser || firstStays != secondDisabled {
		t.Errorf("no email ref %d, a refs %d %d", noEmail, firstStays, secondDisabled)
	}
	g := b.AddGroup(sources.Group{ID: "g", Name: "oncall", Members: []string{"ignored"}})
	b.AddMember(g, disabled) // a membership of the merged-away entry counts for the kept one
	b.AddMember(g, noEmail)
	b.AddMember(g, secondDisabled)
	b.AddOwner(g, third)
	b.Skip(sources.SkipOutsideScope, 2)
	snap := b.Snapshot(true, 10)

	wantUsers := map[string]sources.User{
		"new": {ID: "new", Email: "jo@example.COM", Name: "Jo"},
		"a1":  {ID: "a1", Email: "a@example.com", Disabled: true},
	}
	if !reflect.DeepEqual(snap.Users, wantUsers) {
		t.Errorf("Users = %+v, want %+v", snap.Users, wantUsers)
	}
	wantGroups := []sources.Group{{ID: "g", Name: "oncall", Members: []string{"a1", "new"}, Owners: []string{"new"}}}
	if !reflect.DeepEqual(snap.Groups, wantGroups) {
		t.Errorf("Groups = %+v, want %+v", snap.Groups, wantGroups)
	}
	wantSkipped := map[string]int{sources.SkipDuplicateEmail: 3, sources.SkipNoEmail: 1, sources.SkipOutsideScope: 2}
	if !reflect.DeepEqual(snap.Skipped, wantSkipped) {
		t.Errorf("Skipped = %v, want %v", snap.Skipped, wantSkipped)
	}
}

func TestBuilderRefusesAnIDTwice(t *testing.T) {
	b := sources.NewBuilder("corp", nil)
	mustAdd(t, b, sources.User{ID: "u1", Email: "a@example.com"})
	if _, err := b.AddUser(sources.User{ID: "u1", Email: "b@example.com"}); err == nil {
		t.Error("a second user with id u1 was accepted")
	}
	if _, err := b.AddUser(sources.User{Email: "c@example.com"}); err == nil {
		t.Error("a user without an id was accepted")
	}
}
