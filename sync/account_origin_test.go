package sync_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// v4Engine is an engine over a fresh v4 emulator account holding its
// admin, syncing the file directory at path.
func v4Engine(t *testing.T, path, account string) (*sync.Engine, *pagertreetest.Server) {
	t.Helper()
	emu := pagertreetest.NewServer(pagertreetest.Options{API: pagertree.APIv4, AccountID: account})
	t.Cleanup(emu.Close)
	if _, err := emu.AddAccountUser(pagertree.AccountUser{
		Roles: pagertree.AccountRoles{Admin: true},
		User:  pagertree.Person{Name: "Owner", Emails: []pagertree.Email{{Email: "owner@example.com", Primary: true}}},
	}); err != nil {
		t.Fatal(err)
	}
	client, err := pagertree.New(pagertree.Config{API: pagertree.APIv4, URL: emu.URL(), APIKey: pagertreetest.DefaultAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	src, err := file.New("corp", &file.Config{Path: path}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return &sync.Engine{
		Sources:   []sources.Source{src},
		PagerTree: ptaccount.For(pagertree.APIv4, client),
		Policy: sync.Policy{
			Rules:     []config.TeamRule{{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}},
			Scope:     config.ScopeTeamMembers,
			TeamRoles: true, PhonesE164: true, TeamAdmins: []string{"owner@example.com"},
		},
		MinSourceUsers: 1,
		Concurrency:    4,
		Logger:         zap.NewNop(),
	}, emu
}

// A plan records the v4 account its objects carry, and is refused by
// another account behind the same kind of URL, before anything is written.
func TestSavedPlanRefusedByAnotherV4Account(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corp.yaml")
	if err := os.WriteFile(path, []byte(`users:
  - {id: u1, email: ann@example.com, name: Ann}
groups:
  - {id: g1, name: oncall-a, members: [u1]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	here, emuHere := v4Engine(t, path, "01JACCOUNTHERE0000000000000")
	there, emuThere := v4Engine(t, path, "01JACCOUNTTHERE000000000000")
	prep, err := here.Prepare(context.Background(), sync.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if prep.Current.AccountID != emuHere.AccountID() || prep.Current.AccountID == "" {
		t.Fatalf("account read = %q, want the emulator's %q", prep.Current.AccountID, emuHere.AccountID())
	}
	saved := prep.Plan
	saved.Origin.AccountID = prep.Current.AccountID

	emuThere.ResetStats()
	_, err = there.ApplyPlan(context.Background(), saved, sync.RunOptions{})
	if !errors.Is(err, sync.ErrPlanRefused) || !strings.Contains(err.Error(), emuHere.AccountID()) {
		t.Fatalf("ApplyPlan on another account: %v, want ErrPlanRefused naming the plan's account", err)
	}
	if st := emuThere.Stats(); st.WriteAttempts != 0 {
		t.Errorf("%d write requests to the other account", st.WriteAttempts)
	}

	rep, err := here.ApplyPlan(context.Background(), saved, sync.RunOptions{})
	if err != nil || rep.Result.Counts.Applied != 2 {
		t.Fatalf("ApplyPlan on its own account: %v, %+v", err, rep.Result.Counts)
	}
}
