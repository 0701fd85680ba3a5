package okta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/okta"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

const poll = 20 * time.Millisecond

// feed is a running Watch.
type feed struct {
	events chan sources.Event
	errs   chan error
	cancel context.CancelFunc
}

func watch(t *testing.T, cfg *okta.Config, cookie []byte, every time.Duration) *feed {
	t.Helper()
	src := newSource(t, cfg, sources.Options{}).(sources.Watcher)
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{events: make(chan sources.Event), errs: make(chan error, 1), cancel: cancel}
	go func() { f.errs <- src.Watch(ctx, sources.WatchOptions{Cookie: cookie, Poll: every}, f.events) }()
	t.Cleanup(cancel)
	return f
}

// next waits for the feed's next event.
func (f *feed) next(t *testing.T) sources.Event {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case err := <-f.errs:
		t.Fatalf("Watch returned %v before the event", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sources.Event{}
}

// changes reads events until n changes came, and returns them with the
// last event's cookie.
func (f *feed) changes(t *testing.T, n int) ([]sources.Change, []byte) {
	t.Helper()
	var got []sources.Change
	var cookie []byte
	for len(got) < n {
		ev := f.next(t)
		if ev.Reset {
			t.Fatalf("unexpected reset: %+v", ev)
		}
		got = append(got, ev.Changes...)
		cookie = ev.Cookie
	}
	if len(got) > n {
		t.Fatalf("%d changes, want %d: %+v", len(got), n, got)
	}
	return got, cookie
}

// stop cancels the feed and checks that Watch returns nil.
func (f *feed) stop(t *testing.T) {
	t.Helper()
	f.cancel()
	select {
	case err := <-f.errs:
		if err != nil {
			t.Fatalf("Watch after cancel: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

// withoutTimes drops the changes' times, checking each is a published time
// between from and to.
func withoutTimes(t *testing.T, changes []sources.Change, from, to time.Time) []sources.Change {
	t.Helper()
	out := slices.Clone(changes)
	for i, c := range out {
		if c.At.Before(from.Truncate(time.Millisecond)) || c.At.After(to) {
			t.Errorf("change %+v: At not between %v and %v", c, from, to)
		}
		out[i].At = time.Time{}
	}
	return out
}

// logsApp is a service app granted the System Log besides users and groups.
func logsApp(t *testing.T) (oktatest.Options, func(*oktatest.Server) *okta.Config) {
	return serviceApp(t, []string{"okta.users.read", "okta.groups.read", "okta.logs.read"})
}

func TestWatchReportsChanges(t *testing.T) {
	for _, auth := range []string{"api token", "service app"} {
		t.Run(auth, func(t *testing.T) {
			opts, cfgFor := oktatest.Options{}, configFor
			if auth == "service app" {
				opts, cfgFor = logsApp(t)
			}
			srv := newFake(t, corp(), opts)
			var mu sync.Mutex
			var queries []url.Values
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Path == "/api/v1/logs" {
					mu.Lock()
					queries = append(queries, r.URL.Query())
					mu.Unlock()
				}
				return 0, nil, "", false
			})
			before := time.Now()
			f := watch(t, cfgFor(srv), nil, poll)
			if first := f.next(t); len(first.Changes) != 0 || first.Reset || first.Cookie == nil {
				t.Fatalf("first event %+v, want no changes and a cookie", first)
			}

			srv.AddMember("g-web", "u-alice")
			srv.RemoveMember("g-db", "u-carol")
			srv.DeactivateUser("u-bob")
			srv.SuspendUser("u-alice")
			srv.UnsuspendUser("u-alice")
			srv.UpdateUser("u-erin", oktatest.Profile{Login: "erin@example.com", Email: "erin@example.com", DisplayName: "Erin E."})
			srv.DeleteUser("u-dee")
			srv.CreateUser(oktatest.User{ID: "u-new", Profile: oktatest.Profile{Login: "new@example.com", Email: "new@example.com"}})
			srv.CreateGroup(oktatest.Group{ID: "g-new", Name: "oncall-new"})
			srv.UpdateGroup("g-web", "oncall-frontend", "")
			srv.DeleteGroup("g-all")
			got, _ := f.changes(t, 12)
			want := []sources.Change{
				{ID: "g-web", Kind: sources.ChangeGroup},
				{ID: "g-db", Kind: sources.ChangeGroup},
				{ID: "u-bob", Kind: sources.ChangeUser}, // deactivated: disabled, not gone
				{ID: "u-alice", Kind: sources.ChangeUser},
				{ID: "u-alice", Kind: sources.ChangeUser},
				{ID: "u-erin", Kind: sources.ChangeUser},
				{ID: "u-dee", Kind: sources.ChangeUser, Deleted: true},
				{ID: "u-new", Kind: sources.ChangeUser}, // created
				{ID: "u-new", Kind: sources.ChangeUser}, // activated
				{ID: "g-new", Kind: sources.ChangeGroup},
				{ID: "g-web", Kind: sources.ChangeGroup},
				{ID: "g-all", Kind: sources.ChangeGroup, Deleted: true},
			}
			if got := withoutTimes(t, got, before, time.Now()); !slices.Equal(got, want) {
				t.Errorf("changes:\n%+v\nwant\n%+v", got, want)
			}
			f.stop(t)

			// The IDs are the snapshot's.
			snap := fetch(t, newSource(t, cfgFor(srv), sources.Options{}))
			if _, ok := snap.Users["u-bob"]; !ok || !slices.ContainsFunc(snap.Groups, func(g sources.Group) bool { return g.ID == "g-web" }) {
				t.Errorf("snapshot %+v lacks the changed objects", snap)
			}

			mu.Lock()
			defer mu.Unlock()
			q := queries[0]
			since, err := time.Parse(time.RFC3339, q.Get("since"))
			if err != nil || since.After(before) || before.Sub(since) > 2*time.Minute || q.Get("sortOrder") != "ASCENDING" ||
				q.Get("limit") != "1000" || q.Has("until") || !strings.Contains(q.Get("filter"), `eventType eq "group.user_membership.add" or `) {
				t.Errorf("first request %v", q)
			}
			for _, q := range queries[1:] {
				if q.Get("after") == "" {
					t.Fatalf("a later poll did not follow the next link: %v", q)
				}
			}
		})
	}
}

// TestWatchStartsWithRecentChanges: a fresh feed starts a little before
// now, and reads a burst bigger than a page in one poll.
func TestWatchStartsWithRecentChanges(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	for i := range 1001 {
		srv.UpdateUser("u-erin", oktatest.Profile{Login: fmt.Sprint(i)})
	}
	f := watch(t, configFor(srv), nil, time.Hour)
	first := f.next(t)
	if len(first.Changes) != 1001 || first.Changes[1000].ID != "u-erin" {
		t.Fatalf("first event has %d changes, want the 1001 made a moment before", len(first.Changes))
	}
	if n := srv.Requests()["GET /api/v1/logs"]; n != 2 {
		t.Errorf("%d requests for 1001 events, want 2", n)
	}
	f.stop(t)
}

func TestWatchResumesFromCookie(t *testing.T) {
	opts, cfgFor := logsApp(t)
	srv := newFake(t, corp(), opts)
	f := watch(t, cfgFor(srv), nil, poll)
	f.next(t)
	srv.AddMember("g-web", "u-erin")
	_, cookie := f.changes(t, 1)
	f.stop(t)

	// Changes while no feed runs arrive when one resumes from the cookie,
	// and nothing from before it.
	srv.RemoveMember("g-web", "u-erin")
	srv.DeactivateUser("u-erin")
	f = watch(t, cfgFor(srv), cookie, poll)
	first := f.next(t)
	if first.Reset || len(first.Changes) != 2 || first.Changes[0].ID != "g-web" || first.Changes[1].ID != "u-erin" {
		t.Fatalf("resumed: %+v, want the two changes made since", first)
	}
	f.stop(t)
}

func TestWatchResets(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	f := watch(t, configFor(srv), nil, poll)
	f.next(t)
	srv.AddMember("g-web", "u-erin")
	_, cookie := f.changes(t, 1)
	f.stop(t)
	var c map[string]any
	if err := json.Unmarshal(cookie, &c); err != nil {
		t.Fatalf("cookie %s: %v", cookie, err)
	}
	recode := func(key string, v any) []byte {
		m := map[string]any{}
		for k, v := range c {
			m[k] = v
		}
		m[key] = v
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other := newFake(t, corp(), oktatest.Options{})
	var refused sync.Once

	for name, tc := range map[string]struct {
		cookie []byte
		fault  oktatest.Fault
	}{
		"refused with 400": {cookie: cookie, fault: func(r *http.Request, _ int) (status int, h http.Header, body string, handled bool) {
			if r.URL.Query().Get("after") != "" {
				refused.Do(func() {
					status, h, handled = http.StatusBadRequest, http.Header{"Content-Type": {"application/json"}}, true
					body = `{"errorCode":"E0000053","errorSummary":"Invalid parameter: The since parameter is over 180 days prior to the current day.","errorId":"x"}`
				})
			}
			return status, h, body, handled
		}},
		"older than the System Log keeps": {cookie: recode("at", time.Now().Add(-90*24*time.Hour))},
		"of another org":                  {cookie: recode("next", other.URL()+"/api/v1/logs?after=x")},
		"for other event types":           {cookie: recode("filter", `eventType eq "group.user_membership.add"`)},
		"not a cookie":                    {cookie: []byte("a1b2c3")},
	} {
		t.Run(name, func(t *testing.T) {
			srv.SetFault(tc.fault)
			defer srv.SetFault(nil)
			f := watch(t, configFor(srv), tc.cookie, poll)
			// The fresh feed starts a minute back: the first event holds
			// the changes of the cases before.
			if first := f.next(t); !first.Reset || first.Cookie == nil {
				t.Fatalf("first event reset %v, cookie %s; want a reset with a fresh cookie", first.Reset, first.Cookie)
			}
			// The fresh feed goes on.
			srv.UpdateGroup("g-web", "oncall-web", name)
			if got, _ := f.changes(t, 1); got[0].ID != "g-web" {
				t.Errorf("after the reset: %+v", got)
			}
			f.stop(t)
		})
	}
	if n := other.TotalRequests(); n != 0 {
		t.Errorf("%d requests went to the org of another's cookie", n)
	}
}

// TestWatchIdlePoll: each idle poll is one request, and sends the moving
// cookie with no changes.
func TestWatchIdlePoll(t *testing.T) {
	opts, cfgFor := logsApp(t)
	srv := newFake(t, corp(), opts)
	f := watch(t, cfgFor(srv), nil, poll)
	var cookies [][]byte
	for range 5 {
		ev := f.next(t)
		if len(ev.Changes) != 0 || ev.Reset {
			t.Fatalf("idle event %+v", ev)
		}
		cookies = append(cookies, ev.Cookie)
	}
	// The feed is blocked sending the sixth: five polls, five requests.
	time.Sleep(5 * poll)
	if logs, tokens, total := srv.Requests()["GET /api/v1/logs"], srv.TokenRequests(), srv.TotalRequests(); logs != 6 || tokens != 1 || total != 7 {
		t.Errorf("%d logs requests, %d token requests, %d in all; want 6, 1, 7", logs, tokens, total)
	}
	if bytes.Equal(cookies[0], cookies[1]) {
		t.Error("the cookie does not move")
	}
	f.stop(t)
}

// TestWatchDelayedEvents: an event Okta stores late is still reported when
// it is stored, after polls that came later than its published time.
func TestWatchDelayedEvents(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{LogDelay: 200 * time.Millisecond})
	f := watch(t, configFor(srv), nil, poll)
	f.next(t)
	published := time.Now()
	srv.AddMember("g-web", "u-erin")
	got, _ := f.changes(t, 1)
	if seen := time.Now(); seen.Sub(published) < 200*time.Millisecond || got[0].At.Sub(published) > 100*time.Millisecond {
		t.Errorf("change %+v seen %v after it was made", got[0], seen.Sub(published))
	}
	f.stop(t)
}

func TestWatchRespectsRateLimit(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{RateLimit: 3, RateWindow: time.Second})
	f := watch(t, configFor(srv), nil, time.Millisecond)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		f.next(t)
	}
	f.stop(t)
	if n, v := srv.Requests()["GET /api/v1/logs"], srv.RateLimitViolations(); v != 0 || n < 4 {
		t.Errorf("%d requests, %d while the bucket was spent", n, v)
	}
}

func TestWatchErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		scopes []string // a service app's; nil: the API token
		fault  oktatest.Fault
		want   string
	}{
		"service app without okta.logs.read": {scopes: []string{"okta.users.read", "okta.groups.read"}, want: "consent_required"},
		"API token that may not read the log": {fault: func(r *http.Request, _ int) (int, http.Header, string, bool) {
			return http.StatusForbidden, http.Header{"Content-Type": {"application/json"}},
				`{"errorCode":"E0000006","errorSummary":"You do not have permission to perform the requested action","errorId":"x","errorCauses":[]}`, true
		}, want: "may not read the System Log"},
		"no next link": {fault: func(r *http.Request, _ int) (int, http.Header, string, bool) {
			return http.StatusOK, http.Header{"Content-Type": {"application/json"}}, `[]`, true
		}, want: "without a next link"},
	} {
		t.Run(name, func(t *testing.T) {
			opts, cfgFor := oktatest.Options{}, configFor
			if tc.scopes != nil {
				opts, cfgFor = serviceApp(t, tc.scopes)
			}
			srv := newFake(t, corp(), opts)
			srv.SetFault(tc.fault)
			f := watch(t, cfgFor(srv), nil, poll)
			select {
			case err := <-f.errs:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Watch = %v, want an error saying %q", err, tc.want)
				}
				if tc.scopes != nil && !strings.Contains(err.Error(), "requested: okta.logs.read") {
					t.Errorf("%v does not name the scope", err)
				}
			case ev := <-f.events:
				t.Fatalf("event %+v, want an error", ev)
			case <-time.After(10 * time.Second):
				t.Fatal("Watch did not fail")
			}
		})
	}
}

// TestWatchCancelWhileSending: a feed nobody reads still ends with ctx.
func TestWatchCancelWhileSending(t *testing.T) {
	srv := newFake(t, corp(), oktatest.Options{})
	f := watch(t, configFor(srv), nil, poll)
	for srv.Requests()["GET /api/v1/logs"] == 0 {
		time.Sleep(time.Millisecond)
	}
	f.stop(t)
}
