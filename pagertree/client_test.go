package pagertree_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

func ptr[T any](v T) *T { return &v }

func TestNewRefusesBadConfig(t *testing.T) {
	valid := pagertree.Config{URL: "https://api.pagertree.com", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		edit    func(*pagertree.Config)
		wantErr string
	}{
		{"no scheme", func(c *pagertree.Config) { c.URL = "api.pagertree.com" }, `pagertree: url "api.pagertree.com": want http(s)://host`},
		{"ftp", func(c *pagertree.Config) { c.URL = "ftp://api.pagertree.com" }, `pagertree: url "ftp://api.pagertree.com": want http(s)://host`},
		{"credentials in URL", func(c *pagertree.Config) { c.URL = "https://u:secret@api.pagertree.com" }, "pagertree: url: credentials belong in username and password, not the URL"},
		{"no username", func(c *pagertree.Config) { c.Username = "" }, "pagertree: username is empty"},
		{"no password", func(c *pagertree.Config) { c.Password = "" }, "pagertree: password is empty"},
		{"negative rate", func(c *pagertree.Config) { c.RequestsPerSecond = -1 }, "pagertree: requests per second -1 is negative"},
		{"negative concurrency", func(c *pagertree.Config) { c.Concurrency = -2 }, "pagertree: concurrency -2 is negative"},
		{"negative timeout", func(c *pagertree.Config) { c.Timeout = -1 }, "pagertree: timeout -1ns is negative"},
		{"negative attempts", func(c *pagertree.Config) { c.MaxAttempts = -1 }, "pagertree: max attempts -1 is negative"},
		{"negative retry wait", func(c *pagertree.Config) { c.MaxRetryWait = -time.Second }, "pagertree: max retry wait -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			_, err := pagertree.New(cfg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := pagertree.New(valid); err != nil {
		t.Fatalf("New(valid): %v", err)
	}
}

func TestInvalidIDsAreRefusedBeforeSending(t *testing.T) {
	s := newEmulator(t)
	c := newClient(t, s.URL(), nil)
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.GetUser(ctx(t), id); err == nil {
			t.Errorf("GetUser(%q) succeeded", id)
		}
		if err := c.DeleteUser(ctx(t), id); err == nil {
			t.Errorf("DeleteUser(%q) succeeded", id)
		}
		if _, err := c.UpdateTeam(ctx(t), id, pagertree.TeamUpdate{}); err == nil {
			t.Errorf("UpdateTeam(%q) succeeded", id)
		}
	}
	if n := len(s.Stats().Requests); n != 0 {
		t.Fatalf("requests were sent: %v", s.Stats().Requests)
	}
}

func TestUserRoundTrip(t *testing.T) {
	s := newEmulator(t)
	rec := newRecorder()
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	created, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Ann Lee", Email: "ann@example.com", Phone: "+14155550100"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !strings.HasPrefix(created.ID, "usr_") || created.Name != "Ann Lee" || created.Email != "ann@example.com" || created.Phone != "+14155550100" {
		t.Fatalf("created %+v", created)
	}

	got, err := c.GetUser(ctx(t), created.ID)
	if err != nil || got != created {
		t.Fatalf("GetUser = %+v, %v; want %+v", got, err, created)
	}

	updated, err := c.UpdateUser(ctx(t), created.ID, pagertree.UserUpdate{Name: ptr("Ann Lee-Smith")})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if updated.Name != "Ann Lee-Smith" || updated.Phone != "+14155550100" || updated.Email != "ann@example.com" {
		t.Fatalf("updated %+v: want the new name and the phone and email kept", updated)
	}

	users, err := c.ListUsers(ctx(t))
	if err != nil || len(users) != 1 || users[0] != updated {
		t.Fatalf("ListUsers = %+v, %v; want [%+v]", users, err, updated)
	}

	if err := c.DeleteUser(ctx(t), created.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = c.GetUser(ctx(t), created.ID)
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Method != "GET" || apiErr.Route != "/user/:id" || len(apiErr.Messages) == 0 {
		t.Fatalf("GetUser after delete: %v; want a 404 *APIError on GET /user/:id", err)
	}
	// A first-attempt 404 on delete is an error: the user was never there.
	if err := c.DeleteUser(ctx(t), created.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("second DeleteUser: %v; want a 404 *APIError", err)
	}

	var put sentRequest
	for _, r := range rec.requests() {
		if r.Method == http.MethodPut {
			put = r
		}
	}
	if put.Body != `{"name":"Ann Lee-Smith"}` {
		t.Fatalf("PUT body = %s; want only the name", put.Body)
	}
}

