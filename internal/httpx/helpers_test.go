package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/httpx"
)

// served is what a test server saw of one request.
type served struct {
	Method, Path, Query, Authorization string
	At                                 time.Time
	Header                             http.Header
}

// server is an httptest server on 127.0.0.1 that records every request and
// answers with handle.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	seen []served
}

func newServer(t *testing.T, handle http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.seen = append(s.seen, served{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
			Authorization: r.Header.Get("Authorization"), At: time.Now(), Header: r.Header.Clone(),
		})
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []served {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]served(nil), s.seen...)
}

// newClient returns a client of s named "test"; edit changes the config
// first when not nil.
func newClient(t *testing.T, baseURL string, edit func(*httpx.Config)) *httpx.Client {
	t.Helper()
	cfg := httpx.Config{Service: "test", BaseURL: baseURL, ParseError: httpx.SeedErrors}
	if edit != nil {
		edit(&cfg)
	}
	c, err := httpx.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// events records what an Observer is told, in order: "POST /user 503"
// for an attempt, "retry 5xx" for a retry.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) ObserveRequest(method, route string, code int, _ time.Duration) {
	e.add(fmt.Sprintf("%s %s %d", method, route, code))
}

func (e *events) ObserveRetry(reason string) { e.add("retry " + reason) }

func (e *events) add(event string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, event)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// fail answers status with a PagerTree error body.
func fail(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"errors":[{"message":"` + message + `"}]}`))
}
