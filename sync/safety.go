package sync

import (
	"fmt"
	"slices"
	"strings"
)

// applySafety moves destructive changes from the plan's Changes to its
// Withheld:
//
//   - over safety.max_destructive or safety.max_destructive_percent (the
//     latter only when the base is at least 100; a limit of 0 is off),
//     every destructive change;
//   - whatever the limits, every destructive change to the managed teams
//     of a source that returned no group any teams rule matches: a filter
//     gone wrong looks just like every group being gone (see
//     withholdSilentSources);
//   - whatever the limits, a change that would leave a team that has
//     members with none (an on-call team with no one in it pages no one):
//     a membership change, and a user delete, since PagerTree takes a
//     deleted user out of every team (see guardUserDeletes).
//
// The count is everything the plan would destroy, emptyings included, so
// the limit reads as "this plan destroys N". A team write that also adds
// members or renames is split: the safe part stays in Changes (keeping the
// members it would have removed), the removals are withheld.
// AllowDestructive lifts all of it.
func (pl *planner) applySafety() {
	p, pol := &pl.plan, pl.pol
	for _, c := range p.Changes {
		p.Destructive += c.Destructive
	}
	if !pol.AllowDestructive {
		pl.withholdSilentSources()
		withholdDestructive(p, pol)
		holdKeptMembers(p)
	}
	pl.guardUserDeletes(!pol.AllowDestructive)
	sortChanges(p.Withheld)
}

// withholdSilentSources withholds every destructive change to a team
// managed from a source that returned no group matching a teams rule while
// PagerTree holds teams it manages: every such team would look gone, and
// on_missing would delete or empty them all. A team another source's group
// takes over by name (the change rewrites its marker) is that group's now,
// and left to the other rules.
func (pl *planner) withholdSilentSources() {
	p := &pl.plan
	matched := map[string]bool{} // sources with at least one rule-matched group
	for _, w := range pl.want.Teams {
		matched[w.Source] = true
	}
	silent := map[string]string{} // team id -> its silent source
	for _, t := range pl.cur.Teams {
		if m, ok := ParseMarker(t.Description); ok && pl.want.Sources[m.Source] && !matched[m.Source] {
			silent[t.ID] = m.Source
		}
	}
	if len(silent) == 0 {
		return
	}
	kept := p.Changes[:0:0]
	for _, c := range p.Changes {
		source, ok := silent[c.ID]
		if c.Kind != KindTeam || c.ID == "" || !ok || c.Destructive == 0 || c.Description != "" {
			kept = append(kept, c)
			continue
		}
		safe, held, split := splitRemovals(c)
		if split {
			kept = append(kept, safe)
		}
		held.WithheldReason = fmt.Sprintf("source %q returned no group matching the teams rules; refusing to delete or empty every team it manages (check the group search and the rules, or rerun with --allow-destructive)", source)
		p.Withheld = append(p.Withheld, held)
	}
	p.Changes = kept
}

