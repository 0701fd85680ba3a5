package pagertreetest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// timestampLayout is the API's: RFC 3339 in UTC with milliseconds.
const timestampLayout = "2006-01-02T15:04:05.000Z"

func TestCreateUser(t *testing.T) {
	s := newTestServer(t)
	clock := newFakeClock(s)
	token := login(t, s)
	r := expect(t, s, token, http.MethodPost, "/user", `{"name":"Ann Lee","email":"Ann.Lee@Example.com","phone":"+14155550100","preferences":{"alert_sms":true}}`, http.StatusCreated)
	got := decodeUser(t, r)
	if !strings.HasPrefix(got.ID, "usr_") || len(got.ID) != len("usr_")+9 {
		t.Errorf("id %q: want usr_ and 9 characters", got.ID)
	}
	if !strings.HasPrefix(got.SID, "acc_") {
		t.Errorf("sid %q: want an account id", got.SID)
	}
	wantStamp := clock.now().Format(timestampLayout)
	want := pagertree.User{ID: got.ID, SID: got.SID, CreatedAt: wantStamp, UpdatedAt: wantStamp, Name: "Ann Lee", Email: "Ann.Lee@Example.com", Phone: "+14155550100"}
	if got != want {
		t.Errorf("created %+v, want %+v", got, want)
	}
	if !strings.Contains(string(r.body), `"roles":{}`) {
		t.Errorf("a new user's roles must be {}: %s", r.body)
	}
	if stored := s.Users(); len(stored) != 1 || stored[0] != want {
		t.Errorf("Users() = %+v, want [%+v]", stored, want)
	}
	if fetched := decodeUser(t, expect(t, s, token, http.MethodGet, "/user/"+got.ID, "", http.StatusOK)); fetched != want {
		t.Errorf("GET answered %+v, want %+v", fetched, want)
	}
}

