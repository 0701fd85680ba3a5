package google_test

import (
	"context"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/google"
	"github.com/ptsync/ptsync/sources/google/googletest"
)

// BenchmarkFetch reads a realistic domain, 20,000 users and 50 groups of
// 300, from the fake: requests/op against the ideal ceil(20000/500) + 1 +
// 50*ceil(300/200), and the time of one whole fetch.
func BenchmarkFetch(b *testing.B) {
	srv := newFake(b, bigDomain(20000, 50, 300), googletest.Options{})
	cfg := configFor(b, srv)
	const ideal = 41 + 1 + 100 // 20,001 users with the admin
	for b.Loop() {
		src, err := google.New("workspace", cfg, sources.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := src.Fetch(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	requests := float64(srv.TotalRequests()) / float64(b.N)
	b.ReportMetric(requests, "requests/op")
	b.ReportMetric(requests/ideal, "x-ideal-requests")
}
