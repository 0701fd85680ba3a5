package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
)

// hangingOkta is an Okta org that accepts every request and never answers
// it: a source that blocks until the run gives up on it.
func hangingOkta(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// writeHangingConfig writes a config whose one source is a hangingOkta,
// with cycle_timeout 300ms and extra appended.
func writeHangingConfig(t *testing.T, pagertreeURL, extra string) string {
	t.Helper()
	t.Setenv("TEST_OKTA_TOKEN", "okta-token")
	cfg := filepath.Join(t.TempDir(), "ptsync.yaml")
	mustWrite(t, cfg, `pagertree:
  url: `+pagertreeURL+`
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
sources:
  - name: okta
    type: okta
    okta:
      org_url: `+hangingOkta(t)+`
      api_token: ${TEST_OKTA_TOKEN}
teams:
  - source: okta
    match: "oncall-*"
cycle_timeout: 300ms
`+extra)
	return cfg
}

// TestOneShotCycleTimeout: plan and sync against a source that never
// answers end at cycle_timeout with one line saying so, write nothing,
// and count the failed run in --metrics-file.
func TestOneShotCycleTimeout(t *testing.T) {
	emu := newAccount(t)
	cfg := writeHangingConfig(t, emu.URL(), "")
	for _, command := range []string{"plan", "sync"} {
		t.Run(command, func(t *testing.T) {
			metrics := filepath.Join(t.TempDir(), "m.prom")
			code, stdout, stderr := runCmd(t, command, "--config", cfg, "--metrics-file", metrics)
			// The error is the last line, after the run's log.
			want := regexp.MustCompile(`\nptsync ` + command + `: cycle_timeout \(300ms\) reached: source "okta": okta: GET /users: context deadline exceeded\n$`)
			if code != exitError || stdout != "" || !want.MatchString(stderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and the last line matching %s", code, stdout, stderr, want)
			}
			data, err := os.ReadFile(metrics)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{`ptsync_sync_runs_total{result="failure"} 1`, `ptsync_sync_runs_total{result="success"} 0`} {
				if !strings.Contains(string(data), "\n"+line+"\n") {
					t.Errorf("--metrics-file lacks %q:\n%s", line, data)
				}
			}
		})
	}
	if n := emu.Stats().WriteAttempts; n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}

// TestRunCycleTimeoutCancels: a daemon cycle stuck on a source is
// cancelled at cycle_timeout, and /readyz says why.
func TestRunCycleTimeoutCancels(t *testing.T) {
	emu := newAccount(t)
	d := startDaemon(t, "--config", writeHangingConfig(t, emu.URL(), daemonExtra))
	var body string
	eventually(t, "the first cycle to end", func() bool {
		_, body = d.get("/readyz")
		return body != notReadyNoRunYet+"\n"
	})
	started := d.logged("sync run started")
	if len(started) != 1 {
		t.Fatalf("%d runs started, want 1", len(started))
	}
	want := "last sync run " + started[0]["run_id"].(string) + ` failed: cycle_timeout (300ms) reached: source "okta": okta: GET /users: context deadline exceeded` + "\n"
	if body != want {
		t.Errorf("/readyz = %q, want %q", body, want)
	}
	if n := d.metric(`ptsync_sync_runs_total{result="failure"}`); n != 1 {
		t.Errorf("failed runs = %v, want 1", n)
	}
	if n := emu.Stats().WriteAttempts; n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}

// fifoDirectory replaces the directory file next to cfg by a named pipe:
// opening it blocks, deaf to any cancel, until release writes the
// directory into it. That is a source stuck where ptsync cannot interrupt
// it, which only an honest /readyz reveals. release puts the plain file
// back first, so later cycles read it; it must be called once a cycle is
// stuck on the pipe.
func fifoDirectory(t *testing.T, cfg string) (release func()) {
	t.Helper()
	path := people(cfg)
	const directory = "users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n  - {id: g1, name: oncall-db, members: [u1]}\n"
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	var once stdsync.Once
	return func() {
		once.Do(func() {
			// The stuck reader has found the pipe already: moving it
			// aside leaves that open waiting on it.
			pipe := path + ".pipe"
			if err := os.Rename(path, pipe); err != nil {
				t.Errorf("moving the pipe: %v", err)
				return
			}
			mustWrite(t, path, directory)
			// Opening for writing waits for the reader: the cycle stuck
			// opening it.
			f, err := os.OpenFile(pipe, os.O_WRONLY, 0)
			if err != nil {
				t.Errorf("opening the pipe: %v", err)
				return
			}
			defer f.Close()
			if _, err := f.WriteString(directory); err != nil {
				t.Errorf("writing the pipe: %v", err)
			}
		})
	}
}

// TestRunReadyzOverrun: a cycle that cannot be interrupted makes /readyz
// say it has run past cycle_timeout, naming it; once it ends, its run is
// a failure whose changes were cancelled, not tried.
func TestRunReadyzOverrun(t *testing.T) {
	emu := newAccount(t)
	// Long enough for the PagerTree read, which the stuck source does not
	// hold up, to finish first.
	cfg := writeConfig(t, emu.URL(), daemonExtra+"cycle_timeout: 2s\n")
	release := fifoDirectory(t, cfg)
	d := startDaemon(t, "--config", cfg)
	t.Cleanup(release) // runs before the daemon's stop, which would wait for the stuck cycle

	eventually(t, "/readyz to report the overrun", func() bool {
		_, body := d.get("/readyz")
		return strings.Contains(body, "has run past cycle_timeout")
	})
	runID := d.logged("sync run started")[0]["run_id"].(string)
	if status, body := d.get("/readyz"); status != http.StatusServiceUnavailable || body != "sync run "+runID+" has run past cycle_timeout (2s)\n" {
		t.Errorf("/readyz = %d %q, want 503 naming run %s", status, body, runID)
	}

	release()
	want := "last sync run " + runID + " failed: run cancelled (cycle_timeout (2s) reached): 2 changes cancelled, 0 failed\n"
	var body string
	eventually(t, "the stuck cycle to end", func() bool {
		_, body = d.get("/readyz")
		return !strings.Contains(body, "has run past cycle_timeout")
	})
	if body != want {
		t.Errorf("/readyz = %q, want %q", body, want)
	}
	if n := emu.Stats().WriteAttempts; n != 0 {
		t.Errorf("%d writes after the deadline, want none", n)
	}
	if n := len(d.logged("run cancelled: 2 changes not tried")); n != 1 {
		t.Errorf("%d \"run cancelled\" lines, want 1; log:\n%s", n, d.log)
	}
	for series, want := range map[string]float64{
		`ptsync_sync_runs_total{result="failure"}`:                         1,
		`ptsync_changes_total{kind="user",op="create",result="cancelled"}`: 1,
		`ptsync_changes_total{kind="team",op="create",result="cancelled"}`: 1,
		`ptsync_changes_total{kind="user",op="create",result="failed"}`:    0,
	} {
		if got := d.metric(series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestRunReadyzStale: after a success, cycles that neither succeed nor
// fail (stuck, each next one skipped) turn /readyz to 503 once three
// schedule intervals have passed, and the next success clears it.
func TestRunReadyzStale(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), "schedule: \"@every 1s\"\nmetrics:\n  listen: 127.0.0.1:0\n")
	d := startDaemon(t, "--config", cfg)
	eventually(t, "a first successful run", func() bool {
		status, _ := d.get("/readyz")
		return status == http.StatusOK
	})

	release := fifoDirectory(t, cfg)
	t.Cleanup(release)
	stale := regexp.MustCompile(`^no successful sync since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(3 × schedule\)\n$`)
	eventually(t, "/readyz to say no run has succeeded for 3 intervals", func() bool {
		status, body := d.get("/readyz")
		return status == http.StatusServiceUnavailable && stale.MatchString(body)
	})
	if n := d.metric(`ptsync_sync_runs_total{result="failure"}`); n != 0 {
		t.Errorf("failed runs = %v, want 0: the stuck cycle has not ended", n)
	}

	release()
	eventually(t, "/readyz to recover after the stuck cycle succeeds", func() bool {
		status, _ := d.get("/readyz")
		return status == http.StatusOK
	})
}