func TestCreateUserRefused(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
	tests := []struct {
		name, body  string
		wantStatus  int
		wantMessage string
	}{
		{"same email", `{"email":"ann@example.com"}`, http.StatusConflict, "a user with email 'ann@example.com' already exists"},
		{"email in upper case", `{"email":"ANN@EXAMPLE.COM"}`, http.StatusConflict, "a user with email 'ANN@EXAMPLE.COM' already exists"},
		{"email in mixed case", `{"name":"Other","email":"Ann@Example.com"}`, http.StatusConflict, "a user with email 'Ann@Example.com' already exists"},
		{"no email", `{"name":"Bo"}`, http.StatusBadRequest, "'email' is a required parameter"},
		{"empty body", ``, http.StatusBadRequest, "'email' is a required parameter"},
		{"null body", `null`, http.StatusBadRequest, "'email' is a required parameter"},
		{"empty email", `{"email":""}`, http.StatusBadRequest, "'email' is a required parameter"},
		{"not an email", `{"email":"bo"}`, http.StatusBadRequest, "'email' must be an email address"},
		{"email with a space", `{"email":"bo @example.com"}`, http.StatusBadRequest, "'email' must be an email address"},
		{"malformed JSON", `{"email":"bo@example.com"`, http.StatusBadRequest, "malformed JSON body: unexpected EOF"},
		{"data after the object", `{"email":"bo@example.com"} {}`, http.StatusBadRequest, "malformed JSON body: data after the JSON value"},
		{"email of the wrong type", `{"email":7}`, http.StatusBadRequest, "malformed JSON body: json: cannot unmarshal number into Go struct field userChanges.email of type string"},
		{"an array", `[]`, http.StatusBadRequest, "malformed JSON body: json: cannot unmarshal array into Go value of type pagertreetest.userChanges"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, http.MethodPost, "/user", tt.body, tt.wantStatus)
			if got := errorMessage(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if n := len(s.Users()); n != 1 {
		t.Errorf("%d users after refused creates, want 1", n)
	}
}

// TestErrorBodyShape pins the seed's error body byte for byte.
func TestErrorBodyShape(t *testing.T) {
	s := newTestServer(t)
	r := expect(t, s, login(t, s), http.MethodPost, "/user", `{"name":"Austin"}`, http.StatusBadRequest)
	if got, want := string(r.body), `{"errors":[{"message":"'email' is a required parameter"}]}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

func TestUpdateUser(t *testing.T) {
	admin := pagertree.Roles{Admin: true}
	tests := []struct {
		name string
		body string
		want func(u pagertree.User) pagertree.User
	}{
		{"name only", `{"name":"Ann Lee"}`, func(u pagertree.User) pagertree.User { u.Name = "Ann Lee"; return u }},
		{"phone only", `{"phone":"+33612345678"}`, func(u pagertree.User) pagertree.User { u.Phone = "+33612345678"; return u }},
		{"phone emptied", `{"phone":""}`, func(u pagertree.User) pagertree.User { u.Phone = ""; return u }},
		{"new email", `{"email":"ann.lee@example.com"}`, func(u pagertree.User) pagertree.User { u.Email = "ann.lee@example.com"; return u }},
		{"own email in another case", `{"email":"ANN@example.com"}`, func(u pagertree.User) pagertree.User { u.Email = "ANN@example.com"; return u }},
		{"roles", `{"roles":{"admin":true}}`, func(u pagertree.User) pagertree.User { u.Roles = admin; return u }},
		{"unknown fields ignored", `{"preferences":{"timezone":"UTC"},"lastlogin":5}`, func(u pagertree.User) pagertree.User { return u }},
		{"empty object", `{}`, func(u pagertree.User) pagertree.User { return u }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			clock := newFakeClock(s)
			token := login(t, s)
			before := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com", Phone: "+14155550100"})
			clock.advance(time.Minute)
			got := decodeUser(t, expect(t, s, token, http.MethodPut, "/user/"+before.ID, tt.body, http.StatusOK))
			want := tt.want(before)
			want.UpdatedAt = clock.now().Format(timestampLayout)
			if got != want {
				t.Errorf("answered %+v, want %+v", got, want)
			}
			if stored := s.Users()[0]; stored != want {
				t.Errorf("stored %+v, want %+v", stored, want)
			}
		})
	}
}

func TestUpdateUserRefused(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
	mustAddUser(t, s, pagertree.User{Name: "Bo", Email: "bo@example.com"})
	tests := []struct {
		name, id, body string
		wantStatus     int
		wantMessage    string
	}{
		{"email of another user", ann.ID, `{"email":"Bo@Example.com"}`, http.StatusConflict, "a user with email 'Bo@Example.com' already exists"},
		{"empty email", ann.ID, `{"email":""}`, http.StatusBadRequest, "'email' is a required parameter"},
		{"malformed JSON", ann.ID, `{"name":}`, http.StatusBadRequest, "malformed JSON body: invalid character '}' looking for beginning of value"},
		{"unknown id", "usr_missing00", `{"name":"X"}`, http.StatusNotFound, "user 'usr_missing00' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, http.MethodPut, "/user/"+tt.id, tt.body, tt.wantStatus)
			if got := errorMessage(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if got := s.Users()[0]; got != ann {
		t.Errorf("refused updates changed the user: %+v, want %+v", got, ann)
	}
}

func TestUnknownIDs(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		for _, kind := range []string{"user", "team"} {
			t.Run(method+" "+kind, func(t *testing.T) {
				body := ""
				if method == http.MethodPut {
					body = `{"name":"X"}`
				}
				r := expect(t, s, token, method, "/"+kind+"/nope", body, http.StatusNotFound)
				if got, want := errorMessage(t, r), kind+" 'nope' not found"; got != want {
					t.Errorf("message %q, want %q", got, want)
				}
			})
		}
	}
}

func TestDeleteUser(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
	bo := mustAddUser(t, s, pagertree.User{Name: "Bo", Email: "bo@example.com"})
	db := mustAddTeam(t, s, pagertree.Team{Name: "DB", MemberUserIDs: []string{ann.ID, bo.ID}})
	web := mustAddTeam(t, s, pagertree.Team{Name: "Web", MemberUserIDs: []string{bo.ID}})
	ops := mustAddTeam(t, s, pagertree.Team{Name: "Ops", MemberUserIDs: []string{ann.ID}})

	r := expect(t, s, token, http.MethodDelete, "/user/"+bo.ID, "", http.StatusNoContent)
	if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
		t.Errorf("204 with body %q and Content-Type %q, want neither", r.body, r.header.Get("Content-Type"))
	}
	expect(t, s, token, http.MethodGet, "/user/"+bo.ID, "", http.StatusNotFound)
	expect(t, s, token, http.MethodDelete, "/user/"+bo.ID, "", http.StatusNotFound)

	wantMembers := map[string][]string{db.ID: {ann.ID}, web.ID: {}, ops.ID: {ann.ID}}
	for id, want := range wantMembers {
		got := decodeTeam(t, expect(t, s, token, http.MethodGet, "/team/"+id, "", http.StatusOK))
		if !slices.Equal(got.MemberUserIDs, want) {
			t.Errorf("team %s members %v, want %v", got.Name, got.MemberUserIDs, want)
		}
	}
	if users := s.Users(); len(users) != 1 || users[0] != ann {
		t.Errorf("Users() = %+v, want only Ann", users)
	}
	// The email is free again.
	expect(t, s, token, http.MethodPost, "/user", `{"email":"BO@example.com"}`, http.StatusCreated)
}

func TestCreateTeam(t *testing.T) {
	s := newTestServer(t)
	clock := newFakeClock(s)
	token := login(t, s)
	ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
	stamp := clock.now().Format(timestampLayout)
	tests := []struct {
		name, body  string
		want        pagertree.Team // id, sid and schedule_id are checked apart
		wantRawPart string
	}{
		{"name only", `{"name":"DevOps"}`, pagertree.Team{Name: "DevOps", MemberUserIDs: []string{}}, `"member_user_ids":[]`},
		{"every field", `{"name":"DB","description":"database","member_user_ids":["` + ann.ID + `","` + ann.ID + `"],"schedule_id":"skd_mine"}`,
			pagertree.Team{Name: "DB", Description: "database", MemberUserIDs: []string{ann.ID}}, `"member_user_ids":["` + ann.ID + `"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, http.MethodPost, "/team", tt.body, http.StatusCreated)
			got := decodeTeam(t, r)
			if !strings.HasPrefix(got.ID, "tem_") || !strings.HasPrefix(got.ScheduleID, "skd_") || got.ScheduleID == "skd_mine" || got.SID != ann.SID {
				t.Errorf("id %q schedule_id %q sid %q: want tem_…, an assigned skd_…, the account", got.ID, got.ScheduleID, got.SID)
			}
			want := tt.want
			want.ID, want.SID, want.ScheduleID, want.CreatedAt, want.UpdatedAt = got.ID, got.SID, got.ScheduleID, stamp, stamp
			if !teamsEqual(got, want) {
				t.Errorf("created %+v, want %+v", got, want)
			}
			if !strings.Contains(string(r.body), tt.wantRawPart) {
				t.Errorf("body %s lacks %s", r.body, tt.wantRawPart)
			}
			if fetched := decodeTeam(t, expect(t, s, token, http.MethodGet, "/team/"+got.ID, "", http.StatusOK)); !teamsEqual(fetched, want) {
				t.Errorf("GET answered %+v, want %+v", fetched, want)
			}
		})
	}
}

