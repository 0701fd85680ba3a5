package ldap

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
)

// A forest of two slapds: the home server holds alice and bob and refers
// ou=east (of people and of groups) to a second server holding e1, e2 and
// the group east-oncall. The home group oncall has alice, bob and e1.
const (
	eastPeopleDN = "ou=east," + slapd.PeopleDN
	eastGroupsDN = "ou=east," + slapd.GroupsDN
)

func personLDIF(uid, parent string) string {
	return fmt.Sprintf("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nmail: %s@example.com\n\n", uid, parent, uid, uid, uid, uid)
}

func ouLDIF(dn string) string {
	ou, _, _ := strings.Cut(strings.TrimPrefix(dn, "ou="), ",")
	return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\nou: %s\n\n", dn, ou)
}

var (
	homeLDIF = personLDIF("alice", slapd.PeopleDN) + personLDIF("bob", slapd.PeopleDN) +
		"dn: cn=oncall," + slapd.GroupsDN + "\nobjectClass: groupOfNames\ncn: oncall\n" +
		"member: uid=alice," + slapd.PeopleDN + "\nmember: uid=bob," + slapd.PeopleDN + "\nmember: uid=e1," + eastPeopleDN + "\n\n"
	eastLDIF = ouLDIF(eastPeopleDN) + personLDIF("e1", eastPeopleDN) + personLDIF("e2", eastPeopleDN) +
		ouLDIF(eastGroupsDN) +
		"dn: cn=east-oncall," + eastGroupsDN + "\nobjectClass: groupOfNames\ncn: east-oncall\n" +
		"member: uid=e2," + eastPeopleDN + "\n\n"
)

// forest starts the east server (with opts) and the home server, which
// refers ou=east of people and of groups to it.
func forest(t *testing.T, eastOpts slapd.Options) (home, east *slapd.Server) {
	t.Helper()
	eastOpts.LDIF = eastLDIF + eastOpts.LDIF
	east = slapd.Start(t, eastOpts)
	home = slapd.Start(t, slapd.Options{LDIF: homeLDIF})
	home.AddReferral(t, eastPeopleDN, east.URL+"/"+eastPeopleDN)
	home.AddReferral(t, eastGroupsDN, east.URL+"/"+eastGroupsDN)
	return home, east
}

func TestSlapdReferralsFailByDefault(t *testing.T) {
	// References in the user search only: the two searches run at once,
	// and either failing first ends the fetch.
	east := slapd.Start(t, slapd.Options{LDIF: eastLDIF})
	home := slapd.Start(t, slapd.Options{LDIF: homeLDIF})
	home.AddReferral(t, eastPeopleDN, east.URL+"/"+eastPeopleDN)
	home.AddReferral(t, "ou=west,"+slapd.PeopleDN, east.URL+"/ou=west,"+slapd.PeopleDN)
	src := slapdSource(t, home, nil, nil)
	if src.cfg.referrals != "fail" {
		t.Fatalf("referrals = %q by default, want fail", src.cfg.referrals)
	}
	snap, err := src.Fetch(context.Background())
	if err == nil {
		t.Fatalf("Fetch returned %d users, want an error for the references", len(snap.Users))
	}
	if snap != nil {
		t.Error("Fetch returned a snapshot with its error")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{
		home.URL, `(base "` + slapd.PeopleDN + `"): search users`, "2 search continuation reference(s)",
		`"` + east.URL + "/" + eastPeopleDN + `??sub"`,
		`"` + east.URL + "/ou=west," + slapd.PeopleDN + `??sub"`,
		"ldap.referrals to follow", "or ignore",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q", want)
		}
	}
}

