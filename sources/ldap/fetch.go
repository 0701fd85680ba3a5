package ldap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// directory is what the user search found, indexed for membership.
type directory struct {
	byDN  map[string]sources.UserRef // normalised DN -> the user's handle
	byUID map[string]sources.UserRef // uidKey(login name) -> the user's handle (memberUid)
	// dnByID maps each id read, merged users' too, to its entry's DN, to
	// name both entries when two share one.
	dnByID map[string]string
	// counted holds the normalised DNs (and uidKeys) of users skipped and
	// counted for having no email, so memberships naming them are dropped
	// without being counted again as outside the search.
	counted map[string]struct{}
}

func newDirectory() *directory {
	return &directory{
		byDN:    map[string]sources.UserRef{},
		byUID:   map[string]sources.UserRef{},
		dnByID:  map[string]string{},
		counted: map[string]struct{}{},
	}
}

// unreadable is the error for an entry the source cannot read: the
// server, the entry and what is wrong with it. Such an entry fails the
// fetch rather than being left out: the sync would take a user or group
// missing from the snapshot for one removed from the directory, and
// delete its PagerTree user or team.
func (s *Source) unreadable(at *endpoint, kind, dn string, problem error) error {
	return fmt.Errorf("ldap %s: %s %s: %w", s.server(query{at: at}).shown, kind, dn, problem)
}

// unreadableDN is the error for an entry whose own DN does not parse.
func (s *Source) unreadableDN(at *endpoint, kind string, err error) error {
	return fmt.Errorf("ldap %s: a %s entry has a DN the source cannot read: %w", s.server(query{at: at}).shown, kind, err)
}

// missingValue says an entry has no value the bind account can see for
// the attribute the config key names.
func missingValue(attr, key, kind string) error {
	return fmt.Errorf("no %s value (%s); check that every %s has one and that the bind account may read it", attr, key, kind)
}

type groupEntry struct {
	dn, norm       string
	id, name, desc string
	// members are the member values as resolveMembers compares them:
	// normalised DNs, or uidKeys of login names (memberUid).
	members   []string
	rangeNext int // first member value still to fetch with ranged retrieval, or -1
	// owners are the owner values (groups.owner_attribute) as
	// resolveOwners compares them, and ownerNext the first still to fetch
	// with ranged retrieval, or -1.
	owners    []string
	ownerNext int
	at        *endpoint // the server the group came from: nil for the configured one
	ref       sources.GroupRef
}

// fetchWith runs the whole fetch: the user search on usersConn and the
// group search on groupsConn at once, both already bound. The first
// failure calls stop, which must end both connections (see connect). The
// builder is only ever used by one goroutine: the user search's while
// both run, then this one, which adds the groups in the order the server
// returned them, so the snapshot does not depend on which search ends
// first. With kept set, the entries read are kept there too (FetchMemo).
func (s *Source) fetchWith(ctx context.Context, stop context.CancelFunc, usersConn, groupsConn goldap.Client, kept *memo) (*sources.Snapshot, error) {
	b := sources.NewBuilder(s.name, s.log)
	usersPeers, groupsPeers := s.newPeers(usersConn), s.newPeers(groupsConn)
	defer usersPeers.close()
	defer groupsPeers.close()
	var (
		dir                               *directory
		groups                            []*groupEntry
		userRefsIgnored, groupRefsIgnored int
	)
	err := all(stop,
		func() (err error) { dir, err = s.readUsers(ctx, usersPeers, b, &userRefsIgnored, kept); return err },
		func() (err error) {
			groups, err = s.readGroups(ctx, groupsPeers, s.cfg.groups.filter, &groupRefsIgnored)
			return err
		})
	if err != nil {
		return nil, err
	}
	b.Skip(skipReferral, userRefsIgnored+groupRefsIgnored)
	if kept != nil {
		kept.keepGroups(groups)
		if userRefsIgnored+groupRefsIgnored > 0 || kept.referred() {
			kept.whole = "the last read met continuation references"
		}
	}
	for _, g := range groups {
		g.ref = b.AddGroup(sources.Group{ID: g.id, Name: g.name, Description: g.desc})
	}
	if s.cfg.groups.inChain {
		if err := s.resolveInChain(ctx, usersPeers, dir, groups, b); err != nil {
			return nil, err
		}
	} else {
		s.resolveMembers(dir, groups, b)
	}
	s.resolveOwners(dir, groups, b)
	snap := s.snapshot(b)
	s.log.Debug("ldap fetch done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)),
		zap.Any("skipped", snap.Skipped))
	return snap, nil
}

