package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	gosync "sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ptsync/ptsync/sources"
)

// A scoped sync (watch mode) plans and writes only what changed in the
// directory since the last sync, reading those PagerTree objects afresh
// instead of listing the account: a few requests instead of ceil(n/100)
// per collection. A source that can be refreshed (sources.Refresher)
// reads only the objects its change feed named, patching what the last
// sync read; the others are read whole. Either way, what is wanted is
// exactly what a full sync would want; the baseline tells which part of
// it changed. What the baseline cannot scope (a team
// appearing, going or renamed, a team or user it cannot find, too much at
// once) is a full sync's job: RunScoped then fails with
// ErrFullSyncNeeded before any write. A leaver is deleted by a scoped sync
// only as a full sync would delete them now (users.delete, past any
// delete_grace, whose clock full syncs start) and only when they are in
// no team the scoped sync did not read.

// ErrFullSyncNeeded is wrapped by RunScoped's error when the change cannot
// be scoped; nothing was written.
var ErrFullSyncNeeded = errors.New("a full sync is needed")

// ErrNotFound is what an ObjectReader returns for an id PagerTree does not
// have.
var ErrNotFound = errors.New("not found in PagerTree")

// Bounds of a scoped sync: beyond them, one listing costs fewer requests
// than a read per object.
const (
	maxScopedTeams = 50
	maxScopedUsers = 200
)

// ObjectReader reads single PagerTree objects by id.
type ObjectReader interface {
	GetUser(ctx context.Context, id string) (AccountUser, error)
	GetTeam(ctx context.Context, id string) (AccountTeam, error)
}

// Baseline is what a sync leaves for the next scoped one: the desired
// state it planned for and the account as it read and wrote it. A scoped
// sync takes only ids and emails from it; every object it writes it reads
// afresh.
type Baseline struct {
	Desired Desired
	Current Current
	// Conflicted are the teams (by name) and users (by email) the plan
	// left alone: a person must resolve them, and a full sync sees them.
	Conflicted map[string]bool
	// memos are what the sources that can be refreshed kept of the read,
	// by source name: the next scoped sync reads only what changed.
	memos map[string]sources.Memo
}

// newBaseline is what a run that applied p to cur leaves: cur with the
// users and teams it created and deleted.
func newBaseline(want Desired, cur Current, p Plan, res Result) *Baseline {
	b := &Baseline{Desired: want, Current: Current{AccountID: cur.AccountID}, Conflicted: map[string]bool{}}
	gone := map[string]bool{}
	var users []AccountUser
	var teams []AccountTeam
	for _, r := range res.Changes {
		if r.Outcome != OutcomeApplied {
			continue
		}
		switch {
		case r.Op == OpDelete:
			gone[string(r.Kind)+"/"+r.ID] = true
		case r.Op == OpCreate && r.Kind == KindUser:
			users = append(users, AccountUser{ID: r.ID, Email: r.Name, Name: r.UserName, Phone: r.UserPhone, AccountID: cur.AccountID})
		case r.Op == OpCreate && r.Kind == KindTeam:
			teams = append(teams, AccountTeam{ID: r.ID, Name: r.Name, Description: r.Description, AccountID: cur.AccountID})
		}
	}
	for _, u := range cur.Users {
		if !gone[string(KindUser)+"/"+u.ID] {
			b.Current.Users = append(b.Current.Users, u)
		}
	}
	for _, t := range cur.Teams {
		if !gone[string(KindTeam)+"/"+t.ID] {
			b.Current.Teams = append(b.Current.Teams, t)
		}
	}
	b.Current.Users = append(b.Current.Users, users...)
	b.Current.Teams = append(b.Current.Teams, teams...)
	written(b.Current, res)
	for _, c := range p.Conflicts {
		b.Conflicted[cmp.Or(c.User, c.Team)] = true
	}
	return b
}

// written sets the members and admins of cur's teams to what the applied
// team writes of res made them, so the baseline knows who is where.
func written(cur Current, res Result) {
	ids := map[string]string{}
	for _, u := range cur.Users {
		for _, k := range emailKeys(u) {
			ids[k] = u.ID
		}
	}
	resolve := func(emails, kept []string) []string {
		out := slices.Clone(kept)
		for _, e := range emails {
			if id, ok := ids[EmailKey(e)]; ok {
				out = append(out, id)
			}
		}
		return out
	}
	byID := map[string]*AccountTeam{}
	for i := range cur.Teams {
		byID[cur.Teams[i].ID] = &cur.Teams[i]
	}
	for _, r := range res.Changes {
		t := byID[r.ID]
		if r.Outcome != OutcomeApplied || r.Kind != KindTeam || r.Op == OpDelete || t == nil {
			continue
		}
		if r.MembersSet || r.Op == OpCreate {
			t.MemberIDs = resolve(r.Members, r.KeepIDs)
		}
		if r.AdminsSet {
			t.AdminIDs = resolve(r.Admins, r.KeepAdminIDs)
		}
	}
}

