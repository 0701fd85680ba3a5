package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/testenv"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// patience bounds every wait in these tests. It only catches a hang: no
// test asserts how fast anything happens.
const patience = 30 * time.Second

// daemonExtra is the config a daemon test appends to writeConfig's: a
// schedule that does not fire during a test and a port of the kernel's
// choosing.
const daemonExtra = "schedule: \"@every 24h\"\nmetrics:\n  listen: 127.0.0.1:0\n"

// eventually polls cond until it holds, failing the test if it still does
// not after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testDaemon is `ptsync run` running in the test's process.
type testDaemon struct {
	t      *testing.T
	addr   string // where /metrics, /healthz and /readyz answer
	log    *testenv.Buffer
	reload chan os.Signal
	cancel context.CancelFunc
	exited chan struct{}
	code   int // valid once exited is closed
}

// startDaemon runs `ptsync run args...` until the test ends or stop is
// called, and waits for it to say where it listens.
func startDaemon(t *testing.T, args ...string) *testDaemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDaemon{t: t, log: &testenv.Buffer{}, reload: make(chan os.Signal, 1), cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(d.exited)
		d.code = runDaemon(ctx, env{args: args, stdout: io.Discard, stderr: d.log}, d.reload)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.exited:
		case <-time.After(patience):
			t.Errorf("the daemon did not stop; its log:\n%s", d.log)
		}
	})
	eventually(t, "the daemon to start", func() bool {
		select {
		case <-d.exited:
			t.Fatalf("the daemon exited %d at start; stderr:\n%s", d.code, d.log)
		default:
		}
		if started := d.logged("daemon started"); len(started) > 0 {
			d.addr, _ = started[0]["addr"].(string)
			return true
		}
		return false
	})
	return d
}

// stop ends the daemon's context, as SIGTERM does, and returns its exit
// code.
func (d *testDaemon) stop() int {
	d.t.Helper()
	d.cancel()
	return d.wait()
}

// wait returns the daemon's exit code once it has exited.
func (d *testDaemon) wait() int {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.code
	case <-time.After(patience):
		d.t.Fatalf("the daemon did not exit; its log:\n%s", d.log)
		return 0
	}
}

// sighup asks the daemon to reload its config, as SIGHUP does, and waits
// until it has tried.
func (d *testDaemon) sighup() {
	d.t.Helper()
	before := len(d.logged("reloading the config"))
	d.reload <- syscall.SIGHUP
	eventually(d.t, "the daemon to reload", func() bool {
		return len(d.logged("config reloaded; the next sync run uses it"))+len(d.logged("config reload failed; keeping the running config")) > before
	})
}

// get fetches path from the daemon's HTTP side.
func (d *testDaemon) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// logged returns the daemon's log entries whose message is msg.
func (d *testDaemon) logged(msg string) []map[string]any {
	d.t.Helper()
	var found []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.log.String()))
	for sc.Scan() {
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			d.t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if entry["msg"] == msg {
			found = append(found, entry)
		}
	}
	return found
}

