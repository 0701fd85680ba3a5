package pagertree_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

func fakeAccountUsers(from, to int) []pagertree.AccountUser {
	users := []pagertree.AccountUser{}
	for i := from; i < to; i++ {
		users = append(users, pagertree.AccountUser{
			Common: pagertree.Common{ID: fmt.Sprintf("01ACCOUNTUSER%04d", i)},
			User:   pagertree.Person{ID: fmt.Sprintf("01USER%04d", i), Name: "User", Emails: []pagertree.Email{{ID: "em", Email: fmt.Sprintf("user%04d@example.com", i)}}},
		})
	}
	return users
}

func fakeTeamsV4(from, to int) []pagertree.TeamV4 {
	teams := []pagertree.TeamV4{}
	for i := from; i < to; i++ {
		teams = append(teams, pagertree.TeamV4{Common: pagertree.Common{ID: fmt.Sprintf("01TEAM%04d", i)}, Name: "Team"})
	}
	return teams
}

// TestV4ShortListingIsReadAgainThenRefused: v4 listings are proven whole
// against total_count as v3's are. total_count says 759, but every page
// after the first comes back empty: the listing and the lookup both fail
// naming both counts, after two readings.
func TestV4ShortListingIsReadAgainThenRefused(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		if offset(r) == 0 {
			return http.StatusOK, pagertree.List[pagertree.AccountUser]{Data: fakeAccountUsers(0, 100), HasMore: true, TotalCount: 759}
		}
		return http.StatusOK, pagertree.List[pagertree.AccountUser]{Data: []pagertree.AccountUser{}, TotalCount: 759}
	})
	c := newClientV4(t, h.URL, func(cfg *pagertree.Config) { cfg.Concurrency = 2 })

	const want = "pagertree: listing /api/v4/account_users: read 100 of total_count 759 twice; PagerTree's listing is incomplete, so it is not used (try again later)"
	users, err := c.ListAccountUsers(ctx(t))
	if err == nil || err.Error() != want || users != nil {
		t.Fatalf("ListAccountUsers = %d account users, %v; want none and %q", len(users), err, want)
	}
	if n := h.requests("GET /api/v4/account_users?limit=100&offset=0"); n != 2 {
		t.Fatalf("the first page was read %d times, want 2 (two readings)", n)
	}
	var yielded int
	var last error
	for _, err := range c.AccountUsers(ctx(t)) {
		if err != nil {
			last = err
			break
		}
		yielded++
	}
	if last == nil || last.Error() != want || yielded != 100 {
		t.Fatalf("AccountUsers yielded %d and %v; want 100, then %q", yielded, last, want)
	}
}

// TestV4RepeatingPagesEndTheListing: a server that ignores the offset
// fails a team listing at its second page.
func TestV4RepeatingPagesEndTheListing(t *testing.T) {
	h := newHostile(t, func(*http.Request, []byte) (int, any) {
		return http.StatusOK, pagertree.List[pagertree.TeamV4]{Data: fakeTeamsV4(0, 100), HasMore: true, TotalCount: 100}
	})
	c := newClientV4(t, h.URL, nil)
	teams, err := c.ListTeamsV4(ctx(t))
	const want = "pagertree: listing /api/v4/teams: the page at offset 100 repeats the previous page's 100 ids; PagerTree ignores the offset, so the listing is not used"
	if err == nil || err.Error() != want || teams != nil {
		t.Fatalf("ListTeamsV4 = %d teams, %v; want none and %q", len(teams), err, want)
	}
	if got := h.all(); !mapsEqual(got, map[string]int{"GET /api/v4/teams": 2}) {
		t.Fatalf("requests %v; want offsets 0 and 100 once each", got)
	}
}

