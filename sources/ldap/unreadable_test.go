package ldap

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
)

// unreadableLDIF holds entries the reader cannot read whole: some lack
// the attribute a test names as id, some share it, and the ACLs in
// unreadableACL hide an id or a name from the reader.
const unreadableLDIF = `dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ann
cn: Ann
sn: A
mail: ann@example.com
employeeNumber: 1

dn: uid=ben,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: ben
cn: Ben
sn: B
mail: ben@example.com
employeeNumber: 2

dn: uid=cat,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: cat
cn: Cat
sn: C
mail: cat@example.com

dn: uid=dup,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dup
cn: Dup
sn: D
mail: dup@example.com
employeeNumber: 1

dn: uid=hidden,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: hidden
cn: Hidden
sn: H
mail: hidden@example.com

dn: uid=nomail,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: nomail
cn: No Mail
sn: N

dn: ou=staff,dc=example,dc=com
objectClass: organizationalUnit
ou: staff

dn: uid=eve,ou=staff,dc=example,dc=com
objectClass: inetOrgPerson
uid: eve
cn: Eve
sn: E
mail: eve@example.com

dn: uid=fay,ou=staff,dc=example,dc=com
objectClass: inetOrgPerson
uid: fay
cn: Fay
sn: F
mail: fay@example.com

dn: ou=fine,ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: fine

dn: cn=fine,ou=fine,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: fine
member: uid=ann,ou=people,dc=example,dc=com

dn: ou=veiled,ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: veiled

dn: cn=named,ou=veiled,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: named
member: uid=ann,ou=people,dc=example,dc=com

dn: cn=veiled,ou=veiled,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: veiled
member: uid=ben,ou=people,dc=example,dc=com

dn: ou=noid,ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: noid

dn: cn=noid,ou=noid,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: noid
member: uid=ben,ou=people,dc=example,dc=com

dn: ou=twins,ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: twins

dn: cn=twin1,ou=twins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: twin1
businessCategory: 7
member: uid=ann,ou=people,dc=example,dc=com

dn: cn=twin2,ou=twins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: twin2
businessCategory: 7
member: uid=ben,ou=people,dc=example,dc=com

`

// unreadableACL hides, from the reader, the entryUUID of one user and of
// every user under ou=staff (an ACL change gone wrong), the cn of one
// group and the entryUUID of another.
var unreadableACL = []string{
	`access to dn.exact="uid=hidden,ou=people,dc=example,dc=com" attrs=entryUUID by * none`,
	`access to dn.subtree="ou=staff,dc=example,dc=com" attrs=entryUUID by * none`,
	`access to dn.exact="cn=veiled,ou=veiled,ou=groups,dc=example,dc=com" attrs=cn by * none`,
	`access to dn.exact="cn=noid,ou=noid,ou=groups,dc=example,dc=com" attrs=entryUUID by * none`,
}

