package server

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	stdsync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// This file is a daemon under test: what `ptsync run` wires, from the
// same packages — two file sources, the PagerTree emulator behind the real
// client, the engine with the state database as its memory, the metrics —
// with the status page served by this package on 127.0.0.1.

// Secrets the page must never show.
const (
	ptPassword = "pt-Secret-Password-9f3b"
	ptUsername = "sync-bot@example.com"
)

// htmlGroup is a directory group whose name is HTML: the page must show
// it as text.
const htmlGroup = `oncall-<script>window.pwned=1</script><b>bold</b>`

// clock is a settable clock shared by the engine and the page.
type clock struct {
	mu  stdsync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// testDaemon is the daemon under test.
type testDaemon struct {
	t       *testing.T
	URL     string // the status page, http://127.0.0.1:port
	Clock   *clock
	DB      *state.DB
	Server  *Server
	engine  *sync.Engine
	dirFile string // the corp file source's YAML
	runs    []sync.Report
}

// directory is the corp file source's content at each step of the story.
const (
	directoryStart = `users:
  - {id: p1, email: ann.archer@example.com, name: Ann Archer, phone: "+1 415 555 0101"}
  - {id: p2, email: bob.baker@example.com, name: Bob Baker}
  - {id: p3, email: cat.cole@example.com, name: Cat Cole}
  - {id: p4, email: dan.dunn@example.com, name: Dan Dunn}
  - {id: p5, email: eve.evans@example.com, name: Eve Evans}
groups:
  - {id: g-pay, name: oncall-payments, members: [p1, p2, p3]}
  - {id: g-db, name: oncall-db, members: [p2, p3, p4]}
  - {id: g-html, name: "` + htmlGroup + `", members: [p1, p5]}
`
	// directoryShrunk lost three of its five users: over
	// safety.max_source_drop_percent (30), the run fails before it plans.
	directoryShrunk = `users:
  - {id: p1, email: ann.archer@example.com, name: Ann Archer, phone: "+1 415 555 0101"}
  - {id: p2, email: bob.baker@example.com, name: Bob Baker}
groups:
  - {id: g-pay, name: oncall-payments, members: [p1, p2]}
`
	// directoryLater: Dan left (a pending delete under delete_grace, and
	// a member removal), Bob and Cat left payments, Eve left the group
	// named in HTML: four member removals, over max_destructive (1), so
	// they are withheld.
	directoryLater = `users:
  - {id: p1, email: ann.archer@example.com, name: Ann Archer, phone: "+1 415 555 0101"}
  - {id: p2, email: bob.baker@example.com, name: Bob Baker}
  - {id: p3, email: cat.cole@example.com, name: Cat Cole}
  - {id: p5, email: eve.evans@example.com, name: Eve Evans}
groups:
  - {id: g-pay, name: oncall-payments, members: [p1]}
  - {id: g-db, name: oncall-db, members: [p2, p3]}
  - {id: g-html, name: "` + htmlGroup + `", members: [p1]}
`
	// directoryHR is a second source's, the same all along: no rule
	// makes teams of it, so it only shows on the page (its size, its
	// change feed).
	directoryHR = `users:
  - {id: h1, email: fay.ford@example.com, name: Fay Ford}
  - {id: h2, email: gus.grant@example.com, name: Gus Grant}
groups:
  - {id: h-all, name: staff, members: [h1, h2]}
`
)

// storyStart is when the first run of the story starts.
var storyStart = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)

// statusConfigPath is the config file the page's commands name.
const statusConfigPath = "/etc/ptsync/ptsync.yaml"

