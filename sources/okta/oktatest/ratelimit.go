package oktatest

import (
	"net/http"
	"strconv"
	"time"
)

// A bucket counts the requests of one rate-limit bucket in its current
// window. Okta's windows start with a bucket's first request rather than on
// the wall clock's minute.
type bucket struct {
	used  int
	reset time.Time
}

// admit counts a request against its bucket and sets Okta's rate-limit
// headers. When the bucket is exhausted it answers 429 E0000047 itself and
// returns false.
func (s *Server) admit(w http.ResponseWriter, name string, now time.Time) bool {
	limit := s.opts.RateLimit
	if limit <= 0 {
		return true
	}
	s.mu.Lock()
	b := s.buckets[name]
	if b == nil || !now.Before(b.reset) {
		b = &bucket{reset: windowEnd(now, s.opts.RateWindow)}
		s.buckets[name] = b
	}
	ok := b.used < limit
	if ok {
		b.used++
	} else {
		s.violations++
	}
	remaining, reset := limit-b.used, b.reset
	s.mu.Unlock()

	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if !ok {
		writeError(w, http.StatusTooManyRequests, codeRateLimited, "API call exceeded rate limit due to too many requests.")
	}
	return ok
}

// windowEnd is when a window starting at now ends. X-Rate-Limit-Reset is in
// whole seconds, so the window is stretched to the next whole second: a
// client that waits until the advertised reset is then never early.
func windowEnd(now time.Time, window time.Duration) time.Time {
	end := now.Add(window)
	if t := end.Truncate(time.Second); t.Before(end) {
		return t.Add(time.Second)
	}
	return end
}
