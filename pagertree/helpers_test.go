package pagertree_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// newEmulator starts an emulator with the default credentials.
func newEmulator(t testing.TB) *pagertreetest.Server {
	t.Helper()
	s := pagertreetest.NewServer(pagertreetest.Options{})
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client of url with the emulator's default
// credentials; edit changes the config first when not nil.
func newClient(t testing.TB, url string, edit func(*pagertree.Config)) *pagertree.Client {
	t.Helper()
	cfg := pagertree.Config{
		URL:      url,
		Username: pagertreetest.DefaultUsername,
		Password: pagertreetest.DefaultPassword,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := pagertree.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// addUsers preloads n users named user0000@example.com and so on.
func addUsers(t testing.TB, s *pagertreetest.Server, n int) []pagertree.User {
	t.Helper()
	users := make([]pagertree.User, n)
	for i := range n {
		u, err := s.AddUser(pagertree.User{Name: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("user%04d@example.com", i)})
		if err != nil {
			t.Fatalf("AddUser: %v", err)
		}
		users[i] = u
	}
	return users
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = id(v)
	}
	return out
}

func userID(u pagertree.User) string { return u.ID }
func teamID(t pagertree.Team) string { return t.ID }

// sentRequest is what recorder saw of one request.
type sentRequest struct {
	Method, Path, Query string
	Authorization       string
	HasAuthorization    bool
	Body                string
}

// recorder is an http.RoundTripper that records every request, keeps the
// tokens login answers carry, and lets a test act on a request before it
// goes out (before) or replace what came back (after).
type recorder struct {
	next   http.RoundTripper
	before func(r *http.Request)
	after  func(r *http.Request, resp *http.Response, err error) (*http.Response, error)

	mu     sync.Mutex
	sent   []sentRequest
	tokens []string
}

func newRecorder() *recorder {
	return &recorder{next: http.DefaultTransport.(*http.Transport).Clone()}
}

func (rec *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	auth, hasAuth := r.Header["Authorization"]
	rec.mu.Lock()
	rec.sent = append(rec.sent, sentRequest{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Authorization: strings.Join(auth, ","), HasAuthorization: hasAuth, Body: string(body),
	})
	rec.mu.Unlock()
	if rec.before != nil {
		rec.before(r)
	}
	resp, err := rec.next.RoundTrip(r)
	if err == nil && r.URL.Path == "/public/login" {
		data, readErr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if readErr != nil {
			return nil, readErr
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
		var answer struct{ Token string }
		if json.Unmarshal(data, &answer) == nil && answer.Token != "" {
			rec.mu.Lock()
			rec.tokens = append(rec.tokens, answer.Token)
			rec.mu.Unlock()
		}
	}
	if rec.after != nil {
		return rec.after(r, resp, err)
	}
	return resp, err
}

func (rec *recorder) client() *http.Client { return &http.Client{Transport: rec} }

func (rec *recorder) requests() []sentRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]sentRequest(nil), rec.sent...)
}

func (rec *recorder) issuedTokens() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.tokens...)
}

// observedRequest is one Observer.ObserveRequest call.
type observedRequest struct {
	Method, Route string
	Code          int
}

// observer records Observer calls; onRetry, when set, runs on each retry.
type observer struct {
	onRetry func(reason string)

	mu       sync.Mutex
	requests []observedRequest
	retries  []string
}

func (o *observer) ObserveRequest(method, route string, code int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, observedRequest{Method: method, Route: route, Code: code})
}

func (o *observer) ObserveRetry(reason string) {
	o.mu.Lock()
	o.retries = append(o.retries, reason)
	o.mu.Unlock()
	if o.onRetry != nil {
		o.onRetry(reason)
	}
}

func (o *observer) seen() ([]observedRequest, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observedRequest(nil), o.requests...), append([]string(nil), o.retries...)
}

// ctx is a test's context.
func ctx(t testing.TB) context.Context { return t.Context() }
