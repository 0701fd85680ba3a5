package sync

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// graceAccount is the converged account plus zed, whom no source has: a
// leaver for users.delete.
func graceAccount() Current {
	return withUsers(convergedAccount(), account("p9", "zed@example.com", "Zed", ""))
}

func TestDeleteGrace(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	pol := Policy{Rules: rules(oncallRule()), DeleteUsers: true, DeleteGrace: 72 * time.Hour, MaxDestructive: 25}
	want := mustDesired(t, pol, corpDirectory())
	tests := []struct {
		name    string
		pol     Policy
		missing map[string]time.Time
		changes []string
		pending []PendingDelete
		reason  string
	}{
		{
			name:    "first found missing: pending from now",
			pol:     pol,
			pending: []PendingDelete{{Email: "zed@example.com", ID: "p9", Since: now, After: now.Add(72 * time.Hour)}},
		},
		{
			name:    "missing for less than the grace: still pending, from when it was first found",
			pol:     pol,
			missing: map[string]time.Time{"zed@example.com": now.Add(-71 * time.Hour)},
			pending: []PendingDelete{{Email: "zed@example.com", ID: "p9", Since: now.Add(-71 * time.Hour), After: now.Add(time.Hour)}},
		},
		{
			name:    "missing for exactly the grace: deleted",
			pol:     pol,
			missing: map[string]time.Time{"zed@example.com": now.Add(-72 * time.Hour)},
			changes: []string{"- user zed@example.com #p9 destroys=1"},
			reason:  "absent from every source since 2026-05-01T10:00:00Z, longer than users.delete_grace (72h)",
		},
		{
			name:    "no grace: deleted at once, whatever the state says",
			pol:     func() Policy { p := pol; p.DeleteGrace = 0; return p }(),
			missing: map[string]time.Time{"zed@example.com": now},
			changes: []string{"- user zed@example.com #p9 destroys=1"},
			reason:  "absent from every source",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PlanWith(graceAccount(), want, tt.pol, Remembered{Now: now, MissingSince: tt.missing})
			equalLines(t, "changes", briefs(p.Changes), tt.changes)
			if !reflect.DeepEqual(p.PendingDeletes, tt.pending) {
				t.Errorf("pending = %+v, want %+v", p.PendingDeletes, tt.pending)
			}
			if tt.reason != "" && p.Changes[0].Reason != tt.reason {
				t.Errorf("reason = %q, want %q", p.Changes[0].Reason, tt.reason)
			}
			// Pending or deleted, zed is the leaver a healthy run records.
			if got := p.leavers(); !reflect.DeepEqual(got, []string{"zed@example.com"}) {
				t.Errorf("leavers = %v, want zed", got)
			}
		})
	}

	t.Run("a user who came back is no leaver, so the run forgets them", func(t *testing.T) {
		p := PlanWith(convergedAccount(), want, pol, Remembered{Now: now, MissingSince: map[string]time.Time{"bob@example.com": now.Add(-100 * time.Hour)}})
		if len(p.Changes)+len(p.PendingDeletes) != 0 || len(p.leavers()) != 0 {
			t.Errorf("changes %v, pending %v, leavers %v: want none", briefs(p.Changes), p.PendingDeletes, p.leavers())
		}
	})

	t.Run("the pending line and the summary", func(t *testing.T) {
		p := PlanWith(graceAccount(), want, pol, Remembered{Now: now, MissingSince: map[string]time.Time{"zed@example.com": now.Add(-24 * time.Hour)}})
		var text bytes.Buffer
		if err := RenderText(&text, p); err != nil {
			t.Fatal(err)
		}
		wantText := "\nPending deletes (users.delete_grace: not changes of this run):\n" +
			"- user zed@example.com  # missing since 2026-05-03T10:00:00Z, deleted after 2026-05-06T10:00:00Z\n\n" +
			"No changes; 1 pending delete.\n"
		if text.String() != wantText {
			t.Errorf("text:\n%s\nwant:\n%s", text.String(), wantText)
		}
		if !p.InSync() {
			t.Errorf("a plan with only a pending delete is in sync (plan --detailed-exitcode exits 0)")
		}
		var js bytes.Buffer
		if err := RenderJSON(&js, p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(js.String(), `"pending_deletes": [
    {
      "email": "zed@example.com",
      "id": "p9",
      "missing_since": "2026-05-03T10:00:00Z",
      "delete_after": "2026-05-06T10:00:00Z"
    }
  ]`) {
			t.Errorf("JSON lacks the pending delete:\n%s", js.String())
		}
		back, err := ReadPlan(&js)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.PendingDeletes, p.PendingDeletes) {
			t.Errorf("read back %+v, want %+v", back.PendingDeletes, p.PendingDeletes)
		}
		var md bytes.Buffer
		if err := RenderMarkdown(&md, p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.String(), "| `-` | user | zed@example.com | 2026-05-03T10:00:00Z | 2026-05-06T10:00:00Z |") {
			t.Errorf("markdown lacks the pending delete:\n%s", md.String())
		}
	})

	t.Run("explain says the delete is pending", func(t *testing.T) {
		p := PlanWith(graceAccount(), want, pol, Remembered{Now: now})
		var b bytes.Buffer
		if err := Explain("zed@example.com", []*sources.Snapshot{corpDirectory()}, want, graceAccount(), p, pol).Render(&b); err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{
			"absent from every source; users.delete removes it once missing for users.delete_grace (72h)",
			"  pending: - user zed@example.com  # missing since 2026-05-04T10:00:00Z, deleted after 2026-05-07T10:00:00Z",
		} {
			if !strings.Contains(b.String(), line) {
				t.Errorf("explanation lacks %q:\n%s", line, b.String())
			}
		}
	})
}

