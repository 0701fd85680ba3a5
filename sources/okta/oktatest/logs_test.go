package oktatest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

type logTarget struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId"`
	DisplayName string `json:"displayName"`
}

type logEvent struct {
	UUID      string      `json:"uuid"`
	Published string      `json:"published"`
	EventType string      `json:"eventType"`
	Actor     logTarget   `json:"actor"`
	Target    []logTarget `json:"target"`
	Outcome   struct {
		Result string `json:"result"`
	} `json:"outcome"`
}

// logs GETs /api/v1/logs with query and returns its events and links.
func logs(t *testing.T, s *oktatest.Server, query string) (events []logEvent, next string) {
	t.Helper()
	return logsAt(t, s.URL()+"/api/v1/logs?"+query)
}

func logsAt(t *testing.T, u string) (events []logEvent, next string) {
	t.Helper()
	r := get(t, u, ssws())
	self, next := links(t, r)
	if self != u {
		t.Errorf("self %q, want %q", self, u)
	}
	return decode[[]logEvent](t, r), next
}

func types(events []logEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.EventType)
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestChangesAreLogged makes every kind of change and reads it back, in
// order, from a polling request; the org served changes with it.
func TestChangesAreLogged(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	start := c.Now()
	for _, change := range []func(){
		func() { s.AddMember(groupID(1), userID(1)) },
		func() { s.RemoveMember(groupID(0), userID(0)) },
		func() {
			s.CreateUser(oktatest.User{ID: "00unew", Profile: oktatest.Profile{Login: "new@example.com", FirstName: "New", LastName: "Hire"}})
		},
		func() { s.SuspendUser("00unew") },
		func() { s.UnsuspendUser("00unew") },
		func() { s.UpdateUser("00unew", oktatest.Profile{Login: "new@example.com", DisplayName: "Newt Hire"}) },
		func() { s.DeactivateUser(userID(2)) },
		func() { s.DeleteUser(userID(2)) },
		func() { s.CreateUser(oktatest.User{ID: "00ustaged", Status: "STAGED"}) },
		func() { s.ActivateUser("00ustaged") },
	} {
		c.Advance(time.Second)
		change()
	}

	events, next := logs(t, s, "since="+url.QueryEscape(start.Format(time.RFC3339Nano))+"&limit=1000")
	want := []string{
		"group.user_membership.add", "group.user_membership.remove", "user.lifecycle.create", "user.lifecycle.activate",
		"user.lifecycle.suspend", "user.lifecycle.unsuspend", "user.account.update_profile", "user.lifecycle.deactivate",
		"user.lifecycle.delete.initiated", "user.lifecycle.create", "user.lifecycle.activate",
	}
	if got := types(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if next == "" {
		t.Error("a polling request without a next link")
	}
	seen := map[string]bool{}
	for _, e := range events {
		if !uuidRE.MatchString(e.UUID) || seen[e.UUID] {
			t.Errorf("uuid %q: not a fresh UUID", e.UUID)
		}
		seen[e.UUID] = true
		if e.Actor.ID == "" || e.Actor.Type != "User" || e.Outcome.Result != "SUCCESS" {
			t.Errorf("%s: actor %+v, outcome %q", e.EventType, e.Actor, e.Outcome.Result)
		}
	}
	add := events[0]
	if add.Published != stamp(start.Add(time.Second)) || len(add.Target) != 2 ||
		add.Target[0] != (logTarget{userID(1), "User", "user1@example.com", "User 1"}) ||
		add.Target[1].ID != groupID(1) || add.Target[1].Type != "UserGroup" || add.Target[1].DisplayName != "Group 1" {
		t.Errorf("membership event %+v", add)
	}
	if u := events[6].Target; len(u) != 1 || u[0].ID != "00unew" || u[0].DisplayName != "Newt Hire" {
		t.Errorf("profile update targets %+v", u)
	}
	// Creating an activated user logs both events at once.
	if events[2].Published != stamp(start.Add(3*time.Second)) || events[3].Published != events[2].Published {
		t.Errorf("create and activate published %s and %s", events[2].Published, events[3].Published)
	}

	// The org served changed with the log.
	if got := ids(t, get(t, s.URL()+"/api/v1/groups/"+groupID(1)+"/users", ssws())); !slices.Equal(got, []string{userID(0), userID(1)}) {
		t.Errorf("group 1 members %v", got)
	}
	if got := ids(t, get(t, s.URL()+"/api/v1/groups/"+groupID(0)+"/users", ssws())); len(got) != 0 {
		t.Errorf("group 0 members %v: removed and deleted users remain", got)
	}
	if got := ids(t, get(t, s.URL()+"/api/v1/users", ssws())); !slices.Equal(got, []string{userID(0), userID(1), "00unew", "00ustaged"}) {
		t.Errorf("users %v", got)
	}
}

func TestGroupChangesAreLogged(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	start := c.Now()
	s.CreateGroup(oktatest.Group{ID: "00gnew", Name: "oncall-new", Members: []string{userID(1), userID(2)}})
	s.UpdateGroup("00gnew", "oncall-renamed", "now described")
	s.DeleteGroup(groupID(0))
	events, _ := logs(t, s, "since="+url.QueryEscape(start.Format(time.RFC3339)))
	want := []string{"group.lifecycle.create", "group.user_membership.add", "group.user_membership.add", "group.profile.update", "group.lifecycle.delete"}
	if got := types(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	if g := events[3].Target; len(g) != 1 || g[0].ID != "00gnew" || g[0].Type != "UserGroup" || g[0].DisplayName != "oncall-renamed" {
		t.Errorf("rename targets %+v", g)
	}
	if got := ids(t, get(t, s.URL()+"/api/v1/groups", ssws())); !slices.Equal(got, []string{groupID(1), "00gnew"}) {
		t.Errorf("groups %v", got)
	}
}

func TestChangeHelpersRefuseWhatOktaRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(s *oktatest.Server)
		want   string
	}{
		"suspend a staged user": {func(s *oktatest.Server) {
			s.CreateUser(oktatest.User{ID: "00us", Status: "STAGED"})
			s.SuspendUser("00us")
		}, `SuspendUser: user "00us" is STAGED`},
		"delete an active user":     {func(s *oktatest.Server) { s.DeleteUser(userID(0)) }, "deactivate it first"},
		"deactivate twice":          {func(s *oktatest.Server) { s.DeactivateUser(userID(0)); s.DeactivateUser(userID(0)) }, "is DEPROVISIONED"},
		"add a member twice":        {func(s *oktatest.Server) { s.AddMember(groupID(0), userID(0)) }, "already a member"},
		"remove a non-member":       {func(s *oktatest.Server) { s.RemoveMember(groupID(0), userID(1)) }, "not a member"},
		"an unknown user":           {func(s *oktatest.Server) { s.UpdateUser("00unope", oktatest.Profile{}) }, `no user "00unope"`},
		"create a suspended user":   {func(s *oktatest.Server) { s.CreateUser(oktatest.User{ID: "00ux", Status: "SUSPENDED"}) }, "does not create users SUSPENDED"},
		"create a user twice":       {func(s *oktatest.Server) { s.CreateUser(oktatest.User{ID: userID(0)}) }, "repeated"},
		"a group with a stranger":   {func(s *oktatest.Server) { s.CreateGroup(oktatest.Group{ID: "00gx", Members: []string{"00unope"}}) }, `no user "00unope"`},
		"delete an unknown group":   {func(s *oktatest.Server) { s.DeleteGroup("00gnope") }, `no group "00gnope"`},
		"activate an active user":   {func(s *oktatest.Server) { s.ActivateUser(userID(0)) }, "is ACTIVE"},
		"unsuspend an active user":  {func(s *oktatest.Server) { s.UnsuspendUser(userID(0)) }, "is ACTIVE"},
		"update an unknown group":   {func(s *oktatest.Server) { s.UpdateGroup("00gnope", "x", "") }, `no group "00gnope"`},
		"remove from unknown group": {func(s *oktatest.Server) { s.RemoveMember("00gnope", userID(0)) }, `no group "00gnope"`},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newServer(t, smallOrg, nil)
			before := len(decode[[]logEvent](t, get(t, s.URL()+"/api/v1/logs", ssws())))
			func() {
				defer func() {
					if r := recover(); !strings.Contains(fmt.Sprint(r), tc.want) {
						t.Errorf("panic %v, want %q", r, tc.want)
					}
				}()
				tc.change(s)
			}()
			// The refused change logged nothing (a two-step case logs its
			// first step).
			after := len(decode[[]logEvent](t, get(t, s.URL()+"/api/v1/logs", ssws())))
			if after-before > 1 {
				t.Errorf("%d events logged by a refused change", after-before)
			}
		})
	}
}

