package sync

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Plan is everything one run would write, in the order Apply runs it.
type Plan struct {
	// Changes are applied, in order (see Phase).
	Changes []Change
	// Withheld are destructive changes the safety limits hold back; each
	// carries WithheldReason. --allow-destructive applies them.
	Withheld []Change
	// Conflicts are wanted teams the plan leaves alone.
	Conflicts []Conflict
	// Fingerprint identifies the PagerTree state the plan was made from;
	// a saved plan is applied only while it still matches.
	Fingerprint string
	// Summary counts Changes by op.
	Summary Summary
	// Base is the safety base: users ptsync may manage plus members of
	// managed teams, as PagerTree held them before the run.
	Base int
	// Destructive is what the plan would destroy before withholding: user
	// deletes, team deletes and member removals, one each.
	Destructive int
	// Origin is where the plan was made (see PlanOrigin); a saved plan is
	// applied only there.
	Origin PlanOrigin
	// Skipped counts, per source, the entries it left out, by reason
	// (SkippedBySource).
	Skipped map[string]map[string]int
	// Invited are the wanted users PagerTree holds as invited: they have
	// not yet accepted the invitation a create sent (v4).
	Invited []string
	// UnusablePhones are directory phones left out because they are not
	// in E.164, which the account requires (Desired.UnusablePhones).
	UnusablePhones []string
	// PendingDeletes are leavers users.delete_grace keeps for now, by
	// email: not changes, and never applied from a saved plan.
	PendingDeletes []PendingDelete
	// teamRoles is the policy's TeamRoles the plan was made under; a
	// saved plan is checked against a fresh one's (VerifySaved).
	teamRoles bool
}

// Summary counts a plan's changes by op.
type Summary struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

// InSync reports whether the plan writes nothing and holds nothing back.
func (p Plan) InSync() bool { return len(p.Changes) == 0 && len(p.Withheld) == 0 }

// Phase is the step of a run a change belongs to. Apply runs phases in
// order, each finishing before the next starts; changes inside one phase
// are independent of each other.
type Phase int

// Phases, in the order SPEC.md gives.
const (
	PhaseCreateUsers Phase = iota + 1
	PhaseUpdateUsers
	PhaseTeams // create, rename, adopt (a rename carries its membership in the same write)
	PhaseMemberships
	PhaseDeleteTeams
	PhaseDeleteUsers
)

// Phase is the step c belongs to.
func (c Change) Phase() Phase {
	switch {
	case c.Kind == KindUser && c.Op == OpCreate:
		return PhaseCreateUsers
	case c.Kind == KindUser && c.Op == OpUpdate:
		return PhaseUpdateUsers
	case c.Kind == KindUser:
		return PhaseDeleteUsers
	case c.Op == OpDelete:
		return PhaseDeleteTeams
	case c.Op == OpCreate || c.Description != "" || c.Renames():
		return PhaseTeams
	default:
		return PhaseMemberships
	}
}

// Renames reports whether a team update changes the team's name.
func (c Change) Renames() bool {
	_, ok := c.Field("name")
	return ok
}

// Field is the change of one owned field, if c changes it.
func (c Change) Field(name string) (FieldChange, bool) {
	for _, f := range c.Fields {
		if f.Field == name {
			return f, true
		}
	}
	return FieldChange{}, false
}

// NewUser is the create body of a user create change.
func (c Change) NewUser() NewUser {
	return NewUser{Email: c.Name, Name: c.UserName, Phone: c.UserPhone}
}

// UserPatch is the update body of a user update change: only the fields
// that differ are sent.
func (c Change) UserPatch() UserPatch {
	var p UserPatch
	if f, ok := c.Field("name"); ok {
		p.Name = &f.New
	}
	if f, ok := c.Field("phone"); ok {
		p.Phone = &f.New
	}
	return p
}

// NewTeam is the create body of a team create change; memberIDs and
// adminIDs are c.Members and c.Admins resolved to PagerTree ids.
func (c Change) NewTeam(memberIDs, adminIDs []string) NewTeam {
	t := NewTeam{Name: c.Name, Description: c.Description, MemberIDs: memberIDs}
	if c.AdminsSet {
		t.AdminIDs = adminIDs
	}
	return t
}

// TeamPatch is the update body of a team update change: the name only on a
// rename, the description only when the marker is written, the members only
// when they change (memberIDs are c.Members resolved to PagerTree ids,
// followed by c.KeepIDs), the admins likewise.
func (c Change) TeamPatch(memberIDs, adminIDs []string) TeamPatch {
	var p TeamPatch
	if c.Renames() {
		name := c.Name
		p.Name = &name
	}
	if c.Description != "" {
		d := c.Description
		p.Description = &d
	}
	if c.MembersSet {
		ids := withKept(memberIDs, c.KeepIDs)
		p.MemberIDs = &ids
	}
	if c.AdminsSet {
		ids := withKept(adminIDs, c.KeepAdminIDs)
		p.AdminIDs = &ids
	}
	return p
}

