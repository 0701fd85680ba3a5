package sync

import (
	"fmt"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// BenchmarkVerifySaved checks a saved plan of 20,000 user creates against
// the same fresh plan, as ptsync apply does.
func BenchmarkVerifySaved(b *testing.B) {
	users := make([]sources.User, 20000)
	for i := range users {
		users[i] = dirUser(fmt.Sprintf("u%05d", i), fmt.Sprintf("user%05d@example.com", i), "User", "")
	}
	pol := Policy{Scope: config.ScopeAll}
	want, err := BuildDesired([]*sources.Snapshot{snapshot("corp", users)}, pol)
	if err != nil {
		b.Fatal(err)
	}
	fresh := MakePlan(Current{}, want, pol)
	saved := fresh
	saved.Origin.AllowDestructive = true
	for b.Loop() {
		if _, err := VerifySaved(saved, fresh, Current{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(fresh.Changes)), "changes")
}
