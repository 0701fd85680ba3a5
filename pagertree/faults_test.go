package pagertree_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	zapobserver "go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// createUsers creates n users user0000@example.com… from workers
// goroutines and returns what CreateUser returned, by index.
func createUsers(t *testing.T, c *pagertree.Client, n, workers int) []pagertree.User {
	t.Helper()
	created := make([]pagertree.User, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				u, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: fmt.Sprintf("User %d", i), Email: fmt.Sprintf("user%04d@example.com", i)})
				if err != nil {
					t.Errorf("CreateUser %d: %v", i, err)
					continue
				}
				created[i] = u
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return created
}

func TestConcurrentCreatesSurviveFaults(t *testing.T) {
	s := newEmulator(t)
	s.SetFaults(pagertreetest.Faults{DropCreateRate: 0.05, ErrorRate: 0.10, RateLimitRate: 0.05, Seed: 7})
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Concurrency = 4 })

	const n = 500
	created := createUsers(t, c, n, 8)

	stored := s.Users()
	if len(stored) != n {
		t.Fatalf("the account has %d users, want exactly %d", len(stored), n)
	}
	byEmail := map[string]pagertree.User{}
	for _, u := range stored {
		key := strings.ToLower(u.Email)
		if _, dup := byEmail[key]; dup {
			t.Fatalf("email %s stored twice", key)
		}
		byEmail[key] = u
	}
	for i, u := range created {
		want := byEmail[fmt.Sprintf("user%04d@example.com", i)]
		if u != want {
			t.Fatalf("CreateUser %d returned %+v, the account has %+v", i, u, want)
		}
	}
	st := s.Stats()
	// Each fault fired, or the test proved nothing.
	if st.Dropped == 0 || st.Status[http.StatusInternalServerError] == 0 || st.Status[http.StatusTooManyRequests] == 0 {
		t.Fatalf("faults did not fire: dropped %d, statuses %v", st.Dropped, st.Status)
	}
	t.Logf("%d dropped, statuses %v, requests %v", st.Dropped, st.Status, st.Requests)
}

func TestTokenExpiryIsSurvivedWithoutALoginStorm(t *testing.T) {
	tests := []struct {
		name    string
		workers int
	}{
		{"one at a time", 1},
		{"concurrently", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEmulator(t)
			s.SetFaults(pagertreetest.Faults{TokenTTL: 50})
			c := newClient(t, s.URL(), nil)

			createUsers(t, c, 200, tt.workers)

			st := s.Stats()
			// 200 accepted requests, 50 per token: exactly four logins, one
			// per token, however many requests met the expiry at once.
			if len(s.Users()) != 200 || st.Requests["POST /public/login"] != 4 {
				t.Fatalf("%d users, %d logins (statuses %v); want 200 users and 4 logins", len(s.Users()), st.Requests["POST /public/login"], st.Status)
			}
			if tt.workers == 1 && st.Status[http.StatusUnauthorized] != 3 {
				t.Fatalf("%d answers 401, want 3", st.Status[http.StatusUnauthorized])
			}
		})
	}
}

