package msgraph_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

// TestRefreshFollowsDelta refreshes with the changes the delta feed
// reports for each of feedSteps' edits: the snapshot must be the one a
// whole fetch gives, and no refresh lists the users. Without nesting the
// feed reports less (a nested group's members are nobody's), so the same
// changes are refreshed without waiting for it.
func TestRefreshFollowsDelta(t *testing.T) {
	for _, nested := range []bool{true, false} {
		t.Run(map[bool]string{true: "nested", false: "direct members"}[nested], func(t *testing.T) {
			srv := newFake(t, corp(), graphtest.Options{DeltaPageSize: 3})
			cfg := configFor(srv)
			cfg.Nested = nested
			src := newSource(t, cfg, sources.Options{ReadOwners: true}).(sources.Refresher)
			var w *watch
			if nested {
				w = startWatch(t, cfg, nil)
				w.established(t)
			}
			ctx := context.Background()
			_, memo, err := src.FetchMemo(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range feedSteps() {
				srv.Update(step.change)
				if w != nil {
					w.expect(t, step.want...)
				}
				before := srv.Requests()
				snap, next, err := src.Refresh(ctx, memo, step.want)
				if err != nil {
					t.Fatalf("%s: Refresh: %v", step.name, err)
				}
				// The feed polls meanwhile; it never lists /users.
				if n := srv.Requests()["GET /users"] - before["GET /users"]; n != 0 {
					t.Errorf("%s: the refresh listed the users (%d requests)", step.name, n)
				}
				if want := fetch(t, src); !reflect.DeepEqual(snap, want) {
					t.Fatalf("%s: refreshed with %v:\n got %+v\nwant %+v (a whole fetch)", step.name, step.want, snap, want)
				}
				memo = next
			}
		})
	}
}

// TestRefreshRequests: a user's change costs one request, a group's the
// group list and the members of the groups it is in; nothing else.
func TestRefreshRequests(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	src := newSource(t, configFor(srv), sources.Options{}).(sources.Refresher)
	ctx := context.Background()
	_, memo, err := src.FetchMemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := func(changes ...sources.Change) map[string]int {
		t.Helper()
		before := srv.Requests()
		if _, _, err := src.Refresh(ctx, memo, changes); err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for route, n := range srv.Requests() {
			if n > before[route] {
				out[route] = n - before[route]
			}
		}
		return out
	}
	if got, want := count(), map[string]int{}; !reflect.DeepEqual(got, want) {
		t.Errorf("nothing changed: requests %v, want none", got)
	}
	if got, want := count(user("u-carol")), map[string]int{"GET /users/{id}": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("a user changed: requests %v, want %v", got, want)
	}
	// db-contractors is nested in oncall-db (and not in the filter).
	want := map[string]int{"GET /groups": 1, "GET /groups/{id}/transitiveMembers": 1}
	if got := count(group("g-contractors")); !reflect.DeepEqual(got, want) {
		t.Errorf("a nested group changed: requests %v, want %v", got, want)
	}
}

func TestRefreshRefuses(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	src := newSource(t, configFor(srv), sources.Options{}).(sources.Refresher)
	_, memo, err := src.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	many := make([]sources.Change, 101)
	for i := range many {
		many[i] = user("u-" + strings.Repeat("x", i+1))
	}
	for name, tc := range map[string]struct {
		memo    sources.Memo
		changes []sources.Change
	}{
		"no memo":             {nil, []sources.Change{user("u-bob")}},
		"a change without id": {memo, []sources.Change{{Kind: sources.ChangeGroup}}},
		"too many":            {memo, many},
	} {
		if _, _, err := src.Refresh(context.Background(), tc.memo, tc.changes); !errors.Is(err, sources.ErrCannotRefresh) {
			t.Errorf("%s: %v, want ErrCannotRefresh", name, err)
		}
	}
	// A changed user whose email another user has: which one a whole read
	// keeps is Graph's order.
	srv.Update(func(tn *graphtest.Tenant) { userIndex(tn, "u-erin").Mail = "alice@example.com" })
	if _, _, err := src.Refresh(context.Background(), memo, []sources.Change{user("u-erin")}); !errors.Is(err, sources.ErrCannotRefresh) {
		t.Errorf("a user sharing an email: %v, want ErrCannotRefresh", err)
	}
}

// TestRefreshDeletedUser: Graph takes a deleted user out of their groups;
// a refresh told only of the user does so too.
func TestRefreshDeletedUser(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	src := newSource(t, configFor(srv), sources.Options{ReadOwners: true}).(sources.Refresher)
	_, memo, err := src.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv.Update(func(tn *graphtest.Tenant) {
		tn.Users = slices.DeleteFunc(tn.Users, func(u graphtest.User) bool { return u.ID == "u-alice" })
		g := groupIndex(tn, "g-db")
		g.Members, g.Owners = without(g.Members, "u-alice"), without(g.Owners, "u-alice")
	})
	snap, _, err := src.Refresh(context.Background(), memo, []sources.Change{deleted(user("u-alice"))})
	if err != nil {
		t.Fatal(err)
	}
	if want := fetch(t, src); !reflect.DeepEqual(snap, want) {
		t.Fatalf("refreshed:\n got %+v\nwant %+v (a whole fetch)", snap, want)
	}
}
