package ldap

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
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

// starUID is a login name holding every character special in a filter.
const starUID = `st*r(x)\y`

// membershipLDIF is a small directory exercising every membership form.
// bob's mail has spaces around it (base64 in the LDIF to keep them);
// carol is named with odd case and spaces in one member value; alice2
// shares alice's email; dave has no email; outsider lives outside
// ou=people; ghost does not exist; parent and child contain each other.
const membershipLDIF = `dn: ou=other,dc=example,dc=com
objectClass: organizationalUnit
ou: other

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
displayName: Alice Anders
mail: alice@example.com
telephoneNumber: +1 415 555 0101

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
mail:: ICBib2JAZXhhbXBsZS5jb20gIA==

dn: uid=carol,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
mail: carol@example.com

dn: uid=dave,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D

dn: uid=alice2,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice2
cn: Alice Again
sn: A
mail: ALICE@Example.com

dn: uid=st*r(x)\5Cy,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: st*r(x)\y
cn: Star
sn: S
mail: star@example.com

dn: uid=outsider,ou=other,dc=example,dc=com
objectClass: inetOrgPerson
uid: outsider
cn: Outsider
sn: O
mail: outsider@example.com

dn: cn=oncall-db,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: oncall-db
description: database on-call
member: uid=alice,ou=people,dc=example,dc=com
member: UID=Carol, OU=People, DC=Example, DC=Com
member: uid=dave,ou=people,dc=example,dc=com
member: uid=outsider,ou=other,dc=example,dc=com
member: uid=ghost,ou=people,dc=example,dc=com
member: uid=st*r(x)\5Cy,ou=people,dc=example,dc=com

dn: cn=parent,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: parent
member: uid=bob,ou=people,dc=example,dc=com
member: cn=child,ou=groups,dc=example,dc=com

dn: cn=child,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: child
member: uid=alice2,ou=people,dc=example,dc=com
member: cn=parent,ou=groups,dc=example,dc=com

dn: cn=oncall-web,ou=groups,dc=example,dc=com
objectClass: groupOfUniqueNames
cn: oncall-web
uniqueMember: uid=alice,ou=people,dc=example,dc=com#'0101'B
uniqueMember: uid=bob,ou=people,dc=example,dc=com
uniqueMember: uid=ghost,ou=people,dc=example,dc=com#'1'B

dn: cn=oncall-ops,ou=groups,dc=example,dc=com
objectClass: posixGroup
cn: oncall-ops
gidNumber: 5000
memberUid: ALICE
memberUid: st*r(x)\y
memberUid: dave
memberUid: nobody

`

// slapdConfig is a source configured against s, bound as the reader with
// the 500-entry plain size limit; edit adjusts it per test.
func slapdConfig(s *slapd.Server, edit func(*Config)) *Config {
	l := testConfig(s.URL, slapd.PeopleDN, slapd.GroupsDN)
	l.BindDN, l.BindPassword = slapd.ReaderDN, slapd.ReaderPassword
	l.PageSize = 100
	if edit != nil {
		edit(l)
	}
	return l
}

func slapdSource(t *testing.T, s *slapd.Server, log *zap.Logger, edit func(*Config)) *Source {
	t.Helper()
	if log == nil {
		log = zap.NewNop()
	}
	src, err := newSource("corp", slapdConfig(s, edit), log)
	if err != nil {
		t.Fatalf("newSource: %v", err)
	}
	return src
}

func fetch(t *testing.T, src *Source) *sources.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return snap
}

// memberEmails maps each group name to its members' emails, sorted.
func memberEmails(t *testing.T, snap *sources.Snapshot) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, g := range snap.Groups {
		emails := []string{}
		for _, id := range g.Members {
			u, ok := snap.Users[id]
			if !ok {
				t.Fatalf("group %s lists member %q that is not in Users", g.Name, id)
			}
			emails = append(emails, strings.ToLower(u.Email))
		}
		slices.Sort(emails)
		out[g.Name] = emails
	}
	return out
}

