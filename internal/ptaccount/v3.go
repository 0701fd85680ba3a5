// Package ptaccount adapts each PagerTree API version's client to the
// account sync plans against (sync.PagerTree): it translates between the
// client's types and sync's, so no sync code knows which version it
// writes to.
package ptaccount

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sync"
)

// For returns the adapter for a client of api (pagertree.APIv3 or APIv4,
// as in its Config).
func For(api string, c *pagertree.Client) sync.PagerTree {
	if api == pagertree.APIv4 {
		return NewV4(c)
	}
	return V3{Client: c}
}

// V3 is the seed's API (/user, /team) as sync.PagerTree.
type V3 struct {
	Client *pagertree.Client
}

var _ sync.PagerTree = V3{}

// ListUsers lists every user.
func (a V3) ListUsers(ctx context.Context) ([]sync.AccountUser, error) {
	users, err := a.Client.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sync.AccountUser, len(users))
	for i, u := range users {
		out[i] = accountUser(u)
	}
	return out, nil
}

// ListTeams lists every team.
func (a V3) ListTeams(ctx context.Context) ([]sync.AccountTeam, error) {
	teams, err := a.Client.ListTeams(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sync.AccountTeam, len(teams))
	for i, t := range teams {
		out[i] = accountTeam(t)
	}
	return out, nil
}

// CreateUser creates a user.
func (a V3) CreateUser(ctx context.Context, u sync.NewUser) (sync.AccountUser, error) {
	created, err := a.Client.CreateUser(ctx, pagertree.UserInput{Name: u.Name, Email: u.Email, Phone: u.Phone})
	if err != nil {
		return sync.AccountUser{}, err
	}
	return accountUser(created), nil
}

// UpdateUser sends only the patch's non-nil fields.
func (a V3) UpdateUser(ctx context.Context, id string, p sync.UserPatch) error {
	_, err := a.Client.UpdateUser(ctx, id, pagertree.UserUpdate{Name: p.Name, Phone: p.Phone})
	return err
}

// DeleteUser deletes a user.
func (a V3) DeleteUser(ctx context.Context, id string) error {
	return a.Client.DeleteUser(ctx, id)
}

// CreateTeam creates a team. v3 teams have no admins.
func (a V3) CreateTeam(ctx context.Context, t sync.NewTeam) (sync.AccountTeam, error) {
	created, err := a.Client.CreateTeam(ctx, pagertree.TeamInput{Name: t.Name, Description: t.Description, MemberUserIDs: t.MemberIDs})
	if err != nil {
		return sync.AccountTeam{}, err
	}
	return accountTeam(created), nil
}

// UpdateTeam sends only the patch's non-nil fields: a team's schedule_id
// and anything else ptsync does not own is never written.
func (a V3) UpdateTeam(ctx context.Context, id string, p sync.TeamPatch) error {
	_, err := a.Client.UpdateTeam(ctx, id, pagertree.TeamUpdate{Name: p.Name, Description: p.Description, MemberUserIDs: p.MemberIDs})
	return err
}

// DeleteTeam deletes a team.
func (a V3) DeleteTeam(ctx context.Context, id string) error {
	return a.Client.DeleteTeam(ctx, id)
}

func accountUser(u pagertree.User) sync.AccountUser {
	return sync.AccountUser{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin}
}

func accountTeam(t pagertree.Team) sync.AccountTeam {
	return sync.AccountTeam{ID: t.ID, Name: t.Name, Description: t.Description, MemberIDs: t.MemberUserIDs}
}

var _ sync.ObjectReader = V3{}

// GetUser reads one user.
func (a V3) GetUser(ctx context.Context, id string) (sync.AccountUser, error) {
	u, err := a.Client.GetUser(ctx, id)
	if err != nil {
		return sync.AccountUser{}, notFound(err)
	}
	return accountUser(u), nil
}

// GetTeam reads one team.
func (a V3) GetTeam(ctx context.Context, id string) (sync.AccountTeam, error) {
	t, err := a.Client.GetTeam(ctx, id)
	if err != nil {
		return sync.AccountTeam{}, notFound(err)
	}
	return accountTeam(t), nil
}

// notFound makes PagerTree's 404 sync.ErrNotFound.
func notFound(err error) error {
	var apiErr *pagertree.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return fmt.Errorf("%w: %w", sync.ErrNotFound, err)
	}
	return err
}
