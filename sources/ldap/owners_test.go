package ldap

// Group owners (groups.owner_attribute): configuration, resolution against
// a real slapd and a real Samba AD DC, and ranged retrieval against the
// fake AD of range_test.go.

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/testenv/samba"
	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
)

func TestValidAttributeType(t *testing.T) {
	for _, ok := range []string{"owner", "managedBy", "msExchCoManagedByLink", "x-owner-2", "O", "2.5.4.32", "1.3.6.1.4.1.0.10", "2.5"} {
		if !validAttributeType(ok) {
			t.Errorf("validAttributeType(%q) = false, want true", ok)
		}
	}
	for _, bad := range []string{"", "owner;range=0-*", "owner;binary", "managed by", "1owner", "-owner", "owner_dn", "2.5.", ".2.5", "2..5", "2.05.4", "25", "ownér", " owner"} {
		if validAttributeType(bad) {
			t.Errorf("validAttributeType(%q) = true, want false", bad)
		}
	}
}

func TestConfigOwnerAttribute(t *testing.T) {
	cfg := testConfig("ldap://x", "dc=x", "dc=x")
	if cfg.Groups.OwnerAttribute != "" {
		t.Fatalf("owner_attribute defaults to %q, want empty (owners not read)", cfg.Groups.OwnerAttribute)
	}
	s, err := newSource("corp", cfg, zap.NewNop())
	if err != nil || s.cfg.groups.ownerAttr != "" {
		t.Fatalf("default source: ownerAttr %q, %v", s.cfg.groups.ownerAttr, err)
	}
	cfg = testConfig("ldap://x", "dc=x", "dc=x")
	cfg.Groups.OwnerAttribute = "  managedBy "
	if s, err = newSource("corp", cfg, zap.NewNop()); err != nil || s.cfg.groups.ownerAttr != "managedBy" {
		t.Fatalf("owner_attribute %q: ownerAttr %q, %v; want managedBy", cfg.Groups.OwnerAttribute, s.cfg.groups.ownerAttr, err)
	}

	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"an option", func(c *Config) { c.Groups.OwnerAttribute = "owner;range=0-*" }, `ldap.groups.owner_attribute: must be an attribute name such as owner or managedBy (letters, digits and -, or a numeric OID; no options), got "owner;range=0-*"`},
		{"a space", func(c *Config) { c.Groups.OwnerAttribute = "managed by" }, `ldap.groups.owner_attribute: must be an attribute name`},
		{"a filter", func(c *Config) { c.Groups.OwnerAttribute = "(owner=*)" }, `ldap.groups.owner_attribute: must be an attribute name`},
		{"the member attribute", func(c *Config) { c.Groups.OwnerAttribute = "Member" }, "ldap.groups.owner_attribute: must differ from member_attribute (member)"},
		{"the memberUid attribute", func(c *Config) {
			c.Groups.MemberAttribute, c.Groups.OwnerAttribute = "memberUid", "memberuid"
		}, "ldap.groups.owner_attribute: must differ from member_attribute (memberUid)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ldap://x", "dc=x", "dc=x")
			tc.edit(cfg)
			_, err := newSource("corp", cfg, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestConfigOwnerAttributeInFile loads the key from YAML as ptsync does:
// a bad value is a problem naming the file, the line and the key.
func TestConfigOwnerAttributeInFile(t *testing.T) {
	types := config.SourceTypes{"ldap": func() config.SourceSettings { return DefaultConfig() }}
	file := func(owner string) []byte {
		return fmt.Appendf(nil, `pagertree:
  username: ptsync@example.com
  password: hunter2
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldap://ldap.example.com
      active_directory: true
      users:
        base_dn: ou=people,dc=example,dc=com
      groups:
        base_dn: ou=groups,dc=example,dc=com
        owner_attribute: %s
teams:
  - source: corp
    match: "oncall-*"
`, owner)
	}
	cfg, err := config.Parse(file("managedBy"), "ptsync.yaml", func(string) (string, bool) { return "", false }, types)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := cfg.Sources[0].Settings.(*Config).Groups.OwnerAttribute; got != "managedBy" {
		t.Errorf("owner_attribute = %q, want managedBy", got)
	}

	for value, want := range map[string]string{
		`"managedBy;range=0-*"`: `ptsync.yaml:14: sources[0].ldap.groups.owner_attribute: must be an attribute name such as owner or managedBy`,
		`member`:                `ptsync.yaml:14: sources[0].ldap.groups.owner_attribute: must differ from member_attribute (member)`,
		`[owner]`:               `ptsync.yaml:14: sources[0].ldap.groups.owner_attribute:`,
	} {
		_, err := config.Parse(file(value), "ptsync.yaml", func(string) (string, bool) { return "", false }, types)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("owner_attribute: %s: error = %v, want one problem starting %q", value, err, want)
		}
	}
}

