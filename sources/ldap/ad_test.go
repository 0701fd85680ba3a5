package ldap

// Active Directory behaviour against a real Samba AD DC. The DC is shared
// by every test of the package (provisioning is the slow part); each test
// keeps its entries in an OU of its own and names its accounts uniquely,
// since sAMAccountName is unique across the domain. None of them runs in
// parallel: there is one DC, serving one request at a time.

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

	"github.com/ptsync/ptsync/internal/testenv/samba"
	"github.com/ptsync/ptsync/sources"
)

// adTestPassword is the password of accounts made with samba-tool; it only
// has to pass AD's complexity rules.
const adTestPassword = "Ptsync-Test-2026!"

// recordingConn remembers, for each search of a source's connections,
// what was asked and how many continuation references came back. A fetch
// searches on two connections at once; read searches after it returns.
type recordingConn struct {
	mu       sync.Mutex
	searches []recordedSearch
}

type recordedSearch struct {
	base, filter string
	referrals    int
}

// recordedClient passes every call to the real connection and records
// its searches in rec.
type recordedClient struct {
	goldap.Client
	rec *recordingConn
}

func (c *recordedClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	res, err := c.Client.Search(req)
	rec := recordedSearch{base: req.BaseDN, filter: req.Filter}
	if res != nil {
		rec.referrals = len(res.Referrals)
	}
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	c.rec.searches = append(c.rec.searches, rec)
	return res, err
}

// adSource builds an AD-mode source bound as the DC's service account,
// with both searches under base; edit adjusts the configuration. Its
// connection records every search.
func adSource(t *testing.T, dc *samba.DC, base string, edit func(*Config)) (*Source, *recordingConn) {
	t.Helper()
	cfg := testConfig(dc.URL, base, base)
	cfg.BindDN, cfg.BindPassword = dc.BindDN, dc.BindPassword
	cfg.ActiveDirectory, cfg.Groups.Nested = true, false
	if edit != nil {
		edit(cfg)
	}
	s, err := newSource("ad", cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	rec := &recordingConn{}
	s.dial = func(ctx context.Context) (goldap.Client, error) {
		conn, err := s.connect(ctx)
		if err != nil {
			return nil, err
		}
		return &recordedClient{Client: conn, rec: rec}, nil
	}
	return s, rec
}

func adFetch(t *testing.T, s *Source) *sources.Snapshot {
	t.Helper()
	snap, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return snap
}

// adOU creates OU=name under the domain and returns its DN.
func adOU(t *testing.T, conn *goldap.Conn, name string) string {
	t.Helper()
	dn := "OU=" + name + "," + samba.BaseDN
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	if err := conn.Add(add); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// adUser is a user added over LDAP. With no password, AD makes a new
// account disabled (userAccountControl 546) unless told otherwise; uac
// "544" (a normal account that needs no password) keeps it enabled.
type adUser struct {
	sam, mail, display, uac, description string
}

func adAddUser(t *testing.T, conn *goldap.Conn, ou string, u adUser) string {
	t.Helper()
	dn := "CN=" + goldap.EscapeDN(u.sam) + "," + ou
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"user"})
	add.Attribute("sAMAccountName", []string{u.sam})
	for attr, v := range map[string]string{"mail": u.mail, "displayName": u.display, "userAccountControl": u.uac, "description": u.description} {
		if v != "" {
			add.Attribute(attr, []string{v})
		}
	}
	if err := conn.Add(add); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

func adAddGroup(t *testing.T, conn *goldap.Conn, ou, name, description string, members ...string) string {
	t.Helper()
	dn := "CN=" + goldap.EscapeDN(name) + "," + ou
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"group"})
	add.Attribute("sAMAccountName", []string{name})
	if description != "" {
		add.Attribute("description", []string{description})
	}
	if len(members) > 0 {
		add.Attribute("member", members)
	}
	if err := conn.Add(add); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	return dn
}

