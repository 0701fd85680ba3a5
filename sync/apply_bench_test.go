package sync_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// BenchmarkApplyCreates applies a plan of 1,000 user creates through the
// real client with concurrency 8 to an emulator that takes 20 ms per
// request (SPEC: at most 1.25 × the ideal 1,000 × 20 ms / 8 = 2.5 s). It
// fails unless every create costs exactly one write request. Run it once:
//
//	go test -run '^$' -bench BenchmarkApplyCreates -benchtime 1x ./sync/
func BenchmarkApplyCreates(b *testing.B) {
	const (
		creates     = 1_000
		concurrency = 8
		latency     = 20 * time.Millisecond
	)
	snap := sources.NewSnapshot("corp")
	for i := range creates {
		id := fmt.Sprintf("u%04d", i)
		snap.Users[id] = sources.User{ID: id, Email: id + "@example.com", Name: "Person " + id, Phone: fmt.Sprintf("+1415555%04d", i)}
	}
	pol := sync.Policy{Scope: config.ScopeAll} // every user wanted, no teams
	want, err := sync.BuildDesired([]*sources.Snapshot{snap}, pol)
	if err != nil {
		b.Fatal(err)
	}
	plan := sync.MakePlan(sync.Current{}, want, pol)
	if plan.Summary != (sync.Summary{Create: creates}) || len(plan.Changes) != creates {
		b.Fatalf("plan %+v, want %d user creates", plan.Summary, creates)
	}

	var elapsed time.Duration
	var writes, runs int
	for b.Loop() {
		b.StopTimer()
		emu := pagertreetest.NewServer(pagertreetest.Options{})
		client, err := pagertree.New(pagertree.Config{URL: emu.URL(), Username: pagertreetest.DefaultUsername,
			Password: pagertreetest.DefaultPassword, Concurrency: concurrency})
		if err != nil {
			b.Fatal(err)
		}
		if err := client.Login(b.Context()); err != nil { // not part of applying
			b.Fatalf("Login: %v", err)
		}
		emu.SetFaults(pagertreetest.Faults{Latency: latency})
		emu.ResetStats()
		b.StartTimer()

		start := time.Now()
		res := sync.Apply(b.Context(), ptaccount.V3{Client: client}, sync.Current{}, plan, sync.ApplyOptions{Concurrency: concurrency})
		elapsed += time.Since(start)

		b.StopTimer()
		st := emu.Stats()
		emu.Close()
		if res.Counts != (sync.Counts{Applied: creates}) {
			b.Fatalf("counts %+v, want %d applied", res.Counts, creates)
		}
		if st.WriteAttempts != creates || st.Writes != creates {
			b.Fatalf("%d write requests (%d writes) for %d creates, want exactly one each", st.WriteAttempts, st.Writes, creates)
		}
		writes += st.WriteAttempts
		runs++
		b.StartTimer()
	}
	ideal := creates * latency / concurrency
	b.ReportMetric(float64(writes)/float64(runs), "writes/op")
	b.ReportMetric(float64(elapsed)/float64(runs)/float64(ideal), "x-ideal")
}
