package main

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

// corpLDIF is the directory of the LDAP end-to-end test. Phones come in
// the shapes people type; users.phone_region reads the national ones as
// US numbers. ivan has no mail; heidi is in no on-call group; grace is in
// oncall-web only through the nested web-contractors; oscar lives outside
// ou=people, so the user search never sees him.
const corpLDIF = `dn: ou=contractors,` + slapd.Suffix + `
objectClass: organizationalUnit
ou: contractors

dn: uid=alice,` + slapd.PeopleDN + `
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
telephoneNumber: (415) 555-0101

dn: uid=carol,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Chen
displayName: Carol Chen
mail: carol@example.com
telephoneNumber: +44 20 7946 0958

dn: uid=dan,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: dan
cn: Dan
sn: Diaz
displayName: Dan Diaz
mail: dan@example.com
telephoneNumber: 415.555.0103

dn: uid=erin,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: erin
cn: Erin
sn: Evans
displayName: Erin Evans
mail: erin@example.com
telephoneNumber: +1-415-555-0104

dn: uid=frank,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: frank
cn: Frank
sn: Fox
displayName: Frank Fox
mail: frank@example.com
telephoneNumber: +1 (415) 555-0105

dn: uid=grace,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: grace
cn: Grace
sn: Gray
displayName: Grace Gray
mail: grace@example.com
telephoneNumber: +49 30 901820

dn: uid=heidi,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: heidi
cn: Heidi
sn: Hill
displayName: Heidi Hill
mail: heidi@example.com
telephoneNumber: +1 415 555 0107

dn: uid=ivan,` + slapd.PeopleDN + `
objectClass: inetOrgPerson
uid: ivan
cn: Ivan
sn: Ivanov
displayName: Ivan Ivanov
telephoneNumber: +1 415 555 0108

dn: uid=oscar,ou=contractors,` + slapd.Suffix + `
objectClass: inetOrgPerson
uid: oscar
cn: Oscar
sn: Olsen
displayName: Oscar Olsen
mail: oscar@example.com

dn: cn=oncall-db,` + slapd.GroupsDN + `
objectClass: groupOfNames
cn: oncall-db
member: uid=alice,` + slapd.PeopleDN + `
member: uid=bob,` + slapd.PeopleDN + `
member: uid=carol,` + slapd.PeopleDN + `
member: uid=frank,` + slapd.PeopleDN + `
member: uid=ivan,` + slapd.PeopleDN + `

dn: cn=oncall-web,` + slapd.GroupsDN + `
objectClass: groupOfNames
cn: oncall-web
member: uid=carol,` + slapd.PeopleDN + `
member: uid=dan,` + slapd.PeopleDN + `
member: uid=erin,` + slapd.PeopleDN + `
member: cn=web-contractors,` + slapd.GroupsDN + `
member: uid=oscar,ou=contractors,` + slapd.Suffix + `

dn: cn=web-contractors,` + slapd.GroupsDN + `
objectClass: groupOfNames
cn: web-contractors
member: uid=grace,` + slapd.PeopleDN + `

`

// corpChanges is a day in the directory: judy is hired into oncall-db,
// frank leaves (his entry and his membership go), and oncall-web is
// renamed oncall-frontend, keeping its entryUUID.
const corpChanges = `dn: uid=judy,` + slapd.PeopleDN + `
changetype: add
objectClass: inetOrgPerson
uid: judy
cn: Judy
sn: Jones
displayName: Judy Jones
mail: judy@example.com
telephoneNumber: 415 555 0109

dn: cn=oncall-db,` + slapd.GroupsDN + `
changetype: modify
add: member
member: uid=judy,` + slapd.PeopleDN + `
-
delete: member
member: uid=frank,` + slapd.PeopleDN + `
-

dn: uid=frank,` + slapd.PeopleDN + `
changetype: delete

dn: cn=oncall-web,` + slapd.GroupsDN + `
changetype: modrdn
newrdn: cn=oncall-frontend
deleteoldrdn: 1

`