// A v4 rule that makes owners admins over an LDAP source that reads none
// is a config error, not a team silently without admins.
func TestAdminsFromOwnersNeedsOwnerAttribute(t *testing.T) {
	types := config.SourceTypes{"ldap": func() config.SourceSettings { return DefaultConfig() }}
	file := func(ownerLine string) []byte {
		return fmt.Appendf(nil, `pagertree:
  api: v4
  api_key: k
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldap://ldap.example.com
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com"%s}
teams:
  - {source: corp, match: "oncall-*", admins_from_owners: true}
`, ownerLine)
	}
	noEnv := func(string) (string, bool) { return "", false }
	_, err := config.Parse(file(""), "ptsync.yaml", noEnv, types)
	want := `ptsync.yaml:12: teams[0].admins_from_owners: source "corp" reports no group owners: set its groups.owner_attribute (owner on OpenLDAP, managedBy on Active Directory)`
	if err == nil || err.Error() != want {
		t.Errorf("without owner_attribute: error = %v, want %q", err, want)
	}
	if _, err := config.Parse(file(", owner_attribute: owner"), "ptsync.yaml", noEnv, types); err != nil {
		t.Errorf("with owner_attribute: %v", err)
	}
}

// attrRecorder records the attributes every search of a source's
// connections asked for, by base DN.
type attrRecorder struct {
	mu       sync.Mutex
	searches []fakeSearch
}

type attrRecordingClient struct {
	goldap.Client
	rec *attrRecorder
}

func (c *attrRecordingClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	c.rec.mu.Lock()
	c.rec.searches = append(c.rec.searches, fakeSearch{base: req.BaseDN, attrs: slices.Clone(req.Attributes)})
	c.rec.mu.Unlock()
	return c.Client.Search(req)
}

func recordAttrs(s *Source) *attrRecorder {
	rec := &attrRecorder{}
	dial := s.dial
	s.dial = func(ctx context.Context) (goldap.Client, error) {
		conn, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		return &attrRecordingClient{Client: conn, rec: rec}, nil
	}
	return rec
}

// asked reports whether any search based at base asked for attr.
func (r *attrRecorder) asked(base, attr string) bool {
	for _, s := range r.searches {
		if strings.EqualFold(s.base, base) && slices.ContainsFunc(s.attrs, func(a string) bool { return strings.EqualFold(a, attr) }) {
			return true
		}
	}
	return false
}

// ownersLDIF adds groups with owners to membershipLDIF's directory, in
// each schema of a member attribute. Owners of oncall-owned: alice (with
// odd case and spaces), bob (not a member), alice2 (alice's email: the
// same person), dave (no email), outsider (outside ou=people), ghost (no
// such entry) and the group parent.
const ownersLDIF = membershipLDIF + `dn: cn=oncall-owned,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: oncall-owned
member: uid=carol,ou=people,dc=example,dc=com
owner: UID=Alice, OU=People, DC=Example, DC=Com
owner: uid=bob,ou=people,dc=example,dc=com
owner: uid=alice2,ou=people,dc=example,dc=com
owner: uid=dave,ou=people,dc=example,dc=com
owner: uid=outsider,ou=other,dc=example,dc=com
owner: uid=ghost,ou=people,dc=example,dc=com
owner: cn=parent,ou=groups,dc=example,dc=com

dn: cn=oncall-web-owned,ou=groups,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: oncall-web-owned
uniqueMember: uid=alice,ou=people,dc=example,dc=com#'0101'B
owner: uid=carol,ou=people,dc=example,dc=com
owner: uid=ghost,ou=people,dc=example,dc=com

dn: cn=oncall-ops-owned,ou=groups,dc=example,dc=com
objectClass: posixGroup
objectClass: extensibleObject
cn: oncall-ops-owned
gidNumber: 5001
memberUid: bob
owner: uid=carol,ou=people,dc=example,dc=com
uid: ALICE
uid: dave
uid: nobody

`

