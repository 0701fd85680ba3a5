package main

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources/google/googletest"
	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
	"github.com/ptsync/ptsync/sources/okta/oktatest"
	"github.com/ptsync/ptsync/sources/scim/scimtest"
)

// cloudE2E is one directory API source driven end to end: the fake
// directory → ptsync's commands → the PagerTree emulator.
type cloudE2E struct {
	sourceBlock string // the sources[0] entry of the config, indented
	secret      string // must never be printed
	// leave takes bob out of oncall-db and disables carol, in the fake.
	leave func()
	// breakPageTwo makes every later page of users answer 5xx.
	breakPageTwo func()
	// neverUsers are emails (of disabled directory users in an on-call
	// group) that must never become PagerTree users.
	neverUsers []string
}

// runCloudE2E checks: validate --connect; a first sync makes the teams; a
// second makes no write; a directory change is one sync away; a 5xx on a
// later page writes nothing and exits 1. Every request is counted in
// ptsync_source_requests_total.
func runCloudE2E(t *testing.T, name string, c cloudE2E) {
	emu := newAccount(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "ptsync.yaml")
	mustWrite(t, cfg, fmt.Sprintf(`pagertree:
  url: %s
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
sources:
%s
teams:
  - source: %s
    match: "oncall-*"
    name: '{{ trimPrefix "oncall-" .Name }}'
users:
  delete: true
log:
  level: debug
`, emu.URL(), c.sourceBlock, name))
	ptsync := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCmd(t, args...)
		if strings.Contains(stdout+stderr, c.secret) {
			t.Errorf("ptsync %s printed the secret", strings.Join(args, " "))
		}
		return code, stdout, stderr
	}
	teams := func() map[string][]string {
		_, teams := viewAccount(t, emu)
		out := map[string][]string{}
		for n, tm := range teams {
			out[n] = tm.Members
		}
		return out
	}

	if code, stdout, stderr := ptsync(t, "validate", "--connect", "--config", cfg); code != 0 || !strings.Contains(stdout, "ok   source "+name) {
		t.Fatalf("validate --connect = %d\n%s%s", code, stdout, stderr)
	}
	metrics := filepath.Join(dir, "metrics.prom")
	if code, _, stderr := ptsync(t, "sync", "--config", cfg, "--metrics-file", metrics); code != 0 {
		t.Fatalf("first sync = %d\n%s", code, stderr)
	}
	want := map[string][]string{
		"db":  {"alice@example.com", "bob@example.com", "carol@example.com"},
		"web": {"bob@example.com"},
	}
	if got := teams(); !reflect.DeepEqual(got, want) {
		t.Fatalf("teams after the first sync:\n%v\nwant\n%v", got, want)
	}
	never := func(when string) {
		t.Helper()
		users, _ := viewAccount(t, emu)
		for _, email := range c.neverUsers {
			if _, ok := users[email]; ok {
				t.Errorf("%s, disabled in the directory, is a PagerTree user after %s", email, when)
			}
		}
	}
	never("the first sync")
	text, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), fmt.Sprintf(`ptsync_source_requests_total{code="200",source="%s"}`, name)) {
		t.Errorf("the metrics file counts no request of source %s:\n%s", name, text)
	}

	emu.ResetStats()
	if code, _, stderr := ptsync(t, "sync", "--config", cfg); code != 0 {
		t.Fatalf("second sync = %d\n%s", code, stderr)
	}
	if w := emu.Stats().Writes; w != 0 {
		t.Errorf("the second sync made %d writes, want 0", w)
	}

	c.leave()
	if code, _, stderr := ptsync(t, "sync", "--config", cfg); code != 0 {
		t.Fatalf("sync after the change = %d\n%s", code, stderr)
	}
	want = map[string][]string{"db": {"alice@example.com"}, "web": {"bob@example.com"}}
	if got := teams(); !reflect.DeepEqual(got, want) {
		t.Fatalf("teams after bob left db and carol was disabled:\n%v\nwant\n%v", got, want)
	}
	users, _ := viewAccount(t, emu)
	if _, ok := users["carol@example.com"]; ok {
		t.Error("carol, disabled in the directory, is still a PagerTree user")
	}
	if _, ok := users["bob@example.com"]; !ok {
		t.Error("bob, who only left a group, was deleted")
	}
	never("the change")

	c.breakPageTwo()
	emu.ResetStats()
	code, _, stderr := ptsync(t, "sync", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "answered 5") {
		t.Errorf("sync with a failing page = %d, want 1 and the failed request\n%s", code, stderr)
	}
	if s := emu.Stats(); s.WriteAttempts != 0 {
		t.Errorf("a failed source still sent %d writes", s.WriteAttempts)
	}
}

