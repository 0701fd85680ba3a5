package msgraph_test

import (
	"context"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/msgraph"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

// BenchmarkFetch reads a realistic tenant, 20,000 users and 50 groups of
// 300, from the fake: requests/op against the ideal ceil(20000/999) + 1 +
// 50, and the time of one whole fetch.
func BenchmarkFetch(b *testing.B) {
	srv := graphtest.NewServer(bigTenant(20000, 50, 300), graphtest.Options{ClientID: clientID, ClientSecret: secret})
	defer srv.Close()
	const ideal = 21 + 1 + 50
	for b.Loop() {
		src, err := msgraph.New("entra", configFor(srv), sources.Options{})
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