func TestSlapdGroupOwners(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: ownersLDIF})
	tests := []struct {
		name string
		edit func(*Config)
		// wantOwners are the owners' emails by group; a group not listed
		// must have none. wantMembers are the members of the owned groups.
		wantOwners  map[string][]string
		wantMembers map[string][]string
		wantSkipped map[string]int
	}{
		{
			name: "owner DNs of groupOfNames",
			edit: func(c *Config) { c.Groups.OwnerAttribute = "owner" },
			wantOwners: map[string][]string{
				"oncall-owned": {"alice@example.com", "bob@example.com"},
			},
			wantMembers: map[string][]string{"oncall-owned": {"carol@example.com"}},
			// outsider and ghost are members of oncall-db outside the
			// search (outside_scope) and owners of oncall-owned outside it
			// (owner_outside_scope) with the group parent.
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 2, skipOwnerOutsideScope: 3},
		},
		{
			name: "owner DNs of groupOfUniqueNames",
			edit: func(c *Config) { c.Groups.MemberAttribute, c.Groups.OwnerAttribute = "uniqueMember", "owner" },
			wantOwners: map[string][]string{
				"oncall-web-owned": {"carol@example.com"},
			},
			wantMembers: map[string][]string{"oncall-web-owned": {"alice@example.com"}},
			// ghost: a member of oncall-web and an owner of oncall-web-owned.
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 1, skipOwnerOutsideScope: 1},
		},
		{
			name: "owner DNs of a posixGroup",
			edit: func(c *Config) { c.Groups.MemberAttribute, c.Groups.OwnerAttribute = "memberUid", "owner" },
			wantOwners: map[string][]string{
				"oncall-ops-owned": {"carol@example.com"},
			},
			wantMembers: map[string][]string{"oncall-ops-owned": {"bob@example.com"}},
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 1},
		},
		{
			name: "login-name owners beside memberUid",
			edit: func(c *Config) { c.Groups.MemberAttribute, c.Groups.OwnerAttribute = "memberUid", "uid" },
			wantOwners: map[string][]string{
				"oncall-ops-owned": {"alice@example.com"},
			},
			wantMembers: map[string][]string{"oncall-ops-owned": {"bob@example.com"}},
			// nobody: a member of oncall-ops and an owner of
			// oncall-ops-owned that no user has; dave has no email.
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 1, skipOwnerOutsideScope: 1},
		},
		{
			name: "not configured",
			wantMembers: map[string][]string{
				"oncall-owned": {"carol@example.com"},
			},
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := slapdSource(t, srv, nil, tc.edit)
			rec := recordAttrs(src)
			snap := fetch(t, src)

			owners := map[string][]string{}
			for _, g := range snap.Groups {
				if g.Owners == nil {
					continue
				}
				if !slices.IsSorted(g.Owners) {
					t.Errorf("group %s: owners %q are not sorted", g.Name, g.Owners)
				}
				var emails []string
				for _, id := range g.Owners {
					u, ok := snap.Users[id]
					if !ok {
						t.Fatalf("group %s lists owner %q that is not in Users", g.Name, id)
					}
					emails = append(emails, strings.ToLower(u.Email))
				}
				slices.Sort(emails)
				owners[g.Name] = emails
			}
			if !equalMaps(owners, tc.wantOwners, slices.Equal) {
				t.Errorf("owners = %v\nwant %v", owners, tc.wantOwners)
			}
			members := memberEmails(t, snap)
			for g, want := range tc.wantMembers {
				if got := members[g]; !slices.Equal(got, want) {
					t.Errorf("members of %s = %v, want %v: owners are not members", g, got, want)
				}
			}
			if !maps.Equal(snap.Skipped, tc.wantSkipped) {
				t.Errorf("Skipped = %v, want %v", snap.Skipped, tc.wantSkipped)
			}
			attr := src.cfg.groups.ownerAttr
			if attr == "" {
				attr = "owner"
			}
			if asked, want := rec.asked(slapd.GroupsDN, attr), src.cfg.groups.ownerAttr != ""; asked != want {
				t.Errorf("the group search asked for %s: %t, want %t", attr, asked, want)
			}
			if rec.asked(slapd.PeopleDN, "owner") {
				t.Error("the user search asked for owner")
			}
		})
	}
}

