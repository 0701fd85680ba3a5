package pagertree_test

import (
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// BenchmarkListUsers lists 100,000 users with Concurrency 8 from an
// emulator that takes 20 ms per request. It reports the requests per
// listing (ideal: 1,000) and the time against the ideal of 1,000 × 20 ms
// / 8 = 2.5 s (target: at most 1.25).
func BenchmarkListUsers(b *testing.B) {
	const (
		users       = 100_000
		concurrency = 8
		latency     = 20 * time.Millisecond
	)
	s := newEmulator(b)
	addUsers(b, s, users)
	c := newClient(b, s.URL(), func(cfg *pagertree.Config) { cfg.Concurrency = concurrency })
	if err := c.Login(b.Context()); err != nil { // not part of a listing
		b.Fatalf("Login: %v", err)
	}
	s.SetFaults(pagertreetest.Faults{Latency: latency})
	s.ResetStats()

	listings := 0
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		got, err := c.ListUsers(b.Context())
		elapsed += time.Since(start)
		if err != nil {
			b.Fatalf("ListUsers: %v", err)
		}
		if len(got) != users {
			b.Fatalf("listed %d users, want %d", len(got), users)
		}
		listings++
	}
	ideal := time.Duration(users/100) * latency / concurrency
	st := s.Stats()
	if got, want := st.Requests["GET /user"], listings*users/100; got != want {
		b.Fatalf("%d listings sent %d requests, want %d", listings, got, want)
	}
	b.ReportMetric(float64(st.Requests["GET /user"])/float64(listings), "requests/op")
	b.ReportMetric(float64(st.MaxInFlight), "max-in-flight")
	b.ReportMetric(float64(elapsed)/float64(listings)/float64(ideal), "x-ideal")
}
