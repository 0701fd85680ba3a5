package pagertreetest

import (
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestV4Auth(t *testing.T) {
	s := newV4Server(t)
	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantMessage   string
	}{
		{"Bearer key", bearer, http.StatusOK, ""},
		{"no key", "", http.StatusUnauthorized, `an API key is required: "Authorization: Bearer <key>"`},
		{"raw key", DefaultAPIKey, http.StatusUnauthorized, `invalid Authorization: the API key goes as "Bearer <key>"`},
		{"other scheme", "Token " + DefaultAPIKey, http.StatusUnauthorized, `invalid Authorization: the API key goes as "Bearer <key>"`},
		{"wrong key", "Bearer pt4_other", http.StatusUnauthorized, "invalid API key"},
		{"key with a suffix", bearer + "x", http.StatusUnauthorized, "invalid API key"},
		{"Bearer and nothing", "Bearer ", http.StatusUnauthorized, `invalid Authorization: the API key goes as "Bearer <key>"`}, // the space is trimmed in transit
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v4/account_users", "/api/v4/teams", "/api/v4/account_users/x", "/api/v4/teams/x"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				status := tt.wantStatus
				if status == http.StatusOK && strings.Count(path, "/") == 4 {
					status = http.StatusNotFound // authenticated, but no such object
				}
				r := expect(t, s, tt.authorization, http.MethodGet, path, "", status)
				if tt.wantMessage != "" {
					if got := errorMessageV4(t, r); got != tt.wantMessage {
						t.Errorf("message %q, want %q", got, tt.wantMessage)
					}
				}
			})
		}
	}
	// A refused key commits nothing.
	expect(t, s, "Bearer nope", http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Ann","emails_attributes":[{"email":"ann@example.com"}]}}`, http.StatusUnauthorized)
	if n := len(s.AccountUsers()); n != 0 {
		t.Errorf("%d account users after an unauthorised create", n)
	}
}

func TestV4APIKeyOption(t *testing.T) {
	s := NewServer(Options{API: "v4", APIKey: "pt4_mine"})
	t.Cleanup(s.Close)
	expect(t, s, "Bearer pt4_mine", http.MethodGet, "/api/v4/teams", "", http.StatusOK)
	expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusUnauthorized)
}