// snapshot is what b holds, with nesting flattened as configured.
func (s *Source) snapshot(b *sources.Builder) *sources.Snapshot {
	// In-chain members arrive flattened by the server already.
	return b.Snapshot(s.cfg.groups.nested && !s.cfg.groups.inChain, s.cfg.groups.maxDepth)
}

func (s *Source) usesMemberUID() bool {
	return strings.EqualFold(s.cfg.groups.memberAttr, "memberUid")
}

// userAttrs are the attributes the user search asks for.
func (s *Source) userAttrs() []string {
	us := s.cfg.users
	attrs := []string{us.idAttr, us.emailAttr, us.nameAttr, us.phoneAttr}
	if s.usesMemberUID() {
		attrs = append(attrs, us.uidAttr)
	}
	if s.cfg.ad {
		attrs = append(attrs, attrUAC)
	}
	return dedupe(attrs)
}

// readUsers runs the user search into b, and into kept when set; it adds
// the continuation references it ignores to *ignored.
func (s *Source) readUsers(ctx context.Context, p *peers, b *sources.Builder, ignored *int, kept *memo) (*directory, error) {
	us := s.cfg.users
	dir := newDirectory()
	q := query{what: "search users", base: us.base, scope: us.scope, filter: us.filter, attrs: s.userAttrs()}
	err := s.searchAll(ctx, p, q, ignored, func(e *goldap.Entry, at *endpoint) error {
		u, err := s.readUser(e, at)
		if err != nil {
			return err
		}
		if kept != nil {
			kept.users = append(kept.users, u.clone())
		}
		return s.addUser(dir, u, b)
	})
	if err != nil {
		return nil, err
	}
	return dir, nil
}

// userEntry is a user entry as read, before the builder merges it.
type userEntry struct {
	dn, norm string // as the server wrote it, and normalised
	// user is the user the entry stands for: without an email when it has
	// none, and then its id only where it could be read.
	user sources.User
	uids []string  // uidKeys of its login names (memberUid)
	at   *endpoint // the server it came from: nil for the configured one
}

// readUser reads the user entry e, or returns why it cannot.
func (s *Source) readUser(e *goldap.Entry, at *endpoint) (userEntry, error) {
	us := s.cfg.users
	norm, err := normDN(e.DN)
	if err != nil {
		return userEntry{}, s.unreadableDN(at, "user", err)
	}
	u := userEntry{dn: e.DN, norm: norm, at: at}
	if s.usesMemberUID() {
		for _, uid := range e.GetEqualFoldAttributeValues(us.uidAttr) {
			u.uids = append(u.uids, uidKey(uid))
		}
	}
	id, idErr := entryID(e, us.idAttr)
	u.user = sources.User{
		ID:    id,
		Email: strings.TrimSpace(e.GetEqualFoldAttributeValue(us.emailAttr)),
		Name:  strings.TrimSpace(e.GetEqualFoldAttributeValue(us.nameAttr)),
		Phone: strings.TrimSpace(e.GetEqualFoldAttributeValue(us.phoneAttr)),
	}
	if u.user.Email == "" {
		return u, nil // left out: what else it holds does not matter
	}
	switch {
	case idErr != nil:
		return userEntry{}, s.unreadable(at, "user", e.DN, idErr)
	case id == "":
		return userEntry{}, s.unreadable(at, "user", e.DN, missingValue(us.idAttr, "users.id_attribute", "user"))
	}
	if s.cfg.ad {
		if v := e.GetEqualFoldAttributeValue(attrUAC); v != "" {
			if u.user.Disabled, err = disabledByUAC(v); err != nil {
				return userEntry{}, s.unreadable(at, "user", e.DN, err)
			}
		}
	}
	return u, nil
}