// TestReferralErrorListsReferences: slapd drops a reference it cannot
// parse, userinfo and all, so a fake server sends these.
func TestReferralErrorListsReferences(t *testing.T) {
	refs := []string{"ldap://admin:hunter2@east.example/dc=east"}
	for i := range 6 {
		refs = append(refs, fmt.Sprintf("ldap://dc%d.example/dc=d%d", i, i))
	}
	cfg := testConfig("ldap://dc.corp.example", "OU=People,DC=corp", "OU=Groups,DC=corp")
	cfg.Users.IDAttribute = "objectGUID"
	s, err := newSource("corp", cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.dial = func(context.Context) (goldap.Client, error) { return referringClient{refs: refs}, nil }
	_, err = s.Fetch(context.Background())
	if err == nil {
		t.Fatal("Fetch succeeded, want an error for the references")
	}
	// Both searches get the references; either may fail the fetch first.
	want := `: the server returned 7 search continuation reference(s) to entries it does not hold: "ldap://east.example/dc=east", ` +
		`"ldap://dc0.example/dc=d0", "ldap://dc1.example/dc=d1", "ldap://dc2.example/dc=d2", "ldap://dc3.example/dc=d3" and 2 more; they would look deleted`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "admin") {
		t.Errorf("error %q shows the userinfo of a reference", err)
	}
}

func TestSlapdReferralsIgnore(t *testing.T) {
	home, east := forest(t, slapd.Options{})
	core, logs := observer.New(zapcore.WarnLevel)
	snap := fetch(t, slapdSource(t, home, zap.New(core), func(c *Config) { c.Referrals = "ignore" }))

	if got, want := userEmails(t, snap), []string{"alice@example.com", "bob@example.com"}; !slices.Equal(got, want) {
		t.Errorf("users %v, want %v", got, want)
	}
	// e1 is a member the user search did not return: outside its scope.
	if got, want := memberEmails(t, snap), map[string][]string{"oncall": {"alice@example.com", "bob@example.com"}}; !equalMaps(got, want, slices.Equal) {
		t.Errorf("members %v, want %v", got, want)
	}
	if want := map[string]int{skipReferral: 2, sources.SkipOutsideScope: 1}; !maps.Equal(snap.Skipped, want) {
		t.Errorf("skipped %v, want %v", snap.Skipped, want)
	}
	var warned []string
	for _, e := range logs.FilterMessageSnippet("ignoring a search continuation reference").All() {
		warned = append(warned, e.ContextMap()["reference"].(string))
	}
	slices.Sort(warned)
	if want := []string{east.URL + "/" + eastGroupsDN + "??sub", east.URL + "/" + eastPeopleDN + "??sub"}; !slices.Equal(warned, want) {
		t.Errorf("warned about %q, want one warning for each of %q", warned, want)
	}
}

// wantForest is what a fetch that follows the references reads.
func checkForest(t *testing.T, snap *sources.Snapshot) {
	t.Helper()
	if got, want := userEmails(t, snap), []string{"alice@example.com", "bob@example.com", "e1@example.com", "e2@example.com"}; !slices.Equal(got, want) {
		t.Errorf("users %v, want %v", got, want)
	}
	want := map[string][]string{
		"oncall":      {"alice@example.com", "bob@example.com", "e1@example.com"},
		"east-oncall": {"e2@example.com"},
	}
	if got := memberEmails(t, snap); !equalMaps(got, want, slices.Equal) {
		t.Errorf("members %v, want %v", got, want)
	}
	if len(snap.Skipped) != 0 {
		t.Errorf("skipped %v, want nothing", snap.Skipped)
	}
}

func TestSlapdReferralsFollow(t *testing.T) {
	home, _ := forest(t, slapd.Options{})
	checkForest(t, fetch(t, slapdSource(t, home, nil, func(c *Config) { c.Referrals = "follow" })))
}

