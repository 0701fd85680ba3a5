package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// apis are the PagerTree API versions every end-to-end test runs against.
var apis = []string{pagertree.APIv3, pagertree.APIv4}

// forEachAPI runs f as one subtest per API version, named v3 and v4.
func forEachAPI(t *testing.T, f func(t *testing.T, api string)) {
	t.Helper()
	for _, api := range apis {
		t.Run(api, func(t *testing.T) { f(t, api) })
	}
}

// ownerEmail is the account's owner, an account admin in every rig. On v4
// it is also pagertree.team_admins: a v4 team needs an admin, and ptsync
// never changes account admins but may make them team admins.
const ownerEmail = "owner@example.com"

// person and group are a test directory, written as a file source.
type person struct {
	ID       string `yaml:"id"`
	Email    string `yaml:"email"`
	Name     string `yaml:"name,omitempty"`
	Phone    string `yaml:"phone,omitempty"`
	Disabled bool   `yaml:"disabled,omitempty"`
}

type group struct {
	ID      string   `yaml:"id"`
	Name    string   `yaml:"name"`
	Members []string `yaml:"members"`
}

type directory struct {
	Users  []person `yaml:"users"`
	Groups []group  `yaml:"groups"`
}

// without returns the directory without the person of id, everywhere.
func (d directory) without(id string) directory {
	out := directory{}
	for _, p := range d.Users {
		if p.ID != id {
			out.Users = append(out.Users, p)
		}
	}
	for _, g := range d.Groups {
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return m == id })
		out.Groups = append(out.Groups, g)
	}
	return out
}

// corp: ann and bob on payments, bob and cat on db, dan only in a group no
// rule matches.
func corp() directory {
	return directory{
		Users: []person{
			{ID: "p1", Email: "Ann@Example.com", Name: "Ann Archer", Phone: "+1 415 555 0101"},
			{ID: "p2", Email: "bob@example.com", Name: "Bob Baker"},
			{ID: "p3", Email: "cat@example.com", Name: "Cat Cole", Phone: "+44 20 7946 0958"},
			{ID: "p4", Email: "dan@example.com", Name: "Dan Dunn"},
		},
		Groups: []group{
			{ID: "g-pay", Name: "oncall-payments", Members: []string{"p1", "p2"}},
			{ID: "g-db", Name: "oncall-db", Members: []string{"p2", "p3"}},
			{ID: "g-all", Name: "everyone", Members: []string{"p1", "p2", "p3", "p4"}},
		},
	}
}

