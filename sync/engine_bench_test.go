package sync_test

import (
	"context"
	"fmt"
	"maps"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// staticSource returns the same snapshot on every fetch.
type staticSource struct{ snap *sources.Snapshot }

func (s staticSource) Name() string { return s.snap.Source }

func (s staticSource) Fetch(context.Context) (*sources.Snapshot, error) { return s.snap, nil }

// bigDirectory has users people in teams groups of users/teams members
// each, every person in exactly one group.
func bigDirectory(users, teams int) *sources.Snapshot {
	snap := sources.NewSnapshot("corp")
	snap.Groups = make([]sources.Group, teams)
	for g := range snap.Groups {
		snap.Groups[g] = sources.Group{ID: fmt.Sprintf("grp-%05d", g), Name: fmt.Sprintf("oncall-%05d", g)}
	}
	for i := range users {
		id := fmt.Sprintf("u%06d", i)
		snap.Users[id] = sources.User{ID: id, Email: id + "@example.com", Name: "Person " + id, Phone: fmt.Sprintf("+1415%07d", i)}
		g := &snap.Groups[i%teams]
		g.Members = append(g.Members, id)
	}
	return snap
}

// BenchmarkFullSync syncs 100,000 users in 10,000 teams into an empty
// emulator (in this process), then checks that a converged run lists each
// collection in ceil(N/100) requests and writes nothing. Run it once:
//
//	go test -run '^$' -bench FullSync -benchtime 1x ./sync/
//
// peak-RSS-MB is the whole test process, emulator included (bench/fullsync.sh
// measures ptsync alone, against the emulator in another process).
func BenchmarkFullSync(b *testing.B) {
	const users, teams = 100_000, 10_000
	snap := bigDirectory(users, teams)
	for b.Loop() {
		b.StopTimer()
		emu := pagertreetest.NewServer(pagertreetest.Options{})
		client, err := pagertree.New(pagertree.Config{URL: emu.URL(), Username: pagertreetest.DefaultUsername,
			Password: pagertreetest.DefaultPassword, Concurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		eng := &sync.Engine{
			Sources:   []sources.Source{staticSource{snap}},
			PagerTree: ptaccount.V3{Client: client},
			Policy: sync.Policy{
				Rules: []config.TeamRule{{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}},
				Scope: config.ScopeTeamMembers,
			},
			MinSourceUsers: 1,
			Concurrency:    8,
			Logger:         zap.NewNop(),
		}
		b.StartTimer()

		rep, err := eng.RunOnce(context.Background(), sync.RunOptions{})
		if err != nil || rep.Result.Counts != (sync.Counts{Applied: users + teams}) {
			b.Fatalf("full sync: %v, counts %+v", err, rep.Result.Counts)
		}

		b.StopTimer()
		emu.ResetStats()
		rep, err = eng.RunOnce(context.Background(), sync.RunOptions{})
		st := emu.Stats()
		want := map[string]int{"GET /user": (users + 99) / 100, "GET /team": (teams + 99) / 100}
		if err != nil || !rep.Plan.InSync() || st.WriteAttempts != 0 || !maps.Equal(st.Requests, want) {
			b.Fatalf("converged run: %v, in sync %v, %d writes, requests %v, want %v", err, rep.Plan.InSync(), st.WriteAttempts, st.Requests, want)
		}
		b.ReportMetric(rep.Timings.Total.Seconds(), "converged-run-s")
		b.ReportMetric(float64(st.Requests["GET /user"]+st.Requests["GET /team"]), "converged-requests")
		emu.Close()
		b.StartTimer()
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}
