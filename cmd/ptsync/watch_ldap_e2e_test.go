package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// TestWatchModeFollowsARandomStreamOfEdits is issue 13's proof: a random
// stream of directory edits (members joining and leaving groups, renames,
// new phones, people disabled and enabled again, hires, leavers, new
// groups, renamed groups) applied to slapd with ldapmodify while `ptsync
// run` follows it in watch mode (RFC 4533 sync against the syncprov
// overlay, with a session log) leaves PagerTree, once the stream stops and
// the daemon has gone quiet, exactly as one full sync from scratch of the
// final directory into an account with the same starting fixture does: the
// same users (email, name, phone, admin role) and teams (name, marker,
// members, admins). The schedule is a day away, so only watch mode can
// bring the edits.
//
// Each rapid check is independent: the directory is reset to a known base
// and a fresh emulator (v3 or v4, drawn) and a fresh daemon (no state.dir,
// so its feed starts without a cookie) are made for it. Keeping one daemon
// across checks would make each check depend on the ones before, which
// rapid can neither replay nor shrink.
//
// The oracle is exact only for streams whose outcome does not depend on
// which intermediate states the daemon happened to sync, so the stream keeps
// to edits whose outcome is path-independent by ptsync's design:
//   - a person who is in an on-call group stays in one until they leave
//     (are deleted): users.delete removes people absent from the directory
//     but keeps those still in it, unchanged, once no team wants them, so
//     someone watch mode created (or renamed) and who then left every team
//     stays in PagerTree while a sync from scratch never creates them;
//   - phones and names are changed, never cleared: an empty directory value
//     never clears PagerTree's;
//   - every on-call group keeps a member PagerTree can have (enabled, with
//     a mail): emptying a team is withheld, by any sync;
//   - the fixture holds no PagerTree user the directory has but no team
//     wants (the same keep rule); safety.max_destructive is raised so that
//     the one full sync is not withheld where several smaller ones were not.
//
// The daemon is quiescent when a sync run started after the last edit was
// committed (so it read the directory after it), every cycle it started
// has finished, and neither a change nor a cycle has come for 3 × debounce;
// then it is stopped, so nothing can change PagerTree while it is compared.
// No wait is a timing assertion: patience only catches a hang.
//
// After the stream, a probe (one person renamed) checks the scoped path
// deterministically: with the daemon settled it must be synced by a scoped
// sync that lists nothing.
//
// Disabling: OpenLDAP has no disabled flag, so the user filter leaves out
// entries with employeeType=disabled, a common convention; syncprov reports
// an entry leaving the filter as a deletion.
func TestWatchModeFollowsARandomStreamOfEdits(t *testing.T) {
	defaultRapidChecks(t, 6)
	// The harness's reader may read every entry of this small directory at
	// once (its plain search limit is slapd.SizeLimit = 500 entries), which
	// a sync search's refresh, not paged, needs.
	dirServer := slapd.Start(t, slapd.Options{SyncProv: true, SessionLog: 1000})
	dir := t.TempDir()
	passFile := filepath.Join(dir, "reader.pass")
	mustWrite(t, passFile, slapd.ReaderPassword+"\n")
	t.Setenv("TEST_PT_PASSWORD", "password")
	t.Setenv(v4KeyEnv, pagertreetest.DefaultAPIKey)

	var checks, scopedPlans, fullInstead int
	rapid.Check(t, func(rt *rapid.T) {
		began := time.Now()
		api := rapid.SampledFrom([]string{"v3", "v4"}).Draw(rt, "api")
		m := baseDirectory()
		if err := resetDirectory(dirServer, m); err != nil {
			rt.Fatalf("reset the directory: %v", err)
		}
		acct, err := newWatchAccount(api)
		if err != nil {
			rt.Fatal(err)
		}
		defer acct.emu.Close()
		cfg := writeWatchLDAPConfig(t, filepath.Join(dir, "watch.yaml"), acct.block, dirServer, passFile)
		d := startDaemon(t, "--config", cfg)
		defer func() { // on a failure; a stopped daemon returns at once
			d.cancel()
			select {
			case <-d.exited:
			case <-time.After(patience):
			}
		}()
		w := &watchedDaemon{d: d}

		// Edits may begin while the first sync runs and the feed is not
		// established yet, or once the daemon has settled.
		if rapid.Bool().Draw(rt, "settle first") {
			w.settle(rt, 0, "the first syncs")
		}

		steps := rapid.IntRange(1, 8).Draw(rt, "edits")
		for i := range steps {
			pause := rapid.SampledFrom([]time.Duration{0, 0, 0, 50 * time.Millisecond, 150 * time.Millisecond,
				300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond}).Draw(rt, fmt.Sprintf("pause%d", i))
			time.Sleep(pause)
			for _, e := range m.edit(rt, fmt.Sprintf("edit%d", i)) {
				rt.Logf("edit %d (after %v): %s", i, pause, e.what)
				if err := ldapModify(dirServer, e.ldif); err != nil {
					rt.Fatalf("edit %d, %s: %v", i, e.what, err)
				}
			}
		}
		w.settle(rt, w.lines(rt), "the stream to be synced")

		// The probe: with the daemon settled, one rename is a scoped sync's
		// job, and that sync reads single objects, never a listing, on
		// either side: the directory's entry too.
		acct.emu.ResetStats()
		before := w.lines(rt)
		probe := m.probe()
		rt.Logf("probe: %s", probe.what)
		if err := ldapModify(dirServer, probe.ldif); err != nil {
			rt.Fatalf("probe: %v", err)
		}
		w.settle(rt, w.lines(rt), "the probe to be synced")
		after := w.messages(rt)[before:]
		if !slices.Contains(after, "scoped plan made") || slices.Contains(after, "watch: a full sync instead of a scoped one") {
			rt.Fatalf("the probe (%s) was not synced by a scoped sync; the daemon logged %q\nlog:\n%s", probe.what, after, d.log)
		}
		if !slices.Contains(after, "refreshed source") || slices.Contains(after, "fetched source") {
			rt.Errorf("the probe's scoped sync read the directory whole; the daemon logged %q", after)
		}
		if listed := listings(acct.emu.Stats().Requests); len(listed) > 0 {
			rt.Errorf("the probe's scoped sync listed the account: %v", listed)
		}

		// The feed stayed up the whole time: established once, never failed.
		if v := d.metric(`ptsync_watch_connected{source="corp"}`); v != 1 {
			rt.Errorf("ptsync_watch_connected{source=\"corp\"} = %v, want 1", v)
		}
		msgs := w.messages(rt)
		if n := count(msgs, "watch: change feed established"); n != 1 {
			rt.Errorf("the feed was established %d times, want once:\n%s", n, d.log)
		}
		if n := count(msgs, "watch: change feed failed; the schedule still runs, and the feed is retried"); n != 0 {
			rt.Errorf("the feed failed %d times:\n%s", n, d.log)
		}
		if n := count(msgs, "sync run failed; nothing was written"); n != 0 {
			rt.Errorf("%d sync runs failed:\n%s", n, d.log)
		}
		if code := d.stop(); code != exitOK {
			rt.Fatalf("the daemon exited %d", code)
		}
		scopedPlans += count(msgs, "scoped plan made")
		fullInstead += count(msgs, "watch: a full sync instead of a scoped one")
		watchedUsers, watchedTeams := acct.state()

		// What a full sync from scratch makes of the final directory.
		oracle, err := newWatchAccount(api)
		if err != nil {
			rt.Fatal(err)
		}
		defer oracle.emu.Close()
		oracleCfg := writeWatchLDAPConfig(t, filepath.Join(dir, "oracle.yaml"), oracle.block, dirServer, passFile)
		if code, stdout, stderr := runCmd(t, "sync", "--config", oracleCfg); code != exitOK {
			rt.Fatalf("the full sync from scratch: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		wantUsers, wantTeams := oracle.state()
		if !reflect.DeepEqual(watchedUsers, wantUsers) {
			rt.Errorf("users after the stream (watch mode):\n%s\nafter a full sync from scratch:\n%s", dump(watchedUsers), dump(wantUsers))
		}
		if !reflect.DeepEqual(watchedTeams, wantTeams) {
			rt.Errorf("teams after the stream (watch mode):\n%s\nafter a full sync from scratch:\n%s", dump(watchedTeams), dump(wantTeams))
		}
		// A full sync of the watched account would do nothing more.
		if code, stdout, stderr := runCmd(t, "plan", "--config", cfg, "--detailed-exitcode"); code != exitOK {
			rt.Errorf("a full plan of the account watch mode left: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		// And the oracle is what the edits asked for, as the test's own
		// model of the directory says: the stream did what it meant to.
		uuids, err := groupUUIDs(dirServer)
		if err != nil {
			rt.Fatal(err)
		}
		modelUsers, modelTeams := m.expected(api == "v4", uuids)
		if !reflect.DeepEqual(wantUsers, modelUsers) || !reflect.DeepEqual(wantTeams, modelTeams) {
			rt.Errorf("the full sync from scratch made\n%s%s\nthe test's model of the directory wants\n%s%s",
				dump(wantUsers), dump(wantTeams), dump(modelUsers), dump(modelTeams))
		}
		checks++
		rt.Logf("check %d (%s, %d edits) took %v", checks, api, steps, time.Since(began).Round(time.Millisecond))
	})
	t.Logf("%d checks: %d scoped syncs, %d watch syncs that were full ones instead", checks, scopedPlans, fullInstead)
	if scopedPlans == 0 {
		t.Error("no watch sync was a scoped one")
	}
}

// defaultRapidChecks makes rapid run n checks unless -rapid.checks or
// RAPID_CHECKS says otherwise: each check runs a daemon through a stream of
// edits for seconds, where rapid's default is 100 checks. No test of this
// package runs in parallel, so the flag is not read meanwhile.
func defaultRapidChecks(t *testing.T, n int) {
	t.Helper()
	if _, ok := os.LookupEnv("RAPID_CHECKS"); ok {
		return
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	f := flag.Lookup("rapid.checks")
	if set || f == nil {
		return
	}
	old := f.Value.String()
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Value.Set(old) })
}

// writeWatchLDAPConfig writes the config of the test at path: the slapd
// directory over StartTLS into the PagerTree of pagertreeBlock, on-call
// groups as teams, leavers deleted, watch mode on with a short debounce,
// and a schedule that does not fire during the test.
func writeWatchLDAPConfig(t *testing.T, path, pagertreeBlock string, s *slapd.Server, passFile string) string {
	t.Helper()
	mustWrite(t, path, pagertreeBlock+fmt.Sprintf(`sources:
  - name: corp
    type: ldap
    ldap:
      url: %s
      start_tls: true
      ca_file: %s
      bind_dn: %s
      bind_password_file: %s
      users:
        base_dn: %s
        filter: "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"
      groups:
        base_dn: %s
teams:
  - source: corp
    match: "oncall-*"
    name: '{{ trimPrefix "oncall-" .Name | upper }} on-call'
users:
  delete: true
  phone_region: US
safety:
  max_destructive: 1000
watch:
  enabled: true
  debounce: %s
  max_delay: 1s
`, s.URL, s.CAFile, slapd.ReaderDN, passFile, slapd.PeopleDN, slapd.GroupsDN, watchDebounce)+daemonExtra)
	return path
}

// watchDebounce is the config's watch.debounce.
const watchDebounce = 200 * time.Millisecond

// The PagerTree account's fixture: its admin, a team made by hand, and
// carol, who is in the directory, under a stale name.
const (
	fixtureOwner     = "owner@example.com"
	fixtureOwnerName = "Pat Owner"
	fixtureTeam      = "Facilities"
	fixtureTeamNotes = "made by hand"
)

// watchAccount is one emulated PagerTree account with the fixture.
type watchAccount struct {
	emu   *pagertreetest.Server
	v4    bool
	block string // the config's pagertree: block
}

func newWatchAccount(api string) (*watchAccount, error) {
	if api == "v3" {
		emu := pagertreetest.NewServer(pagertreetest.Options{Username: "admin@example.com", Password: "password"})
		owner, err := emu.AddUser(pagertree.User{Name: fixtureOwnerName, Email: fixtureOwner, Roles: pagertree.Roles{Admin: true}})
		if err == nil {
			_, err = emu.AddTeam(pagertree.Team{Name: fixtureTeam, Description: fixtureTeamNotes, MemberUserIDs: []string{owner.ID}})
		}
		if err == nil {
			_, err = emu.AddUser(pagertree.User{Name: "C. Chen", Email: "carol@example.com"})
		}
		if err != nil {
			emu.Close()
			return nil, err
		}
		return &watchAccount{emu: emu, block: fmt.Sprintf(`pagertree:
  url: %s
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
`, emu.URL())}, nil
	}
	emu := pagertreetest.NewServer(pagertreetest.Options{API: "v4"})
	owner, err := emu.AddAccountUser(pagertree.AccountUser{Roles: pagertree.AccountRoles{Admin: true},
		User: pagertree.Person{Name: fixtureOwnerName, Emails: []pagertree.Email{{Email: fixtureOwner}}}})
	if err == nil {
		_, err = emu.AddTeamV4(pagertree.TeamV4{Name: fixtureTeam, Notes: fixtureTeamNotes,
			MemberAccountUserIDs: []string{owner.ID}, AdminAccountUserIDs: []string{owner.ID}})
	}
	if err == nil {
		_, err = emu.AddAccountUser(pagertree.AccountUser{User: pagertree.Person{Name: "C. Chen", Emails: []pagertree.Email{{Email: "carol@example.com"}}}})
	}
	if err != nil {
		emu.Close()
		return nil, err
	}
	return &watchAccount{emu: emu, v4: true, block: fmt.Sprintf(`pagertree:
  api: v4
  url: %s
  api_key: ${%s}
  team_admins: [%s]
`, emu.URL(), v4KeyEnv, fixtureOwner)}, nil
}

// accountUser and accountTeam are what the test compares of a PagerTree
// user and team; ids, which differ between accounts, are left out.
type accountUser struct {
	Name   string
	Phones string // v4: every number, sorted, comma-separated
	Admin  bool
}

type accountTeam struct {
	Description string   // v4: the notes
	Members     []string // emails, sorted
	Admins      []string // emails, sorted (v4)
}

// state is the account's users by email and teams by name. A second user
// or team under a key already seen is kept under the key with "#2".
func (a *watchAccount) state() (map[string]accountUser, map[string]accountTeam) {
	users, teams := map[string]accountUser{}, map[string]accountTeam{}
	put := func(m map[string]accountUser, key string, v accountUser) {
		for k := key; ; k += "#2" {
			if _, dup := m[k]; !dup {
				m[k] = v
				return
			}
		}
	}
	putTeam := func(key string, v accountTeam) {
		for k := key; ; k += "#2" {
			if _, dup := teams[k]; !dup {
				teams[k] = v
				return
			}
		}
	}
	emailsOf := func(ids []string, emails map[string]string) []string {
		out := []string{}
		for _, id := range ids {
			out = append(out, cmpOrUnknown(emails[id], id))
		}
		slices.Sort(out)
		return out
	}
	emails := map[string]string{}
	if !a.v4 {
		for _, u := range a.emu.Users() {
			put(users, u.Email, accountUser{Name: u.Name, Phones: u.Phone, Admin: u.Roles.Admin})
			emails[u.ID] = u.Email
		}
		for _, tm := range a.emu.Teams() {
			putTeam(tm.Name, accountTeam{Description: tm.Description, Members: emailsOf(tm.MemberUserIDs, emails), Admins: []string{}})
		}
		return users, teams
	}
	for _, au := range a.emu.AccountUsers() {
		var phones []string
		for _, ph := range au.User.Phones {
			phones = append(phones, ph.Phone)
		}
		slices.Sort(phones)
		put(users, au.User.PrimaryEmail(), accountUser{Name: au.User.Name, Phones: strings.Join(phones, ","), Admin: au.Roles.Admin})
		emails[au.ID] = au.User.PrimaryEmail()
	}
	for _, tm := range a.emu.TeamsV4() {
		putTeam(tm.Name, accountTeam{Description: tm.Notes, Members: emailsOf(tm.MemberAccountUserIDs, emails),
			Admins: emailsOf(tm.AdminAccountUserIDs, emails)})
	}
	return users, teams
}

func cmpOrUnknown(email, id string) string {
	if email == "" {
		return "(unknown id " + id + ")"
	}
	return email
}

// listings are the requests of stats that list a collection.
func listings(requests map[string]int) []string {
	var out []string
	for route, n := range requests {
		if n > 0 && strings.HasPrefix(route, "GET ") && !strings.Contains(route, ":id") {
			out = append(out, fmt.Sprintf("%s ×%d", route, n))
		}
	}
	slices.Sort(out)
	return out
}

// dump renders a state map one key a line, sorted.
func dump[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: %+v\n", k, m[k])
	}
	return b.String()
}

func count(msgs []string, msg string) int {
	n := 0
	for _, m := range msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// watchedDaemon reads a test daemon's log and metrics for settle.
type watchedDaemon struct{ d *testDaemon }

// messages are the msg of every complete line the daemon logged so far.
func (w *watchedDaemon) messages(rt *rapid.T) []string {
	text := w.d.log.String()
	text = text[:strings.LastIndexByte(text, '\n')+1] // a line being written is not one yet
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry struct {
			Msg string `json:"msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			rt.Fatalf("the daemon logged a line that is not JSON: %q", sc.Text())
		}
		msgs = append(msgs, entry.Msg)
	}
	return msgs
}

// lines is how many lines the daemon has logged.
func (w *watchedDaemon) lines(rt *rapid.T) int { return len(w.messages(rt)) }

// quiet is how long settle wants nothing to move: a change the feed
// reports starts a cycle within one debounce.
const quiet = 3 * watchDebounce

// settle waits until the daemon has synced every edit committed before it
// had logged sinceLine lines, and has gone quiet: a sync run started after
// those lines (so it read the directory after the edit: whatever a watch
// sync is scoped to, it reads every source whole), every cycle started has
// finished, and for quiet no cycle started or ended and the feed reported
// no change. It can only end early where that holds; it fails after
// patience.
func (w *watchedDaemon) settle(rt *rapid.T, sinceLine int, what string) {
	deadline := time.Now().Add(patience)
	var last [3]float64
	var still time.Time
	for {
		msgs := w.messages(rt)
		startedSince := slices.ContainsFunc(msgs[min(sinceLine, len(msgs)):], func(m string) bool {
			return m == "sync run started" || m == "scoped sync run started"
		})
		// The first cycle at start, then one per watch trigger (the
		// schedule does not fire).
		cycles := 1 + count(msgs, "watch: syncing directory changes")
		runs, events, connected := w.counters(rt)
		now := [3]float64{float64(cycles), runs, events}
		switch {
		case !startedSince || float64(cycles) != runs || connected != 1:
			still = time.Time{}
		case still.IsZero() || now != last:
			still = time.Now()
		case time.Since(still) >= quiet:
			return
		}
		last = now
		if time.Now().After(deadline) {
			rt.Fatalf("gave up waiting for %s: a sync run started after the edits: %t; %d cycles started, %v ended; feed connected %v\nlog:\n%s",
				what, startedSince, cycles, runs, connected, w.d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// counters reads the sync runs ended (any result), the changes the feed
// reported and whether it is connected, from one scrape of /metrics.
func (w *watchedDaemon) counters(rt *rapid.T) (runs, events, connected float64) {
	_, text := w.d.get("/metrics")
	for line := range strings.SplitSeq(text, "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			rt.Fatalf("metrics line %q: %v", line, err)
		}
		switch {
		case strings.HasPrefix(series, "ptsync_sync_runs_total{"):
			runs += v
		case series == `ptsync_watch_events_total{source="corp"}`:
			events = v
		case series == `ptsync_watch_connected{source="corp"}`:
			connected = v
		}
	}
	return runs, events, connected
}

// ldapModify applies ldif with ldapmodify bound as the rootdn, as
// slapd.Server.Modify does, returning the error for rapid to report.
func ldapModify(s *slapd.Server, ldif string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldapmodify", "-x", "-H", s.URL, "-D", slapd.RootDN, "-w", slapd.RootPassword)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ldapmodify: %w\n%s\nLDIF:\n%s", err, out, ldif)
	}
	return nil
}

// resetDirectory deletes every entry under ou=people and ou=groups and
// loads m, the base directory.
func resetDirectory(s *slapd.Server, m *dirModel) error {
	var ldif strings.Builder
	for _, base := range []string{slapd.GroupsDN, slapd.PeopleDN} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, code, err := s.LDAPSearch(ctx, "-o", "ldif-wrap=no", "-b", base, "-s", "one", "(objectClass=*)", "1.1")
		cancel()
		if err != nil || code != 0 {
			return fmt.Errorf("ldapsearch %s: exit %d, %v\n%s", base, code, err, out)
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			if dn, ok := strings.CutPrefix(line, "dn: "); ok {
				fmt.Fprintf(&ldif, "dn: %s\nchangetype: delete\n\n", dn)
			}
		}
	}
	ldif.WriteString(m.ldif())
	return ldapModify(s, ldif.String())
}

// groupUUIDs maps the cn of every group to its entryUUID, which the
// markers of their teams name.
func groupUUIDs(s *slapd.Server) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, code, err := s.LDAPSearch(ctx, "-o", "ldif-wrap=no", "-b", slapd.GroupsDN, "-s", "one", "(objectClass=groupOfNames)", "cn", "entryUUID")
	if err != nil || code != 0 {
		return nil, fmt.Errorf("ldapsearch groups: exit %d, %v\n%s", code, err, out)
	}
	uuids := map[string]string{}
	for block := range strings.SplitSeq(string(out), "\n\n") {
		var cn, uuid string
		for line := range strings.SplitSeq(block, "\n") {
			if v, ok := strings.CutPrefix(line, "cn: "); ok {
				cn = v
			}
			if v, ok := strings.CutPrefix(line, "entryUUID: "); ok {
				uuid = v
			}
		}
		if cn != "" {
			uuids[cn] = uuid
		}
	}
	if len(uuids) == 0 {
		return nil, errors.New("ldapsearch found no group")
	}
	return uuids, nil
}

// dirModel is the test's model of the directory: who exists, who is
// disabled, and who is in which group. The stream draws only edits that
// keep its invariants (see the test's comment): every edit is one slapd
// accepts and one the feed reports.
type dirModel struct {
	people map[string]*dirPerson // by uid; a leaver is deleted
	groups []*dirGroup
	next   int // numbers fresh names, phones and uids
}

type dirPerson struct {
	uid, name string
	phone     dirPhone
	noMail    bool
	disabled  bool
}

// dirPhone is a number as the directory holds it, and as PagerTree should
// (users.phone_region US reads national numbers as US ones).
type dirPhone struct{ raw, e164 string }

type dirGroup struct {
	cn string
	// members are the uids of the member DNs, in the order added: a
	// leaver's DN stays where their groups were not edited (OpenLDAP
	// without the refint overlay keeps it), and the source drops it.
	members []string
}

// usPhone is the number 415 555 0100+n (n < 100: the block libphonenumber
// takes for valid) written in one of the ways people type.
func usPhone(n, style int) dirPhone {
	n = 100 + n%100
	raw := [...]string{"+1 415 555 %04d", "(415) 555-%04d", "415.555.%04d"}[style%3]
	return dirPhone{raw: fmt.Sprintf(raw, n), e164: fmt.Sprintf("+1415555%04d", n)}
}

func baseDirectory() *dirModel {
	m := &dirModel{people: map[string]*dirPerson{}}
	for i, uid := range []string{"alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan"} {
		m.people[uid] = &dirPerson{uid: uid, name: strings.ToUpper(uid[:1]) + uid[1:] + " Base", phone: usPhone(i, i), noMail: uid == "ivan"}
	}
	m.next = 10
	// heidi is in no on-call group and ivan has no mail: PagerTree has
	// neither.
	m.groups = []*dirGroup{
		{cn: "oncall-db", members: []string{"alice", "bob", "carol", "ivan", "erin"}},
		{cn: "oncall-web", members: []string{"carol", "dan", "erin", "alice"}},
		{cn: "oncall-ops", members: []string{"frank", "grace", "bob", "dan"}},
		{cn: "staff", members: []string{"alice", "heidi", "dan"}},
	}
	return m
}

func userDN(uid string) string  { return "uid=" + uid + "," + slapd.PeopleDN }
func groupDN(cn string) string  { return "cn=" + cn + "," + slapd.GroupsDN }
func emailOf(uid string) string { return uid + "@example.com" }
func onCall(g *dirGroup) bool   { return strings.HasPrefix(g.cn, "oncall-") }
func teamName(cn string) string {
	return strings.ToUpper(strings.TrimPrefix(cn, "oncall-")) + " on-call"
}
func (m *dirModel) fresh() int {
	m.next++
	return m.next
}
func (m *dirModel) sortedUIDs() []string {
	uids := make([]string, 0, len(m.people))
	for uid := range m.people {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	return uids
}

// live reports whether PagerTree may have uid: an enabled entry with a mail.
func (m *dirModel) live(uid string) bool {
	p := m.people[uid]
	return p != nil && !p.disabled && !p.noMail
}

// wanted reports whether a team wants uid.
func (m *dirModel) wanted(uid string) bool {
	return m.live(uid) && slices.ContainsFunc(m.groups, func(g *dirGroup) bool { return onCall(g) && slices.Contains(g.members, uid) })
}

// othersLive reports whether g has a live member besides uid.
func (m *dirModel) othersLive(g *dirGroup, uid string) bool {
	return slices.ContainsFunc(g.members, func(o string) bool { return o != uid && m.live(o) })
}

// canGo reports whether uid may stop being live: every on-call group of
// theirs keeps a live member.
func (m *dirModel) canGo(uid string) bool {
	for _, g := range m.groups {
		if onCall(g) && slices.Contains(g.members, uid) && !m.othersLive(g, uid) {
			return false
		}
	}
	return true
}

// onCallGroupsOf counts the on-call groups whose members name uid.
func (m *dirModel) onCallGroupsOf(uid string) int {
	n := 0
	for _, g := range m.groups {
		if onCall(g) && slices.Contains(g.members, uid) {
			n++
		}
	}
	return n
}

func (p *dirPerson) ldif() string {
	s := fmt.Sprintf("dn: %s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\ndisplayName: %s\ntelephoneNumber: %s\n",
		userDN(p.uid), p.uid, p.uid, p.uid, p.name, p.phone.raw)
	if !p.noMail {
		s += "mail: " + emailOf(p.uid) + "\n"
	}
	if p.disabled {
		s += "employeeType: disabled\n"
	}
	return s + "\n"
}

func (g *dirGroup) ldif() string {
	s := fmt.Sprintf("dn: %s\nchangetype: add\nobjectClass: groupOfNames\ncn: %s\n", groupDN(g.cn), g.cn)
	for _, uid := range g.members {
		s += "member: " + userDN(uid) + "\n"
	}
	return s + "\n"
}

func memberLDIF(cn, op, uid string) string {
	return fmt.Sprintf("dn: %s\nchangetype: modify\n%s: member\nmember: %s\n-\n\n", groupDN(cn), op, userDN(uid))
}

func replaceLDIF(uid, attr, value string) string {
	return fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: %s\n%s: %s\n-\n\n", userDN(uid), attr, attr, value)
}

// ldif is the whole directory, as records to add.
func (m *dirModel) ldif() string {
	var b strings.Builder
	for _, uid := range m.sortedUIDs() {
		b.WriteString(m.people[uid].ldif())
	}
	for _, g := range m.groups {
		b.WriteString(g.ldif())
	}
	return b.String()
}

// dirEdit is one ldapmodify call.
type dirEdit struct{ what, ldif string }

// edit draws one edit of the stream, applies it to the model and returns
// it as one or two ldapmodify calls.
func (m *dirModel) edit(rt *rapid.T, label string) []dirEdit {
	kinds := []string{"join", "leave", "rename", "phone", "disable", "enable", "hire", "leaver", "new group", "group rename"}
	for {
		if edits := m.tryEdit(rt, label, rapid.SampledFrom(kinds).Draw(rt, label+".kind")); edits != nil {
			return edits
		}
	}
}

// tryEdit makes an edit of kind, or returns nil when none is possible.
func (m *dirModel) tryEdit(rt *rapid.T, label, kind string) []dirEdit {
	uids := m.sortedUIDs()
	pick := func(what string, candidates []string) (string, bool) {
		if len(candidates) == 0 {
			return "", false
		}
		return rapid.SampledFrom(candidates).Draw(rt, label+"."+what), true
	}
	enabled := slices.DeleteFunc(slices.Clone(uids), func(uid string) bool { return m.people[uid].disabled })
	switch kind {
	case "join": // anyone who exists joins a group they are not in
		var pairs []string
		for gi, g := range m.groups {
			for _, uid := range uids {
				if !slices.Contains(g.members, uid) {
					pairs = append(pairs, fmt.Sprintf("%d %s", gi, uid))
				}
			}
		}
		pair, ok := pick("join", pairs)
		if !ok {
			return nil
		}
		g, uid := m.pair(pair)
		g.members = append(g.members, uid)
		return []dirEdit{{uid + " joins " + g.cn, memberLDIF(g.cn, "add", uid)}}
	case "leave": // a member leaves a group, staying in an on-call one
		var pairs []string
		for gi, g := range m.groups {
			if len(g.members) < 2 { // groupOfNames needs a member
				continue
			}
			for _, uid := range g.members {
				if onCall(g) && (!m.othersLive(g, uid) || (m.people[uid] != nil && m.onCallGroupsOf(uid) < 2)) {
					continue
				}
				pairs = append(pairs, fmt.Sprintf("%d %s", gi, uid))
			}
		}
		pair, ok := pick("leave", pairs)
		if !ok {
			return nil
		}
		g, uid := m.pair(pair)
		g.members = slices.DeleteFunc(g.members, func(o string) bool { return o == uid })
		return []dirEdit{{uid + " leaves " + g.cn, memberLDIF(g.cn, "delete", uid)}}
	case "rename":
		uid, ok := pick("renamed", enabled)
		if !ok {
			return nil
		}
		p := m.people[uid]
		p.name = fmt.Sprintf("%s Renamed%d", strings.ToUpper(uid[:1])+uid[1:], m.fresh())
		return []dirEdit{{uid + " renamed " + p.name, replaceLDIF(uid, "displayName", p.name)}}
	case "phone":
		uid, ok := pick("phone", enabled)
		if !ok {
			return nil
		}
		p := m.people[uid]
		p.phone = usPhone(m.fresh(), rapid.IntRange(0, 2).Draw(rt, label+".style"))
		return []dirEdit{{uid + " has the phone " + p.phone.raw, replaceLDIF(uid, "telephoneNumber", p.phone.raw)}}
	case "disable":
		uid, ok := pick("disabled", slices.DeleteFunc(slices.Clone(enabled), func(uid string) bool { return !m.canGo(uid) }))
		if !ok {
			return nil
		}
		m.people[uid].disabled = true
		return []dirEdit{{uid + " disabled", replaceLDIF(uid, "employeeType", "disabled")}}
	case "enable":
		uid, ok := pick("enabled", slices.DeleteFunc(slices.Clone(uids), func(uid string) bool { return !m.people[uid].disabled }))
		if !ok {
			return nil
		}
		m.people[uid].disabled = false
		return []dirEdit{{uid + " enabled", fmt.Sprintf("dn: %s\nchangetype: modify\ndelete: employeeType\n-\n\n", userDN(uid))}}
	case "hire": // a new person, put in one or two on-call groups
		n := m.fresh()
		p := &dirPerson{uid: fmt.Sprintf("hire%d", n), name: fmt.Sprintf("Hire %d", n), phone: usPhone(n, n)}
		m.people[p.uid] = p
		var groups []string
		for _, g := range m.groups {
			if onCall(g) {
				groups = append(groups, g.cn)
			}
		}
		joins := rapid.SliceOfNDistinct(rapid.SampledFrom(groups), 1, 2, rapid.ID[string]).Draw(rt, label+".hired into")
		var records string
		for _, cn := range joins {
			g := m.groups[slices.IndexFunc(m.groups, func(g *dirGroup) bool { return g.cn == cn })]
			g.members = append(g.members, p.uid)
			records += memberLDIF(cn, "add", p.uid)
		}
		what := p.uid + " hired into " + strings.Join(joins, ", ")
		if rapid.Bool().Draw(rt, label+".hire in two calls") { // the entry first, the groups a moment later
			return []dirEdit{{what + " (entry)", p.ldif()}, {what + " (groups)", records}}
		}
		return []dirEdit{{what, p.ldif() + records}}
	case "leaver": // a person's entry deleted, and their memberships with it or not
		uid, ok := pick("leaver", slices.DeleteFunc(slices.Clone(enabled), func(uid string) bool { return !m.canGo(uid) }))
		if !ok {
			return nil
		}
		what := uid + " leaves the company"
		var records string
		if rapid.Bool().Draw(rt, label+".out of their groups") {
			what += ", out of their groups too"
			for _, g := range m.groups {
				if slices.Contains(g.members, uid) && len(g.members) > 1 {
					g.members = slices.DeleteFunc(g.members, func(o string) bool { return o == uid })
					records += memberLDIF(g.cn, "delete", uid)
				}
			}
		}
		delete(m.people, uid)
		return []dirEdit{{what, records + fmt.Sprintf("dn: %s\nchangetype: delete\n\n", userDN(uid))}}
	case "new group": // a new on-call group: a team newly wanted
		live := slices.DeleteFunc(slices.Clone(uids), func(uid string) bool { return !m.live(uid) })
		if len(live) == 0 {
			return nil
		}
		members := rapid.SliceOfNDistinct(rapid.SampledFrom(live), 1, 3, rapid.ID[string]).Draw(rt, label+".members")
		g := &dirGroup{cn: fmt.Sprintf("oncall-n%d", m.fresh()), members: members}
		m.groups = append(m.groups, g)
		return []dirEdit{{"new group " + g.cn + " of " + strings.Join(members, ", "), g.ldif()}}
	case "group rename": // an on-call group renamed, keeping its entryUUID
		var onCalls []string
		for _, g := range m.groups {
			if onCall(g) {
				onCalls = append(onCalls, g.cn)
			}
		}
		cn, ok := pick("renamed group", onCalls)
		if !ok {
			return nil
		}
		g := m.groups[slices.IndexFunc(m.groups, func(g *dirGroup) bool { return g.cn == cn })]
		g.cn = fmt.Sprintf("oncall-r%d", m.fresh())
		return []dirEdit{{cn + " renamed " + g.cn, fmt.Sprintf("dn: %s\nchangetype: modrdn\nnewrdn: cn=%s\ndeleteoldrdn: 1\n\n", groupDN(cn), g.cn)}}
	}
	panic("unknown edit " + kind)
}

// pair reads a "group-index uid" pair a join or leave drew.
func (m *dirModel) pair(s string) (*dirGroup, string) {
	i, uid, _ := strings.Cut(s, " ")
	gi, err := strconv.Atoi(i)
	if err != nil {
		panic(err)
	}
	return m.groups[gi], uid
}

// probe renames the first person a team wants.
func (m *dirModel) probe() dirEdit {
	for _, uid := range m.sortedUIDs() {
		if m.wanted(uid) {
			p := m.people[uid]
			p.name = fmt.Sprintf("Probe %d", m.fresh())
			return dirEdit{uid + " renamed " + p.name, replaceLDIF(uid, "displayName", p.name)}
		}
	}
	panic("no team wants anyone") // the invariants keep a live member in every on-call group
}

// expected is the account the model asks for: the fixture (its admin and
// team made by hand; carol is wanted) and a user per wanted person and a
// team per on-call group, marked with the group's entryUUID.
func (m *dirModel) expected(v4 bool, uuids map[string]string) (map[string]accountUser, map[string]accountTeam) {
	admins := []string{}
	if v4 {
		admins = []string{fixtureOwner}
	}
	users := map[string]accountUser{fixtureOwner: {Name: fixtureOwnerName, Admin: true}}
	teams := map[string]accountTeam{fixtureTeam: {Description: fixtureTeamNotes, Members: []string{fixtureOwner}, Admins: admins}}
	for uid, p := range m.people {
		if m.wanted(uid) {
			users[emailOf(uid)] = accountUser{Name: p.name, Phones: p.phone.e164}
		}
	}
	for _, g := range m.groups {
		if !onCall(g) {
			continue
		}
		members := []string{}
		for _, uid := range g.members {
			if m.live(uid) {
				members = append(members, emailOf(uid))
			}
		}
		slices.Sort(members)
		marker := "[managed by ptsync: source=corp group=" + uuids[g.cn]
		if v4 {
			marker += " admins=" + fixtureOwner
		}
		teams[teamName(g.cn)] = accountTeam{Description: marker + "]", Members: members, Admins: admins}
	}
	return users, teams
}