// scope is what a scoped sync plans: teams by marker key (with their
// account ids) and users by email.
type scope struct {
	teams map[string]string
	users map[string]bool
}

// scopeOf compares the wanted state with the baseline's. It fails with
// ErrFullSyncNeeded for what it cannot scope.
func scopeOf(base *Baseline, want Desired) (scope, error) {
	full := func(format string, args ...any) (scope, error) {
		return scope{}, fmt.Errorf("%w: %s", ErrFullSyncNeeded, fmt.Sprintf(format, args...))
	}
	s := scope{teams: map[string]string{}, users: map[string]bool{}}
	if !maps.Equal(base.Desired.Sources, want.Sources) {
		return full("the set of sources changed")
	}
	for key, b := range base.Desired.Teams {
		if _, ok := want.Teams[key]; !ok {
			return full("team %s is no longer wanted", SafeText(b.Name))
		}
	}
	accountTeams := map[string][]AccountTeam{}
	for _, t := range base.Current.Teams {
		if m, ok := ParseMarker(t.Description); ok {
			accountTeams[m.Key()] = append(accountTeams[m.Key()], t)
		}
	}
	for key, w := range want.Teams {
		b, ok := base.Desired.Teams[key]
		switch {
		case !ok:
			return full("team %s is newly wanted", SafeText(w.Name))
		case w.Name != b.Name || w.Rule != b.Rule || w.Adopt != b.Adopt || w.OnMissing != b.OnMissing:
			return full("team %s is renamed or under another rule", SafeText(w.Name))
		case slices.Equal(w.Members, b.Members) && slices.Equal(w.Admins, b.Admins):
			continue
		}
		if base.Conflicted[w.Name] {
			return full("team %s was left alone by the last plan", SafeText(w.Name))
		}
		found := accountTeams[key]
		if len(found) != 1 {
			return full("team %s is on %d PagerTree teams", SafeText(w.Name), len(found))
		}
		s.teams[key] = found[0].ID
		for _, changed := range [][]string{symmetricDiff(w.Members, b.Members), symmetricDiff(w.Admins, b.Admins)} {
			for _, email := range changed {
				s.users[email] = true
			}
		}
	}
	for email, w := range want.Users {
		if b, ok := base.Desired.Users[email]; !ok || b.Name != w.Name || b.Phone != w.Phone {
			s.users[email] = true
		}
	}
	for email := range base.Desired.Users {
		if _, ok := want.Users[email]; !ok {
			s.users[email] = true // no longer wanted
		}
	}
	for email := range base.Desired.Present {
		if !want.Present[email] {
			s.users[email] = true // gone from the directory: a leaver
		}
	}
	for email := range s.users {
		if base.Conflicted[email] {
			return full("user %s was left alone by the last plan", SafeText(email))
		}
	}
	if len(s.teams) > maxScopedTeams || len(s.users) > maxScopedUsers {
		return full("%d teams and %d users changed, more than a scoped sync reads one by one (%d, %d)",
			len(s.teams), len(s.users), maxScopedTeams, maxScopedUsers)
	}
	return s, nil
}

// symmetricDiff is what is in one sorted list and not the other.
func symmetricDiff(a, b []string) []string {
	added, removed := diffSorted(a, b)
	return append(added, removed...)
}

