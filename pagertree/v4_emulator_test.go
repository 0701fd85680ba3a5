package pagertree_test

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// newEmulatorV4 starts a v4 emulator with the default key.
func newEmulatorV4(t testing.TB) *pagertreetest.Server {
	t.Helper()
	s := pagertreetest.NewServer(pagertreetest.Options{API: pagertree.APIv4})
	t.Cleanup(s.Close)
	return s
}

// newEmulatorClientV4 is a v4 client of s with the emulator's default key.
func newEmulatorClientV4(t testing.TB, s *pagertreetest.Server, edit func(*pagertree.Config)) *pagertree.Client {
	t.Helper()
	return newClientV4(t, s.URL(), func(cfg *pagertree.Config) {
		cfg.APIKey = pagertreetest.DefaultAPIKey
		if edit != nil {
			edit(cfg)
		}
	})
}

// addAccountUsers preloads n account users with emails user0000@example.com
// and so on.
func addAccountUsers(t testing.TB, s *pagertreetest.Server, n int) []pagertree.AccountUser {
	t.Helper()
	users := make([]pagertree.AccountUser, n)
	for i := range n {
		u, err := s.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{
			Name: fmt.Sprintf("User %d", i), Emails: []pagertree.Email{{Email: fmt.Sprintf("user%04d@example.com", i)}},
		}})
		if err != nil {
			t.Fatalf("AddAccountUser: %v", err)
		}
		users[i] = u
	}
	return users
}

func personInput(name string, emails ...string) pagertree.AccountUserInput {
	in := pagertree.AccountUserInput{User: pagertree.PersonAttributes{Name: ptr(name)}}
	for i, e := range emails {
		in.User.Emails = append(in.User.Emails, pagertree.EmailAttributes{Email: e, Primary: i == 0})
	}
	return in
}

func emailList(p pagertree.Person) []string {
	var out []string
	for _, e := range p.Emails {
		out = append(out, fmt.Sprintf("%s primary=%t", e.Email, e.Primary))
	}
	return out
}

