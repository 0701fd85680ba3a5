package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sync"
)

// mustContain fails for each want body does not contain.
func mustContain(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s does not contain %q", what, w)
		}
	}
}

// mustNotContain fails for each unwanted string body contains.
func mustNotContain(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("%s contains %q", what, u)
		}
	}
}

// TestStatusPageShowsTheDaemonsStory reads the page of the daemon under
// test over HTTP: the runs with their results, counts and report links,
// the newest plan's withheld changes with the exact command that applies
// them, the pending delete with its deadline, the source against its last
// good size and the request rates, every directory value escaped and no
// secret anywhere.
func TestStatusPageShowsTheDaemonsStory(t *testing.T) {
	d := startTestDaemon(t, StatusOptions{})
	status, body, h := d.get("/", nil)
	if status != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", status, body)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	mustContain(t, "the page", body,
		// the runs, newest first, each linking to its report
		`<a href="/runs/r-withheld">r-withheld</a>`, `<a href="/runs/r-shrunk">r-shrunk</a>`, `<a href="/runs/r-first">r-first</a>`,
		`<span class="badge warn">withheld</span>`, `<span class="badge bad">error</span>`, `<span class="badge ok">ok</span>`,
		"2025-06-02 11:00:00 UTC", "8 applied", "3 withheld", `source &#34;corp&#34; returned 2 users`, "--accept-source-drop corp",
		// the newest plan: withheld changes and the commands
		"From run <a href=\"/runs/r-withheld\">r-withheld</a>",
		"members -bob.baker@example.com -cat.cole@example.com", "exceed safety.max_destructive (1)",
		`<pre id="apply-command"><code>ptsync sync --config /etc/ptsync/ptsync.yaml --allow-destructive</code></pre>`,
		`<pre id="review-command"><code>ptsync plan --config /etc/ptsync/ptsync.yaml --allow-destructive</code></pre>`,
		// the pending delete, due three days after it went missing
		`<td data-label="User" class="name">dan.dunn@example.com</td><td data-label="Missing since"><time datetime="2025-06-02T11:00:00Z">2025-06-02 11:00:00 UTC</time></td><td data-label="Deadline"><time datetime="2025-06-05T11:00:00Z">2025-06-05 11:00:00 UTC</time></td><td data-label="Deleted">in 2d 23h</td>`,
		// the source against its last good size
		`<td data-label="Source" class="name">corp</td>`, "4 <span class=\"muted\">of 4, ±0%</span>", "more than 30%",
		// readiness and rates
		"Ready: the last sync run did not fail.", "<td>PagerTree requests</td>",
		// the group named in HTML, as text
		"oncall-&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;",
	)
	if n := strings.Count(body, "<script"); n != 0 {
		t.Errorf("the page holds %d <script elements", n)
	}
	mustNotContain(t, "the page", body, "<b>bold", ptPassword)
	// The withheld run's JSON report, served as the state keeps it.
	status, js, h := d.get("/runs/r-withheld/report.json", nil)
	want, err := d.DB.Report("r-withheld")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusOK || js != string(want) || h.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("GET the JSON report = %d %q, %d bytes; want 200, the state's %d bytes", status, h.Get("Content-Type"), len(js), len(want))
	}
}

// TestStatusRunPages renders each run's report as HTML.
func TestStatusRunPages(t *testing.T) {
	d := startTestDaemon(t, StatusOptions{})
	tests := []struct {
		path   string
		status int
		wants  []string
	}{
		{"/runs/r-first", http.StatusOK, []string{"<h2>Run r-first</h2>", "create user", "ann.archer@example.com",
			"Ann Archer, &#43;14155550101", `<span class="badge ok">applied</span>`,
			"oncall-&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;", `href="/runs/r-first/report.json"`}},
		{"/runs/r-shrunk", http.StatusOK, []string{`<dd class="error">`, `source &#34;corp&#34; returned 2 users`, "--accept-source-drop corp", `<span class="badge bad">error</span>`}},
		{"/runs/r-withheld", http.StatusOK, []string{`<span class="badge warn">withheld</span>`, "members -eve.evans@example.com",
			"<h3>Pending deletes</h3>", "dan.dunn@example.com"}},
		{"/runs/r-nope", http.StatusNotFound, []string{"no such run"}},
		{"/runs/..%2F..%2Fetc", http.StatusNotFound, []string{"no such run"}},
		{"/runs/%3Cscript%3E", http.StatusNotFound, []string{"&lt;script&gt;"}},
		{"/runs/r-nope/report.json", http.StatusNotFound, []string{"no such run"}},
		{"/runs/", http.StatusNotFound, nil},
		{"/nothing-here", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			status, body, _ := d.get(tt.path, nil)
			if status != tt.status {
				t.Fatalf("GET %s = %d, want %d:\n%s", tt.path, status, tt.status, body)
			}
			mustContain(t, tt.path, body, tt.wants...)
			if strings.Contains(body, "<script") {
				t.Errorf("GET %s has a <script element", tt.path)
			}
		})
	}
}

