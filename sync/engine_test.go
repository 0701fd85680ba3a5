package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// person and group are a test directory, written as a file source.
type person struct {
	ID       string `yaml:"id"`
	Email    string `yaml:"email"`
	Name     string `yaml:"name,omitempty"`
	Phone    string `yaml:"phone,omitempty"`
	Disabled bool   `yaml:"disabled,omitempty"`
}

type group struct {
	ID      string   `yaml:"id"`
	Name    string   `yaml:"name"`
	Members []string `yaml:"members"`
}

type directory struct {
	Users  []person `yaml:"users"`
	Groups []group  `yaml:"groups"`
}

// without returns the directory without the person of id, everywhere.
func (d directory) without(id string) directory {
	out := directory{}
	for _, p := range d.Users {
		if p.ID != id {
			out.Users = append(out.Users, p)
		}
	}
	for _, g := range d.Groups {
		g.Members = slices.DeleteFunc(slices.Clone(g.Members), func(m string) bool { return m == id })
		out.Groups = append(out.Groups, g)
	}
	return out
}

// corp: ann and bob on payments, bob and cat on db, dan only in a group no
// rule matches.
func corp() directory {
	return directory{
		Users: []person{
			{ID: "p1", Email: "Ann@Example.com", Name: "Ann Archer", Phone: "+1 415 555 0101"},
			{ID: "p2", Email: "bob@example.com", Name: "Bob Baker"},
			{ID: "p3", Email: "cat@example.com", Name: "Cat Cole", Phone: "+44 20 7946 0958"},
			{ID: "p4", Email: "dan@example.com", Name: "Dan Dunn"},
		},
		Groups: []group{
			{ID: "g-pay", Name: "oncall-payments", Members: []string{"p1", "p2"}},
			{ID: "g-db", Name: "oncall-db", Members: []string{"p2", "p3"}},
			{ID: "g-all", Name: "everyone", Members: []string{"p1", "p2", "p3", "p4"}},
		},
	}
}