func TestAccountUserRoundTrip(t *testing.T) {
	s := newEmulatorV4(t)
	rec := newRecorder()
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	in := personInput("Ann Lee", "ann@example.com", "ann.lee@example.com")
	in.User.Phones = []pagertree.PhoneAttributes{{Phone: "+14155550100", Primary: true}}
	created, err := c.CreateAccountUser(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateAccountUser: %v", err)
	}
	if created.ID == "" || created.AccountID != s.AccountID() || created.User.ID == "" || created.User.Name != "Ann Lee" ||
		!slices.Equal(emailList(created.User), []string{"ann@example.com primary=true", "ann.lee@example.com primary=false"}) ||
		len(created.User.Phones) != 1 || created.User.Phones[0].Phone != "+14155550100" {
		t.Fatalf("created %+v", created)
	}

	got, err := c.GetAccountUser(ctx(t), created.ID)
	if err != nil || !reflect.DeepEqual(got, created) {
		t.Fatalf("GetAccountUser = %+v, %v; want %+v", got, err, created)
	}

	// Renamed; the second email made primary by id, the first destroyed,
	// a third added; the phone destroyed by id and another added.
	first, second := created.User.Emails[0], created.User.Emails[1]
	up := pagertree.AccountUserUpdate{User: pagertree.PersonAttributes{
		ID:   created.User.ID,
		Name: ptr("Ann Lee-Smith"),
		Emails: []pagertree.EmailAttributes{
			{ID: second.ID, Primary: true},
			{ID: first.ID, Destroy: true},
			{Email: "ann@corp.example"},
		},
		Phones: []pagertree.PhoneAttributes{
			{ID: created.User.Phones[0].ID, Destroy: true},
			{Phone: "+14155550199", Primary: true},
		},
	}}
	updated, err := c.UpdateAccountUser(ctx(t), created.ID, up)
	if err != nil {
		t.Fatalf("UpdateAccountUser: %v", err)
	}
	if updated.User.Name != "Ann Lee-Smith" || updated.User.ID != created.User.ID ||
		!slices.Equal(emailList(updated.User), []string{"ann.lee@example.com primary=true", "ann@corp.example primary=false"}) ||
		updated.User.Emails[0].ID != second.ID || len(updated.User.Phones) != 1 || updated.User.Phones[0].Phone != "+14155550199" {
		t.Fatalf("updated %+v", updated)
	}
	if primary, _ := updated.User.PrimaryPhone(); primary.Phone != "+14155550199" {
		t.Fatalf("primary phone %+v", primary)
	}

	users, err := c.ListAccountUsers(ctx(t))
	if err != nil || len(users) != 1 || !reflect.DeepEqual(users[0], updated) {
		t.Fatalf("ListAccountUsers = %+v, %v; want [%+v]", users, err, updated)
	}

	if err := c.DeleteAccountUser(ctx(t), created.ID); err != nil {
		t.Fatalf("DeleteAccountUser: %v", err)
	}
	var apiErr *pagertree.APIError
	if _, err := c.GetAccountUser(ctx(t), created.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Route != "/api/v4/account_users/:id" {
		t.Fatalf("GetAccountUser after delete: %v; want a 404 *APIError on /api/v4/account_users/:id", err)
	}
	if err := c.DeleteAccountUser(ctx(t), created.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("second DeleteAccountUser: %v; want a 404 *APIError", err)
	}

	var put string
	for _, r := range rec.requests() {
		if r.Method == http.MethodPut {
			put = r.Body
		}
	}
	want := fmt.Sprintf(`{"user_attributes":{"id":%q,"name":"Ann Lee-Smith","emails_attributes":[{"id":%q,"primary":true},{"id":%q,"_destroy":true},{"email":"ann@corp.example"}],`+
		`"phones_attributes":[{"id":%q,"_destroy":true},{"phone":"+14155550199","primary":true}]}}`, created.User.ID, second.ID, first.ID, created.User.Phones[0].ID)
	if put != want {
		t.Fatalf("PUT body = %s\nwant %s", put, want)
	}
}

func TestTeamV4RoundTrip(t *testing.T) {
	s := newEmulatorV4(t)
	rec := newRecorder()
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })
	au := addAccountUsers(t, s, 3)

	const marker = "[managed by ptsync: source=corp group=g1]"
	created, err := c.CreateTeamV4(ctx(t), pagertree.TeamV4Input{
		Name: "DB", Notes: marker, MemberAccountUserIDs: []string{au[0].ID, au[1].ID}, AdminAccountUserIDs: []string{au[0].ID},
	})
	if err != nil {
		t.Fatalf("CreateTeamV4: %v", err)
	}
	if created.ID == "" || created.ScheduleID == "" || created.EscalationPolicyID == "" || created.Name != "DB" || created.Notes != marker ||
		!slices.Equal(created.MemberAccountUserIDs, []string{au[0].ID, au[1].ID}) || !slices.Equal(created.AdminAccountUserIDs, []string{au[0].ID}) {
		t.Fatalf("created %+v", created)
	}
	if got, err := c.GetTeamV4(ctx(t), created.ID); err != nil || !reflect.DeepEqual(got, created) {
		t.Fatalf("GetTeamV4 = %+v, %v; want %+v", got, err, created)
	}

	renamed, err := c.UpdateTeamV4(ctx(t), created.ID, pagertree.TeamV4Update{Name: ptr("Databases")})
	if err != nil {
		t.Fatalf("UpdateTeamV4 rename: %v", err)
	}
	if renamed.Name != "Databases" || renamed.ScheduleID != created.ScheduleID || renamed.EscalationPolicyID != created.EscalationPolicyID ||
		renamed.Notes != marker || !slices.Equal(renamed.MemberAccountUserIDs, created.MemberAccountUserIDs) || !slices.Equal(renamed.AdminAccountUserIDs, created.AdminAccountUserIDs) {
		t.Fatalf("renamed %+v: want the new name, everything else kept (schedule %s)", renamed, created.ScheduleID)
	}

	roles, err := c.UpdateTeamV4(ctx(t), created.ID, pagertree.TeamV4Update{
		MemberAccountUserIDs: &[]string{au[2].ID}, AdminAccountUserIDs: &[]string{au[1].ID, au[2].ID},
	})
	if err != nil || !slices.Equal(roles.MemberAccountUserIDs, []string{au[2].ID}) || !slices.Equal(roles.AdminAccountUserIDs, []string{au[1].ID, au[2].ID}) ||
		roles.Name != "Databases" || roles.ScheduleID != created.ScheduleID {
		t.Fatalf("UpdateTeamV4 roles = %+v, %v", roles, err)
	}

	// A team keeps a member and an admin: the 422 says so, once.
	_, err = c.UpdateTeamV4(ctx(t), created.ID, pagertree.TeamV4Update{AdminAccountUserIDs: &[]string{}})
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !slices.Equal(apiErr.Messages, []string{"a team needs at least 1 account user in admin_account_user_ids"}) {
		t.Fatalf("UpdateTeamV4 without admins: %v; want a 422 *APIError saying why", err)
	}

	teams, err := c.ListTeamsV4(ctx(t))
	if err != nil || len(teams) != 1 || !reflect.DeepEqual(teams[0], roles) {
		t.Fatalf("ListTeamsV4 = %+v, %v; want [%+v]", teams, err, roles)
	}
	if err := c.DeleteTeamV4(ctx(t), created.ID); err != nil {
		t.Fatalf("DeleteTeamV4: %v", err)
	}
	if _, err := c.GetTeamV4(ctx(t), created.ID); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Route != "/api/v4/teams/:id" {
		t.Fatalf("GetTeamV4 after delete: %v; want a 404 *APIError", err)
	}

	var puts []string
	for _, r := range rec.requests() {
		if r.Method == http.MethodPut {
			puts = append(puts, r.Body)
		}
	}
	want := []string{
		`{"name":"Databases"}`,
		fmt.Sprintf(`{"member_account_user_ids":[%q],"admin_account_user_ids":[%q,%q]}`, au[2].ID, au[1].ID, au[2].ID),
		`{"admin_account_user_ids":[]}`,
	}
	if !slices.Equal(puts, want) {
		t.Fatalf("PUT bodies = %q; want %q (only the fields given)", puts, want)
	}
	if st := s.Stats(); st.Requests["PUT /api/v4/teams/:id"] != 3 {
		t.Fatalf("requests %v; want 3 PUTs, the refused one not retried", st.Requests)
	}
}

