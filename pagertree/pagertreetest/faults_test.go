package pagertreetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

func TestErrorRate(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	s.SetFaults(Faults{ErrorRate: 1})
	s.ResetStats()
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/user", ""},
		{http.MethodPost, "/user", `{"email":"ann@example.com"}`},
		{http.MethodPost, "/team", `{"name":"DB"}`},
		{http.MethodPost, "/public/login", `{"username":"admin@example.com","password":"password"}`},
	} {
		r := expect(t, s, token, req.method, req.path, req.body, http.StatusInternalServerError)
		if got := errorMessage(t, r); got != "internal server error" {
			t.Errorf("%s %s: message %q", req.method, req.path, got)
		}
	}
	if len(s.Users()) != 0 || len(s.Teams()) != 0 {
		t.Errorf("a 500 committed something: %d users, %d teams", len(s.Users()), len(s.Teams()))
	}
	if st := s.Stats(); st.WriteAttempts != 2 || st.Writes != 0 || st.Status[http.StatusInternalServerError] != 4 {
		t.Errorf("stats %+v: want 2 write attempts, 0 writes, 4 answers 500", st)
	}
}

func TestRateLimitRate(t *testing.T) {
	tests := []struct {
		retryAfter time.Duration
		wantHeader string
	}{
		{0, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{10 * time.Millisecond, "1"},
		{7 * time.Second, "7"},
	}
	for _, tt := range tests {
		t.Run(tt.retryAfter.String(), func(t *testing.T) {
			s := newTestServer(t)
			token := login(t, s)
			s.SetFaults(Faults{RateLimitRate: 1, RetryAfter: tt.retryAfter})
			r := expect(t, s, token, http.MethodPost, "/user", `{"email":"ann@example.com"}`, http.StatusTooManyRequests)
			if got := r.header.Get("Retry-After"); got != tt.wantHeader {
				t.Errorf("Retry-After %q, want %q", got, tt.wantHeader)
			}
			if got := errorMessage(t, r); got != "too many requests" {
				t.Errorf("message %q", got)
			}
			if len(s.Users()) != 0 {
				t.Errorf("a 429 committed the user")
			}
		})
	}
}

func TestFaultsAreReproducible(t *testing.T) {
	statuses := func() string {
		s := newTestServer(t)
		token := login(t, s)
		s.SetFaults(Faults{ErrorRate: 0.3, RateLimitRate: 0.2, Seed: 42})
		var out []string
		for range 40 {
			out = append(out, fmt.Sprint(call(t, s, token, http.MethodGet, "/user", "").status))
		}
		return strings.Join(out, " ")
	}
	first, second := statuses(), statuses()
	if first != second {
		t.Errorf("same seed, different faults:\n%s\n%s", first, second)
	}
	for _, code := range []string{"200", "429", "500"} {
		if !strings.Contains(first, code) {
			t.Errorf("40 requests at 30%% 500s and 20%% 429s never answered %s: %s", code, first)
		}
	}
}

func TestTokenTTL(t *testing.T) {
	s := newTestServer(t)
	s.SetFaults(Faults{TokenTTL: 3})
	token := login(t, s)
	for i := 1; i <= 3; i++ {
		expect(t, s, token, http.MethodGet, "/user", "", http.StatusOK)
	}
	r := expect(t, s, token, http.MethodGet, "/user", "", http.StatusUnauthorized)
	if got := errorMessage(t, r); got != "invalid or expired token" {
		t.Errorf("message %q", got)
	}
	expect(t, s, token, http.MethodGet, "/team", "", http.StatusUnauthorized) // stays expired
	fresh := login(t, s)
	for i := 1; i <= 3; i++ {
		expect(t, s, fresh, http.MethodGet, "/team", "", http.StatusOK)
	}
	expect(t, s, fresh, http.MethodGet, "/team", "", http.StatusUnauthorized)
}

func TestDropCreate(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
	s.SetFaults(Faults{DropCreateRate: 1})
	s.ResetStats()

	for _, req := range []struct{ path, body string }{
		{"/user", `{"name":"Bo","email":"bo@example.com"}`},
		{"/team", `{"name":"DB"}`},
	} {
		if r, err := send(t, s, token, http.MethodPost, req.path, req.body); err == nil {
			t.Errorf("POST %s answered %d %s; want the connection dropped", req.path, r.status, r.body)
		}
	}
	if users := s.Users(); len(users) != 2 || users[1].Email != "bo@example.com" {
		t.Errorf("the dropped user create was not committed: %+v", users)
	}
	if teams := s.Teams(); len(teams) != 1 || teams[0].Name != "DB" {
		t.Errorf("the dropped team create was not committed: %+v", teams)
	}
	// Only successful creates are dropped.
	expect(t, s, token, http.MethodPost, "/user", `{"email":"BO@example.com"}`, http.StatusConflict)
	expect(t, s, token, http.MethodPut, "/user/"+ann.ID, `{"name":"Ann Lee"}`, http.StatusOK)
	expect(t, s, token, http.MethodGet, "/user", "", http.StatusOK)

	st := s.Stats()
	if st.Dropped != 2 || st.Writes != 3 || st.WriteAttempts != 4 {
		t.Errorf("dropped %d writes %d attempts %d, want 2 3 4", st.Dropped, st.Writes, st.WriteAttempts)
	}
	if want := map[int]int{http.StatusConflict: 1, http.StatusOK: 2}; !maps.Equal(st.Status, want) {
		t.Errorf("status %v, want %v (dropped creates have none)", st.Status, want)
	}
}

func TestRateLimit(t *testing.T) {
	tests := []struct {
		name  string
		burst int
		// wantStatuses for requests at the times given, in seconds after the start
		at           []float64
		wantStatuses []int
	}{
		{"default burst of 2", 0, []float64{0, 0, 0, 0.5, 1, 1, 3, 3, 3}, []int{200, 200, 429, 429, 200, 429, 200, 200, 429}},
		{"burst of 1", 1, []float64{0, 0, 0.5, 1, 1}, []int{200, 429, 429, 200, 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			token := login(t, s)
			clock := newFakeClock(s)
			start := clock.now()
			s.SetFaults(Faults{RateLimit: 1, RateBurst: tt.burst})
			var got []int
			for _, at := range tt.at {
				clock.advance(start.Add(time.Duration(at * float64(time.Second))).Sub(clock.now()))
				r := call(t, s, token, http.MethodGet, "/user", "")
				if r.status == http.StatusTooManyRequests {
					if r.header.Get("Retry-After") != "1" || errorMessage(t, r) != "rate limit exceeded" {
						t.Errorf("429 with Retry-After %q and body %s", r.header.Get("Retry-After"), r.body)
					}
				}
				got = append(got, r.status)
			}
			if !slices.Equal(got, tt.wantStatuses) {
				t.Errorf("statuses %v, want %v", got, tt.wantStatuses)
			}
		})
	}
}

func TestRateViolations(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name      string
		rate      float64
		tolerance time.Duration
		at        []int // arrivals, in ms after the start
		want      int
	}{
		{"evenly spaced", 10, ms(50), []int{0, 100, 200, 300}, 0},
		{"slower than the rate", 10, 0, []int{0, 150, 400}, 0},
		{"early within the tolerance", 10, ms(50), []int{0, 50, 200, 300}, 0},
		{"early past the tolerance", 10, ms(50), []int{0, 49, 200}, 1},
		{"no tolerance", 10, 0, []int{0, 99}, 1},
		{"two at once", 10, ms(50), []int{0, 0, 100, 200}, 1},
		{"three at once count twice", 10, ms(50), []int{0, 0, 0, 100}, 2},
		{"twice the rate", 10, ms(50), []int{0, 50, 100, 150, 200, 250}, 2},
		{"every 60 ms gets further ahead", 10, ms(50), []int{0, 60, 120, 180, 240}, 2},
		{"idle time is not banked", 10, ms(50), []int{0, 1000, 1000}, 1},
		{"every request counts, 429 or not", 1, ms(500), []int{0, 0, 0, 0}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			token := login(t, s)
			clock := newFakeClock(s)
			s.SetFaults(Faults{RateLimit: tt.rate, RateTolerance: tt.tolerance})
			s.ResetStats()
			start := clock.now()
			for _, at := range tt.at {
				clock.advance(start.Add(ms(at)).Sub(clock.now()))
				call(t, s, token, http.MethodGet, "/user", "")
			}
			if got := s.Stats().RateViolations; got != tt.want {
				t.Errorf("rate violations %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("SetFaults restarts the schedule, ResetStats the count", func(t *testing.T) {
		s := newTestServer(t)
		token := login(t, s)
		newFakeClock(s)
		s.SetFaults(Faults{RateLimit: 1})
		call(t, s, token, http.MethodGet, "/user", "")
		call(t, s, token, http.MethodGet, "/user", "")
		if got := s.Stats().RateViolations; got != 1 {
			t.Fatalf("rate violations %d, want 1", got)
		}
		s.ResetStats()
		s.SetFaults(Faults{RateLimit: 1})
		call(t, s, token, http.MethodGet, "/user", "")
		if got := s.Stats().RateViolations; got != 0 {
			t.Fatalf("rate violations %d after ResetStats and SetFaults, want 0", got)
		}
	})
}

func TestRetryAfterViolations(t *testing.T) {
	const userBody = `{"email":"ann@example.com"}`
	type step struct {
		at           time.Duration // after the 429
		method, path string
		body         string
		token        string // "first" or "second" login
	}
	tests := []struct {
		name             string
		steps            []step
		wantViolations   int
		wantEarlyRetries int
	}{
		{"retry before Retry-After", []step{{time.Second, http.MethodPost, "/user", userBody, "first"}}, 1, 1},
		{"other request before Retry-After", []step{{time.Second, http.MethodGet, "/team", "", "first"}}, 1, 0},
		{"same path, other body", []step{{time.Second, http.MethodPost, "/user", `{"email":"bo@example.com"}`, "first"}}, 1, 0},
		{"retry at Retry-After", []step{{2 * time.Second, http.MethodPost, "/user", userBody, "first"}}, 0, 0},
		{"retry after Retry-After", []step{{5 * time.Second, http.MethodPost, "/user", userBody, "first"}}, 0, 0},
		{"another client", []step{{0, http.MethodGet, "/team", "", "second"}}, 0, 0},
		{"another client retrying the same request", []step{{0, http.MethodPost, "/user", userBody, "second"}}, 0, 1},
		{"early twice, then late", []step{
			{0, http.MethodGet, "/user", "", "first"},
			{1999 * time.Millisecond, http.MethodPost, "/user", userBody, "first"},
			{2 * time.Second, http.MethodPost, "/user", userBody, "first"},
			{2 * time.Second, http.MethodGet, "/user", "", "first"},
		}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			tokens := map[string]string{"first": login(t, s), "second": login(t, s)}
			clock := newFakeClock(s)
			s.SetFaults(Faults{RateLimitRate: 1, RetryAfter: 2 * time.Second})
			expect(t, s, tokens["first"], http.MethodPost, "/user", userBody, http.StatusTooManyRequests)
			s.SetFaults(Faults{})
			start := clock.now()
			for _, st := range tt.steps {
				clock.advance(start.Add(st.at).Sub(clock.now()))
				call(t, s, tokens[st.token], st.method, st.path, st.body)
			}
			got := s.Stats()
			if got.RetryAfterViolations != tt.wantViolations || got.EarlyRetries != tt.wantEarlyRetries {
				t.Errorf("violations %d early retries %d, want %d %d", got.RetryAfterViolations, got.EarlyRetries, tt.wantViolations, tt.wantEarlyRetries)
			}
		})
	}
}

// TestRetryAfterWithoutToken keys a client with no token by its address.
func TestRetryAfterWithoutToken(t *testing.T) {
	s := newTestServer(t)
	clock := newFakeClock(s)
	const creds = `{"username":"admin@example.com","password":"password"}`
	s.SetFaults(Faults{RateLimitRate: 1})
	expect(t, s, "", http.MethodPost, "/public/login", creds, http.StatusTooManyRequests)
	s.SetFaults(Faults{})
	expect(t, s, "", http.MethodPost, "/public/login", creds, http.StatusOK)
	clock.advance(time.Second)
	expect(t, s, "", http.MethodPost, "/public/login", creds, http.StatusOK)
	if st := s.Stats(); st.RetryAfterViolations != 1 || st.EarlyRetries != 1 {
		t.Errorf("violations %d early retries %d, want 1 1", st.RetryAfterViolations, st.EarlyRetries)
	}
}

func TestStatsByRoute(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	ann := decodeUser(t, expect(t, s, token, http.MethodPost, "/user", `{"email":"ann@example.com"}`, http.StatusCreated))
	expect(t, s, token, http.MethodPost, "/user", `{"email":"ann@example.com"}`, http.StatusConflict)
	expect(t, s, token, http.MethodGet, "/user?limit=5", "", http.StatusOK)
	expect(t, s, token, http.MethodGet, "/user/"+ann.ID, "", http.StatusOK)
	expect(t, s, token, http.MethodPut, "/user/"+ann.ID, `{"name":"Ann"}`, http.StatusOK)
	team := decodeTeam(t, expect(t, s, token, http.MethodPost, "/team", `{"name":"DB"}`, http.StatusCreated))
	expect(t, s, token, http.MethodPut, "/team/"+team.ID, `{"member_user_ids":["`+ann.ID+`"]}`, http.StatusOK)
	expect(t, s, token, http.MethodDelete, "/team/"+team.ID, "", http.StatusNoContent)
	expect(t, s, token, http.MethodDelete, "/team/"+team.ID, "", http.StatusNotFound)
	expect(t, s, "", http.MethodGet, "/team", "", http.StatusUnauthorized)
	expect(t, s, token, http.MethodGet, "/nowhere", "", http.StatusNotFound)

	got := s.Stats()
	wantRequests := map[string]int{
		"POST /public/login": 1,
		"POST /user":         2,
		"GET /user":          1,
		"GET /user/:id":      1,
		"PUT /user/:id":      1,
		"POST /team":         1,
		"PUT /team/:id":      1,
		"DELETE /team/:id":   2,
		"GET /team":          1,
		"GET (unmatched)":    1,
	}
	if !maps.Equal(got.Requests, wantRequests) {
		t.Errorf("requests %v, want %v", got.Requests, wantRequests)
	}
	wantStatus := map[int]int{200: 5, 201: 2, 204: 1, 401: 1, 404: 2, 409: 1}
	if !maps.Equal(got.Status, wantStatus) {
		t.Errorf("status %v, want %v", got.Status, wantStatus)
	}
	if got.WriteAttempts != 7 || got.Writes != 5 || got.MaxInFlight != 1 {
		t.Errorf("write attempts %d writes %d max in flight %d, want 7 5 1", got.WriteAttempts, got.Writes, got.MaxInFlight)
	}

	// A copy: changing it changes nothing in the server.
	got.Requests["GET /user"] = 100
	if s.Stats().Requests["GET /user"] != 1 {
		t.Error("Stats() shares its map with the server")
	}
	s.ResetStats()
	if st := s.Stats(); len(st.Requests) != 0 || len(st.Status) != 0 || st.Writes != 0 || st.WriteAttempts != 0 || st.MaxInFlight != 0 {
		t.Errorf("after ResetStats: %+v", st)
	}
}

func TestConcurrentCreates(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	s.ResetStats()
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := send(t, s, token, http.MethodPost, "/user", fmt.Sprintf(`{"email":"u%d@example.com"}`, i))
			if err == nil && r.status != http.StatusCreated {
				err = fmt.Errorf("user %d: status %d %s", i, r.status, r.body)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	users := s.Users()
	ids := map[string]bool{}
	for _, u := range users {
		ids[u.ID] = true
	}
	if len(users) != n || len(ids) != n {
		t.Errorf("%d users with %d distinct ids, want %d", len(users), len(ids), n)
	}
	if st := s.Stats(); st.Requests["POST /user"] != n || st.Writes != n || st.Status[http.StatusCreated] != n {
		t.Errorf("stats %+v, want %d creates", st, n)
	}
}

// TestLatencyOverlaps proves latency is served outside the lock: eight
// requests are in the server at once, and the server stays responsive.
func TestLatencyOverlaps(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	s.SetFaults(Faults{Latency: time.Hour})
	s.ResetStats()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/user", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", token)
			if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
				t.Errorf("request under an hour of latency: %v, want it cancelled", err)
			}
		})
	}
	for s.Stats().MaxInFlight < 8 {
		select {
		case <-t.Context().Done():
			t.Fatal("the test ended before 8 requests were in flight")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	wg.Wait()
	if st := s.Stats(); st.MaxInFlight != 8 || len(st.Status) != 0 {
		t.Errorf("max in flight %d, answers %v; want 8 and none", st.MaxInFlight, st.Status)
	}
}
