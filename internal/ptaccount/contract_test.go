package ptaccount_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sync"
)

// contractCase is one thing sync relies on sync.PagerTree for. only names
// the one version it applies to, "" for every version.
type contractCase struct {
	name string
	only string
	run  func(t *testing.T, pt sync.PagerTree, acc inspect)
}

// TestContract runs every contract case against each PagerTree API
// version's emulator through its adapter: what sync relies on holds for
// both, and each case reads the outcome back from the emulator's state.
func TestContract(t *testing.T) {
	versions := []struct {
		name string
		new  func(t *testing.T) (sync.PagerTree, inspect)
	}{
		{pagertree.APIv3, newV3},
		{pagertree.APIv4, newV4},
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range contractCases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if c.only != "" && c.only != v.name {
						t.Skipf("%s only", c.only)
					}
					pt, acc := v.new(t)
					c.run(t, pt, acc)
				})
			}
		})
	}
}

var contractCases = []contractCase{
	{name: "ListUsers returns every user with admins flagged", run: listUsersEverything},
	{name: "ListTeams returns every team", run: listTeamsEverything},
	{name: "CreateUser with phone", run: createUserWithPhone},
	{name: "CreateUser without phone", run: createUserWithoutPhone},
	{name: "UpdateUser name only", run: updateUserNameOnly},
	{name: "UpdateUser phone only changes it in place", run: updateUserPhoneOnly},
	{name: "UpdateUser phone added when none", run: updateUserPhoneAdded},
	{name: "UpdateUser leaves other emails and phones", only: pagertree.APIv4, run: updateUserLeavesOthers},
	{name: "CreateUser of a taken email makes no second user", run: createUserTaken},
	{name: "DeleteUser removes user and its memberships", run: deleteUser},
	{name: "DeleteUser of a team's only admin is refused", only: pagertree.APIv4, run: deleteOnlyAdmin},
	{name: "CreateTeam with members and admins", run: createTeam},
	{name: "CreateTeam without admins", run: createTeamWithoutAdmins},
	{name: "UpdateTeam name only renames in place", run: updateTeamNameOnly},
	{name: "UpdateTeam description only", run: updateTeamDescriptionOnly},
	{name: "UpdateTeam members replaces them", run: updateTeamMembers},
	{name: "UpdateTeam admins replaces them", only: pagertree.APIv4, run: updateTeamAdmins},
	{name: "UpdateTeam empty patch sends nothing", run: updateTeamEmpty},
	{name: "DeleteTeam removes it", run: deleteTeam},
	{name: "user with several emails", only: pagertree.APIv4, run: severalEmails},
	{name: "user created for an existing login is invited", only: pagertree.APIv4, run: invited},
	{name: "wrong credentials fail with 401 and write nothing", run: wrongCredentials},
	{name: "writes to a missing id fail with 404", run: missingIDs},
	{name: "concurrent writes", run: concurrentWrites},
	{name: "GetUser and GetTeam read one object as listed, and a missing id is ErrNotFound", run: getOne},
}

// path is the path of a route as Stats counts it ("GET /user" → "/user").
func path(route string) string {
	_, p, _ := strings.Cut(route, " ")
	return p
}

func email(i int) string { return fmt.Sprintf("user%03d@example.com", i) }

// addUsers preloads n users, user000@example.com and on, without phones.
func addUsers(t *testing.T, acc inspect, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = acc.addUser(t, seedUser{Name: fmt.Sprintf("User %03d", i), Emails: []string{email(i)}})
	}
	return ids
}

// checkAccountID checks n listed objects carry the account's id: on v4
// the emulator's account_id, which sync checks a plan against; on v3 none.
func checkAccountID(t *testing.T, acc inspect, n int, accountID func(i int) string) {
	t.Helper()
	want := acc.accountID()
	if acc.version() == pagertree.APIv4 && want == "" {
		t.Fatal("the v4 emulator has no account id")
	}
	for i := range n {
		if got := accountID(i); got != want {
			t.Fatalf("object %d listed with account %q, want %q", i, got, want)
		}
	}
}