// TestLogsPolling follows a polling request's next links: always present,
// empty while nothing happens, then the new events, page by page.
func TestLogsPolling(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	first := s.URL() + "/api/v1/logs?since=" + url.QueryEscape(stamp(c.Now())) + "&sortOrder=ASCENDING&limit=2"
	events, next := logsAt(t, first)
	if len(events) != 0 || next == "" {
		t.Fatalf("an idle polling request: %d events, next %q", len(events), next)
	}
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("after") == "" || q.Get("limit") != "2" || q.Get("sortOrder") != "ASCENDING" || q.Get("since") == "" ||
		!strings.HasPrefix(next, s.URL()+"/api/v1/logs?") {
		t.Errorf("next link %q does not keep the query", next)
	}
	if events, again := logsAt(t, next); len(events) != 0 || again == "" {
		t.Fatalf("still idle: %d events, next %q", len(events), again)
	}

	for i := range 5 {
		c.Advance(time.Second)
		s.UpdateUser(userID(i%3), oktatest.Profile{Login: fmt.Sprint(i)})
	}
	var sizes []int
	var all []logEvent
	for range 4 {
		var page []logEvent
		page, next = logsAt(t, next)
		if next == "" {
			t.Fatal("a polling page without a next link")
		}
		sizes = append(sizes, len(page))
		all = append(all, page...)
	}
	if !slices.Equal(sizes, []int{2, 2, 1, 0}) {
		t.Errorf("page sizes %v, want 2 2 1 0", sizes)
	}
	for i, e := range all {
		if want := stamp(time.Date(2026, 3, 4, 5, 6, 8+i, 250_000_000, time.UTC)); e.Published != want {
			t.Errorf("event %d published %s, want %s", i, e.Published, want)
		}
	}

	// The next link of the last page returns what comes later, once.
	c.Advance(time.Second)
	s.AddMember(groupID(1), userID(1))
	if events, _ := logsAt(t, next); !slices.Equal(types(events), []string{"group.user_membership.add"}) {
		t.Errorf("after a new change: %v", types(events))
	}
	if n := s.Requests()["GET /api/v1/logs"]; n != 7 {
		t.Errorf("%d requests", n)
	}
}