// TestV4WriteAnswersMustDescribeTheObjectWritten: a v4 create or update
// whose 2xx answer has no id, another id or person, none of the emails
// sent, or another name than sent fails saying so, after the one write.
func TestV4WriteAnswersMustDescribeTheObjectWritten(t *testing.T) {
	const notDone = "; the change is not counted as done (the next run reads PagerTree again)"
	ann := pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann"), Emails: []pagertree.EmailAttributes{{Email: "ann@example.com", Primary: true}}}}
	person := func(name string, emails ...string) pagertree.Person {
		p := pagertree.Person{ID: "01USER1", Name: name}
		for _, e := range emails {
			p.Emails = append(p.Emails, pagertree.Email{ID: "01EMAIL", Email: e})
		}
		return p
	}
	accountUser := func(id string, p pagertree.Person) pagertree.AccountUser {
		return pagertree.AccountUser{Common: pagertree.Common{ID: id}, User: p}
	}
	createAnn := func(c *pagertree.Client) error {
		_, err := c.CreateAccountUser(ctx(t), ann)
		return err
	}
	renameAnn := func(c *pagertree.Client) error {
		_, err := c.UpdateAccountUser(ctx(t), "01AU1", pagertree.AccountUserUpdate{User: pagertree.PersonAttributes{ID: "01USER1", Name: ptr("Ann Lee")}})
		return err
	}
	createOps := func(c *pagertree.Client) error {
		_, err := c.CreateTeamV4(ctx(t), pagertree.TeamV4Input{Name: "Ops", MemberAccountUserIDs: []string{"01AU1"}, AdminAccountUserIDs: []string{"01AU1"}})
		return err
	}
	tests := []struct {
		name   string
		status int
		answer any
		call   func(c *pagertree.Client) error
		write  string
		want   string
	}{
		{
			name: "account user create without an id", status: http.StatusCreated,
			answer: accountUser("", person("Ann", "ann@example.com")), call: createAnn,
			write: "POST /api/v4/account_users", want: "pagertree: POST /api/v4/account_users answered 201 without an id" + notDone,
		},
		{
			name: "account user create answered with another email", status: http.StatusCreated,
			answer: accountUser("01AU1", person("Ann", "ann@example.org", "ann@corp.example")), call: createAnn,
			write: "POST /api/v4/account_users", want: `pagertree: POST /api/v4/account_users answered 201 with the email "ann@example.org", "ann@corp.example", not "ann@example.com"` + notDone,
		},
		{
			name: "account user create answered without emails", status: http.StatusCreated,
			answer: accountUser("01AU1", person("Ann")), call: createAnn,
			write: "POST /api/v4/account_users", want: `pagertree: POST /api/v4/account_users answered 201 with no email, not "ann@example.com"` + notDone,
		},
		{
			name: "account user create answered with another name", status: http.StatusCreated,
			answer: accountUser("01AU1", person("Bob", "ann@example.com")), call: createAnn,
			write: "POST /api/v4/account_users", want: `pagertree: POST /api/v4/account_users answered 201 with the name "Bob", not "Ann"` + notDone,
		},
		{
			name: "account user update answered for another account user", status: http.StatusOK,
			answer: accountUser("01AU2", person("Ann Lee", "ann@example.com")), call: renameAnn,
			write: "PUT /api/v4/account_users/01AU1", want: `pagertree: PUT /api/v4/account_users/:id answered 200 for id "01AU2", not "01AU1"` + notDone,
		},
		{
			name: "account user update answered for another person", status: http.StatusOK,
			answer: accountUser("01AU1", pagertree.Person{ID: "01USER9", Name: "Ann Lee"}), call: renameAnn,
			write: "PUT /api/v4/account_users/01AU1", want: `pagertree: PUT /api/v4/account_users/:id answered 200 for the user "01USER9", not "01USER1"` + notDone,
		},
		{
			name: "account user rename answered with the old name", status: http.StatusOK,
			answer: accountUser("01AU1", person("Ann", "ann@example.com")), call: renameAnn,
			write: "PUT /api/v4/account_users/01AU1", want: `pagertree: PUT /api/v4/account_users/:id answered 200 with the name "Ann", not "Ann Lee"` + notDone,
		},
		{
			name: "team create without an id", status: http.StatusCreated,
			answer: pagertree.TeamV4{Name: "Ops"}, call: createOps,
			write: "POST /api/v4/teams", want: "pagertree: POST /api/v4/teams answered 201 without an id" + notDone,
		},
		{
			name: "team create answered with another name", status: http.StatusCreated,
			answer: pagertree.TeamV4{Common: pagertree.Common{ID: "01TEAM1"}, Name: "Billing"}, call: createOps,
			write: "POST /api/v4/teams", want: `pagertree: POST /api/v4/teams answered 201 with the name "Billing", not "Ops"` + notDone,
		},
		{
			name: "team update answered for another team", status: http.StatusOK,
			answer: pagertree.TeamV4{Common: pagertree.Common{ID: "01TEAM2"}, Name: "Ops"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateTeamV4(ctx(t), "01TEAM1", pagertree.TeamV4Update{AdminAccountUserIDs: &[]string{"01AU1"}})
				return err
			},
			write: "PUT /api/v4/teams/01TEAM1", want: `pagertree: PUT /api/v4/teams/:id answered 200 for id "01TEAM2", not "01TEAM1"` + notDone,
		},
		{
			name: "team rename answered with another name", status: http.StatusOK,
			answer: pagertree.TeamV4{Common: pagertree.Common{ID: "01TEAM1"}, Name: "Ops"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateTeamV4(ctx(t), "01TEAM1", pagertree.TeamV4Update{Name: ptr("Billing")})
				return err
			},
			write: "PUT /api/v4/teams/01TEAM1", want: `pagertree: PUT /api/v4/teams/:id answered 200 with the name "Ops", not "Billing"` + notDone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostile(t, func(*http.Request, []byte) (int, any) { return tt.status, tt.answer })
			c := newClientV4(t, h.URL, nil)
			if err := tt.call(c); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if got := h.all(); !mapsEqual(got, map[string]int{tt.write: 1}) {
				t.Fatalf("requests %v; want only %s, once", got, tt.write)
			}
		})
	}
}

