package sources

import (
	"fmt"
	"net/mail"
	"sort"
	"strings"

	"go.uber.org/zap"
)

// DefaultMaxDepth is how many levels of nested groups are flattened when a
// source has no setting of its own.
const DefaultMaxDepth = 10

// UserRef and GroupRef are a Builder's handles on the users and groups
// added to it. NoUser stands for a user left out (no email).
type (
	UserRef  int
	GroupRef int
)

// NoUser is the UserRef of a user the builder left out.
const NoUser UserRef = -1

// Builder assembles a Snapshot the one way every source shares, so sources
// cannot disagree on what a directory means:
//
//   - a user without an email is left out and counted as no_email, one
//     whose email is not a plain address (validEmail) as invalid_email:
//     PagerTree would refuse to create it, and that one failure would fail
//     every run; memberships naming either are dropped;
//   - users are one person per email, compared trimmed and without regard
//     to case: a second user with an email already seen is merged into the
//     first and counted as duplicate_email; memberships of either count, and
//     an enabled account wins over a disabled one (else the first stays);
//   - nested groups are flattened down to a depth limit, each group walked
//     once per flattening, so cycles and diamonds end.
//
// Sources resolve their own member references (DNs, ids, login names) to
// the handles AddUser and AddGroup return.
type Builder struct {
	snap    *Snapshot
	log     *zap.Logger
	users   []string // by UserRef: the id of the user that stands for it
	byEmail map[string]UserRef
	groups  []builtGroup
}

type builtGroup struct {
	Group
	users, owners []UserRef
	subgroups     []GroupRef
}

// NewBuilder starts the snapshot of the named source.
func NewBuilder(source string, log *zap.Logger) *Builder {
	if log == nil {
		log = zap.NewNop()
	}
	return &Builder{snap: NewSnapshot(source), log: log, byEmail: map[string]UserRef{}}
}

// Skip counts n entries left out for reason.
func (b *Builder) Skip(reason string, n int) {
	if n > 0 {
		b.snap.Skipped[reason] += n
	}
}

// AddUser adds u and returns its handle: a new one, the handle of the user
// with the same email it was merged into, or NoUser when u has no email or
// one that is not a valid address. An id already taken by another user is
// an error: ids must be stable and unique, or memberships and teams would
// attach to the wrong person.
func (b *Builder) AddUser(u User) (UserRef, error) {
	u.Email = strings.TrimSpace(u.Email)
	if u.Email == "" {
		b.snap.Skip(SkipNoEmail)
		return NoUser, nil
	}
	if !validEmail(u.Email) {
		b.log.Warn("user left out: its email is not a valid address", zap.String("user_id", u.ID), zap.String("email", u.Email))
		b.snap.Skip(SkipInvalidEmail)
		return NoUser, nil
	}
	if _, dup := b.snap.Users[u.ID]; dup || u.ID == "" {
		return NoUser, fmt.Errorf("user id %q (%s) is empty or also the id of another user; the id must be unique to each user", u.ID, u.Email)
	}
	key := emailKey(u.Email)
	ref, dup := b.byEmail[key]
	if !dup {
		ref = UserRef(len(b.users))
		b.users = append(b.users, u.ID)
		b.byEmail[key] = ref
		b.snap.Users[u.ID] = u
		return ref, nil
	}
	kept := b.snap.Users[b.users[ref]]
	replace := kept.Disabled && !u.Disabled
	b.log.Warn("merging users with the same email", zap.String("email", key),
		zap.String("kept_id", pick(replace, u.ID, kept.ID)), zap.String("merged_id", pick(replace, kept.ID, u.ID)))
	b.snap.Skip(SkipDuplicateEmail)
	if replace {
		delete(b.snap.Users, kept.ID)
		b.snap.Users[u.ID] = u
		b.users[ref] = u.ID
	}
	return ref, nil
}

// AddGroup adds g (its Members and Owners are ignored: add them with
// AddMember, AddSubgroup and AddOwner) and returns its handle.
func (b *Builder) AddGroup(g Group) GroupRef {
	g.Members, g.Owners = nil, nil
	b.groups = append(b.groups, builtGroup{Group: g})
	return GroupRef(len(b.groups) - 1)
}

