package okta_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

// TestRefreshFollowsTheSystemLog refreshes with the changes the System
// Log feed reports for each edit: the snapshot must be the one a whole
// fetch gives, and no refresh lists the users.
func TestRefreshFollowsTheSystemLog(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	cfg := configFor(srv)
	src := newSource(t, cfg, sources.Options{}).(sources.Refresher)
	f := watch(t, cfg, nil, poll)
	f.next(t) // established
	ctx := context.Background()
	_, memo, err := src.FetchMemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		edit    func()
		changes int
	}{
		{"a member added", func() { srv.AddMember("g-web", "u-alice") }, 1},
		{"a member removed", func() { srv.RemoveMember("g-db", "u-carol") }, 1},
		// Deactivated: gone from /users, still in oncall-db and oncall-web,
		// read from their member lists as disabled.
		{"a member deactivated", func() { srv.DeactivateUser("u-bob") }, 1},
		{"a member suspended", func() { srv.SuspendUser("u-alice") }, 1},
		{"and back", func() { srv.UnsuspendUser("u-alice") }, 1},
		{"a profile updated", func() {
			srv.UpdateUser("u-dan", oktatest.Profile{Login: "dan@example.com", Email: "dan@example.com", DisplayName: "Dan D."})
		}, 1},
		{"a deactivated member reactivated", func() { srv.ActivateUser("u-bob") }, 1},
		{"a deactivated member deleted", func() { srv.DeleteUser("u-dee") }, 1},
		{"a hire", func() {
			srv.CreateUser(oktatest.User{ID: "u-new", Profile: oktatest.Profile{Login: "new@example.com", Email: "new@example.com"}})
		}, 2},
		{"in a new group", func() {
			srv.CreateGroup(oktatest.Group{ID: "g-new", Name: "oncall-new"})
			srv.AddMember("g-new", "u-new")
		}, 2},
		{"a group renamed into the search", func() { srv.UpdateGroup("g-all", "oncall-all", "") }, 1},
		{"a group renamed out of it", func() { srv.UpdateGroup("g-web", "web", "") }, 1},
		{"a group deleted", func() { srv.DeleteGroup("g-new") }, 1},
	}
	for _, step := range steps {
		step.edit()
		changes, _ := f.changes(t, step.changes)
		before := srv.Requests()
		snap, next, err := src.Refresh(ctx, memo, changes)
		if err != nil {
			t.Fatalf("%s: Refresh: %v", step.name, err)
		}
		if n := srv.Requests()["GET /api/v1/users"] - before["GET /api/v1/users"]; n != 0 {
			t.Errorf("%s: the refresh listed the users (%d requests)", step.name, n)
		}
		if want := fetch(t, src); !reflect.DeepEqual(snap, want) {
			t.Fatalf("%s: refreshed with %+v:\n got %+v\nwant %+v (a whole fetch)", step.name, changes, snap, want)
		}
		memo = next
	}
}

func TestRefreshRefuses(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	src := newSource(t, configFor(srv), sources.Options{}).(sources.Refresher)
	_, memo, err := src.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	many := make([]sources.Change, 101)
	for i := range many {
		many[i] = sources.Change{ID: "u-alice", Kind: sources.ChangeUser}
		many[i].ID += string(rune('a' + i%26))
		many[i].ID += string(rune('a' + i/26))
	}
	srv.UpdateUser("u-erin", oktatest.Profile{Login: "erin@example.com", Email: "alice@example.com"})
	for name, tc := range map[string]struct {
		memo    any
		changes []sources.Change
	}{
		"no memo":                     {nil, []sources.Change{{ID: "u-bob", Kind: sources.ChangeUser}}},
		"an event naming no object":   {memo, []sources.Change{{}}},
		"too many":                    {memo, many},
		"a changed user sharing mail": {memo, []sources.Change{{ID: "u-erin", Kind: sources.ChangeUser}}},
	} {
		if _, _, err := src.Refresh(context.Background(), tc.memo, tc.changes); !errors.Is(err, sources.ErrCannotRefresh) {
			t.Errorf("%s: %v, want ErrCannotRefresh", name, err)
		}
	}
}
