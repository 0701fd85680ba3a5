package main

// End-to-end tests of ptsync on PagerTree's v4 API: the real commands
// (plan, sync, apply, validate --connect, demo, emulator) run in-process
// against a `file` source written to a temporary directory and the
// emulator in v4 mode, asserting on exit codes, output and the emulator's
// account users and teams afterwards.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// v4KeyEnv holds the API key the configs of these tests send.
const v4KeyEnv = "TEST_PT4_API_KEY"

// v4Owner is the account admin every test account starts with.
const v4Owner = "owner@example.com"

// v4Account is one emulated v4 account with its admin, and a config
// syncing the file source beside it.
type v4Account struct {
	t     *testing.T
	emu   *pagertreetest.Server
	owner pagertree.AccountUser
	dir   string // the config's directory
	cfg   string // the config file
	// keyLine is the config's API key line: api_key from v4KeyEnv.
	keyLine string
}

// newV4Account starts a v4 emulator whose account holds only its admin,
// v4Owner, and sets the API key the configs send to the right one.
func newV4Account(t *testing.T) *v4Account {
	t.Helper()
	emu := pagertreetest.NewServer(pagertreetest.Options{API: "v4"})
	t.Cleanup(emu.Close)
	t.Setenv(v4KeyEnv, pagertreetest.DefaultAPIKey)
	owner, err := emu.AddAccountUser(pagertree.AccountUser{
		Roles: pagertree.AccountRoles{Admin: true},
		User:  pagertree.Person{Name: "Olivia Owner", Emails: []pagertree.Email{{Email: v4Owner}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return &v4Account{t: t, emu: emu, owner: owner, dir: dir, cfg: filepath.Join(dir, "ptsync.yaml"),
		keyLine: "  api_key: ${" + v4KeyEnv + "}\n"}
}

// v4DefaultRules is one rule making every oncall-* group a team of the
// group's name.
const v4DefaultRules = `  - source: people
    match: "oncall-*"
    name: "{{ .Name }}"
`

// config (re)writes the config: ptExtra are more lines under pagertree:
// (indented two spaces; team_admins: [v4Owner] when empty), rules the
// items of teams: (v4DefaultRules when empty), extra top-level YAML.
func (a *v4Account) config(ptExtra, rules, extra string) {
	a.t.Helper()
	if ptExtra == "" {
		ptExtra = "  team_admins: [" + v4Owner + "]\n"
	}
	if rules == "" {
		rules = v4DefaultRules
	}
	mustWrite(a.t, a.cfg, `pagertree:
  api: v4
  url: `+a.emu.URL()+`
`+a.keyLine+ptExtra+`sources:
  - name: people
    type: file
    file: {path: people.yaml}
teams:
`+rules+`log:
  level: warn
`+extra)
}

// directory (re)writes the file source's YAML.
func (a *v4Account) directory(yaml string) {
	a.t.Helper()
	mustWrite(a.t, filepath.Join(a.dir, "people.yaml"), yaml)
}

// run runs a command with --config a.cfg after args.
func (a *v4Account) run(args ...string) (code int, stdout, stderr string) {
	a.t.Helper()
	return runCmd(a.t, append(args, "--config", a.cfg)...)
}

// mustRun runs a command and fails the test unless it exits want.
func (a *v4Account) mustRun(want int, args ...string) (stdout, stderr string) {
	a.t.Helper()
	code, stdout, stderr := a.run(args...)
	if code != want {
		a.t.Fatalf("ptsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// user is the account user with email (on any of its addresses).
func (a *v4Account) user(email string) (pagertree.AccountUser, bool) {
	for _, au := range a.emu.AccountUsers() {
		for _, e := range au.User.Emails {
			if strings.EqualFold(e.Email, email) {
				return au, true
			}
		}
	}
	return pagertree.AccountUser{}, false
}

// mustUser is user, failing the test when there is none.
func (a *v4Account) mustUser(email string) pagertree.AccountUser {
	a.t.Helper()
	au, ok := a.user(email)
	if !ok {
		a.t.Fatalf("no account user has the email %s; account users: %s", email, a.userEmails())
	}
	return au
}

// userEmails lists the account users' primary emails, sorted.
func (a *v4Account) userEmails() []string {
	var out []string
	for _, au := range a.emu.AccountUsers() {
		out = append(out, au.User.PrimaryEmail())
	}
	slices.Sort(out)
	return out
}

// team is the team named name.
func (a *v4Account) team(name string) (pagertree.TeamV4, bool) {
	for _, t := range a.emu.TeamsV4() {
		if t.Name == name {
			return t, true
		}
	}
	return pagertree.TeamV4{}, false
}

// mustTeam is team, failing the test when there is none.
func (a *v4Account) mustTeam(name string) pagertree.TeamV4 {
	a.t.Helper()
	t, ok := a.team(name)
	if !ok {
		var names []string
		for _, t := range a.emu.TeamsV4() {
			names = append(names, t.Name)
		}
		a.t.Fatalf("no team named %q; teams: %q", name, names)
	}
	return t
}

// emails are the primary emails of account user ids, sorted; an id that is
// no account user shows as "?id".
func (a *v4Account) emails(ids []string) []string {
	byID := map[string]string{}
	for _, au := range a.emu.AccountUsers() {
		byID[au.ID] = au.User.PrimaryEmail()
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if e, ok := byID[id]; ok {
			out = append(out, e)
		} else {
			out = append(out, "?"+id)
		}
	}
	slices.Sort(out)
	return out
}

// checkRoles fails the test unless team name has exactly these members
// and admins (emails, any order).
func (a *v4Account) checkRoles(name string, members, admins []string) pagertree.TeamV4 {
	a.t.Helper()
	t := a.mustTeam(name)
	members, admins = slices.Sorted(slices.Values(members)), slices.Sorted(slices.Values(admins))
	if got := a.emails(t.MemberAccountUserIDs); !slices.Equal(got, members) {
		a.t.Errorf("team %s: members %q, want %q", name, got, members)
	}
	if got := a.emails(t.AdminAccountUserIDs); !slices.Equal(got, admins) {
		a.t.Errorf("team %s: admins %q, want %q", name, got, admins)
	}
	return t
}

// writes are the write requests the emulator received since its stats
// were reset, by route.
func (a *v4Account) writes() map[string]int {
	out := map[string]int{}
	for route, n := range a.emu.Stats().Requests {
		if !strings.HasPrefix(route, "GET ") {
			out[route] = n
		}
	}
	return out
}

// setTeamAdmins makes ids the admins of team id by hand, as a person would
// in PagerTree (a PUT through the API, as the web app does).
func (a *v4Account) setTeamAdmins(teamID string, ids ...string) {
	a.t.Helper()
	body, err := json.Marshal(map[string][]string{"admin_account_user_ids": ids})
	if err != nil {
		a.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, a.emu.URL()+pagertree.APIPrefix+"/teams/"+teamID, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pagertreetest.DefaultAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		a.t.Fatalf("setting the admins of team %s by hand: %d %s", teamID, resp.StatusCode, msg)
	}
}

// marker is the ptsync marker line ending a managed team's notes.
func v4Marker(group string, admins ...string) string {
	m := "[managed by ptsync: source=people group=" + group
	if len(admins) > 0 {
		m += " admins=" + strings.Join(admins, ",")
	}
	return m + "]"
}

// TestV4FirstSync: a first sync into an account that has only its admin
// creates the directory's on-call people (name, primary email, E.164
// phone) and a team per group with its members, pagertree.team_admins as
// admins, the marker ending notes, and a schedule and escalation policy.
// The admin is not touched, and the plan before it writes nothing.
func TestV4FirstSync(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "users:\n  phone_region: US\n")
	a.directory(`users:
  - {id: u-ada, email: Ada@Example.com, name: Ada Lovelace, phone: "+1 415 555 0100"}
  - {id: u-bob, email: bob@example.com, name: Bob Brown, phone: "(415) 555-0101"}
  - {id: u-cat, email: cat@example.com, name: Cat Chen, phone: "+44 20 7946 0958"}
  - {id: u-dan, email: dan@example.com, name: Dan Diaz}
  - {id: u-eve, email: eve@example.com, name: Eve Elsewhere, phone: "+1 415 555 0104"}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-bob]}
  - {id: g-web, name: oncall-web, members: [u-bob, u-cat, u-dan]}
  - {id: g-eng, name: engineering, members: [u-ada, u-eve]}
`)

	stdout, _ := a.mustRun(exitChanges, "plan", "--detailed-exitcode")
	if want := "Plan: 6 to create, 0 to update, 0 to delete.\n"; !strings.HasSuffix(stdout, want) {
		t.Errorf("first plan does not end with %q:\n%s", want, stdout)
	}
	for _, want := range []string{
		"+ user ada@example.com (Ada Lovelace, +14155550100)",
		"+ team oncall-db: members +ada@example.com +bob@example.com; admins +owner@example.com",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first plan lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _ = a.mustRun(exitOK, "sync", "--dry-run")
	if want := "Dry run: nothing applied (6 changes would be, 0 withheld).\n"; !strings.HasSuffix(stdout, want) {
		t.Errorf("sync --dry-run output does not end with %q:\n%s", want, stdout)
	}
	if n := a.emu.Stats().WriteAttempts; n != 0 {
		t.Fatalf("plan and sync --dry-run sent %d write requests", n)
	}

	stdout, _ = a.mustRun(exitOK, "sync")
	if want := "Applied 6 of 6 changes.\n"; !strings.HasSuffix(stdout, want) {
		t.Errorf("sync output does not end with %q:\n%s", want, stdout)
	}

	if got, want := a.userEmails(), []string{"ada@example.com", "bob@example.com", "cat@example.com", "dan@example.com", v4Owner}; !reflect.DeepEqual(got, want) {
		t.Fatalf("account users %q, want %q (eve is in no on-call group)", got, want)
	}
	for _, want := range []struct{ email, name, phone string }{
		{"ada@example.com", "Ada Lovelace", "+14155550100"},
		{"bob@example.com", "Bob Brown", "+14155550101"},
		{"cat@example.com", "Cat Chen", "+442079460958"},
		{"dan@example.com", "Dan Diaz", ""},
	} {
		au := a.mustUser(want.email)
		if au.User.Name != want.name || au.User.PrimaryEmail() != want.email || len(au.User.Emails) != 1 {
			t.Errorf("%s: name %q, emails %+v; want name %q and the one primary email %s", want.email, au.User.Name, au.User.Emails, want.name, want.email)
		}
		var phones []string
		for _, ph := range au.User.Phones {
			phones = append(phones, ph.Phone)
		}
		if want.phone == "" && len(phones) != 0 || want.phone != "" && !slices.Equal(phones, []string{want.phone}) {
			t.Errorf("%s: phones %q, want %q", want.email, phones, want.phone)
		}
		if au.Roles.Admin {
			t.Errorf("%s was made an account admin", want.email)
		}
	}
	if owner := a.mustUser(v4Owner); !reflect.DeepEqual(owner, a.owner) {
		t.Errorf("the account admin changed:\n got %+v\nwant %+v", owner, a.owner)
	}

	if n := len(a.emu.TeamsV4()); n != 2 {
		t.Errorf("%d teams, want 2", n)
	}
	for _, want := range []struct {
		name, group string
		members     []string
	}{
		{"oncall-db", "g-db", []string{"ada@example.com", "bob@example.com"}},
		{"oncall-web", "g-web", []string{"bob@example.com", "cat@example.com", "dan@example.com"}},
	} {
		team := a.checkRoles(want.name, want.members, []string{v4Owner})
		if m := v4Marker(want.group, v4Owner); team.Notes != m {
			t.Errorf("team %s: notes %q, want the marker %q", want.name, team.Notes, m)
		}
		if team.ScheduleID == "" || team.EscalationPolicyID == "" {
			t.Errorf("team %s: schedule_id %q, escalation_policy_id %q; want both set", want.name, team.ScheduleID, team.EscalationPolicyID)
		}
	}
}

// TestV4SecondRunIsIdempotent: right after a sync, plan --detailed-exitcode
// exits 0 with nothing to do, and another sync sends no write request.
func TestV4SecondRunIsIdempotent(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "users:\n  delete: true\n")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada, phone: "+1 415 555 0100"}
  - {id: u-bob, email: bob@example.com, name: Bob, phone: "+44 20 7946 0958"}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-bob]}
  - {id: g-web, name: oncall-web, members: [u-bob]}
`)
	a.mustRun(exitOK, "sync")
	// A change since, so the second sync is not the first's twin: a hire,
	// a leaver and a rename.
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada, phone: "+1 415 555 0100"}
  - {id: u-cat, email: cat@example.com, name: Cat}
groups:
  - {id: g-db, name: oncall-databases, members: [u-ada, u-cat]}
  - {id: g-web, name: oncall-web, members: [u-ada]}
`)
	a.mustRun(exitOK, "sync")

	stdout, _ := a.mustRun(exitOK, "plan", "--detailed-exitcode")
	if stdout != "No changes. PagerTree is in sync.\n" {
		t.Errorf("plan after sync = %q", stdout)
	}
	a.emu.ResetStats()
	stdout, _ = a.mustRun(exitOK, "sync")
	if st := a.emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("a sync right after a sync sent %d write requests: %v", st.WriteAttempts, a.writes())
	}
	if !strings.HasSuffix(stdout, "Applied 0 of 0 changes.\n") {
		t.Errorf("second sync output:\n%s", stdout)
	}
}

// TestV4ApplySavedPlan: plan --out and apply work on v4, and apply
// refuses a plan made before the account changed.
func TestV4ApplySavedPlan(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	a.mustRun(exitOK, "plan", "--out", planFile)
	if _, err := a.emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{Name: "Walk In", Emails: []pagertree.Email{{Email: "walkin@example.com"}}}}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := a.run("apply", planFile)
	if code != exitError || stdout != "" || !strings.Contains(lastLine(stderr), "PagerTree changed since the plan was made") {
		t.Fatalf("stale plan: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if n := a.emu.Stats().WriteAttempts; n != 0 {
		t.Fatalf("a refused plan sent %d write requests", n)
	}

	a.mustRun(exitOK, "plan", "--out", planFile)
	stdout, _ = a.mustRun(exitOK, "apply", planFile)
	if !strings.HasSuffix(stdout, "Applied 2 of 2 changes.\n") {
		t.Errorf("apply output:\n%s", stdout)
	}
	team := a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{v4Owner})
	if team.Notes != v4Marker("g-db", v4Owner) {
		t.Errorf("notes %q", team.Notes)
	}
	a.mustRun(exitOK, "plan", "--detailed-exitcode")
}