// TestV4ValidationErrorsAreSurfaced: a 422's messages reach the caller,
// and the create is not retried.
func TestV4ValidationErrorsAreSurfaced(t *testing.T) {
	s := newEmulatorV4(t)
	au := addAccountUsers(t, s, 1)
	c := newEmulatorClientV4(t, s, nil)

	_, err := c.CreateAccountUser(ctx(t), personInput("Another", "USER0000@example.com"))
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || apiErr.Code != "" ||
		!slices.Equal(apiErr.Messages, []string{"email 'USER0000@example.com' has already been taken"}) {
		t.Fatalf("CreateAccountUser of a taken email: %v; want a 422 *APIError saying so", err)
	}
	_, err = c.CreateTeamV4(ctx(t), pagertree.TeamV4Input{Name: "Ops", MemberAccountUserIDs: []string{au[0].ID}})
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity ||
		err.Error() != "pagertree: POST /api/v4/teams answered 422: a team needs at least 1 account user in admin_account_user_ids" {
		t.Fatalf("CreateTeamV4 without an admin: %v; want a 422 *APIError saying why", err)
	}
	st := s.Stats()
	if st.Requests["POST /api/v4/account_users"] != 1 || st.Requests["POST /api/v4/teams"] != 1 || st.Writes != 0 {
		t.Fatalf("requests %v, %d writes; want each create sent once and nothing written", st.Requests, st.Writes)
	}
}

