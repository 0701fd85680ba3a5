package pagertreetest

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

func TestV4CreateTeam(t *testing.T) {
	s := newV4Server(t)
	clock := newFakeClock(s)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com"))
	stamp := clock.now().Format(timestampLayout)
	tests := []struct {
		name, body string
		want       pagertree.TeamV4 // ids are checked apart
	}{
		{"one account user in both roles", `{"name":"DevOps","member_account_user_ids":["%a"],"admin_account_user_ids":["%a"]}`,
			pagertree.TeamV4{Name: "DevOps", MemberAccountUserIDs: []string{ann.ID}, AdminAccountUserIDs: []string{ann.ID}}},
		{"every field, repeats and unpermitted params", `{"name":"DB","notes":"database","member_account_user_ids":["%a","%b","%a"],"admin_account_user_ids":["%b","%b"],
			"schedule_id":"sch_mine","escalation_policy_id":"esc_mine","id":"mine","drop_notifications":"team_all"}`,
			pagertree.TeamV4{Name: "DB", Notes: "database", MemberAccountUserIDs: []string{ann.ID, bo.ID}, AdminAccountUserIDs: []string{bo.ID}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.NewReplacer("%a", ann.ID, "%b", bo.ID).Replace(tt.body)
			got := decodeTeamV4(t, expect(t, s, bearer, http.MethodPost, "/api/v4/teams", body, http.StatusCreated))
			ids := map[string]bool{got.ID: true, got.ScheduleID: true, got.EscalationPolicyID: true}
			for id := range ids {
				if !isULID(id) {
					t.Errorf("id %q: want a ULID", id)
				}
			}
			if len(ids) != 3 || !isPrefixID(got.PrefixID, "tem_") {
				t.Errorf("id %q schedule_id %q escalation_policy_id %q prefix_id %q: want three ULIDs and tem_…", got.ID, got.ScheduleID, got.EscalationPolicyID, got.PrefixID)
			}
			want := tt.want
			want.ID, want.PrefixID, want.ScheduleID, want.EscalationPolicyID = got.ID, got.PrefixID, got.ScheduleID, got.EscalationPolicyID
			want.AccountID, want.TinyID, want.CreatedAt, want.UpdatedAt = s.AccountID(), i+1, stamp, stamp
			if !reflect.DeepEqual(got, want) {
				t.Errorf("created %+v,\nwant %+v", got, want)
			}
			if fetched := decodeTeamV4(t, expect(t, s, bearer, http.MethodGet, "/api/v4/teams/"+got.ID, "", http.StatusOK)); !reflect.DeepEqual(fetched, want) {
				t.Errorf("GET answered %+v, want %+v", fetched, want)
			}
		})
	}
}

