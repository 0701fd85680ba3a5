package msgraph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/msgraph"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

const testPoll = 20 * time.Millisecond

// watch is one running Watch call.
type watch struct {
	events chan sources.Event
	done   chan error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, cfg *msgraph.Config, cookie []byte) *watch {
	t.Helper()
	w, ok := newSource(t, cfg, sources.Options{}).(sources.Watcher)
	if !ok {
		t.Fatal("the msgraph source is no sources.Watcher")
	}
	ctx, cancel := context.WithCancel(context.Background())
	wt := &watch{events: make(chan sources.Event), done: make(chan error, 1), cancel: cancel}
	go func() { wt.done <- w.Watch(ctx, sources.WatchOptions{Cookie: cookie, Poll: testPoll}, wt.events) }()
	t.Cleanup(func() { wt.stop(t) })
	return wt
}

// stop cancels the watch and checks that it returns nil soon.
func (wt *watch) stop(t *testing.T) {
	t.Helper()
	wt.cancel()
	select {
	case err, ok := <-wt.done:
		if ok && err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
		if ok {
			close(wt.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func (wt *watch) next(t *testing.T) sources.Event {
	t.Helper()
	select {
	case ev := <-wt.events:
		return ev
	case err := <-wt.done:
		t.Fatalf("Watch returned %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return sources.Event{}
}

// established waits for the first event and checks it is a quiet one.
func (wt *watch) established(t *testing.T) []byte {
	t.Helper()
	ev := wt.next(t)
	if len(ev.Changes) != 0 || ev.Reset || ev.Cookie == nil {
		t.Fatalf("first event %+v, want no changes, no reset, a cookie", ev)
	}
	return ev.Cookie
}

// expect gathers events until they hold every change of want (one poll may
// see one collection before a change and the other after it), then checks
// they hold nothing else. It returns the last cookie.
func (wt *watch) expect(t *testing.T, want ...sources.Change) []byte {
	t.Helper()
	got := map[sources.Change]bool{}
	var last []byte
	for !containsAll(got, want) {
		ev := wt.next(t)
		if ev.Reset || ev.Cookie == nil {
			t.Fatalf("event %+v, want changes and a cookie", ev)
		}
		for _, c := range ev.Changes {
			got[c] = true
		}
		last = ev.Cookie
	}
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", slices.Collect(maps.Keys(got)), want)
	}
	return last
}

func containsAll(got map[sources.Change]bool, want []sources.Change) bool {
	for _, c := range want {
		if !got[c] {
			return false
		}
	}
	return true
}

func user(id string) sources.Change  { return sources.Change{ID: id, Kind: sources.ChangeUser} }
func group(id string) sources.Change { return sources.Change{ID: id, Kind: sources.ChangeGroup} }

func deleted(c sources.Change) sources.Change {
	c.Deleted = true
	return c
}

func groupIndex(tn *graphtest.Tenant, id string) *graphtest.Group {
	for i := range tn.Groups {
		if tn.Groups[i].ID == id {
			return &tn.Groups[i]
		}
	}
	panic("no group " + id)
}

func userIndex(tn *graphtest.Tenant, id string) *graphtest.User {
	for i := range tn.Users {
		if tn.Users[i].ID == id {
			return &tn.Users[i]
		}
	}
	panic("no user " + id)
}

func without(ids []string, id string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(x string) bool { return x == id })
}

// urls records every Graph request's path and query, unescaped.
type urls struct {
	mu   sync.Mutex
	list []string
}

func record(srv *graphtest.Server) *urls {
	u := &urls{}
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		q, _ := url.QueryUnescape(r.URL.RawQuery)
		u.mu.Lock()
		u.list = append(u.list, r.URL.Path+"?"+q)
		u.mu.Unlock()
		return 0, nil, "", false
	})
	return u
}

func (u *urls) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.list)
}

