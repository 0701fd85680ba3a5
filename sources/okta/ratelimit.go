package okta

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ptsync/ptsync/internal/httpx"
)

// rateGate paces requests by Okta's rate-limit headers: every answer
// carries X-Rate-Limit-Limit, -Remaining and -Reset (epoch seconds) of its
// endpoint's bucket. Once a bucket has fewer requests left than may be in
// flight at once, no request of that bucket goes out before the reset, so
// ptsync waits rather than collecting a 429 (E0000047).
type rateGate struct {
	margin int // requests that may be in flight at once
	mu     sync.Mutex
	limits map[string]bucketState
}

type bucketState struct {
	remaining int
	reset     int64     // the window's end, epoch seconds by Okta's clock
	openAt    time.Time // local time the window ends
}

func newRateGate(concurrency int) *rateGate {
	return &rateGate{margin: max(concurrency, 1), limits: map[string]bucketState{}}
}

// bucket names the rate-limit bucket of a route: Okta limits families of
// endpoints ("/groups" with "/groups/{id}/users", "/users").
func bucket(route string) string {
	first, _, _ := strings.Cut(strings.TrimPrefix(route, "/"), "/")
	return first
}

// Wait blocks while route's bucket is spent and its window still open.
func (g *rateGate) Wait(ctx context.Context, route string) error {
	g.mu.Lock()
	st, known := g.limits[bucket(route)]
	g.mu.Unlock()
	if !known || st.remaining >= g.margin {
		return nil
	}
	if wait := time.Until(st.openAt); wait > 0 {
		return httpx.Sleep(ctx, wait)
	}
	return nil
}

// Observe records an answer's rate-limit headers. Answers of one window
// may arrive out of order: the smallest Remaining seen in it stands.
func (g *rateGate) Observe(route string, h http.Header, now time.Time) {
	remaining, err1 := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, err2 := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	st := bucketState{remaining: remaining, reset: reset, openAt: now.Add(untilReset(h, now))}
	g.mu.Lock()
	defer g.mu.Unlock()
	key := bucket(route)
	if old, ok := g.limits[key]; ok && old.reset == reset {
		st.remaining = min(st.remaining, old.remaining)
	} else if ok && old.reset > reset {
		return // an answer of a window already past
	}
	g.limits[key] = st
}

// untilReset is how long until X-Rate-Limit-Reset, measured on Okta's own
// clock (its Date header) so a skewed local clock neither waits too long
// nor comes back too early. It is the wait before retrying a 429.
func untilReset(h http.Header, now time.Time) time.Duration {
	reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil {
		return 0
	}
	serverNow := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		serverNow = date
	}
	return max(time.Unix(reset, 0).Sub(serverNow), 0)
}
