package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonServesTheStatusPage: with state.dir, ptsync run serves the
// status page at / from the state it holds; a config that would open the
// page without auth on every interface does not start.
func TestDaemonServesTheStatusPage(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), daemonExtra+stateExtra(filepath.Join(t.TempDir(), "state")))
	d := startDaemon(t, "--config", cfg)
	eventually(t, "the first run on the status page", func() bool {
		resp, err := http.Get("http://" + d.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `<tr id="run-`) &&
			strings.Contains(string(body), "Ready: the last sync run did not fail.")
	})

	exposed := writeConfig(t, emu.URL(), "schedule: \"@every 24h\"\nmetrics:\n  listen: \":0\"\n"+stateExtra(filepath.Join(t.TempDir(), "state")))
	code, _, stderr := runCmd(t, "run", "--config", exposed)
	if code != exitError || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("a page open on every interface: exit %d, stderr %q; want 1 and a refusal", code, stderr)
	}
}