func TestWatchReportsChanges(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{DeltaPageSize: 3})
	seen := record(srv)
	w := startWatch(t, configFor(srv), nil)
	w.established(t)

	// Established from now: $deltatoken=latest for both collections, then
	// the scope (the filter, and the groups nested in its groups).
	want := map[string]int{
		"GET /users/delta": 1, "GET /groups/delta": 1, "GET /groups": 1,
		"GET /groups/{id}/transitiveMembers/microsoft.graph.group": 2,
	}
	if got := srv.Requests(); !maps.Equal(got, want) {
		t.Errorf("requests to establish: %v, want %v", got, want)
	}
	for _, u := range seen.all()[:2] {
		if !strings.Contains(u, "$deltatoken=latest") {
			t.Errorf("the feed did not start from now: %s", u)
		}
	}

	for _, step := range feedSteps() {
		srv.Update(step.change)
		t.Run(step.name, func(t *testing.T) { w.expect(t, step.want...) })
		if t.Failed() {
			return
		}
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1 (the token lives an hour)", n)
	}
}

func TestWatchWithoutGroupFilter(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	cfg := configFor(srv)
	cfg.GroupFilter = ""
	w := startWatch(t, cfg, nil)
	w.established(t)
	srv.Update(func(tn *graphtest.Tenant) {
		tn.Groups = append(tn.Groups, graphtest.Group{ID: "g-any", DisplayName: "anything"})
	})
	w.expect(t, group("g-any"))
	srv.Update(func(tn *graphtest.Tenant) {
		g := groupIndex(tn, "g-any")
		g.Members = append(g.Members, "u-erin")
	})
	w.expect(t, group("g-any"))
	if n := srv.Requests()["GET /groups"]; n != 0 {
		t.Errorf("%d scope reads without a group_filter, want none", n)
	}
}

func TestWatchResumesFromCookie(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	seen := record(srv)
	w := startWatch(t, configFor(srv), nil)
	cookie := w.established(t)
	w.stop(t)
	var links map[string]string
	if err := json.Unmarshal(cookie, &links); err != nil || !strings.HasPrefix(links["users"], srv.BaseURL()+"/users/delta?") ||
		!strings.HasPrefix(links["groups"], srv.BaseURL()+"/groups/delta?") {
		t.Fatalf("cookie %s, %v: want both deltaLinks", cookie, err)
	}

	// Changes made while no feed runs come with the resumed feed's first event.
	srv.Update(func(tn *graphtest.Tenant) {
		userIndex(tn, "u-erin").DisplayName = "Erin"
		g := groupIndex(tn, "g-web")
		g.Members = append(g.Members, "u-alice")
	})
	before := len(seen.all())
	w = startWatch(t, configFor(srv), cookie)
	ev := w.next(t)
	if ev.Reset || !slices.Equal(sortChanges(ev.Changes), []sources.Change{group("g-web"), user("u-erin")}) {
		t.Fatalf("first event after resuming %+v", ev)
	}
	for _, u := range seen.all()[before:] {
		if strings.Contains(u, "latest") {
			t.Errorf("a resumed feed started from now: %s", u)
		}
	}
}

func sortChanges(cs []sources.Change) []sources.Change {
	return slices.SortedFunc(slices.Values(cs), func(a, b sources.Change) int { return strings.Compare(a.ID, b.ID) })
}