// TestV4WriteAnswersThatMatchAreTaken: an answer holding one of the emails
// sent (case and spaces aside) is taken, and so is an invitation of a
// person who already has a login under another name: the name is theirs.
func TestV4WriteAnswersThatMatchAreTaken(t *testing.T) {
	answer := pagertree.AccountUser{
		Common:  pagertree.Common{ID: "01AU1"},
		Invited: true,
		User:    pagertree.Person{ID: "01USER1", Name: "Annie", Emails: []pagertree.Email{{ID: "01E1", Email: "Ann@Example.com"}}},
	}
	h := newHostile(t, func(*http.Request, []byte) (int, any) { return http.StatusCreated, answer })
	c := newClientV4(t, h.URL, nil)
	in := pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann"), Emails: []pagertree.EmailAttributes{{Email: "ann@corp.example"}, {Email: " ann@example.com"}}}}
	if got, err := c.CreateAccountUser(ctx(t), in); err != nil || got.ID != "01AU1" || !got.Invited {
		t.Fatalf("CreateAccountUser = %+v, %v; want the invited 01AU1", got, err)
	}
}

// TestV4RefusedKeyIsAnAPIError: a 401 with v4's error body ends Login (and
// any call) at once with an *APIError carrying its message, the key
// redacted where the server echoes it; a key cannot be renewed, so
// nothing is retried.
func TestV4RefusedKeyIsAnAPIError(t *testing.T) {
	const key = "pt4-secret-key-0123456789"
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		return http.StatusUnauthorized, pagertree.ErrorBodyV4{Errors: []pagertree.ErrorMessage{{Message: "invalid key " + r.Header.Get("Authorization")}}, Code: 401}
	})
	c := newClientV4(t, h.URL, func(cfg *pagertree.Config) { cfg.APIKey = key })

	err := c.Login(ctx(t))
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Route != "/api/v4/account_users" || apiErr.Code != "" ||
		!slices.Equal(apiErr.Messages, []string{"invalid key Bearer [redacted]"}) {
		t.Fatalf("Login: %#v; want a 401 *APIError on /api/v4/account_users with the message, the key redacted", err)
	}
	if _, err := c.GetTeamV4(ctx(t), "01TEAM1"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || strings.Contains(err.Error(), key) {
		t.Fatalf("GetTeamV4: %v; want a 401 *APIError without the key", err)
	}
	want := map[string]int{"GET /api/v4/account_users": 1, "GET /api/v4/teams/01TEAM1": 1}
	if got := h.all(); !mapsEqual(got, want) {
		t.Fatalf("requests %v; want %v", got, want)
	}
	if n := h.requests("GET /api/v4/account_users?limit=1"); n != 1 {
		t.Fatalf("Login listed with limit=1 %d times, want once", n)
	}
}

// TestV4ErrorBodies: the messages of v4's error body become the
// *APIError's; its code, the status again, is kept only when it differs.
func TestV4ErrorBodies(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         any
		wantMessages []string
		wantCode     string
	}{
		{
			name: "422", status: http.StatusUnprocessableEntity,
			body:         pagertree.ErrorBodyV4{Errors: []pagertree.ErrorMessage{{Message: "Name can't be blank"}, {Message: "Emails is invalid"}}, Code: 422},
			wantMessages: []string{"Name can't be blank", "Emails is invalid"},
		},
		{
			name: "a code other than the status", status: http.StatusBadRequest,
			body:         pagertree.ErrorBodyV4{Errors: []pagertree.ErrorMessage{{Message: "title can't be blank"}}, Code: 422},
			wantMessages: []string{"title can't be blank"}, wantCode: "422",
		},
		{name: "not the v4 body", status: http.StatusForbidden, body: "forbidden", wantMessages: []string{"Forbidden"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostile(t, func(*http.Request, []byte) (int, any) { return tt.status, tt.body })
			c := newClientV4(t, h.URL, nil)
			_, err := c.CreateTeamV4(ctx(t), pagertree.TeamV4Input{Name: "Ops"})
			var apiErr *pagertree.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status || apiErr.Code != tt.wantCode || !slices.Equal(apiErr.Messages, tt.wantMessages) {
				t.Fatalf("CreateTeamV4: %#v; want status %d, code %q, messages %q", err, tt.status, tt.wantCode, tt.wantMessages)
			}
			if n := h.requests("POST /api/v4/teams"); n != 1 {
				t.Fatalf("POST sent %d times, want 1", n)
			}
		})
	}
}

