package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// TestWatchModeSyncsEditsBetweenSchedules: with a schedule that never
// fires during the test, only the file's change feed can bring an edit to
// PagerTree; the feed's cookie survives a restart.
func TestWatchModeSyncsEditsBetweenSchedules(t *testing.T) {
	acct := newGatedAccount(t)
	acct.release()
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := writeConfig(t, acct.url, daemonExtra+"watch:\n  enabled: true\n  debounce: 100ms\n  max_delay: 1s\nstate:\n  dir: "+stateDir+"\n")
	people := filepath.Join(filepath.Dir(cfg), "people.yaml")
	d := startDaemon(t, "--config", cfg)
	eventually(t, "the feed to be established", func() bool {
		return d.metric(`ptsync_watch_connected{source="people"}`) == 1
	})
	eventually(t, "the first sync", func() bool { return len(acct.emu.Teams()) == 1 })
	// The feed started without a cookie, so a full sync follows the first
	// one; after it, the edit below is a scoped sync's.
	eventually(t, "the sync after the feed started", func() bool {
		return d.metric(`ptsync_sync_runs_total{result="success"}`) >= 2
	})
	acct.emu.ResetStats()

	editFile(t, people, "  - {id: u1, email: ada@example.com, name: Ada}\n",
		"  - {id: u1, email: ada@example.com, name: Ada}\n  - {id: u2, email: bo@example.com, name: Bo}\n")
	editFile(t, people, "members: [u1]", "members: [u1, u2]")
	eventually(t, "the edit to reach PagerTree", func() bool {
		teams := acct.emu.Teams()
		return len(teams) == 1 && len(teams[0].MemberUserIDs) == 2
	})
	eventually(t, "the watch metrics", func() bool {
		return d.metric(`ptsync_watch_events_total{source="people"}`) >= 1 && d.metric("ptsync_propagation_seconds_count") >= 1
	})
	if runs := d.logged("watch: syncing directory changes"); len(runs) == 0 {
		t.Error("no sync was logged as started by watch mode")
	}
	if len(d.logged("scoped sync run started")) == 0 {
		t.Errorf("the edit was not synced by a scoped sync:\n%s", d.log)
	}
	stats := acct.emu.Stats()
	if lists := stats.Requests["GET /user"] + stats.Requests["GET /team"]; lists != 0 {
		t.Errorf("the scoped sync listed the account (%d list requests): %v", lists, stats.Requests)
	}
	if code := d.stop(); code != exitOK {
		t.Fatalf("stop: exit %d", code)
	}

	db, err := state.OpenReadOnly(stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cookies, err := db.FeedCookies()
	db.Close()
	if err != nil || len(cookies["people"]) == 0 {
		t.Fatalf("feed cookies after a synced change: %q, %v; want the people feed's", cookies, err)
	}

	// A restart resumes the feed from the stored cookie.
	d = startDaemon(t, "--config", cfg)
	eventually(t, "the feed to be established again", func() bool {
		for _, line := range d.logged("watch: change feed established") {
			if line["resumed"] == true {
				return true
			}
		}
		return false
	})
	if !strings.Contains(d.log.String(), `"source":"people"`) {
		t.Errorf("feed log lines do not name the source:\n%s", d.log)
	}
}

// TestWatchCycleOfAReloadedConfigLeavesNoBaseline: a watch cycle that was
// running when the config was reloaded leaves no baseline, so the next
// watch cycle is a full one: a baseline (and the sources' memos in it) is
// only good for the config it was made with.
func TestWatchCycleOfAReloadedConfigLeavesNoBaseline(t *testing.T) {
	acct := newGatedAccount(t)
	acct.release()
	cfg := writeConfig(t, acct.url, daemonExtra+"watch:\n  enabled: true\n  debounce: 100ms\n  max_delay: 1s\n")
	people := filepath.Join(filepath.Dir(cfg), "people.yaml")
	d := startDaemon(t, "--config", cfg)
	eventually(t, "the first sync and the one after the feed started", func() bool {
		return d.metric(`ptsync_sync_runs_total{result="success"}`) >= 2
	})

	// A watch cycle held at PagerTree while the config is reloaded.
	acct.hold()
	editFile(t, people, "members: [u1]", "members: [u1, u9]")
	editFile(t, people, "  - {id: u1, email: ada@example.com, name: Ada}\n",
		"  - {id: u1, email: ada@example.com, name: Ada}\n  - {id: u9, email: cy@example.com, name: Cy}\n")
	acct.waitForRequest(t)
	editFile(t, cfg, "debounce: 100ms", "debounce: 150ms")
	d.sighup()
	acct.release()
	eventually(t, "the held cycle to succeed", func() bool {
		return d.metric(`ptsync_sync_runs_total{result="success"}`) >= 3
	})
	scoped := len(d.logged("scoped sync run started"))

	editFile(t, people, "name: Cy}", "name: Cy Young}")
	eventually(t, "the rename to reach PagerTree", func() bool {
		return slices.ContainsFunc(acct.emu.Users(), func(u pagertree.User) bool { return u.Name == "Cy Young" })
	})
	if n := len(d.logged("scoped sync run started")); n != scoped {
		t.Errorf("the watch cycle after the reload was scoped, from the baseline of the old config:\n%s", d.log)
	}
}

// validate --connect starts each change feed once watch mode is on: a feed
// that cannot start fails it, naming the source.
func TestValidateConnectChecksChangeFeeds(t *testing.T) {
	emu := pagertreetest.NewServer(pagertreetest.Options{Username: "admin@example.com", Password: "password"})
	defer emu.Close()
	t.Setenv("TEST_PT_PASSWORD", "password")
	cfg := writeConfig(t, emu.URL(), "watch:\n  enabled: true\n  debounce: 100ms\n")
	code, stdout, stderr := runCmd(t, "validate", "--connect", "--config", cfg)
	if code != exitOK || !strings.Contains(stdout, "ok   source people (file) change feed: established") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = runCmd(t, "validate", "--connect", "--config", writeConfig(t, emu.URL(), ""))
	if code != exitOK || strings.Contains(stdout, "change feed") {
		t.Errorf("without watch mode: exit %d, stdout %q; want no feed checked", code, stdout)
	}
}
