package sync

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// recordingWriter is a Writer that records every call in order and fails
// the ones named in fail (by email or team name / id).
type recordingWriter struct {
	mu    gosync.Mutex
	calls []string
	fail  map[string]bool
	next  int
}

func (w *recordingWriter) record(call, key string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, call)
	if w.fail[key] {
		return fmt.Errorf("emulated failure for %s", key)
	}
	return nil
}

func (w *recordingWriter) newID(prefix string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	return fmt.Sprintf("%s%d", prefix, w.next)
}

func (w *recordingWriter) CreateUser(_ context.Context, u NewUser) (AccountUser, error) {
	if err := w.record("create user "+u.Email, u.Email); err != nil {
		return AccountUser{}, err
	}
	return AccountUser{ID: w.newID("new-u"), Email: u.Email, Name: u.Name, Phone: u.Phone}, nil
}

func (w *recordingWriter) UpdateUser(_ context.Context, id string, p UserPatch) error {
	return w.record("update user "+id+patchText(p.Name, p.Phone, nil, nil), id)
}

func (w *recordingWriter) DeleteUser(_ context.Context, id string) error {
	return w.record("delete user "+id, id)
}

func (w *recordingWriter) CreateTeam(_ context.Context, t NewTeam) (AccountTeam, error) {
	if err := w.record("create team "+t.Name+" members="+strings.Join(t.MemberIDs, ","), t.Name); err != nil {
		return AccountTeam{}, err
	}
	return AccountTeam{ID: w.newID("new-t"), Name: t.Name, Description: t.Description, MemberIDs: t.MemberIDs}, nil
}

func (w *recordingWriter) UpdateTeam(_ context.Context, id string, p TeamPatch) error {
	return w.record("update team "+id+patchText(p.Name, nil, p.Description, p.MemberIDs), id)
}

func (w *recordingWriter) DeleteTeam(_ context.Context, id string) error {
	return w.record("delete team "+id, id)
}

// patchText shows exactly which fields a patch sends.
func patchText(name, phone, desc *string, members *[]string) string {
	var parts []string
	if name != nil {
		parts = append(parts, "name="+*name)
	}
	if phone != nil {
		parts = append(parts, "phone="+*phone)
	}
	if desc != nil {
		parts = append(parts, "description="+*desc)
	}
	if members != nil {
		parts = append(parts, "members="+strings.Join(*members, ","))
	}
	return " " + strings.Join(parts, " ")
}

var applyCurrent = Current{
	Users: []AccountUser{
		{ID: "u1", Email: "Ann@Example.com", Name: "Ann"},
		{ID: "u2", Email: "bob@example.com", Name: "Bob"},
		{ID: "u3", Email: "old@example.com", Name: "Old"},
	},
	Teams: []AccountTeam{
		{ID: "t1", Name: "payments", MemberIDs: []string{"u1", "u3"}},
		{ID: "t2", Name: "gone", MemberIDs: []string{"u2"}},
	},
}

// applyPlan touches every phase once, listed out of order on purpose:
// Apply must run it in phase order whatever the list order.
func applyPlan() Plan {
	return Plan{Changes: []Change{
		{Op: OpDelete, Kind: KindUser, Name: "old@example.com", ID: "u3", Destructive: 1},
		{Op: OpDelete, Kind: KindTeam, Name: "gone", ID: "t2", Destructive: 1},
		{Op: OpUpdate, Kind: KindTeam, Name: "payments", ID: "t1", Members: []string{"ann@example.com", "cat@example.com"},
			MembersSet: true, MembersAdded: []string{"cat@example.com"}, MembersRemoved: []string{"old@example.com"}, Destructive: 1},
		{Op: OpCreate, Kind: KindTeam, Name: "db", Description: "[managed by ptsync: source=corp group=g-db]",
			Members: []string{"bob@example.com", "cat@example.com"}, MembersSet: true},
		{Op: OpUpdate, Kind: KindUser, Name: "bob@example.com", ID: "u2", UserName: "Robert",
			Fields: []FieldChange{{Field: "name", Old: "Bob", New: "Robert"}}},
		{Op: OpCreate, Kind: KindUser, Name: "cat@example.com", UserName: "Cat", UserPhone: "+14155550100"},
	}}
}

