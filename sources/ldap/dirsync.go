package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/sources"
)

// attrName is the RDN value of an entry, whatever its naming attribute.
const attrName = "name"

// Attributes of Active Directory's deleted objects (tombstones).
const (
	attrIsDeleted       = "isDeleted"
	attrLastKnownParent = "lastKnownParent"
)

// dirSyncSearch is the user or the group search of the DirSync feed.
type dirSyncSearch struct {
	kind   string // sources.ChangeUser or sources.ChangeGroup
	idAttr string
	// root is the naming context DirSync searches (AD accepts no other
	// base); base and scope are the configured search, which changes
	// elsewhere in the domain are left out by.
	root   string
	base   *goldap.DN
	scope  int
	filter string
	attrs  []string
	cookie []byte
}

// watchDirSync follows the DirSync feed; see followDirSync.
func (s *Source) watchDirSync(ctx context.Context, w *watch) error {
	err := s.followDirSync(ctx, w, w.resume(feedDirSync))
	if errors.Is(err, errCookieRefused) {
		w.restart(s, err)
		err = s.followDirSync(ctx, w, w.resume(feedDirSync))
	}
	return err
}

// followDirSync polls the user and the group search with the DirSync
// control every w.poll. Without a cookie the first poll returns the whole
// content, which only establishes the cookie.
//
// The flag LDAP_DIRSYNC_OBJECT_SECURITY lets an account without the
// "Replicating Directory Changes" right ask: it gets what it may read. An
// object is returned when an attribute asked for changed, so each search
// asks for those its snapshot reads; the filter is matched against the
// whole object, and a deleted one (whose objectCategory is gone) is asked
// for by isDeleted and objectClass, which tombstones keep. Both ask for
// name too: AD records a rename or a move as a change of it, and an entry
// moved into the search is new to it.
func (s *Source) followDirSync(ctx context.Context, w *watch, from watchCookie) error {
	us, gs := s.cfg.users, s.cfg.groups
	userAttrs := []string{us.idAttr, us.emailAttr, us.nameAttr, us.phoneAttr, attrUAC, attrName}
	if s.usesMemberUID() {
		userAttrs = append(userAttrs, us.uidAttr)
	}
	groupAttrs := []string{gs.idAttr, gs.nameAttr, "description", gs.memberAttr, attrName}
	if gs.ownerAttr != "" {
		groupAttrs = append(groupAttrs, gs.ownerAttr)
	}
	searches := make([]*dirSyncSearch, 2)
	for i, c := range []struct {
		kind, idAttr, base, filter, class string
		scope                             int
		attrs                             []string
		cookie                            []byte
	}{
		{sources.ChangeUser, us.idAttr, us.base, us.filter, "user", us.scope, userAttrs, from.Users},
		{sources.ChangeGroup, gs.idAttr, gs.base, gs.filter, "group", gs.scope, groupAttrs, from.Groups},
	} {
		root, err := domainRoot(c.base)
		if err != nil {
			return fmt.Errorf("ldap %s: DirSync searches the domain of the base DN: %w", s.cfg.shownURL, err)
		}
		base, err := goldap.ParseDN(c.base)
		if err != nil {
			return fmt.Errorf("ldap %s: %w", s.cfg.shownURL, err)
		}
		searches[i] = &dirSyncSearch{
			kind: c.kind, idAttr: c.idAttr, root: root, base: base, scope: c.scope, cookie: c.cookie,
			filter: fmt.Sprintf("(|%s(&(%s=TRUE)(objectClass=%s)))", c.filter, attrIsDeleted, c.class),
			attrs:  dedupe(append(c.attrs, attrIsDeleted, attrLastKnownParent)),
		}
	}
	resumed := from.Users != nil || from.Groups != nil

	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	changes, err := s.pollDirSync(ctx, conn, searches)
	if err != nil {
		if resumed && answered(err) {
			return fmt.Errorf("%w: %w", errCookieRefused, err)
		}
		return err
	}
	if !resumed {
		changes = nil
	}
	if err := w.established(ctx, changes, dirSyncCookie(searches)); err != nil {
		return err
	}
	return w.every(ctx, func() ([]sources.Change, watchCookie, error) {
		changes, err := s.pollDirSync(ctx, conn, searches)
		return changes, dirSyncCookie(searches), err
	})
}

