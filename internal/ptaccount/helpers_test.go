package ptaccount_test

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	gosync "sync"
	"testing"

	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sync"
)

// inspect is a test's hold on one version's emulator: it preloads the
// account bypassing HTTP, and reads back the emulator's own state, so a
// contract case checks what PagerTree holds and not only what the adapter
// answered. The state is shown as stateUser and stateTeam, the emulator's
// records with nothing computed: no second model of PagerTree.
type inspect interface {
	version() string // pagertree.APIv3 or APIv4
	// accountID is the account_id every v4 object carries; "" on v3,
	// whose adapter leaves sync's AccountID empty.
	accountID() string
	addUser(t *testing.T, u seedUser) string
	addTeam(t *testing.T, tm seedTeam) string
	users() []stateUser
	teams() []stateTeam
	// teamKey is the JSON key a team write carries a field in
	// ("name", "description", "members", "admins"), "" when the version
	// has no such field.
	teamKey(field string) string
	// userRoute and teamRoute are the list routes, as Stats counts them.
	userRoute() string
	teamRoute() string
	stats() pagertreetest.Stats
	resetStats()
	// sent is every request the adapter's client sent, in order.
	sent() []sentRequest
	// addExistingLogin marks an email as a PagerTree login elsewhere (v4).
	addExistingLogin(email string)
	// wrongCredentials is an adapter for the same emulator whose client
	// has a wrong password (v3) or API key (v4).
	wrongCredentials(t *testing.T) sync.PagerTree
}

// seedUser is a user to preload. Emails[Primary] is the primary address,
// Phones[0] the primary phone; v3 users have one email and at most one
// phone.
type seedUser struct {
	Name    string
	Emails  []string
	Primary int
	Phones  []string
	Admin   bool
}

// seedTeam is a team to preload; Admins are ignored on v3.
type seedTeam struct {
	Name, Description string
	Members, Admins   []string
}

// stateUser is a user as the emulator stores it.
type stateUser struct {
	ID        string
	Email     string   // the primary address
	Others    []string // the other addresses (v4)
	Name      string
	Phone     string   // the primary phone
	Phones    []string // every phone number, in stored order
	Admin     bool
	Invited   bool
	AccountID string // v4 only
	// v4 only: the person's id and the ids of its email and phone
	// entries, in stored order.
	PersonID           string
	EmailIDs, PhoneIDs []string
}

// stateTeam is a team as the emulator stores it.
type stateTeam struct {
	ID, Name, Description string // Description: v4's notes
	MemberIDs, AdminIDs   []string
	ScheduleID            string
	EscalationPolicyID    string // v4 only
	AccountID             string // v4 only
}

// sentRequest is one request a client sent.
type sentRequest struct {
	Method, Path string
	Body         []byte
}

// recorder records every request before sending it on.
type recorder struct {
	next http.RoundTripper
	mu   gosync.Mutex
	reqs []sentRequest
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		data, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = data
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(data))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, sentRequest{Method: req.Method, Path: req.URL.Path, Body: body})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *recorder) sent() []sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// newClient returns a client of srv speaking api with cfg's credentials,
// its requests recorded by rec when not nil.
func newClient(t *testing.T, srv *pagertreetest.Server, cfg pagertree.Config, rec *recorder) *pagertree.Client {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	cfg.URL = srv.URL()
	cfg.HTTPClient = &http.Client{Transport: transport}
	if rec != nil {
		rec.next = transport
		cfg.HTTPClient.Transport = rec
	}
	c, err := pagertree.New(cfg)
	if err != nil {
		t.Fatalf("pagertree.New: %v", err)
	}
	return c
}

// newV3 starts a v3 emulator and returns the adapter For gives its client.
func newV3(t *testing.T) (sync.PagerTree, inspect) {
	t.Helper()
	srv := pagertreetest.NewServer(pagertreetest.Options{})
	t.Cleanup(srv.Close)
	acc := &v3Account{srv: srv, rec: &recorder{}}
	cfg := pagertree.Config{API: pagertree.APIv3, Username: pagertreetest.DefaultUsername, Password: pagertreetest.DefaultPassword}
	return ptaccount.For(pagertree.APIv3, newClient(t, srv, cfg, acc.rec)), acc
}

// newV4 starts a v4 emulator and returns the adapter For gives its client.
func newV4(t *testing.T) (sync.PagerTree, inspect) {
	t.Helper()
	srv := pagertreetest.NewServer(pagertreetest.Options{API: "v4"})
	t.Cleanup(srv.Close)
	acc := &v4Account{srv: srv, rec: &recorder{}}
	cfg := pagertree.Config{API: pagertree.APIv4, APIKey: pagertreetest.DefaultAPIKey}
	return ptaccount.For(pagertree.APIv4, newClient(t, srv, cfg, acc.rec)), acc
}

type v3Account struct {
	srv *pagertreetest.Server
	rec *recorder
}