func TestOwnershipRecordedInState(t *testing.T) {
	deleteRule := onMissingRule(config.OnMissingDelete)
	pol := Policy{Rules: rules(deleteRule), MaxDestructive: 25}
	want := mustDesired(t, pol, corpDirectory())
	// Hand-made teams someone typed a marker into: one naming a group
	// the source does not have (on_missing: delete would delete it), one
	// copying the marker of ptsync's payments team.
	forged := ptTeam("t7", "Hand made", "our own team\n"+mark("corp", "g-nope"), "p1")
	copied := ptTeam("t8", "Payments copy", mark("corp", "g1"), "p3")
	cur := withTeams(convergedAccount(), append(convergedAccount().Teams, forged, copied)...)
	owned := map[string]bool{"t1": true, "t2": true}

	t.Run("without a record of ptsync's teams, a marker is ownership", func(t *testing.T) {
		p := PlanWith(cur, want, pol, Remembered{})
		equalLines(t, "changes", briefs(append(p.Changes, p.Withheld...)), []string{"- team Hand made #t7 destroys=1"})
		equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{
			`Payments: 2 teams (t1, t8) carry the ptsync marker of group "oncall-payments" of source "corp"; remove it from all but one`,
		})
	})

	t.Run("with it, a marked team ptsync has no record of is a conflict, never deleted", func(t *testing.T) {
		p := PlanWith(cur, want, pol, Remembered{Owned: owned})
		equalLines(t, "changes", briefs(append(p.Changes, p.Withheld...)), nil)
		equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{
			`Hand made: team t7 carries ptsync's marker (source "corp", group "g-nope"), but the state database (state.dir) has no record of ptsync creating or adopting it: anyone who can edit a description can type a marker, so ptsync does not take it as its own, so it is left alone (on_missing does not apply to it); remove the marker from its description, or, if it is ptsync's, set adopt: true on the rule of its name to take it over`,
			`Payments copy: team t8 carries ptsync's marker (source "corp", group "g1"), but the state database (state.dir) has no record of ptsync creating or adopting it: anyone who can edit a description can type a marker, so ptsync does not take it as its own, so it is left alone (on_missing does not apply to it); remove the marker from its description, or, if it is ptsync's, set adopt: true on the rule of its name to take it over`,
		})
		if p.Base != 3+4 { // the users, and the members of t1 and t2 only
			t.Errorf("base = %d, want 7: unrecorded teams are not managed", p.Base)
		}
		var b bytes.Buffer
		if err := ExplainWith("Hand made", []*sources.Snapshot{corpDirectory()}, want, cur, p, pol, Remembered{Owned: owned}).Render(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), `PagerTree: team t7 "Hand made", members: 1, carries ptsync's marker (key corp/g-nope), but the state database has no record of ptsync creating or adopting it: not managed by ptsync`) ||
			!strings.Contains(b.String(), "conflict: team Hand made: team t7 carries ptsync's marker") {
			t.Errorf("explain of the unrecorded team:\n%s", b.String())
		}
	})

	t.Run("an unrecorded team of a wanted name: a conflict, or adopted with adopt: true", func(t *testing.T) {
		db := ptTeam("t5", "Db", "typed by hand\n"+mark("corp", "g2"), "p2")
		cur := withTeams(convergedAccount(), convergedAccount().Teams[0], db)
		p := PlanWith(cur, want, pol, Remembered{Owned: map[string]bool{"t1": true}})
		equalLines(t, "changes", briefs(p.Changes), nil)
		equalLines(t, "conflicts", conflictLines(p.Conflicts), []string{
			`Db: team t5 carries ptsync's marker (source "corp", group "g2"), but the state database (state.dir) has no record of ptsync creating or adopting it: anyone who can edit a description can type a marker, so ptsync does not take it as its own; set adopt: true on teams[0] to take it over if it is ptsync's, or remove the marker from its description`,
		})

		adopt := deleteRule
		adopt.Adopt = true
		apol := Policy{Rules: rules(adopt), MaxDestructive: 25}
		p = PlanWith(cur, mustDesired(t, apol, corpDirectory()), apol, Remembered{Owned: map[string]bool{"t1": true}})
		equalLines(t, "changes", briefs(p.Changes), []string{"~ team Db #t5 description:+marker members=[bob@example.com,carol@example.com] +carol@example.com"})
		if len(p.Conflicts) != 0 {
			t.Errorf("conflicts = %v, want none", conflictLines(p.Conflicts))
		}
		if r := p.Changes[0].Reason; !strings.HasSuffix(r, "adopted by teams[0] (adopt: true); its ptsync marker was not ptsync's own") {
			t.Errorf("reason = %q", r)
		}
	})
}

