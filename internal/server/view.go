package server

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sync"
)

// indexPage is what the status page shows.
type indexPage struct {
	layout
	// Ready and NotReady are the daemon's readiness (/readyz).
	Ready    bool
	NotReady string
	Runs     []runRow
	// NoRuns says the state holds no run yet.
	NoRuns  bool
	Plan    *planView
	Sources []sourceRow
	// DropLimit is safety.max_source_drop_percent (0: none).
	DropLimit float64
	Rates     *rateView
	// Feeds are the daemon's change feeds (watch mode; SetFeeds).
	Feeds []FeedStatus
}

// runRow is one run of the history table.
type runRow struct {
	state.Run
	Href string
	Took time.Duration
}

// planView is the newest plan: its withheld changes with the command that
// would apply them, its pending deletes and conflicts.
type planView struct {
	Run     runRow
	Summary sync.Summary
	// Changes is how many changes the plan had (not withheld).
	Changes   int
	Withheld  []changeRow
	Pending   []pendingRow
	Conflicts []sync.Conflict
	// Newer is the newest run when it is not the plan's (it failed before
	// it planned).
	Newer *runRow
	// Apply is the command that applies the withheld changes, Review the
	// one that plans them first.
	Apply, Review string
}

// changeRow is one change as the page lists it.
type changeRow struct {
	Op, Kind, Name, ID, Details string
	// Why is the change's reason, or why it was withheld.
	Why string
	// Outcome and Error are what became of it (a report's outcomes).
	Outcome, Error string
}

func newChangeRow(c sync.Change, why string) changeRow {
	return changeRow{Op: string(c.Op), Kind: string(c.Kind), Name: c.Name, ID: c.ID, Details: c.Details(), Why: why}
}

// pendingRow is a leaver users.delete_grace keeps for now.
type pendingRow struct {
	sync.PendingDelete
	// Due says the grace has passed: the next healthy run deletes them.
	Due bool
	// In is how long until then.
	In time.Duration
}

// sourceRow is one source: its size at its newest run against its last
// good size.
type sourceRow struct {
	Name string
	// Seen says a listed run returned the source; Users and Groups are
	// what the newest such run (SeenRun, at SeenAt) returned.
	Seen          bool
	Users, Groups int
	SeenRun       runRow
	// HasLastGood says a healthy run recorded its size.
	HasLastGood         bool
	LastGood            state.SourceCount
	UsersPct, GroupsPct float64 // change from the last good size, in percent
	// Over says a change is a drop beyond safety.max_source_drop_percent.
	Over bool
}

func (p *statusPage) index(w http.ResponseWriter, _ *http.Request) {
	page := indexPage{layout: p.layout("ptsync status"), DropLimit: p.opts.MaxSourceDropPercent}
	if p.opts.Daemon {
		page.Ready, page.NotReady = p.srv.Ready()
		page.Feeds = p.srv.feedList()
	}
	page.Rates = p.rates.view()
	err := p.opts.State.View(func(db Store) error {
		runs, err := db.Runs(p.opts.Runs)
		if err != nil {
			return err
		}
		page.NoRuns = len(runs) == 0
		for _, r := range runs {
			page.Runs = append(page.Runs, newRunRow(r))
		}
		if page.Plan, err = p.newestPlan(db, page.Runs); err != nil {
			return err
		}
		lastGood, err := db.LastGood()
		if err != nil {
			return err
		}
		page.Sources = p.sources(page.Runs, lastGood)
		return nil
	})
	if err != nil {
		p.fail(w, "ptsync status", err)
		return
	}
	p.render(w, indexTemplate, http.StatusOK, page)
}

func newRunRow(r state.Run) runRow {
	row := runRow{Run: r, Href: runHref(r.ID)}
	if !r.Ended.IsZero() && r.Ended.After(r.Started) {
		row.Took = r.Ended.Sub(r.Started)
	}
	return row
}

// newestPlan is the plan of the newest listed run that got as far as one,
// or nil.
func (p *statusPage) newestPlan(db Store, runs []runRow) (*planView, error) {
	for i, run := range runs {
		data, err := db.Report(run.ID)
		if errors.Is(err, state.ErrUnknownRun) {
			continue // pruned since Runs
		}
		if err != nil {
			return nil, err
		}
		_, plan, err := readReport(data)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", run.ID, err)
		}
		if plan == nil {
			continue
		}
		v := &planView{Run: run, Summary: plan.Summary, Changes: len(plan.Changes), Conflicts: plan.Conflicts,
			Apply: p.command("sync", "--allow-destructive"), Review: p.command("plan", "--allow-destructive")}
		if i > 0 {
			v.Newer = &runs[0]
		}
		for _, c := range plan.Withheld {
			v.Withheld = append(v.Withheld, newChangeRow(c, c.WithheldReason))
		}
		now := p.opts.Now()
		for _, d := range plan.PendingDeletes {
			row := pendingRow{PendingDelete: d, Due: !now.Before(d.After)}
			if !row.Due {
				row.In = d.After.Sub(now)
			}
			v.Pending = append(v.Pending, row)
		}
		return v, nil
	}
	return nil, nil
}