func TestApplyOrderAndBodies(t *testing.T) {
	w := &recordingWriter{}
	res := Apply(context.Background(), w, applyCurrent, applyPlan(), ApplyOptions{Concurrency: 1})
	want := []string{
		"create user cat@example.com",
		"update user u2 name=Robert",
		"create team db members=u2,new-u1",
		"update team t1 members=u1,new-u1",
		"delete team t2",
		"delete user u3",
	}
	if !reflect.DeepEqual(w.calls, want) {
		t.Errorf("calls =\n%s\nwant\n%s", strings.Join(w.calls, "\n"), strings.Join(want, "\n"))
	}
	if res.Counts != (Counts{Applied: 6}) {
		t.Errorf("counts = %+v, want 6 applied", res.Counts)
	}
	for i, r := range res.Changes {
		if r.Change.Name != applyPlan().Changes[i].Name || r.Outcome != OutcomeApplied || r.Error != "" {
			t.Errorf("result %d = %+v, want %s applied in plan order", i, r, applyPlan().Changes[i].Name)
		}
	}
	if got := res.Changes[5].ID; got != "new-u1" {
		t.Errorf("created user's result id = %q, want new-u1", got)
	}
}

// TestApplyPhasesAreBarriers runs many changes with many workers and checks
// that no write of a phase starts before every write of the phase before
// it has been made.
func TestApplyPhasesAreBarriers(t *testing.T) {
	var p Plan
	for i := range 40 {
		email := fmt.Sprintf("user%02d@example.com", i)
		p.Changes = append(p.Changes,
			Change{Op: OpCreate, Kind: KindUser, Name: email, UserName: "U"},
			Change{Op: OpCreate, Kind: KindTeam, Name: fmt.Sprintf("team%02d", i), Members: []string{email}, MembersSet: true},
			Change{Op: OpDelete, Kind: KindUser, Name: fmt.Sprintf("old%02d@example.com", i), ID: fmt.Sprintf("old%02d", i)},
		)
	}
	w := &recordingWriter{}
	res := Apply(context.Background(), w, Current{}, p, ApplyOptions{Concurrency: 8})
	if res.Counts != (Counts{Applied: 120}) {
		t.Fatalf("counts = %+v, want 120 applied", res.Counts)
	}
	rank := map[string]int{"create user": 0, "create team": 1, "delete user": 2}
	last := 0
	for i, c := range w.calls {
		r := rank[strings.Join(strings.Fields(c)[:2], " ")]
		if r < last {
			t.Fatalf("call %d %q came after a later phase had started", i, c)
		}
		last = r
		if strings.HasPrefix(c, "create team") && strings.HasSuffix(c, "members=") {
			t.Errorf("%q: the member created in the phase before was not resolved", c)
		}
	}
}

