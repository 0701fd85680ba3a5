package ptaccount

import (
	"context"
	gosync "sync"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sync"
)

// V4 is today's PagerTree API (/api/v4/account_users, /api/v4/teams) as
// sync.PagerTree. A user of sync is an account user; its id is the
// account user's id, which teams list as members and admins.
type V4 struct {
	client *pagertree.Client

	// people are the users behind the account users listed, by account
	// user id: an update changes a phone entry by its id, and the user by
	// the user's own id, which the listing already read.
	mu     gosync.Mutex
	people map[string]pagertree.Person
}

// NewV4 returns the adapter over a v4 client.
func NewV4(c *pagertree.Client) *V4 {
	return &V4{client: c, people: map[string]pagertree.Person{}}
}

var _ sync.PagerTree = (*V4)(nil)

// ListUsers lists every account user.
func (a *V4) ListUsers(ctx context.Context) ([]sync.AccountUser, error) {
	users, err := a.client.ListAccountUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sync.AccountUser, len(users))
	people := make(map[string]pagertree.Person, len(users))
	for i, u := range users {
		people[u.ID] = u.User
		out[i] = syncUser(u)
	}
	// A fresh listing replaces what earlier runs read: a daemon must not
	// keep every person it ever saw.
	a.mu.Lock()
	a.people = people
	a.mu.Unlock()
	return out, nil
}

// ListTeams lists every team; the marker lives in its notes.
func (a *V4) ListTeams(ctx context.Context) ([]sync.AccountTeam, error) {
	teams, err := a.client.ListTeamsV4(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sync.AccountTeam, len(teams))
	for i, t := range teams {
		out[i] = syncTeam(t)
	}
	return out, nil
}

// CreateUser creates an account user with one primary email (and phone).
// For a person with a PagerTree login elsewhere PagerTree sends an
// invitation instead; the account user it answers counts as created.
func (a *V4) CreateUser(ctx context.Context, u sync.NewUser) (sync.AccountUser, error) {
	name := u.Name
	in := pagertree.AccountUserInput{User: pagertree.PersonAttributes{
		Name:   &name,
		Emails: []pagertree.EmailAttributes{{Email: u.Email, Primary: true}},
	}}
	if u.Phone != "" {
		in.User.Phones = []pagertree.PhoneAttributes{{Phone: u.Phone, Primary: true}}
	}
	created, err := a.client.CreateAccountUser(ctx, in)
	if err != nil {
		return sync.AccountUser{}, err
	}
	a.remember(created)
	return syncUser(created), nil
}

// UpdateUser changes the name and the primary phone: the phone entry
// PagerTree has is changed in place (by its id), or one is added when the
// person has none. Other emails and phones are left as they are.
func (a *V4) UpdateUser(ctx context.Context, id string, p sync.UserPatch) error {
	person, err := a.person(ctx, id)
	if err != nil {
		return err
	}
	attrs := pagertree.PersonAttributes{ID: person.ID, Name: p.Name}
	if p.Phone != nil {
		entry := pagertree.PhoneAttributes{Phone: *p.Phone, Primary: true}
		if ph, ok := person.PrimaryPhone(); ok {
			entry.ID = ph.ID
		}
		attrs.Phones = []pagertree.PhoneAttributes{entry}
	}
	updated, err := a.client.UpdateAccountUser(ctx, id, pagertree.AccountUserUpdate{User: attrs})
	if err != nil {
		return err
	}
	a.remember(updated)
	return nil
}

// person is the user behind account user id, as last read, or read now.
func (a *V4) person(ctx context.Context, id string) (pagertree.Person, error) {
	a.mu.Lock()
	p, ok := a.people[id]
	a.mu.Unlock()
	if ok {
		return p, nil
	}
	u, err := a.client.GetAccountUser(ctx, id)
	if err != nil {
		return pagertree.Person{}, err
	}
	a.remember(u)
	return u.User, nil
}

func (a *V4) remember(u pagertree.AccountUser) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.people[u.ID] = u.User
}

// DeleteUser deletes the account user (v4 does not delete users).
func (a *V4) DeleteUser(ctx context.Context, id string) error {
	if err := a.client.DeleteAccountUser(ctx, id); err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.people, id)
	a.mu.Unlock()
	return nil
}

// CreateTeam creates a team with its members and admins; PagerTree makes
// its schedule and escalation policy.
func (a *V4) CreateTeam(ctx context.Context, t sync.NewTeam) (sync.AccountTeam, error) {
	created, err := a.client.CreateTeamV4(ctx, pagertree.TeamV4Input{
		Name: t.Name, Notes: t.Description, MemberAccountUserIDs: t.MemberIDs, AdminAccountUserIDs: t.AdminIDs,
	})
	if err != nil {
		return sync.AccountTeam{}, err
	}
	return syncTeam(created), nil
}

// UpdateTeam sends only the patch's non-nil fields: schedule_id,
// escalation_policy_id and anything else ptsync does not own is never
// written.
func (a *V4) UpdateTeam(ctx context.Context, id string, p sync.TeamPatch) error {
	_, err := a.client.UpdateTeamV4(ctx, id, pagertree.TeamV4Update{
		Name: p.Name, Notes: p.Description, MemberAccountUserIDs: p.MemberIDs, AdminAccountUserIDs: p.AdminIDs,
	})
	return err
}

// DeleteTeam deletes a team.
func (a *V4) DeleteTeam(ctx context.Context, id string) error {
	return a.client.DeleteTeamV4(ctx, id)
}

func syncUser(u pagertree.AccountUser) sync.AccountUser {
	primary := u.User.PrimaryEmail()
	out := sync.AccountUser{ID: u.ID, Email: primary, Name: u.User.Name, Admin: u.Roles.Admin, Invited: u.Invited, AccountID: u.AccountID}
	for _, e := range u.User.Emails {
		if e.Email != primary {
			out.Emails = append(out.Emails, e.Email)
		}
	}
	if ph, ok := u.User.PrimaryPhone(); ok {
		out.Phone = ph.Phone
	}
	return out
}

func syncTeam(t pagertree.TeamV4) sync.AccountTeam {
	return sync.AccountTeam{ID: t.ID, Name: t.Name, Description: t.Notes, MemberIDs: t.MemberAccountUserIDs, AdminIDs: t.AdminAccountUserIDs, AccountID: t.AccountID}
}

var _ sync.ObjectReader = (*V4)(nil)

// GetUser reads one account user, and remembers the person behind it for
// an update.
func (a *V4) GetUser(ctx context.Context, id string) (sync.AccountUser, error) {
	u, err := a.client.GetAccountUser(ctx, id)
	if err != nil {
		return sync.AccountUser{}, notFound(err)
	}
	a.remember(u)
	return syncUser(u), nil
}

// GetTeam reads one team.
func (a *V4) GetTeam(ctx context.Context, id string) (sync.AccountTeam, error) {
	t, err := a.client.GetTeamV4(ctx, id)
	if err != nil {
		return sync.AccountTeam{}, notFound(err)
	}
	return syncTeam(t), nil
}
