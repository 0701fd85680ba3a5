package ldap

// Watch mode against a real slapd, with and without the syncprov overlay.
// Waits are bounded by watchWait; nothing sleeps: a change that must not
// be reported is made before one that must, and the feed reports changes
// in the order they were made.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
)

// watchWait bounds every wait for an event: generous, for a loaded
// two-core machine under -race.
const watchWait = 20 * time.Second

// watchPollEvery is how often polled feeds ask in tests.
const watchPollEvery = 100 * time.Millisecond

// watchLDIF is the directory the slapd watch tests start from: two users
// in a group, and printer, under ou=people but no inetOrgPerson.
const watchLDIF = `dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: alice@example.com

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
mail: bob@example.com

dn: cn=printer,ou=people,dc=example,dc=com
objectClass: organizationalRole
cn: printer

dn: cn=oncall,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: oncall
member: uid=alice,ou=people,dc=example,dc=com

`

const (
	aliceDN   = "uid=alice," + slapd.PeopleDN
	bobDN     = "uid=bob," + slapd.PeopleDN
	printerDN = "cn=printer," + slapd.PeopleDN
	oncallDN  = "cn=oncall," + slapd.GroupsDN
)

// watchRun is one Watch call running in the background.
type watchRun struct {
	events chan sources.Event
	done   chan error
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func startWatch(t *testing.T, src *Source, cookie []byte) *watchRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRun{events: make(chan sources.Event), done: make(chan error, 1), cancel: cancel}
	go func() {
		r.done <- src.Watch(ctx, sources.WatchOptions{Cookie: cookie, Poll: watchPollEvery}, r.events)
	}()
	t.Cleanup(func() {
		if err := r.stop(t); err != nil {
			t.Errorf("Watch returned %v after its context was cancelled, want nil", err)
		}
	})
	return r
}

// stop cancels Watch and returns what it returned.
func (r *watchRun) stop(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(watchWait):
			r.err = fmt.Errorf("Watch did not return within %s of its context being cancelled", watchWait)
		}
	})
	return r.err
}

// returned waits for Watch to return on its own and returns its error.
func (r *watchRun) returned(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.once.Do(func() { r.cancel() })
		return err
	case ev := <-r.events:
		t.Fatalf("Watch sent %+v, want it to return", ev)
	case <-time.After(watchWait):
		t.Fatalf("Watch did not return within %s", watchWait)
	}
	return nil
}

func (r *watchRun) next(t *testing.T) sources.Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case err := <-r.done:
		r.once.Do(func() { r.cancel() })
		t.Fatalf("Watch returned %v, want an event", err)
	case <-time.After(watchWait):
		t.Fatalf("no event within %s", watchWait)
	}
	return sources.Event{}
}

// established reads the feed's first event and checks it is one.
func (r *watchRun) established(t *testing.T, wantReset bool) sources.Event {
	t.Helper()
	ev := r.next(t)
	if ev.Cookie == nil || ev.Reset != wantReset {
		t.Fatalf("first event %+v, want a cookie and Reset %v", ev, wantReset)
	}
	return ev
}

// waitFor reads events until every wanted change (At aside) has come, and
// returns all the changes read and the last cookie sent.
func (r *watchRun) waitFor(t *testing.T, want ...sources.Change) ([]sources.Change, []byte) {
	t.Helper()
	var got []sources.Change
	var cookie []byte
	for !containsAll(got, want) {
		ev := r.next(t)
		if ev.Reset {
			t.Fatalf("event %+v resets the feed", ev)
		}
		got = append(got, ev.Changes...)
		if ev.Cookie != nil {
			cookie = ev.Cookie
		}
	}
	return got, cookie
}

func containsAll(got, want []sources.Change) bool {
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g sources.Change) bool { return sameChange(g, w) }) {
			return false
		}
	}
	return true
}

func sameChange(a, b sources.Change) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Deleted == b.Deleted
}

// noChangeOf fails when changes name id.
func noChangeOf(t *testing.T, changes []sources.Change, id, what string) {
	t.Helper()
	for _, c := range changes {
		if c.ID == id {
			t.Errorf("%s was reported: %+v", what, c)
		}
	}
}

var entryUUIDLine = regexp.MustCompile(`(?m)^entryUUID: (\S+)$`)

func slapdEntryUUID(t *testing.T, srv *slapd.Server, dn string) string {
	t.Helper()
	out, code, err := srv.LDAPSearch(context.Background(), "-b", dn, "-s", "base", "(objectClass=*)", "entryUUID")
	m := entryUUIDLine.FindSubmatch(out)
	if err != nil || code != 0 || m == nil {
		t.Fatalf("read the entryUUID of %s: exit %d, %v\n%s", dn, code, err, out)
	}
	return string(m[1])
}

