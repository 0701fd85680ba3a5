package sync

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// ErrPlanRefused is returned when a saved plan holds a change a fresh plan
// does not make (ApplyPlan) or was made elsewhere (CheckOrigin); nothing is
// written.
var ErrPlanRefused = errors.New("saved plan refused; nothing was written")

// Refusal is one saved change ApplyPlan will not apply, and why.
type Refusal struct {
	Change Change
	Why    string
	// Partial marks a team that applying only the saved part of a fresh
	// plan would empty; the others are changes no fresh plan makes.
	Partial bool
}

// RefusedError lists every saved change that refused the plan.
type RefusedError struct {
	Refusals []Refusal
}

// String is the refused change, as a plan line starts, and why.
func (r Refusal) String() string {
	return fmt.Sprintf("%s %s %s: %s", symbol(r.Change.Op), SafeText(string(r.Change.Kind)), SafeText(r.Change.Name), r.Why)
}

// Error is one line: each refusal, then what it means and what to do.
func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Refusals))
	notFresh := false
	for i, r := range e.Refusals {
		parts[i] = r.String()
		notFresh = notFresh || !r.Partial
	}
	hint := ""
	if notFresh {
		hint = "; a saved change must be one a fresh plan makes: PagerTree or the directory changed since, or the file was edited"
	}
	return fmt.Sprintf("%v: %s%s; make a new plan with ptsync plan --out", ErrPlanRefused, strings.Join(parts, "; "), hint)
}

func (e *RefusedError) Unwrap() error { return ErrPlanRefused }

// CheckOrigin refuses a saved plan made for another PagerTree URL or with
// another configuration than here. AllowDestructive is
// not compared: ApplyPlan plans afresh with the saved plan's.
func CheckOrigin(saved, here PlanOrigin) error {
	switch {
	case saved.PagerTreeURL == "" || saved.ConfigHash == "":
		return fmt.Errorf("%w: it does not say which PagerTree and configuration it was made for; make a new plan with ptsync plan --out", ErrPlanRefused)
	case strings.TrimRight(saved.PagerTreeURL, "/") != strings.TrimRight(here.PagerTreeURL, "/"):
		return fmt.Errorf("%w: it was made for PagerTree %s, and this configuration's pagertree.url is %s; apply it with the configuration it was made with, or make a new plan",
			ErrPlanRefused, SafeText(saved.PagerTreeURL), SafeText(here.PagerTreeURL))
	case saved.ConfigHash != here.ConfigHash:
		return fmt.Errorf("%w: it was made with another configuration (%s, this one is %s); apply it with the configuration it was made with, or make a new plan",
			ErrPlanRefused, shortHash(saved.ConfigHash), shortHash(here.ConfigHash))
	}
	return nil
}

// VerifySaved checks a saved plan against fresh, a plan made now from the
// sources and PagerTree (cur) with the same configuration and the saved
// plan's --allow-destructive. The saved plan may be a subset of fresh's
// changes, never more: every saved change must equal one fresh change,
// field for field, so a reviewed plan can only ever do part of what ptsync
// would do anyway. A part must also not leave a team that has members with
// none (unless --allow-destructive), as dropping a team's membership write
// while keeping a user delete could. On any of that it refuses the whole
// plan with a *RefusedError naming each offending change.
//
// It returns the plan to apply: the saved changes as fresh has them, and
// fresh's withheld changes and conflicts (the saved plan's withheld ones
// are never applied).
func VerifySaved(saved, fresh Plan, cur Current) (Plan, error) {
	have := slices.Clone(saved.Changes)
	normalizeChanges(have)
	// Fresh changes by what names them, so each saved change is compared
	// field for field with the few of the same op, kind, name and id, not
	// with the whole plan: a plan of 20,000 creates stays linear.
	type changeKey struct {
		op       Op
		kind     Kind
		name, id string
	}
	byKey := map[changeKey][]int{}
	for i, f := range fresh.Changes {
		k := changeKey{f.Op, f.Kind, f.Name, f.ID}
		byKey[k] = append(byKey[k], i)
	}
	used := make([]bool, len(fresh.Changes))
	var refused []Refusal
	var picked []Change
	for _, s := range have {
		equal, unused := -1, -1
		for _, i := range byKey[changeKey{s.Op, s.Kind, s.Name, s.ID}] {
			if reflect.DeepEqual(s, fresh.Changes[i]) {
				equal = i
				if !used[i] {
					unused = i
					break
				}
			}
		}
		switch {
		case unused >= 0:
			used[unused] = true
			picked = append(picked, fresh.Changes[unused])
		case equal >= 0:
			refused = append(refused, Refusal{Change: s, Why: "listed twice"})
		default:
			refused = append(refused, Refusal{Change: s, Why: whyNotFresh(s, fresh)})
		}
	}
	// A part may not empty a team the whole would not (--allow-destructive
	// lifts that), nor leave a team PagerTree refuses, whatever the flags:
	// without a member or an admin where teams need both (v4).
	if len(refused) == 0 && (!saved.Origin.AllowDestructive || fresh.teamRoles) {
		roles := []teamRole{membersRole}
		if fresh.teamRoles {
			roles = append(roles, adminsRole)
		}
		for _, role := range roles {
			for _, t := range emptiedTeams(cur, picked, role) {
				refused = append(refused, Refusal{Change: Change{Op: OpUpdate, Kind: KindTeam, Name: t.Name, ID: t.ID}, Partial: true,
					Why: fmt.Sprintf("applying only part of a fresh plan would leave it with no %s (keep its %s, or drop the user deletes that empty it)", role.name, role.change)})
			}
		}
	}
	if len(refused) > 0 {
		return Plan{}, &RefusedError{Refusals: refused}
	}
	sortChanges(picked)
	return Plan{
		Changes: picked, Withheld: fresh.Withheld, Conflicts: fresh.Conflicts, Fingerprint: fresh.Fingerprint,
		Summary: summarize(picked), Base: fresh.Base, Destructive: fresh.Destructive, Origin: saved.Origin, Skipped: fresh.Skipped,
		Invited: fresh.Invited, UnusablePhones: fresh.UnusablePhones, teamRoles: fresh.teamRoles,
		PendingDeletes: fresh.PendingDeletes,
	}, nil
}