func wantAPIError(t *testing.T, err error, status int) {
	t.Helper()
	var apiErr *pagertree.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != status {
		t.Fatalf("err = %v, want a *pagertree.APIError with status %d", err, status)
	}
}

func listUsersEverything(t *testing.T, pt sync.PagerTree, acc inspect) {
	const n = 250
	admins := 0
	for i := range n {
		u := seedUser{Name: fmt.Sprintf("User %03d", i), Emails: []string{email(i)}, Admin: i%50 == 7}
		if i%3 == 0 {
			u.Phones = []string{fmt.Sprintf("+1415555%04d", i)}
		}
		if u.Admin {
			admins++
		}
		acc.addUser(t, u)
	}
	acc.resetStats()
	got, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := acc.users()
	if len(got) != n || len(want) != n {
		t.Fatalf("listed %d users, the emulator holds %d, want %d", len(got), len(want), n)
	}
	byID := map[string]sync.AccountUser{}
	for _, u := range got {
		byID[u.ID] = u
	}
	checkAccountID(t, acc, len(got), func(i int) string { return got[i].AccountID })
	gotAdmins := 0
	for _, w := range want {
		if g, ok := byID[w.ID]; !ok || !sameUser(g, w.asSync()) {
			t.Errorf("user %s listed as %+v, the emulator holds %+v", w.ID, g, w.asSync())
		}
		if byID[w.ID].Admin {
			gotAdmins++
		}
	}
	if gotAdmins != admins {
		t.Errorf("%d users listed as admins, want %d", gotAdmins, admins)
	}
	if pages := acc.stats().Requests[acc.userRoute()]; pages < 3 {
		t.Errorf("%s requested %d times; 250 users take at least 3 pages of 100", acc.userRoute(), pages)
	}
}

func listTeamsEverything(t *testing.T, pt sync.PagerTree, acc inspect) {
	const n = 120
	users := addUsers(t, acc, 5)
	for i := range n {
		acc.addTeam(t, seedTeam{
			Name:        fmt.Sprintf("Team %03d", i),
			Description: fmt.Sprintf("notes of team %d", i),
			Members:     []string{users[i%5], users[(i+1)%5]},
			Admins:      []string{users[i%5]},
		})
	}
	acc.resetStats()
	got, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := acc.teams()
	if len(got) != n || len(want) != n {
		t.Fatalf("listed %d teams, the emulator holds %d, want %d", len(got), len(want), n)
	}
	checkAccountID(t, acc, len(got), func(i int) string { return got[i].AccountID })
	byID := map[string]sync.AccountTeam{}
	for _, tm := range got {
		byID[tm.ID] = tm
	}
	for _, w := range want {
		if g, ok := byID[w.ID]; !ok || !sameTeam(g, w.asSync()) {
			t.Errorf("team %s listed as %+v, the emulator holds %+v", w.ID, g, w.asSync())
		}
	}
	if acc.version() == pagertree.APIv4 && len(byID[want[0].ID].AdminIDs) != 1 {
		t.Errorf("v4 team listed with admins %v, want 1", byID[want[0].ID].AdminIDs)
	}
	if pages := acc.stats().Requests[acc.teamRoute()]; pages < 2 {
		t.Errorf("%s requested %d times; 120 teams take at least 2 pages of 100", acc.teamRoute(), pages)
	}
}

func createUserWithPhone(t *testing.T, pt sync.PagerTree, acc inspect) {
	got, err := pt.CreateUser(t.Context(), sync.NewUser{Email: "ann@example.com", Name: "Ann Example", Phone: "+14155550123"})
	if err != nil {
		t.Fatal(err)
	}
	want := sync.AccountUser{ID: got.ID, Email: "ann@example.com", Name: "Ann Example", Phone: "+14155550123", AccountID: acc.accountID()}
	if got.ID == "" || !sameUser(got, want) {
		t.Fatalf("CreateUser = %+v, want %+v with an id", got, want)
	}
	st := stateUserByID(t, acc, got.ID)
	if !sameUser(st.asSync(), want) || !slices.Equal(st.Phones, []string{"+14155550123"}) {
		t.Errorf("the emulator holds %+v, want %+v with one phone", st, want)
	}
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || !sameUser(listed[0], want) {
		t.Errorf("ListUsers after the create = %+v, want [%+v]", listed, want)
	}
}