// cloudUsers is alice, bob and carol, and 1,200 others so that users take
// more than one page on either API.
func cloudUsers() [][3]string {
	users := [][3]string{{"u-alice", "alice@example.com", "Alice Anders"}, {"u-bob", "bob@example.com", "Bob Brown"}, {"u-carol", "carol@example.com", "Carol Chen"}}
	for i := range 1200 {
		users = append(users, [3]string{fmt.Sprintf("u-%04d", i), fmt.Sprintf("staff%04d@example.com", i), fmt.Sprintf("Staff %d", i)})
	}
	return users
}

func TestGraphEndToEnd(t *testing.T) {
	tenant := graphtest.Tenant{Groups: []graphtest.Group{
		{ID: "g-db", DisplayName: "oncall-db", Members: []string{"u-alice", "u-bob", "g-dba"}},
		{ID: "g-dba", DisplayName: "dba", Members: []string{"u-carol"}},
		{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-bob"}},
	}}
	for _, u := range cloudUsers() {
		tenant.Users = append(tenant.Users, graphtest.User{ID: u[0], Mail: u[1], DisplayName: u[2], AccountEnabled: true})
	}
	const secret = "graph-client-secret-e2e"
	srv := graphtest.NewServer(tenant, graphtest.Options{ClientID: "app-id", ClientSecret: secret})
	t.Cleanup(srv.Close)
	t.Setenv("TEST_GRAPH_SECRET", secret)
	runCloudE2E(t, "entra", cloudE2E{
		sourceBlock: fmt.Sprintf(`  - name: entra
    type: msgraph
    msgraph:
      tenant_id: %s
      client_id: app-id
      client_secret: ${TEST_GRAPH_SECRET}
      group_filter: "startswith(displayName,'oncall-')"
      base_url: %s
      token_url: %s/{tenant_id}/oauth2/v2.0/token`, srv.TenantID(), srv.BaseURL(), srv.URL()),
		secret: secret,
		leave: func() {
			tenant.Groups[0].Members = []string{"u-alice", "g-dba"}
			for i := range tenant.Users {
				if tenant.Users[i].ID == "u-carol" {
					tenant.Users[i].AccountEnabled = false
				}
			}
			srv.SetTenant(tenant)
		},
		breakPageTwo: func() {
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Query().Get("$skiptoken") != "" {
					return http.StatusBadGateway, nil, `{"error":{"code":"UnknownError","message":""}}`, true
				}
				return 0, nil, "", false
			})
		},
	})
}

func TestOktaEndToEnd(t *testing.T) {
	org := oktatest.Org{Groups: []oktatest.Group{
		{ID: "g-db", Name: "oncall-db", Members: []string{"u-alice", "u-bob", "u-carol"}},
		{ID: "g-web", Name: "oncall-web", Members: []string{"u-bob"}},
		{ID: "g-all", Name: "Everyone", Members: []string{"u-alice"}},
	}}
	for _, u := range cloudUsers() {
		org.Users = append(org.Users, oktatest.User{ID: u[0], Status: "ACTIVE", Profile: oktatest.Profile{Login: u[1], Email: u[1], DisplayName: u[2]}})
	}
	const token = "00okta-e2e-api-token"
	srv := oktatest.NewServer(org, oktatest.Options{APIToken: token, RateLimit: 600})
	t.Cleanup(srv.Close)
	t.Setenv("TEST_OKTA_TOKEN", token)
	runCloudE2E(t, "okta", cloudE2E{
		sourceBlock: fmt.Sprintf(`  - name: okta
    type: okta
    okta:
      org_url: %s
      api_token: ${TEST_OKTA_TOKEN}
      group_search: 'profile.name sw "oncall-"'`, srv.URL()),
		secret: token,
		leave: func() {
			org.Groups[0].Members = []string{"u-alice", "u-carol"}
			for i := range org.Users {
				if org.Users[i].ID == "u-carol" {
					org.Users[i].Status = "SUSPENDED"
				}
			}
			srv.SetOrg(org)
		},
		breakPageTwo: func() {
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Query().Get("after") != "" {
					return http.StatusServiceUnavailable, nil, `{"errorCode":"E0000009","errorSummary":"Internal Server Error"}`, true
				}
				return 0, nil, "", false
			})
		},
	})
}