// userEmails lists the snapshot's users' emails, sorted.
func userEmails(t *testing.T, snap *sources.Snapshot) []string {
	t.Helper()
	var emails []string
	for id, u := range snap.Users {
		if id != u.ID {
			t.Errorf("user keyed %q has ID %q", id, u.ID)
		}
		emails = append(emails, u.Email)
	}
	slices.Sort(emails)
	return emails
}

func equalMaps[V any](a, b map[string]V, eq func(V, V) bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !eq(v, w) {
			return false
		}
	}
	return true
}

func TestSlapdMembership(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})

	tests := []struct {
		name        string
		edit        func(*Config)
		wantMembers map[string][]string
		wantSkipped map[string]int
		wantUsers   []string // nil: alice, bob, carol and star
	}{
		{
			name: "groupOfNames nested with a cycle",
			wantMembers: map[string][]string{
				"oncall-db": {"alice@example.com", "carol@example.com", "star@example.com"},
				"parent":    {"alice@example.com", "bob@example.com"},
				"child":     {"alice@example.com", "bob@example.com"},
			},
			// dave: no mail; alice2: alice's email; outsider and ghost:
			// members outside ou=people.
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 2},
		},
		{
			name: "groupOfNames not nested",
			edit: func(l *Config) { l.Groups.Nested = false },
			wantMembers: map[string][]string{
				"oncall-db": {"alice@example.com", "carol@example.com", "star@example.com"},
				"parent":    {"bob@example.com"},
				"child":     {"alice@example.com"},
			},
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 2},
		},
		{
			name: "groupOfUniqueNames with optional uids",
			edit: func(l *Config) { l.Groups.MemberAttribute = "uniqueMember" },
			wantMembers: map[string][]string{
				"oncall-web": {"alice@example.com", "bob@example.com"},
			},
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 1},
		},
		{
			name: "posixGroup memberUid resolved through uid",
			edit: func(l *Config) { l.Groups.MemberAttribute = "memberUid" },
			wantMembers: map[string][]string{
				"oncall-ops": {"alice@example.com", "star@example.com"},
			},
			// nobody matches no user; dave was counted as having no email.
			wantSkipped: map[string]int{sources.SkipNoEmail: 1, sources.SkipDuplicateEmail: 1, sources.SkipOutsideScope: 1},
		},
		{
			name: "configured filter with escaped special characters",
			edit: func(l *Config) {
				l.Users.Filter = "(|(uid=" + goldap.EscapeFilter(starUID) + ")(uid=bob))"
				l.Groups.Filter = "(cn=oncall-ops)"
				l.Groups.MemberAttribute = "memberUid"
			},
			wantMembers: map[string][]string{
				"oncall-ops": {"star@example.com"},
			},
			// ALICE and dave and nobody are outside this user search.
			wantSkipped: map[string]int{sources.SkipOutsideScope: 3},
			wantUsers:   []string{"bob@example.com", "star@example.com"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := fetch(t, slapdSource(t, srv, nil, tc.edit))
			if snap.Source != "corp" {
				t.Errorf("Source = %q, want corp", snap.Source)
			}
			if got := memberEmails(t, snap); !equalMaps(got, tc.wantMembers, slices.Equal) {
				t.Errorf("members = %v\nwant %v", got, tc.wantMembers)
			}
			if !equalMaps(snap.Skipped, tc.wantSkipped, func(a, b int) bool { return a == b }) {
				t.Errorf("Skipped = %v, want %v", snap.Skipped, tc.wantSkipped)
			}
			want := tc.wantUsers
			if want == nil {
				want = []string{"alice@example.com", "bob@example.com", "carol@example.com", "star@example.com"}
			}
			if got := userEmails(t, snap); !slices.Equal(got, want) {
				t.Errorf("users = %v, want %v", got, want)
			}
		})
	}
}

