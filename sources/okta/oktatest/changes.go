package oktatest

import (
	"fmt"
	"slices"
	"strings"
)

// The change helpers make the changes an administrator makes in Okta and log
// them in the System Log, published now by the fake's clock, as Okta logs
// them: with the administrator as the actor and the user and group changed
// as targets. Like NewServer, they panic on what Okta would refuse or what
// could not exist (an unknown ID, a user suspended who is not ACTIVE).

// AddMember adds user userID to group groupID
// (group.user_membership.add).
func (s *Server) AddMember(groupID, userID string) {
	s.change(func(o *Org) []logEvent {
		g, u := o.group(groupID), o.user(userID)
		if slices.Contains(g.Members, userID) {
			panic(fmt.Sprintf("oktatest: AddMember: %q is already a member of %q", userID, groupID))
		}
		g.Members = append(g.Members, userID)
		return []logEvent{membership("group.user_membership.add", "Add user to group membership", *u, *g)}
	})
}

// RemoveMember removes user userID from group groupID
// (group.user_membership.remove).
func (s *Server) RemoveMember(groupID, userID string) {
	s.change(func(o *Org) []logEvent {
		g, u := o.group(groupID), o.user(userID)
		i := slices.Index(g.Members, userID)
		if i < 0 {
			panic(fmt.Sprintf("oktatest: RemoveMember: %q is not a member of %q", userID, groupID))
		}
		g.Members = slices.Delete(g.Members, i, i+1)
		return []logEvent{membership("group.user_membership.remove", "Remove user from group membership", *u, *g)}
	})
}

// CreateUser adds u (user.lifecycle.create). Okta creates users STAGED, or
// activated (user.lifecycle.activate too): PROVISIONED, or ACTIVE (the
// default).
func (s *Server) CreateUser(u User) {
	s.change(func(o *Org) []logEvent {
		if u.Status == "" {
			u.Status = "ACTIVE"
		}
		if !slices.Contains([]string{"STAGED", "PROVISIONED", "ACTIVE"}, u.Status) {
			panic(fmt.Sprintf("oktatest: CreateUser: Okta does not create users %s", u.Status))
		}
		o.Users = append(o.Users, u)
		events := []logEvent{userEvent("user.lifecycle.create", "Create okta user", u)}
		if u.Status != "STAGED" {
			events = append(events, userEvent("user.lifecycle.activate", "Activate Okta user", u))
		}
		return events
	})
}

// ActivateUser makes a STAGED or DEPROVISIONED user ACTIVE
// (user.lifecycle.activate).
func (s *Server) ActivateUser(id string) {
	s.setStatus(id, "ActivateUser", []string{"STAGED", "DEPROVISIONED"}, "ACTIVE", "user.lifecycle.activate", "Activate Okta user")
}

// DeactivateUser makes a user DEPROVISIONED (user.lifecycle.deactivate);
// the user stays in the groups.
func (s *Server) DeactivateUser(id string) {
	s.setStatus(id, "DeactivateUser", nil, "DEPROVISIONED", "user.lifecycle.deactivate", "Deactivate Okta user")
}

// SuspendUser makes an ACTIVE user SUSPENDED (user.lifecycle.suspend).
func (s *Server) SuspendUser(id string) {
	s.setStatus(id, "SuspendUser", []string{"ACTIVE"}, "SUSPENDED", "user.lifecycle.suspend", "Suspend Okta user")
}

// UnsuspendUser makes a SUSPENDED user ACTIVE (user.lifecycle.unsuspend).
func (s *Server) UnsuspendUser(id string) {
	s.setStatus(id, "UnsuspendUser", []string{"SUSPENDED"}, "ACTIVE", "user.lifecycle.unsuspend", "Unsuspend Okta user")
}

// setStatus moves user id from one of the statuses from (nil: any but to)
// to status to.
func (s *Server) setStatus(id, op string, from []string, to, eventType, message string) {
	s.change(func(o *Org) []logEvent {
		u := o.user(id)
		if u.Status == to || from != nil && !slices.Contains(from, u.Status) {
			panic(fmt.Sprintf("oktatest: %s: user %q is %s", op, id, u.Status))
		}
		u.Status = to
		return []logEvent{userEvent(eventType, message, *u)}
	})
}