func (a *v3Account) version() string   { return pagertree.APIv3 }
func (a *v3Account) accountID() string { return "" }

func (a *v3Account) addUser(t *testing.T, u seedUser) string {
	t.Helper()
	if len(u.Emails) != 1 || len(u.Phones) > 1 {
		t.Fatalf("a v3 user has one email and at most one phone: %+v", u)
	}
	phone := ""
	if len(u.Phones) == 1 {
		phone = u.Phones[0]
	}
	added, err := a.srv.AddUser(pagertree.User{Name: u.Name, Email: u.Emails[0], Phone: phone, Roles: pagertree.Roles{Admin: u.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	return added.ID
}

func (a *v3Account) addTeam(t *testing.T, tm seedTeam) string {
	t.Helper()
	added, err := a.srv.AddTeam(pagertree.Team{Name: tm.Name, Description: tm.Description, MemberUserIDs: tm.Members})
	if err != nil {
		t.Fatal(err)
	}
	return added.ID
}

func (a *v3Account) users() []stateUser {
	var out []stateUser
	for _, u := range a.srv.Users() {
		su := stateUser{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin}
		if u.Phone != "" {
			su.Phones = []string{u.Phone}
		}
		out = append(out, su)
	}
	return out
}

func (a *v3Account) teams() []stateTeam {
	var out []stateTeam
	for _, tm := range a.srv.Teams() {
		out = append(out, stateTeam{ID: tm.ID, Name: tm.Name, Description: tm.Description, MemberIDs: tm.MemberUserIDs, ScheduleID: tm.ScheduleID})
	}
	return out
}

func (a *v3Account) teamKey(field string) string {
	return map[string]string{"name": "name", "description": "description", "members": "member_user_ids"}[field]
}

func (a *v3Account) userRoute() string          { return "GET /user" }
func (a *v3Account) teamRoute() string          { return "GET /team" }
func (a *v3Account) stats() pagertreetest.Stats { return a.srv.Stats() }
func (a *v3Account) resetStats()                { a.srv.ResetStats() }
func (a *v3Account) sent() []sentRequest        { return a.rec.sent() }
func (a *v3Account) addExistingLogin(string)    {}

func (a *v3Account) wrongCredentials(t *testing.T) sync.PagerTree {
	cfg := pagertree.Config{API: pagertree.APIv3, Username: pagertreetest.DefaultUsername, Password: "not-the-password"}
	return ptaccount.For(pagertree.APIv3, newClient(t, a.srv, cfg, nil))
}

type v4Account struct {
	srv *pagertreetest.Server
	rec *recorder
}

func (a *v4Account) version() string   { return pagertree.APIv4 }
func (a *v4Account) accountID() string { return a.srv.AccountID() }

func (a *v4Account) addUser(t *testing.T, u seedUser) string {
	t.Helper()
	au := pagertree.AccountUser{Roles: pagertree.AccountRoles{Admin: u.Admin}, User: pagertree.Person{Name: u.Name}}
	for i, e := range u.Emails {
		au.User.Emails = append(au.User.Emails, pagertree.Email{Email: e, Primary: pagertree.FlexBool(i == u.Primary)})
	}
	for i, ph := range u.Phones {
		au.User.Phones = append(au.User.Phones, pagertree.Phone{Phone: ph, Primary: i == 0})
	}
	added, err := a.srv.AddAccountUser(au)
	if err != nil {
		t.Fatal(err)
	}
	return added.ID
}

func (a *v4Account) addTeam(t *testing.T, tm seedTeam) string {
	t.Helper()
	added, err := a.srv.AddTeamV4(pagertree.TeamV4{Name: tm.Name, Notes: tm.Description, MemberAccountUserIDs: tm.Members, AdminAccountUserIDs: tm.Admins})
	if err != nil {
		t.Fatal(err)
	}
	return added.ID
}

func (a *v4Account) users() []stateUser {
	var out []stateUser
	for _, au := range a.srv.AccountUsers() {
		su := stateUser{ID: au.ID, Name: au.User.Name, Admin: au.Roles.Admin, Invited: au.Invited, AccountID: au.AccountID, PersonID: au.User.ID}
		for _, e := range au.User.Emails {
			su.EmailIDs = append(su.EmailIDs, e.ID)
			if e.Primary {
				su.Email = e.Email
			} else {
				su.Others = append(su.Others, e.Email)
			}
		}
		for _, ph := range au.User.Phones {
			su.PhoneIDs = append(su.PhoneIDs, ph.ID)
			su.Phones = append(su.Phones, ph.Phone)
			if ph.Primary {
				su.Phone = ph.Phone
			}
		}
		out = append(out, su)
	}
	return out
}

func (a *v4Account) teams() []stateTeam {
	var out []stateTeam
	for _, tm := range a.srv.TeamsV4() {
		out = append(out, stateTeam{
			ID: tm.ID, Name: tm.Name, Description: tm.Notes,
			MemberIDs: tm.MemberAccountUserIDs, AdminIDs: tm.AdminAccountUserIDs,
			ScheduleID: tm.ScheduleID, EscalationPolicyID: tm.EscalationPolicyID, AccountID: tm.AccountID,
		})
	}
	return out
}

func (a *v4Account) teamKey(field string) string {
	return map[string]string{"name": "name", "description": "notes", "members": "member_account_user_ids", "admins": "admin_account_user_ids"}[field]
}

func (a *v4Account) userRoute() string             { return "GET " + pagertree.APIPrefix + "/account_users" }
func (a *v4Account) teamRoute() string             { return "GET " + pagertree.APIPrefix + "/teams" }
func (a *v4Account) stats() pagertreetest.Stats    { return a.srv.Stats() }
func (a *v4Account) resetStats()                   { a.srv.ResetStats() }
func (a *v4Account) sent() []sentRequest           { return a.rec.sent() }
func (a *v4Account) addExistingLogin(email string) { a.srv.AddExistingLogin(email) }
func (a *v4Account) wrongCredentials(t *testing.T) sync.PagerTree {
	cfg := pagertree.Config{API: pagertree.APIv4, APIKey: "pt4_not_the_key"}
	return ptaccount.For(pagertree.APIv4, newClient(t, a.srv, cfg, nil))
}

// stateUserByID is the emulator's user id, failing the test when there is
// none.
func stateUserByID(t *testing.T, acc inspect, id string) stateUser {
	t.Helper()
	for _, u := range acc.users() {
		if u.ID == id {
			return u
		}
	}
	t.Fatalf("the emulator has no user %q", id)
	return stateUser{}
}

// stateTeamByID is the emulator's team id, failing the test when there is
// none.
func stateTeamByID(t *testing.T, acc inspect, id string) stateTeam {
	t.Helper()
	for _, tm := range acc.teams() {
		if tm.ID == id {
			return tm
		}
	}
	t.Fatalf("the emulator has no team %q", id)
	return stateTeam{}
}

// asSync is the user in sync's terms, read off the emulator's record.
func (u stateUser) asSync() sync.AccountUser {
	return sync.AccountUser{ID: u.ID, Email: u.Email, Emails: u.Others, Name: u.Name, Phone: u.Phone, Admin: u.Admin, Invited: u.Invited, AccountID: u.AccountID}
}

// asSync is the team in sync's terms, read off the emulator's record.
func (tm stateTeam) asSync() sync.AccountTeam {
	return sync.AccountTeam{ID: tm.ID, Name: tm.Name, Description: tm.Description, MemberIDs: tm.MemberIDs, AdminIDs: tm.AdminIDs, AccountID: tm.AccountID}
}

// sameUser compares users field by field, a nil list equal to an empty one.
func sameUser(a, b sync.AccountUser) bool {
	return a.ID == b.ID && a.Email == b.Email && slices.Equal(a.Emails, b.Emails) && a.Name == b.Name &&
		a.Phone == b.Phone && a.Admin == b.Admin && a.Invited == b.Invited && a.AccountID == b.AccountID
}

// sameTeam compares teams field by field, a nil list equal to an empty one.
func sameTeam(a, b sync.AccountTeam) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(a.MemberIDs, b.MemberIDs) && slices.Equal(a.AdminIDs, b.AdminIDs) && a.AccountID == b.AccountID
}

// sameStateUser compares two readings of the emulator's user.
func sameStateUser(a, b stateUser) bool {
	return sameUser(a.asSync(), b.asSync()) && slices.Equal(a.Phones, b.Phones) && a.PersonID == b.PersonID &&
		slices.Equal(a.EmailIDs, b.EmailIDs) && slices.Equal(a.PhoneIDs, b.PhoneIDs)
}

// sameStateTeam compares two readings of the emulator's team.
func sameStateTeam(a, b stateTeam) bool {
	return sameTeam(a.asSync(), b.asSync()) && a.ScheduleID == b.ScheduleID && a.EscalationPolicyID == b.EscalationPolicyID
}

// lastWrite is the body of the last request of method whose path starts
// with prefix, decoded to its top-level keys.
func lastWrite(t *testing.T, acc inspect, method, prefix string) map[string]json.RawMessage {
	t.Helper()
	reqs := acc.sent()
	for i := len(reqs) - 1; i >= 0; i-- {
		r := reqs[i]
		if r.Method != method || len(r.Path) < len(prefix) || r.Path[:len(prefix)] != prefix {
			continue
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("%s %s: body %q: %v", r.Method, r.Path, r.Body, err)
		}
		return body
	}
	t.Fatalf("no %s %s… was sent", method, prefix)
	return nil
}

// keys are a JSON object's keys, sorted.
func keys(body map[string]json.RawMessage) []string {
	return slices.Sorted(maps.Keys(body))
}
