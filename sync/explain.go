package sync

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ptsync/ptsync/sources"
)

// Explanation says why one user or team is, or is not, wanted, and what the
// plan does to it.
type Explanation struct {
	Query string
	Kind  Kind // KindUser for a query with an @, else KindTeam
	// Key is the match key: the lower-cased email, or the marker keys of
	// the groups behind the team.
	Key string
	// Wanted says whether the directory asks for it.
	Wanted bool
	// Lines are the findings in reading order: sources, groups, rules,
	// PagerTree, and why (not) wanted.
	Lines []string
	// Changes and Withheld are the plan's changes naming it (for a user,
	// team writes adding or removing them included).
	Changes, Withheld []Change
	Conflicts         []Conflict
	// Pending is the user's delete users.delete_grace keeps for now.
	Pending []PendingDelete
}

// Explain looks query up, as an email when it has an @ and as a team (or
// group) name otherwise, across the snapshots, the rules, the desired
// state, PagerTree and the plan. It works from what the caller already
// fetched and planned; it does no I/O.
func Explain(query string, snaps []*sources.Snapshot, want Desired, cur Current, p Plan, pol Policy) Explanation {
	return ExplainWith(query, snaps, want, cur, p, pol, Remembered{})
}

// ExplainWith is Explain for a plan made with what the state database
// remembered (PlanWith): a team carrying the marker that the state does
// not record as ptsync's is said to be not ptsync's.
func ExplainWith(query string, snaps []*sources.Snapshot, want Desired, cur Current, p Plan, pol Policy, mem Remembered) Explanation {
	rules, _ := compileRules(pol.Rules) // BuildDesired already accepted them
	if strings.Contains(query, "@") {
		return explainUser(EmailKey(query), snaps, rules, want, cur, p, pol)
	}
	return explainTeam(strings.TrimSpace(query), snaps, rules, want, cur, p, pol, mem)
}

func (e *Explanation) say(format string, args ...any) {
	e.Lines = append(e.Lines, fmt.Sprintf(format, args...))
}

func explainUser(email string, snaps []*sources.Snapshot, rules []rule, want Desired, cur Current, p Plan, pol Policy) Explanation {
	e := Explanation{Query: email, Kind: KindUser, Key: email}
	e.say("match key: %s (emails match trimmed and lower-cased)", email)
	var inSources, disabled int
	inTeam := false
	for _, snap := range snaps {
		for _, id := range sortedKeys(snap.Users) {
			u := snap.Users[id]
			if EmailKey(u.Email) != email {
				continue
			}
			inSources++
			state := "enabled"
			if u.Disabled {
				state = "disabled"
				disabled++
			}
			e.say("source %s: user %s %q, phone %q, %s", snap.Source, id, u.Name, u.Phone, state)
			for _, g := range snap.Groups {
				if !slices.Contains(g.Members, id) {
					continue
				}
				r, ok := ruleFor(rules, snap.Source, g.Name)
				switch {
				case !ok:
					e.say("  member of group %q (id %s), which no teams: rule of source %s matches", g.Name, g.ID, snap.Source)
				case u.Disabled:
					e.say("  member of group %q (id %s), matched by teams[%d] (match %q), but disabled there so not a team member", g.Name, g.ID, r.index, r.cfg.Match)
				default:
					inTeam = true
					e.say("  member of group %q (id %s), matched by teams[%d] (match %q): team %q", g.Name, g.ID, r.index, r.cfg.Match,
						want.Teams[Marker{Source: snap.Source, GroupID: g.ID}.Key()].Name)
				}
			}
		}
	}
	if w, ok := want.Users[email]; ok {
		e.Wanted = true
		e.say("wanted: yes, as %q, phone %q (name and phone from the first source, in config order, that has them)", w.Name, w.Phone)
	} else {
		switch {
		case inSources == 0:
			e.say("wanted: no, no source returns this email")
		case disabled == inSources:
			e.say("wanted: no, disabled in every source that returns it")
		case !inTeam:
			e.say("wanted: no, not a member of any synced group and users.scope is team_members")
		}
	}
	for _, u := range cur.Users {
		if EmailKey(u.Email) != email {
			continue
		}
		e.say("PagerTree: user %s %q, phone %q", u.ID, u.Name, u.Phone)
		if u.Admin {
			e.say("  account admin: never changed or deleted")
		}
		for _, g := range pol.Protect {
			if protected(email, []string{g}) {
				e.say("  protected by users.protect %q: never changed or deleted", g)
			}
		}
		switch {
		case want.Present[email]:
		case !pol.DeleteUsers:
			e.say("  absent from every source; kept because users.delete is false")
		case !u.Admin && !protected(email, pol.Protect) && pol.DeleteGrace > 0:
			e.say("  absent from every source; users.delete removes it once missing for users.delete_grace (%s)", shortGrace(pol.DeleteGrace))
		case !u.Admin && !protected(email, pol.Protect):
			e.say("  absent from every source; users.delete removes it")
		}
	}
	for _, d := range p.PendingDeletes {
		if d.Email == email {
			e.Pending = append(e.Pending, d)
		}
	}
	about := func(c Change) bool {
		return (c.Kind == KindUser && c.Name == email) || slices.Contains(c.MembersAdded, email) || slices.Contains(c.MembersRemoved, email)
	}
	e.collect(p, about, func(Conflict) bool { return false })
	return e
}