func TestApplyFailureDoesNotStopOthers(t *testing.T) {
	w := &recordingWriter{fail: map[string]bool{"cat@example.com": true, "t2": true}}
	core, logs := observer.New(zapcore.InfoLevel)
	res := Apply(context.Background(), w, applyCurrent, applyPlan(), ApplyOptions{Concurrency: 3, Log: zap.New(core)})

	wantCalls := []string{
		"create user cat@example.com",
		"update user u2 name=Robert",
		"create team db members=u2",
		"update team t1 members=u1",
		"delete team t2",
		"delete user u3",
	}
	got := slices.Clone(w.calls)
	slices.Sort(got)
	slices.Sort(wantCalls)
	if !reflect.DeepEqual(got, wantCalls) {
		t.Errorf("calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCalls, "\n"))
	}
	outcomes := map[string]string{}
	for _, r := range res.Changes {
		outcomes[string(r.Op)+" "+r.Name] = string(r.Outcome) + ": " + r.Error
	}
	missingCat := "cat@example.com (user create failed: emulated failure for cat@example.com)"
	want := map[string]string{
		"create cat@example.com": "failed: emulated failure for cat@example.com",
		"update bob@example.com": "applied: ",
		"create db":              "failed: partly applied: written without 1 member(s): " + missingCat,
		"update payments":        "failed: partly applied: written without 1 member(s): " + missingCat,
		"delete gone":            "failed: emulated failure for t2",
		"delete old@example.com": "applied: ",
	}
	if !reflect.DeepEqual(outcomes, want) {
		t.Errorf("outcomes =\n%v\nwant\n%v", outcomes, want)
	}
	if res.Counts != (Counts{Applied: 2, Failed: 4}) {
		t.Errorf("counts = %+v", res.Counts)
	}
	// Every change is one log line: info when applied, error otherwise.
	if n := logs.FilterLevelExact(zapcore.InfoLevel).Len(); n != 2 {
		t.Errorf("%d info lines, want 2 (one per applied change)", n)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 4 {
		t.Errorf("%d error lines, want 4 (one per failed change)", n)
	}
	if n := logs.FilterMessage("created team without some members").Len(); n != 1 {
		t.Errorf("%d 'created team without some members' lines, want 1", n)
	}
}

func TestApplyNeverEmptiesATeamForUnresolvedMembers(t *testing.T) {
	w := &recordingWriter{fail: map[string]bool{"new@example.com": true}}
	p := Plan{Changes: []Change{
		{Op: OpCreate, Kind: KindUser, Name: "new@example.com", UserName: "New"},
		{Op: OpUpdate, Kind: KindTeam, Name: "payments", ID: "t1", Members: []string{"new@example.com"},
			MembersSet: true, MembersAdded: []string{"new@example.com"}, MembersRemoved: []string{"ann@example.com", "old@example.com"}},
	}}
	res := Apply(context.Background(), w, applyCurrent, p, ApplyOptions{})
	if want := []string{"create user new@example.com"}; !reflect.DeepEqual(w.calls, want) {
		t.Errorf("calls = %v, want %v (the team must not be written)", w.calls, want)
	}
	wantErr := "not written: none of its 1 members has a PagerTree user (new@example.com (user create failed: emulated failure for new@example.com))"
	if r := res.Changes[1]; r.Outcome != OutcomeFailed || r.Error != wantErr {
		t.Errorf("team result = %s %q, want failed %q", r.Outcome, r.Error, wantErr)
	}
}

func TestApplyDryRunWritesNothing(t *testing.T) {
	w := &recordingWriter{}
	core, logs := observer.New(zapcore.InfoLevel)
	p := applyPlan()
	p.Withheld = []Change{{Op: OpDelete, Kind: KindUser, Name: "x@example.com", ID: "u9", Destructive: 1, WithheldReason: "over the limit"}}
	res := Apply(context.Background(), w, applyCurrent, p, ApplyOptions{DryRun: true, Log: zap.New(core)})
	if len(w.calls) != 0 {
		t.Errorf("dry run made %d writes: %v", len(w.calls), w.calls)
	}
	if !res.DryRun || res.Counts != (Counts{DryRun: 6, Withheld: 1}) {
		t.Errorf("result = dry_run %v counts %+v, want 6 skipped and 1 withheld", res.DryRun, res.Counts)
	}
	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	want := []string{"would create user", "would update user", "would create team", "would update team",
		"would delete team", "would delete user", "withheld destructive change"}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("log messages = %q, want %q", msgs, want)
	}
}

func TestApplyWithheldAreRecordedNotApplied(t *testing.T) {
	w := &recordingWriter{}
	withheld := Change{Op: OpDelete, Kind: KindUser, Name: "old@example.com", ID: "u3", Destructive: 1,
		WithheldReason: "2 destructive changes exceed safety.max_destructive (1)"}
	p := Plan{
		Changes:  []Change{{Op: OpCreate, Kind: KindUser, Name: "cat@example.com", UserName: "Cat"}},
		Withheld: []Change{withheld},
	}
	res := Apply(context.Background(), w, applyCurrent, p, ApplyOptions{})
	if want := []string{"create user cat@example.com"}; !reflect.DeepEqual(w.calls, want) {
		t.Errorf("calls = %v, want %v", w.calls, want)
	}
	wantLast := ChangeResult{Change: withheld, Outcome: OutcomeWithheld, Error: withheld.WithheldReason}
	if len(res.Changes) != 2 || !reflect.DeepEqual(res.Changes[1], wantLast) {
		t.Errorf("results = %+v, want the withheld change last", res.Changes)
	}
	if res.Counts != (Counts{Applied: 1, Withheld: 1}) {
		t.Errorf("counts = %+v", res.Counts)
	}
}

func TestApplyCancelledContextWritesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &recordingWriter{}
	res := Apply(ctx, w, applyCurrent, applyPlan(), ApplyOptions{Concurrency: 2})
	if len(w.calls) != 0 {
		t.Errorf("calls after cancel: %v", w.calls)
	}
	// Not tried is not failed (issue 8): the changes are cancelled.
	if res.Counts != (Counts{Cancelled: 6}) {
		t.Errorf("counts = %+v, want 6 cancelled", res.Counts)
	}
	for _, r := range res.Changes {
		if r.Outcome != OutcomeCancelled || r.Error != "not tried: the run was cancelled" {
			t.Errorf("%s %s: %s, error %q; want cancelled, not tried", r.Op, r.Name, r.Outcome, r.Error)
		}
	}
}

