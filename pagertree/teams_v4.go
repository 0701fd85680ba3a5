package pagertree

import (
	"context"
	"iter"
	"net/http"
)

func teamV4ID(t TeamV4) string { return t.ID }

// TeamsV4 yields every team (v4), for a lookup that may stop at the one it
// wants; it reads the collection as Teams does. On error it yields the
// error once and ends.
func (c *Client) TeamsV4(ctx context.Context) iter.Seq2[TeamV4, error] {
	return list(ctx, c, teamsV4.route, teamV4ID)
}

// ListTeamsV4 returns every team (v4), read as ListTeams reads teams: a
// listing that does not come to the first page's total_count is read once
// more, and fails rather than return part of the account.
func (c *Client) ListTeamsV4(ctx context.Context) ([]TeamV4, error) {
	return listAll(ctx, c, teamsV4.route, teamV4ID)
}

// GetTeamV4 returns one team (v4).
func (c *Client) GetTeamV4(ctx context.Context, id string) (TeamV4, error) {
	return getOne[TeamV4](ctx, c, teamsV4, id)
}

// CreateTeamV4 creates a team (v4), never twice: when an attempt's answer
// is lost the team is looked up before trying again or giving up, by the
// exact name and the exact notes, where ptsync's creates carry its
// ownership marker (CreateTeam does the same with the description, and
// says why members are not compared). PagerTree makes the team's schedule
// and escalation policy; it wants at least one member and one admin.
func (c *Client) CreateTeamV4(ctx context.Context, in TeamV4Input) (TeamV4, error) {
	created, status, err := create(ctx, c, teamsV4, in, func(ctx context.Context) (TeamV4, bool, error) {
		return lastMatch(c.TeamsV4(ctx), func(t TeamV4) bool { return t.Name == in.Name && t.Notes == in.Notes })
	})
	if err != nil {
		return TeamV4{}, err
	}
	if err := checkAnswer(http.MethodPost, teamsV4.route, status, answered{id: created.ID, name: created.Name, sentName: &in.Name}); err != nil {
		return TeamV4{}, err
	}
	return created, nil
}

// UpdateTeamV4 changes the fields of up that are not nil (schedule_id,
// escalation_policy_id and anything else not in TeamV4Update is left as it
// is) and returns the team as the server has it then. An answer about
// another team (or none), or with another name than a rename sent, is an
// error.
func (c *Client) UpdateTeamV4(ctx context.Context, id string, up TeamV4Update) (TeamV4, error) {
	t, status, err := update[TeamV4](ctx, c, teamsV4, id, up)
	if err != nil {
		return TeamV4{}, err
	}
	if err := checkAnswer(http.MethodPut, teamsV4.item, status, answered{id: t.ID, wantID: id, name: t.Name, sentName: up.Name}); err != nil {
		return TeamV4{}, err
	}
	return t, nil
}

// DeleteTeamV4 deletes a team (v4). A 404 after an attempt whose answer
// was lost counts as success: that attempt deleted the team. A 404 on the
// first attempt is an *APIError.
func (c *Client) DeleteTeamV4(ctx context.Context, id string) error {
	return c.remove(ctx, teamsV4, id)
}