// TestLogsPersistenceDelay: an event is seen LogDelay after it was published.
// A polling request still returns it, after events published later may have
// been; a bounded request made before it was persisted misses it.
func TestLogsPersistenceDelay(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.LogDelay = 5 * time.Second })
	start := c.Now()
	_, next := logs(t, s, "since="+url.QueryEscape(stamp(start)))
	s.UpdateUser(userID(0), oktatest.Profile{Login: "a"})
	c.Advance(2 * time.Second)
	bounded := "since=" + url.QueryEscape(stamp(start)) + "&until=" + url.QueryEscape(stamp(c.Now()))
	if events, more := logs(t, s, bounded); len(events) != 0 || more != "" {
		t.Errorf("a bounded request saw an event not yet persisted: %v, next %q", types(events), more)
	}
	events, next := logsAt(t, next)
	if len(events) != 0 {
		t.Fatalf("polled before persistence: %v", types(events))
	}
	c.Advance(4 * time.Second)
	events, _ = logsAt(t, next)
	if len(events) != 1 || events[0].Published != stamp(start) {
		t.Fatalf("polled after persistence: %+v, want the event published at %s", events, stamp(start))
	}
	if events, _ := logs(t, s, bounded); len(events) != 1 {
		t.Errorf("a bounded request after persistence: %v", types(events))
	}
}

