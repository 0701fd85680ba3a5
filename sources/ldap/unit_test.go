package ldap

import (
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/ptsync/ptsync/sources"
	"go.uber.org/zap"
)

func TestFormatGUID(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte
		want  string
	}{
		{
			// The first three fields are little-endian, the rest in order,
			// as AD tools show an objectGUID.
			name:  "mixed-endian layout",
			bytes: []byte{0xa5, 0xd4, 0xb7, 0xd1, 0x52, 0x6b, 0x32, 0x4f, 0x8c, 0x8b, 0x7a, 0x6d, 0x4c, 0x1a, 0x2b, 0x3e},
			want:  "d1b7d4a5-6b52-4f32-8c8b-7a6d4c1a2b3e",
		},
		{
			name:  "leading zeros kept",
			bytes: []byte{1, 0, 0, 0, 2, 0, 3, 0, 0, 4, 0, 0, 0, 0, 0, 5},
			want:  "00000001-0002-0003-0004-000000000005",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := formatGUID(tc.bytes)
			if err != nil || got != tc.want {
				t.Fatalf("formatGUID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, n := range []int{0, 15, 17, 36} {
		if got, err := formatGUID(make([]byte, n)); err == nil {
			t.Errorf("formatGUID of %d bytes = %q, want an error", n, got)
		}
	}
}

func TestNormDN(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"case of types and values", "UID=Alice,OU=People,DC=Example,DC=com", "uid=alice,ou=people,dc=example,dc=com", true},
		{"spaces after commas", "uid=alice, ou=people, dc=example, dc=com", "uid=alice,ou=people,dc=example,dc=com", true},
		{"spaces around equals", "uid = alice,ou=people", "uid=alice,ou=people", true},
		{"spaces inside a value count", "cn=Jo Smith,ou=people", "cn=josmith,ou=people", false},
		{"hex and backslash escapes", `cn=Smith\2C Jo,ou=people`, `cn=smith\, jo,ou=people`, true},
		{"escaped backslash", `uid=st*r(x)\5Cy,ou=people`, `uid=st*r(x)\\y,ou=people`, true},
		{"multi-valued RDN order", "cn=Jo+uid=jo,ou=people", "uid=jo+cn=jo,ou=people", true},
		{"different value", "uid=alice,ou=people", "uid=alice2,ou=people", false},
		{"different depth", "uid=alice,ou=people", "uid=alice,ou=people,dc=example", false},
		{"a comma in a value is not a separator", `cn=a\,ou=b,dc=c`, "cn=a,ou=b,dc=c", false},
		{"non-ASCII case", "cn=Ärger,dc=example", "cn=ärger,dc=example", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			na, err := normDN(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			nb, err := normDN(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (na == nb) != tc.same {
				t.Errorf("normDN(%q) = %q, normDN(%q) = %q; same = %t, want %t", tc.a, na, tc.b, nb, na == nb, tc.same)
			}
		})
	}
	for _, bad := range []string{"uid", "uid=a,,dc=x", "=a"} {
		if got, err := normDN(bad); err == nil {
			t.Errorf("normDN(%q) = %q, want an error", bad, got)
		}
	}
}

// TestNormDNFastPath checks that DNs taking the no-parse path normalise
// exactly as parsed ones do.
func TestNormDNFastPath(t *testing.T) {
	for _, dn := range []string{
		"uid=alice,ou=people,dc=example,dc=com",
		"CN=Jo Smith,OU=People,DC=Example",
		"cn=o'brien (ops),ou=x-y_z.w,dc=example",
		"cn=,dc=example",
		"mail=jo@example.com,dc=example",
	} {
		if !isPlainDN(dn) {
			t.Errorf("isPlainDN(%q) = false, want true", dn)
			continue
		}
		parsed, err := goldap.ParseDN(dn)
		if err != nil {
			t.Fatal(err)
		}
		var rdns []string
		for _, rdn := range parsed.RDNs {
			a := rdn.Attributes[0]
			rdns = append(rdns, strings.ToLower(a.Type)+"="+goldap.EscapeDN(strings.ToLower(a.Value)))
		}
		if got, want := strings.ToLower(dn), strings.Join(rdns, ","); got != want {
			t.Errorf("fast path gives %q, parsing gives %q", got, want)
		}
	}
	for _, dn := range []string{"cn=a ,dc=x", "cn= a,dc=x", "cn=a+uid=b,dc=x", `cn=a\,b,dc=x`, "cn=a,dc", " cn=a", "cn=a=b", "cn=#04", "cn=é"} {
		if isPlainDN(dn) {
			t.Errorf("isPlainDN(%q) = true, want false", dn)
		}
	}
}

func TestStripNameUID(t *testing.T) {
	tests := map[string]string{
		"uid=a,dc=x#'0101'B": "uid=a,dc=x",
		"uid=a,dc=x#''B":     "uid=a,dc=x",
		"uid=a,dc=x":         "uid=a,dc=x",
		"uid=a#b,dc=x":       "uid=a#b,dc=x",
		"uid=a,dc=x#'012'B":  "uid=a,dc=x#'012'B",
		`uid=a\#'1'B`:        `uid=a\#'1'B`,
	}
	for in, want := range tests {
		if got := stripNameUID(in); got != want {
			t.Errorf("stripNameUID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseRangedAttr(t *testing.T) {
	tests := []struct {
		desc     string
		attr     string
		r        valueRange
		ranged   bool
		wantsErr bool
	}{
		{desc: "member", attr: "member"},
		{desc: "member;range=0-1499", attr: "member", r: valueRange{0, 1499}, ranged: true},
		{desc: "member;Range=1500-*", attr: "member", r: valueRange{1500, -1}, ranged: true},
		{desc: "member;binary", attr: "member"},
		{desc: "member;range=10-5", wantsErr: true},
		{desc: "member;range=x-5", wantsErr: true},
		{desc: "member;range=5", wantsErr: true},
	}
	for _, tc := range tests {
		attr, r, ranged, err := parseRangedAttr(tc.desc)
		if tc.wantsErr {
			if err == nil {
				t.Errorf("parseRangedAttr(%q): no error", tc.desc)
			}
			continue
		}
		if err != nil || attr != tc.attr || r != tc.r || ranged != tc.ranged {
			t.Errorf("parseRangedAttr(%q) = %q, %+v, %t, %v; want %q, %+v, %t", tc.desc, attr, r, ranged, err, tc.attr, tc.r, tc.ranged)
		}
	}
}

func TestDisabledByUAC(t *testing.T) {
	tests := map[string]bool{"512": false, "514": true, "66050": true, "66048": false, "2": true}
	for v, want := range tests {
		if got, err := disabledByUAC(v); err != nil || got != want {
			t.Errorf("disabledByUAC(%q) = %t, %v; want %t", v, got, err, want)
		}
	}
	if _, err := disabledByUAC("enabled"); err == nil {
		t.Error("disabledByUAC(enabled): no error")
	}
}

func TestInChainFilterEscapesTheDNOnce(t *testing.T) {
	got := inChainFilter(`CN=Ops (*) \5C Team,OU=Groups,DC=corp`)
	want := `(memberOf:1.2.840.113556.1.4.1941:=CN=Ops \28\2a\29 \5c5C Team,OU=Groups,DC=corp)`
	if got != want {
		t.Fatalf("inChainFilter = %s\nwant %s", got, want)
	}
	if _, err := goldap.CompileFilter(got); err != nil {
		t.Fatalf("the filter does not compile: %v", err)
	}
}

func TestDomainRoot(t *testing.T) {
	tests := []struct {
		name, dn, want string
	}{
		{"an OU", "OU=People,DC=corp,DC=example", "DC=corp,DC=example"},
		{"the domain itself", "DC=corp,DC=example", "DC=corp,DC=example"},
		{"a child domain", "CN=Users,DC=emea,DC=corp,DC=example", "DC=emea,DC=corp,DC=example"},
		{"DC= components inside the domain (a DNS zone)", "DC=host,CN=MicrosoftDNS,CN=System,DC=corp,DC=example", "DC=corp,DC=example"},
		{"lower case and spaces", "ou=people, dc=corp, dc=example", "dc=corp,dc=example"},
		{"escaped value", `OU=x,DC=a\,b,DC=example`, `DC=a\,b,DC=example`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domainRoot(tt.dn)
			if err != nil || got != tt.want {
				t.Fatalf("domainRoot(%q) = %q, %v; want %q", tt.dn, got, err, tt.want)
			}
		})
	}
	for _, dn := range []string{"ou=people,o=corp", "DC=corp,OU=x", "not a DN"} {
		if got, err := domainRoot(dn); err == nil {
			t.Errorf("domainRoot(%q) = %q, want an error", dn, got)
		}
	}
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"ou=people,dc=example": "ou=people,dc=example",
		"(objectClass=*)":      "'(objectClass=*)'",
		"it's":                 `'it'\''s'`,
		"":                     "''",
		"cn=Jo Smith":          "'cn=Jo Smith'",
	}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		// vals: user id, filter and uid attributes, group id, filter and
		// member attributes.
		vals []string
	}{
		{
			name: "OpenLDAP",
			vals: []string{"entryUUID", "(objectClass=inetOrgPerson)", "uid", "entryUUID", "(objectClass=groupOfNames)", "member"},
		},
		{
			name: "OpenLDAP posixGroup",
			edit: func(c *Config) { c.Groups.MemberAttribute = "memberuid" },
			vals: []string{"entryUUID", "(objectClass=inetOrgPerson)", "uid", "entryUUID", "(objectClass=posixGroup)", "memberUid"},
		},
		{
			name: "Active Directory",
			edit: func(c *Config) { c.ActiveDirectory = true },
			vals: []string{"objectGUID", "(&(objectCategory=person)(objectClass=user))", "sAMAccountName", "objectGUID", "(objectClass=group)", "member"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ldap://127.0.0.1", "ou=people,dc=x", "ou=groups,dc=x")
			if tc.edit != nil {
				tc.edit(cfg)
			}
			s, err := newSource("corp", cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			st := s.cfg
			got := []string{st.users.idAttr, st.users.filter, st.users.uidAttr, st.groups.idAttr, st.groups.filter, st.groups.memberAttr}
			if !slices.Equal(got, tc.vals) {
				t.Errorf("got %q\nwant %q", got, tc.vals)
			}
			if st.pageSize != 500 || st.timeout != 30*time.Second || st.groups.maxDepth != sources.DefaultMaxDepth || !st.groups.nested {
				t.Errorf("page size %d, timeout %s, max depth %d, nested %v; want the defaults", st.pageSize, st.timeout, st.groups.maxDepth, st.groups.nested)
			}
		})
	}
}

func TestConfigRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "ldap.url: is required"},
		{"http url", func(c *Config) { c.URL = "http://x" }, "ldap:// or ldaps://"},
		{"StartTLS on ldaps", func(c *Config) { c.URL, c.StartTLS = "ldaps://x", true }, "ldap.start_tls"},
		{"no user base", func(c *Config) { c.Users.BaseDN = "" }, "ldap.users.base_dn: is required"},
		{"bad scope", func(c *Config) { c.Users.Scope = "deep" }, "ldap.users.scope"},
		{"bad filter", func(c *Config) { c.Users.Filter = "(uid=a" }, "ldap.users.filter"},
		{"in_chain with memberUid", func(c *Config) {
			c.ActiveDirectory, c.Groups.InChain, c.Groups.MemberAttribute = true, true, "memberUid"
		}, "ldap.groups.in_chain: needs DN members"},
		{"in_chain with a base DN in no domain", func(c *Config) {
			c.ActiveDirectory, c.Groups.InChain, c.Users.BaseDN = true, true, "ou=people,o=corp"
		}, "ldap.users.base_dn"},
		{"negative page size", func(c *Config) { c.PageSize = -1 }, "ldap.page_size"},
		{"bind_dn without a password", func(c *Config) { c.BindDN = "cn=reader,dc=x" }, "ldap.bind_password: is required when bind_dn is set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ldap://x", "dc=x", "dc=x")
			tc.edit(cfg)
			_, err := newSource("corp", cfg, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// testConfig is the defaults with the url and both search bases set.
func testConfig(url, usersBase, groupsBase string) *Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Users.BaseDN, cfg.Groups.BaseDN = usersBase, groupsBase
	return cfg
}

func TestNewNeedsTheLDAPBlock(t *testing.T) {
	_, err := New("corp", nil, sources.Options{})
	if err == nil || !strings.Contains(err.Error(), `source "corp"`) {
		t.Fatalf("New without an ldap block: %v", err)
	}
	src, err := New("corp", testConfig("ldap://127.0.0.1:1", "dc=x", "dc=x"), sources.Options{Log: zap.NewNop()})
	if err != nil || src.Name() != "corp" {
		t.Fatalf("New = %v, %v", src, err)
	}
}

func TestDirSyncScope(t *testing.T) {
	const base = "OU=Team,DC=corp,DC=example"
	tests := []struct {
		scope int
		dn    string
		holds bool
		// holdsChild: an entry whose parent is dn is in the search.
		holdsChild bool
	}{
		{goldap.ScopeWholeSubtree, base, true, true},
		{goldap.ScopeWholeSubtree, "CN=a,ou=team,dc=corp,dc=example", true, true},
		{goldap.ScopeWholeSubtree, "CN=a,OU=Other,DC=corp,DC=example", false, false},
		{goldap.ScopeWholeSubtree, "DC=corp,DC=example", false, false},
		{goldap.ScopeSingleLevel, base, false, true},
		{goldap.ScopeSingleLevel, "CN=a," + base, true, false},
		{goldap.ScopeSingleLevel, "CN=a,OU=Sub," + base, false, false},
		{goldap.ScopeBaseObject, base, true, false},
		{goldap.ScopeBaseObject, "CN=a," + base, false, false},
		{goldap.ScopeBaseObject, "DC=corp,DC=example", false, true},
	}
	for _, tc := range tests {
		parsedBase, err := goldap.ParseDN(base)
		if err != nil {
			t.Fatal(err)
		}
		search := &dirSyncSearch{base: parsedBase, scope: tc.scope}
		dn, err := goldap.ParseDN(tc.dn)
		if err != nil {
			t.Fatal(err)
		}
		if got := search.holds(dn); got != tc.holds {
			t.Errorf("scope %s: holds(%s) = %v, want %v", scopeName(tc.scope), tc.dn, got, tc.holds)
		}
		if got := search.holdsChildOf(dn); got != tc.holdsChild {
			t.Errorf("scope %s: holdsChildOf(%s) = %v, want %v", scopeName(tc.scope), tc.dn, got, tc.holdsChild)
		}
	}
}
