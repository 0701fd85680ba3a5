package pagertree

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"

	"go.uber.org/zap"
)

func userID(u User) string { return u.ID }

// Users yields every user of the account, for a lookup that may stop at
// the one it wants. Unlike ListUsers, it takes a reading that came out
// long (users created meanwhile) at once; a short one is read again, and
// the sequence ends with an error rather than miss a user. On error it
// yields the error once and ends.
func (c *Client) Users(ctx context.Context) iter.Seq2[User, error] {
	return list(ctx, c, usersV3.route, userID)
}

// ListUsers returns every user of the account, listing max(1, ceil(N/100))
// pages with up to Concurrency fetched at once. A listing that does not
// come to the first page's total_count is read once more; if that one is
// not whole either, ListUsers fails rather than return part of the
// account.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	return listAll(ctx, c, usersV3.route, userID)
}

// GetUser returns one user.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	return getOne[User](ctx, c, usersV3, id)
}

// CreateUser creates a user, never twice: when an attempt's answer is lost
// (transport error, timeout, 5xx) the user is looked up by email before
// trying again, and a 409 (the email is taken) returns the user who has it.
// Either lookup lists the users, as the API has no search by email.
func (c *Client) CreateUser(ctx context.Context, in UserInput) (User, error) {
	byEmail := func(ctx context.Context) (User, bool, error) {
		return lastMatch(c.Users(ctx), func(u User) bool { return sameEmail(u.Email)(in.Email) })
	}
	created, status, err := create(ctx, c, usersV3, in, byEmail)
	if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
		existing, found, lookupErr := byEmail(ctx)
		if lookupErr != nil {
			return User{}, fmt.Errorf("%w; looking up the user who has the email: %w", err, lookupErr)
		}
		if found {
			c.http.Logger().Debug("PagerTree user with this email exists; returning it", zap.String("user_id", existing.ID))
			return existing, nil
		}
	}
	if err != nil {
		return User{}, err
	}
	// A lost create found by the lookup passes too: it has an id, and the
	// email it was found by.
	if err := checkAnswer(http.MethodPost, usersV3.route, status, answered{id: created.ID, emails: []string{created.Email}, sentEmails: []string{in.Email}}); err != nil {
		return User{}, err
	}
	return created, nil
}

// UpdateUser changes the fields of up that are not nil and returns the
// user as the server has it then. An answer about another user (or none)
// is an error.
func (c *Client) UpdateUser(ctx context.Context, id string, up UserUpdate) (User, error) {
	u, status, err := update[User](ctx, c, usersV3, id, up)
	if err != nil {
		return User{}, err
	}
	if err := checkAnswer(http.MethodPut, usersV3.item, status, answered{id: u.ID, wantID: id}); err != nil {
		return User{}, err
	}
	return u, nil
}

// DeleteUser deletes a user. A 404 after an attempt whose answer was lost
// counts as success: that attempt deleted the user. A 404 on the first
// attempt is an *APIError.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.remove(ctx, usersV3, id)
}
