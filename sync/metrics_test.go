package sync_test

import (
	"bytes"
	"maps"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/ptsync/ptsync/internal/testenv"
	"github.com/ptsync/ptsync/sync"
)

// TestMetricsAfterRuns runs a sync and a converged run, then checks the
// exposition with promtool and the exact value of the series that matter.
func TestMetricsAfterRuns(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	forEachAPI(t, func(t *testing.T, api string) {
		r := newAPIRig(t, api, corp(), defaultPolicy())
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("first run exit %d", code)
		}
		if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
			t.Fatalf("second run exit %d", code)
		}

		families, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var exposition bytes.Buffer
		enc := expfmt.NewEncoder(&exposition, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range families {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(exposition.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}

		want := `
# HELP ptsync_sync_runs_total Sync runs, by result: success, failure (an error or a failed change) or withheld (destructive changes held back by the safety limits).
# TYPE ptsync_sync_runs_total counter
ptsync_sync_runs_total{result="failure"} 0
ptsync_sync_runs_total{result="success"} 2
ptsync_sync_runs_total{result="withheld"} 0
# HELP ptsync_source_objects Users and groups the last fetch of each source returned.
# TYPE ptsync_source_objects gauge
ptsync_source_objects{kind="group",source="corp"} 3
ptsync_source_objects{kind="user",source="corp"} 4
# HELP ptsync_pending_changes Changes in the last plan (withheld ones included), by kind and op.
# TYPE ptsync_pending_changes gauge
ptsync_pending_changes{kind="team",op="create"} 0
ptsync_pending_changes{kind="team",op="delete"} 0
ptsync_pending_changes{kind="team",op="update"} 0
ptsync_pending_changes{kind="user",op="create"} 0
ptsync_pending_changes{kind="user",op="delete"} 0
ptsync_pending_changes{kind="user",op="update"} 0
# HELP ptsync_build_info Always 1; the version label is ptsync's version.
# TYPE ptsync_build_info gauge
ptsync_build_info{version="v1.2.3-test"} 1
`
		if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want),
			"ptsync_sync_runs_total", "ptsync_source_objects", "ptsync_pending_changes", "ptsync_build_info"); err != nil {
			t.Error(err)
		}

		// Every request the emulator saw is counted once, under its route
		// template and status.
		st := r.emu.Stats()
		got := map[string]float64{}
		for _, f := range families {
			switch f.GetName() {
			case "ptsync_changes_total":
				for _, m := range f.GetMetric() {
					if v := m.GetCounter().GetValue(); v != 0 {
						got["change "+labels(m.GetLabel())] = v
					}
				}
			case "ptsync_pagertree_requests_total":
				for _, m := range f.GetMetric() {
					got["request "+labels(m.GetLabel())] = m.GetCounter().GetValue()
				}
			case "ptsync_pagertree_request_duration_seconds":
				for _, m := range f.GetMetric() {
					got["duration "+labels(m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		users, teams := r.userRoute(), r.teamRoute()
		wantValues := map[string]float64{
			"change kind=team op=create result=applied":   2,
			"change kind=user op=create result=applied":   3,
			"request code=200 method=GET route=" + teams:  float64(st.Requests["GET "+teams]),
			"request code=200 method=GET route=" + users:  float64(st.Requests["GET "+users]),
			"request code=201 method=POST route=" + teams: 2,
			"request code=201 method=POST route=" + users: 3,
			"duration method=GET route=" + teams:          2,
			"duration method=GET route=" + users:          2,
			"duration method=POST route=" + teams:         2,
			"duration method=POST route=" + users:         3,
		}
		wantLogins := 1
		if r.v4() {
			// v4 sends its API key with every request and has no login.
			wantLogins = 0
		} else {
			wantValues["request code=200 method=POST route=/public/login"] = float64(st.Requests["POST /public/login"])
			wantValues["duration method=POST route=/public/login"] = 1
		}
		if st.Requests["GET "+users] != 2 || st.Requests["POST /public/login"] != wantLogins {
			t.Errorf("emulator saw %v, want 2 user lists and %d login(s)", st.Requests, wantLogins)
		}
		if !maps.Equal(got, wantValues) {
			t.Errorf("series =\n%v\nwant\n%v", got, wantValues)
		}
	})
}

func labels(ls []*dto.LabelPair) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.GetName() + "=" + l.GetValue()
	}
	return strings.Join(parts, " ")
}
