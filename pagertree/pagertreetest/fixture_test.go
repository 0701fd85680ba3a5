package pagertreetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name, fixture string
	}{
		{"YAML", `
users:
  - {name: Ann Lee, email: ann@example.com, phone: "+14155550100", roles: {admin: true}}
  - name: Bo
    email: Bo@Example.com
teams:
  - {name: DB, description: database on-call, members: [ANN@example.com, bo@example.com]}
  - name: Empty
`},
		{"JSON", `
	{
		"users": [
			{"name": "Ann Lee", "email": "ann@example.com", "phone": "+14155550100", "roles": {"admin": true}},
			{"name": "Bo", "email": "Bo@Example.com"}
		],
		"teams": [
			{"name": "DB", "description": "database on-call", "members": ["ANN@example.com", "bo@example.com"]},
			{"name": "Empty"}
		]
	}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			if err := s.Load(strings.NewReader(tt.fixture)); err != nil {
				t.Fatal(err)
			}
			users := s.Users()
			if len(users) != 2 {
				t.Fatalf("%d users, want 2", len(users))
			}
			ann, bo := users[0], users[1]
			if ann.Name != "Ann Lee" || ann.Email != "ann@example.com" || ann.Phone != "+14155550100" || ann.Roles != (pagertree.Roles{Admin: true}) {
				t.Errorf("Ann loaded as %+v", ann)
			}
			if bo.Name != "Bo" || bo.Email != "Bo@Example.com" || bo.Roles != (pagertree.Roles{}) || !strings.HasPrefix(bo.ID, "usr_") {
				t.Errorf("Bo loaded as %+v", bo)
			}
			teams := s.Teams()
			if len(teams) != 2 {
				t.Fatalf("%d teams, want 2", len(teams))
			}
			db, empty := teams[0], teams[1]
			if db.Name != "DB" || db.Description != "database on-call" || !slices.Equal(db.MemberUserIDs, []string{ann.ID, bo.ID}) || !strings.HasPrefix(db.ScheduleID, "skd_") {
				t.Errorf("DB loaded as %+v", db)
			}
			if empty.Name != "Empty" || empty.MemberUserIDs == nil || len(empty.MemberUserIDs) != 0 {
				t.Errorf("Empty loaded as %+v", empty)
			}
		})
	}
}

func TestLoadEmpty(t *testing.T) {
	for _, fixture := range []string{"", "  \n", "users: []\n", "{}"} {
		s := New(Options{})
		if err := s.Load(strings.NewReader(fixture)); err != nil || len(s.Users()) != 0 || len(s.Teams()) != 0 {
			t.Errorf("Load(%q): %v, %d users, %d teams; want nothing", fixture, err, len(s.Users()), len(s.Teams()))
		}
	}
}

func TestLoadRefused(t *testing.T) {
	tests := []struct {
		name, fixture, wantErr string
	}{
		{"unknown top-level key in YAML", "users: []\ngroups: []\n",
			"pagertreetest: load fixture: decode YAML: yaml: unmarshal errors:\n  line 2: field groups not found in type pagertreetest.fixture"},
		{"unknown user key in YAML", "users:\n  - {email: a@example.com, nick: A}\n",
			"pagertreetest: load fixture: decode YAML: yaml: unmarshal errors:\n  line 2: field nick not found in type pagertreetest.fixtureUser"},
		{"unknown role in YAML", "users:\n  - {email: a@example.com, roles: {owner: true}}\n",
			"pagertreetest: load fixture: decode YAML: yaml: unmarshal errors:\n  line 2: field owner not found in type pagertreetest.fixtureRoles"},
		{"unknown key in JSON", `{"users": [{"email": "a@example.com", "nick": "A"}]}`,
			`pagertreetest: load fixture: decode JSON: json: unknown field "nick"`},
		{"data after the JSON object", `{"users": []} {}`,
			"pagertreetest: load fixture: decode JSON: data after the fixture object"},
		{"malformed YAML", "users: [\n",
			"pagertreetest: load fixture: decode YAML: yaml: line 1: did not find expected node content"},
		{"every problem at once", `
users:
  - {name: A, email: a@example.com}
  - {name: A again, email: A@example.com}
  - {name: No email}
  - {name: Taken, email: taken@example.com}
teams:
  - {name: "", members: [a@example.com]}
  - {name: Ghosts, members: [ghost@example.com]}
`, `pagertreetest: load fixture: users[1]: email "A@example.com" appears twice
users[2]: 'email' is a required parameter
users[3]: a user with email 'taken@example.com' already exists
teams[0]: 'name' is required
teams[1] "Ghosts": member "ghost@example.com" is no user`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			mustAddUser(t, s, pagertree.User{Name: "Taken", Email: "taken@example.com"})
			err := s.Load(strings.NewReader(tt.fixture))
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if len(s.Users()) != 1 || len(s.Teams()) != 0 {
				t.Errorf("a refused fixture stored something: %d users, %d teams", len(s.Users()), len(s.Teams()))
			}
		})
	}
}