// TestV4RetryAfterIsHonoured: a 429 asking for a second is retried no
// sooner; one asking for longer than MaxRetryWait is not retried.
func TestV4RetryAfterIsHonoured(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	retryAfter := "1"
	setRetryAfter := func(v string) {
		mu.Lock()
		defer mu.Unlock()
		retryAfter = v
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		first := len(arrivals)%2 == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if first {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"message":"slow down"}],"code":429}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"01AU1","user":{"id":"01USER1","name":"Ann","emails":[],"phones":[]}}`))
	}))
	t.Cleanup(srv.Close)
	obs := &observer{}
	c := newClientV4(t, srv.URL, func(cfg *pagertree.Config) { cfg.Observer = obs; cfg.MaxRetryWait = 2 * time.Second })

	if _, err := c.GetAccountUser(ctx(t), "01AU1"); err != nil {
		t.Fatalf("GetAccountUser: %v", err)
	}
	mu.Lock()
	got := slices.Clone(arrivals)
	mu.Unlock()
	if len(got) != 2 || got[1].Sub(got[0]) < time.Second {
		t.Fatalf("requests at %v; want 2, the retry at least 1s after the 429", got)
	}

	setRetryAfter("3600")
	_, err := c.GetAccountUser(ctx(t), "01AU1")
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != time.Hour || !slices.Equal(apiErr.Messages, []string{"slow down"}) {
		t.Fatalf("GetAccountUser: %v; want a 429 *APIError with RetryAfter 1h", err)
	}
	requests, retries := obs.seen()
	want := []observedRequest{
		{"GET", "/api/v4/account_users/:id", 429}, {"GET", "/api/v4/account_users/:id", 200}, {"GET", "/api/v4/account_users/:id", 429},
	}
	if !slices.Equal(requests, want) || !slices.Equal(retries, []string{"429"}) {
		t.Fatalf("observed %v and retries %v; want %v and one 429 retry", requests, retries, want)
	}
}

// TestV4LostCreateIsFoundByAnyEmail: the create's connection is closed
// without an answer; the lookup finds the person by the second email sent,
// in other letter case, and the create is not sent again.
func TestV4LostCreateIsFoundByAnyEmail(t *testing.T) {
	existing := fakeAccountUsers(0, 150)
	ann := pagertree.AccountUser{
		Common: pagertree.Common{ID: "01AUANN"},
		User:   pagertree.Person{ID: "01USERANN", Name: "Ann", Emails: []pagertree.Email{{ID: "01E1", Email: "ANN@corp.example"}}},
	}
	var mu sync.Mutex
	created := false
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			posts++
			created = true
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close() // committed; the answer is lost
			}
			return
		}
		all := existing
		if created {
			all = append(slices.Clone(existing), ann)
		}
		o := offset(r)
		end := min(o+100, len(all))
		writeJSON(w, pagertree.List[pagertree.AccountUser]{Data: all[o:end], HasMore: end < len(all), TotalCount: len(all)})
	}))
	t.Cleanup(srv.Close)
	c := newClientV4(t, srv.URL, nil)

	in := pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann"), Emails: []pagertree.EmailAttributes{{Email: "ann@example.com", Primary: true}, {Email: "ann@corp.example"}}}}
	got, err := c.CreateAccountUser(ctx(t), in)
	if err != nil || got.ID != ann.ID {
		t.Fatalf("CreateAccountUser = %+v, %v; want the account user found, %s", got, err, ann.ID)
	}
	mu.Lock()
	defer mu.Unlock()
	if posts != 1 {
		t.Fatalf("the create was sent %d times, want once", posts)
	}
}

// TestV4LoginWantsAList: a URL that answers 200 with something other than
// a list (the web app, not the API) fails Login.
func TestV4LoginWantsAList(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>PagerTree</html>"))
	}))
	t.Cleanup(srv.Close)
	c := newClientV4(t, srv.URL, nil)
	err := c.Login(ctx(t))
	if err == nil || !strings.HasPrefix(err.Error(), "pagertree: GET /api/v4/account_users: the answer is not a list (is the URL PagerTree's API?): ") {
		t.Fatalf("Login: %v; want the answer refused as not a list", err)
	}
}
