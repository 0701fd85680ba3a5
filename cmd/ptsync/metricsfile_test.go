package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/testenv"
)

// TestMetricsFile checks --metrics-file: the run's metrics land in a file
// node_exporter's textfile collector can read, for a good run and a failed
// one alike.
func TestMetricsFile(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "")
	dir := t.TempDir()

	read := func(path string) string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("metrics file: %v", err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(data))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
		return string(data)
	}
	has := func(text string, lines ...string) {
		t.Helper()
		for _, line := range lines {
			if !strings.Contains(text, "\n"+line+"\n") {
				t.Errorf("metrics lack %q:\n%s", line, text)
			}
		}
	}

	planFile := filepath.Join(dir, "plan.prom")
	if code, _, stderr := runCmd(t, "plan", "--config", cfg, "--metrics-file", planFile); code != exitOK {
		t.Fatalf("plan exit %d, stderr %q", code, stderr)
	}
	has(read(planFile),
		`ptsync_pending_changes{kind="team",op="create"} 1`,
		`ptsync_pending_changes{kind="user",op="create"} 1`,
		`ptsync_source_objects{kind="user",source="people"} 1`,
		`ptsync_pagertree_requests_total{code="200",method="GET",route="/user"} 1`,
	)

	syncFile := filepath.Join(dir, "sync.prom")
	if code, _, stderr := runCmd(t, "sync", "--config", cfg, "--metrics-file", syncFile); code != exitOK {
		t.Fatalf("sync exit %d, stderr %q", code, stderr)
	}
	text := read(syncFile)
	if !strings.Contains(text, "\nptsync_last_success_timestamp_seconds ") {
		t.Errorf("a successful sync's metrics lack ptsync_last_success_timestamp_seconds:\n%s", text)
	}
	has(text,
		`ptsync_sync_runs_total{result="success"} 1`,
		`ptsync_changes_total{kind="user",op="create",result="applied"} 1`,
		`ptsync_changes_total{kind="team",op="create",result="applied"} 1`,
		`ptsync_pagertree_requests_total{code="201",method="POST",route="/user"} 1`,
	)

	mustWrite(t, people(cfg), "users: [\n")
	if code, _, _ := runCmd(t, "sync", "--config", cfg, "--metrics-file", syncFile); code != exitError {
		t.Fatalf("sync of a broken directory: exit %d, want %d", code, exitError)
	}
	text = read(syncFile)
	has(text, `ptsync_sync_runs_total{result="failure"} 1`, `ptsync_sync_runs_total{result="success"} 0`)
	// A zero timestamp would read as "last success in 1970" and fire the
	// no-recent-success alert at once: a run that never succeeded omits it.
	if strings.Contains(text, "ptsync_last_success_timestamp_seconds") {
		t.Errorf("a failed run's metrics carry ptsync_last_success_timestamp_seconds:\n%s", text)
	}

	code, _, stderr := runCmd(t, "sync", "--config", cfg, "--metrics-file", filepath.Join(dir, "missing-dir", "m.prom"))
	if code != exitError || !strings.Contains(stderr, "--metrics-file") {
		t.Errorf("unwritable metrics file: exit %d, stderr %q", code, stderr)
	}
}