func TestSlapdUserFields(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	snap := fetch(t, slapdSource(t, srv, nil, nil))
	byEmail := map[string]sources.User{}
	for _, u := range snap.Users {
		byEmail[u.Email] = u
	}
	alice, bob := byEmail["alice@example.com"], byEmail["bob@example.com"]
	if alice.Name != "Alice Anders" || alice.Phone != "+1 415 555 0101" || alice.Disabled {
		t.Errorf("alice = %+v, want name Alice Anders, phone +1 415 555 0101, enabled", alice)
	}
	if bob.Email != "bob@example.com" {
		t.Errorf("bob's email was not trimmed: %q", bob.Email)
	}
	// entryUUID as text: 36 characters, as slapd shows it.
	if len(alice.ID) != 36 || strings.Count(alice.ID, "-") != 4 {
		t.Errorf("alice's ID %q is not an entryUUID", alice.ID)
	}
	out, code, err := srv.LDAPSearch(context.Background(), "-b", "uid=alice,"+slapd.PeopleDN, "-s", "base", "(objectClass=*)", "entryUUID")
	if err != nil || code != 0 {
		t.Fatalf("ldapsearch: exit %d, %v\n%s", code, err, out)
	}
	if !bytes.Contains(out, []byte("entryUUID: "+alice.ID)) {
		t.Errorf("alice's ID %q is not her entryUUID:\n%s", alice.ID, out)
	}
	for _, g := range snap.Groups {
		if g.Name == "oncall-db" && g.Description != "database on-call" {
			t.Errorf("oncall-db description = %q", g.Description)
		}
	}
}

// TestSlapdPagingPastSizeLimit reads 3,000 users as an account whose
// plain searches stop at 500 entries.
func TestSlapdPagingPastSizeLimit(t *testing.T) {
	pop := slapd.Population{Users: 3000, Groups: 20, MembersPerGroup: 150}
	var ldif bytes.Buffer
	if err := pop.WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	srv := slapd.Start(t, slapd.Options{LDIF: ldif.String()})
	for _, pageSize := range []int{500, 200} {
		snap := fetch(t, slapdSource(t, srv, nil, func(l *Config) { l.PageSize = pageSize }))
		if len(snap.Users) != pop.Users || len(snap.Groups) != pop.Groups {
			t.Fatalf("page size %d: got %d users and %d groups, want %d and %d", pageSize, len(snap.Users), len(snap.Groups), pop.Users, pop.Groups)
		}
		emails := map[string]bool{}
		for _, u := range snap.Users {
			emails[u.Email] = true
		}
		for i := range pop.Users {
			if !emails[slapd.UserEmail(i)] {
				t.Fatalf("page size %d: user %s is missing", pageSize, slapd.UserEmail(i))
			}
		}
		members := memberEmails(t, snap)
		for g := range pop.Groups {
			got := members[slapd.GroupName(g)]
			if len(got) != pop.MembersPerGroup {
				t.Fatalf("page size %d: group %s has %d members, want %d", pageSize, slapd.GroupName(g), len(got), pop.MembersPerGroup)
			}
			if want := slapd.UserEmail(pop.GroupMember(g, 0)); !slices.Contains(got, want) {
				t.Errorf("page size %d: group %s lacks %s", pageSize, slapd.GroupName(g), want)
			}
		}
		if len(snap.Skipped) != 0 {
			t.Errorf("page size %d: Skipped = %v, want none", pageSize, snap.Skipped)
		}
	}
}

// userPageSpy records the page size of every request of the user search
// on any of a fetch's connections, and cancels the fetch's context as soon
// as its first page has arrived.
type userPageSpy struct {
	cancel    context.CancelFunc
	mu        sync.Mutex
	pageSizes []uint32
}

// cancellingClient is one connection watched by a userPageSpy.
type cancellingClient struct {
	goldap.Client
	spy *userPageSpy
}

