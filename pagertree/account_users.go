package pagertree

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"slices"
)

func accountUserID(a AccountUser) string { return a.ID }

// AccountUsers yields every account user (v4), for a lookup that may stop
// at the one it wants; it reads the collection as Users does. On error it
// yields the error once and ends.
func (c *Client) AccountUsers(ctx context.Context) iter.Seq2[AccountUser, error] {
	return list(ctx, c, accountUsers.route, accountUserID)
}

// ListAccountUsers returns every account user (v4), read as ListUsers
// reads users: a listing that does not come to the first page's
// total_count is read once more, and fails rather than return part of the
// account.
func (c *Client) ListAccountUsers(ctx context.Context) ([]AccountUser, error) {
	return listAll(ctx, c, accountUsers.route, accountUserID)
}

// GetAccountUser returns one account user (v4).
func (c *Client) GetAccountUser(ctx context.Context, id string) (AccountUser, error) {
	return getOne[AccountUser](ctx, c, accountUsers, id)
}

// CreateAccountUser adds a person to the account (v4), never twice: when
// an attempt's answer is lost (transport error, timeout, 5xx) the account
// users are listed and one with any of in's emails, letter case aside, is
// taken for the one created. in needs a name and an email; without an
// email the lookup could not work, so the create is refused unsent.
//
// A person who already has a PagerTree login is invited rather than made:
// the answer is an account user with Invited set, and the person's name is
// theirs, not necessarily in's, so only the email is checked then.
func (c *Client) CreateAccountUser(ctx context.Context, in AccountUserInput) (AccountUser, error) {
	sent := sentEmails(in.User.Emails)
	if len(sent) == 0 {
		return AccountUser{}, fmt.Errorf("pagertree: POST %s: the account user has no email; it is needed to find a create whose answer is lost", accountUsers.route)
	}
	created, status, err := create(ctx, c, accountUsers, in, func(ctx context.Context) (AccountUser, bool, error) {
		return c.findAccountUserByEmail(ctx, sent)
	})
	if err != nil {
		return AccountUser{}, err
	}
	// A lost create found by the lookup passes too: it has an id, and an
	// email it was found by.
	a := answered{id: created.ID, emails: emailsOf(created.User), sentEmails: sent}
	if !created.Invited {
		a.name, a.sentName = created.User.Name, in.User.Name
	}
	if err := checkAnswer(http.MethodPost, accountUsers.route, status, a); err != nil {
		return AccountUser{}, err
	}
	return created, nil
}

// sentEmails are the addresses of a create's emails_attributes.
func sentEmails(attrs []EmailAttributes) []string {
	var out []string
	for _, e := range attrs {
		if e.Email != "" && !e.Destroy {
			out = append(out, e.Email)
		}
	}
	return out
}

func emailsOf(p Person) []string {
	out := make([]string, len(p.Emails))
	for i, e := range p.Emails {
		out[i] = e.Email
	}
	return out
}

// findAccountUserByEmail looks for the account user who has any of emails,
// without regard to letter case.
func (c *Client) findAccountUserByEmail(ctx context.Context, emails []string) (AccountUser, bool, error) {
	return lastMatch(c.AccountUsers(ctx), func(a AccountUser) bool {
		return slices.ContainsFunc(a.User.Emails, func(e Email) bool { return slices.ContainsFunc(emails, sameEmail(e.Email)) })
	})
}

// UpdateAccountUser changes an account user's person (v4) and returns the
// account user as the server has it then. Nested emails and phones change
// entry by entry: with an id that entry, without one a new entry, with
// Destroy that entry goes. up.User.ID, the person's id, is required: a
// nested update without it would make another person instead of changing
// this one. An answer about another account user or person (or none), or
// with another name than sent, is an error.
func (c *Client) UpdateAccountUser(ctx context.Context, id string, up AccountUserUpdate) (AccountUser, error) {
	if up.User.ID == "" {
		return AccountUser{}, errors.New("pagertree: PUT " + accountUsers.item + ": the update has no user id; without it PagerTree would make another person")
	}
	a, status, err := update[AccountUser](ctx, c, accountUsers, id, up)
	if err != nil {
		return AccountUser{}, err
	}
	check := answered{id: a.ID, wantID: id, userID: a.User.ID, wantUserID: up.User.ID, name: a.User.Name, sentName: up.User.Name}
	if err := checkAnswer(http.MethodPut, accountUsers.item, status, check); err != nil {
		return AccountUser{}, err
	}
	return a, nil
}

// DeleteAccountUser removes a person from the account (v4). A 404 after
// an attempt whose answer was lost counts as success: that attempt deleted
// the account user. A 404 on the first attempt is an *APIError.
func (c *Client) DeleteAccountUser(ctx context.Context, id string) error {
	return c.remove(ctx, accountUsers, id)
}
