package sync

import (
	"context"

	"github.com/ptsync/ptsync/pagertree"
)

// Account is the PagerTree API (the seed's v3 endpoints) as sync's
// PagerTree interface: it translates between the client's types and sync's,
// so a client for another API version can slot in beside it.
type Account struct {
	Client *pagertree.Client
}

var _ PagerTree = Account{}

// ListUsers lists every user.
func (a Account) ListUsers(ctx context.Context) ([]AccountUser, error) {
	users, err := a.Client.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AccountUser, len(users))
	for i, u := range users {
		out[i] = accountUser(u)
	}
	return out, nil
}

// ListTeams lists every team.
func (a Account) ListTeams(ctx context.Context) ([]AccountTeam, error) {
	teams, err := a.Client.ListTeams(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AccountTeam, len(teams))
	for i, t := range teams {
		out[i] = accountTeam(t)
	}
	return out, nil
}

// CreateUser creates a user.
func (a Account) CreateUser(ctx context.Context, u NewUser) (AccountUser, error) {
	created, err := a.Client.CreateUser(ctx, pagertree.UserInput{Name: u.Name, Email: u.Email, Phone: u.Phone})
	if err != nil {
		return AccountUser{}, err
	}
	return accountUser(created), nil
}

// UpdateUser sends only the patch's non-nil fields.
func (a Account) UpdateUser(ctx context.Context, id string, p UserPatch) error {
	_, err := a.Client.UpdateUser(ctx, id, pagertree.UserUpdate{Name: p.Name, Phone: p.Phone})
	return err
}

// DeleteUser deletes a user.
func (a Account) DeleteUser(ctx context.Context, id string) error {
	return a.Client.DeleteUser(ctx, id)
}

// CreateTeam creates a team.
func (a Account) CreateTeam(ctx context.Context, t NewTeam) (AccountTeam, error) {
	created, err := a.Client.CreateTeam(ctx, pagertree.TeamInput{Name: t.Name, Description: t.Description, MemberUserIDs: t.MemberIDs})
	if err != nil {
		return AccountTeam{}, err
	}
	return accountTeam(created), nil
}

// UpdateTeam sends only the patch's non-nil fields: a team's schedule_id
// and anything else ptsync does not own is never written.
func (a Account) UpdateTeam(ctx context.Context, id string, p TeamPatch) error {
	_, err := a.Client.UpdateTeam(ctx, id, pagertree.TeamUpdate{Name: p.Name, Description: p.Description, MemberUserIDs: p.MemberIDs})
	return err
}

// DeleteTeam deletes a team.
func (a Account) DeleteTeam(ctx context.Context, id string) error {
	return a.Client.DeleteTeam(ctx, id)
}

func accountUser(u pagertree.User) AccountUser {
	return AccountUser{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin}
}

func accountTeam(t pagertree.Team) AccountTeam {
	return AccountTeam{ID: t.ID, Name: t.Name, Description: t.Description, MemberIDs: t.MemberUserIDs}
}