func (c *cancellingClient) Search(req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	paging, _ := goldap.FindControl(req.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
	if paging == nil {
		return nil, errors.New("a search was sent without the paging control")
	}
	if req.BaseDN != slapd.PeopleDN {
		return c.Client.Search(req)
	}
	c.spy.mu.Lock()
	c.spy.pageSizes = append(c.spy.pageSizes, paging.PagingSize)
	c.spy.mu.Unlock()
	res, err := c.Client.Search(req)
	c.spy.cancel()
	return res, err
}

func TestSlapdCancelMidPaging(t *testing.T) {
	pop := slapd.Population{Users: 1000}
	var ldif bytes.Buffer
	if err := pop.WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	srv := slapd.Start(t, slapd.Options{LDIF: ldif.String()})
	src := slapdSource(t, srv, nil, func(l *Config) { l.PageSize = 100 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spy := &userPageSpy{cancel: cancel}
	connect := src.dial
	src.dial = func(ctx context.Context) (goldap.Client, error) {
		conn, err := connect(ctx)
		if err != nil {
			return nil, err
		}
		return &cancellingClient{Client: conn, spy: spy}, nil
	}

	snap, err := src.Fetch(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch error = %v, want context.Canceled", err)
	}
	if snap != nil {
		t.Errorf("Fetch returned a snapshot of %d users with its error", len(snap.Users))
	}
	if !strings.Contains(err.Error(), "search users") || !strings.Contains(err.Error(), slapd.PeopleDN) {
		t.Errorf("error %q does not name the operation and base DN", err)
	}
	// One page and no other request: the cancelled fetch closes the
	// connection, which frees the server's cursor. Fetch has returned, so
	// no connection is left to touch spy.
	if want := []uint32{100}; !slices.Equal(spy.pageSizes, want) {
		t.Errorf("page sizes sent = %v, want %v", spy.pageSizes, want)
	}
}

func TestSlapdConnectionErrors(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	otherCA := slapd.OtherCAFile(t)

	tests := []struct {
		name string
		edit func(*Config)
		// fetch runs a whole Fetch instead of Check.
		fetch    bool
		wantCode uint16 // LDAP result code the error must carry, if any
		wantText []string
	}{
		{
			name:     "wrong password",
			edit:     func(l *Config) { l.BindPassword = "not-the-password" },
			wantCode: goldap.LDAPResultInvalidCredentials,
			wantText: []string{srv.URL, "bind as " + slapd.ReaderDN, "check bind_dn and the bind password"},
		},
		{
			name:     "wrong users base DN",
			edit:     func(l *Config) { l.Users.BaseDN = "ou=nowhere,dc=example,dc=com" },
			fetch:    true,
			wantCode: goldap.LDAPResultNoSuchObject,
			wantText: []string{srv.URL, `"ou=nowhere,dc=example,dc=com"`, "search users", "check that the base_dn exists"},
		},
		{
			name:     "wrong groups base DN",
			edit:     func(l *Config) { l.Groups.BaseDN = "ou=teams,dc=example,dc=com" },
			fetch:    true,
			wantCode: goldap.LDAPResultNoSuchObject,
			wantText: []string{`"ou=teams,dc=example,dc=com"`, "search groups", "check that the base_dn exists"},
		},
		{
			name:     "ldaps with a CA that did not sign the server certificate",
			edit:     func(l *Config) { l.URL, l.CAFile = srv.LDAPSURL, otherCA },
			wantText: []string{srv.LDAPSURL, "TLS handshake", "x509", "check ca_file"},
		},
		{
			name:     "StartTLS with a CA that did not sign the server certificate",
			edit:     func(l *Config) { l.StartTLS, l.CAFile = true, otherCA },
			wantText: []string{srv.URL, "StartTLS", "check ca_file"},
		},
		{
			name:     "ldap:// to the LDAPS port",
			edit:     func(l *Config) { l.URL = strings.Replace(srv.LDAPSURL, "ldaps://", "ldap://", 1) },
			wantText: []string{"bind as", "the server closed the connection", "check that the url's scheme fits the port"},
		},
		{
			name:     "ldaps:// to the plain port",
			edit:     func(l *Config) { l.URL, l.CAFile = strings.Replace(srv.URL, "ldap://", "ldaps://", 1), srv.CAFile },
			wantText: []string{"TLS handshake", "does not speak TLS on this port"},
		},
		{
			name:     "ldaps without ca_file: the system pool does not know the test CA",
			edit:     func(l *Config) { l.URL = srv.LDAPSURL },
			wantText: []string{"TLS handshake", "check ca_file"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := slapdSource(t, srv, nil, tc.edit)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var err error
			if tc.fetch {
				var snap *sources.Snapshot
				snap, err = src.Fetch(ctx)
				if snap != nil {
					t.Error("Fetch returned a snapshot with its error")
				}
			} else {
				err = src.Check(ctx)
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Logf("error: %v", err)
			if tc.wantCode != 0 && !goldap.IsErrorWithCode(err, tc.wantCode) {
				t.Errorf("error %v does not carry LDAP result code %d", err, tc.wantCode)
			}
			for _, want := range tc.wantText {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			for _, secret := range []string{slapd.ReaderPassword, "not-the-password"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the password", err)
				}
			}
		})
	}
}

func TestSlapdConnectionRefused(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{})
	url := srv.URL
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	src := slapdSource(t, srv, nil, func(l *Config) { l.URL = url })
	err := src.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connect") || !strings.Contains(err.Error(), "check the url's host and port") {
		t.Fatalf("error = %v, want a connect error saying to check the url", err)
	}
}

func TestSlapdTLS(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	otherCA := slapd.OtherCAFile(t)
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"ldaps with the CA", func(l *Config) { l.URL, l.CAFile = srv.LDAPSURL, srv.CAFile }},
		{"StartTLS with the CA", func(l *Config) { l.StartTLS, l.CAFile = true, srv.CAFile }},
		{"ldaps with insecure_skip_verify and a wrong CA", func(l *Config) {
			l.URL, l.CAFile, l.InsecureSkipVerify = srv.LDAPSURL, otherCA, true
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			src := slapdSource(t, srv, zap.New(core), tc.edit)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var conns [2]goldap.Client
			for i := range conns {
				conn, err := src.dial(ctx)
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				if _, ok := conn.TLSConnectionState(); !ok {
					t.Fatal("the connection is not encrypted")
				}
				conns[i] = conn
			}
			snap, err := src.fetchWith(ctx, stop, conns[0], conns[1], nil)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if len(snap.Users) != 4 {
				t.Errorf("got %d users, want 4", len(snap.Users))
			}
			warned := logs.FilterMessageSnippet("insecure_skip_verify").Len() == 1
			if want := src.cfg.insecure; warned != want {
				t.Errorf("warned about insecure_skip_verify: %t, want %t", warned, want)
			}
		})
	}
}