// startTestDaemon starts the daemon under test with its status page
// (opts.State, Listen, Daemon and Now are set here) and runs the story:
// a first sync that creates everything, a run the source's shrink stops, and
// a run whose member removals are withheld while a leaver waits out
// users.delete_grace. The clock then stands 5 minutes after the last run.
func startTestDaemon(t *testing.T, opts StatusOptions) *testDaemon {
	t.Helper()
	d := &testDaemon{t: t, Clock: &clock{now: storyStart}, dirFile: filepath.Join(t.TempDir(), "corp.yaml")}

	emu := pagertreetest.New(pagertreetest.Options{Username: ptUsername, Password: ptPassword})
	if _, err := emu.AddUser(pagertree.User{Name: "Owner", Email: "owner@example.com", Roles: pagertree.Roles{Admin: true}}); err != nil {
		t.Fatal(err)
	}
	// A little latency, so runs last as long as they would somewhere.
	emu.SetFaults(pagertreetest.Faults{Latency: 15 * time.Millisecond})
	pt := httptest.NewServer(emu)
	t.Cleanup(pt.Close)

	reg := prometheus.NewRegistry()
	metrics := sync.NewMetrics(reg, "v1.4.0-test")
	client, err := pagertree.New(pagertree.Config{URL: pt.URL, Username: ptUsername, Password: ptPassword, Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	src, err := file.New("corp", &file.Config{Path: d.dirFile}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	hrFile := filepath.Join(t.TempDir(), "hr.yaml")
	if err := os.WriteFile(hrFile, []byte(directoryHR), 0o600); err != nil {
		t.Fatal(err)
	}
	hr, err := file.New("hr", &file.Config{Path: hrFile}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	d.DB, err = state.Open(filepath.Join(t.TempDir(), "state"), state.Options{Now: d.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.DB.Close() })
	d.engine = &sync.Engine{
		Sources:   []sources.Source{src, hr},
		PagerTree: ptaccount.For(pagertree.APIv3, client),
		Policy: sync.Policy{
			Rules:          []config.TeamRule{{Source: "corp", Match: "re:^oncall-", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}},
			Scope:          config.ScopeTeamMembers,
			DeleteUsers:    true,
			DeleteGrace:    72 * time.Hour,
			MaxDestructive: 1,
		},
		MinSourceUsers:       1,
		MaxSourceDropPercent: 30,
		Concurrency:          4,
		Metrics:              metrics,
		Logger:               zap.NewNop(),
		Memory:               state.Memory{DB: d.DB},
		Now:                  d.Clock.Now,
	}

	// The page is served as the daemon serves it, before the first run.
	d.Server = New(reg, zap.NewNop())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.State, opts.Listen, opts.Daemon, opts.Now = Held(d.DB), ln.Addr().String(), true, d.Clock.Now
	if opts.ConfigPath == "" {
		opts.ConfigPath = statusConfigPath
	}
	if opts.Version == "" {
		opts.Version = "v1.4.0-test"
	}
	if opts.MaxSourceDropPercent == 0 {
		opts.MaxSourceDropPercent = 30
	}
	if err := d.Server.EnableStatus(opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- d.Server.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	d.URL = "http://" + ln.Addr().String()

	d.sync("r-first", directoryStart, storyStart, sync.StatusOK)
	d.sync("r-shrunk", directoryShrunk, storyStart.Add(time.Hour), sync.StatusError)
	d.sync("r-withheld", directoryLater, storyStart.Add(2*time.Hour), sync.StatusWithheld)
	d.Server.SetReady()
	d.Clock.Set(storyStart.Add(2*time.Hour + 5*time.Minute))
	return d
}

// sync writes the directory, runs one sync at the clock's at and checks
// its status.
func (d *testDaemon) sync(runID, directory string, at time.Time, want string) sync.Report {
	d.t.Helper()
	if err := os.WriteFile(d.dirFile, []byte(directory), 0o600); err != nil {
		d.t.Fatal(err)
	}
	d.Clock.Set(at)
	rep, _ := d.engine.RunOnce(context.Background(), sync.RunOptions{RunID: runID, Command: "ptsync run --config " + statusConfigPath})
	if rep.Status != want {
		d.t.Fatalf("run %s: status %q (error %q, state error %q), want %q", runID, rep.Status, rep.Error, rep.StateError, want)
	}
	d.runs = append(d.runs, rep)
	return rep
}

// get fetches path from the page with the request's options and returns
// status, body and headers.
func (d *testDaemon) get(path string, edit func(*http.Request)) (int, string, http.Header) {
	d.t.Helper()
	return httpGet(d.t, d.URL+path, edit)
}

func httpGet(t *testing.T, url string, edit func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body.String(), resp.Header
}

// The state database is a Store.
var _ Store = (*state.DB)(nil)
