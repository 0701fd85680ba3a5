package pagertreetest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// load adds a fixture's users as account users, and its teams, all or
// nothing (see Server.Load).
func (st *stateV4) load(fx fixture, now time.Time) error {
	// Check everything first so that a bad fixture adds nothing.
	if err := st.checkFixture(fx); err != nil {
		return fmt.Errorf("pagertreetest: load fixture: %w", err)
	}
	for i, fu := range fx.Users {
		if _, err := st.addAccountUser(fixtureAccountUser(fu), now); err != nil {
			return fmt.Errorf("pagertreetest: load fixture: users[%d]: %w", i, err)
		}
	}
	ids := func(emails []string) []string {
		out := make([]string, len(emails))
		for i, email := range emails {
			out[i] = st.accountUserByEmail[strings.ToLower(email)].ID
		}
		return out
	}
	for i, ft := range fx.Teams {
		t := pagertree.TeamV4{Name: ft.Name, Notes: ft.Description, MemberAccountUserIDs: ids(ft.Members), AdminAccountUserIDs: ids(fixtureAdmins(ft))}
		if _, err := st.addTeam(t, now); err != nil {
			return fmt.Errorf("pagertreetest: load fixture: teams[%d]: %w", i, err)
		}
	}
	return nil
}

func fixtureAccountUser(fu fixtureUser) pagertree.AccountUser {
	au := pagertree.AccountUser{
		Roles: pagertree.AccountRoles{Admin: fu.Roles.Admin, Billing: fu.Roles.AdminBilling, Broadcaster: fu.Roles.Broadcast},
		User:  pagertree.Person{Name: fu.Name, Emails: []pagertree.Email{{Email: fu.Email}}},
	}
	if fu.Phone != "" {
		au.User.Phones = []pagertree.Phone{{Phone: fu.Phone}}
	}
	return au
}

// fixtureAdmins are a team's admins: those listed, else its first member.
func fixtureAdmins(ft fixtureTeam) []string {
	if ft.Admins == nil && len(ft.Members) > 0 {
		return ft.Members[:1]
	}
	return ft.Admins
}

// checkFixture finds every reason load would fail, before anything is stored.
func (st *stateV4) checkFixture(fx fixture) error {
	problems, emails := checkFixtureUsers(fx, func(fu fixtureUser) error { return st.checkPerson(fixtureAccountUser(fu).User, nil) })
	for i, ft := range fx.Teams {
		for _, role := range []struct {
			name   string
			emails []string
		}{{"member", ft.Members}, {"admin", fixtureAdmins(ft)}} {
			if len(role.emails) == 0 {
				problems = append(problems, fmt.Errorf("teams[%d] %q: a team needs at least 1 %s", i, ft.Name, role.name))
			}
			for _, email := range role.emails {
				lower := strings.ToLower(email)
				if !emails[lower] && st.accountUserByEmail[lower] == nil {
					problems = append(problems, fmt.Errorf("teams[%d] %q: %s %q is no user", i, ft.Name, role.name, email))
				}
			}
		}
	}
	return errors.Join(problems...)
}
