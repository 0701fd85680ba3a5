package pagertree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/httpx"
)

// Routes of the user endpoints, as reported to the Observer.
const (
	routeUsers = "/user"
	routeUser  = "/user/:id"
)

// Users yields every user of the account, for a lookup that may stop at
// the one it wants. Unlike ListUsers, it takes a reading that came out
// long (users created meanwhile) at once; a short one is read again, and
// the sequence ends with an error rather than miss a user. On error it
// yields the error once and ends.
func (c *Client) Users(ctx context.Context) iter.Seq2[User, error] {
	return list(ctx, c, routeUsers, func(u User) string { return u.ID })
}

// ListUsers returns every user of the account, listing max(1, ceil(N/100))
// pages with up to Concurrency fetched at once. A listing that does not
// come to the first page's total_count is read once more; if that one is
// not whole either, ListUsers fails rather than return part of the
// account.
func (c *Client) ListUsers(ctx context.Context) ([]User, error) {
	return listAll(ctx, c, routeUsers, func(u User) string { return u.ID })
}

// GetUser returns one user.
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	path, err := idPath(routeUsers, id)
	if err != nil {
		return User{}, err
	}
	var u User
	_, err = c.decode(ctx, httpx.Request{Method: http.MethodGet, Route: routeUser, Path: path}, &u)
	return u, err
}

// CreateUser creates a user, never twice: when an attempt's answer is lost
// (transport error, timeout, 5xx) the user is looked up by email before
// trying again, and a 409 (the email is taken) returns the user who has it.
// Either lookup lists the users, as the API has no search by email.
func (c *Client) CreateUser(ctx context.Context, in UserInput) (User, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return User{}, fmt.Errorf("pagertree: POST %s: encoding the user: %w", routeUsers, err)
	}
	var created User
	findLost := func(ctx context.Context) (found bool, err error) {
		created, found, err = c.findUserByEmail(ctx, in.Email)
		return found, err
	}
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPost, Route: routeUsers, Path: routeUsers, Body: body, FindLost: findLost}, &created)
	if apiErr := (*APIError)(nil); errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
		existing, found, lookupErr := c.findUserByEmail(ctx, in.Email)
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
	if err := checkAnswer(http.MethodPost, routeUsers, resp.Status, answered{id: created.ID, emails: []string{created.Email}, sentEmails: []string{in.Email}}); err != nil {
		return User{}, err
	}
	return created, nil
}

// findUserByEmail looks a user up by email, without regard to letter case.
func (c *Client) findUserByEmail(ctx context.Context, email string) (User, bool, error) {
	for u, err := range c.Users(ctx) {
		if err != nil {
			return User{}, false, err
		}
		if strings.EqualFold(u.Email, email) {
			return u, true, nil
		}
	}
	return User{}, false, nil
}

// UpdateUser changes the fields of up that are not nil and returns the
// user as the server has it then. An answer about another user (or none)
// is an error.
func (c *Client) UpdateUser(ctx context.Context, id string, up UserUpdate) (User, error) {
	path, err := idPath(routeUsers, id)
	if err != nil {
		return User{}, err
	}
	body, err := json.Marshal(up)
	if err != nil {
		return User{}, fmt.Errorf("pagertree: PUT %s: encoding the update: %w", routeUser, err)
	}
	var u User
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPut, Route: routeUser, Path: path, Body: body}, &u)
	if err != nil {
		return User{}, err
	}
	if err := checkAnswer(http.MethodPut, routeUser, resp.Status, answered{id: u.ID, wantID: id}); err != nil {
		return User{}, err
	}
	return u, nil
}

// DeleteUser deletes a user. A 404 after an attempt whose answer was lost
// counts as success: that attempt deleted the user. A 404 on the first
// attempt is an *APIError.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	path, err := idPath(routeUsers, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, httpx.Request{Method: http.MethodDelete, Route: routeUser, Path: path, GoneIsDone: true})
	return err
}
