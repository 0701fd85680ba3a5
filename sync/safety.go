package sync

import (
	"fmt"
	"slices"
)

// applySafety moves destructive changes from p.Changes to p.Withheld:
//
//   - over safety.max_destructive or safety.max_destructive_percent (the
//     latter only when the base is at least 100; a limit of 0 is off),
//     every destructive change;
//   - whatever the limits, a membership change that would leave a team that
//     has members with none (an on-call team with no one in it pages no
//     one).
//
// The count is everything the plan would destroy, emptyings included, so
// the limit reads as "this plan destroys N". A team write that also adds
// members or renames is split: the safe part stays in Changes (keeping the
// members it would have removed), the removals are withheld.
// AllowDestructive lifts all of it.
func applySafety(p *Plan, pol Policy) {
	for _, c := range p.Changes {
		p.Destructive += c.Destructive
	}
	if pol.AllowDestructive {
		return
	}
	over := ""
	switch {
	case pol.MaxDestructive > 0 && p.Destructive > pol.MaxDestructive:
		over = fmt.Sprintf("%d destructive changes exceed safety.max_destructive (%d)", p.Destructive, pol.MaxDestructive)
	case pol.MaxDestructivePercent > 0 && p.Base >= 100 &&
		float64(p.Destructive)*100 > pol.MaxDestructivePercent*float64(p.Base):
		over = fmt.Sprintf("%d destructive changes are %.1f%% of the %d managed users and team members, over safety.max_destructive_percent (%g%%)",
			p.Destructive, float64(p.Destructive)*100/float64(p.Base), p.Base, pol.MaxDestructivePercent)
	}
	kept := p.Changes[:0:0]
	for _, c := range p.Changes {
		var why string
		switch {
		case over != "" && c.Destructive > 0:
			why = over
		case empties(c):
			why = "would leave team " + c.Name + " with no members"
		}
		if why == "" {
			kept = append(kept, c)
			continue
		}
		safe, held, split := splitRemovals(c)
		if split {
			kept = append(kept, safe)
		}
		held.WithheldReason = why
		p.Withheld = append(p.Withheld, held)
	}
	p.Changes = kept
	holdKeptMembers(p)
	sortChanges(p.Withheld)
}

// holdKeptMembers withholds the delete of a user whom a withheld team
// change keeps in a team: deleting them would take them out of the team
// anyway and defeat the withholding (most plainly, empty the team).
func holdKeptMembers(p *Plan) {
	keptIn := map[string]string{} // email -> a team that keeps it
	for _, c := range p.Withheld {
		for _, m := range c.MembersRemoved {
			keptIn[m] = c.Name
		}
	}
	if len(keptIn) == 0 {
		return
	}
	kept := p.Changes[:0:0]
	for _, c := range p.Changes {
		team, ok := keptIn[c.Name]
		if c.Kind != KindUser || c.Op != OpDelete || !ok {
			kept = append(kept, c)
			continue
		}
		c.WithheldReason = "still a member of team " + team + ", whose removal is withheld"
		p.Withheld = append(p.Withheld, c)
	}
	p.Changes = kept
}

// summarize counts changes by op.
func summarize(cs []Change) Summary {
	var s Summary
	for _, c := range cs {
		switch c.Op {
		case OpCreate:
			s.Create++
		case OpUpdate:
			s.Update++
		case OpDelete:
			s.Delete++
		}
	}
	return s
}

// empties reports whether c takes every member out of a team that has some.
func empties(c Change) bool {
	return c.Kind == KindTeam && c.Op == OpUpdate && c.MembersSet && len(c.Members) == 0 && len(c.MembersRemoved) > 0
}

// splitRemovals separates a team update's member removals from the rest.
// safe keeps the removed members and is only worth applying (split) when it
// still renames, marks or adds someone. Deletes are withheld whole.
func splitRemovals(c Change) (safe, held Change, split bool) {
	if c.Op != OpUpdate || c.Kind != KindTeam || len(c.MembersRemoved) == 0 {
		return Change{}, c, false
	}
	held = Change{Op: OpUpdate, Kind: KindTeam, Name: c.Name, ID: c.ID, Members: c.Members, MembersSet: true,
		MembersRemoved: c.MembersRemoved, Destructive: c.Destructive, Reason: c.Reason}
	safe = c
	safe.MembersRemoved, safe.Destructive = nil, 0
	if len(c.MembersAdded) > 0 {
		safe.Members = mergeSorted(c.Members, c.MembersRemoved)
	} else {
		safe.Members, safe.MembersSet = nil, false
	}
	return safe, held, len(safe.Fields) > 0 || safe.MembersSet
}

// mergeSorted is the sorted union of two sorted, unique lists.
func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