func TestTeamRoundTrip(t *testing.T) {
	s := newEmulator(t)
	rec := newRecorder()
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })
	members := addUsers(t, s, 2)

	created, err := c.CreateTeam(ctx(t), pagertree.TeamInput{Name: "DB", Description: "database", MemberUserIDs: []string{members[0].ID}})
	if err != nil {
		t.Fatalf("CreateTeam: %v", err)
	}
	if !strings.HasPrefix(created.ID, "tem_") || created.ScheduleID == "" || created.Name != "DB" || created.Description != "database" ||
		!slices.Equal(created.MemberUserIDs, []string{members[0].ID}) {
		t.Fatalf("created %+v", created)
	}

	got, err := c.GetTeam(ctx(t), created.ID)
	if err != nil || got.ID != created.ID || got.ScheduleID != created.ScheduleID {
		t.Fatalf("GetTeam = %+v, %v; want %+v", got, err, created)
	}

	updated, err := c.UpdateTeam(ctx(t), created.ID, pagertree.TeamUpdate{Description: ptr("databases")})
	if err != nil {
		t.Fatalf("UpdateTeam: %v", err)
	}
	if updated.Description != "databases" || updated.Name != "DB" || updated.ScheduleID != created.ScheduleID ||
		!slices.Equal(updated.MemberUserIDs, created.MemberUserIDs) {
		t.Fatalf("updated %+v: want the new description, everything else kept (schedule %s)", updated, created.ScheduleID)
	}

	emptied, err := c.UpdateTeam(ctx(t), created.ID, pagertree.TeamUpdate{MemberUserIDs: &[]string{}})
	if err != nil || len(emptied.MemberUserIDs) != 0 || emptied.ScheduleID != created.ScheduleID {
		t.Fatalf("UpdateTeam emptying members = %+v, %v", emptied, err)
	}

	teams, err := c.ListTeams(ctx(t))
	if err != nil || len(teams) != 1 || teams[0].ID != created.ID {
		t.Fatalf("ListTeams = %+v, %v", teams, err)
	}

	if err := c.DeleteTeam(ctx(t), created.ID); err != nil {
		t.Fatalf("DeleteTeam: %v", err)
	}
	var apiErr *pagertree.APIError
	if _, err := c.GetTeam(ctx(t), created.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Route != "/team/:id" {
		t.Fatalf("GetTeam after delete: %v; want a 404 *APIError", err)
	}

	var puts []string
	for _, r := range rec.requests() {
		if r.Method == http.MethodPut {
			puts = append(puts, r.Body)
		}
	}
	if want := []string{`{"description":"databases"}`, `{"member_user_ids":[]}`}; !slices.Equal(puts, want) {
		t.Fatalf("PUT bodies = %q; want %q (only the fields given)", puts, want)
	}
}

func TestTokenGoesRawInAuthorization(t *testing.T) {
	s := newEmulator(t)
	rec := newRecorder()
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })
	if err := c.Login(ctx(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := c.ListUsers(ctx(t)); err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	tokens := rec.issuedTokens()
	if len(tokens) != 1 {
		t.Fatalf("saw %d logins, want 1", len(tokens))
	}
	sent := rec.requests()
	want := []sentRequest{
		{Method: "POST", Path: "/public/login", Body: `{"username":"admin@example.com","password":"password"}`},
		{Method: "GET", Path: "/user", Query: "limit=100&offset=0", Authorization: tokens[0], HasAuthorization: true},
	}
	if !slices.Equal(sent, want) {
		t.Fatalf("sent %+v\nwant %+v", sent, want)
	}
}

func TestLoginRefusedIsNotRetried(t *testing.T) {
	s := pagertreetest.NewServer(pagertreetest.Options{Password: "right-horse-battery"})
	t.Cleanup(s.Close)
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Password = "wrong-horse-battery" })

	_, err := c.ListUsers(ctx(t))
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Route != "/public/login" {
		t.Fatalf("ListUsers with a wrong password: %v; want a 401 *APIError from /public/login", err)
	}
	if strings.Contains(err.Error(), "wrong-horse-battery") {
		t.Fatalf("the error carries the password: %v", err)
	}
	if got := s.Stats().Requests; !mapsEqual(got, map[string]int{"POST /public/login": 1}) {
		t.Fatalf("requests %v; want one login and nothing else", got)
	}
}