// DeleteUser deletes a DEPROVISIONED user, who leaves every group
// (user.lifecycle.delete.initiated). Okta deletes only deactivated users.
func (s *Server) DeleteUser(id string) {
	s.change(func(o *Org) []logEvent {
		u := *o.user(id)
		if u.Status != "DEPROVISIONED" {
			panic(fmt.Sprintf("oktatest: DeleteUser: user %q is %s; deactivate it first", id, u.Status))
		}
		o.Users = slices.DeleteFunc(o.Users, func(x User) bool { return x.ID == id })
		for i := range o.Groups {
			o.Groups[i].Members = slices.DeleteFunc(o.Groups[i].Members, func(m string) bool { return m == id })
		}
		return []logEvent{userEvent("user.lifecycle.delete.initiated", "Delete Okta user initiated", u)}
	})
}

// UpdateUser replaces a user's profile (user.account.update_profile).
func (s *Server) UpdateUser(id string, p Profile) {
	s.change(func(o *Org) []logEvent {
		u := o.user(id)
		u.Profile = p
		return []logEvent{userEvent("user.account.update_profile", "Update user profile for Okta", *u)}
	})
}

// CreateGroup adds g (group.lifecycle.create), then each of its members
// (group.user_membership.add), as an administrator does in Okta.
func (s *Server) CreateGroup(g Group) {
	s.change(func(o *Org) []logEvent {
		g.Members = slices.Clone(g.Members)
		o.Groups = append(o.Groups, g)
		events := []logEvent{{eventType: "group.lifecycle.create", message: "Create okta group", targets: []logTarget{groupTarget(g)}}}
		for _, id := range g.Members {
			events = append(events, membership("group.user_membership.add", "Add user to group membership", *o.user(id), g))
		}
		return events
	})
}

// DeleteGroup deletes a group (group.lifecycle.delete).
func (s *Server) DeleteGroup(id string) {
	s.change(func(o *Org) []logEvent {
		g := *o.group(id)
		o.Groups = slices.DeleteFunc(o.Groups, func(x Group) bool { return x.ID == id })
		return []logEvent{{eventType: "group.lifecycle.delete", message: "Delete okta group", targets: []logTarget{groupTarget(g)}}}
	})
}

// UpdateGroup replaces a group's name and description
// (group.profile.update).
func (s *Server) UpdateGroup(id, name, description string) {
	s.change(func(o *Org) []logEvent {
		g := o.group(id)
		g.Name, g.Description = name, description
		return []logEvent{{eventType: "group.profile.update", message: "Okta group profile updated", targets: []logTarget{groupTarget(*g)}}}
	})
}

// change applies edit to a copy of the org and serves the result, logging
// the events edit returns, all under the lock so that changes do not
// interleave.
func (s *Server) change(edit func(o *Org) []logEvent) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.org.org()
	events := edit(&o)
	s.org = newIndex(o)
	for _, e := range events {
		s.record(e, now)
	}
}

// org is what ix serves, as an Org that may be changed without changing ix.
func (ix *index) org() Org {
	o := Org{Users: slices.Clone(ix.users)}
	for _, g := range ix.groups {
		g.Members = nil
		for _, u := range ix.members[g.ID] {
			g.Members = append(g.Members, u.ID)
		}
		o.Groups = append(o.Groups, g)
	}
	return o
}

func (o *Org) user(id string) *User {
	i := slices.IndexFunc(o.Users, func(u User) bool { return u.ID == id })
	if i < 0 {
		panic(fmt.Sprintf("oktatest: no user %q", id))
	}
	return &o.Users[i]
}

func (o *Org) group(id string) *Group {
	i := slices.IndexFunc(o.Groups, func(g Group) bool { return g.ID == id })
	if i < 0 {
		panic(fmt.Sprintf("oktatest: no group %q", id))
	}
	return &o.Groups[i]
}

func userTarget(u User) logTarget {
	name := u.Profile.DisplayName
	if name == "" {
		name = strings.TrimSpace(u.Profile.FirstName + " " + u.Profile.LastName)
	}
	return logTarget{ID: u.ID, Type: "User", AlternateID: u.Profile.Login, DisplayName: name}
}

func groupTarget(g Group) logTarget {
	return logTarget{ID: g.ID, Type: "UserGroup", AlternateID: g.Name, DisplayName: g.Name}
}

func userEvent(eventType, message string, u User) logEvent {
	return logEvent{eventType: eventType, message: message, targets: []logTarget{userTarget(u)}}
}

func membership(eventType, message string, u User, g Group) logEvent {
	return logEvent{eventType: eventType, message: message, targets: []logTarget{userTarget(u), groupTarget(g)}}
}