// withKept is ids followed by the kept ids not among them.
func withKept(ids, kept []string) []string {
	out := make([]string, 0, len(ids)+len(kept))
	out = append(out, ids...)
	for _, id := range kept {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// planner holds the indexes MakePlan builds over the current state.
type planner struct {
	cur     Current
	want    Desired
	pol     Policy
	mem     Remembered
	byEmail map[string]AccountUser // first user (by id) per email key
	byID    map[string]AccountUser
	// twins maps an email key more than one user has to their ids, sorted.
	// Which of them the directory means is for a person to say: the plan
	// leaves them, and every team they are in or wanted in, alone.
	twins map[string][]string
	// twinWhy says, per email of twins, why it is left alone.
	twinWhy map[string]string
	// twinTeams are the ids of current teams left alone for a twin; their
	// members are not deleted either, as that would change the team.
	twinTeams map[string]bool
	plan      Plan
	// managedTeams are teams whose members count in the safety base.
	managedTeams map[string]AccountTeam
}

// MakePlan diffs the current PagerTree state against the wanted one and
// applies the safety rules, as a run without state does (PlanWith with
// nothing remembered). It is pure: no I/O, and the same inputs always give
// the same plan.
func MakePlan(cur Current, want Desired, pol Policy) Plan {
	return PlanWith(cur, want, pol, Remembered{})
}

// PlanWith is MakePlan with what earlier runs left in the state database:
// when each leaver went missing (users.delete_grace counts from then up to
// mem.Now) and which teams ptsync created or adopted (a team carrying the
// marker that is not among them is not ptsync's). It is pure too.
func PlanWith(cur Current, want Desired, pol Policy, mem Remembered) Plan {
	pl := &planner{
		cur: cur, want: want, pol: pol, mem: mem,
		byEmail:      make(map[string]AccountUser, len(cur.Users)),
		byID:         make(map[string]AccountUser, len(cur.Users)),
		twins:        map[string][]string{},
		twinWhy:      map[string]string{},
		twinTeams:    map[string]bool{},
		managedTeams: map[string]AccountTeam{},
	}
	users := slices.Clone(cur.Users)
	slices.SortFunc(users, func(a, b AccountUser) int { return cmp.Compare(a.ID, b.ID) })
	for _, u := range users {
		pl.byID[u.ID] = u
		for _, k := range emailKeys(u) {
			first, dup := pl.byEmail[k]
			switch {
			case !dup:
				pl.byEmail[k] = u
			case len(pl.twins[k]) == 0:
				pl.twins[k] = []string{first.ID, u.ID}
			default:
				pl.twins[k] = append(pl.twins[k], u.ID)
			}
		}
		if u.Invited {
			if k := pl.keyOf(u); pl.want.Users[k].Email != "" {
				pl.plan.Invited = append(pl.plan.Invited, k)
			}
		}
	}
	slices.Sort(pl.plan.Invited)
	for email, ids := range pl.twins {
		pl.twinWhy[email] = fmt.Sprintf("users %s have the email %s", strings.Join(ids, ", "), email)
		pl.plan.Conflicts = append(pl.plan.Conflicts, Conflict{User: email, Reason: fmt.Sprintf(
			"PagerTree users %s have this email (up to case and spaces); ptsync cannot tell which one is meant, so none is updated or deleted: delete or correct all but one",
			strings.Join(ids, ", "))})
	}
	pl.findMerged(users)
	pl.plan.UnusablePhones, pl.plan.teamRoles = want.UnusablePhones, pol.TeamRoles
	pl.planUsers()
	pl.planTeams()
	pl.planUserDeletes(users)

	pl.plan.Fingerprint = Fingerprint(cur)
	pl.plan.Base = pl.base(users)
	sortChanges(pl.plan.Changes)
	slices.SortFunc(pl.plan.Conflicts, func(a, b Conflict) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Team, b.Team), cmp.Compare(a.Reason, b.Reason))
	})
	pl.applySafety()
	pl.plan.Summary = summarize(pl.plan.Changes)
	normalizeChanges(pl.plan.Changes)
	normalizeChanges(pl.plan.Withheld)
	return pl.plan
}