// recorder sits in front of the emulator: it records every request and
// answers 422 to those fail picks, so a test can fail one change.
type recorder struct {
	next http.Handler
	fail func(method, path string, body []byte) bool

	mu       gosync.Mutex
	requests []string // "METHOD /path body"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.requests = append(r.requests, strings.TrimSpace(req.Method+" "+req.URL.Path+" "+string(body)))
	fail := r.fail
	r.mu.Unlock()
	if fail != nil && fail(req.Method, req.URL.Path, body) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"errors":[{"message":"rejected by the test"}]}`))
		return
	}
	r.next.ServeHTTP(w, req)
}

// writes returns the recorded write requests, "METHOD /path" only.
func (r *recorder) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, req := range r.requests {
		method, rest, _ := strings.Cut(req, " ")
		path, _, _ := strings.Cut(rest, " ")
		if method != http.MethodGet && path != "/public/login" {
			out = append(out, method+" "+path)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// rig is one end-to-end setup: a file source, the emulator behind a
// recorder, a real client and an engine.
type rig struct {
	t      *testing.T
	path   string
	emu    *pagertreetest.Server
	rec    *recorder
	engine *sync.Engine
	reg    *prometheus.Registry // the engine's and client's metrics
	// unmanaged is the team ptsync must never touch, as preloaded.
	unmanaged pagertree.Team
	owner     pagertree.User
}

// defaultPolicy syncs corp's oncall-* groups, deletes leavers and gone
// teams, protects nobody but relies on the owner being an admin.
func defaultPolicy() sync.Policy {
	return sync.Policy{
		Rules: []config.TeamRule{{
			Source: "corp", Match: "oncall-*", Name: `{{ trimPrefix "oncall-" .Name }}`, OnMissing: config.OnMissingDelete,
		}},
		Scope:          config.ScopeTeamMembers,
		DeleteUsers:    true,
		MaxDestructive: 25,
	}
}

func newRig(t *testing.T, dir directory, pol sync.Policy) *rig {
	t.Helper()
	emu := pagertreetest.New(pagertreetest.Options{})
	rec := &recorder{next: emu}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "corp.yaml"), emu: emu, rec: rec}
	var err error
	if r.owner, err = emu.AddUser(pagertree.User{Name: "Owner", Email: "owner@example.com", Roles: pagertree.Roles{Admin: true}}); err != nil {
		t.Fatal(err)
	}
	if r.unmanaged, err = emu.AddTeam(pagertree.Team{Name: "facilities", Description: "made by hand", MemberUserIDs: []string{r.owner.ID}}); err != nil {
		t.Fatal(err)
	}
	r.write(dir)
	r.reg = prometheus.NewRegistry()
	r.engine = newFileEngine(t, r.path, srv.URL, pol, sync.NewMetrics(r.reg, "v1.2.3-test"))
	return r
}

// corpInStep is PagerTree as corp() wants it under defaultPolicy, beside
// the owner and the hand-made team every rig starts with.
func corpInStep() state {
	return state{
		Users: map[string]string{
			"owner@example.com": "Owner|",
			"ann@example.com":   "Ann Archer|+14155550101",
			"bob@example.com":   "Bob Baker|",
			"cat@example.com":   "Cat Cole|+442079460958",
		},
		Teams: map[string][]string{
			"facilities": {"owner@example.com"},
			"payments":   {"ann@example.com", "bob@example.com"},
			"db":         {"bob@example.com", "cat@example.com"},
		},
	}
}

// newFileEngine is the engine the rigs drive: the file source at path, the
// PagerTree at url, and metrics (nil: none).
func newFileEngine(t *testing.T, path, url string, pol sync.Policy, metrics *sync.Metrics) *sync.Engine {
	t.Helper()
	src, err := file.New("corp", &file.Config{Path: path}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := pagertree.Config{URL: url, Username: pagertreetest.DefaultUsername, Password: pagertreetest.DefaultPassword}
	if metrics != nil { // a nil *Metrics must not become a non-nil Observer
		cfg.Observer = metrics
	}
	client, err := pagertree.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sync.Engine{
		Metrics:        metrics,
		Sources:        []sources.Source{src},
		PagerTree:      ptaccount.V3{Client: client},
		Policy:         pol,
		MinSourceUsers: 1,
		Concurrency:    4,
		Logger:         zap.NewNop(),
	}
}

func (r *rig) write(dir directory) {
	r.t.Helper()
	data, err := yaml.Marshal(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.path, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// run runs one cycle and returns the report and exit code, failing the
// test on a run error.
func (r *rig) run(opts sync.RunOptions) (sync.Report, int) {
	r.t.Helper()
	rep, err := r.engine.RunOnce(context.Background(), opts)
	if err != nil {
		r.t.Fatalf("RunOnce: %v", err)
	}
	return rep, sync.ExitCode(rep, nil)
}

// state is the account as emails and team memberships, for comparing.
type state struct {
	Users map[string]string   // email -> name|phone
	Teams map[string][]string // team name -> sorted member emails
}

func (r *rig) state() state {
	st := state{Users: map[string]string{}, Teams: map[string][]string{}}
	byID := map[string]string{}
	for _, u := range r.emu.Users() {
		byID[u.ID] = u.Email
		st.Users[u.Email] = u.Name + "|" + u.Phone
	}
	for _, t := range r.emu.Teams() {
		members := []string{}
		for _, id := range t.MemberUserIDs {
			members = append(members, byID[id])
		}
		slices.Sort(members)
		st.Teams[t.Name] = members
	}
	return st
}

func (r *rig) team(name string) pagertree.Team {
	for _, t := range r.emu.Teams() {
		if t.Name == name {
			return t
		}
	}
	r.t.Fatalf("no team %q in PagerTree", name)
	return pagertree.Team{}
}

func TestRunOnceSyncsThenMakesNoWrites(t *testing.T) {
	r := newRig(t, corp(), defaultPolicy())
	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitOK {
		t.Fatalf("exit code %d, result %+v", code, rep.Result)
	}
	want := corpInStep()
	if got := r.state(); !reflect.DeepEqual(got, want) {
		t.Errorf("PagerTree after the first sync =\n%+v\nwant\n%+v", got, want)
	}
	if rep.Result.Counts != (sync.Counts{Applied: 5}) {
		t.Errorf("counts = %+v, want 5 applied (3 users, 2 teams)", rep.Result.Counts)
	}
	if got := r.rec.writes(); !reflect.DeepEqual(got, []string{"POST /user", "POST /user", "POST /user", "POST /team", "POST /team"}) {
		t.Errorf("writes = %v: want the users created before the teams, one request each", got)
	}
	if d := r.team("payments").Description; d != "[managed by ptsync: source=corp group=g-pay]" {
		t.Errorf("payments description = %q, want the marker", d)
	}
	if got := r.team("facilities"); !reflect.DeepEqual(got, r.unmanaged) {
		t.Errorf("the unmanaged team changed:\n%+v\nwas\n%+v", got, r.unmanaged)
	}
	if rep.RunID == "" || !reflect.DeepEqual(rep.Sources, []sync.SourceReport{{Name: "corp", Users: 4, Groups: 3, Skipped: map[string]int{}}}) {
		t.Errorf("report run_id %q sources %+v", rep.RunID, rep.Sources)
	}

	r.emu.ResetStats()
	rep, code = r.run(sync.RunOptions{})
	st := r.emu.Stats()
	if code != sync.ExitOK || !rep.Plan.InSync() || len(rep.Result.Changes) != 0 {
		t.Errorf("second run: exit %d, plan %+v", code, rep.Plan)
	}
	if st.WriteAttempts != 0 || st.Writes != 0 {
		t.Errorf("second run made %d write requests (%d writes), want 0", st.WriteAttempts, st.Writes)
	}
	if want := map[string]int{"GET /user": 1, "GET /team": 1}; !reflect.DeepEqual(st.Requests, want) {
		t.Errorf("second run requests = %v, want exactly %v", st.Requests, want)
	}
}

// TestConvergedRunCostsOnlyListPages: ceil(N/100) list requests per
// collection and nothing else, at a size that needs several pages.
func TestConvergedRunCostsOnlyListPages(t *testing.T) {
	dir := directory{}
	for g := range 120 {
		dir.Groups = append(dir.Groups, group{ID: fmt.Sprintf("g%03d", g), Name: fmt.Sprintf("oncall-%03d", g)})
	}
	for i := range 250 {
		id := fmt.Sprintf("p%03d", i)
		dir.Users = append(dir.Users, person{ID: id, Email: id + "@example.com", Name: "Person " + id})
		g := &dir.Groups[i%120]
		g.Members = append(g.Members, id)
	}
	r := newRig(t, dir, defaultPolicy())
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("first run exit %d", code)
	}
	r.emu.ResetStats()
	rep, code := r.run(sync.RunOptions{})
	st := r.emu.Stats()
	// 251 users (the owner too) and 121 teams (the unmanaged one too).
	want := map[string]int{"GET /user": 3, "GET /team": 2}
	if code != sync.ExitOK || !rep.Plan.InSync() || st.Writes != 0 || !reflect.DeepEqual(st.Requests, want) {
		t.Errorf("converged run: exit %d, in sync %v, writes %d, requests %v; want 0, true, 0, %v",
			code, rep.Plan.InSync(), st.Writes, st.Requests, want)
	}
}

func TestLeaverIsRemoved(t *testing.T) {
	tests := []struct {
		name  string
		leave func(directory) directory
	}{
		{"removed from the directory", func(d directory) directory { return d.without("p2") }},
		{"disabled in the directory", func(d directory) directory {
			d.Users[1].Disabled = true
			return d
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, corp(), defaultPolicy())
			if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
				t.Fatalf("first run exit %d", code)
			}
			payments, db := r.team("payments"), r.team("db")
			r.write(tt.leave(corp()))
			rep, code := r.run(sync.RunOptions{})
			if code != sync.ExitOK {
				t.Fatalf("exit %d, result %+v", code, rep.Result)
			}
			st := r.state()
			if _, ok := st.Users["bob@example.com"]; ok {
				t.Error("bob is still a PagerTree user")
			}
			if want := []string{"ann@example.com"}; !reflect.DeepEqual(st.Teams["payments"], want) {
				t.Errorf("payments = %v, want %v", st.Teams["payments"], want)
			}
			if want := []string{"cat@example.com"}; !reflect.DeepEqual(st.Teams["db"], want) {
				t.Errorf("db = %v, want %v", st.Teams["db"], want)
			}
			if got := r.team("payments"); got.ID != payments.ID || got.ScheduleID != payments.ScheduleID {
				t.Errorf("payments was replaced: %+v, was %+v", got, payments)
			}
			if got := r.team("db"); got.ScheduleID != db.ScheduleID {
				t.Errorf("db schedule changed")
			}
			if rep.Result.Counts != (sync.Counts{Applied: 3}) {
				t.Errorf("counts = %+v, want 3 applied (2 team updates, 1 user delete)", rep.Result.Counts)
			}
		})
	}
}

// TestLeaverAloneOnAHandMadeTeamIsKept: PagerTree takes a deleted user out
// of every team, so deleting the only member of a team ptsync does not
// manage would empty it. That delete is withheld; the leaver's managed
// memberships still go.
func TestLeaverAloneOnAHandMadeTeamIsKept(t *testing.T) {
	r := newRig(t, corp(), defaultPolicy())
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("first run exit %d", code)
	}
	var bob pagertree.User
	for _, u := range r.emu.Users() {
		if u.Email == "bob@example.com" {
			bob = u
		}
	}
	night, err := r.emu.AddTeam(pagertree.Team{Name: "night-shift", Description: "made by hand", MemberUserIDs: []string{bob.ID}})
	if err != nil {
		t.Fatal(err)
	}
	r.write(corp().without("p2"))

	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitWithheld {
		t.Fatalf("exit %d, want %d; result %+v", code, sync.ExitWithheld, rep.Result)
	}
	want := state{
		Users: map[string]string{"owner@example.com": "Owner|", "ann@example.com": "Ann Archer|+14155550101",
			"bob@example.com": "Bob Baker|", "cat@example.com": "Cat Cole|+442079460958"},
		Teams: map[string][]string{"facilities": {"owner@example.com"}, "night-shift": {"bob@example.com"},
			"payments": {"ann@example.com"}, "db": {"cat@example.com"}},
	}
	if st := r.state(); !reflect.DeepEqual(st, want) {
		t.Errorf("PagerTree =\n%+v\nwant\n%+v", st, want)
	}
	if got := r.team("night-shift"); !reflect.DeepEqual(got, night) {
		t.Errorf("the hand-made team changed:\n%+v\nwas\n%+v", got, night)
	}
	withheld := rep.Result.Changes[len(rep.Result.Changes)-1]
	if rep.Result.Counts != (sync.Counts{Applied: 2, Withheld: 1}) || withheld.Name != "bob@example.com" ||
		!strings.Contains(withheld.Error, `leave team "night-shift" with no members`) {
		t.Errorf("counts %+v, last change %+v: want bob's delete withheld for night-shift", rep.Result.Counts, withheld)
	}

	if _, code := r.run(sync.RunOptions{AllowDestructive: true}); code != sync.ExitOK {
		t.Fatalf("--allow-destructive run: exit %d", code)
	}
	want.Teams["night-shift"] = []string{}
	delete(want.Users, "bob@example.com")
	if st := r.state(); !reflect.DeepEqual(st, want) {
		t.Errorf("after --allow-destructive PagerTree =\n%+v\nwant\n%+v", st, want)
	}
}

func TestGroupRenameRenamesTeamInPlace(t *testing.T) {
	r := newRig(t, corp(), defaultPolicy())
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("first run exit %d", code)
	}
	before := r.team("db")
	dir := corp()
	dir.Groups[1].Name = "oncall-database"
	r.write(dir)
	r.rec.reset()
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("exit %d", code)
	}
	after := r.team("database")
	if after.ID != before.ID || after.ScheduleID != before.ScheduleID || !reflect.DeepEqual(after.MemberUserIDs, before.MemberUserIDs) {
		t.Errorf("renamed team = %+v, was %+v: want same id, schedule and members", after, before)
	}
	if got, want := r.rec.writes(), []string{"PUT /team/" + before.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
}

func TestDestructiveChangesWithheldOverTheLimit(t *testing.T) {
	pol := defaultPolicy()
	pol.MaxDestructive = 2
	r := newRig(t, corp(), pol)
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK {
		t.Fatalf("first run exit %d", code)
	}
	// Ann and Bob leave (2 user deletes + 3 member removals = 5 > 2) and
	// Eve is hired onto payments.
	dir := corp().without("p1").without("p2")
	dir.Users = append(dir.Users, person{ID: "p5", Email: "eve@example.com", Name: "Eve Evans"})
	dir.Groups[0].Members = []string{"p5"}
	r.write(dir)

	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitWithheld {
		t.Fatalf("exit %d, want %d; result %+v", code, sync.ExitWithheld, rep.Result)
	}
	st := r.state()
	if want := []string{"ann@example.com", "bob@example.com", "eve@example.com"}; !reflect.DeepEqual(st.Teams["payments"], want) {
		t.Errorf("payments = %v, want the hire added and nobody removed: %v", st.Teams["payments"], want)
	}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		if _, ok := st.Users[email]; !ok {
			t.Errorf("%s was deleted despite the limit", email)
		}
	}
	if rep.Result.Counts.Withheld == 0 || rep.Result.Counts.Failed != 0 {
		t.Errorf("counts = %+v, want withheld changes and no failure", rep.Result.Counts)
	}

	rep, code = r.run(sync.RunOptions{AllowDestructive: true})
	if code != sync.ExitOK {
		t.Fatalf("--allow-destructive run: exit %d, result %+v", code, rep.Result)
	}
	st = r.state()
	want := state{
		Users: map[string]string{"owner@example.com": "Owner|", "cat@example.com": "Cat Cole|+442079460958", "eve@example.com": "Eve Evans|"},
		Teams: map[string][]string{"facilities": {"owner@example.com"}, "payments": {"eve@example.com"}, "db": {"cat@example.com"}},
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("after --allow-destructive =\n%+v\nwant\n%+v", st, want)
	}
}

func TestDryRunMakesNoWriteRequests(t *testing.T) {
	r := newRig(t, corp(), defaultPolicy())
	before := r.state()
	r.emu.ResetStats()
	rep, code := r.run(sync.RunOptions{DryRun: true})
	st := r.emu.Stats()
	if st.WriteAttempts != 0 {
		t.Errorf("dry run sent %d write requests", st.WriteAttempts)
	}
	if code != sync.ExitOK || rep.Result.Counts != (sync.Counts{DryRun: 5}) || rep.Plan.Summary != (sync.Summary{Create: 5}) {
		t.Errorf("dry run: exit %d, counts %+v, summary %+v", code, rep.Result.Counts, rep.Plan.Summary)
	}
	if !reflect.DeepEqual(r.state(), before) {
		t.Error("dry run changed PagerTree")
	}
}

func TestSavedPlan(t *testing.T) {
	saved := func(t *testing.T, r *rig) sync.Plan {
		t.Helper()
		prep, err := r.engine.Prepare(context.Background(), sync.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := sync.RenderJSON(&buf, prep.Plan); err != nil {
			t.Fatal(err)
		}
		p, err := sync.ReadPlan(&buf)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("refused after PagerTree changed", func(t *testing.T) {
		r := newRig(t, corp(), defaultPolicy())
		p := saved(t, r)
		if _, err := r.emu.AddUser(pagertree.User{Name: "Walk In", Email: "walkin@example.com"}); err != nil {
			t.Fatal(err)
		}
		r.emu.ResetStats()
		rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
		if !errors.Is(err, sync.ErrStalePlan) {
			t.Fatalf("ApplyPlan error = %v, want ErrStalePlan", err)
		}
		if !strings.Contains(err.Error(), "make a new plan with ptsync plan --out") {
			t.Errorf("error %q does not say what to do", err)
		}
		if st := r.emu.Stats(); st.WriteAttempts != 0 {
			t.Errorf("a refused plan sent %d write requests", st.WriteAttempts)
		}
		if sync.ExitCode(rep, err) != sync.ExitError {
			t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
		}
	})

	t.Run("applied while PagerTree is unchanged", func(t *testing.T) {
		r := newRig(t, corp(), defaultPolicy())
		p := saved(t, r)
		rep, err := r.engine.ApplyPlan(context.Background(), p, sync.RunOptions{})
		if err != nil || rep.Result.Counts != (sync.Counts{Applied: 5}) {
			t.Fatalf("ApplyPlan: %v, counts %+v", err, rep.Result.Counts)
		}
		r.emu.ResetStats()
		if rep, _ := r.run(sync.RunOptions{}); !rep.Plan.InSync() || r.emu.Stats().Writes != 0 {
			t.Errorf("a sync after the applied plan is not empty: %+v", rep.Plan)
		}
	})
}

// TestSourceProblemsAbortBeforeAnyWrite: PagerTree is read alongside the
// sources, but a source problem ends the run before any write.
func TestSourceProblemsAbortBeforeAnyWrite(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(r *rig)
		wantErr string
	}{
		{
			name:    "unreadable file",
			setup:   func(r *rig) { _ = os.WriteFile(r.path, []byte("users:\n  - {id: a, emial: a@x.example}\n"), 0o600) },
			wantErr: `source "corp": `,
		},
		{
			name:    "missing file",
			setup:   func(r *rig) { _ = os.Remove(r.path) },
			wantErr: `source "corp": read users file: `,
		},
		{
			name:    "fewer users than min_source_users",
			setup:   func(r *rig) { r.engine.MinSourceUsers = 5 },
			wantErr: `source "corp" returned 4 users, fewer than safety.min_source_users (5); nothing was written`,
		},
		{
			name: "a second source fails",
			setup: func(r *rig) {
				bad, _ := file.New("contractors", &file.Config{Path: filepath.Join(t.TempDir(), "none.yaml")}, sources.Options{})
				r.engine.Sources = append(r.engine.Sources, bad)
			},
			wantErr: `source "contractors": read users file: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, corp(), defaultPolicy())
			tt.setup(r)
			rep, err := r.engine.RunOnce(context.Background(), sync.RunOptions{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to start with %q", err, tt.wantErr)
			}
			if w := r.rec.writes(); len(w) != 0 {
				t.Errorf("PagerTree writes made, want none: %v", w)
			}
			if sync.ExitCode(rep, err) != sync.ExitError {
				t.Errorf("exit code %d, want 1", sync.ExitCode(rep, err))
			}
		})
	}
}

