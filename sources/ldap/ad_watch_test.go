package ldap

// Watch mode on Active Directory (DirSync) against the shared Samba DC; see
// ad_test.go for how the tests share it and watch_test.go for the waits.

import (
	"context"
	"errors"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/internal/testenv/samba"
	"github.com/ptsync/ptsync/sources"
)

// adWatchFixture is an OU with a users and a groups OU below it, the bases
// of the source it returns, and an OU beside it. users holds alice and
// bob, groups a team holding alice.
type adWatchFixture struct {
	users, groups, elsewhere string
	alice, bob, team         string // DNs
}

func newADWatchFixture(t *testing.T, admin *goldap.Conn, name string) adWatchFixture {
	t.Helper()
	ou := adOU(t, admin, name)
	f := adWatchFixture{users: "OU=users," + ou, groups: "OU=groups," + ou, elsewhere: adOU(t, admin, name+"-elsewhere")}
	for _, dn := range []string{f.users, f.groups} {
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"organizationalUnit"})
		if err := admin.Add(add); err != nil {
			t.Fatalf("add %s: %v", dn, err)
		}
	}
	f.alice = adAddUser(t, admin, f.users, adUser{sam: name + "-alice", mail: name + "-alice@ad.test", uac: "544"})
	f.bob = adAddUser(t, admin, f.users, adUser{sam: name + "-bob", mail: name + "-bob@ad.test", uac: "544"})
	f.team = adAddGroup(t, admin, f.groups, name+"-team", "", f.alice)
	return f
}

func (f adWatchFixture) source(t *testing.T, dc *samba.DC, edit func(*Config)) *Source {
	t.Helper()
	s, _ := adSource(t, dc, f.users, func(c *Config) {
		c.Groups.BaseDN = f.groups
		if edit != nil {
			edit(c)
		}
	})
	return s
}

func adModify(t *testing.T, conn *goldap.Conn, dn string, edit func(*goldap.ModifyRequest)) {
	t.Helper()
	m := goldap.NewModifyRequest(dn, nil)
	edit(m)
	if err := conn.Modify(m); err != nil {
		t.Fatalf("modify %s: %v", dn, err)
	}
}

func TestADWatchDirSync(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	f := newADWatchFixture(t, admin, "adwatch")
	outsider := adAddUser(t, admin, f.elsewhere, adUser{sam: "adwatch-outsider", mail: "outsider@ad.test", uac: "544"})
	alice, bob := adGUID(t, dc, "user", "adwatch-alice"), adGUID(t, dc, "user", "adwatch-bob")
	team, outsiderID := adGUID(t, dc, "group", "adwatch-team"), adGUID(t, dc, "user", "adwatch-outsider")
	src := f.source(t, dc, nil) // bound as the service account, a plain domain user

	w := startWatch(t, src, nil)
	ev := w.established(t, false)
	if len(ev.Changes) != 0 {
		t.Errorf("the first DirSync reported %+v: the content is no change", ev.Changes)
	}
	if feed := cookieFeed(t, ev.Cookie); feed != feedDirSync {
		t.Errorf("cookie of feed %q, want %q", feed, feedDirSync)
	}

	adModify(t, admin, f.alice, func(m *goldap.ModifyRequest) { m.Replace("mail", []string{"alice@new.ad.test"}) })
	w.waitFor(t, userChange(alice))

	adModify(t, admin, f.team, func(m *goldap.ModifyRequest) { m.Add("member", []string{f.bob}) })
	w.waitFor(t, groupChange(team))

	// Neither the outsider (outside users.base) nor bob's description (an
	// attribute the source does not read) is a change; bob's mail, changed
	// after them, is.
	adModify(t, admin, outsider, func(m *goldap.ModifyRequest) { m.Replace("mail", []string{"outsider@new.ad.test"}) })
	adModify(t, admin, f.bob, func(m *goldap.ModifyRequest) { m.Replace("description", []string{"not read"}) })
	adModify(t, admin, f.alice, func(m *goldap.ModifyRequest) { m.Replace("displayName", []string{"Alice"}) })
	got, cookie := w.waitFor(t, userChange(alice))
	noChangeOf(t, got, outsiderID, "the outsider")
	noChangeOf(t, got, bob, "bob's description")
	if err := w.stop(t); err != nil {
		t.Fatalf("Watch returned %v when stopped, want nil", err)
	}

	adModify(t, admin, f.bob, func(m *goldap.ModifyRequest) { m.Replace("displayName", []string{"Bob"}) })
	w = startWatch(t, src, cookie)
	ev = w.established(t, false)
	if !containsAll(ev.Changes, []sources.Change{userChange(bob)}) {
		t.Errorf("resumed with changes %+v, want bob's", ev.Changes)
	}
	if err := w.stop(t); err != nil {
		t.Fatalf("Watch returned %v when stopped, want nil", err)
	}

	// Samba answers a cookie it cannot read with unavailableCriticalExtension.
	w = startWatch(t, src, watchCookie{Feed: feedDirSync, Users: []byte("garbage"), Groups: []byte("garbage")}.encode())
	w.established(t, true)
	adModify(t, admin, f.team, func(m *goldap.ModifyRequest) { m.Delete("member", []string{f.alice}) })
	w.waitFor(t, groupChange(team))
}