// writeLDAPConfig writes dir/name, a config syncing the slapd directory
// at ldapURL (with StartTLS when it is ldap://) into the PagerTree at
// pagertreeURL, bound as the harness's read account with the password in
// bindPasswordFile (relative to the config), and returns its path. A page
// size of 3 makes each search of the small directory take several pages.
func writeLDAPConfig(t *testing.T, dir, name, ldapURL, caFile, bindPasswordFile, pagertreeURL string) string {
	t.Helper()
	startTLS := strings.HasPrefix(ldapURL, "ldap://")
	cfg := filepath.Join(dir, name)
	mustWrite(t, cfg, fmt.Sprintf(`pagertree:
  url: %s
  username: admin@example.com
  password: ${TEST_PT_PASSWORD}
sources:
  - name: corp
    type: ldap
    ldap:
      url: %s
      start_tls: %t
      ca_file: %s
      bind_dn: %s
      bind_password_file: %s
      page_size: 3
      users:
        base_dn: %s
      groups:
        base_dn: %s
teams:
  - source: corp
    match: "oncall-*"
    name: '{{ trimPrefix "oncall-" .Name | upper }} on-call'
users:
  delete: true
  phone_region: US
log:
  level: debug
`, pagertreeURL, ldapURL, startTLS, caFile, slapd.ReaderDN, bindPasswordFile, slapd.PeopleDN, slapd.GroupsDN))
	return cfg
}

// userView is what the test asserts of a PagerTree user.
type userView struct {
	Name, Phone string
	Admin       bool
}

// teamView is what the test asserts of a PagerTree team.
type teamView struct {
	Description string
	Members     []string // emails, sorted
}

// viewAccount returns the emulator's users by email and teams by name.
func viewAccount(t *testing.T, emu *pagertreetest.Server) (map[string]userView, map[string]teamView) {
	t.Helper()
	users := map[string]userView{}
	emails := map[string]string{}
	for _, u := range emu.Users() {
		users[u.Email] = userView{Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin}
		emails[u.ID] = u.Email
	}
	teams := map[string]teamView{}
	for _, tm := range emu.Teams() {
		members := []string{}
		for _, id := range tm.MemberUserIDs {
			members = append(members, emails[id])
		}
		slices.Sort(members)
		if _, dup := teams[tm.Name]; dup {
			t.Fatalf("two teams are named %q", tm.Name)
		}
		teams[tm.Name] = teamView{Description: tm.Description, Members: members}
	}
	return users, teams
}

// teamNamed returns the emulator's team called name.
func teamNamed(t *testing.T, emu *pagertreetest.Server, name string) pagertree.Team {
	t.Helper()
	for _, tm := range emu.Teams() {
		if tm.Name == name {
			return tm
		}
	}
	t.Fatalf("PagerTree has no team %q", name)
	return pagertree.Team{}
}

// entryUUID reads the stable id slapd gave the entry at dn.
func entryUUID(t *testing.T, s *slapd.Server, dn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, code, err := s.LDAPSearch(ctx, "-b", dn, "-s", "base", "(objectClass=*)", "entryUUID")
	if err != nil || code != 0 {
		t.Fatalf("ldapsearch %s: exit %d, %v\n%s", dn, code, err, out)
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if uuid, ok := strings.CutPrefix(line, "entryUUID: "); ok {
			return uuid
		}
	}
	t.Fatalf("ldapsearch %s returned no entryUUID:\n%s", dn, out)
	return ""
}