func TestCreateWhoseAttemptTimedOutIsFoundNotRepeated(t *testing.T) {
	s := newEmulator(t)
	rec := newRecorder()
	var stall sync.Once
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		stalled := false
		if r.Method == http.MethodPost && r.URL.Path == "/user" {
			stall.Do(func() { stalled = true })
		}
		if stalled && err == nil {
			// The server committed the user; its answer never comes.
			resp.Body.Close()
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		return resp, err
	}
	obs := &observer{}
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) {
		cfg.HTTPClient = rec.client()
		cfg.Observer = obs
		cfg.Timeout = time.Second // long enough for the requests that do get an answer
	})

	u, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Cy", Email: "cy@example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if stored := s.Users(); len(stored) != 1 || stored[0] != u {
		t.Fatalf("CreateUser = %+v; stored %+v; want the one user", u, stored)
	}
	if got := s.Stats().Requests; got["POST /user"] != 1 || got["GET /user"] != 1 {
		t.Fatalf("requests %v; want one create and one lookup", got)
	}
	if requests, _ := obs.seen(); requests[1] != (observedRequest{"POST", "/user", 0}) {
		t.Fatalf("observed %v; want the timed-out create with code 0", requests)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := newEmulator(t)
	users := addUsers(t, s, 1)
	s.SetFaults(pagertreetest.Faults{RateLimitRate: 0.4, RetryAfter: time.Second, Seed: 3})
	c := newClient(t, s.URL(), nil)

	for range 3 {
		if _, err := c.GetUser(ctx(t), users[0].ID); err != nil {
			t.Fatalf("GetUser: %v", err)
		}
	}
	st := s.Stats()
	if st.Status[http.StatusTooManyRequests] == 0 {
		t.Fatalf("no 429 was answered (statuses %v): pick another seed", st.Status)
	}
	if st.RetryAfterViolations != 0 || st.EarlyRetries != 0 {
		t.Fatalf("%d requests came before their Retry-After (%d repeats); want none", st.RetryAfterViolations, st.EarlyRetries)
	}
}

func TestCancellationStopsRetries(t *testing.T) {
	t.Run("during the backoff", func(t *testing.T) {
		s := newEmulator(t)
		// Every answer is a 429 asking for an hour: only cancellation can
		// end the wait.
		s.SetFaults(pagertreetest.Faults{RateLimitRate: 1, RetryAfter: time.Hour})
		callCtx, cancel := context.WithCancel(ctx(t))
		obs := &observer{onRetry: func(string) { cancel() }}
		c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Observer = obs; cfg.MaxAttempts = 100 })

		_, err := c.ListUsers(callCtx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ListUsers: %v; want context.Canceled", err)
		}
		if got := s.Stats().Requests; !mapsEqual(got, map[string]int{"POST /public/login": 1}) {
			t.Fatalf("requests %v; want the one login before the cancel", got)
		}
	})
	t.Run("with an answer awaited", func(t *testing.T) {
		s := newEmulator(t)
		s.SetFaults(pagertreetest.Faults{Latency: time.Hour})
		callCtx, cancel := context.WithCancel(ctx(t))
		arrived := make(chan struct{})
		var once sync.Once
		rec := newRecorder()
		rec.before = func(*http.Request) { once.Do(func() { close(arrived) }) }
		c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client(); cfg.MaxAttempts = 100 })
		go func() {
			<-arrived
			cancel()
		}()

		err := c.Login(callCtx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Login: %v; want context.Canceled", err)
		}
		if n := len(rec.requests()); n != 1 {
			t.Fatalf("%d requests sent, want 1", n)
		}
	})
	t.Run("waiting for the rate limiter", func(t *testing.T) {
		s := newEmulator(t)
		// One request per hour: the login takes it, so the list waits.
		c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.RequestsPerSecond = 1.0 / 3600 })
		if err := c.Login(ctx(t)); err != nil {
			t.Fatalf("Login: %v", err)
		}
		callCtx, cancel := context.WithCancel(ctx(t))
		go func() {
			time.Sleep(20 * time.Millisecond) // let ListUsers start waiting; not an assertion
			cancel()
		}()
		_, err := c.ListUsers(callCtx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ListUsers: %v; want context.Canceled", err)
		}
		if got := s.Stats().Requests; !mapsEqual(got, map[string]int{"POST /public/login": 1}) {
			t.Fatalf("requests %v; want the login only", got)
		}
	})
	t.Run("against a server that always fails", func(t *testing.T) {
		s := newEmulator(t)
		s.SetFaults(pagertreetest.Faults{ErrorRate: 1})
		callCtx, cancel := context.WithCancel(ctx(t))
		var once sync.Once
		obs := &observer{onRetry: func(string) { once.Do(func() { go cancel() }) }}
		c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Observer = obs; cfg.MaxAttempts = 1000 })

		_, err := c.CreateTeam(callCtx, pagertree.TeamInput{Name: "Ops"})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("CreateTeam: %v; want context.Canceled", err)
		}
		// The cancel lands during the first backoff, or the attempt after it.
		if got := s.Stats().Requests["POST /public/login"]; got < 1 || got > 2 {
			t.Fatalf("%d logins tried, want 1 or 2 (requests %v)", got, s.Stats().Requests)
		}
	})
}