// TestSlapdReferralsFollowKeepsTLS follows references from a StartTLS
// connection to a server that shows the reader nothing unless the
// connection is encrypted: the referred connection must use StartTLS too.
func TestSlapdReferralsFollowKeepsTLS(t *testing.T) {
	home, east := forest(t, slapd.Options{Access: []string{
		`access to * by ssf=128 dn.exact="` + slapd.ReaderDN + `" read by * none`,
	}})
	// One ca_file for both servers: each has a CA of its own.
	var bundle []byte
	for _, f := range []string{home.CAFile, east.CAFile} {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, pem...)
	}
	caFile := filepath.Join(t.TempDir(), "both.pem")
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	checkForest(t, fetch(t, slapdSource(t, home, nil, func(c *Config) {
		c.Referrals, c.StartTLS, c.CAFile = "follow", true, caFile
	})))

	// The same without TLS: the east server hides its subtree.
	_, err := slapdSource(t, home, nil, func(c *Config) { c.Referrals = "follow" }).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "follow search continuation reference") || !strings.Contains(err.Error(), east.URL) {
		t.Fatalf("Fetch in clear = %v, want the east server refusing the followed search", err)
	}
}

// TestSlapdReferralLoop follows a reference back to where the fetch
// started: each place is searched once, and nobody is read twice.
func TestSlapdReferralLoop(t *testing.T) {
	home, east := forest(t, slapd.Options{})
	east.AddReferral(t, "ou=back,"+eastPeopleDN, home.URL+"/"+slapd.PeopleDN)
	core, logs := observer.New(zapcore.DebugLevel)
	checkForest(t, fetch(t, slapdSource(t, home, zap.New(core), func(c *Config) { c.Referrals = "follow" })))
	if n := logs.FilterMessageSnippet("leads where the fetch searched already").Len(); n != 1 {
		t.Errorf("logged %d references to a place searched already, want 1", n)
	}
}