// withholdDestructive withholds every destructive change when the plan is
// over a limit, and every team change that would empty a team.
func withholdDestructive(p *Plan, pol Policy) {
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

// guardUserDeletes weighs what each user delete left in Changes does to
// teams: PagerTree takes a deleted user out of every team, managed or not,
// which no team change of the plan shows. Against the teams as the plan's
// applied team changes leave them, a delete that would leave a team that
// has members with none (alone or with the run's other deletes) is
// withheld when enforce is set, as is every delete of that team's last
// members.
//
// A delete that leaves the user's other teams staffed goes ahead, even
// from a team ptsync does not manage: users.delete is about people, and
// refusing it would let any hand-made team keep a leaver's account
// forever. Its Reason names the teams it takes the user out of.
func (pl *planner) guardUserDeletes(enforce bool) {
	p := &pl.plan
	deleted := map[string]bool{} // ids of the users the applied changes delete
	written := map[string]Change{}
	for _, c := range p.Changes {
		switch {
		case c.Kind == KindUser && c.Op == OpDelete:
			deleted[c.ID] = true
		case c.Kind == KindTeam && c.ID != "" && (c.Op == OpDelete || c.MembersSet || c.AdminsSet):
			written[c.ID] = c
		}
	}
	if len(deleted) == 0 {
		return
	}
	// Teams the plan creates are left out: their members are wanted, so
	// present in a source, and never deleted.
	inTeams := map[string][]string{} // user id -> teams the delete takes them out of
	// role name -> user id -> the teams the delete leaves with no one in
	// that role ("members", "admins")
	last := map[string]map[string][]string{membersRole.name: {}, adminsRole.name: {}}
	for _, t := range pl.cur.Teams {
		c, ok := written[t.ID]
		if ok && c.Op == OpDelete {
			continue
		}
		for _, role := range []teamRole{membersRole, adminsRole} {
			held := pl.accountUsers(role.current(t))
			if set, emails, kept := role.written(c); ok && set {
				held = append(pl.memberIDs(emails), pl.listedIDs(kept)...)
			}
			gone := slices.DeleteFunc(slices.Clone(held), func(id string) bool { return !deleted[id] })
			for _, id := range gone {
				if role.name == membersRole.name {
					inTeams[id] = append(inTeams[id], t.Name)
				}
				if len(gone) == len(held) {
					last[role.name][id] = append(last[role.name][id], t.Name)
				}
			}
		}
	}
	lastIn, lastAdmin := last[membersRole.name], last[adminsRole.name]
	const strips = " (PagerTree takes a deleted user out of every team)"
	kept := p.Changes[:0:0]
	for _, c := range p.Changes {
		if c.Kind != KindUser || c.Op != OpDelete || len(inTeams[c.ID])+len(lastAdmin[c.ID]) == 0 {
			kept = append(kept, c)
			continue
		}
		// A team with no admin, or (where teams need one) with no
		// member, is refused by PagerTree whatever the limits say.
		if orphaned := teamList(lastAdmin[c.ID]); orphaned != "" {
			c.WithheldReason = "deleting them would leave " + orphaned + " with no admin, which PagerTree refuses: make someone else admin first"
			p.Withheld = append(p.Withheld, c)
			continue
		}
		emptied := teamList(lastIn[c.ID])
		if (enforce || pl.pol.TeamRoles) && emptied != "" {
			c.WithheldReason = "deleting them would leave " + emptied + " with no members" + strips
			p.Withheld = append(p.Withheld, c)
			continue
		}
		c.Reason += "; the delete also takes them out of " + teamList(inTeams[c.ID]) + strips
		if emptied != "" {
			c.Reason += "; --allow-destructive lets it leave " + emptied + " with no members"
		}
		kept = append(kept, c)
	}
	p.Changes = kept
}

// memberIDs resolves a written member list (emails) the way Apply will: to
// the account's user of each email, or to the user this run creates.
func (pl *planner) memberIDs(emails []string) []string {
	ids := make([]string, 0, len(emails))
	for _, e := range emails {
		if u, ok := pl.byEmail[e]; ok {
			ids = append(ids, u.ID)
		} else {
			ids = append(ids, "new user "+e)
		}
	}
	return ids
}

// listedIDs keeps the ids that name a listed user.
func (pl *planner) listedIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if _, ok := pl.byID[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// accountUsers are ids (a team's members or admins) as unique ids of
// listed users. Ids that name no listed user are not counted: weighing a
// team as emptier than it may be only ever withholds more.
func (pl *planner) accountUsers(ids []string) []string {
	out := pl.listedIDs(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// teamList names teams for a reason: `team "A"` or `teams "A", "B"`, sorted.
func teamList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	names = slices.Clone(names)
	slices.Sort(names)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	if len(quoted) == 1 {
		return "team " + quoted[0]
	}
	return "teams " + strings.Join(quoted, ", ")
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
// still renames, marks, adds someone or changes the admins. Deletes are withheld whole.
func splitRemovals(c Change) (safe, held Change, split bool) {
	if c.Op != OpUpdate || c.Kind != KindTeam || len(c.MembersRemoved) == 0 {
		return Change{}, c, false
	}
	held = Change{Op: OpUpdate, Kind: KindTeam, Name: c.Name, ID: c.ID, Members: c.Members, MembersSet: true,
		MembersRemoved: c.MembersRemoved, KeepIDs: c.KeepIDs, Destructive: c.Destructive, Reason: c.Reason}
	safe = c
	safe.MembersRemoved, safe.Destructive = nil, 0
	if len(c.MembersAdded) > 0 {
		safe.Members = mergeSorted(c.Members, c.MembersRemoved)
	} else {
		safe.Members, safe.MembersSet, safe.KeepIDs = nil, false, nil
	}
	return safe, held, len(safe.Fields) > 0 || safe.MembersSet || safe.AdminsSet
}

// mergeSorted is the sorted union of two sorted, unique lists.
func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