// whyNotFresh says how a saved change that no fresh change equals falls
// short: withheld now, differing in some fields, or absent altogether.
func whyNotFresh(s Change, fresh Plan) string {
	bare := s // moved from the withheld list, with its reason or not
	bare.WithheldReason = ""
	for _, w := range fresh.Withheld {
		held := w
		held.WithheldReason = ""
		if reflect.DeepEqual(bare, held) {
			return "withheld by the safety limits in a fresh plan: " + w.WithheldReason
		}
	}
	same := func(f Change) bool {
		return f.Kind == s.Kind && (f.ID != "" && f.ID == s.ID || f.Op == s.Op && f.Name == s.Name)
	}
	if i := slices.IndexFunc(fresh.Changes, same); i >= 0 {
		return "differs from a fresh plan's in " + strings.Join(changedFields(s, fresh.Changes[i]), ", ")
	}
	return "not in a fresh plan"
}

// changedFields names, by their JSON keys, the fields in which a and b
// differ.
func changedFields(a, b Change) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var names []string
	for i := range va.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(va.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	return names
}

// teamRole is one list of account users a team holds: its members, or
// (v4) its admins.
type teamRole struct {
	name    string                                  // "members", "admins"
	change  string                                  // what writes it: "membership change"
	current func(AccountTeam) []string              // the ids the team holds
	written func(Change) (bool, []string, []string) // set?, emails, kept ids
}

var (
	membersRole = teamRole{"members", "membership change", func(t AccountTeam) []string { return t.MemberIDs },
		func(c Change) (bool, []string, []string) { return c.MembersSet, c.Members, c.KeepIDs }}
	adminsRole = teamRole{"admins", "admin change", func(t AccountTeam) []string { return t.AdminIDs },
		func(c Change) (bool, []string, []string) { return c.AdminsSet, c.Admins, c.KeepAdminIDs }}
)

// emptiedTeams are the teams of cur that hold someone in role and that
// changes, all applied, would leave with no one there: PagerTree takes a
// deleted user out of every team, and a write of the role replaces its
// ids with its own (resolved as Apply resolves them, users created by
// changes included, then the ids it keeps).
func emptiedTeams(cur Current, changes []Change, role teamRole) []AccountTeam {
	ids := userIDsByEmail(cur.Users)
	listed := map[string]bool{}
	for _, u := range cur.Users {
		listed[u.ID] = true
	}
	created := map[string]bool{}
	deletedUsers := map[string]bool{}
	deletedTeams := map[string]bool{}
	written := map[string]Change{}
	for _, c := range changes {
		switch set, _, _ := role.written(c); {
		case c.Kind == KindUser && c.Op == OpCreate:
			if _, ok := ids[EmailKey(c.Name)]; !ok {
				ids[EmailKey(c.Name)] = "new user " + EmailKey(c.Name)
				created[ids[EmailKey(c.Name)]] = true
			}
		case c.Kind == KindUser && c.Op == OpDelete:
			deletedUsers[c.ID] = true
		case c.Kind == KindTeam && c.Op == OpDelete:
			deletedTeams[c.ID] = true
		case c.Kind == KindTeam && c.Op == OpUpdate && set:
			written[c.ID] = c
		}
	}
	var emptied []AccountTeam
	for _, t := range cur.Teams {
		held := role.current(t)
		if deletedTeams[t.ID] || !slices.ContainsFunc(held, func(id string) bool { return listed[id] }) {
			continue
		}
		if c, ok := written[t.ID]; ok {
			_, emails, kept := role.written(c)
			var resolved []string
			for _, e := range emails {
				if id, ok := ids[EmailKey(e)]; ok {
					resolved = append(resolved, id)
				}
			}
			// Apply writes nothing when no member resolves (see write).
			if len(resolved) > 0 || len(emails) == 0 {
				held = append(resolved, kept...)
			}
		}
		if !slices.ContainsFunc(held, func(id string) bool { return created[id] || listed[id] && !deletedUsers[id] }) {
			emptied = append(emptied, t)
		}
	}
	return emptied
}