func TestOtherClientErrorsAreNotRetried(t *testing.T) {
	s := newEmulator(t)
	c := newClient(t, s.URL(), nil)
	_, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "No Email"})
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Fatalf("CreateUser without email: %v; want a 400 *APIError", err)
	}
	if got := s.Stats().Requests["POST /user"]; got != 1 {
		t.Fatalf("POST /user sent %d times, want 1", got)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestListCostsOneRequestPerHundred(t *testing.T) {
	tests := []struct {
		name         string
		users, teams int
		wantRequests int // GET /user + GET /team
	}{
		{name: "empty account still costs a request each", users: 0, teams: 0, wantRequests: 2},
		{name: "one", users: 1, teams: 1, wantRequests: 2},
		{name: "one short page", users: 99, teams: 0, wantRequests: 2},
		{name: "exactly one page", users: 100, teams: 100, wantRequests: 2},
		{name: "one over", users: 101, teams: 0, wantRequests: 3},
		{name: "several pages", users: 250, teams: 201, wantRequests: 3 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEmulator(t)
			users := addUsers(t, s, tt.users)
			teams := make([]pagertree.Team, tt.teams)
			for i := range teams {
				var err error
				if teams[i], err = s.AddTeam(pagertree.Team{Name: "team " + strings.Repeat("x", i%7) + string(rune('a'+i%26))}); err != nil {
					t.Fatalf("AddTeam: %v", err)
				}
			}
			c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Concurrency = 3 })

			gotUsers, err := c.ListUsers(ctx(t))
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			if !slices.Equal(ids(gotUsers, userID), ids(users, userID)) {
				t.Fatalf("ListUsers returned %d users, not the %d added in order", len(gotUsers), len(users))
			}
			gotTeams, err := c.ListTeams(ctx(t))
			if err != nil {
				t.Fatalf("ListTeams: %v", err)
			}
			if !slices.Equal(ids(gotTeams, teamID), ids(teams, teamID)) {
				t.Fatalf("ListTeams returned %d teams, not the %d added in order", len(gotTeams), len(teams))
			}
			st := s.Stats()
			if got := st.Requests["GET /user"] + st.Requests["GET /team"]; got != tt.wantRequests {
				t.Fatalf("listing cost %d requests (%v), want %d", got, st.Requests, tt.wantRequests)
			}
		})
	}
}

func TestListFollowsAGrowingCollection(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 150)
	rec := newRecorder()
	var grow sync.Once
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		// 150 users join once the first page (total_count 150) is on its
		// way back: the two planned pages are no longer the end.
		if r.URL.Path == "/user" && r.URL.Query().Get("offset") == "0" {
			grow.Do(func() {
				for i := range 150 {
					if _, err := s.AddUser(pagertree.User{Name: "late", Email: "late" + strings.Repeat("x", i) + "@example.com"}); err != nil {
						t.Errorf("AddUser: %v", err)
					}
				}
			})
		}
		return resp, err
	}
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	got, err := c.ListUsers(ctx(t))
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if want := ids(s.Users(), userID); !slices.Equal(ids(got, userID), want) {
		t.Fatalf("listed %d users, want all %d in order", len(got), len(want))
	}
	// The first reading follows the growth (2 planned pages, 1 more) but
	// reads 300 of the 150 its first page counted, so it is read again:
	// 3 pages, 300 of 300.
	if n := s.Stats().Requests["GET /user"]; n != 6 {
		t.Fatalf("GET /user sent %d times, want 6 (2 planned, 1 more for the growth, 3 for the second reading)", n)
	}
}