func TestLogsBounded(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	start := c.Now()
	for i := range 5 {
		c.Advance(time.Second)
		s.UpdateUser(userID(0), oktatest.Profile{Login: fmt.Sprint(i)})
	}
	c.Advance(time.Hour)
	bounds := "since=" + url.QueryEscape(stamp(start.Add(2*time.Second))) + "&until=" + url.QueryEscape(stamp(start.Add(4*time.Second)))
	for _, tc := range []struct {
		order string
		want  []string
	}{
		{"ASCENDING", []string{"1", "2", "3"}},
		{"DESCENDING", []string{"3", "2", "1"}},
	} {
		var got []string
		var pages int
		for u := s.URL() + "/api/v1/logs?" + bounds + "&sortOrder=" + tc.order + "&limit=2"; u != ""; pages++ {
			var events []logEvent
			events, u = logsAt(t, u)
			for _, e := range events {
				got = append(got, e.Target[0].AlternateID)
			}
		}
		if !slices.Equal(got, tc.want) || pages != 2 {
			t.Errorf("%s: %v in %d pages, want %v in 2", tc.order, got, pages, tc.want)
		}
	}
	// Without since, a bounded request reaches 7 days back; descending
	// without until is bounded by now.
	if events, next := logs(t, s, "sortOrder=DESCENDING"); len(events) != 5 || next != "" {
		t.Errorf("descending: %d events, next %q", len(events), next)
	}
	c.Advance(7 * 24 * time.Hour)
	if events, next := logs(t, s, "until="+url.QueryEscape(stamp(c.Now()))); len(events) != 0 || next != "" {
		t.Errorf("7 days later, the default since: %d events, next %q", len(events), next)
	}
}

func TestLogsFilter(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	since := "since=" + url.QueryEscape(stamp(c.Now()))
	s.AddMember(groupID(1), userID(1))
	s.UpdateUser(userID(0), oktatest.Profile{Login: "zero"})
	s.SuspendUser(userID(2))
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`eventType eq "user.lifecycle.suspend" or eventType eq "group.user_membership.add"`, []string{"group.user_membership.add", "user.lifecycle.suspend"}},
		{`eventType sw "user."`, []string{"user.account.update_profile", "user.lifecycle.suspend"}},
		{`eventType ew ".add"`, []string{"group.user_membership.add"}},
		{`eventType co "lifecycle"`, []string{"user.lifecycle.suspend"}},
		{`eventType ne "user.lifecycle.suspend"`, []string{"group.user_membership.add", "user.account.update_profile"}},
		{`target.id eq "` + groupID(1) + `"`, []string{"group.user_membership.add"}},
		{`target.id eq "` + userID(1) + `" and target.type eq "UserGroup"`, []string{"group.user_membership.add"}},
		{`target.id eq "` + userID(0) + `"`, []string{"user.account.update_profile"}},
		{`actor.type eq "User" and (eventType eq "x" or target.id eq "` + userID(2) + `")`, []string{"user.lifecycle.suspend"}},
		{`EventType eq "user.lifecycle.suspend"`, nil}, // attribute names are case-sensitive: unknown
	} {
		r := get(t, s.URL()+"/api/v1/logs?"+since+"&filter="+url.QueryEscape(tc.filter), ssws())
		if tc.want == nil {
			if e := wantError(t, r, http.StatusBadRequest, "E0000053"); !strings.HasPrefix(e.ErrorSummary, "Invalid filter '") {
				t.Errorf("%s: %q", tc.filter, e.ErrorSummary)
			}
			continue
		}
		if got := types(decode[[]logEvent](t, r)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}
	for _, filter := range []string{`published gt "2026-01-01T00:00:00Z"`, `eventType eqq "x"`, `eventType eq`, `(eventType eq "x"`, `nope eq "x"`} {
		wantError(t, get(t, s.URL()+"/api/v1/logs?filter="+url.QueryEscape(filter), ssws()), http.StatusBadRequest, "E0000053")
	}
	// Valid in Okta, not modelled here.
	for _, q := range []string{"filter=" + url.QueryEscape(`client.ipAddress eq "184.73.186.14"`), "q=logout"} {
		wantError(t, get(t, s.URL()+"/api/v1/logs?"+q, ssws()), http.StatusNotImplemented, "E0000060")
	}
}

