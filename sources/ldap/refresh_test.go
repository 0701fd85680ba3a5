package ldap

// Refresh against a real slapd with syncprov, fed the changes its own
// sync feed reports: after every edit, the refreshed snapshot must be the
// one a whole fetch gives.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
)

// refreshLDIF adds to watchLDIF carol (no email, in oncall), a platform
// group holding oncall (nested) owned by bob, and a contractor, whom the
// user filter leaves out.
const refreshLDIF = watchLDIF + `dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C

dn: uid=cont,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: cont
cn: Cont
sn: C
mail: cont@example.com
employeeType: contractor

dn: cn=platform,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: platform
member: cn=oncall,ou=groups,dc=example,dc=com
owner: uid=bob,ou=people,dc=example,dc=com

`

const (
	carolDN    = "uid=carol," + slapd.PeopleDN
	platformDN = "cn=platform," + slapd.GroupsDN
)

// refreshConfig nests groups, reads owners and leaves contractors out.
func refreshConfig(c *Config) {
	c.Users.Filter = "(&(objectClass=inetOrgPerson)(!(employeeType=contractor)))"
	c.Groups.Nested = true
	c.Groups.OwnerAttribute = "owner"
}

// comparable is snap with its groups in id order: a group new since the
// memo was made is listed last by a refresh, where the server may list it
// elsewhere, and the order of groups means nothing.
func comparable(snap *sources.Snapshot) *sources.Snapshot {
	c := *snap
	c.Groups = slices.Clone(snap.Groups)
	slices.SortFunc(c.Groups, func(a, b sources.Group) int { return strings.Compare(a.ID, b.ID) })
	return &c
}

// refreshedLikeFetch refreshes from memo with changes and checks the snapshot is
// the one a whole fetch gives now; it returns the new memo.
func refreshedLikeFetch(t *testing.T, src *Source, memo sources.Memo, changes []sources.Change, step string) sources.Memo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snap, next, err := src.Refresh(ctx, memo, changes)
	if err != nil {
		t.Fatalf("%s: Refresh with %+v: %v", step, changes, err)
	}
	if want := fetch(t, src); !reflect.DeepEqual(comparable(snap), comparable(want)) {
		t.Fatalf("%s: refreshed with %+v:\n got %+v\nwant %+v (a whole fetch)", step, changes, snap, want)
	}
	// The memo refreshed from is left as it was: the same refresh again
	// gives the same snapshot.
	again, _, err := src.Refresh(ctx, memo, changes)
	if err != nil || !reflect.DeepEqual(again, snap) {
		t.Fatalf("%s: the same refresh again gave %+v, %v; want %+v", step, again, err, snap)
	}
	return next
}

func TestRefreshFollowsTheSyncFeed(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: refreshLDIF, SyncProv: true, SessionLog: 100})
	// Ids are looked up once, after the entry is added and before it is
	// deleted.
	ids := map[string]string{}
	uuid := func(dn string) string {
		if _, ok := ids[dn]; !ok {
			ids[dn] = slapdEntryUUID(t, srv, dn)
		}
		return ids[dn]
	}
	alice, bob, carol, oncall, platform := uuid(aliceDN), uuid(bobDN), uuid(carolDN), uuid(oncallDN), uuid(platformDN)
	contractor := uuid("uid=cont," + slapd.PeopleDN)
	src := slapdSource(t, srv, nil, refreshConfig)

	ctx := context.Background()
	w := startWatch(t, src, nil)
	w.established(t, false)
	snap, memo, err := src.FetchMemo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fetch(t, src); !reflect.DeepEqual(snap, want) {
		t.Fatalf("FetchMemo's snapshot %+v, want Fetch's %+v", snap, want)
	}
	if snap.Skipped[sources.SkipNoEmail] != 1 || len(snap.Users) != 2 {
		t.Fatalf("the first read: %d users, skipped %v; want alice and bob, carol without email", len(snap.Users), snap.Skipped)
	}
	memo = refreshedLikeFetch(t, src, memo, nil, "no change")

	steps := []struct {
		name  string
		ldif  []string
		wants func() []sources.Change
	}{
		{"a new email", []string{replaceMail(aliceDN, "alice@new.example.com")},
			func() []sources.Change { return []sources.Change{userChange(alice)} }},
		{"a member added", []string{addMember(oncallDN, bobDN)},
			func() []sources.Change { return []sources.Change{groupChange(oncall)} }},
		{"a hire in a new nested group", []string{addUser("dave"),
			"dn: cn=dbas,ou=groups,dc=example,dc=com\nchangetype: add\nobjectClass: groupOfNames\ncn: dbas\nmember: uid=dave," + slapd.PeopleDN + "\n",
			addMember(platformDN, "cn=dbas,"+slapd.GroupsDN)},
			func() []sources.Change {
				return []sources.Change{userChange(uuid("uid=dave," + slapd.PeopleDN)), groupChange(uuid("cn=dbas," + slapd.GroupsDN)), groupChange(platform)}
			}},
		{"an email for a user without one", []string{replaceMail(carolDN, "carol@example.com")},
			func() []sources.Change { return []sources.Change{userChange(carol)} }},
		// Without the refint overlay, groups keep naming the old DN: bob
		// drops out of oncall and is no owner of platform, as in a fetch.
		{"a user renamed", []string{"dn: " + bobDN + "\nchangetype: modrdn\nnewrdn: uid=robert\ndeleteoldrdn: 0\n"},
			func() []sources.Change { return []sources.Change{userChange(bob)} }},
		{"a contractor hired", []string{"dn: uid=cont," + slapd.PeopleDN + "\nchangetype: modify\ndelete: employeeType\n",
			addMember(oncallDN, "uid=cont,"+slapd.PeopleDN)},
			func() []sources.Change { return []sources.Change{userChange(contractor), groupChange(oncall)} }},
		{"a user leaving the filter", []string{"dn: " + aliceDN + "\nchangetype: modify\nadd: employeeType\nemployeeType: contractor\n"},
			func() []sources.Change { return []sources.Change{userDeleted(alice)} }},
		{"a leaver", []string{deleteEntry("uid=dave," + slapd.PeopleDN)},
			func() []sources.Change { return []sources.Change{userDeleted(uuid("uid=dave," + slapd.PeopleDN))} }},
		{"a group gone", []string{deleteEntry(platformDN)},
			func() []sources.Change {
				return []sources.Change{{ID: platform, Kind: sources.ChangeGroup, Deleted: true}}
			}},
	}
	for _, step := range steps {
		for _, l := range step.ldif {
			srv.Modify(t, l)
		}
		want := step.wants()
		got, _ := w.waitFor(t, want...)
		memo = refreshedLikeFetch(t, src, memo, got, step.name)
	}
}

