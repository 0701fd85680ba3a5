package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/internal/testenv"
)

// runStatusCmd runs `ptsync status args...` (runStatus: main.go's table
// may not list it yet).
func runStatusCmd(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = runStatus(ctx, env{args: args, stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestStatusHashPassword(t *testing.T) {
	old := statusStdin
	t.Cleanup(func() { statusStdin = old })
	statusStdin = strings.NewReader("correct horse\n")
	code, stdout, stderr := runStatusCmd(t, context.Background(), "--hash-password")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	hash := strings.TrimSuffix(stdout, "\n")
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Errorf("the printed hash %q does not match the password: %v", hash, err)
	}
	if strings.Contains(stdout+stderr, "correct horse") {
		t.Error("the password was printed")
	}
	statusStdin = strings.NewReader("")
	if code, _, stderr := runStatusCmd(t, context.Background(), "--hash-password"); code != exitError || !strings.Contains(stderr, "no password on standard input") {
		t.Errorf("no password: exit %d, stderr %q", code, stderr)
	}
}

func TestStatusRefuses(t *testing.T) {
	emu := newAccount(t)
	dir := t.TempDir()
	withState := writeConfig(t, emu.URL(), stateExtra(dir))
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no state.dir", []string{"--config", writeConfig(t, emu.URL(), "")}, "state.dir is not set in"},
		{"every interface, no auth", []string{"--config", withState, "--listen", ":0"}, "not a loopback address"},
		{"another host, no auth", []string{"--config", withState, "--listen", "192.0.2.10:9464"}, "not a loopback address"},
		{"an argument", []string{"--config", withState, "now"}, `unexpected argument "now"`},
		{"a bad config", []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, "missing.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runStatusCmd(t, context.Background(), tt.args...)
			if code != exitError || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.stderr)
			}
		})
	}
}

// TestStatusServesTheStateDirectory: ptsync status serves the page of a
// state directory that cron's syncs write, without holding it: a sync
// runs while the page is up, and shows on it; while something holds the
// state, the page says so.
func TestStatusServesTheStateDirectory(t *testing.T) {
	emu := newAccount(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	cfg := writeConfig(t, emu.URL(), stateExtra(stateDir))
	mustRun(t, exitOK, "sync", "--config", cfg)

	ctx, cancel := context.WithCancel(context.Background())
	log := &testenv.Buffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- runStatus(ctx, env{args: []string{"--config", cfg, "--listen", "127.0.0.1:0"}, stdout: io.Discard, stderr: log})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exited:
			if code != exitOK {
				t.Errorf("ptsync status exited %d; its log:\n%s", code, log)
			}
		case <-time.After(patience):
			t.Errorf("ptsync status did not stop; its log:\n%s", log)
		}
	})
	var addr string
	eventually(t, "the status page to start", func() bool {
		for _, line := range strings.Split(log.String(), "\n") {
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "status page started" {
				addr = entry.Addr
				return true
			}
		}
		return false
	})
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, body := get()
	if status != http.StatusOK || strings.Count(body, `<tr id="run-`) != 1 || !strings.Contains(body, "served by <code>ptsync status</code>") {
		t.Fatalf("GET / = %d, want 200 and one run:\n%s", status, body)
	}
	// The page holds nothing: the next sync opens the state and records.
	mustRun(t, exitOK, "sync", "--config", cfg)
	if _, body := get(); strings.Count(body, `<tr id="run-`) != 2 {
		t.Errorf("after a second sync the page lists %d runs, want 2", strings.Count(body, `<tr id="run-`))
	}
	// While another ptsync holds the state, the page says so.
	db, err := state.Open(stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	status, body = get()
	db.Close()
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "The state is in use") {
		t.Errorf("while the state is held: GET / = %d, want 503 and a page saying so:\n%s", status, body)
	}
}
