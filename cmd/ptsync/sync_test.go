package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// newAccount starts an emulator for one test, with the credentials
// writeConfig's config logs in with.
func newAccount(t *testing.T) *pagertreetest.Server {
	t.Helper()
	emu := pagertreetest.NewServer(pagertreetest.Options{Username: "admin@example.com", Password: "password"})
	t.Cleanup(emu.Close)
	t.Setenv("TEST_PT_PASSWORD", "password")
	return emu
}

// people is the directory file next to a writeConfig config.
func people(cfg string) string { return filepath.Join(filepath.Dir(cfg), "people.yaml") }

func TestDemoRunsToCompletion(t *testing.T) {
	code, stdout, stderr := runCmd(t, "demo")
	if code != exitOK {
		t.Fatalf("demo exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("demo wrote to stderr: %q", stderr)
	}
	// The key lines (or their start), in the order the demo tells its story.
	want := []string{
		"1. Plan: what a first sync would do (nothing is written)",
		"Plan: 25 to create, 0 to update, 0 to delete.",
		"2. Sync: apply that plan",
		"Applied 25 of 25 changes.",
		"  Facilities  made by hand, left alone  Olivia",
		"3. The directory changes",
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
}

func TestPlanDetailedExitCode(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")

	code, stdout, stderr := runCmd(t, "plan", "--config", cfg, "--detailed-exitcode")
	if code != exitChanges {
		t.Fatalf("plan with changes: exit %d, want %d; stderr %q", code, exitChanges, stderr)
	}
	if !strings.HasSuffix(stdout, "Plan: 2 to create, 0 to update, 0 to delete.\n") {
		t.Errorf("plan text = %q", stdout)
	}
	if code, _, _ := runCmd(t, "plan", "--config", cfg); code != exitOK {
		t.Errorf("plan with changes, no --detailed-exitcode: exit %d, want 0", code)
	}
	if emu.Stats().WriteAttempts != 0 {
		t.Fatalf("plan wrote to PagerTree")
	}
	if code, _, stderr := runCmd(t, "sync", "--config", cfg); code != exitOK {
		t.Fatalf("sync exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ = runCmd(t, "plan", "--config", cfg, "--detailed-exitcode")
	if code != exitOK || stdout != "No changes. PagerTree is in sync.\n" {
		t.Errorf("plan without changes: exit %d, stdout %q", code, stdout)
	}
}

func TestPlanJSON(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	code, stdout, stderr := runCmd(t, "plan", "--config", cfg, "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var doc struct {
		Changes  []map[string]any `json:"changes"`
		Summary  map[string]int   `json:"summary"`
		Withheld []map[string]any `json:"withheld"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout)
	}
	if want := map[string]int{"create": 2, "update": 0, "delete": 0}; !reflect.DeepEqual(doc.Summary, want) {
		t.Errorf("summary = %v, want %v", doc.Summary, want)
	}
	if doc.Withheld == nil || len(doc.Withheld) != 0 {
		t.Errorf("withheld = %v, want []", doc.Withheld)
	}
	if len(doc.Changes) != 2 {
		t.Fatalf("changes = %v", doc.Changes)
	}
	user, team := doc.Changes[0], doc.Changes[1]
	if user["op"] != "create" || user["kind"] != "user" || user["name"] != "ada@example.com" {
		t.Errorf("first change = %v, want create user ada@example.com", user)
	}
	if team["op"] != "create" || team["kind"] != "team" || team["name"] != "oncall-db" ||
		!reflect.DeepEqual(team["members_added"], []any{"ada@example.com"}) {
		t.Errorf("second change = %v, want create team oncall-db adding ada@example.com", team)
	}

	code, _, stderr = runCmd(t, "plan", "--config", cfg, "--output", "yaml")
	if code != exitError || stderr != "ptsync plan: --output \"yaml\": use text, json or markdown\n" {
		t.Errorf("bad --output: exit %d, stderr %q", code, stderr)
	}
}

func TestSyncDryRunWritesNothing(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	code, stdout, stderr := runCmd(t, "sync", "--config", cfg, "--dry-run")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("sync --dry-run sent %d write requests", st.WriteAttempts)
	}
	if !strings.HasSuffix(stdout, "Dry run: nothing applied (2 changes would be, 0 withheld).\n") {
		t.Errorf("stdout = %q", stdout)
	}
}

func TestSyncWithheldExitsThree(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	if code, _, stderr := runCmd(t, "sync", "--config", cfg); code != exitOK {
		t.Fatalf("first sync exit %d, stderr %q", code, stderr)
	}
	// Ada leaves the group: the team would be emptied, which is always
	// withheld.
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n  - {id: g1, name: oncall-db, members: []}\n")
	code, stdout, _ := runCmd(t, "sync", "--config", cfg)
	if code != exitWithheld {
		t.Fatalf("exit %d, want %d; stdout %q", code, exitWithheld, stdout)
	}
	if !strings.Contains(stdout, "would leave team oncall-db with no members") {
		t.Errorf("stdout does not say what was withheld: %q", stdout)
	}
	teams := emu.Teams()
	if len(teams) != 1 || len(teams[0].MemberUserIDs) != 1 {
		t.Errorf("the team was emptied: %+v", teams)
	}
	if code, _, _ := runCmd(t, "sync", "--config", cfg, "--allow-destructive"); code != exitOK {
		t.Errorf("--allow-destructive: exit %d", code)
	}
	if teams := emu.Teams(); len(teams[0].MemberUserIDs) != 0 {
		t.Errorf("--allow-destructive did not empty the team: %+v", teams)
	}
}

func TestSourceErrorWritesNothing(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, nmae: Ada}\n")
	code, stdout, stderr := runCmd(t, "sync", "--config", cfg)
	if code != exitError || stdout != "" {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	want := `ptsync sync: source "people": ` + people(cfg) + `:2: unknown key "nmae" in a user (known keys: id, email, name, phone, disabled)`
	if line := lastLine(stderr); line != want {
		t.Errorf("last stderr line = %q, want %q", line, want)
	}
	// PagerTree is read while the sources are fetched, so a login or a
	// listing may have gone out before the source failed; nothing is
	// written.
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("PagerTree got %d write requests: %v", st.WriteAttempts, st.Requests)
	}
}

func TestApplySavedPlan(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	planFile := filepath.Join(t.TempDir(), "plan.json")

	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", planFile); code != exitOK {
		t.Fatalf("plan --out: exit %d, stderr %q", code, stderr)
	}
	if _, err := emu.AddUser(pagertree.User{Name: "Walk In", Email: "walkin@example.com"}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCmd(t, "apply", "--config", cfg, planFile)
	if code != exitError || stdout != "" {
		t.Fatalf("stale plan: exit %d, stdout %q", code, stdout)
	}
	if line := lastLine(stderr); !strings.HasPrefix(line, "ptsync apply: "+planFile+": PagerTree changed since the plan was made (plan sha256:") ||
		!strings.HasSuffix(line, "): make a new plan with ptsync plan --out") {
		t.Errorf("stale plan error = %q", line)
	}
	if emu.Stats().WriteAttempts != 0 {
		t.Fatalf("a refused plan wrote to PagerTree")
	}

	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", planFile); code != exitOK {
		t.Fatalf("plan --out: exit %d, stderr %q", code, stderr)
	}
	// Flags may follow the plan file too.
	code, stdout, stderr = runCmd(t, "apply", planFile, "--config", cfg)
	if code != exitOK || !strings.HasSuffix(stdout, "Applied 2 of 2 changes.\n") {
		t.Fatalf("fresh plan: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, _, _ := runCmd(t, "plan", "--config", cfg, "--detailed-exitcode"); code != exitOK {
		t.Errorf("plan after apply: exit %d, want 0 (in sync)", code)
	}

	code, _, stderr = runCmd(t, "apply", "--config", cfg)
	if code != exitError || !strings.Contains(stderr, "missing PLAN.json") {
		t.Errorf("no plan file: exit %d, stderr %q", code, stderr)
	}
}

func TestEveryLogLineCarriesTheRunID(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "log:\n  level: debug\n  format: json\n")
	code, _, stderr := runCmd(t, "sync", "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	ids := map[string]int{}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		lines++
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		id, _ := entry["run_id"].(string)
		ids[id]++
		if strings.Contains(sc.Text(), "password") {
			t.Errorf("log line mentions the password: %q", sc.Text())
		}
	}
	if len(ids) != 1 || ids[""] != 0 || lines < 5 {
		t.Errorf("run ids over %d log lines = %v, want one id on every line", lines, ids)
	}
}

func TestExplainCommand(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	code, stdout, stderr := runCmd(t, "explain", "--config", cfg, "ada@example.com")
	if code != exitOK || !strings.Contains(stdout, "ada@example.com") {
		t.Errorf("explain: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if emu.Stats().WriteAttempts != 0 {
		t.Error("explain wrote to PagerTree")
	}
	code, _, stderr = runCmd(t, "explain", "--config", cfg)
	if code != exitError || !strings.Contains(stderr, "missing EMAIL or TEAM") {
		t.Errorf("explain without a query: exit %d, stderr %q", code, stderr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
