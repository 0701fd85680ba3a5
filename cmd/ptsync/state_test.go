package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// fakeClock is the clock every run of a test is dated by (clock).
type fakeClock struct {
	mu  stdsync.Mutex
	now time.Time
}

// setClock makes the commands' clock read start until set moves it.
func setClock(t *testing.T, start time.Time) *fakeClock {
	t.Helper()
	c := &fakeClock{now: start}
	old := clock
	clock = c.Now
	t.Cleanup(func() { clock = old })
	return c
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// stateExtra is the config block that puts the state in dir.
func stateExtra(dir string) string { return "state:\n  dir: " + dir + "\n" }

// peopleYAML is a file source's directory: one user per id, email
// <id>@example.com, all of them in oncall-db (g1).
func peopleYAML(ids ...string) string {
	var b strings.Builder
	b.WriteString("users:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - {id: %s, email: %s@example.com, name: %s}\n", id, id, strings.ToUpper(id[:1])+id[1:])
	}
	fmt.Fprintf(&b, "groups:\n  - {id: g1, name: oncall-db, members: [%s]}\n", strings.Join(ids, ", "))
	return b.String()
}

// mustRun runs a command line and fails the test unless it exits want.
func mustRun(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, args...)
	if code != want {
		t.Fatalf("ptsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// failingWrites fronts the PagerTree at target: it passes reads and the
// login on and refuses every write with a 422, so every change of a run
// fails.
func failingWrites(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.URL.Path != "/public/login" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"errors":[{"message":"refused by the test"}]}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// userEmails are the emulator's users' emails, sorted.
func userEmails(emu *pagertreetest.Server) []string {
	var out []string
	for _, u := range emu.Users() {
		out = append(out, u.Email)
	}
	slices.Sort(out)
	return out
}

// pendingLine is the plan's line for a delete users.delete_grace keeps.
func pendingLine(email string, since time.Time, grace time.Duration) string {
	return fmt.Sprintf("- user %s  # missing since %s, deleted after %s\n", email,
		since.UTC().Format(time.RFC3339), since.Add(grace).UTC().Format(time.RFC3339))
}

func TestSourceDropGate(t *testing.T) {
	emu := newAccount(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clk := setClock(t, t0)
	cfg := writeConfig(t, emu.URL(), "safety:\n  max_source_drop_percent: 30\n"+stateExtra(t.TempDir()))
	ten := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	mustWrite(t, people(cfg), peopleYAML(ten...))
	mustRun(t, exitOK, "sync", "--config", cfg)

	// Four of ten gone: 40% fewer, beyond the 30% the config allows.
	clk.set(t0.Add(time.Hour))
	mustWrite(t, people(cfg), peopleYAML(ten[:6]...))
	emu.ResetStats()
	for _, command := range []string{"plan", "sync"} {
		stdout, stderr := mustRun(t, exitError, command, "--config", cfg)
		want := "ptsync " + command + `: source "people" returned 6 users, 40% fewer than the 10 of its last good run (2026-03-02T09:00:00Z), beyond safety.max_source_drop_percent (30%); nothing was written: check the source's filter and base DN, or if the directory really shrank, accept its new size for one run with --accept-source-drop people`
		if stdout != "" || lastLine(stderr) != want {
			t.Errorf("%s: stdout %q, last stderr line\n%s\nwant\n%s", command, stdout, lastLine(stderr), want)
		}
	}
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("the shrunken directory made %d write requests", st.WriteAttempts)
	}
	// The refused run is in the history, with the size that stopped it.
	stdout, _ := mustRun(t, exitOK, "history", "--config", cfg, "-n", "1", "--output", "json")
	var doc struct {
		Runs []struct {
			RunID string `json:"run_id"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil || len(doc.Runs) != 1 {
		t.Fatalf("history: %v\n%s", err, stdout)
	}
	stdout, _ = mustRun(t, exitOK, "report", "--config", cfg, doc.Runs[0].RunID)
	if !strings.Contains(stdout, "; result: error\nError: source \"people\" returned 6 users, 40% fewer than the 10 of its last good run") ||
		!strings.HasSuffix(stdout, "\nSource people: 6 users, 1 groups\n") {
		t.Errorf("report of the refused run:\n%s", stdout)
	}
	if _, stderr := mustRun(t, exitError, "sync", "--config", cfg, "--accept-source-drop", "ppl"); lastLine(stderr) != "ptsync sync: --accept-source-drop ppl: no source of that name (sources: people)" {
		t.Errorf("an unknown source: %q", lastLine(stderr))
	}

	// Accepted once, the new size is the last good one.
	stdout, _ = mustRun(t, exitOK, "sync", "--config", cfg, "--accept-source-drop", "people")
	if !strings.Contains(stdout, "~ team oncall-db: members -u6@example.com -u7@example.com -u8@example.com -u9@example.com") {
		t.Errorf("the accepted run did not apply the shrink:\n%s", stdout)
	}
	emu.ResetStats()
	if stdout, _ := mustRun(t, exitOK, "sync", "--config", cfg); !strings.HasPrefix(stdout, "No changes. PagerTree is in sync.") {
		t.Errorf("the run after the accepted one:\n%s", stdout)
	}

	// Without a state there is nothing to compare with, and nothing to
	// accept: today's behaviour.
	noState := writeConfig(t, emu.URL(), "safety:\n  max_source_drop_percent: 30\n")
	mustWrite(t, people(noState), peopleYAML(ten[:1]...))
	mustRun(t, exitOK, "plan", "--config", noState)
	if _, stderr := mustRun(t, exitError, "sync", "--config", noState, "--accept-source-drop", "people"); !strings.HasPrefix(lastLine(stderr), "ptsync sync: --accept-source-drop needs state.dir") {
		t.Errorf("--accept-source-drop without a state: %q", lastLine(stderr))
	}
}

func TestDeleteGraceAcrossRuns(t *testing.T) {
	emu := newAccount(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	clk := setClock(t, t0)
	const grace = 72 * time.Hour
	// No shrink check: this small directory loses a third at a time.
	cfg := writeConfig(t, emu.URL(), "users:\n  delete: true\n  delete_grace: 72h\nsafety:\n  max_source_drop_percent: 0\n"+stateExtra(t.TempDir()))
	directory := func(ids ...string) { mustWrite(t, people(cfg), peopleYAML(ids...)) }
	directory("ada", "bob", "cat")
	mustRun(t, exitOK, "sync", "--config", cfg)

	// bob leaves: taken out of the team now, deleted 72h after the first
	// healthy run that found him missing.
	clk.set(at(1))
	directory("ada", "cat")
	stdout, _ := mustRun(t, exitOK, "sync", "--config", cfg)
	bobPending := pendingLine("bob@example.com", at(1), grace)
	if !strings.Contains(stdout, "\nPending deletes (users.delete_grace: not changes of this run):\n"+bobPending) {
		t.Errorf("sync does not show bob pending:\n%s", stdout)
	}
	clk.set(at(50))
	if stdout, _ := mustRun(t, exitOK, "plan", "--config", cfg); stdout != "\nPending deletes (users.delete_grace: not changes of this run):\n"+bobPending+"\nNo changes; 1 pending delete.\n" {
		t.Errorf("plan 49h later:\n%s", stdout)
	}
	if got := userEmails(emu); !slices.Equal(got, []string{"ada@example.com", "bob@example.com", "cat@example.com"}) {
		t.Fatalf("users = %v: bob was deleted within the grace", got)
	}

	// cat leaves, but the run fails (every write refused), then a source
	// errors, then a dry run: none of them starts cat's clock.
	directory("ada")
	clk.set(at(51))
	editFile(t, cfg, emu.URL(), failingWrites(t, emu.URL()))
	mustRun(t, exitError, "sync", "--config", cfg)
	editFile(t, cfg, failingWritesURL(t, cfg), emu.URL())
	clk.set(at(52))
	mustWrite(t, people(cfg), "users:\n  - {id: ada, email: ada@example.com, nmae: Ada}\n")
	mustRun(t, exitError, "sync", "--config", cfg)
	directory("ada")
	clk.set(at(53))
	mustRun(t, exitOK, "sync", "--config", cfg, "--dry-run")
	clk.set(at(54))
	stdout, _ = mustRun(t, exitOK, "plan", "--config", cfg)
	if !strings.Contains(stdout, bobPending+pendingLine("cat@example.com", at(54), grace)) {
		t.Errorf("a failed run, a source error or a dry run moved a clock:\n%s", stdout)
	}
	mustRun(t, exitOK, "sync", "--config", cfg)
	clk.set(at(60))
	stdout, _ = mustRun(t, exitOK, "plan", "--config", cfg)
	if !strings.Contains(stdout, bobPending+pendingLine("cat@example.com", at(54), grace)) {
		t.Errorf("the healthy run did not start cat's clock:\n%s", stdout)
	}

	// The grace has passed for bob, not for cat.
	clk.set(at(73))
	stdout, _ = mustRun(t, exitOK, "sync", "--config", cfg)
	if !strings.Contains(stdout, "- user bob@example.com  # absent from every source since 2026-03-02T10:00:00Z, longer than users.delete_grace (72h)\n") {
		t.Errorf("bob's delete:\n%s", stdout)
	}
	if got := userEmails(emu); !slices.Equal(got, []string{"ada@example.com", "cat@example.com"}) {
		t.Errorf("users = %v, want bob deleted and cat kept", got)
	}

	// cat comes back within the grace and is forgotten: leaving again
	// starts the clock afresh.
	clk.set(at(80))
	directory("ada", "cat")
	if stdout, _ := mustRun(t, exitOK, "sync", "--config", cfg); strings.Contains(stdout, "Pending") {
		t.Errorf("cat is back, yet pending:\n%s", stdout)
	}
	clk.set(at(81))
	directory("ada")
	stdout, _ = mustRun(t, exitOK, "sync", "--config", cfg)
	if !strings.Contains(stdout, pendingLine("cat@example.com", at(81), grace)) {
		t.Errorf("cat left again: the clock must start over:\n%s", stdout)
	}
}

// failingWritesURL is the PagerTree URL cfg names (a failingWrites proxy).
func failingWritesURL(t *testing.T, cfg string) string {
	t.Helper()
	m := regexp.MustCompile(`url: (\S+)`).FindStringSubmatch(readFile(t, cfg))
	if m == nil {
		t.Fatalf("%s names no url", cfg)
	}
	return m[1]
}

func TestOwnershipWithState(t *testing.T) {
	emu := newAccount(t)
	clk := setClock(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	// Made by an earlier ptsync, before there was a state: its marker is
	// all that says it is ptsync's.
	legacy, err := emu.AddTeam(pagertree.Team{Name: "oncall-legacy", Description: "[managed by ptsync: source=people group=g0]"})
	if err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	cfg := writeConfig(t, emu.URL(), stateExtra(stateDir)+"safety:\n  max_source_drop_percent: 0\n")
	editFile(t, cfg, `match: "oncall-*"`+"\n", `match: "oncall-*"`+"\n    on_missing: delete\n")
	groups := func(ids ...string) {
		g := map[string]string{"g0": "oncall-legacy", "g1": "oncall-db", "g2": "oncall-web"}
		var b strings.Builder
		b.WriteString("users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n")
		for _, id := range ids {
			fmt.Fprintf(&b, "  - {id: %s, name: %s, members: [u1]}\n", id, g[id])
		}
		mustWrite(t, people(cfg), b.String())
	}
	groups("g0", "g1", "g2")

	// The first run with the new state directory takes the marked teams
	// it finds as ptsync's, once, and logs each.
	_, stderr := mustRun(t, exitOK, "sync", "--config", cfg)
	recorded := 0
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "first run with this state directory; recorded a team carrying ptsync's marker as ptsync's") {
			recorded++
			if !strings.Contains(line, `"team":"oncall-legacy"`) || !strings.Contains(line, `"id":"`+legacy.ID+`"`) {
				t.Errorf("the first-run log line names another team: %s", line)
			}
		}
	}
	if recorded != 1 {
		t.Errorf("%d first-run log lines, want 1 (oncall-legacy); stderr:\n%s", recorded, stderr)
	}

	// Someone types a marker into a team they made by hand, naming a
	// group that does not exist: with on_missing: delete, ptsync without a
	// state would delete it. It is a conflict now.
	hand, err := emu.AddTeam(pagertree.Team{Name: "Hand made", Description: "our rota\n[managed by ptsync: source=people group=g-nope]"})
	if err != nil {
		t.Fatal(err)
	}
	clk.set(clk.Now().Add(time.Hour))
	stdout, stderr := mustRun(t, exitOK, "sync", "--config", cfg)
	if !strings.Contains(stdout, "! team Hand made: team "+hand.ID+` carries ptsync's marker (source "people", group "g-nope"), but the state database (state.dir) has no record of ptsync creating or adopting it`) {
		t.Errorf("the hand-made team is not a conflict:\n%s", stdout)
	}
	if strings.Contains(stderr, "first run with this state directory") {
		t.Errorf("the second run recorded teams as a first run does")
	}
	names := teamNames(emu)
	if !slices.Contains(names, "Hand made") {
		t.Fatalf("the hand-made team was deleted: teams %v", names)
	}

	// Teams ptsync recorded, at the first run or by creating them, are
	// its own: their groups gone, on_missing deletes them.
	groups("g1")
	stdout, _ = mustRun(t, exitOK, "sync", "--config", cfg)
	for _, line := range []string{"- team oncall-legacy  # group", "- team oncall-web  # group"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("sync lacks %q:\n%s", line, stdout)
		}
	}
	if names := teamNames(emu); !slices.Equal(slices.Sorted(slices.Values(names)), []string{"Hand made", "oncall-db"}) {
		t.Errorf("teams = %v, want [Hand made oncall-db]", names)
	}
	ownedTeams := func() map[string]bool {
		t.Helper()
		db, err := state.Open(stateDir, state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		owned, initialized, err := db.OwnedTeams()
		if err != nil || !initialized {
			t.Fatalf("owned teams: initialized %t, %v", initialized, err)
		}
		return owned
	}
	dbTeam := teamNamed(t, emu, "oncall-db").ID
	if owned := ownedTeams(); len(owned) != 1 || !owned[dbTeam] {
		t.Errorf("owned teams = %v, want only oncall-db's (%s)", owned, dbTeam)
	}

	// A recorded team someone deletes by hand is forgotten: its id could
	// come back on a team ptsync never made.
	client, err := pagertree.New(pagertree.Config{URL: emu.URL(), Username: "admin@example.com", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteTeam(t.Context(), dbTeam); err != nil {
		t.Fatal(err)
	}
	_, stderr = mustRun(t, exitOK, "sync", "--config", cfg)
	if !regexp.MustCompile(`"msg":"state: forgot teams ptsync had recorded that PagerTree no longer has","run_id":"\w+","ids":\["` + dbTeam + `"\]`).MatchString(stderr) {
		t.Errorf("no log line of the forgotten team:\n%s", stderr)
	}
	if owned := ownedTeams(); owned[dbTeam] || len(owned) != 1 {
		t.Errorf("owned teams = %v: want the recreated oncall-db only, not the deleted %s", owned, dbTeam)
	}
}

func TestHistoryAndReport(t *testing.T) {
	emu := newAccount(t)
	clk := setClock(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	stateDir := t.TempDir()
	cfg := writeConfig(t, emu.URL(), stateExtra(stateDir))

	if stdout, _ := mustRun(t, exitOK, "history", "--config", cfg); stdout != "No runs recorded in "+stateDir+" yet.\n" {
		t.Errorf("history of nothing: %q", stdout)
	}
	// plan records nothing; sync, a dry run and a failed run do.
	mustRun(t, exitOK, "plan", "--config", cfg)
	mustRun(t, exitOK, "sync", "--config", cfg, "--dry-run")
	clk.set(clk.Now().Add(time.Minute))
	mustRun(t, exitOK, "sync", "--config", cfg)
	clk.set(clk.Now().Add(time.Minute))
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, nmae: Ada}\n")
	mustRun(t, exitError, "sync", "--config", cfg)

	stdout, _ := mustRun(t, exitOK, "history", "--config", cfg, "--output", "json")
	var doc struct {
		Runs []struct {
			RunID   string         `json:"run_id"`
			Command string         `json:"command"`
			DryRun  bool           `json:"dry_run"`
			Started time.Time      `json:"started"`
			Result  string         `json:"result"`
			Counts  map[string]int `json:"counts"`
			Error   string         `json:"error"`
			Sources map[string]struct {
				Users, Groups int
			} `json:"sources"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("history --output json: %v\n%s", err, stdout)
	}
	if len(doc.Runs) != 3 {
		t.Fatalf("%d runs, want 3 (plan records none):\n%s", len(doc.Runs), stdout)
	}
	failed, synced, dry := doc.Runs[0], doc.Runs[1], doc.Runs[2]
	if failed.Result != "error" || !strings.Contains(failed.Error, `unknown key "nmae"`) || failed.Command != "ptsync sync --config "+cfg {
		t.Errorf("newest run = %+v, want the failed sync", failed)
	}
	if synced.Result != "ok" || synced.DryRun || synced.Counts["applied"] != 2 || synced.Sources["people"].Users != 1 ||
		!synced.Started.Equal(time.Date(2026, 3, 2, 9, 1, 0, 0, time.UTC)) {
		t.Errorf("second run = %+v, want the sync that applied 2", synced)
	}
	if dry.Result != "ok" || !dry.DryRun || dry.Counts["dry_run"] != 2 || dry.Command != "ptsync sync --config "+cfg+" --dry-run" {
		t.Errorf("oldest run = %+v, want the dry run", dry)
	}

	stdout, _ = mustRun(t, exitOK, "history", "--config", cfg)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	header := regexp.MustCompile(`^RUN ID +STARTED +DURATION +RESULT +APPLIED +FAILED +WITHHELD +CANCELLED +COMMAND$`)
	if len(lines) != 4 || !header.MatchString(lines[0]) {
		t.Fatalf("history table:\n%s", stdout)
	}
	for i, want := range []string{
		`^` + failed.RunID + ` +2026-03-02T09:02:00Z +\S+ +error +0 +0 +0 +0 +ptsync sync --config \S+$`,
		`^` + synced.RunID + ` +2026-03-02T09:01:00Z +\S+ +ok +2 +0 +0 +0 +ptsync sync --config \S+$`,
		`^` + dry.RunID + ` +2026-03-02T09:00:00Z +\S+ +ok \(dry run\) +0 +0 +0 +0 +ptsync sync --config \S+ --dry-run$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("history row %d = %q, want match %q", i+1, lines[i+1], want)
		}
	}
	if stdout, _ := mustRun(t, exitOK, "history", "--config", cfg, "-n", "1"); strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, failed.RunID) {
		t.Errorf("history -n 1:\n%s", stdout)
	}

	stdout, _ = mustRun(t, exitOK, "report", "--config", cfg, synced.RunID)
	want := "Run " + synced.RunID + ": ptsync sync --config " + cfg + "\n" +
		"Started 2026-03-02T09:01:00Z, took "
	if !strings.HasPrefix(stdout, want) {
		t.Errorf("report starts:\n%s\nwant:\n%s", stdout, want)
	}
	for _, line := range []string{
		"; result: ok\nSource people: 1 users, 1 groups\n",
		"\n+ user ada@example.com (Ada)  # applied; wanted from people\n+ team oncall-db: members +ada@example.com  # applied; group",
		"\nApplied 2 of 2 changes.\n",
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("report lacks %q:\n%s", line, stdout)
		}
	}
	stdout, _ = mustRun(t, exitOK, "report", "--config", cfg, failed.RunID)
	if !strings.Contains(stdout, "; result: error\nError: source \"people\": ") {
		t.Errorf("report of the failed run:\n%s", stdout)
	}
	stdout, _ = mustRun(t, exitOK, "report", "--config", cfg, "--output", "json", synced.RunID)
	if !json.Valid([]byte(stdout)) || !strings.Contains(stdout, `"outcome": "applied"`) {
		t.Errorf("report --output json:\n%s", stdout)
	}

	if _, stderr := mustRun(t, exitError, "report", "--config", cfg, "0000"); !strings.HasPrefix(stderr, "ptsync report: state: unknown run 0000: no such run in "+stateDir) ||
		!strings.HasSuffix(stderr, "; ptsync history lists the runs kept\n") {
		t.Errorf("an unknown run: %q", stderr)
	}
	noState := writeConfig(t, emu.URL(), "")
	if _, stderr := mustRun(t, exitError, "history", "--config", noState); stderr != "ptsync history: "+noState+" sets no state.dir, so no run is recorded: set state.dir to keep a run history\n" {
		t.Errorf("history without a state: %q", stderr)
	}
}

func TestSecondPtsyncOnAStateDirIsRefused(t *testing.T) {
	old := stateLockTimeout
	stateLockTimeout = 50 * time.Millisecond
	t.Cleanup(func() { stateLockTimeout = old })
	emu := newAccount(t)
	stateDir := t.TempDir()
	cfg := writeConfig(t, emu.URL(), daemonExtra+stateExtra(stateDir))
	held, err := state.Open(stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	want := "state directory is in use by another ptsync: " + stateDir + " (its lock was not released within 50ms); only one ptsync may use a state directory at a time: wait for the other one (the daemon, or a sync still running) to finish, or stop it\n"
	for _, command := range []string{"sync", "plan", "history", "run"} {
		code, stdout, stderr := runCmd(t, command, "--config", cfg)
		if code != exitError || stdout != "" || stderr != "ptsync "+command+": "+want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", command, code, stdout, stderr)
		}
	}
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("a refused run wrote to PagerTree")
	}
}

func TestDaemonRecordsEachCycle(t *testing.T) {
	emu := newAccount(t)
	stateDir := t.TempDir()
	cfg := writeConfig(t, emu.URL(), daemonExtra+stateExtra(stateDir))
	d := startDaemon(t, "--config", cfg)
	eventually(t, "the first cycle to end", func() bool { return len(d.logged("sync run finished")) == 1 })
	// The state is held for the daemon's life: a reload cannot move it.
	editFile(t, cfg, "state:\n  dir: "+stateDir+"\n", "state:\n  dir: "+stateDir+"\n  keep_reports: 9\n")
	d.sighup()
	if n := len(d.logged("state changed: restart ptsync to use the new state.dir and keep_reports; still using the state it started with")); n != 1 {
		t.Errorf("%d state-changed warnings on reload, want 1", n)
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("daemon exit %d", code)
	}
	stdout, _ := mustRun(t, exitOK, "history", "--config", cfg)
	row := regexp.MustCompile(` ok +2 +0 +0 +0 +ptsync run --config ` + regexp.QuoteMeta(cfg) + `$`)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !row.MatchString(lines[1]) {
		t.Errorf("history after one cycle:\n%s", stdout)
	}
}

// readFile returns the file at path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestLDAPSourceDropGate: a real slapd whose people are half deleted trips
// the shrink check before any write; --accept-source-drop lets the run
// through once.
func TestLDAPSourceDropGate(t *testing.T) {
	var ldif, members, deletes strings.Builder
	for i := range 10 {
		fmt.Fprintf(&ldif, "dn: uid=u%d,%s\nobjectClass: inetOrgPerson\nuid: u%d\ncn: U%d\nsn: U\ndisplayName: User %d\nmail: u%d@example.com\n\n", i, slapd.PeopleDN, i, i, i, i)
		fmt.Fprintf(&members, "member: uid=u%d,%s\n", i, slapd.PeopleDN)
		if i >= 5 {
			fmt.Fprintf(&deletes, "dn: uid=u%d,%s\nchangetype: delete\n\n", i, slapd.PeopleDN)
		}
	}
	fmt.Fprintf(&ldif, "dn: cn=oncall-db,%s\nobjectClass: groupOfNames\ncn: oncall-db\n%s\n", slapd.GroupsDN, members.String())
	dirServer := slapd.Start(t, slapd.Options{LDIF: ldif.String()})
	emu := newAccount(t)
	setClock(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "reader.pass"), slapd.ReaderPassword+"\n")
	cfg := writeLDAPConfig(t, dir, "ptsync.yaml", dirServer.URL, dirServer.CAFile, "reader.pass", emu.URL())
	mustWrite(t, cfg, readFile(t, cfg)+stateExtra(filepath.Join(dir, "state"))+"safety:\n  max_source_drop_percent: 25\n")

	mustRun(t, exitOK, "sync", "--config", cfg)
	dirServer.Add(t, deletes.String())
	emu.ResetStats()
	_, stderr := mustRun(t, exitError, "sync", "--config", cfg)
	want := `ptsync sync: source "corp" returned 5 users, 50% fewer than the 10 of its last good run (2026-03-02T09:00:00Z), beyond safety.max_source_drop_percent (25%); nothing was written: check the source's filter and base DN, or if the directory really shrank, accept its new size for one run with --accept-source-drop corp`
	if lastLine(stderr) != want {
		t.Errorf("last stderr line:\n%s\nwant\n%s", lastLine(stderr), want)
	}
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("the shrunken directory made %d write requests", st.WriteAttempts)
	}
	mustRun(t, exitOK, "sync", "--config", cfg, "--accept-source-drop", "corp")
	if got := userEmails(emu); !slices.Equal(got, []string{"u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com"}) {
		t.Errorf("users after the accepted run = %v", got)
	}
}