func replaceMail(dn, mail string) string {
	return fmt.Sprintf("dn: %s\nchangetype: modify\nreplace: mail\nmail: %s\n", dn, mail)
}

func addMember(group, member string) string {
	return fmt.Sprintf("dn: %s\nchangetype: modify\nadd: member\nmember: %s\n", group, member)
}

func deleteEntry(dn string) string { return fmt.Sprintf("dn: %s\nchangetype: delete\n", dn) }

func addUser(uid string) string {
	return fmt.Sprintf("dn: uid=%[1]s,%[2]s\nchangetype: add\nobjectClass: inetOrgPerson\nuid: %[1]s\ncn: %[1]s\nsn: %[1]s\nmail: %[1]s@example.com\n", uid, slapd.PeopleDN)
}

func userChange(id string) sources.Change  { return sources.Change{ID: id, Kind: sources.ChangeUser} }
func groupChange(id string) sources.Change { return sources.Change{ID: id, Kind: sources.ChangeGroup} }
func userDeleted(id string) sources.Change {
	return sources.Change{ID: id, Kind: sources.ChangeUser, Deleted: true}
}

// cookieFeed is the feed a cookie of the source resumes.
func cookieFeed(t *testing.T, cookie []byte) string {
	t.Helper()
	var c watchCookie
	if err := json.Unmarshal(cookie, &c); err != nil {
		t.Fatalf("cookie %q: %v", cookie, err)
	}
	return c.Feed
}

func TestWatchSyncReportsChanges(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true, SessionLog: 100})
	alice, bob, oncall := slapdEntryUUID(t, srv, aliceDN), slapdEntryUUID(t, srv, bobDN), slapdEntryUUID(t, srv, oncallDN)
	printer := slapdEntryUUID(t, srv, printerDN)

	w := startWatch(t, slapdSource(t, srv, nil, nil), nil)
	ev := w.established(t, false)
	if len(ev.Changes) != 0 {
		t.Errorf("the refresh without cookie reported %+v: the content is no change", ev.Changes)
	}
	if feed := cookieFeed(t, ev.Cookie); feed != feedSync {
		t.Errorf("cookie of feed %q, want %q", feed, feedSync)
	}

	before := time.Now().Add(-time.Minute)
	srv.Modify(t, replaceMail(aliceDN, "alice@new.example.com"))
	got, _ := w.waitFor(t, userChange(alice))
	if at := got[0].At; at.Before(before) || at.After(time.Now().Add(time.Minute)) {
		t.Errorf("the change's At %v is not its modifyTimestamp", at)
	}

	srv.Modify(t, addMember(oncallDN, bobDN))
	w.waitFor(t, groupChange(oncall))

	// printer is under ou=people but outside the user filter; bob's
	// change comes after it.
	srv.Modify(t, "dn: "+printerDN+"\nchangetype: modify\nreplace: description\ndescription: moved\n")
	srv.Modify(t, replaceMail(bobDN, "bob@new.example.com"))
	got, _ = w.waitFor(t, userChange(bob))
	noChangeOf(t, got, printer, "printer (outside the user filter)")

	srv.Modify(t, addUser("carol"))
	carol := slapdEntryUUID(t, srv, "uid=carol,"+slapd.PeopleDN)
	w.waitFor(t, userChange(carol))

	srv.Modify(t, deleteEntry(bobDN))
	w.waitFor(t, userDeleted(bob))
}

// TestWatchSyncOtherIDAttributes: changes carry the ids snapshots use,
// and a deletion, which names the entry by its entryUUID only, none.
func TestWatchSyncOtherIDAttributes(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true})
	w := startWatch(t, slapdSource(t, srv, nil, func(c *Config) { c.Users.IDAttribute, c.Groups.IDAttribute = "uid", "cn" }), nil)
	w.established(t, false)
	srv.Modify(t, replaceMail(aliceDN, "alice@new.example.com"))
	srv.Modify(t, addMember(oncallDN, bobDN))
	srv.Modify(t, deleteEntry(bobDN))
	w.waitFor(t, userChange("alice"), groupChange("oncall"), userDeleted(""))
}

func TestWatchSyncConnections(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true})
	alice := slapdEntryUUID(t, srv, aliceDN)
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"StartTLS", func(c *Config) { c.StartTLS, c.CAFile = true, srv.CAFile }},
		{"LDAPS", func(c *Config) { c.URL, c.CAFile = srv.LDAPSURL, srv.CAFile }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatch(t, slapdSource(t, srv, nil, tc.edit), nil)
			w.established(t, false)
			srv.Modify(t, replaceMail(aliceDN, fmt.Sprintf("alice%d@example.com", i)))
			w.waitFor(t, userChange(alice))
		})
	}
}

