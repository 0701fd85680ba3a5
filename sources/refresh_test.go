package sources_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources"
)

func TestChangedIDs(t *testing.T) {
	users, groups, err := sources.ChangedIDs([]sources.Change{
		{ID: "u1", Kind: sources.ChangeUser}, {ID: "g1", Kind: sources.ChangeGroup},
		{ID: "u1", Kind: sources.ChangeUser, Deleted: true}, {ID: "u2", Kind: sources.ChangeUser},
	}, 3)
	if err != nil || !slices.Equal(slices.Sorted(maps.Keys(users)), []string{"u1", "u2"}) || !slices.Equal(slices.Sorted(maps.Keys(groups)), []string{"g1"}) {
		t.Errorf("ChangedIDs = %v, %v, %v; want users u1 u2, group g1", users, groups, err)
	}
	if users, groups, err := sources.ChangedIDs(nil, 0); err != nil || len(users)+len(groups) != 0 {
		t.Errorf("no changes: %v, %v, %v", users, groups, err)
	}
	for name, changes := range map[string][]sources.Change{
		"no id":               {{Kind: sources.ChangeUser}},
		"partial":             {{ID: "u1", Kind: sources.ChangeUser, Partial: true}},
		"no kind":             {{ID: "u1"}},
		"over max":            {{ID: "u1", Kind: sources.ChangeUser}, {ID: "u2", Kind: sources.ChangeUser}, {ID: "g1", Kind: sources.ChangeGroup}, {ID: "g2", Kind: sources.ChangeGroup}},
		"no id, after others": {{ID: "u1", Kind: sources.ChangeUser}, {ID: "u2", Kind: sources.ChangeUser}, {Kind: sources.ChangeGroup}},
	} {
		if _, _, err := sources.ChangedIDs(changes, 3); !errors.Is(err, sources.ErrCannotRefresh) {
			t.Errorf("%s: %v, want ErrCannotRefresh", name, err)
		}
	}
}

// TestPatch: found again in place, not found dropped, new last, the list
// given left as it was.
func TestPatch(t *testing.T) {
	id := func(s string) string { k, _, _ := strings.Cut(s, "="); return k }
	list := []string{"a=1", "b=1", "c=1", "d=1"}
	changed := map[string]bool{"b": true, "c": true, "e": true, "f": true}
	got := sources.Patch(list, id, changed, []string{"f=2", "c=2", "e=2"})
	if want := []string{"a=1", "c=2", "d=1", "f=2", "e=2"}; !slices.Equal(got, want) {
		t.Errorf("Patch = %q, want %q", got, want)
	}
	if !slices.Equal(list, []string{"a=1", "b=1", "c=1", "d=1"}) {
		t.Errorf("Patch changed the list given: %q", list)
	}
	if got := sources.Patch(list, id, nil, nil); !slices.Equal(got, list) {
		t.Errorf("nothing changed: %q", got)
	}
}

func TestSharesEmail(t *testing.T) {
	type user struct{ id, email string }
	email := func(u user) string { return u.email }
	ann, bo := user{"1", "Ann@Example.com "}, user{"2", "bo@example.com"}
	hire, noMail, noMail2 := user{"5", "ann@example.com"}, user{"3", ""}, user{"4", ""}
	for _, tc := range []struct {
		name         string
		all, changed []user
		want         bool
	}{
		{"compared as the builder does: trimmed, any case", []user{ann, bo, hire}, []user{hire}, true},
		{"an email of its own", []user{ann, bo}, []user{bo}, false},
		{"users without email share nothing", []user{ann, noMail, noMail2}, []user{noMail}, false},
	} {
		if got := sources.SharesEmail(tc.all, tc.changed, email); got != tc.want {
			t.Errorf("%s: SharesEmail = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := fmt.Sprint(sources.CannotRefresh("%d objects", 3)); got != "the changes cannot be read by object: 3 objects" {
		t.Errorf("CannotRefresh: %q", got)
	}
}