// TestApplyKeepsUserDeletesOffUnwrittenTeams: payments' only member left
// and its group now holds one new person. When the team write does not go
// through, deleting the leaver would take them out of payments and leave it
// empty, so the delete is not attempted; other changes still run.
func TestApplyKeepsUserDeletesOffUnwrittenTeams(t *testing.T) {
	cur := Current{
		Users: []AccountUser{
			{ID: "u1", Email: "old@example.com", Name: "Old"},
			{ID: "u2", Email: "gone@example.com", Name: "Gone"},
		},
		Teams: []AccountTeam{
			{ID: "t1", Name: "payments", MemberIDs: []string{"u1"}},
			{ID: "t2", Name: "other", MemberIDs: []string{"u2"}},
		},
	}
	plan := Plan{Changes: []Change{
		{Op: OpCreate, Kind: KindUser, Name: "new@example.com", UserName: "New"},
		{Op: OpUpdate, Kind: KindTeam, Name: "payments", ID: "t1", Members: []string{"new@example.com"}, MembersSet: true,
			MembersAdded: []string{"new@example.com"}, MembersRemoved: []string{"old@example.com"}, Destructive: 1},
		{Op: OpDelete, Kind: KindUser, Name: "gone@example.com", ID: "u2", Destructive: 1},
		{Op: OpDelete, Kind: KindUser, Name: "old@example.com", ID: "u1", Destructive: 1},
	}}
	notAttempted := `not attempted: team "payments" was not written this run; deleting the user would change it — retried next run`
	tests := []struct {
		name      string
		fail      string
		wantCalls []string
		want      map[string]string // op name -> outcome: error
	}{
		{
			name:      "every write succeeds",
			wantCalls: []string{"create user new@example.com", "update team t1 members=new-u1", "delete user u1", "delete user u2"},
			want: map[string]string{
				"create new@example.com": "applied: ", "update payments": "applied: ",
				"delete gone@example.com": "applied: ", "delete old@example.com": "applied: ",
			},
		},
		{
			name:      "the new member's create fails, so the team is not written",
			fail:      "new@example.com",
			wantCalls: []string{"create user new@example.com", "delete user u2"},
			want: map[string]string{
				"create new@example.com":  "failed: emulated failure for new@example.com",
				"update payments":         "failed: not written: none of its 1 members has a PagerTree user (new@example.com (user create failed: emulated failure for new@example.com))",
				"delete gone@example.com": "applied: ",
				"delete old@example.com":  "failed: " + notAttempted,
			},
		},
		{
			name:      "the team update fails",
			fail:      "t1",
			wantCalls: []string{"create user new@example.com", "update team t1 members=new-u1", "delete user u2"},
			want: map[string]string{
				"create new@example.com":  "applied: ",
				"update payments":         "failed: emulated failure for t1",
				"delete gone@example.com": "applied: ",
				"delete old@example.com":  "failed: " + notAttempted,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordingWriter{fail: map[string]bool{tt.fail: true}}
			res := Apply(context.Background(), w, cur, plan, ApplyOptions{Concurrency: 2})
			got, wantCalls := slices.Sorted(slices.Values(w.calls)), slices.Sorted(slices.Values(tt.wantCalls))
			if !reflect.DeepEqual(got, wantCalls) {
				t.Errorf("calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCalls, "\n"))
			}
			outcomes := map[string]string{}
			for _, r := range res.Changes {
				outcomes[string(r.Op)+" "+r.Name] = string(r.Outcome) + ": " + r.Error
			}
			if !reflect.DeepEqual(outcomes, tt.want) {
				t.Errorf("outcomes =\n%v\nwant\n%v", outcomes, tt.want)
			}
		})
	}
}

// TestApplyKeepsUserDeletesOffUnwrittenAdoptedTeams: an adopted hand-made
// team whose write fails keeps its old members; deleting one of them (who
// is in two such teams) would change both.
func TestApplyKeepsUserDeletesOffUnwrittenAdoptedTeams(t *testing.T) {
	cur := Current{
		Users: []AccountUser{
			{ID: "u1", Email: "old@example.com", Name: "Old"},
			{ID: "u2", Email: "bob@example.com", Name: "Bob"},
		},
		Teams: []AccountTeam{
			{ID: "t1", Name: "Ops", Description: "made by hand", MemberIDs: []string{"u1", "u2"}},
			{ID: "t2", Name: "Db", Description: "made by hand", MemberIDs: []string{"u1"}},
		},
	}
	adopt := func(id, name string) Change {
		return Change{Op: OpUpdate, Kind: KindTeam, Name: name, ID: id, Description: "made by hand\n" + mark("corp", "g-"+id),
			Members: []string{"bob@example.com"}, MembersSet: true, MembersRemoved: []string{"old@example.com"}, Destructive: 1}
	}
	plan := Plan{Changes: []Change{
		adopt("t1", "Ops"), adopt("t2", "Db"),
		{Op: OpDelete, Kind: KindUser, Name: "old@example.com", ID: "u1", Destructive: 1},
	}}
	w := &recordingWriter{fail: map[string]bool{"t1": true, "t2": true}}
	res := Apply(context.Background(), w, cur, plan, ApplyOptions{})
	if slices.ContainsFunc(w.calls, func(c string) bool { return strings.HasPrefix(c, "delete user") }) {
		t.Errorf("calls = %v: the user delete was sent", w.calls)
	}
	wantErr := `not attempted: teams "Db", "Ops" were not written this run; deleting the user would change them — retried next run`
	if r := res.Changes[2]; r.Outcome != OutcomeFailed || r.Error != wantErr {
		t.Errorf("user delete = %s %q, want failed %q", r.Outcome, r.Error, wantErr)
	}
	if res.Counts != (Counts{Failed: 3}) {
		t.Errorf("counts = %+v, want 3 failed", res.Counts)
	}
}
