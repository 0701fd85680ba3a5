package pagertreetest

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestLoadV4(t *testing.T) {
	tests := []struct {
		name, fixture string
	}{
		{"YAML", `
users:
  - {name: Ann Lee, email: ann@example.com, phone: "+14155550100", roles: {admin: true, broadcast: true}}
  - name: Bo
    email: Bo@Example.com
teams:
  - {name: DB, description: database on-call, members: [ANN@example.com, bo@example.com], admins: [BO@example.com]}
  - {name: Web, members: [bo@example.com, ann@example.com]}
`},
		{"JSON", `{
	"users": [
		{"name": "Ann Lee", "email": "ann@example.com", "phone": "+14155550100", "roles": {"admin": true, "broadcast": true}},
		{"name": "Bo", "email": "Bo@Example.com"}
	],
	"teams": [
		{"name": "DB", "description": "database on-call", "members": ["ANN@example.com", "bo@example.com"], "admins": ["BO@example.com"]},
		{"name": "Web", "members": ["bo@example.com", "ann@example.com"]}
	]
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(Options{API: "v4"})
			t.Cleanup(s.Close)
			if err := s.Load(strings.NewReader(tt.fixture)); err != nil {
				t.Fatal(err)
			}
			users := s.AccountUsers()
			if len(users) != 2 {
				t.Fatalf("%d account users, want 2", len(users))
			}
			ann, bo := users[0], users[1]
			phone, _ := ann.User.PrimaryPhone()
			if ann.User.Name != "Ann Lee" || ann.User.PrimaryEmail() != "ann@example.com" || phone.Phone != "+14155550100" ||
				ann.Roles != (pagertree.AccountRoles{Admin: true, Broadcaster: true}) || !isULID(ann.ID) {
				t.Errorf("Ann loaded as %+v", ann)
			}
			if bo.User.Name != "Bo" || bo.User.PrimaryEmail() != "Bo@Example.com" || len(bo.User.Phones) != 0 || bo.Roles != (pagertree.AccountRoles{}) {
				t.Errorf("Bo loaded as %+v", bo)
			}
			teams := s.TeamsV4()
			if len(teams) != 2 {
				t.Fatalf("%d teams, want 2", len(teams))
			}
			db, web := teams[0], teams[1]
			if db.Name != "DB" || db.Notes != "database on-call" || !slices.Equal(db.MemberAccountUserIDs, []string{ann.ID, bo.ID}) ||
				!slices.Equal(db.AdminAccountUserIDs, []string{bo.ID}) || !isULID(db.ScheduleID) || !isULID(db.EscalationPolicyID) {
				t.Errorf("DB loaded as %+v", db)
			}
			if !slices.Equal(web.AdminAccountUserIDs, []string{bo.ID}) {
				t.Errorf("Web's admins %v: want its first member, Bo", web.AdminAccountUserIDs)
			}
			// What is loaded is served.
			var page pagertree.List[pagertree.TeamV4]
			decodeStrict(t, expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusOK), &page)
			if page.TotalCount != 2 || page.Data[0].ID != db.ID {
				t.Errorf("listed %+v", page)
			}
		})
	}
}

func TestLoadV4Refused(t *testing.T) {
	const want = `pagertreetest: load fixture: users[0]: user name can't be blank
users[2]: email "A@example.com" appears twice
users[3]: phone '555-0100' is not in E.164 format (+ and 8 to 15 digits)
users[4]: email 'taken@example.com' has already been taken
teams[0]: 'name' is required
teams[1] "Nobody": a team needs at least 1 member
teams[1] "Nobody": a team needs at least 1 admin
teams[2] "No admins": a team needs at least 1 admin
teams[3] "Ghosts": member "ghost@example.com" is no user
teams[3] "Ghosts": admin "ghost@example.com" is no user
teams[4] "Ghost admin": admin "boo@example.com" is no user`
	fixture := `
users:
  - {email: nameless@example.com}
  - {name: A, email: a@example.com}
  - {name: A again, email: A@example.com}
  - {name: P, email: p@example.com, phone: 555-0100}
  - {name: Taken, email: taken@example.com}
teams:
  - {name: "", members: [a@example.com]}
  - {name: Nobody}
  - {name: No admins, members: [a@example.com], admins: []}
  - {name: Ghosts, members: [ghost@example.com]}
  - {name: Ghost admin, members: [TAKEN@example.com], admins: [boo@example.com]}
`
	s := New(Options{API: "v4"})
	mustAddAccountUser(t, s, person("Taken", "taken@example.com"))
	if err := s.Load(strings.NewReader(fixture)); err == nil || err.Error() != want {
		t.Fatalf("error %v,\nwant %s", err, want)
	}
	if len(s.AccountUsers()) != 1 || len(s.TeamsV4()) != 0 {
		t.Errorf("a refused fixture stored something: %d account users, %d teams", len(s.AccountUsers()), len(s.TeamsV4()))
	}
}

// TestLoadAdminsInV3 checks v3 refuses the v4-only admins list.
func TestLoadAdminsInV3(t *testing.T) {
	s := New(Options{})
	err := s.Load(strings.NewReader("users:\n  - {email: a@example.com}\nteams:\n  - {name: DB, members: [a@example.com], admins: [a@example.com]}\n"))
	if want := `pagertreetest: load fixture: teams[0] "DB": 'admins' is for v4 only`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if len(s.Users()) != 0 {
		t.Error("a refused fixture stored users")
	}
}
