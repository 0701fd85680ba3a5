package googletest

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

// directory is the served domain, indexed. It is replaced whole, never
// changed, so a request may keep using the one it started with.
type directory struct {
	customerID  string
	users       []User
	groups      []Group
	userByID    map[string]int
	userByMail  map[string]int // primary emails and aliases, lower case
	groupByID   map[string]int
	groupByMail map[string]int
}

// mustIndex copies and indexes d, or panics on an inconsistent domain.
func mustIndex(d Domain) *directory {
	dir := &directory{
		customerID:  d.CustomerID,
		userByID:    map[string]int{},
		userByMail:  map[string]int{},
		groupByID:   map[string]int{},
		groupByMail: map[string]int{},
	}
	if dir.customerID == "" {
		dir.customerID = "C0" + strconv.FormatUint(uint64(fnvHash("customer")), 36)
	}
	mails := map[string]bool{}
	addMail := func(kind, id, mail string) {
		key := strings.ToLower(mail)
		if mail == "" || mails[key] {
			panic(fmt.Sprintf("googletest: %s %q: email %q is empty or taken", kind, id, mail))
		}
		mails[key] = true
	}
	for i, u := range d.Users {
		if u.ID == "" || dir.userByID[u.ID] != 0 || u.ID == dir.customerID {
			panic(fmt.Sprintf("googletest: user %q: the id is empty or taken", u.ID))
		}
		u.Phones = slices.Clone(u.Phones)
		u.Aliases = slices.Clone(u.Aliases)
		if u.FullName == "" {
			u.FullName = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
		}
		dir.users = append(dir.users, u)
		dir.userByID[u.ID] = i + 1
		for _, m := range append([]string{u.PrimaryEmail}, u.Aliases...) {
			addMail("user", u.ID, m)
			dir.userByMail[strings.ToLower(m)] = i + 1
		}
	}
	for i, g := range d.Groups {
		if g.ID == "" || dir.groupByID[g.ID] != 0 || dir.userByID[g.ID] != 0 || g.ID == dir.customerID {
			panic(fmt.Sprintf("googletest: group %q: the id is empty or taken", g.ID))
		}
		g.Aliases = slices.Clone(g.Aliases)
		g.Members = slices.Clone(g.Members)
		dir.groups = append(dir.groups, g)
		dir.groupByID[g.ID] = i + 1
		for _, m := range append([]string{g.Email}, g.Aliases...) {
			addMail("group", g.ID, m)
			dir.groupByMail[strings.ToLower(m)] = i + 1
		}
	}
	for _, g := range dir.groups {
		for _, m := range g.Members {
			switch {
			case m.ID == "" && m.Email == "":
				panic(fmt.Sprintf("googletest: group %q: a member with neither id nor email", g.ID))
			case m.ID == "" && mails[strings.ToLower(m.Email)]:
				panic(fmt.Sprintf("googletest: group %q: member %q is of the domain; name it by id", g.ID, m.Email))
			case m.ID != "" && m.ID != dir.customerID && dir.userByID[m.ID] == 0 && dir.groupByID[m.ID] == 0:
				panic(fmt.Sprintf("googletest: group %q: member %q is no user, group or the customer", g.ID, m.ID))
			}
			switch m.Role {
			case "", RoleOwner, RoleManager, RoleMember:
			default:
				panic(fmt.Sprintf("googletest: group %q: member %q has role %q", g.ID, m.ID, m.Role))
			}
		}
	}
	return dir
}

func (d *directory) userByEmail(email string) (User, bool) {
	if i := d.userByMail[strings.ToLower(email)]; i > 0 {
		return d.users[i-1], true
	}
	return User{}, false
}

// group finds a group by its groupKey: its id, email or an alias.
func (d *directory) group(key string) (Group, bool) {
	if i := d.groupByID[key]; i > 0 {
		return d.groups[i-1], true
	}
	if i := d.groupByMail[strings.ToLower(key)]; i > 0 {
		return d.groups[i-1], true
	}
	return Group{}, false
}

// memberEntry is one listed member of a group.
type memberEntry struct {
	id, email, role, typ, status string
}

// entry resolves a Member of the domain into what members.list shows.
func (d *directory) entry(m Member) memberEntry {
	e := memberEntry{id: m.ID, email: m.Email, role: m.Role, status: "ACTIVE"}
	if e.role == "" {
		e.role = RoleMember
	}
	switch {
	case m.ID == "":
		// A user outside the domain: Google shows its account's id.
		e.typ, e.id = TypeUser, strconv.FormatUint(uint64(fnvHash(strings.ToLower(m.Email)))+1e17, 10)
	case m.ID == d.customerID:
		e.typ, e.email = TypeCustomer, ""
	case d.userByID[m.ID] > 0:
		u := d.users[d.userByID[m.ID]-1]
		e.typ, e.email = TypeUser, u.PrimaryEmail
		if u.Suspended {
			e.status = "SUSPENDED"
		}
	default:
		e.typ, e.email = TypeGroup, d.groups[d.groupByID[m.ID]-1].Email
	}
	return e
}

// members lists g's members: its own, and with derived also those of the
// groups nested in it, each once, nested groups walked once (a cycle
// ends, and g is never its own member).
func (d *directory) members(g Group, derived bool) []memberEntry {
	var out []memberEntry
	listed := map[string]bool{}
	add := func(m Member) (memberEntry, bool) {
		e := d.entry(m)
		key := e.typ + " " + e.id
		if listed[key] || (e.typ == TypeGroup && e.id == g.ID) {
			return e, false
		}
		listed[key] = true
		out = append(out, e)
		return e, true
	}
	queue := []Group{g}
	walked := map[string]bool{g.ID: true}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range cur.Members {
			e, _ := add(m)
			if derived && e.typ == TypeGroup && !walked[e.id] {
				walked[e.id] = true
				queue = append(queue, d.groups[d.groupByID[e.id]-1])
			}
		}
		if !derived {
			break
		}
	}
	return out
}

func fnvHash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}