// clone is u with strings of its own: a decoded entry's share the page's
// memory, which a memo must not pin.
func (u userEntry) clone() userEntry {
	u.dn, u.norm = strings.Clone(u.dn), strings.Clone(u.norm)
	u.user.ID, u.user.Email = strings.Clone(u.user.ID), strings.Clone(u.user.Email)
	u.user.Name, u.user.Phone = strings.Clone(u.user.Name), strings.Clone(u.user.Phone)
	u.uids = slices.Clone(u.uids) // uidKey made these strings
	return u
}

// addUser adds the user u to dir and b, skips it when it has no email, or
// returns why it cannot be added.
func (s *Source) addUser(dir *directory, u userEntry, b *sources.Builder) error {
	if u.user.Email == "" {
		// Counted once here; memberships naming the user later are
		// dropped quietly.
		s.log.Debug("skipping a user without email", zap.String("dn", u.dn), zap.String("email_attribute", s.cfg.users.emailAttr))
		b.Skip(sources.SkipNoEmail, 1)
		dir.counted[u.norm] = struct{}{}
		for _, uid := range u.uids {
			dir.counted[uid] = struct{}{}
		}
		return nil
	}
	if other, dup := dir.dnByID[u.user.ID]; dup {
		return s.unreadable(u.at, "user", u.dn, fmt.Errorf("its %s %q is also the id of user %s; users.id_attribute must name an attribute unique to each user", s.cfg.users.idAttr, u.user.ID, other))
	}
	dir.dnByID[u.user.ID] = u.dn

	// One person per email, however many entries: the builder merges them.
	ref, err := b.AddUser(u.user)
	if err != nil {
		return s.unreadable(u.at, "user", u.dn, err)
	}
	dir.byDN[u.norm] = ref
	for _, uid := range u.uids {
		dir.byUID[uid] = ref
	}
	return nil
}

// entryID reads the stable id of e from attr: objectGUID rendered as a
// GUID string, any other attribute (entryUUID, ...) as text. It returns
// "" when e has no value for attr.
func entryID(e *goldap.Entry, attr string) (string, error) {
	if strings.EqualFold(attr, "objectGUID") {
		raw := e.GetEqualFoldRawAttributeValue(attr)
		if len(raw) == 0 {
			return "", nil
		}
		return formatGUID(raw)
	}
	return strings.TrimSpace(e.GetEqualFoldAttributeValue(attr)), nil
}

// groupAttrs are the attributes the group search asks for.
func (s *Source) groupAttrs() []string {
	gs := s.cfg.groups
	attrs := []string{gs.idAttr, gs.nameAttr, "description"}
	if !gs.inChain {
		attrs = append(attrs, gs.memberAttr)
	}
	if gs.ownerAttr != "" {
		attrs = append(attrs, gs.ownerAttr)
	}
	return dedupe(attrs)
}

