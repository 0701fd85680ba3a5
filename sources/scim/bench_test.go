package scim_test

import (
	"context"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/scim"
	"github.com/ptsync/ptsync/sources/scim/scimtest"
)

// BenchmarkFetch reads a realistic directory, 20,000 users and 50 groups
// of 300, from the fake at a largest page of 1,000: requests/op against
// the ideal 1 (/ServiceProviderConfig) + ceil(20000/1000) + 1, and the
// time of one whole fetch.
func BenchmarkFetch(b *testing.B) {
	srv := newFake(b, bigDirectory(20000, 50, 300), scimtest.Options{MaxResults: 1000})
	const ideal = 1 + 20 + 1
	for b.Loop() {
		src, err := scim.New("idp", configFor(srv), sources.Options{})
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
