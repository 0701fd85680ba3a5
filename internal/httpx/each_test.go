package httpx_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/httpx"
)

// TestGetEach: each object decoded in its request's place, a 404 a nil
// (gone), at most Concurrency requests at once; any other failure fails
// the whole.
func TestGetEach(t *testing.T) {
	var inFlight, most, arrived atomic.Int32
	// The first two requests wait for each other, so that two are in
	// flight at once for sure when the limit lets them.
	both := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		switch arrived.Add(1) {
		case 1:
			select {
			case <-both:
			case <-time.After(5 * time.Second):
			}
		case 2:
			close(both)
		}
		switch id := strings.TrimPrefix(r.URL.Path, "/things/"); id {
		case "gone":
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		case "broken":
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id":"` + id + `"}`))
		}
	})
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Concurrency = 2 })
	get := func(ids ...string) ([]*struct{ ID string }, error) {
		var reqs []httpx.Request
		for _, id := range ids {
			reqs = append(reqs, httpx.Request{Method: http.MethodGet, Route: "/things/{id}", Path: "/things/" + id})
		}
		return httpx.GetEach[struct{ ID string }](context.Background(), c, reqs)
	}

	found, err := get("a", "gone", "b", "c", "d")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range found {
		if f == nil {
			got = append(got, "<gone>")
		} else {
			got = append(got, f.ID)
		}
	}
	if want := "a <gone> b c d"; strings.Join(got, " ") != want {
		t.Errorf("found %q, want %q", got, want)
	}
	if m := most.Load(); m != 2 {
		t.Errorf("at most %d requests at once, want 2 (Concurrency)", m)
	}
	if _, err := get("a", "broken"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a 400 among them: %v, want the error", err)
	}
}
