package pagertreetest

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// BenchmarkListPage measures the emulator's own cost of one full page of
// users in an account of 100,000.
func BenchmarkListPage(b *testing.B) {
	s := NewServer(Options{})
	defer s.Close()
	for i := range 100_000 {
		if _, err := s.AddUser(pagertree.User{Name: fmt.Sprint("user ", i), Email: fmt.Sprintf("u%d@example.com", i)}); err != nil {
			b.Fatal(err)
		}
	}
	token := login(b, s)
	for i := 0; b.Loop(); i++ {
		expect(b, s, token, http.MethodGet, fmt.Sprintf("/user?limit=100&page=%d", 1+i%1000), "", http.StatusOK)
	}
}

// BenchmarkLatencyOverlap sends batches of 8 concurrent requests under 20 ms
// of latency; a batch should take about 20 ms, not 160 ms.
func BenchmarkLatencyOverlap(b *testing.B) {
	s := NewServer(Options{})
	defer s.Close()
	token := login(b, s)
	s.SetFaults(Faults{Latency: 20 * time.Millisecond})
	for b.Loop() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				// Not expect: FailNow must not run outside the benchmark's goroutine.
				if r, err := send(b, s, token, http.MethodGet, "/user", ""); err != nil || r.status != http.StatusOK {
					b.Errorf("GET /user: %v %d", err, r.status)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/batch")
}