func TestWatchResets(t *testing.T) {
	for name, end := range map[string]func(*graphtest.Server){
		"410 Gone":          (*graphtest.Server).ResetDeltaSync,
		"syncStateNotFound": (*graphtest.Server).ExpireDeltaTokens,
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFake(t, corp(), graphtest.Options{})
			w := startWatch(t, configFor(srv), nil)
			first := w.established(t)
			end(srv)
			ev := w.next(t)
			if !ev.Reset || len(ev.Changes) != 0 || ev.Cookie == nil || string(ev.Cookie) == string(first) {
				t.Fatalf("event after the links ended: %+v, want a reset with a fresh cookie", ev)
			}
			// The fresh feed goes on.
			srv.Update(func(tn *graphtest.Tenant) { userIndex(tn, "u-bob").DisplayName = "Robert" })
			w.expect(t, user("u-bob"))
		})
	}
	t.Run("a cookie that is no deltaLink of base_url", func(t *testing.T) {
		srv := newFake(t, corp(), graphtest.Options{})
		for _, cookie := range []string{`not json`, `{"users":"https://graph.example/v1.0/users/delta?$deltatoken=x","groups":"https://graph.example/v1.0/groups/delta?$deltatoken=y"}`} {
			w := startWatch(t, configFor(srv), []byte(cookie))
			if ev := w.next(t); !ev.Reset || ev.Cookie == nil {
				t.Errorf("cookie %s: first event %+v, want a reset", cookie, ev)
			}
			w.stop(t)
		}
	})
	t.Run("resuming from an expired cookie", func(t *testing.T) {
		srv := newFake(t, corp(), graphtest.Options{})
		w := startWatch(t, configFor(srv), nil)
		cookie := w.established(t)
		w.stop(t)
		srv.ExpireDeltaTokens()
		w = startWatch(t, configFor(srv), cookie)
		if ev := w.next(t); !ev.Reset {
			t.Errorf("first event %+v, want a reset", ev)
		}
	})
}

func TestWatchIdleCostsTwoRequestsAPoll(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	w := startWatch(t, configFor(srv), nil)
	w.established(t)
	established := srv.Requests()
	time.Sleep(20 * testPoll)
	w.stop(t)
	got := srv.Requests()
	users := got["GET /users/delta"] - established["GET /users/delta"]
	groups := got["GET /groups/delta"] - established["GET /groups/delta"]
	if users < 5 || (users != groups && users != groups+1) {
		t.Errorf("%d /users/delta and %d /groups/delta requests idle; want one of each a poll", users, groups)
	}
	delete(got, "GET /users/delta")
	delete(got, "GET /groups/delta")
	delete(established, "GET /users/delta")
	delete(established, "GET /groups/delta")
	if !maps.Equal(got, established) {
		t.Errorf("idle polls made other requests: %v, then %v", established, got)
	}
	select {
	case ev := <-w.events:
		t.Errorf("an idle feed sent %+v", ev)
	default:
	}
}

func TestWatchRetriesAndRenewsTokens(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	w := startWatch(t, configFor(srv), nil)
	w.established(t)
	srv.ExpireTokens()
	srv.Throttle(1, 0)
	srv.Update(func(tn *graphtest.Tenant) { userIndex(tn, "u-carol").MobilePhone = "+1 555 0199" })
	w.expect(t, user("u-carol"))
	if n := srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (one renewal after the expiry)", n)
	}
}

func TestWatchFailsOnAnError(t *testing.T) {
	srv := newFake(t, corp(), graphtest.Options{})
	w := startWatch(t, configFor(srv), nil)
	w.established(t)
	srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
		return http.StatusForbidden, nil, `{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}`, true
	})
	select {
	case err := <-w.done:
		if err == nil || !strings.Contains(err.Error(), "GET /users/delta answered 403") {
			t.Errorf("Watch = %v, want the 403", err)
		}
		w.done <- nil // for stop
	case <-time.After(5 * time.Second):
		t.Fatal("Watch went on after a 403")
	}
}

// feedStep is one edit of the corp() tenant and the changes the feed
// reports for it.
type feedStep struct {
	name   string
	change func(tn *graphtest.Tenant)
	want   []sources.Change
}