func createUserWithoutPhone(t *testing.T, pt sync.PagerTree, acc inspect) {
	got, err := pt.CreateUser(t.Context(), sync.NewUser{Email: "bob@example.com", Name: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || got.Email != "bob@example.com" || got.Name != "Bob" || got.Phone != "" {
		t.Fatalf("CreateUser = %+v, want bob@example.com, Bob, no phone, with an id", got)
	}
	st := stateUserByID(t, acc, got.ID)
	if st.Email != "bob@example.com" || st.Name != "Bob" || len(st.Phones) != 0 {
		t.Errorf("the emulator holds %+v, want bob@example.com, Bob, no phone", st)
	}
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || !sameUser(listed[0], got) {
		t.Errorf("ListUsers after the create = %+v, want [%+v]", listed, got)
	}
}

// updateUserNameOnly updates a user the adapter has not listed.
func updateUserNameOnly(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{Name: "Old Name", Emails: []string{"carol@example.com"}, Phones: []string{"+14155550100"}})
	other := acc.addUser(t, seedUser{Name: "Other", Emails: []string{"other@example.com"}, Phones: []string{"+14155550199"}})
	before, otherBefore := stateUserByID(t, acc, id), stateUserByID(t, acc, other)
	name := "New Name"
	if err := pt.UpdateUser(t.Context(), id, sync.UserPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	after := stateUserByID(t, acc, id)
	want := before
	want.Name = name
	if !sameStateUser(after, want) {
		t.Errorf("after a name update the emulator holds\n %+v, want\n %+v", after, want)
	}
	if got := stateUserByID(t, acc, other); !sameStateUser(got, otherBefore) {
		t.Errorf("another user changed: %+v, was %+v", got, otherBefore)
	}
}

// updateUserPhoneOnly updates a user listed before, as the engine does.
func updateUserPhoneOnly(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{Name: "Dan", Emails: []string{"dan@example.com"}, Phones: []string{"+14155550100"}})
	if _, err := pt.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := stateUserByID(t, acc, id)
	phone := "+442071838750"
	if err := pt.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	after := stateUserByID(t, acc, id)
	want := before
	want.Phone, want.Phones = phone, []string{phone}
	// On v4 PhoneIDs stay as they were: the entry is changed in place.
	if !sameStateUser(after, want) {
		t.Errorf("after a phone update the emulator holds\n %+v, want\n %+v", after, want)
	}
	if acc.version() == pagertree.APIv4 && len(after.PhoneIDs) != 1 {
		t.Errorf("phone entries %v, want the one there was", after.PhoneIDs)
	}
}

func updateUserPhoneAdded(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{Name: "Eve", Emails: []string{"eve@example.com"}})
	if _, err := pt.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := stateUserByID(t, acc, id)
	phone := "+14155550142"
	if err := pt.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	after := stateUserByID(t, acc, id)
	if after.Phone != phone || !slices.Equal(after.Phones, []string{phone}) || after.Name != before.Name ||
		after.Email != before.Email || !slices.Equal(after.EmailIDs, before.EmailIDs) {
		t.Errorf("after adding a phone the emulator holds\n %+v, was\n %+v", after, before)
	}
	if acc.version() == pagertree.APIv4 && (len(after.PhoneIDs) != 1 || after.PhoneIDs[0] == "") {
		t.Errorf("phone entries %v, want one new entry", after.PhoneIDs)
	}
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Phone != phone {
		t.Errorf("ListUsers = %+v, want the phone %s", listed, phone)
	}
}

