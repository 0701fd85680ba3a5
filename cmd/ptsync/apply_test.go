package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sources/registry"
	"github.com/ptsync/ptsync/sync"
)

// editPlanFile edits a saved plan as JSON, then fixes its summary up to
// match its changes, as someone who wants the edited file to load would.
func editPlanFile(t *testing.T, path string, edit func(doc map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	summary := map[string]int{"create": 0, "update": 0, "delete": 0}
	for _, c := range doc["changes"].([]any) {
		summary[c.(map[string]any)["op"].(string)]++
	}
	doc["summary"] = summary
	if data, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, string(data))
}

// TestApplyRefusesAnEditedPlan is the edited plan: the account
// owner deleted, a hand-made team deleted, an outside address created and
// made the managed team's only member, the summary fixed up. apply
// refuses all of it, naming each change, and writes nothing.
func TestApplyRefusesAnEditedPlan(t *testing.T) {
	emu := newAccount(t)
	owner, err := emu.AddUser(pagertree.User{Name: "Owner", Email: "owner@example.com", Roles: pagertree.Roles{Admin: true}})
	if err != nil {
		t.Fatal(err)
	}
	handMade, err := emu.AddTeam(pagertree.Team{Name: "Facilities", Description: "made by hand", MemberUserIDs: []string{owner.ID}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, emu.URL(), "")
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", planFile); code != exitOK {
		t.Fatalf("plan --out: exit %d, stderr %q", code, stderr)
	}
	editPlanFile(t, planFile, func(doc map[string]any) {
		changes := doc["changes"].([]any)
		team := changes[1].(map[string]any) // + team oncall-db, members +ada
		team["members"] = []string{"mallory@evil.test"}
		team["members_added"] = []string{"mallory@evil.test"}
		doc["changes"] = append(changes,
			map[string]any{"op": "create", "kind": "user", "name": "mallory@evil.test", "user_name": "Mallory"},
			map[string]any{"op": "delete", "kind": "user", "name": "owner@example.com", "id": owner.ID, "destructive": 1},
			map[string]any{"op": "delete", "kind": "team", "name": "Facilities", "id": handMade.ID, "destructive": 1})
	})
	emu.ResetStats()

	code, stdout, stderr := runCmd(t, "apply", "--config", cfg, planFile)
	if code != exitError || stdout != "" {
		t.Fatalf("edited plan: exit %d, stdout %q", code, stdout)
	}
	want := "ptsync apply: " + planFile + ": saved plan refused; nothing was written: " +
		"+ team oncall-db: differs from a fresh plan's in members, members_added; " +
		"+ user mallory@evil.test: not in a fresh plan; " +
		"- user owner@example.com: not in a fresh plan; " +
		"- team Facilities: not in a fresh plan; " +
		"a saved change must be one a fresh plan makes: PagerTree or the directory changed since, or the file was edited; make a new plan with ptsync plan --out"
	if line := lastLine(stderr); line != want {
		t.Errorf("error line =\n%s\nwant\n%s", line, want)
	}
	if st := emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("an edited plan sent %d write requests", st.WriteAttempts)
	}
}