// TestStatusPageIsReadOnly: other methods than GET and HEAD are refused,
// every page is sent with headers that forbid scripts, framing, caching
// and referrers, and reading the pages leaves the state as it was.
func TestStatusPageIsReadOnly(t *testing.T) {
	d := startTestDaemon(t, StatusOptions{})
	dbFile := d.DB.Path()
	before, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/runs/r-first", "/runs/r-first/report.json"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			req, _ := http.NewRequest(method, d.URL+path, strings.NewReader("x=1"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, resp.StatusCode)
			}
		}
		status, _, h := d.get(path, nil)
		if status != http.StatusOK {
			t.Errorf("GET %s = %d", path, status)
		}
		for k, v := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
		} {
			if got := h.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", path, k, got, v)
			}
		}
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") {
			t.Errorf("GET %s: Content-Security-Policy = %q", path, csp)
		}
	}
	after, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("reading the pages changed the state database")
	}
}

// TestStatusStyleIsAllowedByItsHash: the CSP allows the inline style by
// its hash, which must be that of the <style> the page sends, byte for
// byte, or browsers drop the whole style sheet.
func TestStatusStyleIsAllowedByItsHash(t *testing.T) {
	d := startTestDaemon(t, StatusOptions{})
	_, body, h := d.get("/", nil)
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no <style> on the page")
	}
	sum := sha256.Sum256([]byte(m[1]))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Errorf("Content-Security-Policy = %q, want it to contain %q", csp, want)
	}
}

// TestCheckExposure is the rule: without auth, only a loopback address.
func TestCheckExposure(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:9464", "127.0.0.2:9464", "[::1]:9464", "localhost:9464", "LOCALHOST.:9464"} {
		if err := CheckExposure(listen, AuthNone); err != nil {
			t.Errorf("CheckExposure(%q, none) = %v, want nil", listen, err)
		}
		if err := CheckExposure(listen, ""); err != nil {
			t.Errorf("CheckExposure(%q, \"\") = %v, want nil", listen, err)
		}
	}
	for _, listen := range []string{":9464", "0.0.0.0:9464", "[::]:9464", "192.0.2.10:9464", "[2001:db8::1]:9464", "ptsync.example.com:9464", "localhost.example.com:9464"} {
		if err := CheckExposure(listen, AuthNone); !errors.Is(err, ErrExposed) {
			t.Errorf("CheckExposure(%q, none) = %v, want ErrExposed", listen, err)
		}
		if err := CheckExposure(listen, AuthBasic); err != nil {
			t.Errorf("CheckExposure(%q, basic) = %v, want nil", listen, err)
		}
	}
	if err := CheckExposure("127.0.0.1:9464", "digest"); err == nil || errors.Is(err, ErrExposed) {
		t.Errorf("CheckExposure with auth digest = %v, want an error naming the value", err)
	}
	if err := CheckExposure("9464", AuthNone); err == nil {
		t.Error("CheckExposure without a host:port = nil")
	}
}

// newStatusServer is a server whose page reads db (a new, empty state
// when nil) with opts.
func newStatusServer(t *testing.T, db *state.DB, opts StatusOptions) *Server {
	t.Helper()
	if db == nil {
		var err error
		if db, err = state.Open(t.TempDir(), state.Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
	}
	s := New(prometheus.NewRegistry(), zap.NewNop())
	opts.State = Held(db)
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:9464"
	}
	if err := s.EnableStatus(opts); err != nil {
		t.Fatal(err)
	}
	return s
}