// TestSlapdOwnerThatIsNoDN: an owner value that is not a DN, where owners
// are DNs, fails the fetch as a member value would: the owner could be a
// user of the search.
func TestSlapdOwnerThatIsNoDN(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	src := slapdSource(t, srv, nil, func(c *Config) {
		c.Groups.OwnerAttribute = "description" // oncall-db's is "database on-call"
	})
	snap, err := src.Fetch(context.Background())
	if err == nil || snap != nil {
		t.Fatalf("Fetch = %v, %v; want an error and no snapshot", snap, err)
	}
	for _, want := range []string{srv.URL, "cn=oncall-db,ou=groups,dc=example,dc=com", "a description value (groups.owner_attribute)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

// TestRangeRetrievalReadsWholeOwnerLists: a multi-valued owner attribute
// (Exchange's msExchCoManagedByLink) past AD's MaxValRange is read in
// ranges like member, each attribute on its own.
func TestRangeRetrievalReadsWholeOwnerLists(t *testing.T) {
	const attr = "msExchCoManagedByLink"
	group := "CN=oncall,OU=Groups," + fakeBase
	f, members := fakeDirectory(t, 1500, 4000, 1600)
	var ownerDNs, wantOwners []string
	for i := 100; i < 3200; i++ {
		ownerDNs = append(ownerDNs, fmt.Sprintf("CN=User %05d,OU=People,%s", i, fakeBase))
	}
	ownerDNs = append(ownerDNs, "CN=Gone,OU=People,"+fakeBase, group)
	g := f.entries[len(f.entries)-1]
	for _, dn := range ownerDNs {
		g.attrs[strings.ToLower(attr)] = append(g.attrs[strings.ToLower(attr)], []byte(dn))
	}
	g.names[strings.ToLower(attr)] = attr
	snap, err := fakeSource(t, f, func(c *Config) { c.Groups.OwnerAttribute = attr }).Fetch(context.Background())
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	ids := map[string]string{} // mail -> id
	for id, u := range snap.Users {
		ids[u.Email] = id
	}
	for i := 100; i < 3200; i++ {
		wantOwners = append(wantOwners, ids[fmt.Sprintf("user%05d@corp.example", i)])
	}
	slices.Sort(wantOwners)
	if len(snap.Groups) != 1 {
		t.Fatalf("got %d groups, want 1", len(snap.Groups))
	}
	if got := snap.Groups[0].Owners; !slices.Equal(got, wantOwners) {
		t.Errorf("got %d owners, want %d (first missing: %q)", len(got), len(wantOwners), firstMissing(wantOwners, got))
	}
	if got := snap.Groups[0].Members; !slices.Equal(got, slices.Sorted(slices.Values(members))) {
		t.Errorf("got %d members, want %d", len(got), len(members))
	}
	wantRanges := []string{
		group + " member;range=1500-*",
		group + " " + attr + ";range=1500-*",
		group + " " + attr + ";range=3000-*",
	}
	if got := f.rangeRequests(); !slices.Equal(got, wantRanges) {
		t.Errorf("range requests:\n got %q\nwant %q", got, wantRanges)
	}
	if want := map[string]int{skipOwnerOutsideScope: 2}; !maps.Equal(snap.Skipped, want) {
		t.Errorf("Skipped = %v, want %v", snap.Skipped, want)
	}
}

// TestADGroupManagedBy reads AD's single-valued managedBy from a real
// Samba DC: a user, a user outside the user search, a group, or nobody.
func TestADGroupManagedBy(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	ou := adOU(t, admin, "adowners")
	elsewhere := adOU(t, admin, "adowners-elsewhere")
	user := func(ou, sam string) string {
		return adAddUser(t, admin, ou, adUser{sam: sam, mail: sam + "@ad.test", uac: "544"})
	}
	lead, member, outsider := user(ou, "own-lead"), user(ou, "own-member"), user(elsewhere, "own-outsider")
	managed := func(name, managedBy string, members ...string) string {
		dn := "CN=" + name + "," + ou
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"group"})
		add.Attribute("sAMAccountName", []string{name})
		add.Attribute("member", members)
		if managedBy != "" {
			add.Attribute("managedBy", []string{managedBy})
		}
		if err := admin.Add(add); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
		return dn
	}
	byLead := managed("own-by-lead", lead, member)
	managed("own-by-group", byLead, member)
	managed("own-by-outsider", outsider, member)
	managed("own-by-nobody", "", member)

	leadID, memberID := adGUID(t, dc, "user", "own-lead"), adGUID(t, dc, "user", "own-member")
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"member values", func(c *Config) { c.Groups.OwnerAttribute = "managedBy" }},
		{"in chain", func(c *Config) { c.Groups.OwnerAttribute, c.Groups.Nested, c.Groups.InChain = "managedBy", true, true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := adSource(t, dc, ou, tc.edit)
			snap := adFetch(t, s)
			owners, members := map[string][]string{}, map[string][]string{}
			for _, g := range snap.Groups {
				owners[g.Name], members[g.Name] = g.Owners, g.Members
			}
			wantOwners := map[string][]string{"own-by-lead": {leadID}, "own-by-group": nil, "own-by-outsider": nil, "own-by-nobody": nil}
			if !reflect.DeepEqual(owners, wantOwners) {
				t.Errorf("owners by group:\n got %v\nwant %v", owners, wantOwners)
			}
			for name, got := range members {
				if !slices.Equal(got, []string{memberID}) {
					t.Errorf("members of %s = %v, want only own-member %s: owners are not members", name, got, memberID)
				}
			}
			// The outsider and the group own a group each.
			if want := map[string]int{skipOwnerOutsideScope: 2}; !maps.Equal(snap.Skipped, want) {
				t.Errorf("skipped %v, want %v", snap.Skipped, want)
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		s, _ := adSource(t, dc, ou, nil)
		rec := recordAttrs(s)
		snap := adFetch(t, s)
		for _, g := range snap.Groups {
			if g.Owners != nil {
				t.Errorf("group %s has owners %v without owner_attribute", g.Name, g.Owners)
			}
		}
		if rec.asked(ou, "managedBy") {
			t.Error("the group search asked for managedBy without owner_attribute")
		}
	})
}