// TestSlapdReferralHops chains references through one server, ou=people
// to ou=h1, ou=h1 to ou=h2 and so on, the last OU holding a user: ten
// hops are followed, eleven are refused.
func TestSlapdReferralHops(t *testing.T) {
	for _, hops := range []int{maxReferralHops, maxReferralHops + 1} {
		t.Run(fmt.Sprint(hops), func(t *testing.T) {
			hop := func(k int) string { return fmt.Sprintf("ou=h%d,%s", k, slapd.Suffix) }
			var ldif strings.Builder
			for k := 1; k <= hops; k++ {
				ldif.WriteString(ouLDIF(hop(k)))
			}
			ldif.WriteString(personLDIF("far", hop(hops)))
			srv := slapd.Start(t, slapd.Options{LDIF: homeLDIF + ldif.String()})
			srv.AddReferral(t, "ou=next,"+slapd.PeopleDN, srv.URL+"/"+hop(1))
			for k := 1; k < hops; k++ {
				srv.AddReferral(t, "ou=next,"+hop(k), srv.URL+"/"+hop(k+1))
			}
			src := slapdSource(t, srv, nil, func(c *Config) { c.Referrals = "follow" })
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			snap, err := src.Fetch(ctx)
			if hops <= maxReferralHops {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if got, want := userEmails(t, snap), []string{"alice@example.com", "bob@example.com", "far@example.com"}; !slices.Equal(got, want) {
					t.Errorf("users %v, want %v", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Fetch returned %d users, want an error for the %d hops", len(snap.Users), hops)
			}
			want := fmt.Sprintf("search continuation reference %q is more than %d references away", srv.URL+"/"+hop(hops)+"??sub", maxReferralHops)
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "search users") {
				t.Errorf("error %q, want one saying %s", err, want)
			}
		})
	}
}

func TestReferredQuery(t *testing.T) {
	s := &Source{cfg: resolve(testConfig("ldaps://home.example:1636", "ou=people,dc=x", "ou=groups,dc=x"))}
	sub := query{what: "search users", base: "ou=people,dc=x", scope: goldap.ScopeWholeSubtree, filter: "(objectClass=person)", attrs: []string{"mail"}}
	one := sub
	one.scope = goldap.ScopeSingleLevel
	tests := []struct {
		name string
		from query
		ref  string
		// want: server (shown), StartTLS, base, scope, filter; or the error.
		shown, base, filter string
		startTLS            bool
		scope               int
		wantErr             string
	}{
		{name: "subtree continues as a subtree, in clear becomes StartTLS", from: sub, ref: "ldap://east.example/ou=east,ou=people,dc=x??sub",
			shown: "ldap://east.example", startTLS: true, base: "ou=east,ou=people,dc=x", scope: goldap.ScopeWholeSubtree, filter: sub.filter},
		{name: "AD's form without scope", from: sub, ref: "ldaps://dc2.east.example:636/OU=East,DC=x",
			shown: "ldaps://dc2.east.example:636", base: "OU=East,DC=x", scope: goldap.ScopeWholeSubtree, filter: sub.filter},
		{name: "one level continues at the entry", from: one, ref: "ldap://east.example/ou=east,ou=people,dc=x",
			shown: "ldap://east.example", startTLS: true, base: "ou=east,ou=people,dc=x", scope: goldap.ScopeBaseObject, filter: sub.filter},
		{name: "no host: the server that sent it", from: sub, ref: "ldap:///ou=x%20y,dc=x??one?(uid=a)",
			shown: "ldaps://home.example:1636", base: "ou=x y,dc=x", scope: goldap.ScopeSingleLevel, filter: "(uid=a)"},
		{name: "userinfo dropped", from: sub, ref: "ldap://u:pw@east.example/dc=x",
			shown: "ldap://east.example", startTLS: true, base: "dc=x", scope: goldap.ScopeWholeSubtree, filter: sub.filter},
		{name: "not LDAP", from: sub, ref: "https://east.example/", wantErr: "not an ldap:// or ldaps:// URL"},
		{name: "unknown scope", from: sub, ref: "ldap://east.example/dc=x??deep", wantErr: `unknown scope "deep"`},
		{name: "bad DN", from: sub, ref: "ldap://east.example/not a dn", wantErr: "does not parse"},
		{name: "bad filter", from: sub, ref: "ldap://east.example/dc=x???(uid=", wantErr: "does not compile"},
		{name: "critical extension", from: sub, ref: "ldap://east.example/dc=x????!bindname=x", wantErr: `critical extension "!bindname=x"`},
		{name: "bad host", from: sub, ref: "ldap://east.example:port/dc=x", wantErr: "is not a host[:port]"},
		{name: "too many parts", from: sub, ref: "ldap://east.example/dc=x?a?sub?(a=b)?e?f", wantErr: "five parts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := s.referredQuery(tc.from, tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			at := s.server(q)
			if at.shown != tc.shown || at.startTLS != tc.startTLS || q.base != tc.base || q.scope != tc.scope || q.filter != tc.filter {
				t.Errorf("got %s StartTLS %t base %q scope %d filter %q\nwant %s StartTLS %t base %q scope %d filter %q",
					at.shown, at.startTLS, q.base, q.scope, q.filter, tc.shown, tc.startTLS, tc.base, tc.scope, tc.filter)
			}
			if !slices.Equal(q.attrs, tc.from.attrs) || q.what != tc.from.what {
				t.Errorf("attrs %v and what %q changed", q.attrs, q.what)
			}
		})
	}
}

