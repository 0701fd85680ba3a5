package pagertree_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

// testAPIKey is the key v4 clients of crafted servers send.
const testAPIKey = "test-api-key"

// newClientV4 returns a v4 client of url with testAPIKey; edit changes the
// config first when not nil.
func newClientV4(t testing.TB, url string, edit func(*pagertree.Config)) *pagertree.Client {
	t.Helper()
	cfg := pagertree.Config{URL: url, API: pagertree.APIv4, APIKey: testAPIKey}
	if edit != nil {
		edit(&cfg)
	}
	c, err := pagertree.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewV4RefusesBadConfig(t *testing.T) {
	v4 := pagertree.Config{URL: "https://api.pagertree.com", API: pagertree.APIv4, APIKey: "k"}
	v3 := pagertree.Config{URL: "https://api.pagertree.com", Username: "u", Password: "p"}
	tests := []struct {
		name    string
		cfg     pagertree.Config
		edit    func(*pagertree.Config)
		wantErr string
	}{
		{"unknown API", v3, func(c *pagertree.Config) { c.API = "v5" }, `pagertree: api "v5": want "v3" or "v4"`},
		{"v4 without a key", v4, func(c *pagertree.Config) { c.APIKey = "" }, "pagertree: api key is empty (the v4 API needs one)"},
		{"v4 with a username", v4, func(c *pagertree.Config) { c.Username = "u" }, "pagertree: username and password are for the v3 API; v4 takes an api key only"},
		{"v4 with a password", v4, func(c *pagertree.Config) { c.Password = "p" }, "pagertree: username and password are for the v3 API; v4 takes an api key only"},
		{"v4 with credentials in the URL", v4, func(c *pagertree.Config) { c.URL = "https://key@api.pagertree.com" }, "pagertree: url: credentials belong in the api key, not the URL"},
		{"v4 URL with the prefix", v4, func(c *pagertree.Config) { c.URL = "https://api.pagertree.com/api/v4/" },
			`pagertree: url "https://api.pagertree.com/api/v4/": give the server's URL without /api/v4; the client adds it`},
		{"v3 with a key", v3, func(c *pagertree.Config) { c.APIKey = "k" }, `pagertree: an api key is for the v4 API; set api to "v4" to use it, or leave it empty for v3`},
		{"v3 named, without a password", v3, func(c *pagertree.Config) { c.API = pagertree.APIv3; c.Password = "" }, "pagertree: password is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			tt.edit(&cfg)
			_, err := pagertree.New(cfg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	for _, cfg := range []pagertree.Config{v4, v3, {URL: v3.URL, API: pagertree.APIv3, Username: "u", Password: "p"}} {
		if _, err := pagertree.New(cfg); err != nil {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
	}
}

// TestV4SendsTheKeyAndNoLogin: a v4 client sends "Authorization: Bearer
// <key>" on every request, never logs in, pages with limit 100, sends
// only the fields given, and reports route templates to the Observer.
func TestV4SendsTheKeyAndNoLogin(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v4/account_users":
			return http.StatusOK, pagertree.List[pagertree.AccountUser]{Data: fakeAccountUsers(0, 1), TotalCount: 1}
		case r.Method == http.MethodPost:
			return http.StatusCreated, pagertree.AccountUser{Common: pagertree.Common{ID: "01AU1"}, User: pagertree.Person{ID: "01USER1", Name: "Ann", Emails: []pagertree.Email{{ID: "01E1", Email: "ann@example.com"}}}}
		case r.Method == http.MethodPut:
			return http.StatusOK, pagertree.TeamV4{Common: pagertree.Common{ID: "01TEAM1"}, Name: "Ops", ScheduleID: "01SCHED"}
		}
		return http.StatusNoContent, nil
	})
	rec := newRecorder()
	obs := &observer{}
	c := newClientV4(t, h.URL, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client(); cfg.Observer = obs })

	if err := c.Login(ctx(t)); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := c.ListAccountUsers(ctx(t)); err != nil {
		t.Fatalf("ListAccountUsers: %v", err)
	}
	in := pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann"), Emails: []pagertree.EmailAttributes{{Email: "ann@example.com", Primary: true}}}}
	if _, err := c.CreateAccountUser(ctx(t), in); err != nil {
		t.Fatalf("CreateAccountUser: %v", err)
	}
	if _, err := c.UpdateTeamV4(ctx(t), "01TEAM1", pagertree.TeamV4Update{MemberAccountUserIDs: &[]string{}}); err != nil {
		t.Fatalf("UpdateTeamV4: %v", err)
	}
	if err := c.DeleteAccountUser(ctx(t), "01AU/1"); err != nil {
		t.Fatalf("DeleteAccountUser: %v", err)
	}

	const bearer = "Bearer " + testAPIKey
	want := []sentRequest{
		{Method: "GET", Path: "/api/v4/account_users", Query: "limit=1", Authorization: bearer, HasAuthorization: true},
		{Method: "GET", Path: "/api/v4/account_users", Query: "limit=100&offset=0", Authorization: bearer, HasAuthorization: true},
		{Method: "POST", Path: "/api/v4/account_users", Authorization: bearer, HasAuthorization: true,
			Body: `{"user_attributes":{"name":"Ann","emails_attributes":[{"email":"ann@example.com","primary":true}]}}`},
		{Method: "PUT", Path: "/api/v4/teams/01TEAM1", Authorization: bearer, HasAuthorization: true, Body: `{"member_account_user_ids":[]}`},
		{Method: "DELETE", Path: "/api/v4/account_users/01AU/1", Authorization: bearer, HasAuthorization: true},
	}
	if got := rec.requests(); !slices.Equal(got, want) {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
	requests, _ := obs.seen()
	wantObserved := []observedRequest{
		{"GET", "/api/v4/account_users", 200}, {"GET", "/api/v4/account_users", 200}, {"POST", "/api/v4/account_users", 201},
		{"PUT", "/api/v4/teams/:id", 200}, {"DELETE", "/api/v4/account_users/:id", 204},
	}
	if !slices.Equal(requests, wantObserved) {
		t.Fatalf("observed %v\nwant %v", requests, wantObserved)
	}
}

// TestAPIsDoNotMix: a v3 method on a v4 client, or a v4 method on a v3
// client, fails naming the mix-up, and nothing is sent (no login either).
func TestAPIsDoNotMix(t *testing.T) {
	h := newHostile(t, func(*http.Request, []byte) (int, any) { return http.StatusOK, nil })
	rec := newRecorder()
	v3 := newClient(t, h.URL, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })
	v4 := newClientV4(t, h.URL, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })
	const (
		onV4 = " is a v3 call, and this client speaks v4 (Config.API); nothing was sent"
		onV3 = " is a v4 call, and this client speaks v3 (Config.API); nothing was sent"
	)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"ListUsers on v4", func() error { _, err := v4.ListUsers(ctx(t)); return err }, "pagertree: GET /user" + onV4},
		{"CreateTeam on v4", func() error { _, err := v4.CreateTeam(ctx(t), pagertree.TeamInput{Name: "Ops"}); return err }, "pagertree: POST /team" + onV4},
		{"DeleteUser on v4", func() error { return v4.DeleteUser(ctx(t), "usr_1") }, "pagertree: DELETE /user/:id" + onV4},
		{"Users on v4", func() error {
			for _, err := range v4.Users(ctx(t)) {
				return err
			}
			return nil
		}, "pagertree: GET /user" + onV4},
		{"ListAccountUsers on v3", func() error { _, err := v3.ListAccountUsers(ctx(t)); return err }, "pagertree: GET /api/v4/account_users" + onV3},
		{"CreateAccountUser on v3", func() error {
			_, err := v3.CreateAccountUser(ctx(t), pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann"), Emails: []pagertree.EmailAttributes{{Email: "ann@example.com"}}}})
			return err
		}, "pagertree: POST /api/v4/account_users" + onV3},
		{"UpdateTeamV4 on v3", func() error {
			_, err := v3.UpdateTeamV4(ctx(t), "01T", pagertree.TeamV4Update{Name: ptr("x")})
			return err
		}, "pagertree: PUT /api/v4/teams/:id" + onV3},
		{"GetTeamV4 on v3", func() error { _, err := v3.GetTeamV4(ctx(t), "01T"); return err }, "pagertree: GET /api/v4/teams/:id" + onV3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if sent := rec.requests(); len(sent) != 0 {
		t.Fatalf("sent %+v; want nothing", sent)
	}
}

// TestV4RefusesBeforeSending: invalid ids, a create without an email (a
// lost one could not be found) and a person update without the person's
// id (PagerTree would make another person) fail unsent.
func TestV4RefusesBeforeSending(t *testing.T) {
	h := newHostile(t, func(*http.Request, []byte) (int, any) { return http.StatusOK, nil })
	c := newClientV4(t, h.URL, nil)
	for _, id := range []string{"", ".", ".."} {
		if _, err := c.GetAccountUser(ctx(t), id); err == nil || !strings.Contains(err.Error(), "invalid id") {
			t.Errorf("GetAccountUser(%q): %v", id, err)
		}
		if err := c.DeleteTeamV4(ctx(t), id); err == nil {
			t.Errorf("DeleteTeamV4(%q) succeeded", id)
		}
		if _, err := c.UpdateTeamV4(ctx(t), id, pagertree.TeamV4Update{}); err == nil {
			t.Errorf("UpdateTeamV4(%q) succeeded", id)
		}
	}
	if _, err := c.CreateAccountUser(ctx(t), pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr("Ann")}}); err == nil ||
		err.Error() != "pagertree: POST /api/v4/account_users: the account user has no email; it is needed to find a create whose answer is lost" {
		t.Errorf("CreateAccountUser without an email: %v", err)
	}
	if _, err := c.UpdateAccountUser(ctx(t), "01AU1", pagertree.AccountUserUpdate{User: pagertree.PersonAttributes{Name: ptr("Ann")}}); err == nil ||
		err.Error() != "pagertree: PUT /api/v4/account_users/:id: the update has no user id; without it PagerTree would make another person" {
		t.Errorf("UpdateAccountUser without the user id: %v", err)
	}
	if got := h.all(); len(got) != 0 {
		t.Fatalf("requests %v; want none", got)
	}
}