// TestV4WrongKeyFailsLogin: Login with a key the server refuses is a 401
// *APIError after one request, the key nowhere in it; the right key passes.
func TestV4WrongKeyFailsLogin(t *testing.T) {
	s := newEmulatorV4(t)
	const wrong = "pt4_wrong_key_0123456789"
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.APIKey = wrong })
	err := c.Login(ctx(t))
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Method != "GET" || apiErr.Route != "/api/v4/account_users" {
		t.Fatalf("Login with a wrong key: %v; want a 401 *APIError on GET /api/v4/account_users", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Fatalf("the error carries the key: %v", err)
	}
	if got := s.Stats().Requests; !mapsEqual(got, map[string]int{"GET /api/v4/account_users": 1}) {
		t.Fatalf("requests %v; want the one check", got)
	}
	if err := newEmulatorClientV4(t, s, nil).Login(ctx(t)); err != nil {
		t.Fatalf("Login with the right key: %v", err)
	}
}

// TestV4InvitedPersonIsTaken: a person who has a login elsewhere is
// invited; the account user made is returned with Invited set.
func TestV4InvitedPersonIsTaken(t *testing.T) {
	s := newEmulatorV4(t)
	s.AddExistingLogin("Bo@Example.com")
	c := newEmulatorClientV4(t, s, nil)
	got, err := c.CreateAccountUser(ctx(t), personInput("Bo", "bo@example.com"))
	if err != nil || !got.Invited || got.ID == "" {
		t.Fatalf("CreateAccountUser = %+v, %v; want an invited account user", got, err)
	}
	if stored := s.AccountUsers(); len(stored) != 1 || !reflect.DeepEqual(stored[0], got) {
		t.Fatalf("stored %+v; want the one returned", stored)
	}
}

func TestV4LostCreatesAreFoundNotRepeated(t *testing.T) {
	s := newEmulatorV4(t)
	au := addAccountUsers(t, s, 130) // the lookup pages through the list
	const marker = "[managed by ptsync: source=corp group=g1]"
	// Neither is the team the create makes: another's notes, another's name.
	for _, older := range []pagertree.TeamV4{{Name: "Ops", Notes: "made by hand"}, {Name: "Ops2", Notes: marker}} {
		older.MemberAccountUserIDs, older.AdminAccountUserIDs = []string{au[0].ID}, []string{au[0].ID}
		if _, err := s.AddTeamV4(older); err != nil {
			t.Fatalf("AddTeamV4: %v", err)
		}
	}
	s.SetFaults(pagertreetest.Faults{DropCreateRate: 1})
	// Someone makes another "Ops" while the team create's answer is lost:
	// listed after the one created, it is not taken for it.
	rec := newRecorder()
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/v4/teams" && err != nil {
			if _, err := s.AddTeamV4(pagertree.TeamV4{Name: "Ops", Notes: "made by hand meanwhile", MemberAccountUserIDs: []string{au[1].ID}, AdminAccountUserIDs: []string{au[1].ID}}); err != nil {
				t.Errorf("AddTeamV4: %v", err)
			}
		}
		return resp, err
	}
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	user, err := c.CreateAccountUser(ctx(t), personInput("Bo", "bo@example.com", "robert@example.com"))
	if err != nil {
		t.Fatalf("CreateAccountUser: %v", err)
	}
	team, err := c.CreateTeamV4(ctx(t), pagertree.TeamV4Input{Name: "Ops", Notes: marker, MemberAccountUserIDs: []string{user.ID}, AdminAccountUserIDs: []string{au[0].ID}})
	if err != nil {
		t.Fatalf("CreateTeamV4: %v", err)
	}
	st := s.Stats()
	if st.Dropped != 2 || st.Requests["POST /api/v4/account_users"] != 1 || st.Requests["POST /api/v4/teams"] != 1 {
		t.Fatalf("dropped %d, requests %v; want both creates dropped and neither sent again", st.Dropped, st.Requests)
	}
	stored := s.AccountUsers()
	if last := stored[len(stored)-1]; len(stored) != 131 || !reflect.DeepEqual(user, last) {
		t.Fatalf("CreateAccountUser = %+v; want the one account user stored, %+v (of %d)", user, last, len(stored))
	}
	teams := s.TeamsV4()
	if made := teams[len(teams)-2]; len(teams) != 4 || !reflect.DeepEqual(team, made) {
		t.Fatalf("CreateTeamV4 = %+v; want the team it made, %+v (of %d)", team, made, len(teams))
	}
}