// TestRefreshRefuses: what Refresh cannot patch it says so with
// ErrCannotRefresh, reading nothing, and the caller reads whole.
func TestRefreshRefuses(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: refreshLDIF})
	alice, bob := slapdEntryUUID(t, srv, aliceDN), slapdEntryUUID(t, srv, bobDN)
	src := slapdSource(t, srv, nil, refreshConfig)
	_, memo, err := src.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	many := make([]sources.Change, maxRefresh+1)
	for i := range many {
		many[i] = userChange(fmt.Sprintf("id-%d", i))
	}
	tests := []struct {
		name    string
		memo    sources.Memo
		changes []sources.Change
		edit    string
	}{
		{"no memo", nil, []sources.Change{userChange(alice)}, ""},
		{"a memo of another source", "memo", []sources.Change{userChange(alice)}, ""},
		{"a change without id", memo, []sources.Change{{Kind: sources.ChangeUser}}, ""},
		{"a change of no kind", memo, []sources.Change{{ID: alice}}, ""},
		{"a poll's change", memo, []sources.Change{{ID: alice, Kind: sources.ChangeUser, Partial: true}}, ""},
		{"too many changes", memo, many, ""},
		// The builder keeps the first of two users with one email, and a
		// refresh cannot tell where the server lists a changed one.
		{"a changed user sharing an email", memo, []sources.Change{userChange(bob)}, replaceMail(bobDN, "Alice@example.com")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.edit != "" {
				srv.Modify(t, tc.edit)
			}
			snap, next, err := src.Refresh(context.Background(), tc.memo, tc.changes)
			if !errors.Is(err, sources.ErrCannotRefresh) || snap != nil || next != nil {
				t.Fatalf("Refresh = %v, %v, %v; want ErrCannotRefresh", snap, next, err)
			}
		})
	}

}

// TestParseGUID: parseGUID undoes formatGUID, and refuses what is no GUID.
func TestParseGUID(t *testing.T) {
	raw := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	s, err := formatGUID(raw)
	if err != nil || s != "00112233-4455-6677-8899-aabbccddeeff" {
		t.Fatalf("formatGUID = %q, %v", s, err)
	}
	back, err := parseGUID(s)
	if err != nil || !reflect.DeepEqual(back, raw) {
		t.Fatalf("parseGUID(%q) = %x, %v; want %x", s, back, err, raw)
	}
	if f, err := idFilter("objectGUID", []string{s}); err != nil || f != `(|(objectGUID=\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff))` {
		t.Errorf("idFilter = %q, %v", f, err)
	}
	if f, err := idFilter("entryUUID", []string{"a*b", "c)"}); err != nil || f != `(|(entryUUID=a\2ab)(entryUUID=c\29))` {
		t.Errorf("idFilter = %q, %v", f, err)
	}
	for _, bad := range []string{"", "0011223344556677-8899-aabbccddeeff", "00112233-4455-6677-8899-aabbccddeeffaa", "0011223g-4455-6677-8899-aabbccddeeff", "00112233-44556-677-8899-aabbccddeeff"} {
		if _, err := parseGUID(bad); err == nil {
			t.Errorf("parseGUID(%q) succeeded", bad)
		}
	}
}