// TestV4Adopt: a hand-made team of the wanted name is a conflict left
// alone (the run still succeeds: SPEC gives conflicts no exit code of
// their own) until the rule says adopt: true; then it is taken over in
// place, its notes kept with the marker appended, its hand-made admin
// kept beside team_admins, and its members made the group's.
func TestV4Adopt(t *testing.T) {
	a := newV4Account(t)
	lead, err := a.emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{Name: "Lee Lead", Emails: []pagertree.Email{{Email: "lead@example.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	const notes = "Database pager rota.\nCall Lee first."
	hand, err := a.emu.AddTeamV4(pagertree.TeamV4{Name: "oncall-db", Notes: notes, MemberAccountUserIDs: []string{lead.ID}, AdminAccountUserIDs: []string{lead.ID}})
	if err != nil {
		t.Fatal(err)
	}
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	a.config("", "", "")

	stdout, _ := a.mustRun(exitOK, "sync")
	want := `! team oncall-db: team "oncall-db" exists and is not managed by ptsync; set adopt: true on teams[0] to take it over`
	if !strings.Contains(stdout, want) {
		t.Errorf("sync without adopt does not report the conflict %q:\n%s", want, stdout)
	}
	if got := a.mustTeam("oncall-db"); !reflect.DeepEqual(got, hand) {
		t.Errorf("the hand-made team changed without adopt:\n got %+v\nwant %+v", got, hand)
	}
	if n := len(a.emu.TeamsV4()); n != 1 {
		t.Errorf("%d teams, want the hand-made one only", n)
	}
	stdout, _ = a.mustRun(exitOK, "plan", "--detailed-exitcode")
	if !strings.HasSuffix(stdout, "No changes; 1 conflicts left alone.\n") {
		t.Errorf("plan with only the conflict:\n%s", stdout)
	}

	a.config("", v4DefaultRules+"    adopt: true\n", "")
	stdout, _ = a.mustRun(exitOK, "sync")
	if !strings.Contains(stdout, "adopted by teams[0] (adopt: true)") {
		t.Errorf("sync with adopt does not say it adopts:\n%s", stdout)
	}
	if n := len(a.emu.TeamsV4()); n != 1 {
		t.Fatalf("%d teams after adopt, want 1 (taken over, not created)", n)
	}
	got := a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{"lead@example.com", v4Owner})
	if got.ID != hand.ID || got.ScheduleID != hand.ScheduleID || got.EscalationPolicyID != hand.EscalationPolicyID {
		t.Errorf("adopted team: id %s schedule %s policy %s, want the hand-made team's %s %s %s",
			got.ID, got.ScheduleID, got.EscalationPolicyID, hand.ID, hand.ScheduleID, hand.EscalationPolicyID)
	}
	if want := notes + "\n" + v4Marker("g-db", v4Owner); got.Notes != want {
		t.Errorf("adopted team's notes %q, want %q", got.Notes, want)
	}
	a.mustRun(exitOK, "plan", "--detailed-exitcode")

	// The hand-made admin was not recorded as ptsync's, so dropping the
	// rule's admins to someone else never removes them.
	a.config("  team_admins: [ada@example.com]\n", v4DefaultRules+"    adopt: true\n", "")
	a.mustRun(exitOK, "sync")
	a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{"ada@example.com", "lead@example.com"})
}

// TestV4ProtectAndAccountAdmins: a users.protect email and an account
// admin are never updated, and never deleted when they leave the
// directory with users.delete: true; a plain leaver in the same run is.
func TestV4ProtectAndAccountAdmins(t *testing.T) {
	a := newV4Account(t)
	boss, err := a.emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{
		Name: "Bo Boss", Emails: []pagertree.Email{{Email: "boss@example.com"}}, Phones: []pagertree.Phone{{Phone: "+14155550199"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A second account admin, never on any team, absent from the directory.
	admin2, err := a.emu.AddAccountUser(pagertree.AccountUser{Roles: pagertree.AccountRoles{Admin: true}, User: pagertree.Person{
		Name: "Ann Admin", Emails: []pagertree.Email{{Email: "ann.admin@example.com"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	leaver, err := a.emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{Name: "Lou Leaver", Emails: []pagertree.Email{{Email: "lou@example.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	a.config("", "", "users:\n  delete: true\n  protect: [\"boss@*\"]\n")
	// The directory names the protected user and the admin with other
	// names and phones: neither is updated.
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-boss, email: boss@example.com, name: Directory Boss, phone: "+1 415 555 0100"}
  - {id: u-own, email: owner@example.com, name: Directory Owner, phone: "+1 415 555 0101"}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-boss, u-own]}
`)
	stdout, _ := a.mustRun(exitOK, "sync")
	if _, ok := a.user("lou@example.com"); ok {
		t.Errorf("the plain leaver lou@example.com was not deleted:\n%s", stdout)
	}
	for _, au := range []pagertree.AccountUser{boss, admin2, a.owner} {
		if got := a.mustUser(au.User.PrimaryEmail()); !reflect.DeepEqual(got, au) {
			t.Errorf("%s changed:\n got %+v\nwant %+v", au.User.PrimaryEmail(), got, au)
		}
	}
	a.checkRoles("oncall-db", []string{"ada@example.com", "boss@example.com", v4Owner}, []string{v4Owner})
	if st := a.emu.Stats(); st.Requests["DELETE /api/v4/account_users/:id"] != 1 || st.Requests["PUT /api/v4/account_users/:id"] != 0 {
		t.Errorf("account user writes %v, want the one delete of %s and no update", a.writes(), leaver.ID)
	}

	// Both leave the directory: they leave the team, and stay in the account.
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	stdout, _ = a.mustRun(exitOK, "sync")
	if strings.Contains(stdout, "- user") {
		t.Errorf("the sync deletes a user:\n%s", stdout)
	}
	for _, au := range []pagertree.AccountUser{boss, admin2, a.owner} {
		if got := a.mustUser(au.User.PrimaryEmail()); !reflect.DeepEqual(got, au) {
			t.Errorf("%s changed:\n got %+v\nwant %+v", au.User.PrimaryEmail(), got, au)
		}
	}
	a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{v4Owner})
	a.mustRun(exitOK, "plan", "--detailed-exitcode")
}

// TestV4Admins: a rule's admins replace pagertree.team_admins; an admin
// made by hand stays; an admin ptsync added is removed once no longer
// configured; an admin who is no account user makes that team a conflict,
// left untouched, while the rest of the plan applies.
//
// admins_from_owners is not covered: the file source reports no group
// owners (sources/file knows no owner key).
func TestV4Admins(t *testing.T) {
	a := newV4Account(t)
	lead, err := a.emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{Name: "Lee Lead", Emails: []pagertree.Email{{Email: "lead@example.com"}}}})
	if err != nil {
		t.Fatal(err)
	}
	rules := func(dbAdmins string) string {
		return `  - source: people
    match: oncall-db
    admins: [` + dbAdmins + `]
` + v4DefaultRules
	}
	a.config("", rules("lead@example.com"), "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-bob, email: bob@example.com, name: Bob}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
  - {id: g-web, name: oncall-web, members: [u-bob]}
`)
	a.mustRun(exitOK, "sync")
	db := a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{"lead@example.com"})
	a.checkRoles("oncall-web", []string{"bob@example.com"}, []string{v4Owner})
	if db.Notes != v4Marker("g-db", "lead@example.com") {
		t.Errorf("oncall-db notes %q", db.Notes)
	}
	if au := a.mustUser("lead@example.com"); !reflect.DeepEqual(au, lead) {
		t.Errorf("the configured admin's account user changed: %+v", au)
	}

	// Ada makes herself admin by hand; the rule then names the owner too.
	ada := a.mustUser("ada@example.com")
	a.setTeamAdmins(db.ID, lead.ID, ada.ID)
	a.config("", rules("lead@example.com, "+v4Owner), "")
	a.mustRun(exitOK, "sync")
	db = a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{"ada@example.com", "lead@example.com", v4Owner})
	if want := v4Marker("g-db", "lead@example.com", v4Owner); db.Notes != want {
		t.Errorf("oncall-db notes %q, want %q (ada is admin by hand, not ptsync's)", db.Notes, want)
	}

	// The lead is dropped from the config: ptsync added them, so removes
	// them; ada, admin by hand, stays.
	a.config("", rules(v4Owner), "")
	stdout, _ := a.mustRun(exitOK, "sync")
	db = a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{"ada@example.com", v4Owner})
	if want := v4Marker("g-db", v4Owner); db.Notes != want {
		t.Errorf("oncall-db notes %q, want %q", db.Notes, want)
	}
	if _, ok := a.user("lead@example.com"); !ok {
		t.Errorf("the admin removed from the config was deleted from the account:\n%s", stdout)
	}
	a.mustRun(exitOK, "plan", "--detailed-exitcode")

	// An admin who is no account user: oncall-web is a conflict and stays
	// as it is (cat is not added), while oncall-db takes dan.
	web := a.mustTeam("oncall-web")
	a.config("  team_admins: ["+v4Owner+", ghost@example.com]\n", rules(v4Owner), "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-bob, email: bob@example.com, name: Bob}
  - {id: u-cat, email: cat@example.com, name: Cat}
  - {id: u-dan, email: dan@example.com, name: Dan}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-dan]}
  - {id: g-web, name: oncall-web, members: [u-bob, u-cat]}
`)
	stdout, _ = a.mustRun(exitOK, "sync")
	want := "! team oncall-web: admin ghost@example.com is not a PagerTree user and no source wants one"
	if !strings.Contains(stdout, want) {
		t.Errorf("sync does not report %q:\n%s", want, stdout)
	}
	if got := a.mustTeam("oncall-web"); !reflect.DeepEqual(got, web) {
		t.Errorf("the conflicting team was written:\n got %+v\nwant %+v", got, web)
	}
	a.checkRoles("oncall-db", []string{"ada@example.com", "dan@example.com"}, []string{"ada@example.com", v4Owner})
	if _, ok := a.user("ghost@example.com"); ok {
		t.Error("the unknown admin was created")
	}
}

// TestV4LeaverDelete: with users.delete: true a leaver is deleted (gone
// from the account and its teams); a leaver who is the only admin of a
// team is withheld (exit 3) and stays, even with --allow-destructive,
// since PagerTree refuses a team without an admin.
func TestV4LeaverDelete(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "users:\n  delete: true\n")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-bob, email: bob@example.com, name: Bob}
  - {id: u-cat, email: cat@example.com, name: Cat}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-bob, u-cat]}
`)
	a.mustRun(exitOK, "sync")
	cat, bob := a.mustUser("cat@example.com"), a.mustUser("bob@example.com")
	// A team made by hand whose only admin is cat.
	facilities, err := a.emu.AddTeamV4(pagertree.TeamV4{Name: "Facilities", Notes: "made by hand",
		MemberAccountUserIDs: []string{a.owner.ID, cat.ID}, AdminAccountUserIDs: []string{cat.ID}})
	if err != nil {
		t.Fatal(err)
	}

	// Bob and cat leave.
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	stdout, _ := a.mustRun(exitWithheld, "sync")
	if _, ok := a.user("bob@example.com"); ok {
		t.Errorf("the leaver bob@example.com was not deleted:\n%s", stdout)
	}
	for _, team := range a.emu.TeamsV4() {
		if slices.Contains(team.MemberAccountUserIDs, bob.ID) || slices.Contains(team.AdminAccountUserIDs, bob.ID) {
			t.Errorf("team %s still names the deleted bob: %+v", team.Name, team)
		}
	}
	if got := a.mustUser("cat@example.com"); !reflect.DeepEqual(got, cat) {
		t.Errorf("cat, the only admin of Facilities, changed or went: %+v", got)
	}
	want := `- user cat@example.com  # deleting them would leave team "Facilities" with no admin, which PagerTree refuses: make someone else admin first`
	if !strings.Contains(stdout, "Withheld by the safety limits") || !strings.Contains(stdout, want) {
		t.Errorf("sync output does not withhold cat's delete as %q:\n%s", want, stdout)
	}
	if got := a.mustTeam("Facilities"); !reflect.DeepEqual(got, facilities) {
		t.Errorf("the hand-made team changed:\n got %+v\nwant %+v", got, facilities)
	}
	a.checkRoles("oncall-db", []string{"ada@example.com"}, []string{v4Owner})

	code, stdout, _ := a.run("sync", "--allow-destructive")
	if code != exitWithheld || !strings.Contains(stdout, want) {
		t.Errorf("sync --allow-destructive: exit %d, want %d still withholding %q:\n%s", code, exitWithheld, want, stdout)
	}
	if _, ok := a.user("cat@example.com"); !ok {
		t.Error("--allow-destructive deleted the only admin of a team")
	}
}

// TestV4RenameInPlace: a group renamed in the directory renames its team,
// keeping the team's id, schedule and escalation policy.
func TestV4RenameInPlace(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	a.mustRun(exitOK, "sync")
	before := a.mustTeam("oncall-db")

	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-databases, members: [u-ada]}
`)
	stdout, _ := a.mustRun(exitOK, "sync")
	if want := `~ team oncall-databases: name "oncall-db" -> "oncall-databases"`; !strings.Contains(stdout, want) {
		t.Errorf("sync output lacks %q:\n%s", want, stdout)
	}
	teams := a.emu.TeamsV4()
	if len(teams) != 1 {
		t.Fatalf("%d teams after the rename, want 1: %+v", len(teams), teams)
	}
	after := teams[0]
	if after.Name != "oncall-databases" || after.ID != before.ID || after.ScheduleID != before.ScheduleID ||
		after.EscalationPolicyID != before.EscalationPolicyID || after.Notes != before.Notes {
		t.Errorf("renamed team:\n got %+v\nwant %+v renamed oncall-databases", after, before)
	}
	a.checkRoles("oncall-databases", []string{"ada@example.com"}, []string{v4Owner})
	if st := a.emu.Stats(); st.Requests["POST /api/v4/teams"] != 1 || st.Requests["DELETE /api/v4/teams/:id"] != 0 {
		t.Errorf("the rename created or deleted a team: %v", a.writes())
	}
}

// v4EmptiedGroup syncs a group of two into a team, then empties the group
// and adds a new group with no member, and returns the account and the
// team as the first sync left it.
func v4EmptiedGroup(t *testing.T) (*v4Account, pagertree.TeamV4) {
	t.Helper()
	a := newV4Account(t)
	a.config("", "", "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-bob, email: bob@example.com, name: Bob}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-bob]}
`)
	a.mustRun(exitOK, "sync")
	before := a.mustTeam("oncall-db")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-bob, email: bob@example.com, name: Bob}
groups:
  - {id: g-db, name: oncall-db, members: []}
  - {id: g-new, name: oncall-new, members: []}
`)
	a.emu.ResetStats()
	return a, before
}

// TestV4EmptyGroup: a group gone empty does not empty its team (its
// members stay), and a new group with no member is not created: "an empty
// group cannot be a v4 team".
func TestV4EmptyGroup(t *testing.T) {
	a, before := v4EmptiedGroup(t)
	code, stdout, stderr := a.run("sync")
	// SPEC leaves the code open: 3 if the emptying is reported as withheld
	// (as on v3), 0 if as a conflict (as on_missing: empty is on v4).
	if code != exitWithheld && code != exitOK {
		t.Errorf("sync: exit %d, want %d (the emptying withheld) or 0 (a conflict); stderr %q", code, exitWithheld, stderr)
	}
	want := `! team oncall-new: group "oncall-new" of source "people" has no member ptsync can add, and an empty group cannot be a v4 team`
	if !strings.Contains(stdout, want) {
		t.Errorf("sync output lacks %q:\n%s", want, stdout)
	}
	if _, ok := a.team("oncall-new"); ok {
		t.Error("a team was created for the empty group")
	}
	if got := a.mustTeam("oncall-db"); !reflect.DeepEqual(got, before) {
		t.Errorf("the team of the group gone empty changed:\n got %+v\nwant %+v", got, before)
	}
	if st := a.emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("sync sent writes: %v", a.writes())
	}
}

// TestV4EmptyGroupAllowDestructive: --allow-destructive does not empty a
// v4 team either. PagerTree refuses a team with no member, so the write
// must not be tried: it fails the run (exit 1), and every run after it,
// for a change that can never apply. (on_missing: empty is a conflict on
// v4 for the same reason.)
func TestV4EmptyGroupAllowDestructive(t *testing.T) {
	a, before := v4EmptiedGroup(t)
	code, stdout, stderr := a.run("sync", "--allow-destructive")
	if code == exitError {
		t.Errorf("sync --allow-destructive: exit 1:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if got := a.mustTeam("oncall-db"); !reflect.DeepEqual(got, before) {
		t.Errorf("--allow-destructive changed the team of the group gone empty:\n got %+v\nwant %+v", got, before)
	}
	if st := a.emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("sync --allow-destructive tried writes PagerTree refuses: %v", a.writes())
	}
	if _, ok := a.team("oncall-new"); ok {
		t.Error("a team was created for the empty group")
	}
}

// TestV4WrongAPIKey: with a key PagerTree refuses, plan and validate
// --connect fail with exit 1 and one error line that names the 401 and
// never the key; nothing is written.
func TestV4WrongAPIKey(t *testing.T) {
	a := newV4Account(t)
	a.config("", "", "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada]}
`)
	const wrongKey = "pt4_wrong_Secret_0xC0FFEE"
	t.Setenv(v4KeyEnv, wrongKey)

	for _, args := range [][]string{{"plan"}, {"plan", "--detailed-exitcode"}, {"sync"}} {
		code, stdout, stderr := a.run(args...)
		if code != exitError || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want exit 1 and no output", args, code, stdout)
		}
		// plan logs nothing at level warn; sync also logs its failed run
		// (a JSON log line) before the error line.
		var errLines []string
		for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
			if !strings.HasPrefix(line, "{") {
				errLines = append(errLines, line)
			}
		}
		if len(errLines) != 1 || errLines[0] != lastLine(stderr) || !strings.HasPrefix(errLines[0], "ptsync "+args[0]+": ") || !strings.Contains(errLines[0], "401") ||
			!strings.Contains(errLines[0], "check pagertree.api_key") {
			t.Errorf("%s: stderr %q, want one error line \"ptsync %s: ...\" naming the 401, last", args, stderr, args[0])
		}
		if strings.Contains(stderr, wrongKey) || strings.Contains(stdout, wrongKey) {
			t.Errorf("%s: the key leaked: %q", args, stderr)
		}
	}

	code, stdout, stderr := a.run("validate", "--connect")
	if code != exitError {
		t.Errorf("validate --connect: exit %d, want 1; stderr %q", code, stderr)
	}
	if want := a.cfg + ": valid (1 sources, 1 team rules)\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("validate --connect stdout %q, want it to start with %q", stdout, want)
	}
	if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "FAIL pagertree "+a.emu.URL()+": ") || !strings.Contains(lines[0], "401") || !strings.Contains(lines[0], "check pagertree.api_key") {
		t.Errorf("validate --connect stderr %q, want one FAIL pagertree line naming the 401", stderr)
	}
	if strings.Contains(stderr+stdout, wrongKey) {
		t.Errorf("validate --connect leaked the key: %q", stderr)
	}
	if st := a.emu.Stats(); st.WriteAttempts != 0 || st.Status[http.StatusUnauthorized] == 0 {
		t.Errorf("write attempts %d (want 0), 401s %d (want some)", st.WriteAttempts, st.Status[http.StatusUnauthorized])
	}
	if got := a.userEmails(); !slices.Equal(got, []string{v4Owner}) || len(a.emu.TeamsV4()) != 0 {
		t.Errorf("the account changed: users %q, %d teams", got, len(a.emu.TeamsV4()))
	}

	// The right key, from api_key_file, connects.
	keyFile := filepath.Join(a.dir, "pagertree.key")
	mustWrite(t, keyFile, pagertreetest.DefaultAPIKey+"\n")
	a.keyLine = "  api_key_file: pagertree.key\n"
	a.config("", "", "")
	stdout, _ = a.mustRun(exitOK, "validate", "--connect")
	if want := "ok   pagertree " + a.emu.URL() + ": logged in\n"; !strings.Contains(stdout, want) {
		t.Errorf("validate --connect with the right key: stdout %q lacks %q", stdout, want)
	}
}