func updateUserLeavesOthers(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{
		Name:    "Fay",
		Emails:  []string{"fay.other@example.com", "fay@example.com"},
		Primary: 1,
		Phones:  []string{"+14155550100", "+14155550101"},
	})
	if _, err := pt.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := stateUserByID(t, acc, id)
	name, phone := "Fay Renamed", "+14155550177"
	if err := pt.UpdateUser(t.Context(), id, sync.UserPatch{Name: &name, Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	after := stateUserByID(t, acc, id)
	want := before
	want.Name, want.Phone, want.Phones = name, phone, []string{phone, "+14155550101"}
	if !sameStateUser(after, want) {
		t.Errorf("the emulator holds\n %+v, want\n %+v (only the name and the primary phone changed)", after, want)
	}
}

// createUserTaken creates a user whose email the account has (created
// meanwhile by someone else): PagerTree never holds two. v3 answers 409
// and the client returns the user who has it; v4 refuses with 422.
func createUserTaken(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{Name: "Nan", Emails: []string{"nan@example.com"}})
	before := acc.users()
	got, err := pt.CreateUser(t.Context(), sync.NewUser{Email: "NAN@example.com", Name: "Nan Again"})
	if acc.version() == pagertree.APIv3 {
		if err != nil || got.ID != id {
			t.Errorf("CreateUser = %+v, %v; want the user %s who has the email", got, err, id)
		}
	} else {
		wantAPIError(t, err, http.StatusUnprocessableEntity)
	}
	if after := acc.users(); !slices.EqualFunc(after, before, sameStateUser) {
		t.Errorf("the emulator holds %+v, want %+v unchanged", after, before)
	}
}

