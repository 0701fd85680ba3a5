package pagertree

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"

	"github.com/ptsync/ptsync/internal/httpx"
)

// Routes of the v4 team endpoints, as reported to the Observer.
const (
	routeTeamsV4 = APIPrefix + "/teams"
	routeTeamV4  = routeTeamsV4 + "/:id"
)

func teamV4ID(t TeamV4) string { return t.ID }

// TeamsV4 yields every team (v4), for a lookup that may stop at the one it
// wants; it reads the collection as Teams does. On error it yields the
// error once and ends.
func (c *Client) TeamsV4(ctx context.Context) iter.Seq2[TeamV4, error] {
	return list(ctx, c, routeTeamsV4, teamV4ID)
}

// ListTeamsV4 returns every team (v4), read as ListTeams reads teams: a
// listing that does not come to the first page's total_count is read once
// more, and fails rather than return part of the account.
func (c *Client) ListTeamsV4(ctx context.Context) ([]TeamV4, error) {
	return listAll(ctx, c, routeTeamsV4, teamV4ID)
}

// GetTeamV4 returns one team (v4).
func (c *Client) GetTeamV4(ctx context.Context, id string) (TeamV4, error) {
	path, err := idPath(routeTeamsV4, id)
	if err != nil {
		return TeamV4{}, err
	}
	var t TeamV4
	_, err = c.decode(ctx, httpx.Request{Method: http.MethodGet, Route: routeTeamV4, Path: path}, &t)
	return t, err
}

// CreateTeamV4 creates a team (v4), never twice: when an attempt's answer
// is lost the team is looked up before trying again or giving up, by the
// exact name and the exact notes, where ptsync's creates carry its
// ownership marker (CreateTeam does the same with the description, and
// says why members are not compared). PagerTree makes the team's schedule
// and escalation policy; it wants at least one member and one admin.
func (c *Client) CreateTeamV4(ctx context.Context, in TeamV4Input) (TeamV4, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return TeamV4{}, fmt.Errorf("pagertree: POST %s: encoding the team: %w", routeTeamsV4, err)
	}
	var created TeamV4
	findLost := func(ctx context.Context) (found bool, err error) {
		created, found, err = c.findCreatedTeamV4(ctx, in)
		return found, err
	}
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPost, Route: routeTeamsV4, Path: routeTeamsV4, Body: body, FindLost: findLost}, &created)
	if err != nil {
		return TeamV4{}, err
	}
	if err := checkAnswer(http.MethodPost, routeTeamsV4, resp.Status, answered{id: created.ID, name: created.Name, sentName: &in.Name}); err != nil {
		return TeamV4{}, err
	}
	return created, nil
}

// findCreatedTeamV4 looks for the team a create of in may have made: one
// with in's exact name and notes; of several, the last listed, as
// findCreatedTeam does.
func (c *Client) findCreatedTeamV4(ctx context.Context, in TeamV4Input) (TeamV4, bool, error) {
	var match TeamV4
	found := false
	for t, err := range c.TeamsV4(ctx) {
		if err != nil {
			return TeamV4{}, false, err
		}
		if t.Name == in.Name && t.Notes == in.Notes {
			match, found = t, true
		}
	}
	return match, found, nil
}

// UpdateTeamV4 changes the fields of up that are not nil (schedule_id,
// escalation_policy_id and anything else not in TeamV4Update is left as it
// is) and returns the team as the server has it then. An answer about
// another team (or none), or with another name than a rename sent, is an
// error.
func (c *Client) UpdateTeamV4(ctx context.Context, id string, up TeamV4Update) (TeamV4, error) {
	path, err := idPath(routeTeamsV4, id)
	if err != nil {
		return TeamV4{}, err
	}
	body, err := json.Marshal(up)
	if err != nil {
		return TeamV4{}, fmt.Errorf("pagertree: PUT %s: encoding the update: %w", routeTeamV4, err)
	}
	var t TeamV4
	resp, err := c.decode(ctx, httpx.Request{Method: http.MethodPut, Route: routeTeamV4, Path: path, Body: body}, &t)
	if err != nil {
		return TeamV4{}, err
	}
	if err := checkAnswer(http.MethodPut, routeTeamV4, resp.Status, answered{id: t.ID, wantID: id, name: t.Name, sentName: up.Name}); err != nil {
		return TeamV4{}, err
	}
	return t, nil
}

// DeleteTeamV4 deletes a team (v4). A 404 after an attempt whose answer
// was lost counts as success: that attempt deleted the team. A 404 on the
// first attempt is an *APIError.
func (c *Client) DeleteTeamV4(ctx context.Context, id string) error {
	path, err := idPath(routeTeamsV4, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, httpx.Request{Method: http.MethodDelete, Route: routeTeamV4, Path: path, GoneIsDone: true})
	return err
}