// growOnFirstPage has the emulator gain n users each time the first page
// of the user list is on its way back.
func growOnFirstPage(t *testing.T, s *pagertreetest.Server, n int) *recorder {
	rec := newRecorder()
	var mu sync.Mutex
	added := 0
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if r.URL.Path == "/user" && r.URL.Query().Get("offset") == "0" {
			mu.Lock()
			defer mu.Unlock()
			for range n {
				added++
				if _, err := s.AddUser(pagertree.User{Name: "late", Email: fmt.Sprintf("late%04d@example.com", added)}); err != nil {
					t.Errorf("AddUser: %v", err)
				}
			}
		}
		return resp, err
	}
	return rec
}

// TestListTakesASecondReadingThatGrew: an account that grows by 50 users
// during every reading. The first reading (200 of 150) is read again; the
// second (250 of 200) came out long within the slack, and is taken.
func TestListTakesASecondReadingThatGrew(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 150)
	rec := growOnFirstPage(t, s, 50)
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	got, err := c.ListUsers(ctx(t))
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if want := ids(s.Users(), userID); !slices.Equal(ids(got, userID), want) || len(got) != 250 {
		t.Fatalf("listed %d users, want all 250 in order", len(got))
	}
	if n := s.Stats().Requests["GET /user"]; n != 5 {
		t.Fatalf("GET /user sent %d times, want 5 (2 pages, then 3)", n)
	}
}

// TestLookupTakesAReadingThatGrew: a lookup (the Users iterator) runs
// while the run's other creates go on, so a reading that came out long
// within the slack is taken at once, not read again.
func TestLookupTakesAReadingThatGrew(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 150)
	rec := growOnFirstPage(t, s, 50)
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	var got []pagertree.User
	for u, err := range c.Users(ctx(t)) {
		if err != nil {
			t.Fatalf("Users: %v", err)
		}
		got = append(got, u)
	}
	if want := ids(s.Users(), userID); !slices.Equal(ids(got, userID), want) || len(got) != 200 {
		t.Fatalf("yielded %d users, want all 200 in order", len(got))
	}
	if n := s.Stats().Requests["GET /user"]; n != 2 {
		t.Fatalf("GET /user sent %d times, want 2 (one reading)", n)
	}
}

// shiftingPages serves a collection of 202 objects that shift between
// pages while it is listed, which the emulator, appending new objects at
// the end, never does: page 2 repeats the last object of page 1 (one was
// moved before it) and page 3 holds the last 3. It counts the requests.
func shiftingPages(t *testing.T, requests *atomic.Int32) *httptest.Server {
	user := func(i int) pagertree.User {
		return pagertree.User{ID: "usr_" + string(rune('A'+i/26%26)) + string(rune('a'+i%26)) + strings.Repeat("0", i/676), Email: "x@example.com"}
	}
	pages := map[string]pagertree.List[pagertree.User]{}
	span := func(from, to int) []pagertree.User {
		var out []pagertree.User
		for i := from; i < to; i++ {
			out = append(out, user(i))
		}
		return out
	}
	pages["0"] = pagertree.List[pagertree.User]{Data: span(0, 100), HasMore: true, TotalCount: 202}
	pages["100"] = pagertree.List[pagertree.User]{Data: span(99, 199), HasMore: true, TotalCount: 202}
	pages["200"] = pagertree.List[pagertree.User]{Data: span(199, 202), HasMore: false, TotalCount: 202}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token":"t"}`))
			return
		}
		requests.Add(1)
		page, ok := pages[r.URL.Query().Get("offset")]
		if !ok || r.URL.Query().Get("limit") != "100" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestListDropsDuplicatesAcrossPages(t *testing.T) {
	var requests atomic.Int32
	srv := shiftingPages(t, &requests)
	c := newClient(t, srv.URL, nil)
	got, err := c.ListUsers(ctx(t))
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	// Counted once, the repeated object makes the 202 of total_count: one
	// reading is whole.
	if len(got) != 202 || requests.Load() != 3 {
		t.Fatalf("listed %d users in %d requests, want the 202 distinct ones in 3", len(got), requests.Load())
	}
	seen := map[string]bool{}
	for i, u := range got {
		if seen[u.ID] {
			t.Fatalf("user %s listed twice", u.ID)
		}
		seen[u.ID] = true
		if i > 0 && u.ID == got[i-1].ID {
			t.Fatalf("out of order at %d", i)
		}
	}
}