func TestGoogleEndToEnd(t *testing.T) {
	domain := googletest.Domain{
		Users: []googletest.User{{ID: "u-admin", PrimaryEmail: "admin@example.com", FullName: "Directory Admin", IsAdmin: true}},
		Groups: []googletest.Group{
			{ID: "g-db", Email: "oncall-db@example.com", Name: "oncall-db", Members: []googletest.Member{{ID: "u-alice"}, {ID: "u-bob"}, {ID: "g-dba"}}},
			{ID: "g-dba", Email: "dba@example.com", Name: "dba", Members: []googletest.Member{{ID: "u-carol"}}},
			{ID: "g-web", Email: "oncall-web@example.com", Name: "oncall-web", Members: []googletest.Member{{ID: "u-bob"}}},
		},
	}
	for _, u := range cloudUsers() {
		domain.Users = append(domain.Users, googletest.User{ID: u[0], PrimaryEmail: u[1], FullName: u[2]})
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sa := googletest.ServiceAccount{Email: "ptsync@e2e.iam.gserviceaccount.com", ClientID: "1234567890", KeyID: "e2e-key", Key: &key.PublicKey}
	srv := googletest.NewServer(domain, googletest.Options{ServiceAccount: sa, DelegatedScopes: googletest.ReadOnlyScopes})
	t.Cleanup(srv.Close)
	keyJSON := googletest.ServiceAccountKey(sa, key, srv.TokenURL())
	keyFile := filepath.Join(t.TempDir(), "service-account.json")
	mustWrite(t, keyFile, string(keyJSON))
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(keyJSON, &k); err != nil {
		t.Fatal(err)
	}
	runCloudE2E(t, "workspace", cloudE2E{
		sourceBlock: fmt.Sprintf(`  - name: workspace
    type: google
    google:
      credentials_file: %s
      subject: admin@example.com
      group_query: "email:oncall-*"
      base_url: %s`, keyFile, srv.BaseURL()),
		// A line of the key's base64 body: never to be printed.
		secret: strings.Split(k.PrivateKey, "\n")[5],
		leave: func() {
			domain.Groups[0].Members = []googletest.Member{{ID: "u-alice"}, {ID: "g-dba"}}
			for i := range domain.Users {
				if domain.Users[i].ID == "u-carol" {
					domain.Users[i].Suspended = true
				}
			}
			srv.SetDomain(domain)
		},
		breakPageTwo: func() {
			srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
				if r.URL.Query().Get("pageToken") != "" {
					return http.StatusServiceUnavailable, nil, googletest.ErrorBody(503, "backendError", "Backend Error"), true
				}
				return 0, nil, "", false
			})
		},
	})
}

// scimError is an RFC 7644 §3.12 error body.
func scimError(status int, detail string) string {
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","detail":%q}`, status, detail)
}

