package pagertree

import (
	"context"
	"iter"
	"net/http"
)

func teamID(t Team) string { return t.ID }

// Teams yields every team of the account, for a lookup that may stop at
// the one it wants. Unlike ListTeams, it takes a reading that came out
// long (teams created meanwhile) at once; a short one is read again, and
// the sequence ends with an error rather than miss a team. On error it
// yields the error once and ends.
func (c *Client) Teams(ctx context.Context) iter.Seq2[Team, error] {
	return list(ctx, c, teamsV3.route, teamID)
}

// ListTeams returns every team of the account, listing max(1, ceil(N/100))
// pages with up to Concurrency fetched at once. A listing that does not
// come to the first page's total_count is read once more; if that one is
// not whole either, ListTeams fails rather than return part of the
// account.
func (c *Client) ListTeams(ctx context.Context) ([]Team, error) {
	return listAll(ctx, c, teamsV3.route, teamID)
}

// GetTeam returns one team.
func (c *Client) GetTeam(ctx context.Context, id string) (Team, error) {
	return getOne[Team](ctx, c, teamsV3, id)
}

// CreateTeam creates a team, never twice: when an attempt's answer is lost
// (transport error, timeout, 5xx) the team is looked up before trying again
// or giving up. Team names are not unique, so the lookup wants the exact
// name and the exact description: ptsync's creates carry its ownership
// marker in the description, so a team of the same name made by someone
// else, or for another group, is not taken for the one just created. Of
// several it takes the last listed (lastMatch).
//
// Member ids are not compared. The team found was created with this body;
// if its membership differs now (someone changed it, or the server dropped
// or reordered ids) the next sync plans the membership write that fixes it,
// whereas comparing would create a second team of that name and marker.
func (c *Client) CreateTeam(ctx context.Context, in TeamInput) (Team, error) {
	created, status, err := create(ctx, c, teamsV3, in, func(ctx context.Context) (Team, bool, error) {
		return lastMatch(c.Teams(ctx), func(t Team) bool { return t.Name == in.Name && t.Description == in.Description })
	})
	if err != nil {
		return Team{}, err
	}
	// A lost create found by the lookup passes too: it has an id, and the
	// name it was found by.
	if err := checkAnswer(http.MethodPost, teamsV3.route, status, answered{id: created.ID, name: created.Name, sentName: &in.Name}); err != nil {
		return Team{}, err
	}
	return created, nil
}

// UpdateTeam changes the fields of up that are not nil (schedule_id and
// anything else not in TeamUpdate is left as it is) and returns the team as
// the server has it then. An answer about another team (or none), or with
// another name than a rename sent, is an error.
func (c *Client) UpdateTeam(ctx context.Context, id string, up TeamUpdate) (Team, error) {
	t, status, err := update[Team](ctx, c, teamsV3, id, up)
	if err != nil {
		return Team{}, err
	}
	if err := checkAnswer(http.MethodPut, teamsV3.item, status, answered{id: t.ID, wantID: id, name: t.Name, sentName: up.Name}); err != nil {
		return Team{}, err
	}
	return t, nil
}

// DeleteTeam deletes a team. A 404 after an attempt whose answer was lost
// counts as success: that attempt deleted the team. A 404 on the first
// attempt is an *APIError.
func (c *Client) DeleteTeam(ctx context.Context, id string) error {
	return c.remove(ctx, teamsV3, id)
}
