package sync

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
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
	return corpDirectory(), nil
}

// listingAccount signals when its users are first listed; with block set,
// the listing then waits for its context to end.
type listingAccount struct {
	*fakeAccount
	once    gosync.Once
	listing chan struct{}
	block   bool
}

func (a *listingAccount) ListUsers(ctx context.Context) ([]AccountUser, error) {
	a.once.Do(func() { close(a.listing) })
	if a.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return a.fakeAccount.ListUsers(ctx)
}

func TestPrepareReadsSourcesAndPagerTreeAtOnce(t *testing.T) {
	acct := &listingAccount{fakeAccount: newFakeAccount(convergedAccount()), listing: make(chan struct{})}
	e := &Engine{
		Sources:   []sources.Source{gatedSource{listing: acct.listing}},
		PagerTree: acct,
		Policy:    Policy{Rules: []config.TeamRule{oncallRule()}, Scope: config.ScopeTeamMembers},
		Logger:    zap.NewNop(),
	}
	prep, err := e.Prepare(context.Background(), RunOptions{})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(prep.Current.Users) != 3 || len(prep.Snapshots) != 1 {
		t.Errorf("prepared %d PagerTree users and %d snapshots", len(prep.Current.Users), len(prep.Snapshots))
	}
}

// TestSourceErrorCancelsThePagerTreeRead: the source's error is the run's,
// and the listing under way is cancelled rather than waited for.
func TestSourceErrorCancelsThePagerTreeRead(t *testing.T) {
	acct := &listingAccount{fakeAccount: newFakeAccount(convergedAccount()), listing: make(chan struct{}), block: true}
	boom := errors.New("directory unreachable")
	e := &Engine{
		Sources:   []sources.Source{gatedSource{listing: acct.listing, fail: boom}},
		PagerTree: acct,
		Policy:    Policy{Rules: []config.TeamRule{oncallRule()}, Scope: config.ScopeTeamMembers},
		Logger:    zap.NewNop(),
	}
	_, err := e.Prepare(context.Background(), RunOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("Prepare = %v, want the source's error", err)
	}
	if acct.writes != 0 {
		t.Errorf("%d writes", acct.writes)
	}
}