func dirSyncCookie(searches []*dirSyncSearch) watchCookie {
	return watchCookie{Feed: feedDirSync, Users: searches[0].cookie, Groups: searches[1].cookie}
}

// pollDirSync asks each search for what changed since its cookie, as many
// times as the server says it has more, and advances the cookies.
func (s *Source) pollDirSync(ctx context.Context, conn goldap.Client, searches []*dirSyncSearch) ([]sources.Change, error) {
	var changes []sources.Change
	for _, search := range searches {
		for more := true; more; {
			req := goldap.NewSearchRequest(search.root, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
				search.filter, search.attrs, []goldap.Control{goldap.NewRequestControlDirSync(goldap.DirSyncObjectSecurity, 0, search.cookie)})
			res, err := conn.Search(req)
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					err = ctxErr
				}
				return nil, opError(s.cfg.shownURL, "DirSync "+search.kind+"s", search.root, err)
			}
			for _, e := range res.Entries {
				if ch, ok := search.change(e); ok {
					changes = append(changes, ch)
				}
			}
			ctrl, ok := goldap.FindControl(res.Controls, goldap.ControlTypeDirSync).(*goldap.ControlDirSync)
			if !ok {
				return nil, fmt.Errorf("ldap %s (base %q): DirSync %ss: the server answered without a DirSync control", s.cfg.shownURL, search.root, search.kind)
			}
			if len(ctrl.Cookie) > 0 {
				search.cookie = ctrl.Cookie
			}
			more = ctrl.Flags != 0
		}
	}
	return changes, nil
}

// change is the change DirSync reports with e, unless e is outside the
// configured search: a deleted object by the parent it had.
func (search *dirSyncSearch) change(e *goldap.Entry) (sources.Change, bool) {
	ch := sources.Change{ID: strings.Clone(changeID(e, search.idAttr)), Kind: search.kind}
	if strings.EqualFold(e.GetEqualFoldAttributeValue(attrIsDeleted), "TRUE") {
		ch.Deleted = true
		// "<GUID=...>;OU=Team,DC=corp,DC=example"; absent when the account
		// may not read it, and then the deletion is reported unchecked.
		_, parent, found := strings.Cut(e.GetEqualFoldAttributeValue(attrLastKnownParent), ">;")
		if !found {
			return ch, true
		}
		dn, err := goldap.ParseDN(parent)
		return ch, err != nil || search.holdsChildOf(dn)
	}
	dn, err := goldap.ParseDN(e.DN)
	return ch, err != nil || search.holds(dn)
}

// holds reports whether the configured search holds dn.
func (search *dirSyncSearch) holds(dn *goldap.DN) bool {
	switch search.scope {
	case goldap.ScopeBaseObject:
		return search.base.EqualFold(dn)
	case goldap.ScopeSingleLevel:
		return len(dn.RDNs) == len(search.base.RDNs)+1 && search.base.AncestorOfFold(dn)
	}
	return search.base.EqualFold(dn) || search.base.AncestorOfFold(dn)
}

// holdsChildOf reports whether the configured search holds an entry whose
// parent is parent.
func (search *dirSyncSearch) holdsChildOf(parent *goldap.DN) bool {
	switch search.scope {
	case goldap.ScopeBaseObject:
		return len(search.base.RDNs) == len(parent.RDNs)+1 && parent.AncestorOfFold(search.base)
	case goldap.ScopeSingleLevel:
		return search.base.EqualFold(parent)
	}
	return search.base.EqualFold(parent) || search.base.AncestorOfFold(parent)
}
