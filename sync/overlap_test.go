package sync_test

import (
	"context"
	"errors"
	"net/http"
	gosync "sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// gatedSource answers only once PagerTree's listing has begun, so a fetch
// ends only when the engine reads the two at once.
type gatedSource struct {
	listing <-chan struct{}
	fail    error // returned instead of the snapshot, once the listing began
}

func (gatedSource) Name() string { return "corp" }

func (s gatedSource) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	select {
	case <-s.listing:
	case <-time.After(10 * time.Second):
		return nil, errors.New("PagerTree was not being read while the source was")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.fail != nil {
		return nil, s.fail
	}
	return overlapDirectory(), nil
}

// overlapDirectory: alice and bob on payments, bob and carol on db.
func overlapDirectory() *sources.Snapshot {
	s := sources.NewSnapshot("corp")
	for _, u := range []sources.User{
		{ID: "u1", Email: "alice@example.com", Name: "Alice Example"},
		{ID: "u2", Email: "bob@example.com", Name: "Bob Builder"},
		{ID: "u3", Email: "carol@example.com", Name: "Carol Chen"},
	} {
		s.Users[u.ID] = u
	}
	s.Groups = []sources.Group{
		{ID: "g1", Name: "oncall-payments", Members: []string{"u1", "u2"}},
		{ID: "g2", Name: "oncall-db", Members: []string{"u2", "u3"}},
	}
	return s
}

// overlapAccount is PagerTree as overlapDirectory wants it; on v4 each
// team's first member is its admin.
func overlapAccount() propAccount {
	return propAccount{
		Users: []sync.AccountUser{
			{ID: "usr_alice", Email: "alice@example.com", Name: "Alice Example"},
			{ID: "usr_bob", Email: "bob@example.com", Name: "Bob Builder"},
			{ID: "usr_carol", Email: "carol@example.com", Name: "Carol Chen"},
		},
		Teams: []sync.AccountTeam{
			{ID: "tem_pay", Name: "oncall-payments", Description: sync.Marker{Source: "corp", GroupID: "g1", Admins: []string{"alice@example.com"}}.String(),
				MemberIDs: []string{"usr_alice", "usr_bob"}, AdminIDs: []string{"usr_alice"}},
			{ID: "tem_db", Name: "oncall-db", Description: sync.Marker{Source: "corp", GroupID: "g2", Admins: []string{"bob@example.com"}}.String(),
				MemberIDs: []string{"usr_bob", "usr_carol"}, AdminIDs: []string{"usr_bob"}},
		},
	}
}

// listingGate stands in front of the emulator and closes listing when
// PagerTree's users are first listed; with block set, that listing is then
// never answered: it waits for the client to give up.
type listingGate struct {
	next    http.Handler
	users   string // the route of the user listing
	once    gosync.Once
	listing chan struct{}
	block   bool
}

func (g *listingGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == g.users {
		g.once.Do(func() { close(g.listing) })
		if g.block {
			<-r.Context().Done()
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// overlapEngine is an engine over the emulator of api holding
// overlapAccount, behind gate, with the source answering as gate lets it.
func overlapEngine(t *testing.T, api string, block bool, fail error) (*sync.Engine, *pagertreetest.Server) {
	emu := pagertreetest.New(pagertreetest.Options{API: api})
	v4 := api == pagertree.APIv4
	overlapAccount().load(t, emu, v4)
	gate := &listingGate{next: emu, users: "/user", listing: make(chan struct{}), block: block}
	pol := sync.Policy{Rules: []config.TeamRule{{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}},
		Scope: config.ScopeTeamMembers}
	if v4 {
		gate.users = pagertree.APIPrefix + "/account_users"
		pol.TeamRoles, pol.PhonesE164, pol.TeamAdmins = true, true, []string{"alice@example.com"}
	}
	return &sync.Engine{
		Sources:   []sources.Source{gatedSource{listing: gate.listing, fail: fail}},
		PagerTree: propServe(t, api, gate),
		Policy:    pol,
		Logger:    zap.NewNop(),
	}, emu
}

func TestPrepareReadsSourcesAndPagerTreeAtOnce(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			e, _ := overlapEngine(t, api, false, nil)
			prep, err := e.Prepare(t.Context(), sync.RunOptions{})
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if len(prep.Current.Users) != 3 || len(prep.Current.Teams) != 2 || len(prep.Snapshots) != 1 {
				t.Errorf("prepared %d PagerTree users, %d teams and %d snapshots", len(prep.Current.Users), len(prep.Current.Teams), len(prep.Snapshots))
			}
		})
	}
}

// TestSourceErrorCancelsThePagerTreeRead: the source's error is the run's,
// and the listing under way is cancelled rather than waited for.
func TestSourceErrorCancelsThePagerTreeRead(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			boom := errors.New("directory unreachable")
			e, emu := overlapEngine(t, api, true, boom)
			_, err := e.Prepare(t.Context(), sync.RunOptions{})
			if !errors.Is(err, boom) {
				t.Fatalf("Prepare = %v, want the source's error", err)
			}
			if n := emu.Stats().WriteAttempts; n != 0 {
				t.Errorf("%d writes", n)
			}
		})
	}
}