func TestSourceDropGate(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	snap := func(users, groups int) *sources.Snapshot {
		s := sources.NewSnapshot("corp")
		for i := range users {
			s.Users[string(rune('a'+i))] = sources.User{}
		}
		s.Groups = make([]sources.Group, groups)
		return s
	}
	gate := sourceGate{lastGood: map[string]SourceSize{"corp": {Users: 10, Groups: 4, At: at}}, percent: 30}
	tests := []struct {
		name          string
		gate          sourceGate
		users, groups int
		want          string
	}{
		{"as big as before", gate, 10, 4, ""},
		{"grown", gate, 20, 8, ""},
		{"30% fewer users is not more than the limit", gate, 7, 4, ""},
		{"40% fewer users", gate, 6, 4,
			`source "corp" returned 6 users, 40% fewer than the 10 of its last good run (2026-05-01T10:00:00Z), beyond safety.max_source_drop_percent (30%); nothing was written: check the source's filter and base DN, or if the directory really shrank, accept its new size for one run with --accept-source-drop corp`},
		{"both", gate, 1, 1,
			`source "corp" returned 1 users, 90% fewer than the 10 of its last good run and 1 groups, 75% fewer than the 4 of its last good run (2026-05-01T10:00:00Z), beyond safety.max_source_drop_percent (30%); nothing was written: check the source's filter and base DN, or if the directory really shrank, accept its new size for one run with --accept-source-drop corp`},
		{"accepted", sourceGate{lastGood: gate.lastGood, percent: 30, accept: map[string]bool{"corp": true}}, 1, 1, ""},
		{"off", sourceGate{lastGood: gate.lastGood}, 0, 0, ""},
		{"no last good run", sourceGate{percent: 30}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.gate.check(snap(tt.users, tt.groups), zap.NewNop())
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("err = %v\nwant %s", err, tt.want)
			case err != nil && !errors.Is(err, ErrSourceDrop):
				t.Errorf("err does not wrap ErrSourceDrop")
			}
		})
	}
}