// TestWatchSyncResumes stops Watch, changes the directory and resumes from
// the last cookie: the first event carries what changed meanwhile.
func TestWatchSyncResumes(t *testing.T) {
	tests := []struct {
		name       string
		sessionLog int
		// wantDeleted is how bob's deletion is reported: by its entryUUID
		// from the session log, or, without one, as a user change with no
		// ID, since a present phase does not say which entries went.
		wantDeleted func(bob string) sources.Change
	}{
		{"session log", 100, userDeleted},
		{"present phase", 0, func(string) sources.Change { return sources.Change{Kind: sources.ChangeUser} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true, SessionLog: tc.sessionLog})
			alice, bob, oncall := slapdEntryUUID(t, srv, aliceDN), slapdEntryUUID(t, srv, bobDN), slapdEntryUUID(t, srv, oncallDN)
			src := slapdSource(t, srv, nil, nil)

			w := startWatch(t, src, nil)
			w.established(t, false)
			srv.Modify(t, replaceMail(aliceDN, "alice@one.example.com"))
			_, cookie := w.waitFor(t, userChange(alice))
			if err := w.stop(t); err != nil {
				t.Fatalf("Watch returned %v when stopped, want nil", err)
			}

			srv.Modify(t, replaceMail(aliceDN, "alice@two.example.com"))
			srv.Modify(t, addMember(oncallDN, bobDN))
			srv.Modify(t, deleteEntry(bobDN))

			w = startWatch(t, src, cookie)
			ev := w.established(t, false)
			if want := []sources.Change{userChange(alice), groupChange(oncall), tc.wantDeleted(bob)}; !containsAll(ev.Changes, want) {
				t.Errorf("resumed with changes %+v, want %+v among them", ev.Changes, want)
			}
			srv.Modify(t, addUser("dave"))
			w.waitFor(t, userChange(slapdEntryUUID(t, srv, "uid=dave,"+slapd.PeopleDN)))
		})
	}
}

// TestWatchSyncRefusedCookie resumes from cookies the server cannot use:
// the feed starts afresh and says so.
func TestWatchSyncRefusedCookie(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true})
	alice := slapdEntryUUID(t, srv, aliceDN)
	src := slapdSource(t, srv, nil, nil)
	future := []byte("rid=000,csn=20991231235959.000000Z#000000#000#000000")
	tests := []struct {
		name   string
		cookie []byte
	}{
		// slapd answers unwillingToPerform: "consumer state is newer
		// than provider".
		{"from the future", watchCookie{Feed: feedSync, Users: future, Groups: future}.encode()},
		{"of another feed", watchCookie{Feed: feedPoll, Mark: time.Now().Format(time.RFC3339Nano)}.encode()},
		{"not a cookie of the source", []byte("garbage")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatch(t, src, tc.cookie)
			ev := w.established(t, true)
			if feed := cookieFeed(t, ev.Cookie); feed != feedSync {
				t.Errorf("the fresh feed's cookie is of feed %q, want %q", feed, feedSync)
			}
			srv.Modify(t, replaceMail(aliceDN, fmt.Sprintf("alice%d@example.com", i)))
			w.waitFor(t, userChange(alice))
		})
	}
}

// TestWatchSyncSizeLimit: a sync search is not paged, so the reader's
// 500-entry limit ends its refresh, and the error says what to change.
func TestWatchSyncSizeLimit(t *testing.T) {
	var ldif bytes.Buffer
	if err := (slapd.Population{Users: slapd.SizeLimit + 1}).WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	srv := slapd.Start(t, slapd.Options{LDIF: ldif.String(), SyncProv: true})
	w := startWatch(t, slapdSource(t, srv, nil, nil), nil)
	err := w.returned(t)
	if err == nil || !strings.Contains(err.Error(), "Size Limit Exceeded") || !strings.Contains(err.Error(), "size=unlimited") {
		t.Fatalf("Watch returned %v, want the size limit and what to do about it", err)
	}
}

