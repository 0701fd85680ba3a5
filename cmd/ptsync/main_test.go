package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// runCmd runs one command line and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTopLevel(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"no command", nil, exitError, `^$`, `usage: ptsync COMMAND`},
		{"help", []string{"help"}, exitOK, `^$`, `(?s)commands:.*demo.*validate`},
		{"unknown command", []string{"frobnicate"}, exitError, `^$`, `^ptsync: unknown command "frobnicate" \(run 'ptsync help' for the list\)\n$`},
		{"version", []string{"version"}, exitOK, `^ptsync dev \(commit \S+, go1\.\d+.*\)\n$`, `^$`},
		{"run with an argument", []string{"run", "now"}, exitError, `^$`, `^ptsync run: unexpected argument "now"\n$`},
		{"bad flag", []string{"version", "--nope"}, exitError, `^$`, `flag provided but not defined: -nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout = %q, want match %q", stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("stderr = %q, want match %q", stderr, tt.stderr)
			}
		})
	}
}

// writeConfig writes a config with one file source and returns its path.
func writeConfig(t *testing.T, pagertreeURL, extra string) string {
	t.Helper()
	dir := t.TempDir()
	dirFile := filepath.Join(dir, "people.yaml")
	mustWrite(t, dirFile, `users:
  - {id: u1, email: ada@example.com, name: Ada}
groups:
  - {id: g1, name: oncall-db, members: [u1]}
`)
	cfgFile := filepath.Join(dir, "ptsync.yaml")
	mustWrite(t, cfgFile, `pagertree:
  url: `+pagertreeURL+`
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
sources:
  - name: people
    type: file
    file: {path: `+dirFile+`}
teams:
  - source: people
    match: "oncall-*"
`+extra)
	return cfgFile
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	t.Setenv("TEST_PT_PASSWORD", "password")
	good := writeConfig(t, "http://127.0.0.1:1", "")
	code, stdout, stderr := runCmd(t, "validate", "--config", good)
	if code != exitOK || stdout != good+": valid (1 sources, 1 team rules)\n" || stderr != "" {
		t.Errorf("valid config: code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	bad := writeConfig(t, "http://127.0.0.1:1", "log:\n  levle: debug\n  format: xml\n")
	code, stdout, stderr = runCmd(t, "validate", "--config", bad)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != exitError || stdout != "" || len(lines) != 2 {
		t.Fatalf("invalid config: code %d, stdout %q, want 2 problem lines, got stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{bad + `:\d+: log\.levle: .*unknown`, bad + `:\d+: log\.format: `} {
		if !regexp.MustCompile(want).MatchString(stderr) {
			t.Errorf("stderr %q does not match %q", stderr, want)
		}
	}

	code, _, stderr = runCmd(t, "validate", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != exitError || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("missing file: code %d, stderr %q", code, stderr)
	}
}

func TestValidateConnect(t *testing.T) {
	emu := pagertreetest.NewServer(pagertreetest.Options{Username: "admin@example.com", Password: "password"})
	defer emu.Close()

	t.Setenv("TEST_PT_PASSWORD", "password")
	code, stdout, stderr := runCmd(t, "validate", "--connect", "--config", writeConfig(t, emu.URL(), ""))
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"ok   pagertree " + emu.URL() + ": logged in", "ok   source people (file): fetched 1 users, 1 groups"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout %q lacks %q", stdout, want)
		}
	}
	if w := emu.Stats().Writes; w != 0 {
		t.Errorf("validate --connect made %d writes", w)
	}

	t.Setenv("TEST_PT_PASSWORD", "wrong-secret")
	code, _, stderr = runCmd(t, "validate", "--connect", "--config", writeConfig(t, emu.URL(), ""))
	if code != exitError || !strings.Contains(stderr, "FAIL pagertree "+emu.URL()) {
		t.Errorf("wrong password: code %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "wrong-secret") {
		t.Errorf("the password leaked into the error: %q", stderr)
	}
}

func TestEmulatorCommand(t *testing.T) {
	fixture := filepath.Join(t.TempDir(), "fixture.yaml")
	mustWrite(t, fixture, "users:\n  - {name: Owner, email: owner@example.com, roles: {admin: true}}\nteams:\n  - {name: Ops}\n")

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "--listen", "127.0.0.1:0", "--load", fixture}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the banner: %v", err)
	}
	m := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("banner %q names no address", line)
	}
	go io.Copy(io.Discard, pr)

	login, err := http.Post(m[1]+"/public/login", "application/json", strings.NewReader(`{"username":"admin@example.com","password":"password"}`))
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	if login.StatusCode != http.StatusOK {
		t.Errorf("login status %d", login.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("emulator exited %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("emulator did not stop after its context was cancelled")
	}

	code, _, stderr := runCmd(t, "emulator", "--listen", "127.0.0.1:0", "--load", filepath.Join(t.TempDir(), "none.yaml"))
	if code != exitError || !strings.Contains(stderr, "--load") {
		t.Errorf("missing fixture: code %d, stderr %q", code, stderr)
	}
}