func deleteUser(t *testing.T, pt sync.PagerTree, acc inspect) {
	users := addUsers(t, acc, 3)
	a, b, c := users[0], users[1], users[2]
	team := acc.addTeam(t, seedTeam{Name: "DB", Members: []string{a, b, c}, Admins: []string{a, b}})
	other := acc.addTeam(t, seedTeam{Name: "Web", Members: []string{a, c}, Admins: []string{c}})
	otherBefore := stateTeamByID(t, acc, other)
	if err := pt.DeleteUser(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	for _, u := range acc.users() {
		if u.ID == b {
			t.Fatalf("the emulator still holds user %s", b)
		}
	}
	st := stateTeamByID(t, acc, team)
	if !slices.Equal(st.MemberIDs, []string{a, c}) {
		t.Errorf("team members %v after deleting %s, want %v", st.MemberIDs, b, []string{a, c})
	}
	if acc.version() == pagertree.APIv4 && !slices.Equal(st.AdminIDs, []string{a}) {
		t.Errorf("team admins %v after deleting %s, want %v", st.AdminIDs, b, []string{a})
	}
	if got := stateTeamByID(t, acc, other); !sameStateTeam(got, otherBefore) {
		t.Errorf("a team without the user changed: %+v, was %+v", got, otherBefore)
	}
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || slices.ContainsFunc(listed, func(u sync.AccountUser) bool { return u.ID == b }) {
		t.Errorf("ListUsers after the delete = %+v, want %s and %s only", listed, a, c)
	}
	teams, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range teams {
		if slices.Contains(tm.MemberIDs, b) || slices.Contains(tm.AdminIDs, b) {
			t.Errorf("ListTeams shows team %s still with %s: %+v", tm.Name, b, tm)
		}
	}
}

// deleteOnlyAdmin deletes the only admin of a v4 team: PagerTree refuses
// (a team keeps an admin), the adapter says so, and nothing changes.
func deleteOnlyAdmin(t *testing.T, pt sync.PagerTree, acc inspect) {
	users, _ := seedOneTeam(t, acc)
	usersBefore, teamsBefore := acc.users(), acc.teams()
	wantAPIError(t, pt.DeleteUser(t.Context(), users[0]), http.StatusUnprocessableEntity)
	if got := acc.users(); !slices.EqualFunc(got, usersBefore, sameStateUser) {
		t.Errorf("users changed: %+v, were %+v", got, usersBefore)
	}
	if got := acc.teams(); !slices.EqualFunc(got, teamsBefore, sameStateTeam) {
		t.Errorf("teams changed: %+v, were %+v", got, teamsBefore)
	}
}

func createTeam(t *testing.T, pt sync.PagerTree, acc inspect) {
	users := addUsers(t, acc, 3)
	in := sync.NewTeam{Name: "Database", Description: "database on-call [ptsync:db]", MemberIDs: users, AdminIDs: users[:1]}
	got, err := pt.CreateTeam(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	want := sync.AccountTeam{ID: got.ID, Name: in.Name, Description: in.Description, MemberIDs: users, AccountID: acc.accountID()}
	if acc.version() == pagertree.APIv4 {
		want.AdminIDs = users[:1]
	}
	if got.ID == "" || !sameTeam(got, want) {
		t.Fatalf("CreateTeam = %+v, want %+v with an id", got, want)
	}
	st := stateTeamByID(t, acc, got.ID)
	if !sameTeam(st.asSync(), want) {
		t.Errorf("the emulator holds %+v, want %+v", st.asSync(), want)
	}
	if st.ScheduleID == "" {
		t.Errorf("the team has no schedule_id: %+v", st)
	}
	body := lastWrite(t, acc, http.MethodPost, path(acc.teamRoute()))
	if acc.version() == pagertree.APIv4 {
		if st.EscalationPolicyID == "" {
			t.Errorf("the v4 team has no escalation_policy_id: %+v", st)
		}
		if _, ok := body["description"]; ok {
			t.Errorf("v4 create sent a description; the field is notes: %v", keys(body))
		}
	} else {
		for k := range body {
			if strings.Contains(k, "admin") {
				t.Errorf("v3 create sent %q; v3 teams have no admins", k)
			}
		}
	}
	teams, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(teams) != 1 || !sameTeam(teams[0], want) {
		t.Errorf("ListTeams after the create = %+v, want [%+v]", teams, want)
	}
}

func createTeamWithoutAdmins(t *testing.T, pt sync.PagerTree, acc inspect) {
	users := addUsers(t, acc, 2)
	acc.resetStats()
	got, err := pt.CreateTeam(t.Context(), sync.NewTeam{Name: "No admins", MemberIDs: users})
	if acc.version() == pagertree.APIv3 {
		// v3 teams have no admins: the create needs none.
		if err != nil {
			t.Fatal(err)
		}
		st := stateTeamByID(t, acc, got.ID)
		if !sameTeam(st.asSync(), got) || !slices.Equal(st.MemberIDs, users) {
			t.Errorf("the emulator holds %+v, CreateTeam answered %+v", st.asSync(), got)
		}
		return
	}
	// v4 teams need an admin: PagerTree refuses, and the adapter says so.
	wantAPIError(t, err, http.StatusUnprocessableEntity)
	if !strings.Contains(err.Error(), "422") {
		t.Errorf("error %q does not mention 422", err)
	}
	if teams := acc.teams(); len(teams) != 0 {
		t.Errorf("the emulator holds teams %+v after a refused create", teams)
	}
	if w := acc.stats().Writes; w != 0 {
		t.Errorf("%d writes, want none", w)
	}
}

// seedOneTeam preloads three users and a team of the first two, the first
// its admin.
func seedOneTeam(t *testing.T, acc inspect) (users []string, team string) {
	t.Helper()
	users = addUsers(t, acc, 3)
	team = acc.addTeam(t, seedTeam{Name: "Payments", Description: "payments [ptsync:pay]", Members: users[:2], Admins: users[:1]})
	return users, team
}

// checkTeamWrite checks the team after an update is want, nothing else
// changed, and the PUT sent exactly the keys of fields.
func checkTeamWrite(t *testing.T, acc inspect, want stateTeam, fields ...string) {
	t.Helper()
	if got := stateTeamByID(t, acc, want.ID); !sameStateTeam(got, want) {
		t.Errorf("the emulator holds\n %+v, want\n %+v", got, want)
	}
	var wantKeys []string
	for _, f := range fields {
		wantKeys = append(wantKeys, acc.teamKey(f))
	}
	slices.Sort(wantKeys)
	body := lastWrite(t, acc, http.MethodPut, path(acc.teamRoute())+"/")
	if got := keys(body); !slices.Equal(got, wantKeys) {
		t.Errorf("PUT sent %v, want %v: nil fields are not sent", got, wantKeys)
	}
}

func updateTeamNameOnly(t *testing.T, pt sync.PagerTree, acc inspect) {
	_, team := seedOneTeam(t, acc)
	want := stateTeamByID(t, acc, team)
	name := "Payments (EU)"
	if err := pt.UpdateTeam(t.Context(), team, sync.TeamPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	want.Name = name // same id, schedule, escalation policy, members, admins, notes
	checkTeamWrite(t, acc, want, "name")
}

func updateTeamDescriptionOnly(t *testing.T, pt sync.PagerTree, acc inspect) {
	_, team := seedOneTeam(t, acc)
	want := stateTeamByID(t, acc, team)
	desc := "payments, adopted [ptsync:pay]"
	if err := pt.UpdateTeam(t.Context(), team, sync.TeamPatch{Description: &desc}); err != nil {
		t.Fatal(err)
	}
	want.Description = desc
	checkTeamWrite(t, acc, want, "description")
	teams, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(teams) != 1 || teams[0].Description != desc {
		t.Errorf("ListTeams = %+v, want the description %q", teams, desc)
	}
}

func updateTeamMembers(t *testing.T, pt sync.PagerTree, acc inspect) {
	users, team := seedOneTeam(t, acc)
	want := stateTeamByID(t, acc, team)
	members := []string{users[0], users[2]}
	if err := pt.UpdateTeam(t.Context(), team, sync.TeamPatch{MemberIDs: &members}); err != nil {
		t.Fatal(err)
	}
	want.MemberIDs = members // admins untouched on v4
	checkTeamWrite(t, acc, want, "members")
}

func updateTeamAdmins(t *testing.T, pt sync.PagerTree, acc inspect) {
	users, team := seedOneTeam(t, acc)
	want := stateTeamByID(t, acc, team)
	admins := []string{users[1], users[2]}
	if err := pt.UpdateTeam(t.Context(), team, sync.TeamPatch{AdminIDs: &admins}); err != nil {
		t.Fatal(err)
	}
	want.AdminIDs = admins // members untouched
	checkTeamWrite(t, acc, want, "admins")
}

func updateTeamEmpty(t *testing.T, pt sync.PagerTree, acc inspect) {
	_, team := seedOneTeam(t, acc)
	want := stateTeamByID(t, acc, team)
	if err := pt.UpdateTeam(t.Context(), team, sync.TeamPatch{}); err != nil {
		t.Fatal(err)
	}
	checkTeamWrite(t, acc, want)
}

func deleteTeam(t *testing.T, pt sync.PagerTree, acc inspect) {
	users, team := seedOneTeam(t, acc)
	keep := acc.addTeam(t, seedTeam{Name: "Keep", Members: users[1:], Admins: users[1:2]})
	keepBefore, usersBefore := stateTeamByID(t, acc, keep), acc.users()
	if err := pt.DeleteTeam(t.Context(), team); err != nil {
		t.Fatal(err)
	}
	teams := acc.teams()
	if len(teams) != 1 || !sameStateTeam(teams[0], keepBefore) {
		t.Errorf("the emulator holds teams %+v, want only %+v", teams, keepBefore)
	}
	if got := acc.users(); !slices.EqualFunc(got, usersBefore, sameStateUser) {
		t.Errorf("users changed on a team delete: %+v, were %+v", got, usersBefore)
	}
	listed, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != keep {
		t.Errorf("ListTeams after the delete = %+v, want only %s", listed, keep)
	}
}

func severalEmails(t *testing.T, pt sync.PagerTree, acc inspect) {
	id := acc.addUser(t, seedUser{Name: "Gus", Emails: []string{"gus@old.example.com", "gus@example.com"}, Primary: 1})
	single := acc.addUser(t, seedUser{Name: "Hal", Emails: []string{"hal@example.com"}})
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sync.AccountUser{
		id:     {ID: id, Email: "gus@example.com", Emails: []string{"gus@old.example.com"}, Name: "Gus", AccountID: acc.accountID()},
		single: {ID: single, Email: "hal@example.com", Name: "Hal", AccountID: acc.accountID()},
	}
	if len(listed) != len(want) {
		t.Fatalf("ListUsers = %+v, want %d users", listed, len(want))
	}
	for _, u := range listed {
		if !sameUser(u, want[u.ID]) {
			t.Errorf("listed %+v, want %+v", u, want[u.ID])
		}
		if st := stateUserByID(t, acc, u.ID); !sameUser(u, st.asSync()) {
			t.Errorf("listed %+v, the emulator holds %+v", u, st.asSync())
		}
	}
}

func invited(t *testing.T, pt sync.PagerTree, acc inspect) {
	acc.addExistingLogin("Ivy@Example.com")
	got, err := pt.CreateUser(t.Context(), sync.NewUser{Email: "ivy@example.com", Name: "Ivy"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID == "" || !got.Invited || got.Email != "ivy@example.com" {
		t.Errorf("CreateUser = %+v, want ivy@example.com invited, with an id", got)
	}
	plain, err := pt.CreateUser(t.Context(), sync.NewUser{Email: "jo@example.com", Name: "Jo"})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Invited {
		t.Errorf("CreateUser of a new person = %+v, want not invited", plain)
	}
	if st := stateUserByID(t, acc, got.ID); !st.Invited {
		t.Errorf("the emulator holds %+v, want invited", st)
	}
	listed, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range listed {
		if u.Invited != (u.ID == got.ID) {
			t.Errorf("listed %+v: invited %v, want %v", u, u.Invited, u.ID == got.ID)
		}
	}
}

func wrongCredentials(t *testing.T, _ sync.PagerTree, acc inspect) {
	users, team := seedOneTeam(t, acc)
	usersBefore, teamsBefore := acc.users(), acc.teams()
	bad := acc.wrongCredentials(t)
	acc.resetStats()
	ctx := t.Context()

	_, err := bad.ListUsers(ctx)
	wantAPIError(t, err, http.StatusUnauthorized)
	if !strings.Contains(err.Error(), "401") {
		t.Errorf("ListUsers error %q does not mention 401", err)
	}
	_, err = bad.ListTeams(ctx)
	wantAPIError(t, err, http.StatusUnauthorized)

	name := "x"
	members := users[1:]
	writes := map[string]error{}
	_, writes["CreateUser"] = bad.CreateUser(ctx, sync.NewUser{Email: "new@example.com", Name: "New"})
	writes["UpdateUser"] = bad.UpdateUser(ctx, users[0], sync.UserPatch{Name: &name})
	writes["DeleteUser"] = bad.DeleteUser(ctx, users[2])
	_, writes["CreateTeam"] = bad.CreateTeam(ctx, sync.NewTeam{Name: "New", MemberIDs: users, AdminIDs: users})
	writes["UpdateTeam"] = bad.UpdateTeam(ctx, team, sync.TeamPatch{Name: &name, MemberIDs: &members})
	writes["DeleteTeam"] = bad.DeleteTeam(ctx, team)
	for op, err := range writes {
		var apiErr *pagertree.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
			t.Errorf("%s: err = %v, want a 401 *pagertree.APIError", op, err)
		}
	}
	if w := acc.stats().Writes; w != 0 {
		t.Errorf("%d writes with wrong credentials, want none", w)
	}
	if got := acc.users(); !slices.EqualFunc(got, usersBefore, sameStateUser) {
		t.Errorf("users changed: %+v, were %+v", got, usersBefore)
	}
	if got := acc.teams(); !slices.EqualFunc(got, teamsBefore, sameStateTeam) {
		t.Errorf("teams changed: %+v, were %+v", got, teamsBefore)
	}
}

func missingIDs(t *testing.T, pt sync.PagerTree, acc inspect) {
	users, _ := seedOneTeam(t, acc)
	usersBefore, teamsBefore := acc.users(), acc.teams()
	// Ids of the version's shape that nothing has.
	noUser, noTeam := "usr_missing00", "tem_missing00"
	if acc.version() == pagertree.APIv4 {
		noUser, noTeam = "01J0000000000000000000USER", "01J0000000000000000000TEAM"
	}
	ctx, name, members := t.Context(), "x", users
	wantAPIError(t, pt.UpdateUser(ctx, noUser, sync.UserPatch{Name: &name}), http.StatusNotFound)
	wantAPIError(t, pt.DeleteUser(ctx, noUser), http.StatusNotFound)
	wantAPIError(t, pt.UpdateTeam(ctx, noTeam, sync.TeamPatch{Name: &name, MemberIDs: &members}), http.StatusNotFound)
	wantAPIError(t, pt.DeleteTeam(ctx, noTeam), http.StatusNotFound)
	if got := acc.users(); !slices.EqualFunc(got, usersBefore, sameStateUser) {
		t.Errorf("users changed: %+v, were %+v", got, usersBefore)
	}
	if got := acc.teams(); !slices.EqualFunc(got, teamsBefore, sameStateTeam) {
		t.Errorf("teams changed: %+v, were %+v", got, teamsBefore)
	}
}

// concurrentWrites makes the writes Apply makes at once, on one adapter.
func concurrentWrites(t *testing.T, pt sync.PagerTree, acc inspect) {
	const n = 16
	ids := make([]string, n)
	errs := make([]error, n)
	var wg gosync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var u sync.AccountUser
			u, errs[i] = pt.CreateUser(t.Context(), sync.NewUser{Email: email(i), Name: fmt.Sprintf("User %d", i), Phone: fmt.Sprintf("+1415555%04d", i)})
			ids[i] = u.ID
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if _, err := pt.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		wg.Go(func() {
			name, phone := fmt.Sprintf("Renamed %d", i), fmt.Sprintf("+1415556%04d", i)
			errs[i] = pt.UpdateUser(t.Context(), ids[i], sync.UserPatch{Name: &name, Phone: &phone})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		st := stateUserByID(t, acc, id)
		if st.Name != fmt.Sprintf("Renamed %d", i) || !slices.Equal(st.Phones, []string{fmt.Sprintf("+1415556%04d", i)}) {
			t.Errorf("user %d: the emulator holds %+v", i, st)
		}
	}
}

func getOne(t *testing.T, pt sync.PagerTree, acc inspect) {
	_, teamID := seedOneTeam(t, acc)
	r, ok := pt.(sync.ObjectReader)
	if !ok {
		t.Fatalf("%T is no sync.ObjectReader", pt)
	}
	users, err := pt.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	teams, err := pt.ListTeams(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, listed := range users {
		got, err := r.GetUser(t.Context(), listed.ID)
		if err != nil || !sameUser(got, listed) {
			t.Errorf("GetUser(%s) = %+v, %v; listed as %+v", listed.ID, got, err, listed)
		}
	}
	for _, listed := range teams {
		got, err := r.GetTeam(t.Context(), listed.ID)
		if err != nil || !sameTeam(got, listed) || got.AccountID != listed.AccountID {
			t.Errorf("GetTeam(%s) = %+v, %v; listed as %+v", listed.ID, got, err, listed)
		}
	}
	if len(teams) != 1 || teams[0].ID != teamID {
		t.Fatalf("teams %+v, want the seeded %s", teams, teamID)
	}
	noUser, noTeam := "usr_missing00", "tem_missing00"
	if acc.version() == pagertree.APIv4 {
		noUser, noTeam = "01J0000000000000000000USER", "01J0000000000000000000TEAM"
	}
	if _, err := r.GetUser(t.Context(), noUser); !errors.Is(err, sync.ErrNotFound) {
		t.Errorf("GetUser of a missing id: %v, want sync.ErrNotFound", err)
	}
	if _, err := r.GetTeam(t.Context(), noTeam); !errors.Is(err, sync.ErrNotFound) {
		t.Errorf("GetTeam of a missing id: %v, want sync.ErrNotFound", err)
	}
}