// TestDaemonSourceDrop: a cycle the shrink check stops leaves the daemon
// not ready, saying why; started with --accept-source-drop, the daemon's
// cycle goes through.
func TestDaemonSourceDrop(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), daemonExtra+stateExtra(t.TempDir()))
	ten := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	mustWrite(t, people(cfg), peopleYAML(ten...))
	mustRun(t, exitOK, "sync", "--config", cfg)
	mustWrite(t, people(cfg), peopleYAML(ten[:5]...))

	d := startDaemon(t, "--config", cfg)
	eventually(t, "the first cycle to end", func() bool { return len(d.logged("sync run failed; nothing was written")) == 1 })
	if status, body := d.get("/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, `failed: source "people" returned 5 users, 50% fewer than the 10 of its last good run`) {
		t.Errorf("/readyz = %d %q", status, body)
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("daemon exit %d", code)
	}

	d = startDaemon(t, "--config", cfg, "--accept-source-drop", "people")
	eventually(t, "/readyz to answer 200 after the accepted cycle", func() bool {
		status, _ := d.get("/readyz")
		return status == http.StatusOK
	})
	if n := len(d.logged("source shrank beyond safety.max_source_drop_percent; accepted for this run (--accept-source-drop)")); n != 1 {
		t.Errorf("%d acceptance log lines, want 1", n)
	}
}

// TestApplyRecordsItsRun: apply is a run of the history, and the teams it
// creates are ptsync's.
func TestApplyRecordsItsRun(t *testing.T) {
	emu := newAccount(t)
	stateDir := t.TempDir()
	cfg := writeConfig(t, emu.URL(), stateExtra(stateDir))
	planFile := filepath.Join(t.TempDir(), "plan.json")
	mustRun(t, exitOK, "plan", "--config", cfg, "--out", planFile)
	mustRun(t, exitOK, "apply", "--config", cfg, planFile)
	stdout, _ := mustRun(t, exitOK, "history", "--config", cfg)
	row := regexp.MustCompile(` ok +2 +0 +0 +0 +ptsync apply --config ` + regexp.QuoteMeta(cfg+" "+planFile) + `$`)
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 || !row.MatchString(lines[1]) {
		t.Errorf("history after apply:\n%s", stdout)
	}
	db, err := state.Open(stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if owned, _, err := db.OwnedTeams(); err != nil || !owned[teamNamed(t, emu, "oncall-db").ID] {
		t.Errorf("owned teams = %v, %v: want the team apply created", owned, err)
	}
}
