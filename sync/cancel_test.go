package sync_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// cancelAfter sits in front of the emulator and cancels the run once the
// n-th user create has arrived, as SIGINT would in the middle of an apply.
type cancelAfter struct {
	next   http.Handler
	create string // the user collection's path: a POST there is a user create
	n      int
	cancel context.CancelFunc

	mu      gosync.Mutex
	creates int
}

func (c *cancelAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == c.create {
		c.mu.Lock()
		c.creates++
		if c.creates == c.n {
			c.cancel()
		}
		c.mu.Unlock()
	}
	c.next.ServeHTTP(w, r)
}

// TestCancelledApply cancels a run of 201 changes against the emulator
// (20 ms a request, 4 at a time) once its fifth write has gone out. The
// changes it never tried, and those cut off in flight, are cancelled, not
// failed: no error line per change but one summary line, their own metric
// result, no failure for the changes-failing alert to see; and the run
// still fails (exit 1). Nothing is written after the cancel.
func TestCancelledApply(t *testing.T) {
	forEachAPI(t, testCancelledApply)
}

func testCancelledApply(t *testing.T, api string) {
	const users = 200
	var yaml strings.Builder
	yaml.WriteString("users:\n")
	var ids []string
	for i := range users {
		fmt.Fprintf(&yaml, "  - {id: u%03d, email: user%03d@example.com, name: User %03d}\n", i, i, i)
		ids = append(ids, fmt.Sprintf("u%03d", i))
	}
	fmt.Fprintf(&yaml, "groups:\n  - {id: g-all, name: oncall-all, members: [%s]}\n", strings.Join(ids, ", "))
	path := filepath.Join(t.TempDir(), "corp.yaml")
	if err := os.WriteFile(path, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := file.New("corp", &file.Config{Path: path}, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}

	acct := newAccount(api)
	preloaded := 0
	if acct.v4() {
		// A v4 team needs an admin: the owner, an account admin, is
		// pagertree.team_admins (acct.policy). It is no created user.
		acct.addUser(t, userView{Name: "Owner", Email: ownerEmail, Admin: true})
		preloaded = 1
	}
	emu := acct.emu
	emu.SetFaults(pagertreetest.Faults{Latency: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httptest.NewServer(&cancelAfter{next: emu, create: acct.userRoute(), n: 5, cancel: cancel})
	defer srv.Close()
	reg := prometheus.NewRegistry()
	metrics := sync.NewMetrics(reg, "test")
	client := acct.newClient(t, srv.URL, metrics, 4)
	core, logs := observer.New(zapcore.DebugLevel)
	engine := &sync.Engine{
		Sources:        []sources.Source{src},
		PagerTree:      ptaccount.For(api, client),
		Policy:         acct.policy(defaultPolicy()),
		MinSourceUsers: 1,
		Concurrency:    4,
		Metrics:        metrics,
		Logger:         zap.New(core),
	}

	rep, err := engine.RunOnce(ctx, sync.RunOptions{})
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	if code := sync.ExitCode(rep, nil); code != sync.ExitError {
		t.Errorf("exit code %d, want %d: a cancelled run did not finish", code, sync.ExitError)
	}

	st := emu.Stats()
	created := len(acct.users()) - preloaded
	c := rep.Result.Counts
	if c.Failed != 0 || c.Withheld != 0 || c.Applied+c.Cancelled != users+1 {
		t.Errorf("counts %+v, want none failed and each of the %d changes applied or cancelled", c, users+1)
	}
	// Once cancelled, no write starts: those that went out are the five
	// that had, and the ones at most 3 more the other workers had begun.
	if st.WriteAttempts < 5 || st.WriteAttempts > 5+3 {
		t.Errorf("%d writes went out, want 5 to 8: nothing after the cancel", st.WriteAttempts)
	}
	var interrupted, notTried int
	for _, r := range rep.Result.Changes {
		switch {
		case r.Outcome != sync.OutcomeCancelled:
		case r.Error == "not tried: the run was cancelled":
			notTried++
		case strings.HasPrefix(r.Error, "interrupted: "):
			interrupted++
		default:
			t.Errorf("cancelled change %s %s has error %q", r.Op, r.Name, r.Error)
		}
	}
	if interrupted > 4 {
		t.Errorf("%d changes interrupted, want at most one per worker (4)", interrupted)
	}
	// A change is interrupted when the cancel found it begun: its request
	// out, or waiting for its turn in the client.
	if c.Applied+interrupted+notTried != c.Applied+c.Cancelled || st.WriteAttempts < c.Applied || st.WriteAttempts > c.Applied+interrupted {
		t.Errorf("%d applied, %d interrupted, %d not tried, %d writes went out; want every write that went out applied or interrupted",
			c.Applied, interrupted, notTried, st.WriteAttempts)
	}
	// An interrupted create may have been committed before the answer was
	// cut off: PagerTree holds every applied one and at most those.
	if created < c.Applied || created > c.Applied+interrupted {
		t.Errorf("%d users in PagerTree, want from %d (applied) to %d (applied or interrupted)", created, c.Applied, c.Applied+interrupted)
	}

	if errs := logs.FilterLevelExact(zapcore.ErrorLevel).All(); len(errs) != 0 {
		t.Errorf("%d error lines, want none; the first: %s %v", len(errs), errs[0].Message, errs[0].ContextMap())
	}
	summary := logs.FilterMessage(fmt.Sprintf("run cancelled: %d changes not tried", notTried)).All()
	if len(summary) != 1 || summary[0].Level != zapcore.WarnLevel {
		t.Errorf("summary lines %v, want one warning \"run cancelled: %d changes not tried\"", summary, notTried)
	}
	if n := logs.FilterMessageSnippet("interrupted: the run was cancelled").Len(); n != interrupted {
		t.Errorf("%d interrupted lines, want one for each of the %d interrupted changes", n, interrupted)
	}
	if !strings.Contains(sync.ResultLine(rep.Result), fmt.Sprintf("; %d cancelled with the run", c.Cancelled)) {
		t.Errorf("result line %q does not count the cancelled changes", sync.ResultLine(rep.Result))
	}

	want := `
# HELP ptsync_sync_runs_total Sync runs, by result: success, failure (an error or a failed change) or withheld (destructive changes held back by the safety limits).
# TYPE ptsync_sync_runs_total counter
ptsync_sync_runs_total{result="failure"} 1
ptsync_sync_runs_total{result="success"} 0
ptsync_sync_runs_total{result="withheld"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ptsync_sync_runs_total"); err != nil {
		t.Error(err)
	}
	for series, value := range map[string]int{
		`ptsync_changes_total{kind="user",op="create",result="applied"}`:   c.Applied,
		`ptsync_changes_total{kind="user",op="create",result="cancelled"}`: users - c.Applied,
		`ptsync_changes_total{kind="team",op="create",result="cancelled"}`: 1,
		`ptsync_changes_total{kind="user",op="create",result="failed"}`:    0,
		`ptsync_changes_total{kind="team",op="create",result="failed"}`:    0,
	} {
		if got := seriesValue(t, reg, series); got != float64(value) {
			t.Errorf("%s = %v, want %d", series, got, value)
		}
	}
}

// seriesValue is the value of one series of reg, written as in the text
// exposition with its labels in sorted order; -1 when absent.
func seriesValue(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := f.GetName()
			if len(pairs) > 0 {
				name += "{" + strings.Join(pairs, ",") + "}"
			}
			if name == series {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