func TestShowReference(t *testing.T) {
	for in, want := range map[string]string{
		"ldap://u:pw@host:389/dc=x??sub": "ldap://host:389/dc=x??sub",
		"ldap://host/cn=a@b,dc=x":        "ldap://host/cn=a@b,dc=x",
		"ldap://tok@host":                "ldap://host",
		"not a url":                      "not a url",
	} {
		if got := showReference(in); got != want {
			t.Errorf("showReference(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestADSystemPartition(t *testing.T) {
	for dn, want := range map[string]bool{
		"CN=Configuration,DC=corp,DC=example":           true,
		"CN=Schema,CN=Configuration,DC=corp,DC=example": true,
		"DC=DomainDnsZones,DC=corp,DC=example":          true,
		"DC=ForestDnsZones,DC=corp,DC=example":          true,
		"DC=eu,DC=corp,DC=example":                      false, // a child domain: users live there
		"DC=corp,DC=example":                            false,
		"CN=Configuration":                              false,
		"DC=DomainDnsZones":                             false,
		"CN=Configuration,OU=x,DC=corp":                 false,
		"OU=People,CN=Configuration,DC=corp":            false,
	} {
		parsed, err := goldap.ParseDN(dn)
		if err != nil {
			t.Fatal(err)
		}
		if got := adSystemPartition(parsed); got != want {
			t.Errorf("adSystemPartition(%s) = %t, want %t", dn, got, want)
		}
	}
}

// referringClient answers every search with one page holding one user
// entry (for the user search) and the references refs.
type referringClient struct {
	goldap.Client
	refs []string
}

func (c referringClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	res := &goldap.SearchResult{Referrals: c.refs}
	if strings.HasPrefix(req.BaseDN, "OU=People") {
		guid := string(guidBytesForTest("11111111-2222-3333-4444-555555555555"))
		res.Entries = []*goldap.Entry{goldap.NewEntry("CN=A,"+req.BaseDN, map[string][]string{"objectGUID": {guid}, "mail": {"a@corp.example"}})}
	}
	return res, nil
}

func (referringClient) Close() error { return nil }

// TestADSystemPartitionsPassedOver: on Active Directory, references to the
// configuration and DNS partitions are no reason to fail, and are not
// counted; anywhere else, and any other reference, they are.
func TestADSystemPartitionsPassedOver(t *testing.T) {
	system := []string{
		"ldap://corp.example/CN=Configuration,DC=corp,DC=example",
		"ldap://DomainDnsZones.corp.example/DC=DomainDnsZones,DC=corp,DC=example",
		"ldap://ForestDnsZones.corp.example/DC=ForestDnsZones,DC=corp,DC=example",
	}
	child := "ldap://eu.corp.example/DC=eu,DC=corp,DC=example"
	tests := []struct {
		name      string
		ad        bool
		referrals string
		refs      []string
		wantErr   string
		// wantSkipped is the referral count, two searches' worth.
		wantSkipped int
	}{
		{name: "AD: system partitions", ad: true, referrals: "fail", refs: system},
		{name: "AD: a child domain fails", ad: true, referrals: "fail", refs: append(slices.Clone(system), child), wantErr: `1 search continuation reference(s) to entries it does not hold: "` + child + `"`},
		{name: "AD: a child domain ignored", ad: true, referrals: "ignore", refs: append(slices.Clone(system), child), wantSkipped: 2},
		{name: "not AD: the same names fail", referrals: "fail", refs: system[:1], wantErr: "1 search continuation reference(s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("ldap://dc.corp.example", "OU=People,DC=corp,DC=example", "OU=Groups,DC=corp,DC=example")
			cfg.ActiveDirectory, cfg.Referrals = tc.ad, tc.referrals
			if !tc.ad {
				cfg.Users.IDAttribute = "objectGUID"
			}
			s, err := newSource("corp", cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			s.dial = func(context.Context) (goldap.Client, error) { return referringClient{refs: tc.refs}, nil }
			snap, err := s.Fetch(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Fetch error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if got := snap.Skipped[skipReferral]; got != tc.wantSkipped || len(snap.Users) != 1 {
				t.Errorf("got %d users, %d references skipped; want 1 user, %d skipped", len(snap.Users), got, tc.wantSkipped)
			}
		})
	}
}

// referringAD is a fake AD domain that also answers a subtree search of
// a base in refs with a continuation reference to the URL refs gives.
type referringAD struct {
	*fakeAD
	refs map[string]string
}

func (c referringAD) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	res, err := c.fakeAD.Search(req)
	if ref, ok := c.refs[req.BaseDN]; ok && err == nil && req.Scope == goldap.ScopeWholeSubtree {
		res.Referrals = append(res.Referrals, ref)
	}
	return res, err
}

// TestFollowReadsRangedGroupsWhereTheyLive follows references from one AD
// domain to another whose group has more members than one answer holds:
// the rest of its member list must be asked of the domain that holds the
// group, not of the configured one.
func TestFollowReadsRangedGroupsWhereTheyLive(t *testing.T) {
	const eastBase = "DC=east,DC=corp,DC=example"
	east := newFakeAD(1500)
	var members []string
	for i := range 2000 {
		dn := fmt.Sprintf("CN=E%04d,OU=People,%s", i, eastBase)
		east.add(dn, map[string][]string{
			"objectClass": {"user"}, "objectCategory": {"person"},
			"mail": {fmt.Sprintf("e%04d@east.example", i)}, "userAccountControl": {"512"},
		}, guidBytes(t, fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)))
		members = append(members, dn)
	}
	east.add("CN=oncall,OU=Groups,"+eastBase, map[string][]string{"objectClass": {"group"}, "cn": {"oncall"}, "member": members},
		guidBytes(t, "0a0b0c0d-1e1f-2a2b-3c3d-4e4f5a5b5c5d"))
	home := newFakeAD(1500)

	cfg := testConfig("ldaps://dc.corp.example", "OU=People,"+fakeBase, "OU=Groups,"+fakeBase)
	cfg.ActiveDirectory, cfg.Groups.Nested, cfg.Referrals = true, false, "follow"
	s, err := newSource("ad", cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s.dial = func(context.Context) (goldap.Client, error) {
		return referringAD{home, map[string]string{
			"OU=People," + fakeBase: "ldap://dc.east.corp.example/OU=People," + eastBase,
			"OU=Groups," + fakeBase: "ldap://dc.east.corp.example/OU=Groups," + eastBase,
		}}, nil
	}
	var dialed []string
	var mu sync.Mutex
	s.dialTo = func(_ context.Context, ep endpoint) (goldap.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		dialed = append(dialed, fmt.Sprintf("%s StartTLS %t", ep.shown, ep.startTLS))
		if ep.url.Host != "dc.east.corp.example" {
			return nil, fmt.Errorf("dialed %s", ep.shown)
		}
		return east, nil
	}
	snap, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(snap.Users) != 2000 || len(snap.Groups) != 1 || len(snap.Groups[0].Members) != 2000 {
		t.Fatalf("got %d users and %d groups, want 2000 and oncall with all of them", len(snap.Users), len(snap.Groups))
	}
	if got, want := east.rangeRequests(), []string{"CN=oncall,OU=Groups," + eastBase + " member;range=1500-*"}; !slices.Equal(got, want) {
		t.Errorf("ranged requests to the east domain %q, want %q", got, want)
	}
	if len(home.rangeRequests()) != 0 {
		t.Errorf("ranged requests to the configured domain: %q", home.rangeRequests())
	}
	// The user search and the group search each reach the east domain
	// over one connection, with StartTLS (the configured one is
	// encrypted); the ranged read reuses the group search's.
	if want := slices.Repeat([]string{"ldap://dc.east.corp.example StartTLS true"}, 2); !slices.Equal(dialed, want) {
		t.Errorf("dialed %q, want %q", dialed, want)
	}
}

// TestSlapdReferredUnreadableEntryNamesItsServer: an entry a followed
// reference found, unreadable (its id hidden from the reader), is blamed
// on the server that holds it, not on the configured one.
func TestSlapdReferredUnreadableEntryNamesItsServer(t *testing.T) {
	home, east := forest(t, slapd.Options{Access: []string{
		`access to dn.exact="uid=e1,` + eastPeopleDN + `" attrs=entryUUID by * none`,
	}})
	_, err := slapdSource(t, home, nil, func(c *Config) { c.Referrals = "follow" }).Fetch(context.Background())
	if want := "ldap " + east.URL + ": user uid=e1," + eastPeopleDN + ": no entryUUID value"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Fetch = %v, want an error containing %q", err, want)
	}
}