// TestV4ErrorBodyShape pins v4's error body byte for byte.
func TestV4ErrorBodyShape(t *testing.T) {
	s := newV4Server(t)
	r := expect(t, s, "Bearer nope", http.MethodGet, "/api/v4/teams", "", http.StatusUnauthorized)
	if got, want := string(r.body), `{"errors":[{"message":"invalid API key"}],"code":401}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestV4Routing(t *testing.T) {
	s := newV4Server(t)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantMessage        string
		wantAllow          string
	}{
		{"v3 users", http.MethodGet, "/user", http.StatusNotFound, "no route GET /user", ""},
		{"v3 login", http.MethodPost, "/public/login", http.StatusNotFound, "no route POST /public/login", ""},
		{"no prefix", http.MethodGet, "/account_users", http.StatusNotFound, "no route GET /account_users", ""},
		{"users collection", http.MethodGet, "/api/v4/users", http.StatusNotFound, "no route GET /api/v4/users", ""},
		{"nested path", http.MethodGet, "/api/v4/teams/x/alerts", http.StatusNotFound, "no route GET /api/v4/teams/x/alerts", ""},
		{"delete a user", http.MethodDelete, "/api/v4/users/x", http.StatusUnprocessableEntity,
			"deleting a user is not supported: delete its account user (DELETE /api/v4/account_users/:id)", ""},
		{"get a user", http.MethodGet, "/api/v4/users/x", http.StatusMethodNotAllowed, "method GET not allowed on /api/v4/users/:id", "DELETE"},
		{"PATCH an account user", http.MethodPatch, "/api/v4/account_users/x", http.StatusMethodNotAllowed,
			"method PATCH not allowed on /api/v4/account_users/:id", "GET, PUT, DELETE"},
		{"DELETE the teams", http.MethodDelete, "/api/v4/teams", http.StatusMethodNotAllowed, "method DELETE not allowed on /api/v4/teams", "GET, POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, bearer, tt.method, tt.path, "", tt.wantStatus)
			if got := errorMessageV4(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// TestV3ServesNoV4 checks a v3 server knows no v4 route nor key.
func TestV3ServesNoV4(t *testing.T) {
	for _, api := range []string{"", "v3"} {
		s := NewServer(Options{API: api})
		t.Cleanup(s.Close)
		token := login(t, s)
		for _, path := range []string{"/api/v4/account_users", "/api/v4/teams", "/api/v4/users/x"} {
			r := expect(t, s, token, http.MethodGet, path, "", http.StatusNotFound)
			if got := errorMessage(t, r); got != "no route GET "+path {
				t.Errorf("API %q: message %q", api, got)
			}
		}
		expect(t, s, bearer, http.MethodGet, "/user", "", http.StatusUnauthorized)
		if !strings.HasPrefix(s.AccountID(), "acc_") {
			t.Errorf("API %q: account id %q", api, s.AccountID())
		}
	}
}

func TestNewRefusesUnknownAPI(t *testing.T) {
	defer func() {
		if got, want := fmt.Sprint(recover()), `pagertreetest: Options.API "v5": want "v3", "v4" or empty`; got != want {
			t.Errorf("panic %q, want %q", got, want)
		}
	}()
	New(Options{API: "v5"})
}

// TestPreloadsOfTheOtherAPI checks each mode refuses the other's preloads.
func TestPreloadsOfTheOtherAPI(t *testing.T) {
	v3, v4 := New(Options{}), New(Options{API: "v4"})
	if _, err := v3.AddAccountUser(person("Ann", "ann@example.com")); err == nil || err.Error() != "pagertreetest: add account user: the server speaks v3 (Options.API)" {
		t.Errorf("AddAccountUser in v3: %v", err)
	}
	if _, err := v3.AddTeamV4(pagertree.TeamV4{Name: "DB"}); err == nil || err.Error() != "pagertreetest: add team: the server speaks v3 (Options.API)" {
		t.Errorf("AddTeamV4 in v3: %v", err)
	}
	if _, err := v4.AddUser(pagertree.User{Email: "ann@example.com"}); err == nil || err.Error() != "pagertreetest: add user: the server speaks v4 (Options.API)" {
		t.Errorf("AddUser in v4: %v", err)
	}
	if _, err := v4.AddTeam(pagertree.Team{Name: "DB"}); err == nil || err.Error() != "pagertreetest: add team: the server speaks v4 (Options.API)" {
		t.Errorf("AddTeam in v4: %v", err)
	}
	v3.AddExistingLogin("ann@example.com") // nothing to do, and no panic
	if v3.AccountUsers() != nil || v3.TeamsV4() != nil || len(v4.Users()) != 0 || len(v4.Teams()) != 0 {
		t.Error("a mode lists objects of the other")
	}
}

func TestEncodeULID(t *testing.T) {
	// The ULID specification's example, as a 128-bit number.
	if got, want := encodeULID(0x1563e3ab5d3d676, 0x4c61efb99302bd5b), "01ARZ3NDEKTSV4RRFFQ69G5FAV"; got != want {
		t.Errorf("encodeULID = %s, want %s", got, want)
	}
	if got := encodeULID(^uint64(0), ^uint64(0)); got != "7ZZZZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Errorf("largest ULID %s", got)
	}
}

func TestV4ErrorRate(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	s.SetFaults(Faults{ErrorRate: 1})
	s.ResetStats()
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v4/account_users", ""},
		{http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Bo","emails_attributes":[{"email":"bo@example.com"}]}}`},
		{http.MethodPost, "/api/v4/teams", `{"name":"DB","member_account_user_ids":["` + ann.ID + `"],"admin_account_user_ids":["` + ann.ID + `"]}`},
		{http.MethodDelete, "/api/v4/account_users/" + ann.ID, ""},
	} {
		r := expect(t, s, bearer, req.method, req.path, req.body, http.StatusInternalServerError)
		if got := errorMessageV4(t, r); got != "internal server error" {
			t.Errorf("%s %s: message %q", req.method, req.path, got)
		}
	}
	if len(s.AccountUsers()) != 1 || len(s.TeamsV4()) != 0 {
		t.Errorf("a 500 committed something: %d account users, %d teams", len(s.AccountUsers()), len(s.TeamsV4()))
	}
	if st := s.Stats(); st.WriteAttempts != 3 || st.Writes != 0 || st.Status[http.StatusInternalServerError] != 4 {
		t.Errorf("stats %+v: want 3 write attempts, 0 writes, 4 answers 500", st)
	}
}

func TestV4RateLimitRate(t *testing.T) {
	s := newV4Server(t)
	s.SetFaults(Faults{RateLimitRate: 1, RetryAfter: 3e9})
	r := expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Ann","emails_attributes":[{"email":"ann@example.com"}]}}`, http.StatusTooManyRequests)
	if got := r.header.Get("Retry-After"); got != "3" {
		t.Errorf("Retry-After %q, want 3", got)
	}
	if got := errorMessageV4(t, r); got != "too many requests" {
		t.Errorf("message %q", got)
	}
	if len(s.AccountUsers()) != 0 {
		t.Error("a 429 committed the account user")
	}
}

