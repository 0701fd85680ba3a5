package sync_test

import (
	"reflect"
	"testing"

	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// TestMalformedEmailIsSkipped: one directory user whose email is not an
// address (PagerTree would answer 400 to its create) is left out and
// counted, with its memberships, and the run of everyone else succeeds.
func TestMalformedEmailIsSkipped(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		testMalformedEmailIsSkipped(t, api)
	})
}

func testMalformedEmailIsSkipped(t *testing.T, api string) {
	dir := corp()
	dir.Users = append(dir.Users, person{ID: "p5", Email: "not-an-email", Name: "Eve Typo"})
	dir.Groups[1].Members = append(dir.Groups[1].Members, "p5") // oncall-db
	r := newAPIRig(t, api, dir, defaultPolicy())

	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitOK || rep.Result.Counts.Failed != 0 {
		t.Fatalf("exit code %d, counts %+v; want a clean run", code, rep.Result.Counts)
	}
	want := r.inStep()
	if got := r.state(); !reflect.DeepEqual(got, want) {
		t.Errorf("PagerTree:\n%+v\nwant:\n%+v", got, want)
	}
	if len(rep.Sources) != 1 || !reflect.DeepEqual(rep.Sources[0].Skipped, map[string]int{sources.SkipInvalidEmail: 1}) {
		t.Errorf("sources %+v, want corp with one invalid_email skipped", rep.Sources)
	}
	if got := seriesValue(t, r.reg, `ptsync_source_skipped_total{reason="invalid_email",source="corp"}`); got != 1 {
		t.Errorf("ptsync_source_skipped_total{reason=\"invalid_email\"} = %v, want 1", got)
	}
	// No request ever carried the malformed address.
	user, team := "POST "+r.userRoute(), "POST "+r.teamRoute()
	if got := r.rec.writes(); !reflect.DeepEqual(got, []string{user, user, user, team, team}) {
		t.Errorf("writes = %v, want the 3 good users and 2 teams created", got)
	}
	if rep, code := r.run(sync.RunOptions{}); code != sync.ExitOK || len(rep.Plan.Changes) != 0 {
		t.Errorf("second run: exit %d, %d changes; want none", code, len(rep.Plan.Changes))
	}
}