func explainTeam(name string, snaps []*sources.Snapshot, rules []rule, want Desired, cur Current, p Plan, pol Policy, mem Remembered) Explanation {
	e := Explanation{Query: name, Kind: KindTeam}
	var keys, ids []string
	names := []string{name} // the query and the team names its groups render
	for _, snap := range snaps {
		for _, g := range snap.Groups {
			key := Marker{Source: snap.Source, GroupID: g.ID}.Key()
			w, wanted := want.Teams[key]
			if g.Name != name && (!wanted || w.Name != name) {
				continue
			}
			keys = append(keys, key)
			r, ok := ruleFor(rules, snap.Source, g.Name)
			if !ok {
				e.say("source %s: group %q (id %s) matches no teams: rule of that source, so it is not synced", snap.Source, g.Name, g.ID)
				continue
			}
			e.Wanted = true
			names = append(names, w.Name)
			e.say("source %s: group %q (id %s) matched by teams[%d] (match %q, name %q): team %q, wanted members: %d",
				snap.Source, g.Name, g.ID, r.index, r.cfg.Match, r.cfg.Name, w.Name, len(w.Members))
			e.say("  match key: %s (marker %s); adopt: %t, on_missing: %s", key, w.Marker(), w.Adopt, w.OnMissing)
		}
	}
	e.Key = strings.Join(keys, ", ")
	for _, t := range cur.Teams {
		m, marked := ParseMarker(t.Description)
		if !slices.Contains(names, t.Name) && !(marked && slices.Contains(keys, m.Key())) {
			continue
		}
		ids = append(ids, t.ID)
		switch {
		case !marked:
			e.say("PagerTree: team %s %q, members: %d, not managed by ptsync (no marker)", t.ID, t.Name, len(t.MemberIDs))
		case !want.Sources[m.Source]:
			e.say("PagerTree: team %s %q, members: %d, managed for source %q, which this configuration does not sync", t.ID, t.Name, len(t.MemberIDs), m.Source)
		case mem.Owned != nil && !mem.Owned[t.ID]:
			e.say("PagerTree: team %s %q, members: %d, carries ptsync's marker (key %s), but the state database has no record of ptsync creating or adopting it: not managed by ptsync",
				t.ID, t.Name, len(t.MemberIDs), m.Key())
		case !slices.Contains(keys, m.Key()):
			e.say("PagerTree: team %s %q, members: %d, managed by ptsync (marker key %s), but its group is gone from source %q or no rule matches it: on_missing %s applies",
				t.ID, t.Name, len(t.MemberIDs), m.Key(), m.Source, missingAction(pol.Rules, m.Source))
		default:
			e.say("PagerTree: team %s %q, members: %d, managed by ptsync (marker key %s)", t.ID, t.Name, len(t.MemberIDs), m.Key())
		}
	}
	if len(e.Lines) == 0 {
		e.say("nothing named %q in the sources, the teams: rules or PagerTree", name)
	}
	about := func(c Change) bool {
		return c.Kind == KindTeam && (slices.Contains(names, c.Name) || slices.Contains(ids, c.ID))
	}
	e.collect(p, about, func(c Conflict) bool { return slices.Contains(names, c.Team) })
	return e
}

// collect gathers the plan's changes and conflicts naming the subject.
func (e *Explanation) collect(p Plan, names func(Change) bool, conflicts func(Conflict) bool) {
	pick := func(cs []Change) []Change {
		var out []Change
		for _, c := range cs {
			if names(c) {
				out = append(out, c)
			}
		}
		return out
	}
	e.Changes, e.Withheld = pick(p.Changes), pick(p.Withheld)
	for _, c := range p.Conflicts {
		if conflicts(c) {
			e.Conflicts = append(e.Conflicts, c)
		}
	}
}

// Render writes the explanation as text. Names in the findings are quoted
// already; a finding that still holds a control character (an id from the
// directory or PagerTree) is quoted whole (SafeText), so no value can print
// a line of its own.
func (e Explanation) Render(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "%s %s\n", e.Kind, SafeText(e.Query))
	for _, l := range e.Lines {
		fmt.Fprintf(b, "  %s\n", SafeText(l))
	}
	if len(e.Changes)+len(e.Withheld)+len(e.Conflicts)+len(e.Pending) == 0 {
		fmt.Fprintf(b, "plan: nothing to do\n")
	} else {
		fmt.Fprintf(b, "plan:\n")
	}
	for _, c := range e.Changes {
		writeChange(b, "  ", c, c.Reason)
	}
	for _, c := range e.Withheld {
		writeChange(b, "  withheld: ", c, c.WithheldReason)
	}
	for _, d := range e.Pending {
		writeChange(b, "  pending: ", Change{Op: OpDelete, Kind: KindUser, Name: d.Email}, pendingNote(d))
	}
	for _, c := range e.Conflicts {
		fmt.Fprintf(b, "  conflict: %s: %s\n", SafeText(c.Subject()), SafeText(c.Reason))
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write explanation: %w", err)
	}
	return nil
}