func TestReportRoundTripAndText(t *testing.T) {
	started := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	p := richPlan(t)
	p.PendingDeletes = []PendingDelete{{Email: "yan@example.com", ID: "p7", Since: started.Add(-time.Hour), After: started.Add(71 * time.Hour)}}
	var res Result
	for i, c := range p.Changes {
		r := ChangeResult{Change: c, Outcome: OutcomeApplied}
		if i == 1 {
			r.Outcome, r.Error = OutcomeFailed, "PagerTree answered 422: email taken"
		}
		res.Changes = append(res.Changes, r)
	}
	for _, c := range p.Withheld {
		res.Changes = append(res.Changes, ChangeResult{Change: c, Outcome: OutcomeWithheld, Error: c.WithheldReason})
	}
	res.Counts = Counts{Applied: len(p.Changes) - 1, Failed: 1, Withheld: len(p.Withheld)}
	rep := Report{
		RunID: "0123456789abcdef", Command: "ptsync sync --config /etc/ptsync.yaml", Started: started, Plan: p, Result: res,
		Sources: []SourceReport{{Name: "corp", Users: 5, Groups: 3, Skipped: map[string]int{"no_email": 2}}},
		Timings: Timings{Fetch: time.Second, Read: 500 * time.Millisecond, Plan: 20 * time.Millisecond, Apply: 2 * time.Second, Total: 3 * time.Second},
		Status:  StatusChangesFailed,
	}
	var js bytes.Buffer
	if err := WriteReport(&js, rep); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(&js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, rep)
	}

	var text bytes.Buffer
	if err := RenderReport(&text, back); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt.golden", text.Bytes())

	t.Run("a run that failed before planning", func(t *testing.T) {
		failed := Report{RunID: "r2", Command: "ptsync run", Started: started, Timings: Timings{Total: time.Second},
			Status: StatusError, Error: `source "corp": connection refused`}
		var js, text bytes.Buffer
		if err := WriteReport(&js, failed); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(js.String(), `"plan": null`) || !strings.Contains(js.String(), `"outcomes": []`) {
			t.Errorf("JSON of a failed run:\n%s", js.String())
		}
		back, err := ReadReport(&js)
		if err != nil {
			t.Fatal(err)
		}
		if err := RenderReport(&text, back); err != nil {
			t.Fatal(err)
		}
		want := "Run r2: ptsync run\nStarted 2026-05-04T10:00:00Z, took 1s; result: error\nError: source \"corp\": connection refused\n"
		if text.String() != want {
			t.Errorf("text:\n%q\nwant\n%q", text.String(), want)
		}
	})
}

// TestReadReportIgnoresUnknownKeys: keys a newer ptsync added are
// ignored, and a run that failed before planning has no plan.
func TestReadReportIgnoresUnknownKeys(t *testing.T) {
	r, err := ReadReport(strings.NewReader(`{"run_id":"r1","result":"error","plan":null,"from_the_future":{"x":[1]},"counts":{"applied":2,"skipped_dry_run":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.RunID != "r1" || r.Planned() || r.Result.Counts.Applied != 2 || r.Result.Counts.DryRun != 1 {
		t.Errorf("ReadReport = %+v", r)
	}
	if _, err := ReadReport(strings.NewReader(`{"run_id":`)); err == nil {
		t.Error("ReadReport of a truncated report = nil error")
	}
}