// TestADWatchDirSyncDeletions binds as the Administrator: DirSync returns
// deleted objects only to an account that may read CN=Deleted Objects,
// which a plain domain user may not.
func TestADWatchDirSyncDeletions(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	f := newADWatchFixture(t, admin, "adwatchdel")
	outsider := adAddUser(t, admin, f.elsewhere, adUser{sam: "adwatchdel-outsider", mail: "outsider@ad.test", uac: "544"})
	bob, team, outsiderID := adGUID(t, dc, "user", "adwatchdel-bob"), adGUID(t, dc, "group", "adwatchdel-team"), adGUID(t, dc, "user", "adwatchdel-outsider")
	src := f.source(t, dc, func(c *Config) { c.BindDN, c.BindPassword = dc.AdminDN, dc.AdminPassword })

	w := startWatch(t, src, nil)
	w.established(t, false)
	// The outsider's tombstone is left out by its last known parent.
	for _, dn := range []string{outsider, f.bob, f.team} {
		if err := admin.Del(goldap.NewDelRequest(dn, nil)); err != nil {
			t.Fatalf("delete %s: %v", dn, err)
		}
	}
	got, _ := w.waitFor(t, userDeleted(bob), sources.Change{ID: team, Kind: sources.ChangeGroup, Deleted: true})
	noChangeOf(t, got, outsiderID, "the outsider's deletion")
}

// TestADRefreshFollowsDirSync refreshes, by objectGUID, with the changes
// DirSync reports: after every edit the snapshot is the one a whole fetch
// gives. Bound as the Administrator, so that deletions are reported.
func TestADRefreshFollowsDirSync(t *testing.T) {
	dc := samba.Shared(t)
	admin := dc.Admin(t)
	f := newADWatchFixture(t, admin, "adrefresh")
	src := f.source(t, dc, func(c *Config) {
		c.BindDN, c.BindPassword = dc.AdminDN, dc.AdminPassword
		c.Groups.Nested = true
		c.Groups.OwnerAttribute = "managedBy"
	})
	guid := func(kind, sam string) string { return adGUID(t, dc, kind, sam) }
	alice, bob, team := guid("user", "adrefresh-alice"), guid("user", "adrefresh-bob"), guid("group", "adrefresh-team")

	w := startWatch(t, src, nil)
	w.established(t, false)
	_, memo, err := src.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var carol, carolDN, sub, subDN string
	steps := []struct {
		name string
		edit func() []sources.Change
	}{
		{"a new email", func() []sources.Change {
			adModify(t, admin, f.alice, func(m *goldap.ModifyRequest) { m.Replace("mail", []string{"alice@new.ad.test"}) })
			return []sources.Change{userChange(alice)}
		}},
		{"a member added and an owner set", func() []sources.Change {
			adModify(t, admin, f.team, func(m *goldap.ModifyRequest) {
				m.Add("member", []string{f.bob})
				m.Replace("managedBy", []string{f.alice})
			})
			return []sources.Change{groupChange(team)}
		}},
		{"an account disabled", func() []sources.Change {
			adModify(t, admin, f.bob, func(m *goldap.ModifyRequest) { m.Replace("userAccountControl", []string{"546"}) })
			return []sources.Change{userChange(bob)}
		}},
		{"a hire in a new nested group", func() []sources.Change {
			carolDN = adAddUser(t, admin, f.users, adUser{sam: "adrefresh-carol", mail: "carol@ad.test", uac: "544"})
			subDN = adAddGroup(t, admin, f.groups, "adrefresh-sub", "", carolDN)
			adModify(t, admin, f.team, func(m *goldap.ModifyRequest) { m.Add("member", []string{subDN}) })
			carol, sub = guid("user", "adrefresh-carol"), guid("group", "adrefresh-sub")
			return []sources.Change{userChange(carol), groupChange(sub), groupChange(team)}
		}},
		{"a user moved in from another OU", func() []sources.Change {
			dn := adAddUser(t, admin, f.elsewhere, adUser{sam: "adrefresh-dave", mail: "dave@ad.test", uac: "544"})
			adModify(t, admin, subDN, func(m *goldap.ModifyRequest) { m.Add("member", []string{dn}) })
			if err := admin.ModifyDN(goldap.NewModifyDNRequest(dn, "CN=adrefresh-dave", true, f.users)); err != nil {
				t.Fatalf("move %s: %v", dn, err)
			}
			return []sources.Change{userChange(guid("user", "adrefresh-dave"))}
		}},
		{"a leaver", func() []sources.Change {
			if err := admin.Del(goldap.NewDelRequest(carolDN, nil)); err != nil {
				t.Fatalf("delete %s: %v", carolDN, err)
			}
			return []sources.Change{userDeleted(carol)}
		}},
		{"a group gone", func() []sources.Change {
			if err := admin.Del(goldap.NewDelRequest(subDN, nil)); err != nil {
				t.Fatalf("delete %s: %v", subDN, err)
			}
			return []sources.Change{{ID: sub, Kind: sources.ChangeGroup, Deleted: true}}
		}},
	}
	for _, step := range steps {
		t.Logf("step: %s", step.name)
		want := step.edit()
		got, _ := w.waitFor(t, want...)
		memo = refreshedLikeFetch(t, src, memo, got, step.name)
	}

	// With groups.in_chain, nesting is the server's answer for every
	// group: the memo says it cannot be patched.
	inChain := f.source(t, dc, func(c *Config) { c.Groups.Nested, c.Groups.InChain = true, true })
	_, m, err := inChain.FetchMemo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := inChain.Refresh(context.Background(), m, []sources.Change{userChange(alice)}); !errors.Is(err, sources.ErrCannotRefresh) {
		t.Errorf("refreshing an in_chain source: %v, want ErrCannotRefresh", err)
	}
}