// readGroups runs the group search with filter and reads the rest of
// ranged member (and owner) lists; it adds the continuation references it
// ignores to *ignored.
func (s *Source) readGroups(ctx context.Context, p *peers, filter string, ignored *int) ([]*groupEntry, error) {
	gs := s.cfg.groups
	var groups []*groupEntry
	dnByID := map[string]string{}
	q := query{what: "search groups", base: gs.base, scope: gs.scope, filter: filter, attrs: s.groupAttrs()}
	err := s.searchAll(ctx, p, q, ignored, func(e *goldap.Entry, at *endpoint) error {
		g, err := s.readGroup(e, at, dnByID)
		if err != nil {
			return err
		}
		g.at = at
		groups = append(groups, g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Ranged values are read after the group search ends, so no other
	// search runs while the server holds the paged cursor.
	for _, g := range groups {
		if g.rangeNext >= 0 {
			rest, err := s.fetchRange(ctx, p, g.at, g.dn, gs.memberAttr, g.rangeNext, ignored)
			if err != nil {
				return nil, err
			}
			if rest, err = s.memberKeys(rest); err != nil {
				return nil, s.unreadable(g.at, "group", g.dn, err)
			}
			g.members = append(g.members, rest...)
		}
		if g.ownerNext >= 0 {
			rest, err := s.fetchRange(ctx, p, g.at, g.dn, gs.ownerAttr, g.ownerNext, ignored)
			if err != nil {
				return nil, err
			}
			if rest, err = s.ownerKeys(rest); err != nil {
				return nil, s.unreadable(g.at, "group", g.dn, err)
			}
			g.owners = append(g.owners, rest...)
		}
	}
	return groups, nil
}

// readGroup reads the group entry e, or returns why it cannot. dnByID
// maps the ids of the groups read so far to their DNs; readGroup adds e's.
func (s *Source) readGroup(e *goldap.Entry, at *endpoint, dnByID map[string]string) (*groupEntry, error) {
	gs := s.cfg.groups
	norm, err := normDN(e.DN)
	if err != nil {
		return nil, s.unreadableDN(at, "group", err)
	}
	id, err := entryID(e, gs.idAttr)
	switch {
	case err != nil:
		return nil, s.unreadable(at, "group", e.DN, err)
	case id == "":
		return nil, s.unreadable(at, "group", e.DN, missingValue(gs.idAttr, "groups.id_attribute", "group"))
	}
	if other, dup := dnByID[id]; dup {
		return nil, s.unreadable(at, "group", e.DN, fmt.Errorf("its %s %q is also the id of group %s; groups.id_attribute must name an attribute unique to each group", gs.idAttr, id, other))
	}
	name := strings.TrimSpace(e.GetEqualFoldAttributeValue(gs.nameAttr))
	if name == "" {
		return nil, s.unreadable(at, "group", e.DN, missingValue(gs.nameAttr, "groups.name_attribute", "group"))
	}
	// Clones: a decoded entry's strings share its memory, and a group's
	// member list can be megabytes that need not outlive the fetch.
	g := &groupEntry{
		dn:        strings.Clone(e.DN),
		norm:      strings.Clone(norm),
		id:        strings.Clone(id),
		name:      strings.Clone(name),
		desc:      strings.Clone(e.GetEqualFoldAttributeValue("description")),
		rangeNext: -1,
		ownerNext: -1,
	}
	if !gs.inChain {
		values, next, err := memberValues(e, gs.memberAttr)
		if err == nil {
			values, err = s.memberKeys(values)
		}
		if err != nil {
			return nil, s.unreadable(at, "group", e.DN, err)
		}
		g.members, g.rangeNext = values, next
	}
	if gs.ownerAttr != "" {
		values, next, err := memberValues(e, gs.ownerAttr)
		if err == nil {
			values, err = s.ownerKeys(values)
		}
		if err != nil {
			return nil, s.unreadable(at, "group", e.DN, err)
		}
		g.owners, g.ownerNext = values, next
	}
	dnByID[g.id] = g.dn
	return g, nil
}

// memberKeys turns member values into the keys resolveMembers looks up,
// in place: while the user search still runs, so that this work is not
// left for after it. A member value that is not a DN is an error: the
// member could be a user of the search, and leaving it out would take
// them off the team.
func (s *Source) memberKeys(values []string) ([]string, error) {
	attr := s.cfg.groups.memberAttr
	uidMembers, stripUID := s.usesMemberUID(), strings.EqualFold(attr, "uniqueMember")
	for i, v := range values {
		if uidMembers {
			values[i] = uidKey(v)
			continue
		}
		if stripUID {
			v = stripNameUID(v)
		}
		dn, err := normDN(v)
		if err != nil {
			return nil, fmt.Errorf("a %s value: %w", attr, err)
		}
		values[i] = dn
	}
	return values, nil
}

// ownerKeys turns owner values (groups.owner_attribute) into the keys
// resolveOwners looks up, in place, as memberKeys does for members: owners
// are DNs (owner, managedBy), normalised like member DNs. When members are
// login names (memberUid), a value that is no DN is taken for a login
// name too; otherwise it is an error, for the same reason as a member's:
// the owner could be a user of the search, and leaving them out would take
// away their admin rights.
func (s *Source) ownerKeys(values []string) ([]string, error) {
	attr := s.cfg.groups.ownerAttr
	uids, stripUID := s.usesMemberUID(), strings.EqualFold(attr, "uniqueMember")
	for i, v := range values {
		if stripUID {
			v = stripNameUID(v)
		}
		dn, err := normDN(v)
		switch {
		case err == nil:
			values[i] = dn
		case uids:
			values[i] = uidKey(v)
		default:
			return nil, fmt.Errorf("a %s value (groups.owner_attribute): %w", attr, err)
		}
	}
	return values, nil
}

// resolveMembers maps member keys (see memberKeys) to users and member
// groups from what the two searches returned, without asking the server
// again.
func (s *Source) resolveMembers(dir *directory, groups []*groupEntry, b *sources.Builder) {
	byDN := make(map[string]int, len(groups))
	for i, g := range groups {
		byDN[g.norm] = i
	}
	uidMembers := s.usesMemberUID()
	outside := map[string]struct{}{}
	for _, g := range groups {
		for _, key := range g.members {
			if uidMembers {
				if ref, ok := dir.byUID[key]; ok {
					b.AddMember(g.ref, ref)
				} else if _, ok := dir.counted[key]; !ok {
					outside[key] = struct{}{}
				}
				continue
			}
			if ref, ok := dir.byDN[key]; ok {
				b.AddMember(g.ref, ref)
			} else if i, ok := byDN[key]; ok {
				b.AddSubgroup(g.ref, groups[i].ref)
			} else if _, ok := dir.counted[key]; !ok {
				outside[key] = struct{}{}
			}
		}
		g.members = nil
	}
	s.countOutside(b, outside)
}

// skipOwnerOutsideScope counts, in Snapshot.Skipped, the distinct owner
// values (groups.owner_attribute) that name no user of the user search: an
// entry outside it, one that does not exist, or a group. Owners are not
// flattened: a group that owns a group makes no admins.
const skipOwnerOutsideScope = "owner_outside_scope"

// resolveOwners maps owner keys (see ownerKeys) to users and adds them as
// owners of their groups; owners are never members for being owners. An
// owner that is no user of the user search is dropped and counted once
// however many groups name it (as countOutside counts members); one that
// is a user skipped for having no email was counted then.
func (s *Source) resolveOwners(dir *directory, groups []*groupEntry, b *sources.Builder) {
	if s.cfg.groups.ownerAttr == "" {
		return
	}
	isGroup := make(map[string]struct{}, len(groups))
	for _, g := range groups {
		isGroup[g.norm] = struct{}{}
	}
	outside := map[string]struct{}{}
	ownerGroups := 0
	for _, g := range groups {
		for _, key := range g.owners {
			ref, ok := dir.byDN[key]
			if !ok {
				ref, ok = dir.byUID[key] // only memberUid fills it; its keys never look like DNs
			}
			if ok {
				b.AddOwner(g.ref, ref)
				continue
			}
			if _, counted := dir.counted[key]; counted {
				continue
			}
			if ce := s.log.Check(zap.DebugLevel, "dropping a group owner that is no user of the user search"); ce != nil {
				ce.Write(zap.String("group", g.dn), zap.String("owner", key))
			}
			if _, seen := outside[key]; !seen {
				outside[key] = struct{}{}
				if _, ok := isGroup[key]; ok {
					ownerGroups++
				}
			}
		}
		g.owners = nil
	}
	if len(outside) == 0 {
		return
	}
	b.Skip(skipOwnerOutsideScope, len(outside))
	s.log.Info("dropped group owners that are no user of the user search", zap.Int("count", len(outside)),
		zap.Int("groups_among_them", ownerGroups), zap.String("owner_attribute", s.cfg.groups.ownerAttr),
		zap.String("users_base_dn", s.cfg.users.base), zap.String("users_filter", s.cfg.users.filter))
}

// countOutside counts the members that are neither users of the user
// search nor groups of the group search: each distinct DN (or login name)
// once, however many groups name it.
func (s *Source) countOutside(b *sources.Builder, outside map[string]struct{}) {
	if len(outside) == 0 {
		return
	}
	b.Skip(sources.SkipOutsideScope, len(outside))
	s.log.Info("dropped group members outside the user search", zap.Int("count", len(outside)),
		zap.String("users_base_dn", s.cfg.users.base), zap.String("users_filter", s.cfg.users.filter))
}

// resolveInChain asks the server for each group's members at any depth
// with LDAP_MATCHING_RULE_IN_CHAIN, one search per group. The search runs
// over the whole domain and returns DNs only, so members outside the user
// search are seen and counted as resolveMembers counts them; the nested
// groups it also returns are passed over. Members in other domains are not
// in this domain's search and go uncounted.
func (s *Source) resolveInChain(ctx context.Context, p *peers, dir *directory, groups []*groupEntry, b *sources.Builder) error {
	groupDNs := make(map[string]struct{}, len(groups))
	for _, g := range groups {
		groupDNs[g.norm] = struct{}{}
	}
	outside := map[string]struct{}{}
	ignored := 0
	for _, g := range groups {
		q := query{
			what:   "search members of group " + g.dn,
			base:   s.cfg.groups.chainBase,
			scope:  goldap.ScopeWholeSubtree,
			filter: inChainFilter(g.dn),
			attrs:  []string{"1.1"}, // RFC 4511: no attributes, the DN is enough
		}
		err := s.searchAll(ctx, p, q, &ignored, func(e *goldap.Entry, at *endpoint) error {
			dn, err := normDN(e.DN)
			if err != nil {
				return fmt.Errorf("ldap %s: %s: %w", s.server(query{at: at}).shown, q.what, err)
			}
			if ref, ok := dir.byDN[dn]; ok {
				b.AddMember(g.ref, ref) // the builder counts a user once per group
				return nil
			}
			_, isGroup := groupDNs[dn]
			_, counted := dir.counted[dn] // a user skipped and counted for having no email
			if !isGroup && !counted {
				outside[strings.Clone(dn)] = struct{}{} // a clone does not pin the decoded page
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	s.countOutside(b, outside)
	b.Skip(skipReferral, ignored)
	return nil
}

// stripNameUID drops the optional "#'0101'B" unique identifier a
// uniqueMember value may carry after the DN (RFC 4517 NameAndOptionalUID).
func stripNameUID(v string) string {
	i := strings.LastIndex(v, "#'")
	if i <= 0 || !strings.HasSuffix(v, "'B") || len(v)-i < 4 {
		return v
	}
	if strings.Trim(v[i+2:len(v)-2], "01") != "" || v[i-1] == '\\' {
		return v
	}
	return v[:i]
}

// uidKey is how login names are compared: uid matches case-insensitively.
// The prefix keeps login names apart from DNs in directory.counted.
func uidKey(uid string) string {
	return "uid:" + strings.ToLower(strings.TrimSpace(uid))
}

func dedupe(attrs []string) []string {
	out := attrs[:0:0]
	for _, a := range attrs {
		dup := false
		for _, o := range out {
			if strings.EqualFold(a, o) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}