// command is a ptsync command line with this page's --config, quoted for
// a POSIX shell.
func (p *statusPage) command(name string, flags ...string) string {
	parts := []string{"ptsync", name}
	if p.opts.ConfigPath != "" {
		parts = append(parts, "--config", shellQuote(p.opts.ConfigPath))
	}
	return strings.Join(append(parts, flags...), " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sources compares each source's newest size in runs with its last good
// one, by name.
func (p *statusPage) sources(runs []runRow, lastGood map[string]state.SourceCount) []sourceRow {
	byName := map[string]*sourceRow{}
	row := func(name string) *sourceRow {
		if r, ok := byName[name]; ok {
			return r
		}
		r := &sourceRow{Name: name}
		byName[name] = r
		return r
	}
	for _, run := range runs { // newest first: the first sighting is the newest
		for name, c := range run.Sources {
			if r := row(name); !r.Seen {
				r.Seen, r.Users, r.Groups, r.SeenRun = true, c.Users, c.Groups, run
			}
		}
	}
	for name, c := range lastGood {
		r := row(name)
		r.HasLastGood, r.LastGood = true, c
	}
	out := make([]sourceRow, 0, len(byName))
	for _, r := range byName {
		if r.Seen && r.HasLastGood {
			r.UsersPct = change(r.LastGood.Users, r.Users)
			r.GroupsPct = change(r.LastGood.Groups, r.Groups)
			limit := p.opts.MaxSourceDropPercent
			r.Over = limit > 0 && (-r.UsersPct > limit || -r.GroupsPct > limit)
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// change is the change from then to now, in percent of then.
func change(then, now int) float64 {
	if then <= 0 {
		return 0
	}
	return float64(now-then) * 100 / float64(then)
}

// runPage is one run's report.
type runPage struct {
	layout
	Run runRow
	// Report is the decoded report; nil when it could not be read, then
	// ReportError says why. Plan is its plan, nil when the run failed
	// before it had one; Planned are its changes when none was applied.
	Report      *sync.Report
	Plan        *sync.Plan
	Planned     []changeRow
	ReportError string
	JSONHref    string
	Outcomes    []changeRow
	// More is how many outcomes are not listed (see the JSON).
	More    int
	Pending []pendingRow
}

// maxOutcomes bounds the outcomes a run page lists: a first run against
// a large directory creates thousands of users.
const maxOutcomes = 2000

func (p *statusPage) run(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	title := "ptsync run " + id
	page := runPage{layout: p.layout(title), JSONHref: runHref(id) + "/report.json"}
	err := p.opts.State.View(func(db Store) error {
		run, err := findRun(db, id)
		if err != nil {
			return err
		}
		page.Run = newRunRow(run)
		data, err := db.Report(id)
		if err != nil {
			return err
		}
		if page.Report, page.Plan, err = readReport(data); err != nil {
			page.ReportError = err.Error()
		}
		return nil
	})
	if err != nil {
		p.fail(w, title, err)
		return
	}
	if rep := page.Report; rep != nil {
		for i, o := range rep.Result.Changes {
			if i == maxOutcomes {
				page.More = len(rep.Result.Changes) - i
				break
			}
			why := o.Reason
			if o.Outcome == sync.OutcomeWithheld {
				why = o.WithheldReason
			}
			row := newChangeRow(o.Change, why)
			row.Outcome, row.Error = string(o.Outcome), o.Error
			if row.Error == why {
				row.Error = "" // a withheld change's error is its reason
			}
			page.Outcomes = append(page.Outcomes, row)
		}
	}
	if plan := page.Plan; plan != nil {
		for _, c := range plan.Changes {
			page.Planned = append(page.Planned, newChangeRow(c, c.Reason))
		}
		for _, d := range plan.PendingDeletes {
			page.Pending = append(page.Pending, pendingRow{PendingDelete: d, Due: !page.Report.Started.Before(d.After)})
		}
	}
	p.render(w, runTemplate, http.StatusOK, page)
}

// findRun is run id's history record.
func findRun(db Store, id string) (state.Run, error) {
	runs, err := db.Runs(0)
	if err != nil {
		return state.Run{}, err
	}
	for _, r := range runs {
		if r.ID == id {
			return r, nil
		}
	}
	return state.Run{}, fmt.Errorf("%w %s: no such run in the state (or pruned: only the newest state.keep_reports are kept)", state.ErrUnknownRun, id)
}

// reportJSON serves a run's report as the state keeps it.
func (p *statusPage) reportJSON(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var data []byte
	err := p.opts.State.View(func(db Store) error {
		var err error
		if _, err = findRun(db, id); err != nil {
			return err
		}
		data, err = db.Report(id)
		return err
	})
	if err != nil {
		p.fail(w, "ptsync run "+id, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Disposition", "inline; filename=\"ptsync-run-"+safeFileName(id)+".json\"")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// safeFileName keeps what a run id may hold (the state refuses others)
// and drops anything else.
func safeFileName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, id)
}