// TestV4Invited: a person with a PagerTree login elsewhere is invited by
// the create; the next plan lists them as invited, and they are never
// created again.
func TestV4Invited(t *testing.T) {
	a := newV4Account(t)
	a.emu.AddExistingLogin("Ivy@Example.com")
	a.config("", "", "")
	a.directory(`users:
  - {id: u-ada, email: ada@example.com, name: Ada}
  - {id: u-ivy, email: ivy@example.com, name: Ivy Invited}
groups:
  - {id: g-db, name: oncall-db, members: [u-ada, u-ivy]}
`)
	a.mustRun(exitOK, "sync")
	ivy := a.mustUser("ivy@example.com")
	if !ivy.Invited {
		t.Fatalf("ivy's account user is not invited: %+v", ivy)
	}
	a.checkRoles("oncall-db", []string{"ada@example.com", "ivy@example.com"}, []string{v4Owner})
	if n := a.emu.Stats().Requests["POST /api/v4/account_users"]; n != 2 {
		t.Errorf("%d account user creates, want 2", n)
	}

	a.emu.ResetStats()
	stdout, _ := a.mustRun(exitOK, "plan", "--detailed-exitcode")
	want := "Invited, not accepted yet (1; they exist and are not created again): ivy@example.com\n"
	if !strings.Contains(stdout, want) || !strings.HasSuffix(stdout, "No changes. PagerTree is in sync.\n") || strings.Contains(stdout, "+ user") {
		t.Errorf("plan after the invite: want %q and no change:\n%s", want, stdout)
	}
	stdout, _ = a.mustRun(exitOK, "plan", "--output", "json")
	var doc struct {
		Invited []string `json:"invited"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || !slices.Equal(doc.Invited, []string{"ivy@example.com"}) {
		t.Errorf("JSON plan invited = %q (%v)", doc.Invited, err)
	}
	a.mustRun(exitOK, "sync")
	a.mustRun(exitOK, "sync")
	if st := a.emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("syncs after the invite sent writes: %v", a.writes())
	}
	n := 0
	for _, au := range a.emu.AccountUsers() {
		if strings.EqualFold(au.User.PrimaryEmail(), "ivy@example.com") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d account users for ivy@example.com, want 1", n)
	}
}

// TestV4DemoRunsToCompletion: ptsync demo --api v4 tells its whole story.
func TestV4DemoRunsToCompletion(t *testing.T) {
	code, stdout, stderr := runCmd(t, "demo", "--api", "v4")
	if code != exitOK {
		t.Fatalf("demo --api v4: exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("demo wrote to stderr: %q", stderr)
	}
	want := []string{
		"A PagerTree API emulator (API v4) runs in this process at http://127.0.0.1:",
		"1. Plan: what a first sync would do (nothing is written)",
		"Plan: 25 to create, 0 to update, 0 to delete.",
		"2. Sync: apply that plan",
		"Applied 25 of 25 changes.",
		"  Facilities  made by hand, left alone  Olivia",
		`~ team Databases: name "Db" -> "Databases"`,
		"- user chen.wei@acme.example  # absent from every source",
		"Plan: 1 to create, 3 to update, 1 to delete.",
		"Applied 5 of 5 changes.",
		"6. Plan again: nothing left to do",
		"No changes. PagerTree is in sync.",
		"(PagerTree requests: 2, of which writes: 0)",
	}
	rest := stdout
	for _, line := range want {
		i := strings.Index(rest, "\n"+line)
		if i < 0 {
			t.Fatalf("demo output lacks %q after the lines before it; output:\n%s", line, stdout)
		}
		rest = rest[i+len(line):]
	}

	code, _, stderr = runCmd(t, "demo", "--api", "v5")
	if code != exitError || stderr != "ptsync demo: --api \"v5\": want v3 or v4\n" {
		t.Errorf("demo --api v5: exit %d, stderr %q", code, stderr)
	}
}

// TestV4EmulatorCommand: ptsync emulator --api v4 serves v4 with the
// default key, and --api takes nothing but v3 or v4.
func TestV4EmulatorCommand(t *testing.T) {
	code, stdout, stderr := runCmd(t, "emulator", "--listen", "127.0.0.1:0", "--api", "v5")
	if code != exitError || stdout != "" || stderr != "ptsync emulator: --api \"v5\": want v3 or v4\n" {
		t.Errorf("--api v5: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "--listen", "127.0.0.1:0", "--api", "v4"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the banner: %v", err)
	}
	m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+) \(API v4, key ` + pagertreetest.DefaultAPIKey + `\)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("banner %q", line)
	}
	go io.Copy(io.Discard, pr)
	get := func(key string) int {
		req, err := http.NewRequest(http.MethodGet, m[1]+pagertree.APIPrefix+"/account_users", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(pagertreetest.DefaultAPIKey); got != http.StatusOK {
		t.Errorf("GET account_users with the default key: %d", got)
	}
	if got := get("nope"); got != http.StatusUnauthorized {
		t.Errorf("GET account_users with another key: %d", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("emulator exited %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not stop after its context was cancelled")
	}
}