func TestRequestsPerSecondIsNeverExceeded(t *testing.T) {
	// The emulator's bucket holds one request of slack, so scheduling delays
	// of up to 1/rps between the client's limiter and the server's clock
	// go unpunished; a low rate keeps that margin (100 ms) well above what
	// a loaded machine running -race produces.
	const rps = 10
	s := newEmulator(t)
	users := addUsers(t, s, 1)
	// The server allows exactly as much as the client is told to send.
	s.SetFaults(pagertreetest.Faults{RateLimit: rps})
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.RequestsPerSecond = rps; cfg.MaxAttempts = 1 })

	const requests = 30
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < requests; i += 8 {
				if _, err := c.GetUser(ctx(t), users[0].ID); err != nil {
					t.Errorf("GetUser: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Status[http.StatusTooManyRequests] != 0 || st.Status[http.StatusOK] != requests+1 {
		t.Fatalf("statuses %v; want %d answers 200 (with the login) and no 429", st.Status, requests+1)
	}
}

func TestNoSecretInLogsOrErrors(t *testing.T) {
	const password = "correct-horse-battery-staple"
	s := pagertreetest.NewServer(pagertreetest.Options{Password: password})
	t.Cleanup(s.Close)
	core, logs := zapobserver.New(zapcore.DebugLevel)
	rec := newRecorder()
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) {
		cfg.Password = password
		cfg.HTTPClient = rec.client()
		cfg.Logger = zap.New(core)
		cfg.MaxAttempts = 2
	})

	var errs []error
	record := func(err error) {
		if err == nil {
			t.Fatal("the call meant to fail succeeded")
		}
		errs = append(errs, err)
	}
	_, err := c.GetUser(ctx(t), "usr_missing") // 404
	record(err)
	s.ExpireTokens() // a 401, a fresh login, then the 404 again
	_, err = c.GetUser(ctx(t), "usr_missing")
	record(err)
	s.SetFaults(pagertreetest.Faults{ErrorRate: 1}) // 5xx until giving up
	_, err = c.ListUsers(ctx(t))
	record(err)
	s.SetFaults(pagertreetest.Faults{})
	wrong := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.Password = "wrong-" + password; cfg.Logger = zap.New(core) })
	record(wrong.Login(ctx(t))) // 401 on login

	// A server that echoes the token and password it was given.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token":"echoed-token-0123456789"}`))
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"errors":[{"message":"bad token %s for password %s"}]}`, r.Header.Get("Authorization"), password)
	}))
	t.Cleanup(echo.Close)
	echoing := newClient(t, echo.URL, func(cfg *pagertree.Config) { cfg.Password = password; cfg.Logger = zap.New(core) })
	_, err = echoing.ListTeams(ctx(t))
	record(err)
	if !strings.Contains(err.Error(), "bad token [redacted] for password [redacted]") {
		t.Fatalf("echoed secrets not redacted: %v", err)
	}

	secrets := append(rec.issuedTokens(), password, "echoed-token-0123456789")
	if len(secrets) < 4 { // two tokens from the emulator
		t.Fatalf("captured tokens %d, want 2", len(secrets)-2)
	}
	var texts []string
	for _, err := range errs {
		texts = append(texts, err.Error())
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged, so nothing was checked")
	}
	for _, entry := range logs.All() {
		texts = append(texts, entry.Message+" "+fmt.Sprint(entry.ContextMap()))
	}
	for _, text := range texts {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("a secret leaked into %q", text)
			}
		}
		if strings.Contains(strings.ToLower(text), "authorization") {
			t.Errorf("an Authorization header is mentioned in %q", text)
		}
	}
}