func TestListFetchesConcurrentlyWithinTheBound(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 1000)
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Concurrency = 3 })
	if err := c.Login(ctx(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	// The latency keeps each request in flight long enough to overlap.
	s.SetFaults(pagertreetest.Faults{Latency: 50 * time.Millisecond})
	s.ResetStats()
	users, err := c.ListUsers(ctx(t))
	if err != nil || len(users) != 1000 {
		t.Fatalf("ListUsers = %d users, %v; want 1000", len(users), err)
	}
	if st := s.Stats(); st.MaxInFlight != 3 || st.Requests["GET /user"] != 10 {
		t.Fatalf("%d requests, at most %d in flight; want 10 requests, 3 at once", st.Requests["GET /user"], st.MaxInFlight)
	}
}

func TestListStopsWhenTheConsumerDoes(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 5000) // 50 pages
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Concurrency = 2 })
	n := 0
	for _, err := range c.Users(ctx(t)) {
		if err != nil {
			t.Fatalf("Users: %v", err)
		}
		if n++; n == 150 {
			break
		}
	}
	// Page 1, page 2 (being read) and at most 4 × Concurrency pages ahead.
	if got := s.Stats().Requests["GET /user"]; got > 2+4*2 {
		t.Fatalf("GET /user sent %d times after stopping at the second page, want at most 10", got)
	}
}

func TestCreateUserConflictReturnsTheExistingUser(t *testing.T) {
	s := newEmulator(t)
	existing, err := s.AddUser(pagertree.User{Name: "Ann", Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	addUsers(t, s, 120) // the lookup pages through the list
	c := newClient(t, s.URL(), nil)

	got, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Ann", Email: "ANN@Example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if got != existing {
		t.Fatalf("CreateUser = %+v, want the existing %+v", got, existing)
	}
	st := s.Stats()
	if st.Requests["POST /user"] != 1 || st.Writes != 0 || len(s.Users()) != 121 {
		t.Fatalf("after a 409: %d creates sent, %d writes, %d users; want 1, 0, 121", st.Requests["POST /user"], st.Writes, len(s.Users()))
	}
}

func TestDeleteWhoseAnswerIsLostCountsAsDone(t *testing.T) {
	s := newEmulator(t)
	users := addUsers(t, s, 1)
	rec := newRecorder()
	var lose sync.Once
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		lost := false
		if r.Method == http.MethodDelete {
			lose.Do(func() { lost = true })
		}
		if lost && err == nil {
			resp.Body.Close()
			return nil, errors.New("connection reset by peer")
		}
		return resp, err
	}
	obs := &observer{}
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client(); cfg.Observer = obs })

	if err := c.DeleteUser(ctx(t), users[0].ID); err != nil {
		t.Fatalf("DeleteUser: %v; want success, the first attempt deleted the user", err)
	}
	st := s.Stats()
	if st.Requests["DELETE /user/:id"] != 2 || st.Status[http.StatusNotFound] != 1 || len(s.Users()) != 0 {
		t.Fatalf("requests %v, statuses %v, %d users; want 2 deletes, the second answered 404, no user", st.Requests, st.Status, len(s.Users()))
	}
	if _, retries := obs.seen(); !slices.Equal(retries, []string{"transport"}) {
		t.Fatalf("retries %v, want one transport retry", retries)
	}
}

