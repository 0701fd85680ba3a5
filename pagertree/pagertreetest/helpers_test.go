package pagertreetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// newTestServer starts an emulator closed when the test ends.
func newTestServer(t testing.TB) *Server {
	t.Helper()
	s := NewServer(Options{})
	t.Cleanup(s.Close)
	return s
}

// setClock replaces the server's clock; guarded because handlers read it.
func (s *Server) setClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(s *Server) *fakeClock {
	c := &fakeClock{t: time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)}
	s.setClock(c.now)
	return c
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// reply is an HTTP answer read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// send makes one request; token "" sends no Authorization header. It
// never stops the test, so goroutines may call it.
func send(t testing.TB, s *Server, token, method, path, body string) (reply, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// call is send for requests that must get an answer.
func call(t testing.TB, s *Server, token, method, path, body string) reply {
	t.Helper()
	r, err := send(t, s, token, method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// expect is call asserting the status.
func expect(t testing.TB, s *Server, token, method, path, body string, status int) reply {
	t.Helper()
	r := call(t, s, token, method, path, body)
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, status, r.body)
	}
	return r
}

// login returns a fresh token for the default credentials.
func login(t testing.TB, s *Server) string {
	t.Helper()
	r := expect(t, s, "", http.MethodPost, "/public/login", `{"username":"admin@example.com","password":"password"}`, http.StatusOK)
	var out struct {
		Token string `json:"token"`
	}
	decodeStrict(t, r, &out)
	if out.Token == "" {
		t.Fatalf("login answered an empty token: %s", r.body)
	}
	return out.Token
}

// decodeStrict decodes a JSON answer into v, failing on any key v lacks
// and on a Content-Type other than application/json.
func decodeStrict(t testing.TB, r reply, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// errorMessage returns the one message of an error answer, checking the
// body has exactly the seed's shape.
func errorMessage(t testing.TB, r reply) string {
	t.Helper()
	var body pagertree.ErrorBody
	decodeStrict(t, r, &body)
	if len(body.Errors) != 1 {
		t.Fatalf("error body %s: want exactly one error", r.body)
	}
	return body.Errors[0].Message
}

func decodeUser(t testing.TB, r reply) pagertree.User {
	t.Helper()
	var u pagertree.User
	decodeStrict(t, r, &u)
	return u
}

func decodeTeam(t testing.TB, r reply) pagertree.Team {
	t.Helper()
	var tm pagertree.Team
	decodeStrict(t, r, &tm)
	return tm
}

func mustAddUser(t testing.TB, s *Server, u pagertree.User) pagertree.User {
	t.Helper()
	added, err := s.AddUser(u)
	if err != nil {
		t.Fatal(err)
	}
	return added
}

func mustAddTeam(t testing.TB, s *Server, tm pagertree.Team) pagertree.Team {
	t.Helper()
	added, err := s.AddTeam(tm)
	if err != nil {
		t.Fatal(err)
	}
	return added
}