// writeDirectory makes dir the file source's directory at path.
func writeDirectory(t *testing.T, path string, dir directory) {
	t.Helper()
	data, err := yaml.Marshal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// userView is a PagerTree user as either version stores it: on v4 the
// account user, its email and phone the primary ones. raw is the version's
// own record, so comparing two views compares every stored field.
type userView struct {
	ID, Email, Name, Phone string
	Admin                  bool // an account admin
	raw                    any  // pagertree.User or pagertree.AccountUser
}

// teamView is a PagerTree team as either version stores it. Description is
// v4's notes; AdminIDs are v4's admin account users (none on v3). raw is
// the version's own record, as on userView.
type teamView struct {
	ID, Name, Description string
	MemberIDs, AdminIDs   []string
	ScheduleID            string
	raw                   any // pagertree.Team or pagertree.TeamV4
}

// account is one version's emulator behind version-neutral methods: what
// differs between v3 and v4 lives here, not in the tests.
type account struct {
	api string
	emu *pagertreetest.Server
}

func newAccount(api string) account {
	return account{api: api, emu: pagertreetest.New(pagertreetest.Options{API: api})}
}

func (a account) v4() bool { return a.api == pagertree.APIv4 }

// userRoute and teamRoute are the collections' paths, which are also the
// list routes as Stats.Requests and the metrics count them.
func (a account) userRoute() string {
	if a.v4() {
		return pagertree.APIPrefix + "/account_users"
	}
	return "/user"
}

func (a account) teamRoute() string {
	if a.v4() {
		return pagertree.APIPrefix + "/teams"
	}
	return "/team"
}

// loginRoute is v3's login, "" on v4, which has none.
func (a account) loginRoute() string {
	if a.v4() {
		return ""
	}
	return "/public/login"
}

// errorBody is the version's error body carrying message, for a 422.
func (a account) errorBody(message string) []byte {
	var body any = pagertree.ErrorBody{Errors: []pagertree.ErrorMessage{{Message: message}}}
	if a.v4() {
		body = pagertree.ErrorBodyV4{Errors: []pagertree.ErrorMessage{{Message: message}}, Code: http.StatusUnprocessableEntity}
	}
	out, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return out
}

// policy is pol as the version needs it: on v4 teams must keep a member
// and an admin (TeamRoles), and the owner is every team's admin unless pol
// names admins itself.
func (a account) policy(pol sync.Policy) sync.Policy {
	if a.v4() {
		pol.TeamRoles, pol.PhonesE164 = true, true
		if pol.TeamAdmins == nil {
			pol.TeamAdmins = []string{ownerEmail}
		}
	}
	return pol
}

// newClient is a client of the version for the server at url, with the
// emulator's credentials; obs may be nil.
func (a account) newClient(t *testing.T, url string, obs pagertree.Observer, concurrency int) *pagertree.Client {
	t.Helper()
	cfg := pagertree.Config{API: a.api, URL: url, Concurrency: concurrency, Observer: obs}
	if a.v4() {
		cfg.APIKey = pagertreetest.DefaultAPIKey
	} else {
		cfg.Username, cfg.Password = pagertreetest.DefaultUsername, pagertreetest.DefaultPassword
	}
	client, err := pagertree.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// addUser preloads a user (u's ID and raw are ignored), bypassing HTTP.
func (a account) addUser(t *testing.T, u userView) userView {
	t.Helper()
	if a.v4() {
		au := pagertree.AccountUser{Roles: pagertree.AccountRoles{Admin: u.Admin},
			User: pagertree.Person{Name: u.Name, Emails: []pagertree.Email{{Email: u.Email, Primary: true}}}}
		if u.Phone != "" {
			au.User.Phones = []pagertree.Phone{{Phone: u.Phone, Primary: true}}
		}
		added, err := a.emu.AddAccountUser(au)
		if err != nil {
			t.Fatal(err)
		}
		return accountUserView(added)
	}
	added, err := a.emu.AddUser(pagertree.User{Name: u.Name, Email: u.Email, Phone: u.Phone, Roles: pagertree.Roles{Admin: u.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	return userV3View(added)
}

// addTeam preloads a team (tm's ID, ScheduleID and raw are ignored),
// bypassing HTTP. AdminIDs are ignored on v3, whose teams have none.
func (a account) addTeam(t *testing.T, tm teamView) teamView {
	t.Helper()
	if a.v4() {
		added, err := a.emu.AddTeamV4(pagertree.TeamV4{Name: tm.Name, Notes: tm.Description,
			MemberAccountUserIDs: tm.MemberIDs, AdminAccountUserIDs: tm.AdminIDs})
		if err != nil {
			t.Fatal(err)
		}
		return teamV4View(added)
	}
	added, err := a.emu.AddTeam(pagertree.Team{Name: tm.Name, Description: tm.Description, MemberUserIDs: tm.MemberIDs})
	if err != nil {
		t.Fatal(err)
	}
	return teamV3View(added)
}

// users and teams are every user and team the emulator holds, in creation
// (and listing) order.
func (a account) users() []userView {
	var out []userView
	if a.v4() {
		for _, u := range a.emu.AccountUsers() {
			out = append(out, accountUserView(u))
		}
		return out
	}
	for _, u := range a.emu.Users() {
		out = append(out, userV3View(u))
	}
	return out
}

func (a account) teams() []teamView {
	var out []teamView
	if a.v4() {
		for _, t := range a.emu.TeamsV4() {
			out = append(out, teamV4View(t))
		}
		return out
	}
	for _, t := range a.emu.Teams() {
		out = append(out, teamV3View(t))
	}
	return out
}

// user is the user whose (primary) email is email.
func (a account) user(t *testing.T, email string) userView {
	t.Helper()
	for _, u := range a.users() {
		if u.Email == email {
			return u
		}
	}
	t.Fatalf("no user %q in PagerTree", email)
	return userView{}
}

// team is the team named name.
func (a account) team(t *testing.T, name string) teamView {
	t.Helper()
	for _, tm := range a.teams() {
		if tm.Name == name {
			return tm
		}
	}
	t.Fatalf("no team %q in PagerTree", name)
	return teamView{}
}

func userV3View(u pagertree.User) userView {
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin, raw: u}
}

func accountUserView(u pagertree.AccountUser) userView {
	v := userView{ID: u.ID, Email: u.User.PrimaryEmail(), Name: u.User.Name, Admin: u.Roles.Admin, raw: u}
	if ph, ok := u.User.PrimaryPhone(); ok {
		v.Phone = ph.Phone
	}
	return v
}

func teamV3View(t pagertree.Team) teamView {
	return teamView{ID: t.ID, Name: t.Name, Description: t.Description, MemberIDs: t.MemberUserIDs, ScheduleID: t.ScheduleID, raw: t}
}

func teamV4View(t pagertree.TeamV4) teamView {
	return teamView{ID: t.ID, Name: t.Name, Description: t.Notes, MemberIDs: t.MemberAccountUserIDs,
		AdminIDs: t.AdminAccountUserIDs, ScheduleID: t.ScheduleID, raw: t}
}

// state is the account as emails and team memberships, for comparing.
type state struct {
	Users map[string]string   // email -> name|phone
	Teams map[string][]string // team name -> sorted member emails
	// Admins is team name -> sorted admin emails, on v4 only: nil on v3,
	// whose teams have no admins.
	Admins map[string][]string
}

func (a account) state() state {
	st := state{Users: map[string]string{}, Teams: map[string][]string{}}
	byID := map[string]string{}
	for _, u := range a.users() {
		byID[u.ID] = u.Email
		st.Users[u.Email] = u.Name + "|" + u.Phone
	}
	emails := func(ids []string) []string {
		out := []string{}
		for _, id := range ids {
			out = append(out, byID[id])
		}
		slices.Sort(out)
		return out
	}
	if a.v4() {
		st.Admins = map[string][]string{}
	}
	for _, t := range a.teams() {
		st.Teams[t.Name] = emails(t.MemberIDs)
		if a.v4() {
			st.Admins[t.Name] = emails(t.AdminIDs)
		}
	}
	return st
}

// withOwnerAdmins is st as this version stores it when the owner is the
// only admin of every team st lists and st.Admins does not name: on v4 the
// owner is admin of the hand-made facilities team and, as
// pagertree.team_admins, of every team ptsync makes. On v3 it is st.
func (a account) withOwnerAdmins(st state) state {
	if !a.v4() {
		return st
	}
	admins := map[string][]string{}
	for name := range st.Teams {
		admins[name] = []string{ownerEmail}
	}
	for name, emails := range st.Admins {
		admins[name] = emails
	}
	st.Admins = admins
	return st
}

// recorder sits in front of the emulator: it records every request and
// answers 422 to those fail picks, so a test can fail one change.
type recorder struct {
	next http.Handler
	acct account
	fail func(method, path string, body []byte) bool

	mu       gosync.Mutex
	requests []string // "METHOD /path body"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.requests = append(r.requests, strings.TrimSpace(req.Method+" "+req.URL.Path+" "+string(body)))
	fail := r.fail
	r.mu.Unlock()
	if fail != nil && fail(req.Method, req.URL.Path, body) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write(r.acct.errorBody("rejected by the test"))
		return
	}
	r.next.ServeHTTP(w, req)
}

// writes returns the recorded write requests, "METHOD /path" only. v3's
// login is no write; v4 has none, so every POST there counts.
func (r *recorder) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, req := range r.requests {
		method, rest, _ := strings.Cut(req, " ")
		path, _, _ := strings.Cut(rest, " ")
		if method != http.MethodGet && (r.acct.v4() || path != r.acct.loginRoute()) {
			out = append(out, method+" "+path)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// rig is one end-to-end setup: a file source, the emulator of one API
// version behind a recorder, a real client and an engine.
type rig struct {
	account
	t      *testing.T
	path   string
	rec    *recorder
	engine *sync.Engine
	reg    *prometheus.Registry // the engine's and client's metrics
	// unmanaged is the team ptsync must never touch, as preloaded: the
	// owner is its member and (v4) its admin.
	unmanaged teamView
	owner     userView // an account admin
}

// defaultPolicy syncs corp's oncall-* groups, deletes leavers and gone
// teams, protects nobody but relies on the owner being an admin. A v4 rig
// adds the team rules (account.policy).
func defaultPolicy() sync.Policy {
	return sync.Policy{
		Rules: []config.TeamRule{{
			Source: "corp", Match: "oncall-*", Name: `{{ trimPrefix "oncall-" .Name }}`, OnMissing: config.OnMissingDelete,
		}},
		Scope:          config.ScopeTeamMembers,
		DeleteUsers:    true,
		MaxDestructive: 25,
	}
}

// newAPIRig is a rig of api whose account holds the owner, an account
// admin, and the hand-made facilities team, and whose engine syncs dir
// under pol as the version needs it (account.policy).
func newAPIRig(t *testing.T, api string, dir directory, pol sync.Policy) *rig {
	t.Helper()
	acct := newAccount(api)
	rec := &recorder{next: acct.emu, acct: acct}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	r := &rig{account: acct, t: t, path: filepath.Join(t.TempDir(), "corp.yaml"), rec: rec}
	r.owner = acct.addUser(t, userView{Name: "Owner", Email: ownerEmail, Admin: true})
	r.unmanaged = acct.addTeam(t, teamView{Name: "facilities", Description: "made by hand",
		MemberIDs: []string{r.owner.ID}, AdminIDs: []string{r.owner.ID}})
	r.write(dir)
	r.reg = prometheus.NewRegistry()
	r.engine = newFileEngine(t, acct, r.path, srv.URL, acct.policy(pol), sync.NewMetrics(r.reg, "v1.2.3-test"))
	return r
}

// corpInStep is PagerTree as corp() wants it under defaultPolicy, beside
// the owner and the hand-made team every rig starts with (v3: no admins;
// see rig.inStep).
func corpInStep() state {
	return state{
		Users: map[string]string{
			"owner@example.com": "Owner|",
			"ann@example.com":   "Ann Archer|+14155550101",
			"bob@example.com":   "Bob Baker|",
			"cat@example.com":   "Cat Cole|+442079460958",
		},
		Teams: map[string][]string{
			"facilities": {"owner@example.com"},
			"payments":   {"ann@example.com", "bob@example.com"},
			"db":         {"bob@example.com", "cat@example.com"},
		},
	}
}

// inStep is corpInStep as the rig's version stores it: on v4 the owner is
// the admin of every team.
func (r *rig) inStep() state { return r.withOwnerAdmins(corpInStep()) }

// newFileEngine is the engine the rigs drive: the file source at path, the
// PagerTree of acct's version at url, and metrics (nil: none). pol is used
// as given.
func newFileEngine(t *testing.T, acct account, path, url string, pol sync.Policy, metrics *sync.Metrics) *sync.Engine {
	t.Helper()
	src, err := file.New("corp", &file.Config{Path: path}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	var obs pagertree.Observer
	if metrics != nil { // a nil *Metrics must not become a non-nil Observer
		obs = metrics
	}
	client := acct.newClient(t, url, obs, 0)
	return &sync.Engine{
		Metrics:        metrics,
		Sources:        []sources.Source{src},
		PagerTree:      ptaccount.For(acct.api, client),
		Policy:         pol,
		MinSourceUsers: 1,
		Concurrency:    4,
		Logger:         zap.NewNop(),
	}
}

func (r *rig) write(dir directory) {
	r.t.Helper()
	writeDirectory(r.t, r.path, dir)
}

// run runs one cycle and returns the report and exit code, failing the
// test on a run error.
func (r *rig) run(opts sync.RunOptions) (sync.Report, int) {
	r.t.Helper()
	rep, err := r.engine.RunOnce(context.Background(), opts)
	if err != nil {
		r.t.Fatalf("RunOnce: %v", err)
	}
	return rep, sync.ExitCode(rep, nil)
}

func (r *rig) state() state { return r.account.state() }

func (r *rig) team(name string) teamView {
	r.t.Helper()
	return r.account.team(r.t, name)
}