func TestV4CreateTeamRefused(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	roles := `"member_account_user_ids":["` + ann.ID + `"],"admin_account_user_ids":["` + ann.ID + `"]`
	tests := []struct {
		name, body  string
		wantStatus  int
		wantMessage string
	}{
		{"no name", `{` + roles + `}`, 422, "name can't be blank"},
		{"blank name", `{"name":" ",` + roles + `}`, 422, "name can't be blank"},
		{"no members", `{"name":"DB","admin_account_user_ids":["` + ann.ID + `"]}`, 422, "a team needs at least 1 account user in member_account_user_ids"},
		{"empty members", `{"name":"DB","member_account_user_ids":[],"admin_account_user_ids":["` + ann.ID + `"]}`, 422, "a team needs at least 1 account user in member_account_user_ids"},
		{"no admins", `{"name":"DB","member_account_user_ids":["` + ann.ID + `"]}`, 422, "a team needs at least 1 account user in admin_account_user_ids"},
		{"null admins", `{"name":"DB","member_account_user_ids":["` + ann.ID + `"],"admin_account_user_ids":null}`, 422, "a team needs at least 1 account user in admin_account_user_ids"},
		{"unknown member", `{"name":"DB","member_account_user_ids":["ghost"],"admin_account_user_ids":["` + ann.ID + `"]}`, 422, "member_account_user_ids contains 'ghost', which is no account user"},
		{"unknown admin", `{"name":"DB","member_account_user_ids":["` + ann.ID + `"],"admin_account_user_ids":["` + ann.ID + `","ghost"]}`, 422, "admin_account_user_ids contains 'ghost', which is no account user"},
		{"a user id, not an account user id", `{"name":"DB","member_account_user_ids":["` + ann.User.ID + `"],"admin_account_user_ids":["` + ann.ID + `"]}`, 422,
			"member_account_user_ids contains '" + ann.User.ID + "', which is no account user"},
		{"members of the wrong type", `{"name":"DB","member_account_user_ids":"` + ann.ID + `"}`, 422, "'member_account_user_ids' is invalid: string given"},
		{"malformed JSON", `{"name":"DB"`, 400, "malformed JSON body: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, bearer, http.MethodPost, "/api/v4/teams", tt.body, tt.wantStatus)
			if got := errorMessageV4(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if n := len(s.TeamsV4()); n != 0 {
		t.Errorf("%d teams after refused creates, want 0", n)
	}
}

func TestV4UpdateTeam(t *testing.T) {
	tests := []struct {
		name string
		body string // %a and %b are Ann's and Bo's ids
		want func(tm pagertree.TeamV4, ann, bo string) pagertree.TeamV4
	}{
		{"rename keeps the schedule and escalation policy", `{"name":"Database"}`,
			func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { tm.Name = "Database"; return tm }},
		{"notes", `{"notes":"on call"}`, func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { tm.Notes = "on call"; return tm }},
		{"notes emptied", `{"notes":""}`, func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { tm.Notes = ""; return tm }},
		{"members only", `{"member_account_user_ids":["%b","%a","%b"]}`,
			func(tm pagertree.TeamV4, ann, bo string) pagertree.TeamV4 {
				tm.MemberAccountUserIDs = []string{bo, ann}
				return tm
			}},
		{"admins only", `{"admin_account_user_ids":["%b"]}`,
			func(tm pagertree.TeamV4, _, bo string) pagertree.TeamV4 {
				tm.AdminAccountUserIDs = []string{bo}
				return tm
			}},
		{"null lists are not sent", `{"member_account_user_ids":null,"admin_account_user_ids":null}`,
			func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { return tm }},
		{"schedule and policy are not permitted", `{"schedule_id":"other","escalation_policy_id":"other","id":"other","tiny_id":9}`,
			func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { return tm }},
		{"empty object", `{}`, func(tm pagertree.TeamV4, _, _ string) pagertree.TeamV4 { return tm }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newV4Server(t)
			clock := newFakeClock(s)
			ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
			bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com"))
			before := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "DB", Notes: "database", MemberAccountUserIDs: []string{ann.ID}, AdminAccountUserIDs: []string{ann.ID}})
			clock.advance(time.Second)
			body := strings.NewReplacer("%a", ann.ID, "%b", bo.ID).Replace(tt.body)
			got := decodeTeamV4(t, expect(t, s, bearer, http.MethodPut, "/api/v4/teams/"+before.ID, body, http.StatusOK))
			want := tt.want(before, ann.ID, bo.ID)
			want.UpdatedAt = clock.now().Format(timestampLayout)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answered %+v,\nwant %+v", got, want)
			}
			if stored := s.TeamsV4()[0]; !reflect.DeepEqual(stored, want) {
				t.Errorf("stored %+v,\nwant %+v", stored, want)
			}
		})
	}
}

func TestV4UpdateTeamRefused(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	team := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "DB", MemberAccountUserIDs: []string{ann.ID}, AdminAccountUserIDs: []string{ann.ID}})
	tests := []struct {
		name, id, body string
		wantStatus     int
		wantMessage    string
	}{
		{"empty name", team.ID, `{"name":""}`, 422, "name can't be blank"},
		{"members emptied", team.ID, `{"member_account_user_ids":[]}`, 422, "a team needs at least 1 account user in member_account_user_ids"},
		{"admins emptied", team.ID, `{"admin_account_user_ids":[]}`, 422, "a team needs at least 1 account user in admin_account_user_ids"},
		{"unknown member", team.ID, `{"member_account_user_ids":["ghost"]}`, 422, "member_account_user_ids contains 'ghost', which is no account user"},
		{"malformed JSON", team.ID, `{"name":`, 400, "malformed JSON body: unexpected EOF"},
		{"unknown team", "nope", `{"name":"X"}`, 404, "team 'nope' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, bearer, http.MethodPut, "/api/v4/teams/"+tt.id, tt.body, tt.wantStatus)
			if got := errorMessageV4(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if got := s.TeamsV4(); !reflect.DeepEqual(got, []pagertree.TeamV4{team}) {
		t.Errorf("refused updates changed the team: %+v, want %+v", got, team)
	}
}

func TestV4DeleteTeam(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	roles := pagertree.TeamV4{MemberAccountUserIDs: []string{ann.ID}, AdminAccountUserIDs: []string{ann.ID}}
	db, web := roles, roles
	db.Name, web.Name = "DB", "Web"
	db, web = mustAddTeamV4(t, s, db), mustAddTeamV4(t, s, web)
	r := expect(t, s, bearer, http.MethodDelete, "/api/v4/teams/"+db.ID, "", http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	expect(t, s, bearer, http.MethodGet, "/api/v4/teams/"+db.ID, "", http.StatusNotFound)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/teams/"+db.ID, "", http.StatusNotFound)
	if teams := s.TeamsV4(); len(teams) != 1 || teams[0].ID != web.ID {
		t.Errorf("TeamsV4() = %+v, want only Web", teams)
	}
	// Ann is still Web's only member and admin; once Web goes, she can go.
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+ann.ID, "", http.StatusUnprocessableEntity)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/teams/"+web.ID, "", http.StatusNoContent)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+ann.ID, "", http.StatusNoContent)
}