// TestSCIMEndToEnd runs the cloud end-to-end checks against the SCIM fake,
// once with a static bearer token and once with OAuth 2.0 client
// credentials. oncall-db holds carol only through the nested dba, which
// group_filter does not pick (read by id); dave, disabled from the start,
// is in oncall-web and never becomes a PagerTree user.
func TestSCIMEndToEnd(t *testing.T) {
	active := func(b bool) *bool { return &b }
	directory := func() scimtest.Directory {
		dir := scimtest.Directory{Groups: []scimtest.Group{
			{ID: "g-db", DisplayName: "oncall-db", Members: []string{"u-alice", "u-bob", "g-dba"}},
			{ID: "g-dba", DisplayName: "dba", Members: []string{"u-carol"}},
			{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-bob", "u-dave"}},
		}}
		for _, u := range cloudUsers() {
			dir.Users = append(dir.Users, scimtest.User{ID: u[0], UserName: u[1], DisplayName: u[2],
				Emails: []scimtest.Multi{{Value: u[1], Type: "work", Primary: true}}, Active: active(true)})
		}
		dir.Users = append(dir.Users, scimtest.User{ID: "u-dave", UserName: "dave@example.com", DisplayName: "Dave Disabled",
			Emails: []scimtest.Multi{{Value: "dave@example.com", Type: "work"}}, Active: active(false)})
		return dir
	}
	// The same changes and faults, whatever the credentials.
	e2e := func(srv *scimtest.Server, dir scimtest.Directory, block, secret string) cloudE2E {
		return cloudE2E{
			sourceBlock: block,
			secret:      secret,
			neverUsers:  []string{"dave@example.com"},
			leave: func() {
				dir.Groups[0].Members = []string{"u-alice", "g-dba"}
				for i := range dir.Users {
					if dir.Users[i].ID == "u-carol" {
						dir.Users[i].Active = active(false)
					}
				}
				srv.SetDirectory(dir)
			},
			breakPageTwo: func() {
				srv.SetFault(func(r *http.Request, _ int) (int, http.Header, string, bool) {
					if i := r.URL.Query().Get("startIndex"); i != "" && i != "1" {
						return http.StatusServiceUnavailable, nil, scimError(http.StatusServiceUnavailable, "Service Unavailable"), true
					}
					return 0, nil, "", false
				})
			},
		}
	}

	t.Run("bearer token", func(t *testing.T) {
		const token = "scim-e2e-bearer-token"
		dir := directory()
		srv := scimtest.NewServer(dir, scimtest.Options{BearerToken: token})
		t.Cleanup(srv.Close)
		t.Setenv("TEST_SCIM_TOKEN", token)
		runCloudE2E(t, "idp", e2e(srv, dir, fmt.Sprintf(`  - name: idp
    type: scim
    scim:
      base_url: %s
      bearer_token: ${TEST_SCIM_TOKEN}
      group_filter: 'displayName sw "oncall-"'`, srv.BaseURL()), token))
		if n := srv.Requests()["GET /Groups/{id}"]; n == 0 {
			t.Error("the nested dba, outside group_filter, was never read by id")
		}
	})

	t.Run("oauth2 client credentials", func(t *testing.T) {
		const secret = "scim-e2e-client-secret"
		dir := directory()
		srv := scimtest.NewServer(dir, scimtest.Options{ClientID: "ptsync", ClientSecret: secret, Scope: "scim.read"})
		t.Cleanup(srv.Close)
		t.Setenv("TEST_SCIM_SECRET", secret)
		runCloudE2E(t, "idp", e2e(srv, dir, fmt.Sprintf(`  - name: idp
    type: scim
    scim:
      base_url: %s
      oauth2:
        token_url: %s
        client_id: ptsync
        client_secret: ${TEST_SCIM_SECRET}
        scopes: [scim.read]
      group_filter: 'displayName sw "oncall-"'`, srv.BaseURL(), srv.TokenURL()), secret))
		if srv.TokenRequests() == 0 {
			t.Error("no token was asked of the token endpoint")
		}
	})
}

// fourLDIF is the LDAP side of TestFourSourcesAtOnce: bob's mail is in
// mixed case; everyone matches no teams rule.
const fourLDIF = `dn: uid=alice,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Anders
displayName: Alice Anders
mail: alice@example.com
telephoneNumber: +1 415 555 0100

dn: uid=bob,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Brown
displayName: Bob Brown
mail: Bob@Example.com
telephoneNumber: +1 415 555 0101

dn: uid=carol,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Chen
displayName: Carol Chen
mail: carol@example.com

dn: cn=oncall-db,` + slapd.GroupsDN + `
objectClass: groupOfNames
cn: oncall-db
member: uid=alice,` + slapd.PeopleDN + `
member: uid=bob,` + slapd.PeopleDN + `
member: uid=carol,` + slapd.PeopleDN + `

dn: cn=everyone,` + slapd.GroupsDN + `
objectClass: groupOfNames
cn: everyone
member: uid=alice,` + slapd.PeopleDN + `
member: uid=bob,` + slapd.PeopleDN + `
member: uid=carol,` + slapd.PeopleDN + `

`

// fourVendors is the file source of TestFourSourcesAtOnce: alice again,
// under an email in another case and another name, and gina, both in
// oncall-vendor with the people of extra (emails; "Hank Vendor" for
// hank@...).
func fourVendors(extra ...string) string {
	users := "  - {id: f-alice, email: Alice@Example.COM, name: Alice (vendor record)}\n" +
		"  - {id: f-gina, email: gina@vendor.example, name: Gina Green}\n"
	members := []string{"f-alice", "f-gina"}
	for _, e := range extra {
		local, _, _ := strings.Cut(e, "@")
		id := "f-" + local
		users += fmt.Sprintf("  - {id: %s, email: %s, name: %s Vendor}\n", id, e, strings.ToUpper(local[:1])+local[1:])
		members = append(members, id)
	}
	return "users:\n" + users + "groups:\n  - {id: g-vendor, name: oncall-vendor, members: [" + strings.Join(members, ", ") + "]}\n"
}

// fourAccount is the PagerTree account of TestFourSourcesAtOnce, on
// either API.
type fourAccount struct {
	emu *pagertreetest.Server
	// block is the config's pagertree: block.
	block string
	// v4: the account has its admin, owner@example.com, who is every
	// team's admin (pagertree.team_admins) and so named in the markers.
	v4 bool
}

func newFourAccount(t *testing.T, api string) fourAccount {
	t.Helper()
	if api == "v3" {
		emu := newAccount(t)
		return fourAccount{emu: emu, block: fmt.Sprintf(`pagertree:
  url: %s
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
`, emu.URL())}
	}
	emu := pagertreetest.NewServer(pagertreetest.Options{API: "v4"})
	t.Cleanup(emu.Close)
	t.Setenv(v4KeyEnv, pagertreetest.DefaultAPIKey)
	if _, err := emu.AddAccountUser(pagertree.AccountUser{
		Roles: pagertree.AccountRoles{Admin: true},
		User:  pagertree.Person{Name: "Olivia Owner", Emails: []pagertree.Email{{Email: v4Owner}}},
	}); err != nil {
		t.Fatal(err)
	}
	return fourAccount{emu: emu, v4: true, block: fmt.Sprintf(`pagertree:
  api: v4
  url: %s
  api_key: ${%s}
  team_admins: [%s]
`, emu.URL(), v4KeyEnv, v4Owner)}
}

// marker is the marker a team of group id of source carries.
func (a fourAccount) marker(source, group string) string {
	if a.v4 {
		return "[managed by ptsync: source=" + source + " group=" + group + " admins=" + v4Owner + "]"
	}
	return "[managed by ptsync: source=" + source + " group=" + group + "]"
}

// users are the account's people by lower-cased email (name and phone),
// the account admin left out; a second person with an email already seen,
// in any case, fails the test.
func (a fourAccount) users(t *testing.T) map[string]userView {
	t.Helper()
	out := map[string]userView{}
	add := func(email string, v userView) {
		key := strings.ToLower(email)
		if _, dup := out[key]; dup {
			t.Errorf("PagerTree has two users with the email %s", key)
		}
		out[key] = v
	}
	if !a.v4 {
		for _, u := range a.emu.Users() {
			add(u.Email, userView{Name: u.Name, Phone: u.Phone})
		}
		return out
	}
	for _, au := range a.emu.AccountUsers() {
		if au.User.PrimaryEmail() == v4Owner {
			continue
		}
		v := userView{Name: au.User.Name}
		for _, ph := range au.User.Phones {
			v.Phone = ph.Phone
		}
		add(au.User.PrimaryEmail(), v)
	}
	return out
}

// teams are the account's teams by name: marker and member emails.
func (a fourAccount) teams(t *testing.T) map[string]teamView {
	t.Helper()
	if !a.v4 {
		_, teams := viewAccount(t, a.emu)
		return teams
	}
	emails := map[string]string{}
	for _, au := range a.emu.AccountUsers() {
		emails[au.ID] = au.User.PrimaryEmail()
	}
	out := map[string]teamView{}
	for _, tm := range a.emu.TeamsV4() {
		members := []string{}
		for _, id := range tm.MemberAccountUserIDs {
			members = append(members, emails[id])
		}
		slices.Sort(members)
		out[tm.Name] = teamView{Description: tm.Notes, Members: members}
	}
	return out
}

// TestFourSourcesAtOnce syncs an LDAP directory (slapd), Entra ID (the
// Graph fake), Google Workspace (its fake) and a file into one PagerTree
// account, on v3 and on v4: a person in several sources, under emails
// differing in case, is one PagerTree user named as the first source in
// the config has them; each source's on-call group becomes a team through
// that source's rule, its marker naming the source; a second run writes
// nothing; and a failing source, Graph answering 500 past every retry or
// slapd gone, fails the run naming it before any write.
func TestFourSourcesAtOnce(t *testing.T) {
	for _, api := range []string{"v3", "v4"} {
		t.Run(api, func(t *testing.T) { testFourSources(t, api) })
	}
}

func testFourSources(t *testing.T, api string) {
	ldapServer := slapd.Start(t, slapd.Options{LDIF: fourLDIF})

	const graphSecret = "graph-four-sources-secret"
	graph := graphtest.NewServer(graphtest.Tenant{
		Users: []graphtest.User{
			{ID: "u-alice", Mail: "ALICE@EXAMPLE.COM", DisplayName: "Alice (Entra)", AccountEnabled: true},
			{ID: "u-dave", Mail: "dave@example.com", DisplayName: "Dave Diaz", AccountEnabled: true},
			{ID: "u-erin", Mail: "erin@example.com", DisplayName: "Erin Evans", AccountEnabled: false},
		},
		Groups: []graphtest.Group{
			{ID: "g-web", DisplayName: "oncall-web", Members: []string{"u-alice", "u-dave", "u-erin"}},
			{ID: "g-all", DisplayName: "all-staff", Members: []string{"u-alice", "u-dave"}},
		},
	}, graphtest.Options{ClientID: "app-id", ClientSecret: graphSecret})
	t.Cleanup(graph.Close)
	t.Setenv("TEST_GRAPH_SECRET", graphSecret)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sa := googletest.ServiceAccount{Email: "ptsync@four.iam.gserviceaccount.com", ClientID: "1234567890", KeyID: "four-key", Key: &key.PublicKey}
	google := googletest.NewServer(googletest.Domain{
		Users: []googletest.User{
			{ID: "u-admin", PrimaryEmail: "admin@example.com", FullName: "Directory Admin", IsAdmin: true},
			{ID: "u-bob", PrimaryEmail: "bob@EXAMPLE.com", FullName: "Robert Brown"},
			{ID: "u-frank", PrimaryEmail: "frank@example.com", FullName: "Frank Fox"},
		},
		Groups: []googletest.Group{
			{ID: "g-sre", Email: "oncall-sre@example.com", Name: "oncall-sre", Members: []googletest.Member{{ID: "u-bob"}, {ID: "u-frank"}}},
		},
	}, googletest.Options{ServiceAccount: sa, DelegatedScopes: googletest.ReadOnlyScopes})
	t.Cleanup(google.Close)

	acct := newFourAccount(t, api)
	dir := t.TempDir()
	keyJSON := googletest.ServiceAccountKey(sa, key, google.TokenURL())
	mustWrite(t, filepath.Join(dir, "service-account.json"), string(keyJSON))
	var k struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(keyJSON, &k); err != nil {
		t.Fatal(err)
	}
	secrets := []string{graphSecret, slapd.ReaderPassword, strings.Split(k.PrivateKey, "\n")[5]}
	mustWrite(t, filepath.Join(dir, "reader.pass"), slapd.ReaderPassword+"\n")
	vendors := filepath.Join(dir, "vendors.yaml")
	mustWrite(t, vendors, fourVendors())

	cfg := filepath.Join(dir, "ptsync.yaml")
	mustWrite(t, cfg, acct.block+fmt.Sprintf(`sources:
  - name: corp
    type: ldap
    ldap:
      url: %s
      start_tls: true
      ca_file: %s
      bind_dn: %s
      bind_password_file: reader.pass
      page_size: 2
      users:
        base_dn: %s
      groups:
        base_dn: %s
  - name: entra
    type: msgraph
    msgraph:
      tenant_id: %s
      client_id: app-id
      client_secret: ${TEST_GRAPH_SECRET}
      group_filter: "startswith(displayName,'oncall-')"
      base_url: %s
      token_url: %s/{tenant_id}/oauth2/v2.0/token
  - name: workspace
    type: google
    google:
      credentials_file: service-account.json
      subject: admin@example.com
      group_query: "email:oncall-*"
      base_url: %s
  - name: contractors
    type: file
    file:
      path: vendors.yaml
teams:
  - source: corp
    match: "oncall-*"
    name: 'corp {{ trimPrefix "oncall-" .Name }}'
  - source: entra
    match: "oncall-*"
    name: 'entra {{ trimPrefix "oncall-" .Name }}'
  - source: workspace
    match: "oncall-*"
    name: 'workspace {{ trimPrefix "oncall-" .Name }}'
  - source: contractors
    match: "oncall-*"
    name: 'contractors {{ trimPrefix "oncall-" .Name }}'
users:
  delete: true
log:
  level: debug
`, ldapServer.URL, ldapServer.CAFile, slapd.ReaderDN, slapd.PeopleDN, slapd.GroupsDN,
		graph.TenantID(), graph.BaseURL(), graph.URL(), google.BaseURL()))

	ptsync := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCmd(t, append(args, "--config", cfg)...)
		for _, s := range secrets {
			if strings.Contains(stdout+stderr, s) {
				t.Errorf("ptsync %s printed a secret", strings.Join(args, " "))
			}
		}
		return code, stdout, stderr
	}
	// step runs one stage; the later ones build on it.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	wantUsers := map[string]userView{
		// alice is in corp, entra and contractors, bob in corp and
		// workspace: the name is the first source's in the config.
		"alice@example.com":   {Name: "Alice Anders", Phone: "+14155550100"},
		"bob@example.com":     {Name: "Bob Brown", Phone: "+14155550101"},
		"carol@example.com":   {Name: "Carol Chen"},
		"dave@example.com":    {Name: "Dave Diaz"},
		"frank@example.com":   {Name: "Frank Fox"},
		"gina@vendor.example": {Name: "Gina Green"},
	}
	wantTeams := map[string]teamView{
		"corp db": {
			Description: acct.marker("corp", entryUUID(t, ldapServer, "cn=oncall-db,"+slapd.GroupsDN)),
			Members:     []string{"alice@example.com", "bob@example.com", "carol@example.com"},
		},
		"entra web":          {Description: acct.marker("entra", "g-web"), Members: []string{"alice@example.com", "dave@example.com"}},
		"workspace sre":      {Description: acct.marker("workspace", "g-sre"), Members: []string{"bob@example.com", "frank@example.com"}},
		"contractors vendor": {Description: acct.marker("contractors", "g-vendor"), Members: []string{"alice@example.com", "gina@vendor.example"}},
	}
	check := func(t *testing.T, wantUsers map[string]userView, wantTeams map[string]teamView) {
		t.Helper()
		if got := acct.users(t); !reflect.DeepEqual(got, wantUsers) {
			t.Errorf("users:\n%v\nwant\n%v", got, wantUsers)
		}
		if got := acct.teams(t); !reflect.DeepEqual(got, wantTeams) {
			t.Errorf("teams:\n%v\nwant\n%v", got, wantTeams)
		}
	}

	step("validate --connect reaches all four sources", func(t *testing.T) {
		code, stdout, stderr := ptsync(t, "validate", "--connect")
		for _, s := range []string{"corp (ldap)", "entra (msgraph)", "workspace (google)", "contractors (file)"} {
			if !strings.Contains(stdout, "ok   source "+s) {
				t.Errorf("validate --connect does not report source %s ok", s)
			}
		}
		if code != exitOK || !strings.Contains(stdout, "valid (4 sources, 4 team rules)") {
			t.Errorf("validate --connect: exit %d\n%s%s", code, stdout, stderr)
		}
	})

	step("first sync merges people by email and makes a team per source", func(t *testing.T) {
		code, stdout, stderr := ptsync(t, "sync")
		if code != exitOK {
			t.Fatalf("sync: exit %d\n%s%s", code, stdout, stderr)
		}
		for _, want := range []string{
			"\nPlan: 10 to create, 0 to update, 0 to delete.\n",
			"\n+ user alice@example.com (Alice Anders, +14155550100)  # wanted from corp, entra, contractors\n",
			"\n+ user bob@example.com (Bob Brown, +14155550101)  # wanted from corp, workspace\n",
		} {
			if !strings.Contains("\n"+stdout, want) {
				t.Errorf("first sync output lacks %q:\n%s", want, stdout)
			}
		}
		check(t, wantUsers, wantTeams)
	})

	step("a second run writes nothing", func(t *testing.T) {
		acct.emu.ResetStats()
		if code, stdout, stderr := ptsync(t, "plan", "--detailed-exitcode"); code != exitOK || !strings.Contains(stdout, "No changes. PagerTree is in sync.") {
			t.Errorf("plan --detailed-exitcode: exit %d\n%s%s", code, stdout, stderr)
		}
		if code, stdout, stderr := ptsync(t, "sync"); code != exitOK || !strings.HasSuffix(stdout, "Applied 0 of 0 changes.\n") {
			t.Errorf("second sync: exit %d\n%s%s", code, stdout, stderr)
		}
		if s := acct.emu.Stats(); s.WriteAttempts != 0 || s.Writes != 0 {
			t.Errorf("the second run sent %d write requests (%d writes)", s.WriteAttempts, s.Writes)
		}
	})

	// failing runs a sync that one failing source must abort before any
	// write, with hank or ivy waiting in the vendor file to be written.
	failing := func(t *testing.T, source string, why ...string) {
		t.Helper()
		acct.emu.ResetStats()
		code, stdout, stderr := ptsync(t, "sync")
		prefix := `ptsync sync: source "` + source + `": `
		ok := code == exitError && stdout == "" && strings.HasPrefix(lastLine(stderr), prefix)
		for _, w := range why {
			ok = ok && strings.Contains(lastLine(stderr), w)
		}
		if !ok {
			t.Errorf("sync with source %s failing: exit %d, stdout %q, last stderr line %q; want exit 1 and a line starting %q holding %q",
				source, code, stdout, lastLine(stderr), prefix, why)
		}
		if s := acct.emu.Stats(); s.WriteAttempts != 0 {
			t.Errorf("PagerTree got %d write requests after source %s failed", s.WriteAttempts, source)
		}
		check(t, wantUsers, wantTeams)
	}

	step("Graph answering 500 past its retries fails the run before any write", func(t *testing.T) {
		mustWrite(t, vendors, fourVendors("hank@vendor.example"))
		graph.SetFault(func(*http.Request, int) (int, http.Header, string, bool) {
			return http.StatusInternalServerError, nil, `{"error":{"code":"UnknownError","message":"boom"}}`, true
		})
		failing(t, "entra", "answered 500", "gave up after")

		// The write held back was real: with Graph back, it is made.
		graph.SetFault(nil)
		code, stdout, stderr := ptsync(t, "sync")
		if code != exitOK || !strings.Contains(stdout, "\nPlan: 1 to create, 1 to update, 0 to delete.\n") {
			t.Fatalf("sync with Graph back: exit %d\n%s%s", code, stdout, stderr)
		}
		wantUsers["hank@vendor.example"] = userView{Name: "Hank Vendor"}
		vendor := wantTeams["contractors vendor"]
		vendor.Members = []string{"alice@example.com", "gina@vendor.example", "hank@vendor.example"}
		wantTeams["contractors vendor"] = vendor
		check(t, wantUsers, wantTeams)
	})

	step("slapd gone fails the run before any write", func(t *testing.T) {
		mustWrite(t, vendors, fourVendors("hank@vendor.example", "ivy@vendor.example"))
		if err := ldapServer.Stop(); err != nil {
			t.Fatal(err)
		}
		failing(t, "corp", "connection refused")
	})
}