// getOn sends GET path to h as if it came in on local, the connection's
// local address (nil: none known).
func getOn(t *testing.T, h http.Handler, local net.Addr, path string, edit func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if local != nil {
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
	}
	if edit != nil {
		edit(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var (
	loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9464}
	external = &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 9464}
)

// TestStatusCannotBeOpenedWithoutAuthOffLoopback: the page without auth
// cannot be served on an address that is not loopback, at any of the
// three places that decide it — the options, the listener, the request.
func TestStatusCannotBeOpenedWithoutAuthOffLoopback(t *testing.T) {
	t.Run("EnableStatus refuses the address", func(t *testing.T) {
		db, err := state.Open(t.TempDir(), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, listen := range []string{":9464", "0.0.0.0:9464", "192.0.2.10:9464"} {
			s := New(prometheus.NewRegistry(), nil)
			err := s.EnableStatus(StatusOptions{State: Held(db), Listen: listen})
			if !errors.Is(err, ErrExposed) {
				t.Errorf("EnableStatus on %s without auth = %v, want ErrExposed", listen, err)
			}
			if rec := getOn(t, s.Handler(), loopback, "/", nil); rec.Code != http.StatusNotFound {
				t.Errorf("after a refused EnableStatus, / = %d, want 404", rec.Code)
			}
		}
	})
	t.Run("Serve refuses a listener on every interface", func(t *testing.T) {
		s := newStatusServer(t, nil, StatusOptions{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		wild := wildListener{ln}
		err = s.Serve(context.Background(), wild)
		if !errors.Is(err, ErrExposed) {
			t.Fatalf("Serve on %s = %v, want ErrExposed", wild.Addr(), err)
		}
		if conn, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			conn.Close()
			t.Error("the refused listener still accepts connections")
		}
	})
	t.Run("a request that came in elsewhere is refused", func(t *testing.T) {
		s := newStatusServer(t, nil, StatusOptions{})
		for _, path := range []string{"/", "/runs/r1", "/runs/r1/report.json"} {
			for _, local := range []net.Addr{external, nil} {
				rec := getOn(t, s.Handler(), local, path, nil)
				if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "<html") {
					t.Errorf("GET %s on %v = %d %q, want 403 and no page", path, local, rec.Code, rec.Body.String())
				}
			}
		}
		if rec := getOn(t, s.Handler(), loopback, "/", nil); rec.Code != http.StatusOK {
			t.Errorf("GET / on loopback = %d, want 200", rec.Code)
		}
		// Probes and scrapes are not the page: they answer anywhere.
		for _, path := range []string{"/metrics", "/healthz"} {
			if rec := getOn(t, s.Handler(), external, path, nil); rec.Code != http.StatusOK {
				t.Errorf("GET %s on %v = %d, want 200", path, external, rec.Code)
			}
		}
	})
}

// wildListener is a loopback listener that says it listens on every
// interface, as ":9464" does: tests talk to 127.0.0.1 only.
type wildListener struct{ net.Listener }

func (wildListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv6zero, Port: 9464} }

// testHash is the bcrypt hash of testPassword at the lowest cost.
const testPassword = "correct horse battery staple"

func testHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestStatusBasicAuth: with status.auth basic the page answers on any
// address, to the right username and password only, over a real
// connection too.
func TestStatusBasicAuth(t *testing.T) {
	hash := testHash(t)
	s := newStatusServer(t, nil, StatusOptions{Listen: "0.0.0.0:9464", Auth: AuthBasic, Username: "oncall", PasswordHash: hash})
	creds := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	tests := []struct {
		name   string
		edit   func(*http.Request)
		status int
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"a wrong password", creds("oncall", "wrong"), http.StatusUnauthorized},
		{"a wrong username", creds("root", testPassword), http.StatusUnauthorized},
		{"the hash as the password", creds("oncall", hash), http.StatusUnauthorized},
		{"the right ones", creds("oncall", testPassword), http.StatusOK},
		{"the right ones again (remembered)", creds("oncall", testPassword), http.StatusOK},
		{"a wrong password after a right one", creds("oncall", testPassword+"x"), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		for _, local := range []net.Addr{external, loopback} {
			rec := getOn(t, s.Handler(), local, "/", tt.edit)
			if rec.Code != tt.status {
				t.Errorf("%s on %v: / = %d, want %d", tt.name, local, rec.Code, tt.status)
			}
			if rec.Code == http.StatusUnauthorized {
				if got := rec.Header().Get("WWW-Authenticate"); got != `Basic realm="ptsync status", charset="UTF-8"` {
					t.Errorf("%s: WWW-Authenticate = %q", tt.name, got)
				}
				if strings.Contains(rec.Body.String(), "<html") {
					t.Errorf("%s: a 401 carries the page", tt.name)
				}
			}
		}
	}

	// Over a real connection on 127.0.0.1.
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	if status, _, _ := httpGet(t, srv.URL+"/", nil); status != http.StatusUnauthorized {
		t.Errorf("GET / without credentials = %d, want 401", status)
	}
	if status, body, _ := httpGet(t, srv.URL+"/", creds("oncall", testPassword)); status != http.StatusOK || !strings.Contains(body, "No run has been recorded yet.") {
		t.Errorf("GET / with credentials = %d:\n%s", status, body)
	}
	if status, _, _ := httpGet(t, srv.URL+"/healthz", nil); status != http.StatusOK {
		t.Errorf("/healthz with auth on the page = %d, want 200 (probes carry no credentials)", status)
	}
}

// TestStatusBasicAuthOptions: a basic auth that could not work is refused.
func TestStatusBasicAuthOptions(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hash := testHash(t)
	for name, opts := range map[string]StatusOptions{
		"no username":           {Auth: AuthBasic, PasswordHash: hash},
		"a username with colon": {Auth: AuthBasic, Username: "a:b", PasswordHash: hash},
		"no hash":               {Auth: AuthBasic, Username: "oncall"},
		"a password, not hash":  {Auth: AuthBasic, Username: "oncall", PasswordHash: testPassword},
		"an unknown auth":       {Auth: "digest", Username: "oncall", PasswordHash: hash},
	} {
		opts.State, opts.Listen = Held(db), "127.0.0.1:9464"
		err := New(nil, nil).EnableStatus(opts)
		if err == nil {
			t.Errorf("%s: EnableStatus = nil, want an error", name)
		} else if strings.Contains(err.Error(), testPassword) {
			t.Errorf("%s: the error shows the password: %v", name, err)
		}
	}
	s := New(nil, nil)
	ok := StatusOptions{State: Held(db), Listen: "127.0.0.1:9464"}
	if err := s.EnableStatus(ok); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableStatus(ok); err == nil {
		t.Error("a second EnableStatus = nil, want an error")
	}
	if err := New(nil, nil).EnableStatus(StatusOptions{Listen: "127.0.0.1:9464"}); err == nil {
		t.Error("EnableStatus without a state = nil, want an error")
	}
}

// recordRun stores a run and its report, as sync writes it.
func recordRun(t *testing.T, db *state.DB, rep sync.Report) {
	t.Helper()
	if err := (state.Memory{DB: db}).RecordRun(rep); err != nil {
		t.Fatal(err)
	}
}

// TestStatusEscapesEveryValue records a run whose every text from the
// directory, PagerTree or an error is HTML, and finds none of it as
// markup on the pages.
func TestStatusEscapesEveryValue(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evil := func(s string) string { return s + `<x-evil a="1">'&"</x-evil>` }
	at := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	change := sync.Change{Op: sync.OpUpdate, Kind: sync.KindTeam, Name: evil("team"), ID: evil("id"),
		MembersRemoved: []string{evil("member")}, Fields: []sync.FieldChange{{Field: evil("f"), Old: evil("old"), New: evil("new")}},
		Reason: evil("reason"), WithheldReason: evil("withheld")}
	rep := sync.Report{
		RunID: "r1", Command: evil("ptsync run"), Started: at, Status: evil("status"), Error: evil("error"), StateError: evil("state"),
		Sources: []sync.SourceReport{{Name: evil("source"), Users: 3, Groups: 1, Skipped: map[string]int{evil("skip"): 1}}},
		Plan: sync.Plan{Fingerprint: "fp", Withheld: []sync.Change{change},
			Conflicts:      []sync.Conflict{{Team: evil("conflict"), Reason: evil("why")}},
			PendingDeletes: []sync.PendingDelete{{Email: evil("gone@example.com"), ID: "u1", Since: at, After: at.Add(time.Hour)}}},
		Result: sync.Result{Changes: []sync.ChangeResult{{Change: change, Outcome: sync.OutcomeFailed, Error: evil("failed")}}},
	}
	recordRun(t, db, rep)
	s := newStatusServer(t, db, StatusOptions{ConfigPath: evil("/etc/ptsync")})
	for _, path := range []string{"/", "/runs/r1"} {
		rec := getOn(t, s.Handler(), loopback, path, nil)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d:\n%s", path, rec.Code, body)
		}
		if n := strings.Count(body, "<x-evil"); n > 0 {
			t.Errorf("GET %s: %d values came out as markup:\n%s", path, n, body)
		}
		if n := strings.Count(body, "&lt;x-evil a=&#34;1&#34;&gt;&#39;&amp;&#34;&lt;/x-evil&gt;"); n < 5 {
			t.Errorf("GET %s: the values appear escaped %d times, want them all", path, n)
		}
	}
	// The command is quoted for the shell, then escaped for HTML.
	body := getOn(t, s.Handler(), loopback, "/", nil).Body.String()
	mustContain(t, "the page", body, `ptsync sync --config &#39;/etc/ptsync&lt;x-evil a=&#34;1&#34;&gt;&#39;\&#39;&#39;&amp;&#34;&lt;/x-evil&gt;&#39; --allow-destructive`)
}

