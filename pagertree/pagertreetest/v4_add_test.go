package pagertreetest

import (
	"reflect"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestAddAccountUser(t *testing.T) {
	s := New(Options{API: "v4"})
	given := pagertree.AccountUser{
		Common:  pagertree.Common{ID: "01HGIVEN00000000000000000A", PrefixID: "acu_given000", AccountID: "other", TinyID: 7, CreatedAt: "2020-01-01T00:00:00.000Z"},
		Roles:   pagertree.AccountRoles{Admin: true, Communicator: true},
		Invited: true,
		User: pagertree.Person{
			ID: "01HGIVEN00000000000000000B", Name: "Ann", TimeZone: "Europe/Paris",
			Emails: []pagertree.Email{{ID: "01HGIVEN00000000000000000C", Email: "ann@example.com"}, {Email: "ann@home.example", Primary: true}, {Email: "a@example.com", Primary: true}},
			Phones: []pagertree.Phone{{Phone: "+14155550100", Country: "US"}},
		},
	}
	got := mustAddAccountUser(t, s, given)
	want := given
	want.AccountID, want.UpdatedAt = s.AccountID(), given.CreatedAt
	want.User.PrefixID = got.User.PrefixID
	want.User.Emails = []pagertree.Email{given.User.Emails[0], {ID: got.User.Emails[1].ID, Email: "ann@home.example", Primary: true}, {ID: got.User.Emails[2].ID, Email: "a@example.com"}}
	want.User.Phones = []pagertree.Phone{{ID: got.User.Phones[0].ID, PrefixID: got.User.Phones[0].PrefixID, Phone: "+14155550100", Country: "US", Primary: true}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("added %+v,\nwant %+v", got, want)
	}
	if !isPrefixID(got.User.PrefixID, "usr_") || !isULID(got.User.Emails[1].ID) || !isULID(got.User.Phones[0].ID) {
		t.Errorf("assigned ids %q %q %q", got.User.PrefixID, got.User.Emails[1].ID, got.User.Phones[0].ID)
	}
	// The caller's value and the copies handed out are not the stored one.
	given.User.Emails[0].Email = "changed@example.com"
	got.User.Emails[0].Email = "changed@example.com"
	s.AccountUsers()[0].User.Emails[0].Email = "changed@example.com"
	if stored := s.AccountUsers()[0]; !reflect.DeepEqual(stored, want) {
		t.Errorf("stored %+v, want %+v", stored, want)
	}
	// tiny_id goes on from the largest given.
	if bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com")); bo.TinyID != 8 {
		t.Errorf("next tiny_id %d, want 8", bo.TinyID)
	}

	tests := []struct {
		name    string
		au      pagertree.AccountUser
		wantErr string
	}{
		{"no name", person("", "x@example.com"), "pagertreetest: add account user: user name can't be blank"},
		{"no email", person("X"), "pagertreetest: add account user: user must have at least one email"},
		{"taken email", person("X", "x@example.com", "A@Example.com"), "pagertreetest: add account user: email 'A@Example.com' has already been taken"},
		{"bad phone", pagertree.AccountUser{User: pagertree.Person{Name: "X", Emails: []pagertree.Email{{Email: "x@example.com"}}, Phones: []pagertree.Phone{{Phone: "555-0100"}}}},
			"pagertreetest: add account user: phone '555-0100' is not in E.164 format (+ and 8 to 15 digits)"},
		{"taken id", pagertree.AccountUser{Common: pagertree.Common{ID: given.ID}, User: person("X", "x@example.com").User},
			"pagertreetest: add account user: id '" + given.ID + "' is already used"},
		{"one id twice", pagertree.AccountUser{Common: pagertree.Common{ID: "01HSAME"}, User: pagertree.Person{ID: "01HSAME", Name: "X", Emails: []pagertree.Email{{Email: "x@example.com"}}}},
			"pagertreetest: add account user: id '01HSAME' is already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddAccountUser(tt.au); err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if n := len(s.AccountUsers()); n != 2 {
		t.Errorf("%d account users after refused adds, want 2", n)
	}
	// A refused add claimed none of its ids.
	mustAddAccountUser(t, s, pagertree.AccountUser{Common: pagertree.Common{ID: "01HSAME"}, User: person("X", "x@example.com").User})
}

func TestAddTeamV4(t *testing.T) {
	s := New(Options{API: "v4"})
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	given := pagertree.TeamV4{
		Common:               pagertree.Common{ID: "01HTEAM", TinyID: 4},
		Name:                 "DB",
		MemberAccountUserIDs: []string{ann.ID, ann.ID},
		AdminAccountUserIDs:  []string{ann.ID},
		ScheduleID:           "01HSCHEDULE",
	}
	got := mustAddTeamV4(t, s, given)
	if got.ID != "01HTEAM" || got.TinyID != 4 || got.ScheduleID != "01HSCHEDULE" || !isULID(got.EscalationPolicyID) || !isPrefixID(got.PrefixID, "tem_") ||
		got.AccountID != s.AccountID() || !reflect.DeepEqual(got.MemberAccountUserIDs, []string{ann.ID}) {
		t.Errorf("added %+v: want the given ids kept, the rest filled in, members without repeats", got)
	}
	roles := func(tm pagertree.TeamV4) pagertree.TeamV4 {
		tm.MemberAccountUserIDs, tm.AdminAccountUserIDs = []string{ann.ID}, []string{ann.ID}
		return tm
	}
	tests := []struct {
		name    string
		team    pagertree.TeamV4
		wantErr string
	}{
		{"no name", roles(pagertree.TeamV4{}), "pagertreetest: add team: name can't be blank"},
		{"no member", pagertree.TeamV4{Name: "X", AdminAccountUserIDs: []string{ann.ID}}, "pagertreetest: add team: a team needs at least 1 account user in member_account_user_ids"},
		{"no admin", pagertree.TeamV4{Name: "X", MemberAccountUserIDs: []string{ann.ID}}, "pagertreetest: add team: a team needs at least 1 account user in admin_account_user_ids"},
		{"unknown member", pagertree.TeamV4{Name: "X", MemberAccountUserIDs: []string{"ghost"}, AdminAccountUserIDs: []string{ann.ID}},
			"pagertreetest: add team: member_account_user_ids contains 'ghost', which is no account user"},
		{"taken schedule id", roles(pagertree.TeamV4{Name: "X", ScheduleID: "01HSCHEDULE"}), "pagertreetest: add team: id '01HSCHEDULE' is already used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddTeamV4(tt.team); err == nil || err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if n := len(s.TeamsV4()); n != 1 {
		t.Errorf("%d teams after refused adds, want 1", n)
	}
}
