package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateRefusesAScheduleThatNeverFires: validate and run share the
// one check (config.ParseSchedule), so a config validate passes is one run
// starts with.
func TestValidateRefusesAScheduleThatNeverFires(t *testing.T) {
	t.Setenv("TEST_PT_PASSWORD", "password")
	cfg := writeConfig(t, "http://127.0.0.1:1", "schedule: \"0 0 30 2 *\"\n")
	code, stdout, stderr := runCmd(t, "validate", "--config", cfg)
	want := cfg + ":12: schedule: never fires (no such date in the next five years); check the day of month and month fields\n"
	if code != exitError || stdout != "" || stderr != want {
		t.Errorf("validate: exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, want)
	}
}

// TestPlanMetricsFileCountsTheRun: a plan's --metrics-file counts the plan
// as one run, a failed plan as a failure, and never a last success (a plan
// applies nothing).
func TestPlanMetricsFileCountsTheRun(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	metrics := filepath.Join(t.TempDir(), "plan.prom")
	read := func() string {
		t.Helper()
		data, err := os.ReadFile(metrics)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, tc := range []struct {
		name      string
		directory string
		code      int
		lines     []string
	}{
		{"a good plan", "users:\n  - {id: u1, email: ada@example.com}\ngroups: []\n", exitOK,
			[]string{`ptsync_sync_runs_total{result="success"} 1`, `ptsync_sync_runs_total{result="failure"} 0`}},
		{"a plan whose directory cannot be read", "users: [\n", exitError,
			[]string{`ptsync_sync_runs_total{result="success"} 0`, `ptsync_sync_runs_total{result="failure"} 1`}},
	} {
		mustWrite(t, people(cfg), tc.directory)
		if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--metrics-file", metrics); code != tc.code {
			t.Fatalf("%s: exit %d, want %d; stderr %q", tc.name, code, tc.code, stderr)
		}
		text := read()
		for _, line := range tc.lines {
			if !strings.Contains(text, "\n"+line+"\n") {
				t.Errorf("%s: the metrics file lacks %q:\n%s", tc.name, line, text)
			}
		}
		if strings.Contains(text, "ptsync_last_success_timestamp_seconds") {
			t.Errorf("%s: a plan wrote ptsync_last_success_timestamp_seconds", tc.name)
		}
	}
}

// admins_from_owners over a source whose groups have no owners is refused
// by validation, naming the rule and what to do instead.
func TestValidateAdminsFromOwnersOnAFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ptsync.yaml")
	if err := os.WriteFile(path, []byte(`pagertree: {api: v4, api_key: k}
sources:
  - {name: corp, type: file, file: {path: dir.yaml}}
teams:
  - {source: corp, match: "oncall-*", admins_from_owners: true}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "validate", "--config", path)
	if code != exitError || !strings.Contains(stderr, `teams[0].admins_from_owners: source "corp" reports no group owners: a file's groups have no owners`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