// AddMember makes user u a direct member of group g; NoUser is ignored.
func (b *Builder) AddMember(g GroupRef, u UserRef) {
	if u != NoUser {
		b.groups[g].users = append(b.groups[g].users, u)
	}
}

// AddSubgroup makes group sub a member of group g.
func (b *Builder) AddSubgroup(g, sub GroupRef) {
	b.groups[g].subgroups = append(b.groups[g].subgroups, sub)
}

// AddOwner makes user u an owner of group g; NoUser is ignored.
func (b *Builder) AddOwner(g GroupRef, u UserRef) {
	if u != NoUser {
		b.groups[g].owners = append(b.groups[g].owners, u)
	}
}

// Snapshot resolves every group's members — its own users and, when
// nested, the users of member groups down to maxDepth levels (at least 1) —
// and returns the snapshot, groups sorted by name then id and member ids
// sorted. The Builder is done with after it.
func (b *Builder) Snapshot(nested bool, maxDepth int) *Snapshot {
	maxDepth = max(maxDepth, 1)
	mark := make([]int, len(b.users))  // mark[u] == stamp: user u already counted for the group
	seen := make([]int, len(b.groups)) // seen[g] == stamp: group g already walked for the group
	stamp := 0
	collect := func(refs []UserRef, ids []string) []string {
		for _, r := range refs {
			if mark[r] != stamp {
				mark[r] = stamp
				ids = append(ids, b.users[r])
			}
		}
		return ids
	}
	b.snap.Groups = make([]Group, len(b.groups))
	for gi := range b.groups {
		g := &b.groups[gi]
		stamp++
		ids := collect(g.users, make([]string, 0, len(g.users)))
		if nested {
			seen[gi] = stamp
			level := g.subgroups
			for depth := 1; len(level) > 0; depth++ {
				var unseen []GroupRef
				for _, sg := range level {
					if seen[sg] != stamp {
						seen[sg] = stamp
						unseen = append(unseen, sg)
					}
				}
				if len(unseen) == 0 {
					break
				}
				if depth > maxDepth {
					b.log.Warn("group nesting is deeper than the depth limit; deeper members left out",
						zap.String("group", g.Name), zap.String("group_id", g.ID), zap.Int("max_depth", maxDepth))
					break
				}
				level = nil
				for _, sg := range unseen {
					ids = collect(b.groups[sg].users, ids)
					level = append(level, b.groups[sg].subgroups...)
				}
			}
		}
		sort.Strings(ids)
		out := g.Group
		out.Members = ids
		if len(g.owners) > 0 {
			stamp++
			out.Owners = collect(g.owners, nil)
			sort.Strings(out.Owners)
		}
		b.snap.Groups[gi] = out
	}
	sort.Slice(b.snap.Groups, func(i, j int) bool {
		gi, gj := b.snap.Groups[i], b.snap.Groups[j]
		if gi.Name != gj.Name {
			return gi.Name < gj.Name
		}
		return gi.ID < gj.ID
	})
	return b.snap
}

// emailKey is how the builder compares emails: trimmed, without regard to
// case.
func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// validEmail reports whether email (already trimmed) is one plain address
// as RFC 5322 writes it (net/mail): local@domain and nothing else, so no
// display name, angle brackets, comment or second @.
func validEmail(email string) bool {
	if strings.Count(email, "@") != 1 {
		return false
	}
	if plainAddress(email) {
		return true // what net/mail would accept, without its parser's cost
	}
	addr, err := mail.ParseAddress(email)
	return err == nil && addr.Name == "" && addr.Address == email
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

// plainAddress reports whether email is local@domain where both parts are
// dot-separated runs of letters, digits and _%+- (and the domain has no _%+):
// dot-atoms net/mail accepts as they are. Most directory emails are; the
// rest go through net/mail. TestPlainAddressAgreesWithNetMail holds it.
func plainAddress(email string) bool {
	local, domain, _ := strings.Cut(email, "@")
	return dotAtom(local, "_%+-") && dotAtom(domain, "-")
}

// dotAtom reports whether s is non-empty runs of ASCII letters, digits and
// extra characters, separated by single dots.
func dotAtom(s, extra string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}