// TestWatchPoll runs against a slapd without syncprov: the feed polls
// modifyTimestamp.
func TestWatchPoll(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF})
	alice, bob, oncall := slapdEntryUUID(t, srv, aliceDN), slapdEntryUUID(t, srv, bobDN), slapdEntryUUID(t, srv, oncallDN)
	printer := slapdEntryUUID(t, srv, printerDN)
	src := slapdSource(t, srv, nil, nil)

	w := startWatch(t, src, nil)
	ev := w.established(t, false)
	if len(ev.Changes) != 0 {
		t.Errorf("the first poll reported %+v: the content is no change", ev.Changes)
	}
	if feed := cookieFeed(t, ev.Cookie); feed != feedPoll {
		t.Errorf("cookie of feed %q, want %q", feed, feedPoll)
	}

	srv.Modify(t, replaceMail(aliceDN, "alice@new.example.com"))
	got, _ := w.waitFor(t, userChange(alice))
	for _, c := range got {
		if c.At.IsZero() {
			t.Errorf("change %+v has no At", c)
		}
		if !c.Partial {
			t.Errorf("change %+v is not Partial: a poll sees no deletion, so a refresh of it would miss them", c)
		}
	}
	// Two changes of one entry within a second are both seen (entryCSN).
	srv.Modify(t, replaceMail(aliceDN, "alice@newer.example.com"))
	w.waitFor(t, userChange(alice))

	srv.Modify(t, "dn: "+printerDN+"\nchangetype: modify\nreplace: description\ndescription: moved\n")
	srv.Modify(t, addMember(oncallDN, bobDN))
	got, cookie := w.waitFor(t, groupChange(oncall))
	noChangeOf(t, got, printer, "printer (outside the user filter)")
	if err := w.stop(t); err != nil {
		t.Fatalf("Watch returned %v when stopped, want nil", err)
	}

	srv.Modify(t, replaceMail(bobDN, "bob@new.example.com"))
	w = startWatch(t, src, cookie)
	ev = w.established(t, false)
	if !containsAll(ev.Changes, []sources.Change{userChange(bob)}) {
		t.Errorf("resumed with changes %+v, want bob's", ev.Changes)
	}
}

// TestWatchPollUnusableCookie resumes the poll feed from cookies it cannot
// use: it starts afresh, and says so.
func TestWatchPollUnusableCookie(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF})
	src := slapdSource(t, srv, nil, nil)
	tests := []struct {
		name   string
		cookie watchCookie
	}{
		{"of the sync feed", watchCookie{Feed: feedSync, Users: []byte("rid=000")}},
		{"with a mark that is no time", watchCookie{Feed: feedPoll, Mark: "yesterday"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatch(t, src, tc.cookie.encode())
			ev := w.established(t, true)
			if feed := cookieFeed(t, ev.Cookie); feed != feedPoll {
				t.Errorf("cookie of feed %q, want %q", feed, feedPoll)
			}
		})
	}
}

// TestWatchPollNeedsModifyTimestamp: an account that may not read
// modifyTimestamp cannot poll, and is told so.
func TestWatchPollNeedsModifyTimestamp(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, Access: []string{"access to attrs=modifyTimestamp by * none"}})
	w := startWatch(t, slapdSource(t, srv, nil, nil), nil)
	if err := w.returned(t); err == nil || !strings.Contains(err.Error(), "modifyTimestamp") {
		t.Fatalf("Watch returned %v, want an error about modifyTimestamp", err)
	}
}

// TestWatchServerGone: reconnecting is the daemon's business, so a feed
// whose server is gone returns the error.
func TestWatchServerGone(t *testing.T) {
	for _, syncProv := range []bool{true, false} {
		t.Run(fmt.Sprintf("syncprov %v", syncProv), func(t *testing.T) {
			srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: syncProv})
			w := startWatch(t, slapdSource(t, srv, nil, nil), nil)
			w.established(t, false)
			srv.Kill()
			if err := w.returned(t); err == nil {
				t.Fatal("Watch returned nil after the server was killed, want an error")
			}
		})
	}
}

// TestWatchCancelWhileBinding cancels Watch while the server does not
// answer its bind: with a ten-minute timeout, only the cancellation
// closing the connection ends it.
func TestWatchCancelWhileBinding(t *testing.T) {
	srv := slapd.Start(t, slapd.Options{LDIF: watchLDIF, SyncProv: true})
	proxy := startStallingProxy(t, strings.TrimPrefix(srv.URL, "ldap://"))
	proxy.stall()
	w := startWatch(t, slapdSource(t, srv, nil, func(c *Config) {
		c.URL, c.Timeout = "ldap://"+proxy.addr, 10*time.Minute
	}), nil)
	select {
	case <-proxy.held:
	case <-time.After(watchWait):
		t.Fatal("the proxy never held an answer back")
	}
	if err := w.stop(t); err != nil {
		t.Errorf("Watch returned %v when cancelled while binding, want nil", err)
	}
}