// TestSlapdDebugLogsLDAPSearch runs the logged ldapsearch command lines
// and checks they return what the source read.
func TestSlapdDebugLogsLDAPSearch(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: membershipLDIF})
	core, logs := observer.New(zapcore.DebugLevel)
	src := slapdSource(t, srv, zap.New(core), func(l *Config) { l.StartTLS, l.CAFile = true, srv.CAFile })
	snap := fetch(t, src)

	lines := logs.FilterMessage("ldap search").All()
	if len(lines) != 2 {
		t.Fatalf("logged %d searches, want 2 (users, groups)", len(lines))
	}
	// The user search returns every entry, skipped ones included: alice,
	// alice2, bob, carol, dave and the star user. The groups: oncall-db,
	// parent and child. The two searches run at once, so either may be
	// logged first.
	wantEntries := map[string]int{"search users": 6, "search groups": len(snap.Groups)}
	for _, entry := range lines {
		what := entry.ContextMap()["what"].(string)
		want, ok := wantEntries[what]
		if !ok {
			t.Fatalf("logged a search %q, want only %v, once each", what, wantEntries)
		}
		delete(wantEntries, what)
		cmdline := entry.ContextMap()["ldapsearch"].(string)
		if strings.Contains(cmdline, slapd.ReaderPassword) || !strings.Contains(cmdline, "-w '***'") {
			t.Fatalf("command line does not elide the password: %s", cmdline)
		}
		if !strings.Contains(cmdline, " -ZZ ") || !strings.Contains(cmdline, "pr=100/noprompt") {
			t.Errorf("command line lacks StartTLS or paging: %s", cmdline)
		}
		runnable := strings.Replace(cmdline, "-w '***'", "-w "+shellQuote(slapd.ReaderPassword), 1)
		out, err := exec.Command("sh", "-c", runnable).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, out)
		}
		if got := countEntries(out); got != want {
			t.Errorf("%s returned %d entries, want %d:\n%s", cmdline, got, want, out)
		}
	}
}

// countEntries counts the entries in ldapsearch's LDIF output.
func countEntries(ldif []byte) int {
	n := 0
	for _, line := range bytes.Split(ldif, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("dn:")) {
			n++
		}
	}
	return n
}