// adGUID asks samba-tool for an account's objectGUID: Samba's own
// rendering, independent of the source's.
func adGUID(t *testing.T, dc *samba.DC, kind, sam string) string {
	t.Helper()
	out := dc.Tool(t, kind, "show", sam, "--attributes=objectGUID")
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "objectGUID: "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("samba-tool %s show %s printed no objectGUID:\n%s", kind, sam, out)
	return ""
}

func TestADObjectGUID(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	ou := adOU(t, admin, "adguid")
	alice := adAddUser(t, admin, ou, adUser{sam: "guid-alice", mail: "alice@ad.test", display: "Alice Guid", uac: "544"})
	bob := adAddUser(t, admin, ou, adUser{sam: "guid-bob", mail: " Bob@AD.test ", display: "Bob Guid", uac: "544"})
	adAddGroup(t, admin, ou, "guid-team", "the team", alice, bob)
	aliceID, bobID := adGUID(t, dc, "user", "guid-alice"), adGUID(t, dc, "user", "guid-bob")
	teamID := adGUID(t, dc, "group", "guid-team")

	// samba-tool's text and the stored bytes agree with MS-DTYP's layout,
	// so comparing the source with samba-tool checks the byte order.
	res, err := admin.Search(goldap.NewSearchRequest(alice, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read objectGUID of %s: %v", alice, err)
	}
	if raw := res.Entries[0].GetRawAttributeValue("objectGUID"); !slices.Equal(raw, guidBytes(t, aliceID)) {
		t.Fatalf("objectGUID bytes %x do not lay out samba-tool's %s", raw, aliceID)
	}

	s, _ := adSource(t, dc, ou, nil)
	snap := adFetch(t, s)
	wantUsers := map[string]sources.User{
		aliceID: {ID: aliceID, Email: "alice@ad.test", Name: "Alice Guid"},
		bobID:   {ID: bobID, Email: "Bob@AD.test", Name: "Bob Guid"},
	}
	if !reflect.DeepEqual(snap.Users, wantUsers) {
		t.Errorf("users:\n got %+v\nwant %+v", snap.Users, wantUsers)
	}
	wantGroups := []sources.Group{{ID: teamID, Name: "guid-team", Description: "the team", Members: slices.Sorted(slices.Values([]string{aliceID, bobID}))}}
	if !reflect.DeepEqual(snap.Groups, wantGroups) {
		t.Errorf("groups:\n got %+v\nwant %+v", snap.Groups, wantGroups)
	}
	if len(snap.Skipped) != 0 {
		t.Errorf("skipped %v, want nothing", snap.Skipped)
	}
}

func TestADDisabledAccounts(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	ou := adOU(t, admin, "addisabled")
	adAddUser(t, admin, ou, adUser{sam: "dis-enabled", mail: "enabled@ad.test", uac: "544"})
	adAddUser(t, admin, ou, adUser{sam: "dis-nopassword", mail: "nopassword@ad.test"}) // AD creates it disabled
	for _, name := range []string{"dis-tool", "dis-reenabled"} {
		dc.Tool(t, "user", "create", name, adTestPassword, "--userou=OU=addisabled", "--mail-address="+name+"@ad.test")
		dc.Tool(t, "user", "disable", name)
	}
	dc.Tool(t, "user", "enable", "dis-reenabled")

	s, _ := adSource(t, dc, ou, nil)
	snap := adFetch(t, s)
	got := map[string]bool{}
	for _, u := range snap.Users {
		got[u.Email] = u.Disabled
	}
	want := map[string]bool{
		"enabled@ad.test":       false,
		"nopassword@ad.test":    true,
		"dis-tool@ad.test":      true,
		"dis-reenabled@ad.test": false,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("disabled by email:\n got %v\nwant %v", got, want)
	}
}

func TestADNestedGroupsInChain(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	ou := adOU(t, admin, "adnested")
	elsewhere := adOU(t, admin, "adnested-elsewhere")
	user := func(sam string) string {
		return adAddUser(t, admin, ou, adUser{sam: sam, mail: sam + "@ad.test", uac: "544"})
	}
	n1, n2, n3, n4 := user("nest-1"), user("nest-2"), user("nest-3"), user("nest-4")
	outsider := adAddUser(t, admin, elsewhere, adUser{sam: "nest-outsider", mail: "outsider@ad.test", uac: "544"})
	noMail := adAddUser(t, admin, ou, adUser{sam: "nest-nomail", uac: "544"})
	// top holds mid holds leaf: leaf's users are top's two levels down.
	leaf := adAddGroup(t, admin, ou, "nest-leaf", "", n3, outsider, noMail)
	mid := adAddGroup(t, admin, ou, "nest-mid", "", n2, leaf)
	adAddGroup(t, admin, ou, "nest-top", "", n1, mid)
	adAddGroup(t, admin, ou, "nest-other", "", n4)

	id := func(sam string) string { return adGUID(t, dc, "user", sam) }
	ids := func(ss ...string) []string { return slices.Sorted(slices.Values(ss)) }
	want := map[string][]string{
		"nest-top":   ids(id("nest-1"), id("nest-2"), id("nest-3")),
		"nest-mid":   ids(id("nest-2"), id("nest-3")),
		"nest-leaf":  ids(id("nest-3")),
		"nest-other": ids(id("nest-4")),
	}
	tests := []struct {
		name      string
		edit      func(*Config)
		wantChain bool // member lists come from in-chain searches
	}{
		{name: "server side with LDAP_MATCHING_RULE_IN_CHAIN", edit: func(c *Config) { c.Groups.InChain, c.Groups.Nested = true, true }, wantChain: true},
		{name: "client side flattening agrees", edit: func(c *Config) { c.Groups.Nested = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := adSource(t, dc, ou, tt.edit)
			snap := adFetch(t, s)
			got := map[string][]string{}
			for _, g := range snap.Groups {
				got[g.Name] = g.Members
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("members by group:\n got %v\nwant %v", got, want)
			}
			if len(snap.Users) != 4 {
				t.Errorf("got %d users, want 4", len(snap.Users))
			}
			// Both ways count the outsider (outside the user search) once,
			// and nest-nomail only as a user without email.
			if wantSkipped := map[string]int{sources.SkipNoEmail: 1, sources.SkipOutsideScope: 1}; !maps.Equal(snap.Skipped, wantSkipped) {
				t.Errorf("skipped %v, want %v", snap.Skipped, wantSkipped)
			}
			// One in-chain search per group, over the whole domain so that
			// members outside the user search are seen. From the domain
			// root Samba adds a continuation reference to the
			// configuration partition, which the fetch passes over.
			var chainBases []string
			referrals := 0
			for _, q := range inChainSearches(rec) {
				chainBases = append(chainBases, q.base)
				referrals += q.referrals
			}
			if wantBases := map[bool][]string{true: slices.Repeat([]string{samba.BaseDN}, 4)}[tt.wantChain]; !slices.Equal(chainBases, wantBases) {
				t.Errorf("in-chain searches based at %q, want %q", chainBases, wantBases)
			}
			if tt.wantChain && referrals == 0 {
				t.Error("samba sent no continuation reference to the in-chain searches: they are no longer tested")
			}
		})
	}
}

// inChainSearches returns the recorded requests that use
// LDAP_MATCHING_RULE_IN_CHAIN, one per page.
func inChainSearches(rec *recordingConn) []recordedSearch {
	var out []recordedSearch
	for _, q := range rec.searches {
		if strings.Contains(q.filter, ":1.2.840.113556.1.4.1941:=") {
			out = append(out, q)
		}
	}
	return out
}

// adBigFixture is OU=adbig: adBigUsers users, group big holding all of
// them and group big1500 holding the first 1500. Loading it takes several
// seconds, so the tests that need it share it.
const adBigUsers = 3000

var adBig struct {
	once  sync.Once
	ok    bool
	ou    string
	guids map[string]string // objectGUID bytes (as a string) -> DN
	dns   []string
}

func adBigFixture(t *testing.T, dc *samba.DC) {
	t.Helper()
	adBig.once.Do(func() {
		admin := dc.Admin(t)
		adBig.ou = adOU(t, admin, "adbig")
		for i := range adBigUsers {
			sam := fmt.Sprintf("big-%04d", i)
			adBig.dns = append(adBig.dns, adAddUser(t, admin, adBig.ou, adUser{sam: sam, mail: sam + "@ad.test", uac: "544"}))
		}
		adAddGroup(t, admin, adBig.ou, "big", "", adBig.dns...)
		adAddGroup(t, admin, adBig.ou, "big1500", "", adBig.dns[:1500]...)
		res, err := admin.SearchWithPaging(goldap.NewSearchRequest(adBig.ou, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=user)", []string{"objectGUID"}, nil), 1000)
		if err != nil {
			t.Fatalf("read the objectGUIDs of %s: %v", adBig.ou, err)
		}
		adBig.guids = map[string]string{}
		for _, e := range res.Entries {
			adBig.guids[string(e.GetRawAttributeValue("objectGUID"))] = e.DN
		}
		adBig.ok = true
	})
	if !adBig.ok {
		t.Fatal("the shared OU=adbig fixture failed to load in an earlier test")
	}
}

// adBigDNs maps the source's user IDs back to DNs through the objectGUID
// bytes read directly, so the comparison does not trust the source's GUID
// rendering.
func adBigDNs(t *testing.T, ids []string) []string {
	t.Helper()
	dns := make([]string, 0, len(ids))
	for _, id := range ids {
		dn, ok := adBig.guids[string(guidBytes(t, id))]
		if !ok {
			t.Fatalf("user id %s is no objectGUID of OU=adbig", id)
		}
		dns = append(dns, dn)
	}
	slices.Sort(dns)
	return dns
}

func TestADPagingAndLargeGroups(t *testing.T) {
	dc := samba.Shared(t)
	adBigFixture(t, dc)
	const pageSize = 700 // 3000 users: pages of 700, 700, 700, 700, 200
	pages := func(entries int) int { return (entries + pageSize - 1) / pageSize }
	tests := []struct {
		name string
		edit func(*Config)
		// wantChainPages is how many in-chain requests the groups take:
		// each group's members are paged like any other search.
		wantChainPages int
	}{
		{name: "member values", edit: func(c *Config) { c.PageSize = pageSize }},
		{name: "in chain", edit: func(c *Config) { c.PageSize, c.Groups.Nested, c.Groups.InChain = pageSize, true, true },
			wantChainPages: pages(adBigUsers) + pages(1500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := adSource(t, dc, adBig.ou, tt.edit)
			snap := adFetch(t, s)

			if len(snap.Users) != adBigUsers {
				t.Fatalf("got %d users, want %d", len(snap.Users), adBigUsers)
			}
			userPages := 0
			for _, q := range rec.searches {
				if q.base == adBig.ou && strings.Contains(q.filter, "objectCategory=person") {
					userPages++
				}
			}
			if want := pages(adBigUsers); userPages != want {
				t.Errorf("the user search took %d requests, want %d pages of %d", userPages, want, pageSize)
			}
			if got := len(inChainSearches(rec)); got != tt.wantChainPages {
				t.Errorf("the in-chain searches took %d requests, want %d", got, tt.wantChainPages)
			}
			allDNs := slices.Sorted(slices.Values(adBig.dns))
			if got := adBigDNs(t, slices.Collect(maps.Keys(snap.Users))); !slices.Equal(got, allDNs) {
				t.Errorf("the users are not exactly OU=adbig's %d", adBigUsers)
			}
			wantMembers := map[string][]string{"big": allDNs, "big1500": slices.Sorted(slices.Values(adBig.dns[:1500]))}
			if len(snap.Groups) != len(wantMembers) {
				t.Fatalf("got %d groups, want %d", len(snap.Groups), len(wantMembers))
			}
			for _, g := range snap.Groups {
				if got := adBigDNs(t, g.Members); !slices.Equal(got, wantMembers[g.Name]) {
					t.Errorf("group %s: got %d members, want %d", g.Name, len(got), len(wantMembers[g.Name]))
				}
			}
			if len(snap.Skipped) != 0 {
				t.Errorf("skipped %v, want nothing", snap.Skipped)
			}
		})
	}
}

// TestADSambaRangeAnswers sends explicit member;range= requests to Samba
// and to the fake AD of range_test.go with its cap lifted: Samba honours
// them, and the fake answers exactly as Samba does. (Samba never caps
// values, so the capped answers are only checked against MS-ADTS, in
// TestRangeFakeFollowsMSADTS.)
func TestADSambaRangeAnswers(t *testing.T) {
	dc := samba.Shared(t)
	adBigFixture(t, dc)
	conn, err := goldap.DialURL(dc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(dc.BindDN, dc.BindPassword); err != nil {
		t.Fatal(err)
	}
	groups := map[int]string{adBigUsers: "CN=big," + adBig.ou, 1500: "CN=big1500," + adBig.ou}
	for _, tt := range rangeCases {
		t.Run(fmt.Sprintf("%d members %s", tt.members, tt.request), func(t *testing.T) {
			got, err := readRange(conn, groups[tt.members], tt.request)
			if err != nil {
				t.Fatalf("samba: %v", err)
			}
			if got != tt.want {
				t.Errorf("samba answered %+v, want %+v", got, tt.want)
			}
			fake, _ := fakeDirectory(t, 1<<30, tt.members, tt.members)
			fakeGot, err := readRange(fake, "CN=oncall,OU=Groups,"+fakeBase, tt.request)
			if err != nil {
				t.Fatalf("fake: %v", err)
			}
			if fakeGot != got {
				t.Errorf("the uncapped fake answered %+v, samba %+v", fakeGot, got)
			}
		})
	}
}

// TestADContinuationReferences searches from the domain root, where AD
// answers with references to the other naming contexts (Samba: the
// configuration partition) beside the entries. Those partitions hold no
// users or groups: under the default referrals: fail they neither fail
// the fetch nor count as skipped.
func TestADContinuationReferences(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	const tag = "ptsync-adrefs"
	ou := adOU(t, admin, "adrefs")
	r1 := adAddUser(t, admin, ou, adUser{sam: "refs-1", mail: "refs-1@ad.test", uac: "544", description: tag})
	r2 := adAddUser(t, admin, ou, adUser{sam: "refs-2", mail: "refs-2@ad.test", uac: "544", description: tag})
	adAddGroup(t, admin, ou, "refs-team", tag, r1, r2)

	s, rec := adSource(t, dc, samba.BaseDN, func(c *Config) {
		c.Users.Filter = "(&(objectCategory=person)(objectClass=user)(description=" + tag + "))"
		c.Groups.Filter = "(&(objectClass=group)(description=" + tag + "))"
	})
	snap := adFetch(t, s)

	referrals := 0
	for _, q := range rec.searches {
		referrals += q.referrals
	}
	if referrals == 0 {
		t.Fatal("samba sent no continuation reference: the test no longer tests what it is named for")
	}
	id1, id2 := adGUID(t, dc, "user", "refs-1"), adGUID(t, dc, "user", "refs-2")
	if got, want := slices.Sorted(maps.Keys(snap.Users)), slices.Sorted(slices.Values([]string{id1, id2})); !slices.Equal(got, want) {
		t.Errorf("users %v, want %v", got, want)
	}
	if len(snap.Groups) != 1 || snap.Groups[0].Name != "refs-team" || len(snap.Groups[0].Members) != 2 {
		t.Errorf("groups %+v, want refs-team with both users", snap.Groups)
	}
	if len(snap.Skipped) != 0 {
		t.Errorf("skipped %v, want nothing", snap.Skipped)
	}
}