// feedSteps are a series of edits covering what the feed reports and what
// it leaves out (with configFor's group_filter).
func feedSteps() []feedStep {
	return []feedStep{
		{"a member added", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-web")
			g.Members = append(g.Members, "u-erin")
		}, []sources.Change{group("g-web")}},
		{"a member removed", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-db")
			g.Members = without(g.Members, "u-bob")
		}, []sources.Change{group("g-db")}},
		{"a user renamed", func(tn *graphtest.Tenant) {
			userIndex(tn, "u-carol").DisplayName = "Carol Chen-Smith"
		}, []sources.Change{user("u-carol")}},
		{"a user deleted, leaving their groups", func(tn *graphtest.Tenant) {
			tn.Users = slices.DeleteFunc(tn.Users, func(u graphtest.User) bool { return u.ID == "u-dave" })
			g := groupIndex(tn, "g-db")
			g.Members = without(g.Members, "u-dave")
		}, []sources.Change{deleted(user("u-dave")), group("g-db")}},
		{"a user disabled", func(tn *graphtest.Tenant) {
			userIndex(tn, "u-alice").AccountEnabled = false
		}, []sources.Change{user("u-alice")}},
		{"a new group in the filter", func(tn *graphtest.Tenant) {
			tn.Groups = append(tn.Groups, graphtest.Group{ID: "g-new", DisplayName: "oncall-new", Members: []string{"u-alice"}})
		}, []sources.Change{group("g-new")}},
		{"a member of the new group: in the scope now", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-new")
			g.Members = append(g.Members, "u-erin")
		}, []sources.Change{group("g-new")}},
		{"a member of a group nested in the filter's", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-contractors")
			g.Members = append(g.Members, "u-erin")
		}, []sources.Change{group("g-contractors")}},
		{"a new group outside the filter: a property change, so reported", func(tn *graphtest.Tenant) {
			tn.Groups = append(tn.Groups, graphtest.Group{ID: "g-social", DisplayName: "social"})
		}, []sources.Change{group("g-social")}},
		{"members of a group outside the filter are not", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-social")
			g.Members = append(g.Members, "u-erin", "u-bob")
			userIndex(tn, "u-erin").DisplayName = "Erin E." // something to wait for
		}, []sources.Change{user("u-erin")}},
		{"renamed into the filter", func(tn *graphtest.Tenant) {
			groupIndex(tn, "g-social").DisplayName = "oncall-social"
		}, []sources.Change{group("g-social")}},
		{"its members count from then on", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-social")
			g.Members = without(g.Members, "u-bob")
		}, []sources.Change{group("g-social")}},
		{"renamed out of the filter", func(tn *graphtest.Tenant) {
			groupIndex(tn, "g-web").DisplayName = "web"
		}, []sources.Change{group("g-web")}},
		{"its members no longer count", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-web")
			g.Members = without(g.Members, "u-erin")
			userIndex(tn, "u-bob").Mail = "bob@new.example"
		}, []sources.Change{user("u-bob")}},
		{"a group deleted", func(tn *graphtest.Tenant) {
			tn.Groups = slices.DeleteFunc(tn.Groups, func(g graphtest.Group) bool { return g.ID == "g-new" })
		}, []sources.Change{deleted(group("g-new"))}},
		{"a group outside the filter", func(tn *graphtest.Tenant) {
			tn.Groups = append(tn.Groups, graphtest.Group{ID: "g-helpers", DisplayName: "helpers"})
		}, []sources.Change{group("g-helpers")}},
		{"nested in a group of the filter", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-db")
			g.Members = append(g.Members, "g-helpers")
		}, []sources.Change{group("g-db")}},
		{"its members count from then on (nested)", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-helpers")
			g.Members = append(g.Members, "u-erin")
		}, []sources.Change{group("g-helpers")}},
		{"no longer nested", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-db")
			g.Members = without(g.Members, "g-helpers")
		}, []sources.Change{group("g-db")}},
		{"its members no longer count (nested)", func(tn *graphtest.Tenant) {
			g := groupIndex(tn, "g-helpers")
			g.Members = nil
			userIndex(tn, "u-erin").DisplayName = "Erin Evans"
		}, []sources.Change{user("u-erin")}},
		{"many changes span pages", func(tn *graphtest.Tenant) {
			for i := range 5 {
				id := fmt.Sprintf("u-new-%d", i)
				tn.Users = append(tn.Users, graphtest.User{ID: id, Mail: id + "@example.com", AccountEnabled: true})
				g := groupIndex(tn, "g-db")
				g.Members = append(g.Members, id)
			}
		}, []sources.Change{user("u-new-0"), user("u-new-1"), user("u-new-2"), user("u-new-3"), user("u-new-4"), group("g-db")}},
	}
}