func TestFailedChangeDoesNotStopTheOthers(t *testing.T) {
	r := newRig(t, corp(), defaultPolicy())
	r.rec.fail = func(method, path string, body []byte) bool {
		return method == http.MethodPost && path == "/user" && bytes.Contains(body, []byte("bob@example.com"))
	}
	rep, code := r.run(sync.RunOptions{})
	if code != sync.ExitError {
		t.Fatalf("exit %d, want 1", code)
	}
	outcomes := map[string]sync.Outcome{}
	for _, c := range rep.Result.Changes {
		outcomes[c.Name] = c.Outcome
	}
	want := map[string]sync.Outcome{
		"ann@example.com": sync.OutcomeApplied,
		"bob@example.com": sync.OutcomeFailed,
		"cat@example.com": sync.OutcomeApplied,
		"payments":        sync.OutcomeFailed, // created without bob
		"db":              sync.OutcomeFailed,
	}
	if !reflect.DeepEqual(outcomes, want) {
		t.Errorf("outcomes = %v, want %v", outcomes, want)
	}
	st := r.state()
	if !reflect.DeepEqual(st.Teams["payments"], []string{"ann@example.com"}) || !reflect.DeepEqual(st.Teams["db"], []string{"cat@example.com"}) {
		t.Errorf("teams = %v, want them created without bob", st.Teams)
	}

	// The fault gone, the next run converges, and the one after writes nothing.
	r.rec.fail = nil
	if rep, code := r.run(sync.RunOptions{}); code != sync.ExitOK || rep.Result.Counts != (sync.Counts{Applied: 3}) {
		t.Errorf("second run: exit %d counts %+v, want bob created and added to 2 teams", code, rep.Result.Counts)
	}
	r.emu.ResetStats()
	if _, code := r.run(sync.RunOptions{}); code != sync.ExitOK || r.emu.Stats().Writes != 0 {
		t.Errorf("third run: exit %d, %d writes", code, r.emu.Stats().Writes)
	}
}