// readScope reads the scope's teams and users from PagerTree, and adds the
// baseline's record of every other member and admin of those teams (for
// their emails only: they are not written).
func readScope(ctx context.Context, r ObjectReader, base *Baseline, s scope, concurrency int) (Current, error) {
	byEmail := map[string]AccountUser{}
	byID := map[string]AccountUser{}
	for _, u := range base.Current.Users {
		byID[u.ID] = u
		for _, k := range emailKeys(u) {
			byEmail[k] = u
		}
	}
	cur := Current{AccountID: base.Current.AccountID}
	var mu gosync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(concurrency, 1))
	for key, id := range s.teams {
		g.Go(func() error {
			t, err := r.GetTeam(gctx, id)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: PagerTree team %s is gone", ErrFullSyncNeeded, SafeText(id))
			}
			if err != nil {
				return fmt.Errorf("read PagerTree team %s: %w", SafeText(id), err)
			}
			if m, ok := ParseMarker(t.Description); !ok || m.Key() != key {
				return fmt.Errorf("%w: PagerTree team %s no longer carries its marker", ErrFullSyncNeeded, SafeText(id))
			}
			mu.Lock()
			defer mu.Unlock()
			cur.Teams = append(cur.Teams, t)
			return nil
		})
	}
	read := map[string]bool{}
	for email := range s.users {
		u, known := byEmail[email]
		if !known || read[u.ID] {
			continue // not in PagerTree when the baseline was made: the plan creates it
		}
		read[u.ID] = true
		g.Go(func() error {
			fresh, err := r.GetUser(gctx, u.ID)
			if errors.Is(err, ErrNotFound) {
				return nil // deleted since: the plan creates it again
			}
			if err != nil {
				return fmt.Errorf("read PagerTree user %s: %w", SafeText(u.ID), err)
			}
			if !slices.Contains(emailKeys(fresh), email) {
				return fmt.Errorf("%w: PagerTree user %s no longer has the email %s", ErrFullSyncNeeded, SafeText(u.ID), SafeText(email))
			}
			mu.Lock()
			defer mu.Unlock()
			cur.Users = append(cur.Users, fresh)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Current{}, err
	}
	for _, t := range cur.Teams {
		for _, id := range slices.Concat(t.MemberIDs, t.AdminIDs) {
			if u, ok := byID[id]; ok && !read[id] {
				read[id] = true
				cur.Users = append(cur.Users, u)
			}
		}
	}
	if _, err := accountOf(cur); err != nil {
		return Current{}, err
	}
	return cur, nil
}

// within is the part of p a scoped sync may apply: the scope's users'
// changes, and updates of its teams. The rest was planned only because
// the account was read in part. A user's delete is left to a full sync
// when the baseline has them in a team the scope did not read: deleting
// them takes them out of it, which this plan did not weigh (a v4 team
// left without its last member or admin is refused).
func within(p Plan, s scope, teamIDs map[string]bool, base Current) Plan {
	elsewhere := map[string]bool{}
	for _, t := range base.Teams {
		if !teamIDs[t.ID] {
			for _, id := range slices.Concat(t.MemberIDs, t.AdminIDs) {
				elsewhere[id] = true
			}
		}
	}
	keep := func(c Change) bool {
		switch {
		case c.Kind == KindUser:
			return s.users[EmailKey(c.Name)] && (c.Op != OpDelete || !elsewhere[c.ID])
		default:
			return c.Op == OpUpdate && teamIDs[c.ID]
		}
	}
	out := p
	out.Changes = slices.DeleteFunc(slices.Clone(p.Changes), func(c Change) bool { return !keep(c) })
	out.Withheld = slices.DeleteFunc(slices.Clone(p.Withheld), func(c Change) bool { return !keep(c) })
	out.Conflicts = slices.DeleteFunc(slices.Clone(p.Conflicts), func(c Conflict) bool {
		return !s.users[c.User] && !slices.ContainsFunc(out.Changes, func(ch Change) bool { return ch.Kind == KindTeam && ch.Name == c.Team })
	})
	out.PendingDeletes = slices.DeleteFunc(slices.Clone(p.PendingDeletes), func(d PendingDelete) bool { return !s.users[d.Email] })
	out.Summary = summarize(out.Changes)
	return out
}

// RunScoped runs a sync scoped to what changed in the directory since base
// (see the comment at the top of this file): changes are what each
// source's feed reported since, by source name. It fails with
// ErrFullSyncNeeded, before any write, when the change cannot be scoped or
// PagerTree cannot be read by object. On success it returns the baseline
// for the next one; nil when a change failed (the next sync should then
// be a full one).
func (e *Engine) RunScoped(ctx context.Context, base *Baseline, changes map[string][]sources.Change, opts RunOptions) (Report, *Baseline, error) {
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	log := e.logger().With(zap.String("run_id", opts.RunID))
	rep := e.newReport(opts)
	log.Info("scoped sync run started", zap.Int("sources", len(e.Sources)))
	reader, ok := e.PagerTree.(ObjectReader)
	if !ok {
		return rep, nil, fmt.Errorf("%w: this PagerTree client reads no single objects", ErrFullSyncNeeded)
	}
	prep := &Prepared{RunID: opts.RunID, Policy: e.Policy}
	gate, err := e.recall(prep, opts)
	if err != nil {
		rep, err = e.finish(log, rep, nil, err)
		return rep, nil, err
	}
	start := time.Now()
	kept := &memos{}
	snaps, err := e.fetch(ctx, log, gate, kept.refresh(base.memos, changes, log))
	rep.Sources, rep.Timings.Fetch = sourceReports(snaps), time.Since(start)
	if err != nil {
		rep, err = e.finish(log, rep, nil, err)
		return rep, nil, err
	}
	want, err := BuildDesired(snaps, prep.Policy)
	if err != nil {
		rep, err = e.finish(log, rep, nil, fmt.Errorf("desired state: %w", err))
		return rep, nil, err
	}
	s, err := scopeOf(base, want)
	if err != nil {
		return rep, nil, err // not a run: the full sync that follows is
	}

	start = time.Now()
	cur, err := readScope(ctx, reader, base, s, e.Concurrency)
	rep.Timings.Read = time.Since(start)
	if errors.Is(err, ErrFullSyncNeeded) {
		return rep, nil, err
	}
	if err != nil {
		rep, err = e.finish(log, rep, nil, err)
		return rep, nil, err
	}
	start = time.Now()
	teamIDs := map[string]bool{}
	for _, id := range s.teams {
		teamIDs[id] = true
	}
	// The wanted state of what was read: the scope's teams, and its users
	// and the teams' members (unchanged ones plan nothing).
	partial := want
	partial.Teams, partial.Users = map[string]WantedTeam{}, map[string]WantedUser{}
	for key := range s.teams {
		partial.Teams[key] = want.Teams[key]
	}
	for _, u := range cur.Users {
		for _, k := range emailKeys(u) {
			if w, ok := want.Users[k]; ok {
				partial.Users[k] = w
			}
		}
	}
	for email := range s.users {
		if w, ok := want.Users[email]; ok {
			partial.Users[email] = w
		}
	}
	p := PlanWith(cur, partial, prep.Policy, prep.Remembered)
	// Whoever the scope's teams lose is in scope too: a person a withheld
	// change kept in a team, whose delete waits for that team.
	for _, c := range slices.Concat(p.Changes, p.Withheld) {
		if c.Kind == KindTeam && teamIDs[c.ID] {
			for _, email := range slices.Concat(c.MembersRemoved, c.AdminsRemoved) {
				s.users[EmailKey(email)] = true
			}
		}
	}
	rep.Plan = within(p, s, teamIDs, base.Current)
	rep.Plan.Skipped = SkippedBySource(snaps)
	rep.Timings.Plan = time.Since(start)
	log.Info("scoped plan made", zap.Int("teams_read", len(cur.Teams)), zap.Int("users_known", len(cur.Users)),
		zap.Int("create", rep.Plan.Summary.Create), zap.Int("update", rep.Plan.Summary.Update),
		zap.Int("withheld", len(rep.Plan.Withheld)), zap.Duration("duration", rep.Timings.Plan))

	start = time.Now()
	rep.Result = Apply(ctx, e.PagerTree, cur, rep.Plan, e.applyOptions(opts.DryRun, log, nil))
	rep.Timings.Apply = time.Since(start)
	rep, err = e.finish(log, rep, nil, nil)
	if err != nil || runResult(rep, nil) == RunFailure || opts.DryRun {
		return rep, nil, err
	}
	next := newBaseline(want, mergeByID(base.Current, cur), rep.Plan, rep.Result)
	maps.Copy(next.Conflicted, base.Conflicted)
	next.memos = kept.done()
	return rep, next, nil
}

// mergeByID is base with the objects of fresh put in place of the ones of
// the same id.
func mergeByID(base, fresh Current) Current {
	users := map[string]AccountUser{}
	for _, u := range fresh.Users {
		users[u.ID] = u
	}
	teams := map[string]AccountTeam{}
	for _, t := range fresh.Teams {
		teams[t.ID] = t
	}
	out := Current{AccountID: base.AccountID}
	for _, u := range base.Users {
		if f, ok := users[u.ID]; ok {
			u = f
		}
		out.Users = append(out.Users, u)
	}
	for _, t := range base.Teams {
		if f, ok := teams[t.ID]; ok {
			t = f
		}
		out.Teams = append(out.Teams, t)
	}
	return out
}
