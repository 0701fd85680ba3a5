package oktatest_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

// wantRate checks a response's rate-limit headers.
func wantRate(t *testing.T, r response, status, limit, remaining int, reset time.Time) {
	t.Helper()
	h := r.header
	if r.status != status || h.Get("X-Rate-Limit-Limit") != strconv.Itoa(limit) ||
		h.Get("X-Rate-Limit-Remaining") != strconv.Itoa(remaining) || h.Get("X-Rate-Limit-Reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Errorf("got %d limit %s remaining %s reset %s; want %d %d %d %d", r.status,
			h.Get("X-Rate-Limit-Limit"), h.Get("X-Rate-Limit-Remaining"), h.Get("X-Rate-Limit-Reset"),
			status, limit, remaining, reset.Unix())
	}
}

func TestRateLimit(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.RateLimit, o.RateWindow = 3, 2*time.Second })
	groups := s.URL() + "/api/v1/groups"
	members := s.URL() + "/api/v1/groups/" + groupID(0) + "/users"
	users := s.URL() + "/api/v1/users"

	// The clock is at 05:06:07.25: the window's two seconds end at 09.25,
	// which X-Rate-Limit-Reset, in whole seconds, rounds up to 10.
	reset := time.Date(2026, 3, 4, 5, 6, 10, 0, time.UTC)
	wantRate(t, get(t, groups, ssws()), 200, 3, 2, reset)
	wantRate(t, get(t, members, ssws()), 200, 3, 1, reset) // the same bucket
	wantRate(t, get(t, groups, ssws()), 200, 3, 0, reset)
	r := get(t, groups, ssws())
	wantRate(t, r, 429, 3, 0, reset)
	if e := wantError(t, r, 429, "E0000047"); e.ErrorSummary != "API call exceeded rate limit due to too many requests." {
		t.Errorf("summary %q", e.ErrorSummary)
	}

	// Other buckets have their own quota. Failed requests use it too.
	wantRate(t, get(t, users, ssws()), 200, 3, 2, reset)
	wantRate(t, get(t, users, "SSWS wrong"), 401, 3, 1, reset)
	wantRate(t, postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), "okta.users.read")), 200, 3, 2, reset)

	c.Set(reset.Add(-time.Nanosecond))
	wantRate(t, get(t, members, ssws()), 429, 3, 0, reset)
	if n := s.RateLimitViolations(); n != 2 {
		t.Errorf("violations %d, want 2", n)
	}

	c.Set(reset)
	wantRate(t, get(t, groups, ssws()), 200, 3, 2, reset.Add(2*time.Second))
	if n := s.RateLimitViolations(); n != 2 {
		t.Errorf("violations %d after reset, want 2", n)
	}
}

// The fake's Date follows its clock, for clients that compute their wait as
// X-Rate-Limit-Reset minus Date.
func TestDateFollowsClock(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.RateLimit = 10 })
	c.Advance(time.Hour)
	r := get(t, s.URL()+"/api/v1/groups", ssws())
	if d := r.header.Get("Date"); d != "Wed, 04 Mar 2026 06:06:07 GMT" {
		t.Errorf("Date %q", d)
	}
	// One minute, Okta's window, by default.
	if reset := r.header.Get("X-Rate-Limit-Reset"); reset != strconv.FormatInt(time.Date(2026, 3, 4, 6, 7, 8, 0, time.UTC).Unix(), 10) {
		t.Errorf("reset %s", reset)
	}
	if r.header.Get("X-Okta-Request-Id") == "" {
		t.Error("no X-Okta-Request-Id")
	}
}

func TestNoRateLimit(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	for _, r := range []response{
		get(t, s.URL()+"/api/v1/groups", ssws()),
		postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), "okta.users.read")),
	} {
		if r.status != http.StatusOK || r.header.Get("X-Rate-Limit-Limit") != "" || r.header.Get("X-Rate-Limit-Reset") != "" {
			t.Errorf("%d %v", r.status, r.header)
		}
	}
}