// metric returns the value of one series on /metrics (-1 when absent).
func (d *testDaemon) metric(series string) float64 {
	d.t.Helper()
	_, text := d.get("/metrics")
	for _, line := range strings.Split(text, "\n") {
		if value, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				d.t.Fatalf("metrics line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// gatedAccount is a PagerTree emulator behind a gate: while it is closed
// (until release, and again after hold), every request waits, so a test
// can hold a sync run in the middle.
type gatedAccount struct {
	emu     *pagertreetest.Server
	url     string
	arrived chan struct{} // signalled when a request reaches the closed gate
	mu      stdsync.Mutex
	open    chan struct{} // closed while the gate is open
}

func newGatedAccount(t *testing.T) *gatedAccount {
	t.Helper()
	t.Setenv("TEST_PT_PASSWORD", "password")
	g := &gatedAccount{
		emu:     pagertreetest.New(pagertreetest.Options{Username: "admin@example.com", Password: "password"}),
		arrived: make(chan struct{}, 1),
		open:    make(chan struct{}),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hanging up (and ends r's context)
		// only once the request body has been read.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		open := g.gate()
		select {
		case <-open:
		default:
			select {
			case g.arrived <- struct{}{}:
			default:
			}
		}
		select {
		case <-open:
			g.emu.ServeHTTP(w, r)
		case <-r.Context().Done(): // the run was cancelled
		}
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func (g *gatedAccount) gate() chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// release opens the gate.
func (g *gatedAccount) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// hold closes the gate again.
func (g *gatedAccount) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

// waitForRequest waits until a sync run is held at the gate.
func (g *gatedAccount) waitForRequest(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(patience):
		t.Fatal("no sync run reached PagerTree")
	}
}

// teamNames are the names of the account's teams.
func teamNames(emu *pagertreetest.Server) []string {
	var names []string
	for _, tm := range emu.Teams() {
		names = append(names, tm.Name)
	}
	return names
}

// editFile replaces old with new in the file at path.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	mustWrite(t, path, strings.Replace(string(data), old, new, 1))
}

// TestRunDaemon follows one daemon through its life: the first cycle at
// start, readiness before and after it, its metrics, reloads good and bad,
// cycles on a new schedule, a failed run, recovery and a clean stop.
func TestRunDaemon(t *testing.T) {
	acct := newGatedAccount(t)
	cfg := writeConfig(t, acct.url, daemonExtra)
	d := startDaemon(t, "--config", cfg)

	// The first cycle starts at once, before any schedule fires; the gate
	// holds it in the middle.
	acct.waitForRequest(t)
	if status, body := d.get("/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\\n\"", status, body)
	}
	if status, body := d.get("/readyz"); status != http.StatusServiceUnavailable || body != "no sync run has finished yet\n" {
		t.Errorf("/readyz during the first run = %d %q, want 503 \"no sync run has finished yet\\n\"", status, body)
	}

	acct.release()
	eventually(t, "/readyz to answer 200 after the first run", func() bool {
		status, body := d.get("/readyz")
		return status == http.StatusOK && body == "ok\n"
	})
	if names := teamNames(acct.emu); len(names) != 1 || names[0] != "oncall-db" {
		t.Fatalf("teams after the first run = %q, want [oncall-db]", names)
	}
	if users := acct.emu.Users(); len(users) != 1 || users[0].Email != "ada@example.com" {
		t.Fatalf("users after the first run = %+v, want ada@example.com", users)
	}
	_, text := d.get("/metrics")
	for _, line := range []string{
		`ptsync_sync_runs_total{result="success"} 1`,
		`ptsync_sync_runs_total{result="failure"} 0`,
		`ptsync_changes_total{kind="team",op="create",result="applied"} 1`,
		`ptsync_build_info{version="dev"} 1`,
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !regexp.MustCompile(`\n` + name + ` \S+\n`).MatchString(text) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	// A reload that renames the team and runs every second: only the new
	// schedule can bring a second cycle, and only the new rule the name.
	editFile(t, cfg, `schedule: "@every 24h"`, `schedule: "@every 1s"`)
	editFile(t, cfg, `match: "oncall-*"`+"\n", `match: "oncall-*"`+"\n    name: '{{ trimPrefix \"oncall-\" .Name }}'\n")
	d.sighup()
	eventually(t, "a cycle on the new schedule to rename the team", func() bool {
		names := teamNames(acct.emu)
		return len(names) == 1 && names[0] == "db"
	})

	// A bad file is refused whole: its new name rule never applies, and
	// cycles go on with the running config.
	editFile(t, cfg, `name: '{{ trimPrefix "oncall-" .Name }}'`, `name: 'x-{{ .Name }}'`)
	editFile(t, cfg, "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  bogus: 1\n")
	d.sighup()
	failed := d.logged("config reload failed; keeping the running config")
	if len(failed) != 1 {
		t.Fatalf("%d reload failures logged, want 1", len(failed))
	}
	if problems, _ := failed[0]["problems"].([]any); len(problems) != 1 ||
		!regexp.MustCompile(`^`+regexp.QuoteMeta(cfg)+`:\d+: metrics\.bogus: unknown key$`).MatchString(problems[0].(string)) {
		t.Errorf("reload failure problems = %v, want the unknown key metrics.bogus with file and line", failed[0]["problems"])
	}
	runs := d.metric(`ptsync_sync_runs_total{result="success"}`)
	eventually(t, "two more successful cycles after the bad reload", func() bool {
		return d.metric(`ptsync_sync_runs_total{result="success"}`) >= runs+2
	})
	if names := teamNames(acct.emu); len(names) != 1 || names[0] != "db" {
		t.Errorf("teams after a refused reload = %q, want [db]", names)
	}

	// A directory that cannot be read fails the run, and /readyz says so.
	mustWrite(t, people(cfg), "users: [\n")
	notReady := regexp.MustCompile(`^last sync run [0-9a-f]{16} failed: source "people": .+\n$`)
	eventually(t, "/readyz to report the failed run", func() bool {
		status, body := d.get("/readyz")
		return status == http.StatusServiceUnavailable && notReady.MatchString(body)
	})
	if d.metric(`ptsync_sync_runs_total{result="failure"}`) < 1 {
		t.Error("the failed run is not counted")
	}
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n  - {id: g1, name: oncall-db, members: [u1]}\n")
	eventually(t, "/readyz to recover after a good run", func() bool {
		status, _ := d.get("/readyz")
		return status == http.StatusOK
	})

	// Every cycle logged with an id of its own.
	ids := map[string]bool{}
	for _, entry := range d.logged("sync run started") {
		id, _ := entry["run_id"].(string)
		if id == "" || ids[id] {
			t.Errorf("sync run started with run_id %q, want a new one per cycle", id)
		}
		ids[id] = true
	}

	if code := d.stop(); code != exitOK {
		t.Errorf("exit code after a stop = %d, want 0", code)
	}
	if conn, err := net.Dial("tcp", d.addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after the daemon stopped", d.addr)
	}
	if len(d.logged("daemon stopped")) != 1 {
		t.Errorf("no \"daemon stopped\" line in the log:\n%s", d.log)
	}
	if strings.Contains(d.log.String(), `"password"`) {
		t.Errorf("the log mentions the password:\n%s", d.log)
	}
}

// TestRunDrainLetsTheRunningCycleFinish stops the daemon in the middle of a
// run: it stops being ready, the run finishes, and it exits 0.
func TestRunDrainLetsTheRunningCycleFinish(t *testing.T) {
	acct := newGatedAccount(t)
	d := startDaemon(t, "--config", writeConfig(t, acct.url, daemonExtra))
	acct.waitForRequest(t)

	d.cancel()
	eventually(t, "/readyz to say the daemon is stopping", func() bool {
		_, body := d.get("/readyz")
		return body == "shutting down\n"
	})
	if status, _ := d.get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200", status)
	}
	acct.release()
	if code := d.wait(); code != exitOK {
		t.Errorf("exit code after a drain = %d, want 0", code)
	}
	if names := teamNames(acct.emu); len(names) != 1 || names[0] != "oncall-db" {
		t.Errorf("teams after the drained run = %q, want [oncall-db]: the run should have finished", names)
	}
	if n := len(d.logged("stopping: waiting for the running sync run to finish")); n != 1 {
		t.Errorf("%d drain lines logged, want 1", n)
	}
	if n := len(d.logged("sync run finished")); n != 1 {
		t.Errorf("%d runs finished, want 1; log:\n%s", n, d.log)
	}
}

// TestRunSkipsAndCancelsARunThatHangs holds a run past its next due time
// (the cycle is skipped, not doubled) and past --drain-timeout (it is
// cancelled, and the daemon still exits 0).
func TestRunSkipsAndCancelsARunThatHangs(t *testing.T) {
	acct := newGatedAccount(t)
	cfg := writeConfig(t, acct.url, "schedule: \"@every 1s\"\nmetrics:\n  listen: 127.0.0.1:0\n")
	d := startDaemon(t, "--config", cfg, "--drain-timeout", "10ms")
	acct.waitForRequest(t)

	eventually(t, "a scheduled cycle to be skipped", func() bool {
		return len(d.logged("scheduled sync run skipped: the previous one is still running")) > 0
	})
	if n := len(d.logged("sync run started")); n != 1 {
		t.Errorf("%d runs started while the first one hangs, want 1", n)
	}
	if code := d.stop(); code != exitOK {
		t.Errorf("exit code after cancelling a run = %d, want 0", code)
	}
	if n := len(d.logged("stopping: the running sync run outlasted --drain-timeout; cancelling it (the next run converges)")); n != 1 {
		t.Errorf("%d cancel lines logged, want 1; log:\n%s", n, d.log)
	}
	if st := acct.emu.Stats(); st.WriteAttempts != 0 {
		t.Errorf("the cancelled run made %d writes", st.WriteAttempts)
	}
}

// TestRunMetricsPassPromtool checks the daemon's /metrics with promtool.
func TestRunMetricsPassPromtool(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	emu := newAccount(t)
	d := startDaemon(t, "--config", writeConfig(t, emu.URL(), daemonExtra))
	eventually(t, "the first run to finish", func() bool {
		status, _ := d.get("/readyz")
		return status == http.StatusOK
	})
	_, text := d.get("/metrics")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestRunWithheldRunIsReady: withheld destructive changes exit a one-shot
// sync with 3 but are not a failure, so the daemon stays ready.
func TestRunWithheldRunIsReady(t *testing.T) {
	emu := newAccount(t)
	cfg := writeConfig(t, emu.URL(), daemonExtra)
	if code, _, stderr := runCmd(t, "sync", "--config", cfg); code != exitOK {
		t.Fatalf("first sync exit %d, stderr %q", code, stderr)
	}
	// Ada leaves the group: emptying the team is always withheld.
	mustWrite(t, people(cfg), "users:\n  - {id: u1, email: ada@example.com, name: Ada}\ngroups:\n  - {id: g1, name: oncall-db, members: []}\n")
	d := startDaemon(t, "--config", cfg)
	var status int
	var body string
	eventually(t, "the first run to finish", func() bool {
		status, body = d.get("/readyz")
		return body != notReadyNoRunYet+"\n"
	})
	if status != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz after a withheld run = %d %q, want 200 \"ok\\n\"", status, body)
	}
	if n := d.metric(`ptsync_sync_runs_total{result="withheld"}`); n != 1 {
		t.Errorf("withheld runs = %v, want 1", n)
	}
}

func TestRunStartupErrors(t *testing.T) {
	t.Setenv("TEST_PT_PASSWORD", "password")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const unreachable = "http://127.0.0.1:1"

	tests := []struct {
		name   string
		config func(t *testing.T) string // the path given to --config
		args   []string
		stderr func(cfg string) string // the exact stderr
	}{
		{
			name: "invalid config: one line per problem",
			config: func(t *testing.T) string {
				return writeConfig(t, unreachable, daemonExtra+"  bogus: 1\nlog:\n  format: xml\n")
			},
			stderr: func(cfg string) string {
				return cfg + ":15: metrics.bogus: unknown key\n" + cfg + `:17: log.format: must be one of json, console, got "xml"` + "\n"
			},
		},
		{
			name:   "missing config",
			config: func(t *testing.T) string { return t.TempDir() + "/none.yaml" },
			stderr: func(cfg string) string {
				return "ptsync run: reading config: open " + cfg + ": no such file or directory\n"
			},
		},
		{
			name: "listen address in use",
			config: func(t *testing.T) string {
				return writeConfig(t, unreachable, "metrics:\n  listen: "+busy.Addr().String()+"\n")
			},
			stderr: func(cfg string) string {
				return "ptsync run: metrics.listen " + busy.Addr().String() + " is in use: stop what holds it or change metrics.listen in " + cfg + "\n"
			},
		},
		{
			name:   "a schedule that never fires",
			config: func(t *testing.T) string { return writeConfig(t, unreachable, "schedule: \"0 0 30 2 *\"\n") },
			stderr: func(cfg string) string {
				return cfg + ":12: schedule: never fires (no such date in the next five years); check the day of month and month fields\n"
			},
		},
		{
			name:   "negative --drain-timeout",
			config: func(t *testing.T) string { return writeConfig(t, unreachable, daemonExtra) },
			args:   []string{"--drain-timeout", "-1s"},
			stderr: func(string) string { return "ptsync run: --drain-timeout -1s is negative\n" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.config(t)
			// Already cancelled: were the daemon to start by mistake, it
			// would stop at once instead of hanging the test.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var stdout, stderr bytes.Buffer
			code := runDaemon(ctx, env{args: append([]string{"--config", cfg}, tt.args...), stdout: &stdout, stderr: &stderr}, nil)
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			if want := tt.stderr(cfg); stderr.String() != want {
				t.Errorf("stderr = %q, want %q", stderr.String(), want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