// TestShellQuote: the commands on the page paste into a shell as shown.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/ptsync/ptsync.yaml": "/etc/ptsync/ptsync.yaml",
		"/srv/my configs/pt.yaml": "'/srv/my configs/pt.yaml'",
		"/x/it's.yaml":            `'/x/it'\''s.yaml'`,
		"/x/$(reboot).yaml":       "'/x/$(reboot).yaml'",
		"":                        "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatusReopen is ptsync status: the page opens the state for each
// request and closes it, says so while another ptsync holds it, and does
// not create a state directory that is not there.
func TestStatusReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := New(nil, zap.NewNop())
	if err := s.EnableStatus(StatusOptions{State: Reopen(dir, state.Options{LockTimeout: 50 * time.Millisecond}), Listen: "127.0.0.1:9464"}); err != nil {
		t.Fatal(err)
	}
	page := func() *httptest.ResponseRecorder { return getOn(t, s.Handler(), loopback, "/", nil) }

	rec := page()
	mustContain(t, "the page before any state", rec.Body.String(), "No state yet", "no run has recorded one there")
	if rec.Code != http.StatusOK {
		t.Errorf("before any state: / = %d, want 200", rec.Code)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the page created the state directory: %v", err)
	}

	// A sync run records one and, while it runs, holds the state.
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recordRun(t, db, sync.Report{RunID: "r1", Command: "ptsync sync --config /etc/ptsync.yaml", Started: time.Now(), Status: sync.StatusOK,
		Sources: []sync.SourceReport{{Name: "corp", Users: 10, Groups: 2}}})
	rec = page()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("while another ptsync holds the state: / = %d (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	mustContain(t, "the page while the state is in use", rec.Body.String(), "The state is in use", "reload in a few seconds", "metrics.listen")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	rec = page()
	if rec.Code != http.StatusOK {
		t.Fatalf("once the state is free: / = %d:\n%s", rec.Code, rec.Body.String())
	}
	body := rec.Body.String()
	mustContain(t, "the page", body, `<a href="/runs/r1">r1</a>`, "served by <code>ptsync status</code>")
	mustNotContain(t, "the page of ptsync status", body, `id="readiness"`, `id="pagertree"`, "The state is in use")
	// The page let go of the state: a run can take it again.
	db, err = state.Open(dir, state.Options{LockTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("after the page was read, a run cannot open the state: %v", err)
	}
	db.Close()
	if rec := getOn(t, s.Handler(), loopback, "/runs/r1", nil); rec.Code != http.StatusOK {
		t.Errorf("GET /runs/r1 = %d", rec.Code)
	}
}

// TestStatusNewestPlanAfterAFailedRun: a run that failed before planning
// does not hide the plan before it, and the page says it failed.
func TestStatusNewestPlanAfterAFailedRun(t *testing.T) {
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
	recordRun(t, db, sync.Report{RunID: "r1", Started: at, Status: sync.StatusWithheld,
		Sources: []sync.SourceReport{{Name: "corp", Users: 100, Groups: 10}},
		Plan: sync.Plan{Fingerprint: "fp", Withheld: []sync.Change{{Op: sync.OpDelete, Kind: sync.KindUser, Name: "zed@example.com",
			ID: "u9", Destructive: 1, WithheldReason: "30 destructive changes exceed safety.max_destructive (25)"}}}})
	if err := db.SetLastGood(map[string]state.SourceCount{"corp": {Users: 100, Groups: 10, At: at}}); err != nil {
		t.Fatal(err)
	}
	recordRun(t, db, sync.Report{RunID: "r2", Started: at.Add(time.Hour), Status: sync.StatusOK,
		Sources: []sync.SourceReport{{Name: "corp", Users: 60, Groups: 10}}})
	recordRun(t, db, sync.Report{RunID: "r3", Started: at.Add(2 * time.Hour), Status: sync.StatusError, Error: "source corp: connection refused"})
	s := newStatusServer(t, db, StatusOptions{ConfigPath: "/etc/ptsync.yaml", MaxSourceDropPercent: 30})
	body := getOn(t, s.Handler(), loopback, "/", nil).Body.String()
	mustContain(t, "the page", body,
		`From run <a href="/runs/r1">r1</a>`, "The newest run, <a href=\"/runs/r3\">r3</a>", "failed before it planned: source corp: connection refused",
		"zed@example.com", "30 destructive changes exceed safety.max_destructive (25)",
		"ptsync sync --config /etc/ptsync.yaml --allow-destructive",
		`<tr class="over">`, "60 <span class=\"muted\">of 100, −40%</span>", "over the limit",
		"Run them when no other ptsync is running.")
}

// TestRates: the request and retry counters become per-minute rates over
// the recent window and since the first sample, by status class and by
// retry reason.
func TestRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := sync.NewMetrics(reg, "test")
	c := &clock{now: time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)}
	r := newRateSampler(reg, c.Now)
	// 10 minutes: 100 requests, 10 of them 429s that were retried, 5 5xx,
	// 5 with no answer.
	for i := range 100 {
		code := 200
		switch {
		case i < 10:
			code = 429
			m.ObserveRetry("429")
		case i < 15:
			code = 503
		case i < 20:
			code = 0
		}
		m.ObserveRequest("GET", "/user", code, time.Millisecond)
		if i%10 == 9 {
			c.Set(c.Now().Add(time.Minute))
			r.sample()
		}
	}
	// 5 quiet minutes more: the recent window has only those.
	for range 5 {
		c.Set(c.Now().Add(time.Minute))
		r.sample()
	}
	v := r.view()
	if v.Window != rateWindow || v.Since != 15*time.Minute {
		t.Errorf("window %v since %v, want %v and 15m", v.Window, v.Since, rateWindow)
	}
	got := map[string]rateRow{}
	for _, row := range v.Rows {
		got[row.Name] = row
	}
	for name, want := range map[string]rateRow{
		"PagerTree requests":                  {Total: 100, Recent: 0, SinceStart: 100.0 / 15},
		"2xx":                                 {Total: 80, SinceStart: 80.0 / 15, Sub: true},
		"429":                                 {Total: 10, SinceStart: 10.0 / 15, Sub: true},
		"5xx":                                 {Total: 5, SinceStart: 5.0 / 15, Sub: true},
		"no answer":                           {Total: 5, SinceStart: 5.0 / 15, Sub: true},
		"Retries (PagerTree and API sources)": {Total: 10, SinceStart: 10.0 / 15},
	} {
		g, ok := got[name]
		want.Name = name
		if !ok || g.Total != want.Total || g.Recent != want.Recent || g.Sub != want.Sub || !near(g.SinceStart, want.SinceStart) {
			t.Errorf("row %q = %+v, want %+v", name, g, want)
		}
	}
	if _, ok := got["4xx"]; ok {
		t.Error("429s are counted as 4xx too")
	}
	// A burst now shows in the recent window.
	for range 30 {
		m.ObserveRequest("PUT", "/team/{id}", 200, time.Millisecond)
	}
	c.Set(c.Now().Add(time.Minute))
	for _, row := range r.view().Rows {
		if row.Name == "PagerTree requests" && !near(row.Recent, 30.0/5) {
			t.Errorf("after a burst of 30, recent = %v/min, want %v", row.Recent, 30.0/5)
		}
	}
	if newRateSampler(nil, c.Now).view() != nil {
		t.Error("a sampler without metrics has a view")
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