func TestLogsParameters(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	e := wantError(t, get(t, s.URL()+"/api/v1/logs?until=yesterday", ssws()), http.StatusBadRequest, "E0000001")
	if !strings.HasPrefix(e.ErrorSummary, "Api validation failed: 'until': The date format in your query is not recognized.") || len(e.ErrorCauses) != 2 {
		t.Errorf("bad until: %+v", e)
	}
	wantError(t, get(t, s.URL()+"/api/v1/logs?since=2026-03-04", ssws()), http.StatusBadRequest, "E0000001")
	e = wantError(t, get(t, s.URL()+"/api/v1/logs?since="+url.QueryEscape(stamp(c.Now().Add(-181*24*time.Hour))), ssws()), http.StatusBadRequest, "E0000053")
	if e.ErrorSummary != "Invalid parameter: The since parameter is over 180 days prior to the current day." {
		t.Errorf("old since: %q", e.ErrorSummary)
	}
	for _, q := range []string{"limit=-1", "limit=x", "sortOrder=up", "after=forged"} {
		wantError(t, get(t, s.URL()+"/api/v1/logs?"+q, ssws()), http.StatusBadRequest, "E0000001")
	}

	// Events older than 90 days are not returned; a since before that is
	// still accepted.
	start := c.Now()
	s.UpdateUser(userID(0), oktatest.Profile{Login: "old"})
	c.Advance(time.Hour)
	s.UpdateUser(userID(0), oktatest.Profile{Login: "new"})
	c.Set(start.Add(90*24*time.Hour + time.Minute))
	events, next := logs(t, s, "since="+url.QueryEscape(stamp(start)))
	if len(events) != 1 || events[0].Target[0].AlternateID != "new" || next == "" {
		t.Errorf("after 90 days: %+v", events)
	}
	// limit is capped at 1000; 0 is an empty page.
	if events, next := logs(t, s, "since="+url.QueryEscape(stamp(start))+"&limit=0"); len(events) != 0 || next == "" {
		t.Errorf("limit=0: %d events, next %q", len(events), next)
	}
	if events, _ := logs(t, s, "since="+url.QueryEscape(stamp(start))+"&limit=5000"); len(events) != 1 {
		t.Errorf("limit=5000: %d events", len(events))
	}
}

func TestLogsAuth(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) {
		o.Scopes = append(o.Scopes, "okta.logs.read")
		o.RateLimit = 1
	})
	u := s.URL() + "/api/v1/logs"
	if r := get(t, u, bearer(accessToken(t, s, c, "okta.users.read okta.groups.read"))); r.status != http.StatusForbidden ||
		!strings.Contains(r.header.Get("WWW-Authenticate"), `scope="okta.logs.read"`) {
		t.Errorf("a token without okta.logs.read: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	c.Advance(2 * time.Minute) // a new window of each bucket
	if r := get(t, u, bearer(accessToken(t, s, c, "okta.logs.read"))); r.status != http.StatusOK {
		t.Errorf("a token with okta.logs.read: %d %s", r.status, r.body)
	}
	// /api/v1/logs is a bucket of its own.
	c.Advance(2 * time.Minute)
	wantRate(t, get(t, u, ssws()), 200, 1, 0, time.Unix(c.Now().Add(61*time.Second).Unix(), 0))
	wantRate(t, get(t, s.URL()+"/api/v1/users", ssws()), 200, 1, 0, time.Unix(c.Now().Add(61*time.Second).Unix(), 0))
	wantError(t, get(t, u, ssws()), http.StatusTooManyRequests, "E0000047")
}