// findMerged treats like twins the emails of a PagerTree user who has
// several addresses the directory holds as different people: which person
// the user is is for a person to say, so neither is written through it,
// and its teams are left alone.
func (pl *planner) findMerged(users []AccountUser) {
	for _, u := range users {
		if len(u.Emails) == 0 {
			continue
		}
		var wanted []string
		for _, k := range emailKeys(u) {
			if _, ok := pl.want.Users[k]; ok && pl.twins[k] == nil {
				wanted = append(wanted, k)
			}
		}
		if len(wanted) < 2 {
			continue
		}
		for _, k := range wanted {
			pl.twins[k] = []string{u.ID}
			pl.twinWhy[k] = fmt.Sprintf("user %s has the emails %s, which the directory holds as different people", u.ID, strings.Join(wanted, " and "))
		}
		pl.plan.Conflicts = append(pl.plan.Conflicts, Conflict{User: wanted[0], Reason: fmt.Sprintf(
			"PagerTree user %s has the emails %s, which the directory holds as different people; ptsync cannot tell which one the user is, so it is neither updated nor deleted: remove all but one of the addresses from the user, or make them one person in the directory",
			u.ID, strings.Join(wanted, ", "))})
	}
}

// emailKeys are the distinct email keys of u: its primary address and any
// other it has (v4), so a directory email matches the user on any of them.
func emailKeys(u AccountUser) []string {
	keys := make([]string, 0, 1+len(u.Emails))
	for _, e := range append([]string{u.Email}, u.Emails...) {
		if k := EmailKey(e); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// keyOf is the email key that stands for u in team diffs: of its
// addresses, the first the directory wants, else its primary one.
func (pl *planner) keyOf(u AccountUser) string {
	if len(u.Emails) > 0 {
		for _, k := range emailKeys(u) {
			if _, ok := pl.want.Users[k]; ok {
				return k
			}
		}
	}
	return EmailKey(u.Email)
}

// protected reports whether email matches a users.protect glob. Globs and
// emails are compared lower-cased.
func protected(email string, globs []string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(strings.ToLower(strings.TrimSpace(g)), email); ok {
			return true
		}
	}
	return false
}

// manageable reports whether ptsync may change or delete u: account admins
// and protected users are never written.
func (pl *planner) manageable(u AccountUser) bool {
	return !u.Admin && !slices.ContainsFunc(emailKeys(u), func(k string) bool { return protected(k, pl.pol.Protect) })
}

func (pl *planner) add(c Change) { pl.plan.Changes = append(pl.plan.Changes, c) }

func (pl *planner) conflict(team, format string, args ...any) {
	pl.plan.Conflicts = append(pl.plan.Conflicts, Conflict{Team: team, Reason: fmt.Sprintf(format, args...)})
}

// planUsers creates missing wanted users and updates the owned fields that
// differ. An empty directory value never clears PagerTree's: a directory
// without phones must not wipe numbers people entered themselves.
func (pl *planner) planUsers() {
	for _, email := range sortedKeys(pl.want.Users) {
		w := pl.want.Users[email]
		u, ok := pl.byEmail[email]
		if !ok {
			name := w.Name
			if name == "" {
				name, _, _ = strings.Cut(email, "@") // PagerTree requires a name
			}
			pl.add(Change{Op: OpCreate, Kind: KindUser, Name: email, UserName: name, UserPhone: w.Phone,
				Reason: "wanted from " + originList(w.Sources)})
			continue
		}
		if pl.twins[email] != nil || !pl.manageable(u) {
			continue
		}
		c := Change{Op: OpUpdate, Kind: KindUser, Name: email, ID: u.ID}
		if w.Name != "" && w.Name != u.Name {
			c.Fields = append(c.Fields, FieldChange{Field: "name", Old: u.Name, New: w.Name})
			c.UserName = w.Name
		}
		if w.Phone != "" && !samePhone(u.Phone, w.Phone, pl.pol.PhoneRegion) {
			c.Fields = append(c.Fields, FieldChange{Field: "phone", Old: u.Phone, New: w.Phone})
			c.UserPhone = w.Phone
		}
		if len(c.Fields) > 0 {
			c.Reason = "directory differs (" + originList(w.Sources) + ")"
			pl.add(c)
		}
	}
}

// planUserDeletes deletes manageable users absent from every source, when
// users.delete allows it, except a user who shares their email (see twins)
// or is in a team left alone for such a user.
func (pl *planner) planUserDeletes(users []AccountUser) {
	if !pl.pol.DeleteUsers {
		return
	}
	inTwinTeam := map[string]bool{}
	for _, t := range pl.cur.Teams {
		if pl.twinTeams[t.ID] {
			for _, id := range t.MemberIDs {
				inTwinTeam[id] = true
			}
		}
	}
	// A configured admin is wanted in PagerTree though no source has them.
	admins := map[string]bool{}
	for _, t := range pl.want.Teams {
		for _, e := range t.Admins {
			admins[e] = true
		}
	}
	for _, u := range users {
		email := EmailKey(u.Email)
		keys := emailKeys(u)
		if email == "" || slices.ContainsFunc(keys, func(k string) bool { return pl.want.Present[k] || admins[k] || pl.twins[k] != nil }) ||
			!pl.manageable(u) || inTwinTeam[u.ID] {
			continue
		}
		reason := "absent from every source"
		if grace := pl.pol.DeleteGrace; grace > 0 {
			since, ok := pl.mem.MissingSince[email]
			if !ok {
				since = pl.mem.Now
			}
			if after := since.Add(grace); pl.mem.Now.Before(after) {
				pl.plan.PendingDeletes = append(pl.plan.PendingDeletes, PendingDelete{Email: email, ID: u.ID, Since: since, After: after})
				continue
			}
			reason = fmt.Sprintf("absent from every source since %s, longer than users.delete_grace (%s)", stamp(since), shortGrace(grace))
		}
		pl.add(Change{Op: OpDelete, Kind: KindUser, Name: email, ID: u.ID, Destructive: 1, Reason: reason})
	}
	slices.SortFunc(pl.plan.PendingDeletes, func(a, b PendingDelete) int { return cmp.Or(cmp.Compare(a.Email, b.Email), cmp.Compare(a.ID, b.ID)) })
}

// leavers are the email keys of every leaver the plan found, pending or
// deleted (a delete withheld included): what a healthy run records as
// missing (Memory.UpdateMissing).
func (p Plan) leavers() []string {
	var out []string
	for _, d := range p.PendingDeletes {
		out = append(out, d.Email)
	}
	for _, cs := range [][]Change{p.Changes, p.Withheld} {
		for _, c := range cs {
			if c.Kind == KindUser && c.Op == OpDelete {
				out = append(out, c.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// stamp writes a time as plans and reports do: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// shortGrace writes a duration as a config would: 72h, 90m, not 72h0m0s.
func shortGrace(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		if strings.HasSuffix(s, "m"+zero) || strings.HasSuffix(s, "h"+zero) {
			s = strings.TrimSuffix(s, zero)
		}
	}
	return s
}

// teamRef is a current team with its parsed marker.
type teamRef struct {
	AccountTeam
	marker Marker
	// marked says the team is ptsync's: it carries the marker and, where
	// the state records ptsync's teams, is one of them.
	marked bool
	// unrecorded says the team carries the marker but the state has no
	// record of ptsync creating or adopting it: anyone who can edit a
	// description can type a marker, so it is treated as a team ptsync
	// does not manage (adopt: true may take it over) and reported.
	unrecorded bool
}

// planTeams matches wanted teams to PagerTree teams (marker first, then
// name), creates, renames, adopts and sets memberships, and applies
// on_missing to managed teams whose group is gone.
func (pl *planner) planTeams() {
	teams := make([]teamRef, 0, len(pl.cur.Teams))
	for _, t := range pl.cur.Teams {
		m, ok := ParseMarker(t.Description)
		unrecorded := ok && pl.mem.Owned != nil && !pl.mem.Owned[t.ID]
		teams = append(teams, teamRef{AccountTeam: t, marker: m, marked: ok && !unrecorded, unrecorded: unrecorded})
	}
	slices.SortFunc(teams, func(a, b teamRef) int { return cmp.Compare(a.ID, b.ID) })
	byKey := map[string][]teamRef{}
	byName := map[string][]teamRef{}
	for _, t := range teams {
		if t.marked {
			byKey[t.marker.Key()] = append(byKey[t.marker.Key()], t)
			if pl.want.Sources[t.marker.Source] {
				pl.managedTeams[t.ID] = t.AccountTeam
			}
		}
		byName[t.Name] = append(byName[t.Name], t)
	}
	// claimed: teams whose own marker names a wanted team; nobody else may
	// take them by name.
	claimed := map[string]bool{}
	for key := range pl.want.Teams {
		for _, t := range byKey[key] {
			claimed[t.ID] = true
		}
	}
	handled := map[string]bool{}
	reported := map[string]bool{} // unrecorded teams a conflict names already

	wanted := make([]WantedTeam, 0, len(pl.want.Teams))
	for _, w := range pl.want.Teams {
		wanted = append(wanted, w)
	}
	slices.SortFunc(wanted, func(a, b WantedTeam) int { return cmp.Compare(a.Name, b.Name) })
	for _, w := range wanted {
		w.Admins = pl.canonical(w.Admins)
		switch own := byKey[w.Key]; {
		case len(own) > 1:
			pl.conflict(w.Name, "%d teams (%s) carry the ptsync marker of group %q of source %q; remove it from all but one",
				len(own), teamIDs(own), w.GroupName, w.Source)
			for _, t := range own {
				handled[t.ID] = true
			}
			continue
		case len(own) == 1:
			handled[own[0].ID] = true
			pl.updateTeam(own[0], w, "", byName)
			continue
		}
		var others []teamRef
		for _, t := range byName[w.Name] {
			if !claimed[t.ID] && !handled[t.ID] {
				others = append(others, t)
			}
		}
		switch {
		case len(others) == 0:
			pl.createTeam(w)
		case len(others) > 1:
			// Leave them all as they are, on_missing included: which one
			// is meant is for a person to say.
			pl.conflict(w.Name, "%d teams are named %q (%s); rename or delete all but one", len(others), w.Name, teamIDs(others))
			for _, t := range others {
				handled[t.ID] = true
			}
		case others[0].unrecorded && !w.Adopt:
			reported[others[0].ID] = true
			pl.conflict(w.Name, "%s; set adopt: true on teams[%d] to take it over if it is ptsync's, or remove the marker from its description",
				unrecordedWhy(others[0]), w.Rule)
		case !others[0].marked && !w.Adopt:
			pl.conflict(w.Name, "team %q exists and is not managed by ptsync; set adopt: true on teams[%d] to take it over", w.Name, w.Rule)
		case !others[0].marked:
			handled[others[0].ID] = true
			how := fmt.Sprintf("adopted by teams[%d] (adopt: true)", w.Rule)
			if others[0].unrecorded {
				how += "; its ptsync marker was not ptsync's own"
			}
			if pl.updateTeam(others[0], w, how, byName) {
				pl.managedTeams[others[0].ID] = others[0].AccountTeam
			}
		case !pl.want.Sources[others[0].marker.Source]:
			pl.conflict(w.Name, "team %q is managed by ptsync for source %q, which this configuration does not sync; remove its marker to let this rule adopt it",
				w.Name, others[0].marker.Source)
		default:
			// Ours, but its group is gone: the group was recreated under a
			// new id. Take the team over rather than delete and create it.
			handled[others[0].ID] = true
			pl.updateTeam(others[0], w, fmt.Sprintf("its group (id %q) is gone; taken over by group %q of source %q", others[0].marker.GroupID, w.GroupName, w.Source), byName)
		}
	}

	for _, t := range teams {
		if t.unrecorded && !handled[t.ID] && !reported[t.ID] && pl.want.Sources[t.marker.Source] {
			pl.conflict(t.Name, "%s, so it is left alone (on_missing does not apply to it); remove the marker from its description, or, if it is ptsync's, set adopt: true on the rule of its name to take it over",
				unrecordedWhy(t))
		}
		if !t.marked || handled[t.ID] || claimed[t.ID] || !pl.want.Sources[t.marker.Source] {
			continue
		}
		pl.planMissing(t)
	}
}

// unrecordedWhy says why an unrecorded team is not ptsync's.
func unrecordedWhy(t teamRef) string {
	return fmt.Sprintf("team %s carries ptsync's marker (source %q, group %q), but the state database (state.dir) has no record of ptsync creating or adopting it: anyone who can edit a description can type a marker, so ptsync does not take it as its own",
		t.ID, t.marker.Source, t.marker.GroupID)
}

// canonical maps admin emails to the key that stands for their PagerTree
// user in team diffs (keyOf), so an admin named by another of the user's
// addresses is the same admin; emails of no user stay as they are.
func (pl *planner) canonical(emails []string) []string {
	if len(emails) == 0 {
		return nil
	}
	out := make([]string, 0, len(emails))
	for _, e := range emails {
		if u, ok := pl.byEmail[e]; ok {
			e = pl.keyOf(u)
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// createTeam plans the create of a wanted team no PagerTree team matches.
// Where teams need a member and an admin, a group with no wanted member or
// no admin is reported instead: PagerTree would refuse the create.
func (pl *planner) createTeam(w WantedTeam) {
	if pl.leftForTwins(w.Name, append(slices.Clone(w.Members), w.Admins...), AccountTeam{}) {
		return
	}
	if pl.pol.TeamRoles && len(w.Members) == 0 {
		pl.conflict(w.Name, "group %q of source %q has no member ptsync can add, and an empty group cannot be a v4 team (a team needs a member); the team is created once it has one", w.GroupName, w.Source)
		return
	}
	if !pl.adminsKnown(w) {
		return
	}
	if pl.pol.TeamRoles && len(w.Admins) == 0 {
		pl.conflict(w.Name, "group %q of source %q has no owner to make admin, and a v4 team needs one: list admins on teams[%d] or in pagertree.team_admins", w.GroupName, w.Source, w.Rule)
		return
	}
	m := w.Marker()
	m.Admins = w.Admins
	c := Change{Op: OpCreate, Kind: KindTeam, Name: w.Name, Description: m.String(),
		Members: w.Members, MembersSet: true, MembersAdded: w.Members,
		Reason: fmt.Sprintf("group %q of source %q; new team from teams[%d]", w.GroupName, w.Source, w.Rule)}
	if len(w.Admins) > 0 {
		c.Admins, c.AdminsSet, c.AdminsAdded = w.Admins, true, w.Admins
	}
	pl.add(c)
}

// adminsKnown reports whether every wanted admin of w is a PagerTree user
// or one this plan creates; otherwise it records the conflict that leaves
// the team alone: PagerTree would refuse the write, and the admin list is
// configuration for a person to correct.
func (pl *planner) adminsKnown(w WantedTeam) bool {
	var unknown []string
	for _, e := range w.Admins {
		if _, ok := pl.byEmail[e]; !ok && pl.want.Users[e].Email == "" {
			unknown = append(unknown, e)
		}
	}
	if len(unknown) == 0 {
		return true
	}
	pl.conflict(w.Name, "admin %s is not a PagerTree user and no source wants one; add them to PagerTree or correct the admins of teams[%d] (or pagertree.team_admins)",
		strings.Join(unknown, ", "), w.Rule)
	return false
}

// planAdmins fills in c the admin write that brings team t's admins in
// line with w, and returns the marker to record: ptsync adds every wanted
// admin, removes only admins its marker says it added and that are no
// longer wanted, and keeps every other admin (a lead who made themselves
// admin by hand stays). It reports false when the write would leave the
// team with no admin, which it then leaves as it is.
func (pl *planner) planAdmins(c *Change, t teamRef, w WantedTeam) (Marker, bool) {
	current := pl.emailsOf(t.AdminIDs)
	var added []string // ptsync's before this run
	if t.marked {
		added = pl.canonical(t.marker.Admins)
	}
	byHand := make([]string, 0, len(current))
	for _, e := range current {
		if !slices.Contains(added, e) {
			byHand = append(byHand, e)
		}
	}
	m := w.Marker()
	for _, e := range w.Admins {
		if !slices.Contains(byHand, e) {
			m.Admins = append(m.Admins, e)
		}
	}
	// Removed: added by ptsync, still admin, no longer wanted.
	var removed []string
	for _, e := range current {
		if slices.Contains(added, e) && !slices.Contains(w.Admins, e) {
			removed = append(removed, e)
		}
	}
	adding, _ := diffSorted(current, w.Admins)
	if len(adding)+len(removed) == 0 {
		return m, true
	}
	final := mergeSorted(slices.DeleteFunc(slices.Clone(current), func(e string) bool { return slices.Contains(removed, e) }), w.Admins)
	keep := pl.unmatchedIDs(t.AdminIDs)
	// Ids no listed user has do not count as admins (they may be gone),
	// as everywhere the safety rules weigh a team.
	if pl.pol.TeamRoles && len(final) == 0 {
		pl.conflict(w.Name, "its admins %s are no longer wanted and no other is: a v4 team needs an admin, so they stay until one is configured", strings.Join(removed, ", "))
		return Marker{}, false
	}
	c.Admins, c.AdminsSet, c.AdminsAdded, c.AdminsRemoved, c.KeepAdminIDs = final, true, adding, removed, keep
	return m, true
}

// updateTeam plans the one write that brings a matched team in line: its
// name (renamed in place, keeping id and schedule), its marker when it is
// taken over (takeover says why), and its members. It reports false when
// it leaves the team alone for a twin (see leftForTwins).
func (pl *planner) updateTeam(t teamRef, w WantedTeam, takeover string, byName map[string][]teamRef) bool {
	if pl.leftForTwins(w.Name, append(slices.Clone(w.Members), w.Admins...), t.AccountTeam) {
		return false
	}
	if !pl.adminsKnown(w) {
		return true
	}
	c := Change{Op: OpUpdate, Kind: KindTeam, Name: w.Name, ID: t.ID, Members: w.Members}
	marker, ok := pl.planAdmins(&c, t, w)
	if !ok {
		// The admins stay as they are, and so does ptsync's record of
		// the ones it added; a takeover still moves the marker.
		marker = w.Marker()
		if t.marked {
			marker.Admins = t.marker.Admins
		}
	}
	why := []string{fmt.Sprintf("group %q of source %q", w.GroupName, w.Source)}
	if t.Name != w.Name {
		if blocker, ok := pl.nameBlocked(t, w.Name, byName); ok {
			pl.conflict(w.Name, "cannot rename team %q to %q: team %s already has that name and ptsync does not manage it", t.Name, w.Name, blocker.ID)
			c.Name = t.Name
		} else {
			c.Fields = append(c.Fields, FieldChange{Field: "name", Old: t.Name, New: w.Name})
			why = append(why, "renamed in the directory")
		}
	}
	if takeover != "" {
		why = append(why, takeover)
	} else if !t.marked || marker.String() == t.marker.String() {
		marker = Marker{} // the marker is as it should be
	}
	if marker.Source != "" {
		c.Description = WithMarker(t.Description, marker)
		c.Fields = append(c.Fields, FieldChange{Field: "description", Old: t.Description, New: c.Description})
	}
	c.MembersAdded, c.MembersRemoved = diffSorted(pl.memberEmails(t.AccountTeam), w.Members)
	if len(c.MembersAdded)+len(c.MembersRemoved) > 0 {
		c.MembersSet = true
		c.KeepIDs = pl.unmatchedMembers(t.AccountTeam)
		c.Destructive = len(c.MembersRemoved)
	}
	if pl.pol.TeamRoles && c.MembersSet && len(w.Members) == 0 {
		// PagerTree refuses a team with no member whatever the limits
		// say: the members stay, the rest of the change goes ahead. Ids
		// no listed user has do not count as members, as everywhere the
		// safety rules weigh a team (they may be gone).
		pl.conflict(w.Name, "group %q of source %q has no member ptsync can add, and a v4 team cannot be emptied (it needs a member); its members stay until the group has one", w.GroupName, w.Source)
		c.MembersSet, c.MembersAdded, c.MembersRemoved, c.KeepIDs, c.Destructive = false, nil, nil, nil, 0
	}
	if len(c.AdminsAdded)+len(c.AdminsRemoved) > 0 {
		why = append(why, "admins differ")
	}
	if len(c.Fields) == 0 && !c.MembersSet && !c.AdminsSet {
		return true
	}
	if !c.MembersSet {
		c.Members = nil
	}
	c.Reason = strings.Join(why, "; ")
	pl.add(c)
	return true
}

// nameBlocked finds a team ptsync will never touch that already holds name.
func (pl *planner) nameBlocked(self teamRef, name string, byName map[string][]teamRef) (teamRef, bool) {
	for _, o := range byName[name] {
		if o.ID != self.ID && (!o.marked || !pl.want.Sources[o.marker.Source]) {
			return o, true
		}
	}
	return teamRef{}, false
}

// planMissing applies on_missing to a managed team whose group its source
// no longer returns (or no rule matches any more).
func (pl *planner) planMissing(t teamRef) {
	if pl.leftForTwins(t.Name, nil, t.AccountTeam) {
		return
	}
	action := missingAction(pl.pol.Rules, t.marker.Source)
	why := fmt.Sprintf("group (id %q) is gone from source %q; on_missing: %s", t.marker.GroupID, t.marker.Source, action)
	switch action {
	case config.OnMissingDelete:
		pl.add(Change{Op: OpDelete, Kind: KindTeam, Name: t.Name, ID: t.ID, Destructive: 1, Reason: why})
	case config.OnMissingEmpty:
		current := pl.memberEmails(t.AccountTeam)
		if len(current) == 0 {
			return
		}
		if pl.pol.TeamRoles {
			pl.conflict(t.Name, "%s, but a v4 team cannot be emptied (it needs a member); its members stay: delete the team, or set on_missing: delete", why)
			return
		}
		pl.add(Change{Op: OpUpdate, Kind: KindTeam, Name: t.Name, ID: t.ID, Members: []string{}, MembersSet: true,
			MembersRemoved: current, KeepIDs: pl.unmatchedMembers(t.AccountTeam), Destructive: len(current), Reason: why})
	}
}

// missingAction is the on_missing for a team of source whose group is
// gone. The marker records only the group id, so the rule that made the
// team cannot be known; the least destructive on_missing among the
// source's rules applies (keep, then empty, then delete), and keep when the
// source has no rule left.
func missingAction(rules []config.TeamRule, source string) string {
	rank := map[string]int{config.OnMissingDelete: 0, config.OnMissingEmpty: 1, config.OnMissingKeep: 2}
	action, found := config.OnMissingKeep, false
	for _, r := range rules {
		if r.Source != source {
			continue
		}
		if m := onMissing(r); !found || rank[m] > rank[action] {
			action, found = m, true
		}
	}
	return action
}

// leftForTwins reports whether a team, wanted with the member emails wanted
// and currently cur (zero when it is to be created), involves an email
// more than one PagerTree user has. Then it records the conflict under the
// team's name: a write could put the wrong one of them in the team, or
// take the right one out, and which is meant is for a person to say.
func (pl *planner) leftForTwins(name string, wanted []string, cur AccountTeam) bool {
	if len(pl.twins) == 0 {
		return false
	}
	var emails []string
	for _, e := range wanted {
		if pl.twins[e] != nil {
			emails = append(emails, e)
		}
	}
	for _, id := range append(slices.Clone(cur.MemberIDs), cur.AdminIDs...) {
		if u, ok := pl.byID[id]; ok {
			for _, k := range emailKeys(u) {
				if pl.twins[k] != nil {
					emails = append(emails, k)
				}
			}
		}
	}
	if len(emails) == 0 {
		return false
	}
	slices.Sort(emails)
	shared := make([]string, 0, len(emails))
	for _, e := range slices.Compact(emails) {
		shared = append(shared, pl.twinWhy[e])
	}
	if cur.ID != "" {
		pl.twinTeams[cur.ID] = true
	}
	pl.conflict(name, "PagerTree %s (up to case and spaces); ptsync cannot tell which one is meant, so this team and its members are left alone: delete or correct all but one",
		strings.Join(shared, " and "))
	return true
}

// memberEmails is the team's members as sorted, unique email keys. Ids it
// cannot match to an email are left out of the diff (see unmatchedMembers).
func (pl *planner) memberEmails(t AccountTeam) []string { return pl.emailsOf(t.MemberIDs) }

// emailsOf is the users of ids as sorted, unique email keys.
func (pl *planner) emailsOf(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if u, ok := pl.byID[id]; ok && EmailKey(u.Email) != "" {
			out = append(out, pl.keyOf(u))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// unmatchedMembers is the team's member ids memberEmails leaves out, sorted
// and unique, or nil. A team write keeps them (Change.KeepIDs): an id the
// user listing missed may be a real member, and ptsync must not remove
// what it did not count.
func (pl *planner) unmatchedMembers(t AccountTeam) []string { return pl.unmatchedIDs(t.MemberIDs) }

// unmatchedIDs are the ids emailsOf leaves out, sorted and unique, or nil.
func (pl *planner) unmatchedIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if u, ok := pl.byID[id]; !ok || EmailKey(u.Email) == "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// base counts, before the run, the users ptsync may manage plus the members
// of managed teams (those carrying the marker of a synced source, and those
// this plan adopts).
func (pl *planner) base(users []AccountUser) int {
	n := 0
	for _, u := range users {
		if pl.manageable(u) {
			n++
		}
	}
	for _, t := range pl.managedTeams {
		ids := slices.Clone(t.MemberIDs)
		slices.Sort(ids)
		n += len(slices.Compact(ids))
	}
	return n
}

// diffSorted returns what is in want but not have, and in have but not
// want; both inputs are sorted and unique.
func diffSorted(have, want []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want) || (i < len(have) && have[i] < want[j]):
			removed = append(removed, have[i])
			i++
		case i == len(have) || want[j] < have[i]:
			added = append(added, want[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// normalizeChanges gives every change one canonical shape, the one a
// saved plan reads back as: empty lists are nil, except that a change that
// sets membership always carries its (possibly empty) member list.
func normalizeChanges(cs []Change) {
	for i := range cs {
		c := &cs[i]
		for _, l := range []*[]string{&c.Members, &c.MembersAdded, &c.MembersRemoved, &c.KeepIDs, &c.Admins, &c.AdminsAdded, &c.AdminsRemoved, &c.KeepAdminIDs} {
			if len(*l) == 0 {
				*l = nil
			}
		}
		if c.MembersSet && c.Members == nil {
			c.Members = []string{}
		}
		if c.AdminsSet && c.Admins == nil {
			c.Admins = []string{}
		}
		if len(c.Fields) == 0 {
			c.Fields = nil
		}
	}
}

// sortChanges orders changes by phase, then name, then id, so a plan reads
// (and applies) the same every time.
func sortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.Phase(), b.Phase()), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
}

func teamIDs(ts []teamRef) string {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}

func originList(os []Origin) string {
	names := make([]string, 0, len(os))
	for _, o := range os {
		if !slices.Contains(names, o.Source) {
			names = append(names, o.Source)
		}
	}
	return strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Fingerprint is a stable hash of the PagerTree state a plan is made from:
// every user's id, email, name, phone and admin flag and every team's id,
// name, description and member set, independent of list order. Apply
// refuses a saved plan whose fingerprint no longer matches.
func Fingerprint(cur Current) string {
	h := sha256.New()
	field := func(s string) { // length-prefixed, so no two states hash alike by concatenation
		h.Write([]byte(strconv.Itoa(len(s))))
		h.Write([]byte{':'})
		h.Write([]byte(s))
	}
	users := slices.Clone(cur.Users)
	slices.SortFunc(users, func(a, b AccountUser) int { return cmp.Compare(a.ID, b.ID) })
	field("users")
	for _, u := range users {
		field(u.ID)
		field(u.Email)
		field(u.Name)
		field(u.Phone)
		field(strconv.FormatBool(u.Admin))
		field(strings.Join(u.Emails, ","))
		field(strconv.FormatBool(u.Invited))
	}
	teams := slices.Clone(cur.Teams)
	slices.SortFunc(teams, func(a, b AccountTeam) int { return cmp.Compare(a.ID, b.ID) })
	field("teams")
	for _, t := range teams {
		field(t.ID)
		field(t.Name)
		field(t.Description)
		ids := slices.Clone(t.MemberIDs)
		slices.Sort(ids)
		field(strconv.Itoa(len(ids)))
		for _, id := range ids {
			field(id)
		}
		admins := slices.Clone(t.AdminIDs)
		slices.Sort(admins)
		field(strconv.Itoa(len(admins)))
		for _, id := range admins {
			field(id)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