func TestV4DropCreate(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	s.SetFaults(Faults{DropCreateRate: 1})
	s.ResetStats()
	for _, req := range []struct{ path, body string }{
		{"/api/v4/account_users", `{"user_attributes":{"name":"Bo","emails_attributes":[{"email":"bo@example.com"}]}}`},
		{"/api/v4/teams", `{"name":"DB","member_account_user_ids":["` + ann.ID + `"],"admin_account_user_ids":["` + ann.ID + `"]}`},
	} {
		if r, err := send(t, s, bearer, http.MethodPost, req.path, req.body); err == nil {
			t.Errorf("POST %s answered %d %s; want the connection dropped", req.path, r.status, r.body)
		}
	}
	if aus := s.AccountUsers(); len(aus) != 2 || aus[1].User.Emails[0].Email != "bo@example.com" {
		t.Errorf("the dropped account user create was not committed: %+v", aus)
	}
	if teams := s.TeamsV4(); len(teams) != 1 || teams[0].Name != "DB" {
		t.Errorf("the dropped team create was not committed: %+v", teams)
	}
	// Only successful creates are dropped; updates and deletes never.
	r := expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Bo","emails_attributes":[{"email":"BO@example.com"}]}}`, http.StatusUnprocessableEntity)
	if got := errorMessageV4(t, r); got != "email 'BO@example.com' has already been taken" {
		t.Errorf("message %q", got)
	}
	expect(t, s, bearer, http.MethodPut, "/api/v4/account_users/"+ann.ID, `{"roles":{"admin":true}}`, http.StatusOK)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+s.AccountUsers()[1].ID, "", http.StatusNoContent)

	st := s.Stats()
	if st.Dropped != 2 || st.Writes != 4 || st.WriteAttempts != 5 {
		t.Errorf("dropped %d writes %d attempts %d, want 2 4 5", st.Dropped, st.Writes, st.WriteAttempts)
	}
	if want := map[int]int{http.StatusUnprocessableEntity: 1, http.StatusOK: 1, http.StatusNoContent: 1}; !maps.Equal(st.Status, want) {
		t.Errorf("status %v, want %v (dropped creates have none)", st.Status, want)
	}
}

// TestV4KeysDoNotExpire checks TokenTTL and ExpireTokens leave keys alone.
func TestV4KeysDoNotExpire(t *testing.T) {
	s := newV4Server(t)
	s.SetFaults(Faults{TokenTTL: 1})
	for range 3 {
		expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusOK)
	}
	s.ExpireTokens()
	expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusOK)
}

func TestV4StatsByRoute(t *testing.T) {
	s := newV4Server(t)
	ann := decodeAccountUser(t, expect(t, s, bearer, http.MethodPost, "/api/v4/account_users",
		`{"user_attributes":{"name":"Ann","emails_attributes":[{"email":"ann@example.com"}]}}`, http.StatusCreated))
	expect(t, s, bearer, http.MethodGet, "/api/v4/account_users?limit=5", "", http.StatusOK)
	expect(t, s, bearer, http.MethodGet, "/api/v4/account_users/"+ann.ID, "", http.StatusOK)
	expect(t, s, bearer, http.MethodPut, "/api/v4/account_users/"+ann.ID, `{"roles":{}}`, http.StatusOK)
	team := decodeTeamV4(t, expect(t, s, bearer, http.MethodPost, "/api/v4/teams",
		`{"name":"DB","member_account_user_ids":["`+ann.ID+`"],"admin_account_user_ids":["`+ann.ID+`"]}`, http.StatusCreated))
	expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusOK)
	expect(t, s, bearer, http.MethodGet, "/api/v4/teams/"+team.ID, "", http.StatusOK)
	expect(t, s, bearer, http.MethodPut, "/api/v4/teams/"+team.ID, `{"notes":"x"}`, http.StatusOK)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/teams/"+team.ID, "", http.StatusNoContent)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+ann.ID, "", http.StatusNoContent)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/users/"+ann.User.ID, "", http.StatusUnprocessableEntity)
	expect(t, s, "", http.MethodGet, "/api/v4/teams", "", http.StatusUnauthorized)
	expect(t, s, bearer, http.MethodGet, "/user", "", http.StatusNotFound)

	got := s.Stats()
	wantRequests := map[string]int{
		"POST /api/v4/account_users":       1,
		"GET /api/v4/account_users":        1,
		"GET /api/v4/account_users/:id":    1,
		"PUT /api/v4/account_users/:id":    1,
		"DELETE /api/v4/account_users/:id": 1,
		"POST /api/v4/teams":               1,
		"GET /api/v4/teams":                2,
		"GET /api/v4/teams/:id":            1,
		"PUT /api/v4/teams/:id":            1,
		"DELETE /api/v4/teams/:id":         1,
		"DELETE /api/v4/users/:id":         1,
		"GET (unmatched)":                  1,
	}
	if !maps.Equal(got.Requests, wantRequests) {
		t.Errorf("requests %v, want %v", got.Requests, wantRequests)
	}
	wantStatus := map[int]int{200: 6, 201: 2, 204: 2, 401: 1, 404: 1, 422: 1}
	if !maps.Equal(got.Status, wantStatus) {
		t.Errorf("status %v, want %v", got.Status, wantStatus)
	}
	if got.WriteAttempts != 7 || got.Writes != 6 {
		t.Errorf("write attempts %d writes %d, want 7 6", got.WriteAttempts, got.Writes)
	}
}
