package ldap

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// A watch-mode sync re-reads only the entries the feed named
// (sources.Refresher): FetchMemo keeps every entry of the two searches as
// read, in the server's order, and Refresh reads the changed ones again by
// id, puts them in place of the old ones (or drops those the searches no
// longer find) and builds the snapshot from the memo the way fetchWith
// does. The snapshot is then the one a whole fetch would give, so long as
// the feed names every entry that changed, which is why a feed that cannot
// (the modifyTimestamp poll) marks its changes Partial.

var _ sources.Refresher = (*Source)(nil)

const (
	// maxRefresh is how many changed entries Refresh reads by id; past
	// it, the whole read is about as quick and far simpler for the server.
	maxRefresh = 500
	// refreshBatch is how many ids one refresh search asks for.
	refreshBatch = 100
)

// memo is what FetchMemo and Refresh keep of a read. Nothing in it
// changes once it is returned: Refresh makes a new one.
type memo struct {
	users  []userEntry
	groups []*groupEntry
	// whole says why this read cannot be patched; "" when it can.
	whole string
}

// FetchMemo is Fetch, also returning the memo Refresh patches.
func (s *Source) FetchMemo(ctx context.Context) (*sources.Snapshot, sources.Memo, error) {
	if s.cfg.groups.inChain {
		// Which groups a user is in at any depth is the server's answer,
		// one search per group: a changed entry tells nothing of it.
		snap, err := s.fetch(ctx, nil)
		if err != nil {
			return nil, nil, err
		}
		return snap, &memo{whole: "groups.in_chain asks the server for every group's members"}, nil
	}
	m := &memo{}
	snap, err := s.fetch(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	return snap, m, nil
}

// Refresh reads again the entries changes name and returns the snapshot
// and memo of the directory as it is now (see sources.Refresher).
func (s *Source) Refresh(ctx context.Context, last sources.Memo, changes []sources.Change) (*sources.Snapshot, sources.Memo, error) {
	next, err := s.refresh(ctx, last, changes)
	if err != nil {
		return nil, nil, fmt.Errorf("ldap %s: %w", s.cfg.shownURL, err)
	}
	snap, err := s.build(next)
	if err != nil {
		return nil, nil, err
	}
	s.log.Debug("ldap refresh done", zap.Int("users", len(snap.Users)), zap.Int("groups", len(snap.Groups)))
	return snap, next, nil
}

// refresh is the memo of the directory as it is now: last with the entries
// changes name read again.
func (s *Source) refresh(ctx context.Context, last sources.Memo, changes []sources.Change) (*memo, error) {
	m, _ := last.(*memo)
	switch {
	case m == nil:
		return nil, sources.CannotRefresh("no earlier read of this source to patch")
	case m.whole != "":
		return nil, sources.CannotRefresh("%s", m.whole)
	}
	userIDs, groupIDs, err := sources.ChangedIDs(changes, maxRefresh)
	if err != nil || len(userIDs)+len(groupIDs) == 0 {
		return m, err
	}
	users, groups, err := s.readByID(ctx, slices.Sorted(maps.Keys(userIDs)), slices.Sorted(maps.Keys(groupIDs)))
	if err != nil {
		return nil, err
	}
	next := &memo{
		users:  sources.Patch(m.users, func(u userEntry) string { return u.user.ID }, userIDs, users),
		groups: sources.Patch(m.groups, func(g *groupEntry) string { return g.id }, groupIDs, groups),
	}
	// The builder keeps the first of two users with one email, and where
	// the server would list a changed one is not known.
	if sources.SharesEmail(next.users, users, func(u userEntry) string { return u.user.Email }) {
		return nil, sources.CannotRefresh("a changed user shares an email with another user")
	}
	if s.cfg.ad && !s.usesMemberUID() {
		next.unlink(m, changes)
	}
	return next, nil
}

// readByID runs the user and the group search for the entries of the
// given ids only, on one connection. What keeps their answer from patching
// the memo (a continuation reference, an entry of an id not asked for) is
// a CannotRefresh.
func (s *Source) readByID(ctx context.Context, userIDs, groupIDs []string) (users []userEntry, groups []*groupEntry, err error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	p := s.newPeers(conn)
	defer p.close()
	us, gs := s.cfg.users, s.cfg.groups
	ignored := 0
	for batch := range slices.Chunk(userIDs, refreshBatch) {
		filter, err := idFilter(us.idAttr, batch)
		if err != nil {
			return nil, nil, sources.CannotRefresh("%v", err)
		}
		q := query{what: "refresh users", base: us.base, scope: us.scope, filter: "(&" + us.filter + filter + ")", attrs: s.userAttrs()}
		err = s.searchAll(ctx, p, q, &ignored, func(e *goldap.Entry, at *endpoint) error {
			u, err := s.readUser(e, at)
			if err == nil {
				users = append(users, u.clone())
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for batch := range slices.Chunk(groupIDs, refreshBatch) {
		filter, err := idFilter(gs.idAttr, batch)
		if err != nil {
			return nil, nil, sources.CannotRefresh("%v", err)
		}
		read, err := s.readGroups(ctx, p, "(&"+gs.filter+filter+")", &ignored)
		if err != nil {
			return nil, nil, err
		}
		groups = append(groups, read...)
	}
	fresh := &memo{users: users}
	fresh.keepGroups(groups)
	switch {
	case ignored > 0 || fresh.referred():
		return nil, nil, sources.CannotRefresh("the changed entries met continuation references")
	case !fresh.within(userIDs, groupIDs):
		return nil, nil, sources.CannotRefresh("the directory answered with entries of ids not asked for")
	}
	return fresh.users, fresh.groups, nil
}

// within reports whether every entry of m has one of the ids given.
func (m *memo) within(userIDs, groupIDs []string) bool {
	for _, u := range m.users {
		if _, ok := slices.BinarySearch(userIDs, u.user.ID); !ok {
			return false
		}
	}
	for _, g := range m.groups {
		if _, ok := slices.BinarySearch(groupIDs, g.id); !ok {
			return false
		}
	}
	return true
}

// unlink drops from m's groups the members and owners that were entries
// of last changes report deleted and m no longer holds. Active Directory
// removes the links to a deleted object (member, managedBy) itself, and
// DirSync does not report that as a change to the groups.
func (m *memo) unlink(last *memo, changes []sources.Change) {
	deleted := map[string]bool{}
	for _, c := range changes {
		if c.Deleted {
			deleted[c.Kind+"/"+c.ID] = true
		}
	}
	gone := map[string]bool{}
	for _, u := range last.users {
		gone[u.norm] = deleted[sources.ChangeUser+"/"+u.user.ID]
	}
	for _, g := range last.groups {
		gone[g.norm] = deleted[sources.ChangeGroup+"/"+g.id]
	}
	for _, u := range m.users {
		delete(gone, u.norm)
	}
	for _, g := range m.groups {
		delete(gone, g.norm)
	}
	isGone := func(key string) bool { return gone[key] }
	for i, g := range m.groups {
		if slices.ContainsFunc(g.members, isGone) || slices.ContainsFunc(g.owners, isGone) {
			c := *g
			c.members = slices.DeleteFunc(slices.Clone(g.members), isGone)
			c.owners = slices.DeleteFunc(slices.Clone(g.owners), isGone)
			m.groups[i] = &c
		}
	}
}

// build makes the snapshot of m, as fetchWith does from the searches.
func (s *Source) build(m *memo) (*sources.Snapshot, error) {
	b := sources.NewBuilder(s.name, s.log)
	dir := newDirectory()
	for _, u := range m.users {
		if err := s.addUser(dir, u, b); err != nil {
			return nil, err
		}
	}
	// Copies: resolving sets a group's ref and lets go of its values.
	groups := make([]*groupEntry, len(m.groups))
	for i, g := range m.groups {
		c := *g
		c.ref = b.AddGroup(sources.Group{ID: c.id, Name: c.name, Description: c.desc})
		groups[i] = &c
	}
	s.resolveMembers(dir, groups, b)
	s.resolveOwners(dir, groups, b)
	return s.snapshot(b), nil
}

// keepGroups keeps copies of groups, before resolving lets go of their
// values, with member and owner keys of their own: a key can share a
// decoded page's memory, which a memo must not pin.
func (m *memo) keepGroups(groups []*groupEntry) {
	for _, g := range groups {
		c := *g
		c.members, c.owners = cloneAll(g.members), cloneAll(g.owners)
		m.groups = append(m.groups, &c)
	}
}

func cloneAll(values []string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = strings.Clone(v)
	}
	return out
}

// referred reports whether any entry of m came from a server a
// continuation reference named: a refresh asks the configured one only.
func (m *memo) referred() bool {
	return slices.ContainsFunc(m.users, func(u userEntry) bool { return u.at != nil }) ||
		slices.ContainsFunc(m.groups, func(g *groupEntry) bool { return g.at != nil })
}

// idFilter is the filter matching the entries whose attr is one of ids,
// each id as entryID renders it: an objectGUID as a GUID string.
func idFilter(attr string, ids []string) (string, error) {
	var f strings.Builder
	f.WriteString("(|")
	for _, id := range ids {
		value := goldap.EscapeFilter(id)
		if strings.EqualFold(attr, "objectGUID") {
			raw, err := parseGUID(id)
			if err != nil {
				return "", err
			}
			value = escapeBytes(raw)
		}
		fmt.Fprintf(&f, "(%s=%s)", attr, value)
	}
	f.WriteString(")")
	return f.String(), nil
}

// parseGUID is the inverse of formatGUID: the 16 bytes of an objectGUID
// from its string form.
func parseGUID(id string) ([]byte, error) {
	parts := strings.Split(id, "-")
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || err != nil || len(raw) != 16 {
		return nil, fmt.Errorf("%q is no GUID", id)
	}
	// The first three fields are little-endian on the wire.
	binary.LittleEndian.PutUint32(raw[0:4], binary.BigEndian.Uint32(raw[0:4]))
	binary.LittleEndian.PutUint16(raw[4:6], binary.BigEndian.Uint16(raw[4:6]))
	binary.LittleEndian.PutUint16(raw[6:8], binary.BigEndian.Uint16(raw[6:8]))
	return raw, nil
}

// escapeBytes writes every byte of raw as a filter escape (RFC 4515).
func escapeBytes(raw []byte) string {
	var b strings.Builder
	for _, c := range raw {
		fmt.Fprintf(&b, `\%02x`, c)
	}
	return b.String()
}
