package pagertree_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
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
		c := newClient(t, s.URL(), func(cfg *pagertree.Config) {
			cfg.Observer = obs
			cfg.MaxAttempts = 100
			cfg.MaxRetryWait = 2 * time.Hour
		})

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
	// The client's limiter lets requests go at least 1/rps apart; between it
	// and the emulator's clock, transit times vary, which can bring two
	// arrivals closer by the difference. So the emulator counts a request
	// as over the rate only when it arrives more than half a turn (100 ms)
	// ahead of it: jitter below that passes, while a client that sends even
	// one request more than rps allows in some window arrives a whole turn
	// (200 ms) early there and is counted, unless jitter above 100 ms hides
	// it. A burst of 2 or 3 in the client's limiter fails this test.
	const rps = 5
	s := newEmulator(t)
	users := addUsers(t, s, 1)
	// The server also enforces exactly the client's rate, with its
	// bucket's default slack of one request.
	s.SetFaults(pagertreetest.Faults{RateLimit: rps, RateTolerance: time.Second / rps / 2})
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.RequestsPerSecond = rps; cfg.MaxAttempts = 1 })

	const requests, workers = 15, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < requests; i += workers {
				if _, err := c.GetUser(ctx(t), users[0].ID); err != nil {
					t.Errorf("GetUser: %v", err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.RateViolations != 0 {
		t.Fatalf("%d requests arrived ahead of their turn at %d per second (statuses %v)", st.RateViolations, rps, st.Status)
	}
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

func TestLostTeamCreateFindsTheTeamItMade(t *testing.T) {
	const marker = "[managed by ptsync: source=corp group=g1]"
	tests := []struct {
		name  string
		older *pagertree.Team // in the account before the create
		// meanwhile, when set, changes the committed team before the
		// client looks for it.
		meanwhile func(t *testing.T, c *pagertree.Client, created pagertree.Team, members []pagertree.User)
	}{
		{name: "an older team of the same name, another description", older: &pagertree.Team{Name: "Ops", Description: "made by hand"}},
		{name: "an older duplicate of the same name and marker", older: &pagertree.Team{Name: "Ops", Description: marker}},
		{
			name: "members changed before the lookup",
			meanwhile: func(t *testing.T, c *pagertree.Client, created pagertree.Team, members []pagertree.User) {
				if _, err := c.UpdateTeam(ctx(t), created.ID, pagertree.TeamUpdate{MemberUserIDs: &[]string{members[1].ID}}); err != nil {
					t.Errorf("UpdateTeam: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEmulator(t)
			members := addUsers(t, s, 2)
			if tt.older != nil {
				if _, err := s.AddTeam(*tt.older); err != nil {
					t.Fatalf("AddTeam: %v", err)
				}
			}
			before := len(s.Teams())
			s.SetFaults(pagertreetest.Faults{DropCreateRate: 1})
			other := newClient(t, s.URL(), nil)
			rec := newRecorder()
			rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
				if r.Method == http.MethodPost && r.URL.Path == "/team" && err != nil && tt.meanwhile != nil {
					teams := s.Teams()
					tt.meanwhile(t, other, teams[len(teams)-1], members)
				}
				return resp, err
			}
			c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

			in := pagertree.TeamInput{Name: "Ops", Description: marker, MemberUserIDs: []string{members[0].ID}}
			got, err := c.CreateTeam(ctx(t), in)
			if err != nil {
				t.Fatalf("CreateTeam: %v", err)
			}
			teams := s.Teams()
			if len(teams) != before+1 {
				t.Fatalf("%d teams after the create, want exactly one more than the %d before", len(teams), before)
			}
			committed := teams[len(teams)-1]
			if got.ID != committed.ID || got.Name != in.Name || got.Description != in.Description || !slices.Equal(got.MemberUserIDs, committed.MemberUserIDs) {
				t.Fatalf("CreateTeam = %+v; want the team the create committed, %+v", got, committed)
			}
			if st := s.Stats(); st.Dropped != 1 || st.Requests["POST /team"] != 1 {
				t.Fatalf("dropped %d, requests %v; want the one create dropped and not sent again", st.Dropped, st.Requests)
			}
		})
	}
}

func TestCreateLostOnTheLastAttemptIsFound(t *testing.T) {
	tests := []struct {
		name string
		// create makes the object and returns its id and the ids stored.
		create       func(t *testing.T, c *pagertree.Client, s *pagertreetest.Server) (got string, stored []string, err error)
		wantRequests map[string]int
	}{
		{
			name: "user",
			create: func(t *testing.T, c *pagertree.Client, s *pagertreetest.Server) (string, []string, error) {
				u, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Bo", Email: "bo@example.com"})
				return u.ID, ids(s.Users(), userID), err
			},
			wantRequests: map[string]int{"POST /public/login": 1, "POST /user": 1, "GET /user": 1},
		},
		{
			name: "team",
			create: func(t *testing.T, c *pagertree.Client, s *pagertreetest.Server) (string, []string, error) {
				tm, err := c.CreateTeam(ctx(t), pagertree.TeamInput{Name: "Ops", Description: "on call"})
				return tm.ID, ids(s.Teams(), teamID), err
			},
			wantRequests: map[string]int{"POST /public/login": 1, "POST /team": 1, "GET /team": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEmulator(t)
			s.SetFaults(pagertreetest.Faults{DropCreateRate: 1})
			c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.MaxAttempts = 1 })

			got, stored, err := tt.create(t, c, s)
			if err != nil {
				t.Fatalf("create: %v; want the committed object", err)
			}
			if len(stored) != 1 || got != stored[0] {
				t.Fatalf("create returned %q, the account has %q; want exactly that one", got, stored)
			}
			if st := s.Stats(); st.Dropped != 1 || !mapsEqual(st.Requests, tt.wantRequests) {
				t.Fatalf("dropped %d, requests %v; want 1 dropped and requests %v", st.Dropped, st.Requests, tt.wantRequests)
			}
		})
	}
}

func TestRetryAfterBeyondMaxRetryWaitIsNotWaitedFor(t *testing.T) {
	tests := []struct {
		name         string
		retryAfter   time.Duration // the emulator's, in whole seconds
		maxRetryWait time.Duration
		wantRequests int
	}{
		{name: "longer than the default bound", retryAfter: time.Hour, wantRequests: 1},
		{name: "longer than the bound configured", retryAfter: 3 * time.Second, maxRetryWait: 2 * time.Second, wantRequests: 1},
		{name: "equal to the bound is waited for", retryAfter: time.Second, maxRetryWait: time.Second, wantRequests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newEmulator(t)
			users := addUsers(t, s, 1)
			callCtx, cancel := context.WithCancel(ctx(t))
			defer cancel()
			// A retry not wanted would wait out the hour: cancelled, it
			// fails the test at once instead of hanging it.
			obs := &observer{onRetry: func(string) {
				if tt.wantRequests == 1 {
					cancel()
				}
			}}
			c := newClient(t, s.URL(), func(cfg *pagertree.Config) {
				cfg.MaxRetryWait = tt.maxRetryWait
				cfg.MaxAttempts = 2
				cfg.Observer = obs
			})
			if err := c.Login(ctx(t)); err != nil {
				t.Fatalf("Login: %v", err)
			}
			s.SetFaults(pagertreetest.Faults{RateLimitRate: 1, RetryAfter: tt.retryAfter})
			s.ResetStats()

			_, err := c.GetUser(callCtx, users[0].ID)
			var apiErr *pagertree.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests || apiErr.RetryAfter != tt.retryAfter {
				t.Fatalf("GetUser: %v; want a 429 *APIError with RetryAfter %v", err, tt.retryAfter)
			}
			st := s.Stats()
			if !mapsEqual(st.Requests, map[string]int{"GET /user/:id": tt.wantRequests}) {
				t.Fatalf("requests %v; want %d GET /user/:id", st.Requests, tt.wantRequests)
			}
			if st.EarlyRetries != 0 {
				t.Fatalf("%d retries came before their Retry-After", st.EarlyRetries)
			}
		})
	}
	t.Run("a 503 asking for longer than the bound", func(t *testing.T) {
		var mu sync.Mutex
		requests := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/public/login" {
				_, _ = w.Write([]byte(`{"token":"t"}`))
				return
			}
			mu.Lock()
			requests++
			mu.Unlock()
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		callCtx, cancel := context.WithCancel(ctx(t))
		defer cancel()
		obs := &observer{onRetry: func(string) { cancel() }} // as above
		c := newClient(t, srv.URL, func(cfg *pagertree.Config) { cfg.Observer = obs })

		_, err := c.ListTeams(callCtx)
		var apiErr *pagertree.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || apiErr.RetryAfter != 10*time.Minute {
			t.Fatalf("ListTeams: %v; want a 503 *APIError with RetryAfter 10m", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if requests != 1 {
			t.Fatalf("%d requests, want 1", requests)
		}
	})
}
