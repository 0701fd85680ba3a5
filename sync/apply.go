package sync

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Outcome is what became of one change in a run.
type Outcome string

// Outcomes. A team write that went through without some of its members
// (their user create failed) is OutcomeFailed with an error saying so:
// the run exits 1 and the next run adds them. A change the run's context
// ended before it was tried, or while its request was in flight, is
// OutcomeCancelled: PagerTree did not refuse it, so it is no failure of
// the change, but the run did not finish and exits 1.
const (
	OutcomeApplied   Outcome = "applied"
	OutcomeFailed    Outcome = "failed"
	OutcomeDryRun    Outcome = "skipped-dry-run"
	OutcomeWithheld  Outcome = "withheld"
	OutcomeCancelled Outcome = "cancelled"
)

// ChangeResult is one change and its outcome.
type ChangeResult struct {
	Change
	Outcome Outcome `json:"outcome"`
	Error   string  `json:"error,omitempty"`
	// written says the change's write went through, perhaps without some
	// members (a partly applied team write): its team is ptsync's.
	written bool
}

// Counts tallies a Result by outcome.
type Counts struct {
	Applied   int `json:"applied"`
	Failed    int `json:"failed"`
	DryRun    int `json:"skipped_dry_run"`
	Withheld  int `json:"withheld"`
	Cancelled int `json:"cancelled"`
}

// Result is what Apply did: every change of the plan, in plan order, then
// every withheld change.
type Result struct {
	DryRun  bool           `json:"dry_run"`
	Changes []ChangeResult `json:"changes"`
	Counts  Counts         `json:"counts"`
}

// ApplyOptions tunes Apply.
type ApplyOptions struct {
	// DryRun makes Apply log what it would do and write nothing.
	DryRun bool
	// Concurrency is the number of writes in flight inside one phase
	// (pagertree.concurrency); below 1 means 1.
	Concurrency int
	Log         *zap.Logger // nil: no logs
	Metrics     *Metrics    // nil: no metrics
	// AfterPhase, when set, is called once each phase of a run that is
	// not a dry run has finished, with that phase's results (the engine
	// records there the teams ptsync created, adopted and deleted).
	AfterPhase func(phase Phase, done []ChangeResult)
}