// TestSlapdUnreadableEntriesFailTheFetch checks that an entry the source
// cannot read fails the fetch instead of being left out: a user or team
// missing from a snapshot is deleted downstream.
func TestSlapdUnreadableEntriesFailTheFetch(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: unreadableLDIF, Access: unreadableACL})
	users := func(uids ...string) string {
		return "(|(uid=" + strings.Join(uids, ")(uid=") + "))"
	}
	groupsIn := func(ou string) string { return "ou=" + ou + "," + slapd.GroupsDN }
	// The cases of a broken user read the groups of ou=fine: the two
	// searches run at once, and whichever fails first ends the fetch.
	fine := groupsIn("fine")

	tests := []struct {
		name     string
		edit     func(*Config)
		wantText []string
	}{
		{
			name: "a user without the configured id attribute",
			edit: func(l *Config) {
				l.Users.Filter, l.Users.IDAttribute, l.Groups.BaseDN = users("ann", "cat"), "employeeNumber", fine
			},
			wantText: []string{srv.URL, "user uid=cat,ou=people,dc=example,dc=com", "no employeeNumber value (users.id_attribute)", "may read it"},
		},
		{
			name: "two users with the same id",
			edit: func(l *Config) {
				l.Users.Filter, l.Users.IDAttribute, l.Groups.BaseDN = users("ann", "dup"), "employeeNumber", fine
			},
			wantText: []string{"employeeNumber \"1\"", "uid=ann,ou=people,dc=example,dc=com", "uid=dup,ou=people,dc=example,dc=com", "users.id_attribute"},
		},
		{
			name:     "a user whose entryUUID the bind account may not read",
			edit:     func(l *Config) { l.Users.Filter, l.Groups.BaseDN = users("ann", "hidden"), fine },
			wantText: []string{"user uid=hidden,ou=people,dc=example,dc=com", "no entryUUID value (users.id_attribute)", "may read it"},
		},
		{
			name:     "every user's entryUUID hidden",
			edit:     func(l *Config) { l.Users.BaseDN, l.Groups.BaseDN = "ou=staff,"+slapd.Suffix, fine },
			wantText: []string{"ou=staff,dc=example,dc=com", "no entryUUID value (users.id_attribute)"},
		},
		{
			name: "a group whose cn the bind account may not read",
			edit: func(l *Config) {
				l.Users.Filter, l.Groups.BaseDN = users("ann", "ben"), groupsIn("veiled")
			},
			wantText: []string{srv.URL, "group cn=veiled,ou=veiled,ou=groups,dc=example,dc=com", "no cn value (groups.name_attribute)", "may read it"},
		},
		{
			name: "a group whose entryUUID the bind account may not read",
			edit: func(l *Config) {
				l.Users.Filter, l.Groups.BaseDN = users("ann", "ben"), groupsIn("noid")
			},
			wantText: []string{"group cn=noid,ou=noid,ou=groups,dc=example,dc=com", "no entryUUID value (groups.id_attribute)"},
		},
		{
			name: "two groups with the same id",
			edit: func(l *Config) {
				l.Users.Filter, l.Groups.BaseDN, l.Groups.IDAttribute = users("ann", "ben"), groupsIn("twins"), "businessCategory"
			},
			wantText: []string{"businessCategory \"7\"", "cn=twin1,ou=twins", "cn=twin2,ou=twins", "groups.id_attribute"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			snap, err := slapdSource(t, srv, nil, tc.edit).Fetch(ctx)
			if err == nil {
				t.Fatalf("Fetch returned %d users, %d groups and skipped %v, want an error", len(snap.Users), len(snap.Groups), snap.Skipped)
			}
			if snap != nil {
				t.Errorf("Fetch returned a snapshot with its error %v", err)
			}
			t.Logf("error: %v", err)
			for _, want := range tc.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestSlapdLegitimateSkipsStaySkips checks that a user without email is
// still left out and counted, even when it lacks the id attribute too,
// and that the entries of the fixture are readable otherwise.
func TestSlapdLegitimateSkipsStaySkips(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: unreadableLDIF, Access: unreadableACL})
	src := slapdSource(t, srv, nil, func(l *Config) {
		l.Users.Filter, l.Users.IDAttribute = "(|(uid=ann)(uid=ben)(uid=nomail))", "employeeNumber"
		l.Groups.BaseDN = "ou=fine," + slapd.GroupsDN
	})
	snap := fetch(t, src)
	wantUsers := map[string]sources.User{
		"1": {ID: "1", Email: "ann@example.com"},
		"2": {ID: "2", Email: "ben@example.com"},
	}
	if !equalMaps(snap.Users, wantUsers, func(a, b sources.User) bool { return a == b }) {
		t.Errorf("Users = %+v, want %+v", snap.Users, wantUsers)
	}
	if want := map[string]int{sources.SkipNoEmail: 1}; !equalMaps(snap.Skipped, want, func(a, b int) bool { return a == b }) {
		t.Errorf("Skipped = %v, want %v", snap.Skipped, want)
	}
	if len(snap.Groups) != 1 || snap.Groups[0].Name != "fine" || len(snap.Groups[0].Members) != 1 || snap.Groups[0].Members[0] != "1" {
		t.Errorf("Groups = %+v, want fine with member 1", snap.Groups)
	}
}

// cannedClient answers each search with the entries stored for its base
// DN, in one page. It stands for an Active Directory answering with what
// Samba never sends (a malformed range option, a non-numeric
// userAccountControl); methods the source does not call panic.
type cannedClient struct {
	goldap.Client
	entries map[string][]*goldap.Entry
}

func (c cannedClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	return &goldap.SearchResult{Entries: c.entries[req.BaseDN]}, nil
}

func (cannedClient) Close() error { return nil }

func TestUnreadableADEntriesFailTheFetch(t *testing.T) {
	const (
		usersBase  = "OU=People," + fakeBase
		groupsBase = "OU=Groups," + fakeBase
		aliceDN    = "CN=Alice,OU=People," + fakeBase
		teamDN     = "CN=team,OU=Groups," + fakeBase
	)
	attr := func(name string, vals ...string) *goldap.EntryAttribute {
		bs := make([][]byte, len(vals))
		for i, v := range vals {
			bs[i] = []byte(v)
		}
		return attribute(name, bs)
	}
	guid := func(g string) *goldap.EntryAttribute { return attr("objectGUID", string(guidBytes(t, g))) }
	alice := func(extra ...*goldap.EntryAttribute) *goldap.Entry {
		return &goldap.Entry{DN: aliceDN, Attributes: append([]*goldap.EntryAttribute{attr("mail", "alice@corp.example")}, extra...)}
	}
	goodAlice := alice(guid("11111111-2222-3333-4444-555555555555"), attr("userAccountControl", "512"))
	team := func(extra ...*goldap.EntryAttribute) *goldap.Entry {
		return &goldap.Entry{DN: teamDN, Attributes: append([]*goldap.EntryAttribute{attr("cn", "team")}, extra...)}
	}
	teamGUID := guid("0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d")

	tests := []struct {
		name     string
		users    []*goldap.Entry
		groups   []*goldap.Entry
		wantText []string // nil: the fetch succeeds
	}{
		{
			name:   "every entry readable",
			users:  []*goldap.Entry{goodAlice},
			groups: []*goldap.Entry{team(teamGUID, attr("member", aliceDN))},
		},
		{
			name:     "userAccountControl not a number",
			users:    []*goldap.Entry{alice(guid("11111111-2222-3333-4444-555555555555"), attr("userAccountControl", "enabled"))},
			wantText: []string{"user " + aliceDN, `userAccountControl "enabled" is not a number`},
		},
		{
			name:     "objectGUID hidden from the bind account",
			users:    []*goldap.Entry{alice(attr("userAccountControl", "512"))},
			wantText: []string{"user " + aliceDN, "no objectGUID value (users.id_attribute)", "may read it"},
		},
		{
			name:     "objectGUID of the wrong length",
			users:    []*goldap.Entry{alice(attr("objectGUID", "12345"), attr("userAccountControl", "512"))},
			wantText: []string{"user " + aliceDN, "objectGUID has 5 bytes, want 16"},
		},
		{
			name:     "a group without objectGUID",
			users:    []*goldap.Entry{goodAlice},
			groups:   []*goldap.Entry{team(attr("member", aliceDN))},
			wantText: []string{"group " + teamDN, "no objectGUID value (groups.id_attribute)"},
		},
		{
			name:     "a malformed member;range= option",
			users:    []*goldap.Entry{goodAlice},
			groups:   []*goldap.Entry{team(teamGUID, attr("member;range=0-x", aliceDN))},
			wantText: []string{"group " + teamDN, `malformed range option "member;range=0-x"`},
		},
		{
			name:     "a member value that is not a DN",
			users:    []*goldap.Entry{goodAlice},
			groups:   []*goldap.Entry{team(teamGUID, attr("member", aliceDN, "<GUID=0a0b>;CN=Bob"))},
			wantText: []string{"group " + teamDN, `member value`, `"<GUID=0a0b>;CN=Bob"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := fakeSource(t, nil)
			canned := cannedClient{entries: map[string][]*goldap.Entry{usersBase: tc.users, groupsBase: tc.groups}}
			src.dial = func(context.Context) (goldap.Client, error) { return canned, nil }
			snap, err := src.Fetch(context.Background())
			if tc.wantText == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				want := []sources.Group{{ID: "0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d", Name: "team", Members: []string{"11111111-2222-3333-4444-555555555555"}}}
				if len(snap.Users) != 1 || !reflect.DeepEqual(snap.Groups, want) || len(snap.Skipped) != 0 {
					t.Errorf("got users %+v, groups %+v, skipped %v; want alice in team and nothing skipped", snap.Users, snap.Groups, snap.Skipped)
				}
				return
			}
			if err == nil {
				t.Fatalf("Fetch returned %d users, %d groups and skipped %v, want an error", len(snap.Users), len(snap.Groups), snap.Skipped)
			}
			if snap != nil {
				t.Errorf("Fetch returned a snapshot with its error %v", err)
			}
			t.Logf("error: %v", err)
			for _, want := range append(tc.wantText, "ldap://dc.corp.example") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