// TestV4ConcurrentCreatesSurviveFaults: creates from 8 goroutines against
// lost answers, 500s and 429s make each account user exactly once, and
// every create returns the one stored.
func TestV4ConcurrentCreatesSurviveFaults(t *testing.T) {
	s := newEmulatorV4(t)
	s.SetFaults(pagertreetest.Faults{DropCreateRate: 0.05, ErrorRate: 0.10, RateLimitRate: 0.02, Seed: 7})
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.Concurrency = 4 })

	const n, workers = 300, 8
	created := make([]pagertree.AccountUser, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				u, err := c.CreateAccountUser(ctx(t), personInput(fmt.Sprintf("User %d", i), fmt.Sprintf("user%04d@example.com", i)))
				if err != nil {
					t.Errorf("CreateAccountUser %d: %v", i, err)
					continue
				}
				created[i] = u
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()

	stored := s.AccountUsers()
	if len(stored) != n {
		t.Fatalf("the account has %d account users, want exactly %d", len(stored), n)
	}
	byEmail := map[string]pagertree.AccountUser{}
	for _, u := range stored {
		byEmail[u.User.PrimaryEmail()] = u
	}
	for i, u := range created {
		if want := byEmail[fmt.Sprintf("user%04d@example.com", i)]; !reflect.DeepEqual(u, want) {
			t.Fatalf("CreateAccountUser %d returned %+v, the account has %+v", i, u, want)
		}
	}
	listed, err := c.ListAccountUsers(ctx(t))
	if err != nil || len(listed) != n {
		t.Fatalf("ListAccountUsers = %d, %v; want %d", len(listed), err, n)
	}
	st := s.Stats()
	if st.Dropped == 0 || st.Status[http.StatusInternalServerError] == 0 || st.Status[http.StatusTooManyRequests] == 0 {
		t.Fatalf("faults did not fire: dropped %d, statuses %v", st.Dropped, st.Status)
	}
}

// TestV4ListCostsOneRequestPerHundred: 250 account users and 100 teams
// cost 3 and 1 requests.
func TestV4ListCostsOneRequestPerHundred(t *testing.T) {
	s := newEmulatorV4(t)
	au := addAccountUsers(t, s, 250)
	var teams []pagertree.TeamV4
	for i := range 100 {
		tm, err := s.AddTeamV4(pagertree.TeamV4{Name: fmt.Sprintf("team %d", i), MemberAccountUserIDs: []string{au[i].ID}, AdminAccountUserIDs: []string{au[i].ID}})
		if err != nil {
			t.Fatalf("AddTeamV4: %v", err)
		}
		teams = append(teams, tm)
	}
	c := newEmulatorClientV4(t, s, func(cfg *pagertree.Config) { cfg.Concurrency = 3 })
	gotUsers, err := c.ListAccountUsers(ctx(t))
	if err != nil || !slices.Equal(ids(gotUsers, accountUserID), ids(au, accountUserID)) {
		t.Fatalf("ListAccountUsers = %d, %v; want the 250 added in order", len(gotUsers), err)
	}
	gotTeams, err := c.ListTeamsV4(ctx(t))
	if err != nil || !slices.Equal(ids(gotTeams, teamV4ID), ids(teams, teamV4ID)) {
		t.Fatalf("ListTeamsV4 = %d, %v; want the 100 added in order", len(gotTeams), err)
	}
	if got := s.Stats().Requests; !mapsEqual(got, map[string]int{"GET /api/v4/account_users": 3, "GET /api/v4/teams": 1}) {
		t.Fatalf("requests %v; want 3 and 1", got)
	}
}

func accountUserID(u pagertree.AccountUser) string { return u.ID }
func teamV4ID(t pagertree.TeamV4) string           { return t.ID }