// Apply is the only code that writes to PagerTree. It runs p.Changes phase
// by phase (see Phase), each phase finishing before the next starts, with
// opt.Concurrency writes in flight inside a phase. A failed change is
// recorded and the others go on. Team members are resolved from emails to
// ids through cur's users and the users created earlier in this run.
// With opt.DryRun, it logs "would ..." for each change and writes nothing:
// dry run is decided here and nowhere else. Withheld changes are recorded,
// never applied. Once ctx ends, no change is tried any more: each left is
// OutcomeCancelled, and one line says how many.
//
// The plan's safety rules weigh user deletes against the team writes of
// the run, so a user delete is not attempted when a team the user is in
// (per cur) was meant to be written in an earlier phase and was not:
// PagerTree would take the user out of that team, which the plan never
// counted (see notWritten).
func Apply(ctx context.Context, w Writer, cur Current, p Plan, opt ApplyOptions) Result {
	a := &applier{
		w:         w,
		log:       opt.Log,
		metrics:   opt.Metrics,
		ids:       userIDsByEmail(cur.Users),
		failed:    map[string]string{},
		teamsOf:   teamsByMember(cur.Teams),
		unwritten: map[string]bool{},
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	res := Result{DryRun: opt.DryRun, Changes: make([]ChangeResult, len(p.Changes), len(p.Changes)+len(p.Withheld))}
	phases := map[Phase][]int{}
	for i, c := range p.Changes {
		res.Changes[i].Change = c
		phases[c.Phase()] = append(phases[c.Phase()], i)
	}
	for _, phase := range []Phase{PhaseCreateUsers, PhaseUpdateUsers, PhaseTeams, PhaseMemberships, PhaseDeleteTeams, PhaseDeleteUsers} {
		var g errgroup.Group
		g.SetLimit(max(opt.Concurrency, 1))
		for _, i := range phases[phase] {
			r := &res.Changes[i]
			g.Go(func() error {
				if opt.DryRun {
					a.wouldApply(r)
				} else {
					a.apply(ctx, r)
				}
				return nil
			})
		}
		_ = g.Wait() // workers report through their ChangeResult, never an error
		if opt.AfterPhase != nil && !opt.DryRun && len(phases[phase]) > 0 {
			done := make([]ChangeResult, 0, len(phases[phase]))
			for _, i := range phases[phase] {
				done = append(done, res.Changes[i])
			}
			opt.AfterPhase(phase, done)
		}
	}
	for _, c := range p.Withheld {
		a.log.Warn("withheld destructive change", changeFields(c, zap.String("reason", c.WithheldReason))...)
		if !opt.DryRun {
			a.metrics.observeChange(c, OutcomeWithheld)
		}
		res.Changes = append(res.Changes, ChangeResult{Change: c, Outcome: OutcomeWithheld, Error: c.WithheldReason})
	}
	for _, r := range res.Changes {
		switch r.Outcome {
		case OutcomeApplied:
			res.Counts.Applied++
		case OutcomeFailed:
			res.Counts.Failed++
		case OutcomeDryRun:
			res.Counts.DryRun++
		case OutcomeWithheld:
			res.Counts.Withheld++
		case OutcomeCancelled:
			res.Counts.Cancelled++
		}
	}
	if a.notTried > 0 {
		// One line, not one per change: a cancelled run of thousands of
		// changes must not read as thousands of failures.
		a.log.Warn(fmt.Sprintf("run cancelled: %d changes not tried", a.notTried),
			zap.Int("not_tried", a.notTried), zap.NamedError("cause", cmp.Or(context.Cause(ctx), context.DeadlineExceeded)))
	}
	return res
}

// ended reports whether the run's context has ended, or its deadline has
// passed: the timer that ends it may fire late on a loaded machine, and
// no write may start after the deadline.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// applier is the state of one Apply call shared by its workers.
type applier struct {
	w       Writer
	log     *zap.Logger
	metrics *Metrics

	mu  gosync.Mutex
	ids map[string]string // email key -> PagerTree user id, creates of this run included
	// failed maps the email of a user whose create failed to the error,
	// so a team write can say why a member is missing.
	failed map[string]string

	teamsOf   map[string][]AccountTeam // user id -> current teams holding them
	unwritten map[string]bool          // ids of teams whose update or delete was not written
	notTried  int                      // changes not tried because ctx had ended
}

// teamsByMember indexes the current teams by member and admin id.
func teamsByMember(teams []AccountTeam) map[string][]AccountTeam {
	of := map[string][]AccountTeam{}
	for _, t := range teams {
		for _, id := range append(slices.Clone(t.MemberIDs), t.AdminIDs...) {
			if !slices.ContainsFunc(of[id], func(o AccountTeam) bool { return o.ID == t.ID }) {
				of[id] = append(of[id], t)
			}
		}
	}
	return of
}

// notWritten is the error of a user delete that would change a team whose
// own write this run did not go through, or nil. Deleting the user would
// take them out of a team that still holds the members the plan meant to
// replace, which can leave it empty; the next run plans both again.
func (a *applier) notWritten(userID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var names []string
	for _, t := range a.teamsOf[userID] {
		if a.unwritten[t.ID] {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	verb, it := "was", "it"
	if len(names) > 1 {
		verb, it = "were", "them"
	}
	return fmt.Errorf("not attempted: %s %s not written this run; deleting the user would change %s — retried next run", teamList(names), verb, it)
}

// userIDsByEmail indexes users by email key; of two users sharing an email
// the lowest id wins, as in MakePlan.
func userIDsByEmail(users []AccountUser) map[string]string {
	sorted := slices.Clone(users)
	slices.SortFunc(sorted, func(a, b AccountUser) int { return cmp.Compare(a.ID, b.ID) })
	ids := make(map[string]string, len(sorted))
	for _, u := range sorted {
		for _, k := range emailKeys(u) {
			if _, dup := ids[k]; !dup {
				ids[k] = u.ID
			}
		}
	}
	return ids
}

func (a *applier) wouldApply(r *ChangeResult) {
	r.Outcome = OutcomeDryRun
	a.log.Info("would "+string(r.Op)+" "+string(r.Kind), changeFields(r.Change)...)
}

func (a *applier) apply(ctx context.Context, r *ChangeResult) {
	if ended(ctx) {
		a.mu.Lock()
		a.notTried++
		a.mu.Unlock()
		r.Outcome, r.Error = OutcomeCancelled, "not tried: the run was cancelled"
		a.metrics.observeChange(r.Change, r.Outcome)
		return
	}
	var err error
	if r.Kind == KindUser && r.Op == OpDelete {
		err = a.notWritten(r.ID)
	}
	if err == nil {
		err = a.write(ctx, &r.Change)
	}
	var partial *partialError
	if err != nil && r.Kind == KindTeam && r.Op != OpCreate && !errors.As(err, &partial) {
		a.mu.Lock()
		a.unwritten[r.ID] = true
		a.mu.Unlock()
	}
	r.written = err == nil || errors.As(err, &partial)
	switch {
	case err == nil:
		r.Outcome = OutcomeApplied
		a.log.Info(pastTense(r.Op)+" "+string(r.Kind), changeFields(r.Change)...)
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// Cut off by the run's end, not refused by PagerTree; it may have
		// been applied, and the next run plans whatever it did not do.
		r.Outcome, r.Error = OutcomeCancelled, "interrupted: the run was cancelled while it was in flight (it may have been applied)"
		a.log.Warn(string(r.Op)+" "+string(r.Kind)+" interrupted: the run was cancelled", changeFields(r.Change)...)
	case errors.As(err, &partial):
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		a.log.Error(pastTense(r.Op)+" "+string(r.Kind)+" without some members", changeFields(r.Change, zap.Error(err))...)
	default:
		r.Outcome, r.Error = OutcomeFailed, err.Error()
		a.log.Error("failed to "+string(r.Op)+" "+string(r.Kind), changeFields(r.Change, zap.Error(err))...)
	}
	a.metrics.observeChange(r.Change, r.Outcome)
}

// write makes the one request of change c, filling in c.ID on a create.
func (a *applier) write(ctx context.Context, c *Change) error {
	switch {
	case c.Kind == KindUser && c.Op == OpCreate:
		u, err := a.w.CreateUser(ctx, c.NewUser())
		a.mu.Lock()
		defer a.mu.Unlock()
		if err != nil {
			a.failed[EmailKey(c.Name)] = err.Error()
			return err
		}
		c.ID = u.ID
		a.ids[EmailKey(c.Name)] = u.ID
		return nil
	case c.Kind == KindUser && c.Op == OpUpdate:
		return a.w.UpdateUser(ctx, c.ID, c.UserPatch())
	case c.Kind == KindUser && c.Op == OpDelete:
		return a.w.DeleteUser(ctx, c.ID)
	case c.Kind == KindTeam && c.Op == OpCreate:
		ids, missing := a.resolve(c.Members)
		if len(ids) == 0 && len(c.Members) > 0 {
			// An on-call team that pages no one (and, on v4, one PagerTree
			// refuses): the next run creates it once a member has a user.
			return fmt.Errorf("not written: none of its %d members has a PagerTree user (%s)", len(c.Members), missing)
		}
		admins, err := a.resolveAdmins(c)
		if err != nil {
			return err
		}
		t, err := a.w.CreateTeam(ctx, c.NewTeam(ids, admins))
		if err != nil {
			return err
		}
		c.ID = t.ID
		return missing.err()
	case c.Kind == KindTeam && c.Op == OpUpdate:
		var ids []string
		var missing missingMembers
		if c.MembersSet {
			ids, missing = a.resolve(c.Members)
			if len(ids) == 0 && len(c.Members) > 0 {
				// Writing the empty set would empty a team the plan
				// wanted populated: an on-call team that pages no one.
				return fmt.Errorf("not written: none of its %d members has a PagerTree user (%s)", len(c.Members), missing)
			}
		}
		admins, err := a.resolveAdmins(c)
		if err != nil {
			return err
		}
		if err := a.w.UpdateTeam(ctx, c.ID, c.TeamPatch(ids, admins)); err != nil {
			return err
		}
		return missing.err()
	case c.Kind == KindTeam && c.Op == OpDelete:
		return a.w.DeleteTeam(ctx, c.ID)
	}
	return fmt.Errorf("unknown change %s %s", c.Op, c.Kind)
}

// resolveAdmins maps a team change's admins to PagerTree ids. Unlike
// members, every one must resolve: a team's admins are few and chosen, and
// writing a part of them could drop the one admin who runs the team.
func (a *applier) resolveAdmins(c *Change) ([]string, error) {
	if !c.AdminsSet {
		return nil, nil
	}
	ids, missing := a.resolve(c.Admins)
	if len(missing) > 0 {
		return nil, fmt.Errorf("not written: admins without a PagerTree user: %s", missing)
	}
	return ids, nil
}

// resolve maps member emails to PagerTree ids, returning those it cannot.
func (a *applier) resolve(emails []string) ([]string, missingMembers) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := make([]string, 0, len(emails))
	var missing missingMembers
	for _, e := range emails {
		if id, ok := a.ids[EmailKey(e)]; ok {
			ids = append(ids, id)
			continue
		}
		why, ok := a.failed[EmailKey(e)]
		if !ok {
			why = "no PagerTree user"
		} else {
			why = "user create failed: " + why
		}
		missing = append(missing, e+" ("+why+")")
	}
	return ids, missing
}

// missingMembers lists members a team write had to leave out, with why.
type missingMembers []string

func (m missingMembers) String() string { return strings.Join(m, ", ") }

func (m missingMembers) err() error {
	if len(m) == 0 {
		return nil
	}
	return &partialError{missing: m}
}

// partialError is a team write that went through without some members.
type partialError struct{ missing missingMembers }

func (e *partialError) Error() string {
	return fmt.Sprintf("partly applied: written without %d member(s): %s", len(e.missing), e.missing)
}

func pastTense(op Op) string {
	switch op {
	case OpCreate:
		return "created"
	case OpUpdate:
		return "updated"
	case OpDelete:
		return "deleted"
	}
	return string(op)
}

// changeFields are the log fields that identify a change and what it does.
func changeFields(c Change, extra ...zap.Field) []zap.Field {
	fields := []zap.Field{zap.String("op", string(c.Op)), zap.String("kind", string(c.Kind)), zap.String("name", c.Name)}
	if c.ID != "" {
		fields = append(fields, zap.String("id", c.ID))
	}
	for _, f := range c.Fields {
		if f.Field != "description" {
			fields = append(fields, zap.String(f.Field, f.New))
		}
	}
	if len(c.MembersAdded) > 0 {
		fields = append(fields, zap.Strings("members_added", c.MembersAdded))
	}
	if len(c.MembersRemoved) > 0 {
		fields = append(fields, zap.Strings("members_removed", c.MembersRemoved))
	}
	return append(fields, extra...)
}

// RenderResult writes what a run did, as text: every failed change with
// its error, then ResultLine.
func RenderResult(w io.Writer, r Result) error {
	b := bufio.NewWriter(w)
	header := false
	for _, c := range r.Changes {
		if c.Outcome != OutcomeFailed {
			continue
		}
		if !header {
			fmt.Fprintln(b, "Failed (the next run tries them again):")
			header = true
		}
		writeChange(b, "", c.Change, c.Error)
	}
	if header {
		b.WriteByte('\n')
	}
	fmt.Fprintln(b, ResultLine(r))
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// ResultLine is a run's one-line total.
func ResultLine(r Result) string {
	if r.DryRun {
		return fmt.Sprintf("Dry run: nothing applied (%d changes would be, %d withheld).", r.Counts.DryRun, r.Counts.Withheld)
	}
	line := fmt.Sprintf("Applied %d of %d changes", r.Counts.Applied, r.Counts.Applied+r.Counts.Failed+r.Counts.Cancelled)
	if r.Counts.Failed > 0 {
		line += fmt.Sprintf("; %d failed", r.Counts.Failed)
	}
	if r.Counts.Cancelled > 0 {
		line += fmt.Sprintf("; %d cancelled with the run (the next run plans them again)", r.Counts.Cancelled)
	}
	if r.Counts.Withheld > 0 {
		line += fmt.Sprintf("; %d withheld by the safety limits", r.Counts.Withheld)
	}
	return line + "."
}