func TestCreateTeamRefused(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	tests := []struct {
		name, body, wantMessage string
	}{
		{"no name", `{"description":"x"}`, "'name' is a required parameter"},
		{"blank name", `{"name":"  "}`, "'name' is a required parameter"},
		{"unknown member", `{"name":"DB","member_user_ids":["usr_ghost0000"]}`, "'member_user_ids' contains 'usr_ghost0000', which is no user"},
		{"members of the wrong type", `{"name":"DB","member_user_ids":"usr_1"}`, "malformed JSON body: json: cannot unmarshal string into Go struct field teamChanges.member_user_ids of type []string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, http.MethodPost, "/team", tt.body, http.StatusBadRequest)
			if got := errorMessage(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if n := len(s.Teams()); n != 0 {
		t.Errorf("%d teams after refused creates, want 0", n)
	}
}

func TestUpdateTeam(t *testing.T) {
	tests := []struct {
		name string
		body string // %s is Bo's id
		want func(tm pagertree.Team, bo string) pagertree.Team
	}{
		{"members only", `{"member_user_ids":["%s"]}`, func(tm pagertree.Team, bo string) pagertree.Team { tm.MemberUserIDs = []string{bo}; return tm }},
		{"members emptied", `{"member_user_ids":[]}`, func(tm pagertree.Team, _ string) pagertree.Team { tm.MemberUserIDs = []string{}; return tm }},
		{"name only", `{"name":"Database"}`, func(tm pagertree.Team, _ string) pagertree.Team { tm.Name = "Database"; return tm }},
		{"description only", `{"description":"on-call for %s"}`, func(tm pagertree.Team, bo string) pagertree.Team { tm.Description = "on-call for " + bo; return tm }},
		{"schedule_id is not written", `{"schedule_id":"skd_other0000","id":"tem_other0000"}`, func(tm pagertree.Team, _ string) pagertree.Team { return tm }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t)
			clock := newFakeClock(s)
			token := login(t, s)
			ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com"})
			bo := mustAddUser(t, s, pagertree.User{Name: "Bo", Email: "bo@example.com"})
			before := mustAddTeam(t, s, pagertree.Team{Name: "DB", Description: "database", MemberUserIDs: []string{ann.ID}})
			clock.advance(time.Second)
			body := strings.ReplaceAll(tt.body, "%s", bo.ID)
			got := decodeTeam(t, expect(t, s, token, http.MethodPut, "/team/"+before.ID, body, http.StatusOK))
			want := tt.want(before, bo.ID)
			want.UpdatedAt = clock.now().Format(timestampLayout)
			if !teamsEqual(got, want) {
				t.Errorf("answered %+v, want %+v", got, want)
			}
			if stored := s.Teams()[0]; !teamsEqual(stored, want) {
				t.Errorf("stored %+v, want %+v", stored, want)
			}
		})
	}
}

func TestUpdateTeamRefused(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	team := mustAddTeam(t, s, pagertree.Team{Name: "DB"})
	tests := []struct {
		name, body, wantMessage string
	}{
		{"empty name", `{"name":""}`, "'name' must not be empty"},
		{"unknown member", `{"member_user_ids":["usr_ghost0000"]}`, "'member_user_ids' contains 'usr_ghost0000', which is no user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, http.MethodPut, "/team/"+team.ID, tt.body, http.StatusBadRequest)
			if got := errorMessage(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if got := s.Teams()[0]; !teamsEqual(got, team) {
		t.Errorf("refused updates changed the team: %+v, want %+v", got, team)
	}
}

func TestDeleteTeam(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	db := mustAddTeam(t, s, pagertree.Team{Name: "DB"})
	web := mustAddTeam(t, s, pagertree.Team{Name: "Web"})
	r := expect(t, s, token, http.MethodDelete, "/team/"+db.ID, "", http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	expect(t, s, token, http.MethodGet, "/team/"+db.ID, "", http.StatusNotFound)
	if teams := s.Teams(); len(teams) != 1 || teams[0].ID != web.ID {
		t.Errorf("Teams() = %+v, want only Web", teams)
	}
}

func TestAddRefused(t *testing.T) {
	s := New(Options{})
	ann := mustAddUser(t, s, pagertree.User{Name: "Ann", Email: "ann@example.com", Roles: pagertree.Roles{Admin: true}})
	if !ann.Roles.Admin {
		t.Errorf("AddUser dropped the admin role: %+v", ann)
	}
	userTests := []struct {
		name    string
		user    pagertree.User
		wantErr string
	}{
		{"taken email", pagertree.User{Email: "ANN@example.com"}, "pagertreetest: add user: a user with email 'ANN@example.com' already exists"},
		{"no email", pagertree.User{Name: "X"}, "pagertreetest: add user: 'email' is a required parameter"},
		{"taken id", pagertree.User{ID: ann.ID, Email: "x@example.com"}, "pagertreetest: add user: id '" + ann.ID + "' is already used"},
		{"id of another kind", pagertree.User{ID: "tem_1", Email: "x@example.com"}, `pagertreetest: add user: id 'tem_1' must start with "usr_"`},
	}
	for _, tt := range userTests {
		t.Run("user "+tt.name, func(t *testing.T) {
			if _, err := s.AddUser(tt.user); err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	teamTests := []struct {
		name    string
		team    pagertree.Team
		wantErr string
	}{
		{"no name", pagertree.Team{}, "pagertreetest: add team: 'name' is a required parameter"},
		{"unknown member", pagertree.Team{Name: "DB", MemberUserIDs: []string{"usr_x"}}, "pagertreetest: add team: 'member_user_ids' contains 'usr_x', which is no user"},
		{"id of another kind", pagertree.Team{ID: ann.ID, Name: "DB"}, `pagertreetest: add team: id '` + ann.ID + `' must start with "tem_"`},
	}
	for _, tt := range teamTests {
		t.Run("team "+tt.name, func(t *testing.T) {
			if _, err := s.AddTeam(tt.team); err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if len(s.Users()) != 1 || len(s.Teams()) != 0 {
		t.Errorf("refused adds stored something: %d users, %d teams", len(s.Users()), len(s.Teams()))
	}
	kept := mustAddTeam(t, s, pagertree.Team{ID: "tem_given", Name: "DB", ScheduleID: "skd_given"})
	if kept.ID != "tem_given" || kept.ScheduleID != "skd_given" {
		t.Errorf("AddTeam did not keep the given ids: %+v", kept)
	}
}

// teamsEqual compares teams field by field, member lists included.
func teamsEqual(a, b pagertree.Team) bool {
	return slices.Equal(a.MemberUserIDs, b.MemberUserIDs) && a.ID == b.ID && a.SID == b.SID && a.CreatedAt == b.CreatedAt && a.UpdatedAt == b.UpdatedAt &&
		a.Name == b.Name && a.Description == b.Description && a.ScheduleID == b.ScheduleID
}
