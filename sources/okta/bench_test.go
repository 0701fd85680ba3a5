package okta_test

import (
	"context"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/okta"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

// BenchmarkFetch reads a realistic org, 20,000 users and 50 groups of 300,
// from the fake: requests/op against the ideal ceil(20000/200) + 1 +
// 50·ceil(300/200), and the time of one whole fetch.
func BenchmarkFetch(b *testing.B) {
	srv := oktatest.NewServer(bigOrg(20000, 50, 300), oktatest.Options{APIToken: apiToken})
	defer srv.Close()
	const ideal = 100 + 1 + 100
	for b.Loop() {
		src, err := okta.New("okta", configFor(srv), sources.Options{})
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
