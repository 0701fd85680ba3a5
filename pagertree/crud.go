package pagertree

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"

	"github.com/ptsync/ptsync/internal/httpx"
)

// collection is one resource of either API: the route of the collection
// (its path, and its template for the Observer) and of one of its items.
type collection struct{ route, item string }

var (
	usersV3      = collection{"/user", "/user/:id"}
	teamsV3      = collection{"/team", "/team/:id"}
	accountUsers = collection{APIPrefix + "/account_users", APIPrefix + "/account_users/:id"}
	teamsV4      = collection{APIPrefix + "/teams", APIPrefix + "/teams/:id"}
)

// getOne reads the item id of col.
func getOne[T any](ctx context.Context, c *Client, col collection, id string) (T, error) {
	var v T
	path, err := idPath(col.route, id)
	if err != nil {
		return v, err
	}
	_, err = c.decode(ctx, httpx.Request{Method: http.MethodGet, Route: col.item, Path: path}, &v)
	return v, err
}

// create posts in to col and returns the answer's object and status.
// findLost looks for the object an attempt whose answer was lost may have
// made, so that it is never made twice.
func create[T any](ctx context.Context, c *Client, col collection, in any, findLost func(context.Context) (T, bool, error)) (T, int, error) {
	var created T
	body, err := json.Marshal(in)
	if err != nil {
		return created, 0, fmt.Errorf("pagertree: POST %s: encoding the request: %w", col.route, err)
	}
	lost := func(ctx context.Context) (found bool, err error) {
		created, found, err = findLost(ctx)
		return found, err
	}
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPost, Route: col.route, Path: col.route, Body: body, FindLost: lost}, &created)
	if err != nil {
		return created, 0, err
	}
	return created, resp.Status, nil
}

// update puts up to the item id of col and returns the answer's object and
// status.
func update[T any](ctx context.Context, c *Client, col collection, id string, up any) (T, int, error) {
	var v T
	path, err := idPath(col.route, id)
	if err != nil {
		return v, 0, err
	}
	body, err := json.Marshal(up)
	if err != nil {
		return v, 0, fmt.Errorf("pagertree: PUT %s: encoding the request: %w", col.item, err)
	}
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPut, Route: col.item, Path: path, Body: body}, &v)
	if err != nil {
		return v, 0, err
	}
	return v, resp.Status, nil
}

// remove deletes the item id of col. A 404 after an attempt whose answer
// was lost counts as success: that attempt deleted it. A 404 on the first
// attempt is an *APIError.
func (c *Client) remove(ctx context.Context, col collection, id string) error {
	path, err := idPath(col.route, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, httpx.Request{Method: http.MethodDelete, Route: col.item, Path: path, GoneIsDone: true})
	return err
}

// lastMatch is the last object of seq that match takes, for the lookup of
// a lost create: of several duplicates left earlier, the newest when the
// list comes oldest first (as the emulator's does; the API does not say).
func lastMatch[T any](seq iter.Seq2[T, error], match func(T) bool) (T, bool, error) {
	var last T
	found := false
	for v, err := range seq {
		if err != nil {
			var zero T
			return zero, false, err
		}
		if match(v) {
			last, found = v, true
		}
	}
	return last, found, nil
}