// TestApplyRefusesAPlanMadeElsewhere: a plan is applied only against the
// PagerTree and with the configuration it was made with. Two empty
// accounts look alike to the fingerprint; the plan's origin tells them
// apart.
func TestApplyRefusesAPlanMadeElsewhere(t *testing.T) {
	here := newAccount(t)
	cfg := writeConfig(t, here.URL(), "")
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", planFile); code != exitOK {
		t.Fatalf("plan --out: exit %d, stderr %q", code, stderr)
	}

	t.Run("another PagerTree", func(t *testing.T) {
		there := newAccount(t)
		code, _, stderr := runCmd(t, "apply", "--config", writeConfig(t, there.URL(), ""), planFile)
		want := "ptsync apply: " + planFile + ": saved plan refused; nothing was written: it was made for PagerTree " + here.URL() +
			", and this configuration's pagertree.url is " + there.URL() + "; apply it with the configuration it was made with, or make a new plan"
		if code != exitError || lastLine(stderr) != want {
			t.Errorf("exit %d, error line\n%s\nwant\n%s", code, lastLine(stderr), want)
		}
		if n := len(there.Stats().Requests); n != 0 {
			t.Errorf("the other PagerTree got %d requests", n)
		}
	})

	t.Run("another configuration", func(t *testing.T) {
		other := writeConfig(t, here.URL(), "users:\n  scope: all\n")
		code, _, stderr := runCmd(t, "apply", "--config", other, planFile)
		if code != exitError || !strings.Contains(lastLine(stderr), "saved plan refused; nothing was written: it was made with another configuration (sha256:") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("no origin", func(t *testing.T) {
		old := filepath.Join(t.TempDir(), "old.json")
		data, err := os.ReadFile(planFile)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, old, string(data))
		editPlanFile(t, old, func(doc map[string]any) { delete(doc, "origin") })
		code, _, stderr := runCmd(t, "apply", "--config", cfg, old)
		if code != exitError || !strings.HasSuffix(lastLine(stderr), "it does not say which PagerTree and configuration it was made for; make a new plan with ptsync plan --out") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	if st := here.Stats(); st.WriteAttempts != 0 {
		t.Fatalf("refused plans sent %d write requests", st.WriteAttempts)
	}
	code, stdout, stderr := runCmd(t, "apply", "--config", cfg, planFile)
	if code != exitOK || !strings.HasSuffix(stdout, "Applied 2 of 2 changes.\n") {
		t.Errorf("where it was made: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestConfigHash: the hash covers the effective configuration but no
// secret, so a rotated password keeps a plan valid and the hash says
// nothing of it.
func TestConfigHash(t *testing.T) {
	hash := func(t *testing.T, path, password string) string {
		t.Helper()
		t.Setenv("TEST_PT_PASSWORD", password)
		cfg, err := config.Load(path, registry.Builtin().ConfigTypes())
		if err != nil {
			t.Fatal(err)
		}
		h, err := configHash(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
			t.Fatalf("hash %q", h)
		}
		return h
	}
	path := writeConfig(t, "http://127.0.0.1:1", "")
	base := hash(t, path, "password")
	if got := hash(t, path, "rotated"); got != base {
		t.Error("another password changed the hash")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, string(data)+"users:\n  protect: [boss@example.com]\n")
	if got := hash(t, path, "password"); got == base {
		t.Error("users.protect did not change the hash")
	}
}

// TestSavePlanReplacesTheFileWhole: savePlan writes a new file and renames
// it over the old one, so a reader of the old file never sees it cut short
// or mixed, the file ends 0600 even where the old one was readable by
// others, and no temporary file is left behind.
func TestSavePlanReplacesTheFileWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.json")
	old := `{"an": "older plan"}` + "\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", path); code != exitOK {
		t.Fatalf("plan --out: exit %d, stderr %q", code, stderr)
	}
	if got, err := io.ReadAll(reader); err != nil || string(got) != old {
		t.Errorf("the old file, open before the save, reads %q (%v): it was rewritten in place", got, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), `"config_hash": "sha256:`) {
		t.Errorf("the new plan: %v\n%s", err, data)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want the plan only", entries, err)
	}

	if err := savePlan(filepath.Join(dir, "missing", "plan.json"), sync.Plan{}); err == nil || !strings.HasPrefix(err.Error(), "--out: ") {
		t.Errorf("a plan into a missing directory: error %v", err)
	}
}

// TestPlanSaysWhatTheSourcesSkipped: a directory entry left out (no email,
// an email twice) is counted per source and reason in every plan format.
func TestPlanSaysWhatTheSourcesSkipped(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	mustWrite(t, people(cfg), `users:
  - {id: u1, email: ada@example.com, name: Ada}
  - {id: u2, email: "", name: Nobody}
  - {id: u3, email: ADA@example.com, name: Ada Again}
groups:
  - {id: g1, name: oncall-db, members: [u1]}
`)
	code, stdout, stderr := runCmd(t, "plan", "--config", cfg)
	if code != exitOK {
		t.Fatalf("plan: exit %d, stderr %q", code, stderr)
	}
	if want := "\n\nSource people skipped 2 entries: duplicate_email 1, no_email 1.\n\nPlan: 2 to create, 0 to update, 0 to delete.\n"; !strings.HasSuffix(stdout, want) {
		t.Errorf("text plan = %q, want it to end with %q", stdout, want)
	}
	_, stdout, _ = runCmd(t, "plan", "--config", cfg, "--output", "markdown")
	if want := "\n- Source people skipped 2 entries: duplicate_email 1, no_email 1.\n"; !strings.Contains(stdout, want) {
		t.Errorf("markdown plan = %q, want it to hold %q", stdout, want)
	}
	_, stdout, _ = runCmd(t, "plan", "--config", cfg, "--output", "json")
	var doc struct {
		Skipped map[string]map[string]int `json:"skipped"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if want := map[string]map[string]int{"people": {"duplicate_email": 1, "no_email": 1}}; !reflect.DeepEqual(doc.Skipped, want) {
		t.Errorf("JSON skipped = %v, want %v", doc.Skipped, want)
	}
}

// TestLogLinesEscapeControlCharacters: a directory name with a bidi
// override, a C1 control and a newline reaches the console log escaped,
// never raw (zap itself leaves the first two as they are).
func TestLogLinesEscapeControlCharacters(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "log:\n  level: info\n  format: console\n")
	if code, _, stderr := runCmd(t, "sync", "--config", cfg); code != exitOK {
		t.Fatalf("first sync: exit %d, stderr %q", code, stderr)
	}
	mustWrite(t, people(cfg), `users:
  - {id: u1, email: ada@example.com, name: "Ada\u202e\u009b2J\nFake"}
groups:
  - {id: g1, name: oncall-db, members: [u1]}
`)
	code, stdout, stderr := runCmd(t, "sync", "--config", cfg)
	if code != exitOK {
		t.Fatalf("second sync: exit %d, stderr %q", code, stderr)
	}
	if i := strings.IndexAny(stderr, "\u202e\u009b"); i >= 0 {
		t.Errorf("raw control character in the log at %d:\n%s", i, stderr)
	}
	if want := `Ada\\u202e\\u009b2J\\nFake`; !strings.Contains(stderr, want) {
		t.Errorf("the log lacks the escaped name %s:\n%s", want, stderr)
	}
	if want := `~ user ada@example.com: name "Ada" -> "Ada\u202e\u009b2J\nFake"`; !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %s:\n%s", want, stdout)
	}
}

// TestApplyKeepsThePlansSafetyLimits: apply plans afresh under the saved
// plan's --allow-destructive: a plan made without it keeps withholding
// the emptying of a team (exit 3), one made with it empties the team.
func TestApplyKeepsThePlansSafetyLimits(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	if code, _, stderr := runCmd(t, "sync", "--config", cfg); code != exitOK {
		t.Fatalf("first sync exit %d, stderr %q", code, stderr)
	}
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n  - {id: g1, name: oncall-db, members: []}\n")
	dir := t.TempDir()
	limited, allowed := filepath.Join(dir, "limited.json"), filepath.Join(dir, "allowed.json")
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--out", limited); code != exitOK {
		t.Fatalf("plan: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--allow-destructive", "--out", allowed); code != exitOK {
		t.Fatalf("plan --allow-destructive: exit %d, stderr %q", code, stderr)
	}

	code, stdout, stderr := runCmd(t, "apply", "--config", cfg, limited)
	if code != exitWithheld || !strings.Contains(stdout, "would leave team oncall-db with no members") {
		t.Fatalf("the plan made within the limits: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if teams := emu.Teams(); len(teams[0].MemberUserIDs) != 1 {
		t.Fatalf("the team was emptied: %+v", teams)
	}
	code, stdout, stderr = runCmd(t, "apply", "--config", cfg, allowed)
	if code != exitOK || !strings.HasSuffix(stdout, "Applied 1 of 1 changes.\n") {
		t.Fatalf("the plan made with --allow-destructive: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if teams := emu.Teams(); len(teams[0].MemberUserIDs) != 0 {
		t.Errorf("the team was not emptied: %+v", teams)
	}
}