func TestLostCreatesAreFoundNotRepeated(t *testing.T) {
	s := newEmulator(t)
	addUsers(t, s, 130)
	s.SetFaults(pagertreetest.Faults{DropCreateRate: 1})
	c := newClient(t, s.URL(), nil)

	user, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Bo", Email: "bo@example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	team, err := c.CreateTeam(ctx(t), pagertree.TeamInput{Name: "Ops", MemberUserIDs: []string{user.ID}})
	if err != nil {
		t.Fatalf("CreateTeam: %v", err)
	}
	st := s.Stats()
	if st.Dropped != 2 || st.Requests["POST /user"] != 1 || st.Requests["POST /team"] != 1 {
		t.Fatalf("dropped %d, requests %v; want both creates dropped and neither sent again", st.Dropped, st.Requests)
	}
	stored := s.Users()
	if last := stored[len(stored)-1]; len(stored) != 131 || user != last {
		t.Fatalf("CreateUser = %+v; want the one user stored, %+v (of %d)", user, last, len(stored))
	}
	if teams := s.Teams(); len(teams) != 1 || teams[0].ID != team.ID || team.Name != "Ops" {
		t.Fatalf("CreateTeam = %+v; stored %+v", team, teams)
	}
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	s := newEmulator(t)
	obs := &observer{}
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Observer = obs; cfg.MaxAttempts = 2 })

	if _, err := c.GetUser(ctx(t), "usr_missing"); err == nil {
		t.Fatal("GetUser of a missing user succeeded")
	}
	s.ExpireTokens()
	if _, err := c.ListTeams(ctx(t)); err != nil {
		t.Fatalf("ListTeams after the token expired: %v", err)
	}
	s.SetFaults(pagertreetest.Faults{ErrorRate: 1})
	if _, err := c.ListTeams(ctx(t)); err == nil {
		t.Fatal("ListTeams against a failing server succeeded")
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	down := newClient(t, closed.URL, func(cfg *pagertree.Config) { cfg.Observer = obs; cfg.MaxAttempts = 2 })
	if err := down.Login(ctx(t)); err == nil {
		t.Fatal("Login to a closed port succeeded")
	}

	requests, retries := obs.seen()
	wantRequests := []observedRequest{
		{"POST", "/public/login", 200},
		{"GET", "/user/:id", 404},
		{"GET", "/team", 401},
		{"POST", "/public/login", 200},
		{"GET", "/team", 200},
		{"GET", "/team", 500},
		{"GET", "/team", 500},
		{"POST", "/public/login", 0},
		{"POST", "/public/login", 0},
	}
	if !slices.Equal(requests, wantRequests) {
		t.Fatalf("observed requests\n%v\nwant\n%v", requests, wantRequests)
	}
	if want := []string{"401", "5xx", "transport"}; !slices.Equal(retries, want) {
		t.Fatalf("observed retries %v, want %v", retries, want)
	}
}

func TestAnswerSizeIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token":"t"}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"usr_1","name":"`))
		_, _ = w.Write([]byte(strings.Repeat("a", 11<<20)))
		_, _ = w.Write([]byte(`"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil)
	_, err := c.GetUser(ctx(t), "usr_1")
	if err == nil || err.Error() != "pagertree: GET /user/:id: answer larger than 10485760 bytes" {
		t.Fatalf("GetUser of an 11 MiB answer: %v", err)
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token":"t"}`))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("<html><h1>Forbidden</h1></html>"))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil)
	err := c.DeleteTeam(ctx(t), "tem_1")
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || !slices.Equal(apiErr.Messages, []string{"Forbidden"}) {
		t.Fatalf("DeleteTeam: %v; want a 403 *APIError with the status text", err)
	}
}

// The seed's login example answers the token as a number.
func TestNumericToken(t *testing.T) {
	var auth []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token": 1}`))
			return
		}
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"data":[],"has_more":false,"total_count":0}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil)
	if _, err := c.ListTeams(context.Background()); err != nil {
		t.Fatalf("ListTeams: %v", err)
	}
	if !slices.Equal(auth, []string{"1"}) {
		t.Fatalf("Authorization sent %q, want [\"1\"]", auth)
	}
}

// TestServerRefusingEveryTokenEndsTheCall: a 401 is answered with a fresh
// login and a replay, but only a bounded number of times, so a server that
// refuses every token (an account disabled after login, say) ends the call
// with its 401 instead of looping.
func TestServerRefusingEveryTokenEndsTheCall(t *testing.T) {
	var logins, gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/public/login" {
			n := logins.Add(1)
			fmt.Fprintf(w, `{"token":"tok-%d"}`, n)
			return
		}
		gets.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"message":"account disabled"}]}`)
	}))
	defer srv.Close()
	c, err := pagertree.New(pagertree.Config{URL: srv.URL, Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUser(context.Background(), "usr_1")
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("GetUser = %v; want a 401 *APIError", err)
	}
	// The first login, then three more after 401s; four GETs in all.
	if logins.Load() != 4 || gets.Load() != 4 {
		t.Errorf("%d logins and %d GETs; want 4 and 4", logins.Load(), gets.Load())
	}
}