func TestLDAPEndToEnd(t *testing.T) {
	dirServer := slapd.Start(t, slapd.Options{LDIF: corpLDIF})
	emu := newAccount(t)
	admin, err := emu.AddUser(pagertree.User{Name: "Pat Owner", Email: "owner@example.com", Phone: "+14155550199", Roles: pagertree.Roles{Admin: true}})
	if err != nil {
		t.Fatal(err)
	}
	facilities, err := emu.AddTeam(pagertree.Team{Name: "Facilities", Description: "made by hand", MemberUserIDs: []string{admin.ID}})
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "reader.pass"), slapd.ReaderPassword+"\n")
	cfg := writeLDAPConfig(t, dir, "starttls.yaml", dirServer.URL, dirServer.CAFile, "reader.pass", emu.URL())

	// ptsync runs one command line and checks that no output carries the
	// bind password, whatever the command did.
	ptsync := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		code, stdout, stderr := runCmd(t, args...)
		if strings.Contains(stdout+stderr, slapd.ReaderPassword) {
			t.Errorf("ptsync %s printed the bind password", strings.Join(args, " "))
		}
		return code, stdout, stderr
	}
	// step runs one stage; the later ones build on it, so a failure ends the test.
	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	// The account as the owner left it; every later state must keep it.
	untouched := func(t *testing.T) {
		t.Helper()
		users, teams := emu.Users(), emu.Teams()
		if i := slices.IndexFunc(users, func(u pagertree.User) bool { return u.ID == admin.ID }); i < 0 || users[i] != admin {
			t.Errorf("the account admin was changed or deleted: %+v", users)
		}
		if i := slices.IndexFunc(teams, func(tm pagertree.Team) bool { return tm.ID == facilities.ID }); i < 0 || !reflect.DeepEqual(teams[i], facilities) {
			t.Errorf("the unmanaged team was changed or deleted: now %+v, was %+v", teams, facilities)
		}
	}
	dbMarker := "[managed by ptsync: source=corp group=" + entryUUID(t, dirServer, "cn=oncall-db,"+slapd.GroupsDN) + "]"
	webMarker := "[managed by ptsync: source=corp group=" + entryUUID(t, dirServer, "cn=oncall-web,"+slapd.GroupsDN) + "]"
	owner := userView{Name: "Pat Owner", Phone: "+14155550199", Admin: true}

	step("validate --connect binds over StartTLS and LDAPS", func(t *testing.T) {
		ldaps := writeLDAPConfig(t, dir, "ldaps.yaml", dirServer.LDAPSURL, dirServer.CAFile, "reader.pass", emu.URL())
		for _, path := range []string{cfg, ldaps} {
			code, stdout, stderr := ptsync(t, "validate", "--connect", "--config", path)
			want := path + ": valid (1 sources, 1 team rules)\n" +
				"ok   pagertree " + emu.URL() + ": logged in\n" +
				"ok   source corp (ldap): connected\n"
			if code != exitOK || stdout != want {
				t.Errorf("validate --connect %s: exit %d, stdout %q, want %q; stderr %q", filepath.Base(path), code, stdout, want, stderr)
			}
		}

		// A wrong password fails the bind, so "connected" above means bound.
		mustWrite(t, filepath.Join(dir, "wrong.pass"), "not-the-reader-secret\n")
		wrong := writeLDAPConfig(t, dir, "wrong-password.yaml", dirServer.URL, dirServer.CAFile, "wrong.pass", emu.URL())
		code, _, stderr := ptsync(t, "validate", "--connect", "--config", wrong)
		want := "FAIL source corp (ldap): ldap " + dirServer.URL + ": bind as " + slapd.ReaderDN +
			": LDAP Result Code 49 \"Invalid Credentials\": ; check bind_dn and the bind password"
		if code != exitError || lastLine(stderr) != want {
			t.Errorf("wrong bind password: exit %d, last stderr line %q, want %q", code, lastLine(stderr), want)
		}
		if strings.Contains(stderr, "not-the-reader-secret") {
			t.Errorf("the wrong password leaked into the output: %q", stderr)
		}
		if w := emu.Stats().WriteAttempts; w != 0 {
			t.Errorf("validate --connect sent %d write requests", w)
		}
	})

	step("first sync creates the on-call teams and their members", func(t *testing.T) {
		code, stdout, stderr := ptsync(t, "sync", "--config", cfg)
		if code != exitOK {
			t.Fatalf("sync exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if !strings.HasSuffix(stdout, "\nPlan: 9 to create, 0 to update, 0 to delete.\n\nApplied 9 of 9 changes.\n") {
			t.Errorf("sync output = %q", stdout)
		}
		users, teams := viewAccount(t, emu)
		// heidi is in no on-call group, ivan has no mail and oscar is
		// outside the user search: none of them is created.
		wantUsers := map[string]userView{
			"owner@example.com": owner,
			"alice@example.com": {Name: "Alice Anders", Phone: "+14155550100"},
			"bob@example.com":   {Name: "Bob Brown", Phone: "+14155550101"},
			"carol@example.com": {Name: "Carol Chen", Phone: "+442079460958"},
			"dan@example.com":   {Name: "Dan Diaz", Phone: "+14155550103"},
			"erin@example.com":  {Name: "Erin Evans", Phone: "+14155550104"},
			"frank@example.com": {Name: "Frank Fox", Phone: "+14155550105"},
			"grace@example.com": {Name: "Grace Gray", Phone: "+4930901820"},
		}
		if !reflect.DeepEqual(users, wantUsers) {
			t.Errorf("users = %+v\nwant    %+v", users, wantUsers)
		}
		wantTeams := map[string]teamView{
			"Facilities":  {Description: "made by hand", Members: []string{"owner@example.com"}},
			"DB on-call":  {Description: dbMarker, Members: []string{"alice@example.com", "bob@example.com", "carol@example.com", "frank@example.com"}},
			"WEB on-call": {Description: webMarker, Members: []string{"carol@example.com", "dan@example.com", "erin@example.com", "grace@example.com"}},
		}
		if !reflect.DeepEqual(teams, wantTeams) {
			t.Errorf("teams = %+v\nwant    %+v", teams, wantTeams)
		}
		untouched(t)
	})

	step("a second run finds nothing to do and writes nothing", func(t *testing.T) {
		before := emu.Stats()
		code, stdout, stderr := ptsync(t, "plan", "--config", cfg, "--detailed-exitcode")
		if code != exitOK || stdout != "Source corp skipped 2 entries: no_email 1, outside_scope 1.\n\nNo changes. PagerTree is in sync.\n" {
			t.Errorf("plan --detailed-exitcode: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		code, stdout, stderr = ptsync(t, "sync", "--config", cfg)
		if code != exitOK || stdout != "Source corp skipped 2 entries: no_email 1, outside_scope 1.\n\nNo changes. PagerTree is in sync.\n\nApplied 0 of 0 changes.\n" {
			t.Errorf("sync: exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		if after := emu.Stats(); after.WriteAttempts != before.WriteAttempts || after.Writes != before.Writes {
			t.Errorf("a converged plan and sync sent %d write requests (%d writes)",
				after.WriteAttempts-before.WriteAttempts, after.Writes-before.Writes)
		}
	})

	step("a hire, a leaver and a group rename", func(t *testing.T) {
		web := teamNamed(t, emu, "WEB on-call")
		dirServer.Add(t, corpChanges)

		// Two destructive changes (frank off DB on-call, frank deleted)
		// are within the default safety.max_destructive of 25, and the
		// percent limit does not apply to an account this small: the
		// sync applies them without --allow-destructive.
		code, stdout, stderr := ptsync(t, "sync", "--config", cfg)
		want := `+ user judy@example.com (Judy Jones, +14155550109)  # wanted from corp
~ team FRONTEND on-call: name "WEB on-call" -> "FRONTEND on-call"  # group "oncall-frontend" of source "corp"; renamed in the directory
~ team DB on-call: members +judy@example.com -frank@example.com  # group "oncall-db" of source "corp"
- user frank@example.com  # absent from every source

Source corp skipped 2 entries: no_email 1, outside_scope 1.

Plan: 1 to create, 2 to update, 1 to delete.

Applied 4 of 4 changes.
`
		if code != exitOK || stdout != want {
			t.Fatalf("sync: exit %d, stderr %q, stdout\n%s\nwant\n%s", code, stderr, stdout, want)
		}

		frontend := teamNamed(t, emu, "FRONTEND on-call")
		if frontend.ID != web.ID || frontend.ScheduleID != web.ScheduleID {
			t.Errorf("the renamed team is id %s, schedule %s; want it renamed in place: id %s, schedule %s",
				frontend.ID, frontend.ScheduleID, web.ID, web.ScheduleID)
		}
		users, teams := viewAccount(t, emu)
		wantUsers := map[string]userView{
			"owner@example.com": owner,
			"alice@example.com": {Name: "Alice Anders", Phone: "+14155550100"},
			"bob@example.com":   {Name: "Bob Brown", Phone: "+14155550101"},
			"carol@example.com": {Name: "Carol Chen", Phone: "+442079460958"},
			"dan@example.com":   {Name: "Dan Diaz", Phone: "+14155550103"},
			"erin@example.com":  {Name: "Erin Evans", Phone: "+14155550104"},
			"grace@example.com": {Name: "Grace Gray", Phone: "+4930901820"},
			"judy@example.com":  {Name: "Judy Jones", Phone: "+14155550109"},
		}
		if !reflect.DeepEqual(users, wantUsers) {
			t.Errorf("users = %+v\nwant    %+v", users, wantUsers)
		}
		wantTeams := map[string]teamView{
			"Facilities":       {Description: "made by hand", Members: []string{"owner@example.com"}},
			"DB on-call":       {Description: dbMarker, Members: []string{"alice@example.com", "bob@example.com", "carol@example.com", "judy@example.com"}},
			"FRONTEND on-call": {Description: webMarker, Members: []string{"carol@example.com", "dan@example.com", "erin@example.com", "grace@example.com"}},
		}
		if !reflect.DeepEqual(teams, wantTeams) {
			t.Errorf("teams = %+v\nwant    %+v", teams, wantTeams)
		}
		untouched(t)

		before := emu.Stats()
		code, stdout, _ = ptsync(t, "plan", "--config", cfg, "--detailed-exitcode")
		if code != exitOK || stdout != "Source corp skipped 2 entries: no_email 1, outside_scope 1.\n\nNo changes. PagerTree is in sync.\n" {
			t.Errorf("third plan: exit %d, stdout %q", code, stdout)
		}
		if after := emu.Stats(); after.WriteAttempts != before.WriteAttempts {
			t.Errorf("plan sent %d write requests", after.WriteAttempts-before.WriteAttempts)
		}
	})

	step("a source that cannot be reached fails the run before any write", func(t *testing.T) {
		if err := dirServer.Stop(); err != nil {
			t.Fatal(err)
		}
		before := emu.Stats()
		code, stdout, stderr := ptsync(t, "sync", "--config", cfg)
		addr := strings.TrimPrefix(dirServer.URL, "ldap://")
		want := `ptsync sync: source "corp": ldap ` + dirServer.URL + ": connect: dial tcp " + addr +
			": connect: connection refused; check the url's host and port and that the server is running"
		if code != exitError || stdout != "" || lastLine(stderr) != want {
			t.Errorf("sync with slapd down: exit %d, stdout %q, last stderr line %q, want exit 1 and %q", code, stdout, lastLine(stderr), want)
		}
		// PagerTree is read alongside the sources; it is never written.
		if after := emu.Stats(); after.WriteAttempts != before.WriteAttempts {
			t.Errorf("PagerTree got %d write requests after the source failed", after.WriteAttempts-before.WriteAttempts)
		}
		untouched(t)
	})
}
