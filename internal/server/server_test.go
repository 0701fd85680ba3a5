package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// get sends one request to h and returns the status and body.
func get(t *testing.T, h http.Handler, method, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func TestReadinessTransitions(t *testing.T) {
	s := New(prometheus.NewRegistry(), nil)
	steps := []struct {
		name   string
		set    func()
		status int
		body   string
	}{
		{"a new server is not ready", func() {}, http.StatusServiceUnavailable, "starting\n"},
		{"not ready, with a reason", func() { s.SetNotReady("no sync run has finished yet") }, http.StatusServiceUnavailable, "no sync run has finished yet\n"},
		{"ready", s.SetReady, http.StatusOK, "ok\n"},
		{"ready twice stays ready", s.SetReady, http.StatusOK, "ok\n"},
		{"a failed run", func() { s.SetNotReady("last sync run 0a1b failed: source down") }, http.StatusServiceUnavailable, "last sync run 0a1b failed: source down\n"},
		{"an empty reason still says something", func() { s.SetNotReady("") }, http.StatusServiceUnavailable, "not ready\n"},
		{"ready again", s.SetReady, http.StatusOK, "ok\n"},
	}
	for _, step := range steps {
		step.set()
		status, body, header := get(t, s.Handler(), http.MethodGet, "/readyz")
		if status != step.status || body != step.body {
			t.Errorf("%s: /readyz = %d %q, want %d %q", step.name, status, body, step.status, step.body)
		}
		if got := header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", step.name, got)
		}
		ready, reason := s.Ready()
		if wantReady := step.status == http.StatusOK; ready != wantReady || (ready && reason != "") {
			t.Errorf("%s: Ready() = %v, %q", step.name, ready, reason)
		}
		// Liveness does not depend on readiness.
		if status, body, _ := get(t, s.Handler(), http.MethodGet, "/healthz"); status != http.StatusOK || body != "ok\n" {
			t.Errorf("%s: /healthz = %d %q, want 200 \"ok\\n\"", step.name, status, body)
		}
	}
}

func TestRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	s := New(reg, nil)
	s.SetReady()

	tests := []struct {
		method, path string
		status       int
		body         string // a substring
	}{
		{http.MethodGet, "/metrics", http.StatusOK, "\ntest_things_total 3\n"},
		{http.MethodGet, "/healthz", http.StatusOK, "ok\n"},
		{http.MethodHead, "/healthz", http.StatusOK, ""},
		{http.MethodGet, "/readyz", http.StatusOK, "ok\n"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, ""},
		{http.MethodDelete, "/metrics", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, "/status", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body, _ := get(t, s.Handler(), tt.method, tt.path)
			if status != tt.status || !strings.Contains(body, tt.body) {
				t.Errorf("status %d, body %q; want %d and a body containing %q", status, body, tt.status, tt.body)
			}
		})
	}
}

func TestServeShutsDownWhenContextEnds(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s := New(prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after its context ended = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Serve returned", addr)
	}
}

func TestServeReportsAListenerThatFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = New(prometheus.NewRegistry(), nil).Serve(context.Background(), ln)
	if !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "serving HTTP on 127.0.0.1:") {
		t.Errorf("Serve on a closed listener = %v, want a wrapped net.ErrClosed naming the address", err)
	}
}

// TestReadinessDeadlineAndExpiry moves a fake clock through a run that
// overruns its deadline and a success that goes stale: each is reported
// once its time has come, in order of what matters now.
func TestReadinessDeadlineAndExpiry(t *testing.T) {
	s := New(prometheus.NewRegistry(), nil)
	start := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	now := start
	s.now = func() time.Time { return now }
	const (
		overrun = "sync run 0a1b has run past cycle_timeout (30m)"
		stale   = "no successful sync since 2025-06-01T10:00:00Z (3 × schedule)"
	)
	steps := []struct {
		name   string
		set    func()
		at     time.Duration // the clock, after start
		status int
		body   string
	}{
		{"a success arms the expiry", func() { s.SetReady(); s.SetExpiry(start.Add(45*time.Minute), stale) }, 0, http.StatusOK, "ok\n"},
		{"a run starts with its deadline", func() { s.SetDeadline(start.Add(15*time.Minute+30*time.Minute), overrun) }, 15 * time.Minute, http.StatusOK, "ok\n"},
		{"a second before the deadline", func() {}, 45*time.Minute - time.Second, http.StatusOK, "ok\n"},
		{"at the deadline the overrun is reported, the expiry waits behind it", func() {}, 45 * time.Minute, http.StatusServiceUnavailable, overrun + "\n"},
		{"the deadline beats a failed run", func() { s.SetNotReady("last sync run 0a1a failed: source down") }, 46 * time.Minute, http.StatusServiceUnavailable, overrun + "\n"},
		{"the run ends: its failure shows, not the expiry", s.ClearDeadline, 47 * time.Minute, http.StatusServiceUnavailable, "last sync run 0a1a failed: source down\n"},
		{"ready again, but past the expiry", s.SetReady, 48 * time.Minute, http.StatusServiceUnavailable, stale + "\n"},
		{"a new success moves the expiry", func() { s.SetExpiry(start.Add(93*time.Minute), "later") }, 92 * time.Minute, http.StatusOK, "ok\n"},
		{"and it lapses in its turn", func() {}, 93 * time.Minute, http.StatusServiceUnavailable, "later\n"},
	}
	for _, step := range steps {
		now = start.Add(step.at)
		step.set()
		status, body, _ := get(t, s.Handler(), http.MethodGet, "/readyz")
		if status != step.status || body != step.body {
			t.Errorf("%s: /readyz = %d %q, want %d %q", step.name, status, body, step.status, step.body)
		}
		if ready, reason := s.Ready(); ready != (step.status == http.StatusOK) || (!ready && reason+"\n" != step.body) {
			t.Errorf("%s: Ready() = %v, %q", step.name, ready, reason)
		}
	}
}
