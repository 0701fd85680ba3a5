package sources_test

import (
	"reflect"
	"slices"
	"strings"
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

// TestBuilderSkipsInvalidEmails: an email that is not one plain address is
// left out and counted like a missing one, with its memberships; PagerTree
// would refuse it, and that one refusal would fail every run.
func TestBuilderSkipsInvalidEmails(t *testing.T) {
	invalid := []string{
		"not-an-email", "ada@@example.com", "@example.com", "ada@", "a..b@example.com", "ada @example.com",
		"Ada <ada@example.com>", "<ada@example.com>", "ada@example.com (Ada)", `"a b"@example.com`, `"a@b"@example.com`,
		"ada@example.com, bob@example.com", "ada@example..com",
	}
	valid := []string{"ada@example.com", " Bob@Example.COM ", "first.last+tag@sub.example.com", "o'brien@example.com", "root@localhost"}

	core, logs := observer.New(zapcore.WarnLevel)
	b := sources.NewBuilder("corp", zap.New(core))
	g := b.AddGroup(sources.Group{ID: "g", Name: "oncall"})
	for i, email := range invalid {
		ref := mustAdd(t, b, sources.User{ID: "bad" + string(rune('a'+i)), Email: email})
		if ref != sources.NoUser {
			t.Errorf("AddUser(email %q) = %d, want NoUser", email, ref)
		}
		b.AddMember(g, ref)
	}
	wantUsers := map[string]sources.User{}
	var wantMembers []string
	for i, email := range valid {
		id := "ok" + string(rune('a'+i))
		b.AddMember(g, mustAdd(t, b, sources.User{ID: id, Email: email}))
		wantUsers[id] = sources.User{ID: id, Email: strings.TrimSpace(email)}
		wantMembers = append(wantMembers, id)
	}
	snap := b.Snapshot(true, 10)

	if !reflect.DeepEqual(snap.Users, wantUsers) {
		t.Errorf("Users = %+v, want %+v", snap.Users, wantUsers)
	}
	if got := snap.Groups[0].Members; !slices.Equal(got, wantMembers) {
		t.Errorf("members = %v, want %v", got, wantMembers)
	}
	if want := map[string]int{sources.SkipInvalidEmail: len(invalid)}; !reflect.DeepEqual(snap.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", snap.Skipped, want)
	}
	// Each is named once in the log, by id, so an admin can find and fix it.
	if n := logs.FilterMessage("user left out: its email is not a valid address").Len(); n != len(invalid) {
		t.Errorf("%d warnings, want %d", n, len(invalid))
	}
}
