package pagertreetest

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

func TestV4CreateAccountUser(t *testing.T) {
	s := newV4Server(t)
	clock := newFakeClock(s)
	body := `{
		"roles": {"admin": true, "owner": true},
		"notification_rule_id": "ignored",
		"user_attributes": {
			"name": "Ann Lee",
			"password": "dropped",
			"emails_attributes": [{"email": "Ann.Lee@Example.com"}, {"email": "ann@home.example"}],
			"phones_attributes": [{"phone": "+14155550100"}, {"phone": "+33612345678", "primary": "true"}]
		}
	}`
	r := expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", body, http.StatusCreated)
	got := decodeAccountUser(t, r)

	stamp := clock.now().Format(timestampLayout)
	for _, id := range []string{got.ID, got.User.ID, got.User.Emails[0].ID, got.User.Emails[1].ID, got.User.Phones[0].ID, got.User.Phones[1].ID} {
		if !isULID(id) || ulidMillis(id) != clock.now().UnixMilli() {
			t.Errorf("id %q: want a ULID of the clock's time", id)
		}
	}
	if !isPrefixID(got.PrefixID, "acu_") || !isPrefixID(got.User.PrefixID, "usr_") || !isPrefixID(got.User.Phones[0].PrefixID, "phn_") {
		t.Errorf("prefix ids %q %q %q: want acu_, usr_ and phn_ and 8 characters", got.PrefixID, got.User.PrefixID, got.User.Phones[0].PrefixID)
	}
	want := pagertree.AccountUser{
		Common: pagertree.Common{ID: got.ID, PrefixID: got.PrefixID, AccountID: s.AccountID(), TinyID: 1, CreatedAt: stamp, UpdatedAt: stamp},
		Roles:  pagertree.AccountRoles{Admin: true},
		User: pagertree.Person{
			ID: got.User.ID, PrefixID: got.User.PrefixID, Name: "Ann Lee",
			Emails: []pagertree.Email{
				{ID: got.User.Emails[0].ID, Email: "Ann.Lee@Example.com", Primary: true},
				{ID: got.User.Emails[1].ID, Email: "ann@home.example"},
			},
			Phones: []pagertree.Phone{
				{ID: got.User.Phones[0].ID, PrefixID: got.User.Phones[0].PrefixID, Phone: "+14155550100"},
				{ID: got.User.Phones[1].ID, PrefixID: got.User.Phones[1].PrefixID, Phone: "+33612345678", Primary: true},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("created %+v,\nwant %+v", got, want)
	}
	if !isULID(s.AccountID()) {
		t.Errorf("account id %q: want a ULID", s.AccountID())
	}
	for _, key := range []string{`"prefix_id":`, `"account_id":`, `"tiny_id":1`, `"created_at":"` + stamp + `"`, `"updated_at":`, `"emails":[`} {
		if !strings.Contains(string(r.body), key) {
			t.Errorf("body %s lacks %s", r.body, key)
		}
	}
	if stored := s.AccountUsers(); len(stored) != 1 || !reflect.DeepEqual(stored[0], want) {
		t.Errorf("AccountUsers() = %+v, want [%+v]", stored, want)
	}
	if fetched := decodeAccountUser(t, expect(t, s, bearer, http.MethodGet, "/api/v4/account_users/"+got.ID, "", http.StatusOK)); !reflect.DeepEqual(fetched, want) {
		t.Errorf("GET answered %+v, want %+v", fetched, want)
	}

	// tiny_id counts per model; a minimal body makes no phones, and no roles.
	r = expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Bo","emails_attributes":[{"email":"bo@example.com"}]}}`, http.StatusCreated)
	bo := decodeAccountUser(t, r)
	if bo.TinyID != 2 || len(bo.User.Phones) != 0 || bo.Roles != (pagertree.AccountRoles{}) || !bool(bo.User.Emails[0].Primary) {
		t.Errorf("second account user %+v: want tiny_id 2, no phones, no roles, its email primary", bo)
	}
	if !strings.Contains(string(r.body), `"phones":[]`) || !strings.Contains(string(r.body), `"roles":{}`) {
		t.Errorf("body %s: want phones [] and roles {}", r.body)
	}
}

func TestV4CreateAccountUserPrimary(t *testing.T) {
	tests := []struct {
		name, emails string
		want         []bool
	}{
		{"first by default", `[{"email":"a@example.com"},{"email":"b@example.com"}]`, []bool{true, false}},
		{"the one marked", `[{"email":"a@example.com"},{"email":"b@example.com","primary":true}]`, []bool{false, true}},
		{"the last of several marked", `[{"email":"a@example.com","primary":true},{"email":"b@example.com","primary":"true"}]`, []bool{false, true}},
		{"first when all say false", `[{"email":"a@example.com","primary":false},{"email":"b@example.com","primary":"false"}]`, []bool{true, false}},
		{"a destroyed new entry is skipped", `[{"email":"x@example.com","_destroy":true},{"email":"a@example.com"}]`, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newV4Server(t)
			got := decodeAccountUser(t, expect(t, s, bearer, http.MethodPost, "/api/v4/account_users",
				`{"user_attributes":{"name":"A","emails_attributes":`+tt.emails+`}}`, http.StatusCreated))
			var primaries []bool
			for _, e := range got.User.Emails {
				primaries = append(primaries, bool(e.Primary))
			}
			if !reflect.DeepEqual(primaries, tt.want) {
				t.Errorf("primary flags %v, want %v", primaries, tt.want)
			}
		})
	}
}

func TestV4CreateAccountUserRefused(t *testing.T) {
	s := newV4Server(t)
	mustAddAccountUser(t, s, person("Ann", "ann@example.com", "ann.lee@example.com"))
	user := func(attrs string) string { return `{"user_attributes":{` + attrs + `}}` }
	const bo = `"name":"Bo","emails_attributes":[{"email":"bo@example.com"}]`
	tests := []struct {
		name, body  string
		wantStatus  int
		wantMessage string
	}{
		{"no name", user(`"emails_attributes":[{"email":"bo@example.com"}]`), 422, "user name can't be blank"},
		{"blank name", user(`"name":"  ","emails_attributes":[{"email":"bo@example.com"}]`), 422, "user name can't be blank"},
		{"no user_attributes", `{"roles":{"admin":true}}`, 422, "user name can't be blank"},
		{"empty body", ``, 422, "user name can't be blank"},
		{"no emails", user(`"name":"Bo"`), 422, "user must have at least one email"},
		{"empty emails", user(`"name":"Bo","emails_attributes":[]`), 422, "user must have at least one email"},
		{"entry without an email", user(`"name":"Bo","emails_attributes":[{"primary":true}]`), 422, "email can't be blank"},
		{"not an email", user(`"name":"Bo","emails_attributes":[{"email":"bo"}]`), 422, "email 'bo' is invalid"},
		{"email with a space", user(`"name":"Bo","emails_attributes":[{"email":"bo @example.com"}]`), 422, "email 'bo @example.com' is invalid"},
		{"taken email", user(`"name":"Bo","emails_attributes":[{"email":"ANN@example.com"}]`), 422, "email 'ANN@example.com' has already been taken"},
		{"another's second email", user(`"name":"Bo","emails_attributes":[{"email":"bo@example.com"},{"email":"Ann.Lee@example.com"}]`), 422, "email 'Ann.Lee@example.com' has already been taken"},
		{"same email twice", user(`"name":"Bo","emails_attributes":[{"email":"bo@example.com"},{"email":"BO@example.com"}]`), 422, "email 'BO@example.com' is given twice"},
		{"phone without +", user(bo + `,"phones_attributes":[{"phone":"14155550100"}]`), 422, "phone '14155550100' is not in E.164 format (+ and 8 to 15 digits)"},
		{"phone too short", user(bo + `,"phones_attributes":[{"phone":"+1415555"}]`), 422, "phone '+1415555' is not in E.164 format (+ and 8 to 15 digits)"},
		{"phone too long", user(bo + `,"phones_attributes":[{"phone":"+1234567890123456"}]`), 422, "phone '+1234567890123456' is not in E.164 format (+ and 8 to 15 digits)"},
		{"phone with spaces", user(bo + `,"phones_attributes":[{"phone":"+1 415 555 0100"}]`), 422, "phone '+1 415 555 0100' is not in E.164 format (+ and 8 to 15 digits)"},
		{"phone starting with 0", user(bo + `,"phones_attributes":[{"phone":"+0415555010"}]`), 422, "phone '+0415555010' is not in E.164 format (+ and 8 to 15 digits)"},
		{"entry naming an id", user(`"name":"Bo","emails_attributes":[{"id":"01X","email":"bo@example.com"}]`), 404, "Couldn't find Email with ID=01X for User with ID="},
		{"name of the wrong type", user(`"name":7,"emails_attributes":[{"email":"bo@example.com"}]`), 422, "'user_attributes.name' is invalid: number given"},
		{"emails of the wrong type", user(`"name":"Bo","emails_attributes":"bo@example.com"`), 422, "'user_attributes.emails_attributes' is invalid: string given"},
		{"primary not a boolean", user(`"name":"Bo","emails_attributes":[{"email":"bo@example.com","primary":"yes"}]`), 422, `primary: want a boolean, got "yes"`},
		{"an array", `[]`, 422, "the body must be a JSON object, not array"},
		{"malformed JSON", `{"user_attributes":`, 400, "malformed JSON body: unexpected EOF"},
		{"data after the object", `{} {}`, 400, "malformed JSON body: data after the JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", tt.body, tt.wantStatus)
			if got := errorMessageV4(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if n := len(s.AccountUsers()); n != 1 {
		t.Errorf("%d account users after refused creates, want 1", n)
	}
	// The phone rules accept the bounds.
	expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", user(bo+`,"phones_attributes":[{"phone":"+12345678"},{"phone":"+123456789012345"}]`), http.StatusCreated)
}

func TestV4InvitedCreate(t *testing.T) {
	s := newV4Server(t)
	s.AddExistingLogin("Kim@Elsewhere.example")
	r := expect(t, s, bearer, http.MethodPost, "/api/v4/account_users",
		`{"user_attributes":{"name":"Kim","emails_attributes":[{"email":"kim@work.example"},{"email":"kim@elsewhere.example"}]}}`, http.StatusCreated)
	kim := decodeAccountUser(t, r)
	if !kim.Invited || !strings.Contains(string(r.body), `"invited":true`) {
		t.Errorf("an existing login's create answered %s: want invited", r.body)
	}
	r = expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Lu","emails_attributes":[{"email":"lu@work.example"}]}}`, http.StatusCreated)
	lu := decodeAccountUser(t, r)
	if lu.Invited || strings.Contains(string(r.body), "invited") {
		t.Errorf("a new person's create answered %s: want no invitation", r.body)
	}
	// Invited account users are listed, counted and can be on teams.
	var page pagertree.List[pagertree.AccountUser]
	decodeStrict(t, expect(t, s, bearer, http.MethodGet, "/api/v4/account_users", "", http.StatusOK), &page)
	if page.TotalCount != 2 || page.Data[0].ID != kim.ID || !page.Data[0].Invited {
		t.Errorf("listed %+v: want Kim, invited, among 2", page)
	}
	expect(t, s, bearer, http.MethodPost, "/api/v4/teams", `{"name":"DB","member_account_user_ids":["`+kim.ID+`"],"admin_account_user_ids":["`+kim.ID+`"]}`, http.StatusCreated)
	// Only the API create invites; its email is as taken as any.
	expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Kim","emails_attributes":[{"email":"KIM@elsewhere.example"}]}}`, http.StatusUnprocessableEntity)
	if au := mustAddAccountUser(t, s, person("Other", "other@elsewhere.example")); au.Invited {
		t.Error("AddAccountUser invented an invitation")
	}
}

// annV4 is the account user TestV4UpdateAccountUser starts from: two emails
// and one phone.
func annV4() pagertree.AccountUser {
	au := person("Ann", "ann@example.com", "ann.lee@example.com")
	au.User.Phones = []pagertree.Phone{{Phone: "+14155550100"}}
	return au
}

func TestV4UpdateAccountUser(t *testing.T) {
	type au = pagertree.AccountUser
	newEmail := func(email string, primary bool) pagertree.Email {
		return pagertree.Email{Email: email, Primary: pagertree.FlexBool(primary)}
	}
	tests := []struct {
		name string
		body string // %u is the user id, %e0 %e1 %p0 the ids of emails and phone
		// want changes the account user as stored before; entries added
		// have no id, and get the one answered.
		want func(a au) au
	}{
		{"name", `{"user_attributes":{"id":"%u","name":"Ann Lee"}}`, func(a au) au { a.User.Name = "Ann Lee"; return a }},
		{"roles without user_attributes", `{"roles":{"admin":true,"billing":true}}`, func(a au) au { a.Roles = pagertree.AccountRoles{Admin: true, Billing: true}; return a }},
		{"an email by id", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e1","email":"lee@example.com"}]}}`,
			func(a au) au { a.User.Emails[1].Email = "lee@example.com"; return a }},
		{"own email in another case", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e0","email":"ANN@example.com"}]}}`,
			func(a au) au { a.User.Emails[0].Email = "ANN@example.com"; return a }},
		{"an email added", `{"user_attributes":{"id":"%u","emails_attributes":[{"email":"ann@home.example"}]}}`,
			func(a au) au { a.User.Emails = append(a.User.Emails, newEmail("ann@home.example", false)); return a }},
		{"an email added as primary", `{"user_attributes":{"id":"%u","emails_attributes":[{"email":"ann@home.example","primary":true}]}}`,
			func(a au) au {
				a.User.Emails[0].Primary = false
				a.User.Emails = append(a.User.Emails, newEmail("ann@home.example", true))
				return a
			}},
		{"primary moved by id", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e1","primary":true}]}}`,
			func(a au) au { a.User.Emails[0].Primary, a.User.Emails[1].Primary = false, true; return a }},
		{"an email destroyed", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e1","_destroy":true}]}}`,
			func(a au) au { a.User.Emails = a.User.Emails[:1]; return a }},
		{"the primary email destroyed", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e0","_destroy":"true"}]}}`,
			func(a au) au { a.User.Emails = a.User.Emails[1:]; a.User.Emails[0].Primary = true; return a }},
		{"every email replaced", `{"user_attributes":{"id":"%u","emails_attributes":[{"id":"%e0","_destroy":true},{"id":"%e1","_destroy":true},{"email":"ann@example.com"}]}}`,
			func(a au) au { a.User.Emails = []pagertree.Email{newEmail("ann@example.com", true)}; return a }},
		{"_destroy without id does nothing", `{"user_attributes":{"id":"%u","emails_attributes":[{"email":"x@example.com","_destroy":true}]}}`,
			func(a au) au { return a }},
		{"a phone by id", `{"user_attributes":{"id":"%u","phones_attributes":[{"id":"%p0","phone":"+33612345678"}]}}`,
			func(a au) au { a.User.Phones[0].Phone = "+33612345678"; return a }},
		{"a phone added", `{"user_attributes":{"id":"%u","phones_attributes":[{"phone":"+33612345678"}]}}`,
			func(a au) au {
				a.User.Phones = append(a.User.Phones, pagertree.Phone{Phone: "+33612345678"})
				return a
			}},
		{"the only phone destroyed", `{"user_attributes":{"id":"%u","phones_attributes":[{"id":"%p0","_destroy":true}]}}`,
			func(a au) au { a.User.Phones = []pagertree.Phone{}; return a }},
		{"unknown fields dropped", `{"meta":{"x":1},"user_attributes":{"id":"%u","time_zone":"UTC","emails_attributes":[{"id":"%e0","verified":true}]}}`,
			func(a au) au { return a }},
		{"empty object", `{}`, func(a au) au { return a }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newV4Server(t)
			clock := newFakeClock(s)
			before := mustAddAccountUser(t, s, annV4())
			mustAddAccountUser(t, s, person("Bo", "bo@example.com"))
			clock.advance(time.Minute)
			body := strings.NewReplacer("%u", before.User.ID, "%e0", before.User.Emails[0].ID, "%e1", before.User.Emails[1].ID, "%p0", before.User.Phones[0].ID).Replace(tt.body)
			got := decodeAccountUser(t, expect(t, s, bearer, http.MethodPut, "/api/v4/account_users/"+before.ID, body, http.StatusOK))
			want := tt.want(copyAccountUser(&before))
			want.UpdatedAt = clock.now().Format(timestampLayout)
			for i := range want.User.Emails {
				if want.User.Emails[i].ID == "" && i < len(got.User.Emails) && isULID(got.User.Emails[i].ID) {
					want.User.Emails[i].ID = got.User.Emails[i].ID
				}
			}
			for i := range want.User.Phones {
				if want.User.Phones[i].ID == "" && i < len(got.User.Phones) && isULID(got.User.Phones[i].ID) && isPrefixID(got.User.Phones[i].PrefixID, "phn_") {
					want.User.Phones[i].ID, want.User.Phones[i].PrefixID = got.User.Phones[i].ID, got.User.Phones[i].PrefixID
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("answered %+v,\nwant %+v", got, want)
			}
			if stored := s.AccountUsers()[0]; !reflect.DeepEqual(stored, want) {
				t.Errorf("stored %+v,\nwant %+v", stored, want)
			}
		})
	}
}

// TestV4UpdateFreesEmails checks an email given up is free, and one taken
// on is not.
func TestV4UpdateFreesEmails(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, annV4())
	expect(t, s, bearer, http.MethodPut, "/api/v4/account_users/"+ann.ID,
		`{"user_attributes":{"id":"`+ann.User.ID+`","emails_attributes":[{"id":"`+ann.User.Emails[1].ID+`","email":"lee@example.com"}]}}`, http.StatusOK)
	expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Other","emails_attributes":[{"email":"ann.lee@example.com"}]}}`, http.StatusCreated)
	expect(t, s, bearer, http.MethodPost, "/api/v4/account_users", `{"user_attributes":{"name":"Other","emails_attributes":[{"email":"Lee@example.com"}]}}`, http.StatusUnprocessableEntity)
}

func TestV4UpdateAccountUserRefused(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, annV4())
	bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com"))
	user := func(attrs string) string { return `{"user_attributes":{"id":"` + ann.User.ID + `",` + attrs + `}}` }
	tests := []struct {
		name, id, body string
		wantStatus     int
		wantMessage    string
	}{
		{"user_attributes without id", ann.ID, `{"user_attributes":{"name":"X"}}`, 422,
			"user_attributes id '' is not the id of this account user's user ('" + ann.User.ID + "')"},
		{"another's user id", ann.ID, `{"user_attributes":{"id":"` + bo.User.ID + `","name":"X"}}`, 422,
			"user_attributes id '" + bo.User.ID + "' is not the id of this account user's user ('" + ann.User.ID + "')"},
		{"unknown email id", ann.ID, user(`"emails_attributes":[{"id":"nope","email":"x@example.com"}]`), 404,
			"Couldn't find Email with ID=nope for User with ID=" + ann.User.ID},
		{"another's email id", ann.ID, user(`"emails_attributes":[{"id":"` + bo.User.Emails[0].ID + `","_destroy":true}]`), 404,
			"Couldn't find Email with ID=" + bo.User.Emails[0].ID + " for User with ID=" + ann.User.ID},
		{"unknown phone id", ann.ID, user(`"phones_attributes":[{"id":"nope","phone":"+33612345678"}]`), 404,
			"Couldn't find Phone with ID=nope for User with ID=" + ann.User.ID},
		{"an email destroyed twice", ann.ID, user(`"emails_attributes":[{"id":"` + ann.User.Emails[1].ID + `","_destroy":true},{"id":"` + ann.User.Emails[1].ID + `","_destroy":true}]`), 404,
			"Couldn't find Email with ID=" + ann.User.Emails[1].ID + " for User with ID=" + ann.User.ID},
		{"every email destroyed", ann.ID, user(`"emails_attributes":[{"id":"` + ann.User.Emails[0].ID + `","_destroy":true},{"id":"` + ann.User.Emails[1].ID + `","_destroy":true}]`), 422,
			"user must have at least one email"},
		{"blank name", ann.ID, user(`"name":""`), 422, "user name can't be blank"},
		{"another's email", ann.ID, user(`"emails_attributes":[{"id":"` + ann.User.Emails[1].ID + `","email":"Bo@Example.com"}]`), 422,
			"email 'Bo@Example.com' has already been taken"},
		{"own email twice", ann.ID, user(`"emails_attributes":[{"email":"ANN@example.com"}]`), 422, "email 'ANN@example.com' is given twice"},
		{"an email emptied", ann.ID, user(`"emails_attributes":[{"id":"` + ann.User.Emails[1].ID + `","email":""}]`), 422, "email can't be blank"},
		{"not an email", ann.ID, user(`"emails_attributes":[{"email":"ann"}]`), 422, "email 'ann' is invalid"},
		{"not E.164", ann.ID, user(`"phones_attributes":[{"id":"` + ann.User.Phones[0].ID + `","phone":"(415) 555-0100"}]`), 422,
			"phone '(415) 555-0100' is not in E.164 format (+ and 8 to 15 digits)"},
		{"roles of the wrong type", ann.ID, `{"roles":["admin"]}`, 422, "'roles' is invalid: array given"},
		{"malformed JSON", ann.ID, `{"roles":}`, 400, "malformed JSON body: invalid character '}' looking for beginning of value"},
		{"unknown account user", "nope", `{"roles":{}}`, 404, "account user 'nope' not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, bearer, http.MethodPut, "/api/v4/account_users/"+tt.id, tt.body, tt.wantStatus)
			if got := errorMessageV4(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
		})
	}
	if got := s.AccountUsers(); !reflect.DeepEqual(got, []pagertree.AccountUser{ann, bo}) {
		t.Errorf("refused updates changed account users: %+v", got)
	}
	for path, want := range map[string]string{"/api/v4/account_users/nope": "account user 'nope' not found", "/api/v4/teams/nope": "team 'nope' not found"} {
		if got := errorMessageV4(t, expect(t, s, bearer, http.MethodGet, path, "", http.StatusNotFound)); got != want {
			t.Errorf("GET %s: message %q, want %q", path, got, want)
		}
	}
}

func TestV4DeleteAccountUser(t *testing.T) {
	s := newV4Server(t)
	clock := newFakeClock(s)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com", "bo@home.example"))
	cy := mustAddAccountUser(t, s, person("Cy", "cy@example.com"))
	db := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "DB", MemberAccountUserIDs: []string{ann.ID, bo.ID}, AdminAccountUserIDs: []string{bo.ID, ann.ID}})
	web := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "Web", MemberAccountUserIDs: []string{bo.ID, cy.ID}, AdminAccountUserIDs: []string{cy.ID}})
	ops := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "Ops", MemberAccountUserIDs: []string{cy.ID}, AdminAccountUserIDs: []string{cy.ID}})
	clock.advance(time.Minute)

	r := expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+bo.ID, "", http.StatusNoContent)
	if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
		t.Errorf("204 with body %q and Content-Type %q, want neither", r.body, r.header.Get("Content-Type"))
	}
	expect(t, s, bearer, http.MethodGet, "/api/v4/account_users/"+bo.ID, "", http.StatusNotFound)
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+bo.ID, "", http.StatusNotFound)

	stamp := clock.now().Format(timestampLayout)
	db.MemberAccountUserIDs, db.AdminAccountUserIDs, db.UpdatedAt = []string{ann.ID}, []string{ann.ID}, stamp
	web.MemberAccountUserIDs, web.UpdatedAt = []string{cy.ID}, stamp
	if got := s.TeamsV4(); !reflect.DeepEqual(got, []pagertree.TeamV4{db, web, ops}) {
		t.Errorf("teams after the delete %+v,\nwant %+v", got, []pagertree.TeamV4{db, web, ops})
	}
	if got := s.AccountUsers(); !reflect.DeepEqual(got, []pagertree.AccountUser{ann, cy}) {
		t.Errorf("AccountUsers() = %+v, want Ann and Cy", got)
	}
	// Every email of the deleted person is free again.
	expect(t, s, bearer, http.MethodPost, "/api/v4/account_users",
		`{"user_attributes":{"name":"Bo","emails_attributes":[{"email":"BO@example.com"},{"email":"bo@home.example"}]}}`, http.StatusCreated)
}

func TestV4DeleteAccountUserRefused(t *testing.T) {
	s := newV4Server(t)
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	bo := mustAddAccountUser(t, s, person("Bo", "bo@example.com"))
	cy := mustAddAccountUser(t, s, person("Cy", "cy@example.com"))
	mustAddTeamV4(t, s, pagertree.TeamV4{Name: "DB", MemberAccountUserIDs: []string{ann.ID, bo.ID, cy.ID}, AdminAccountUserIDs: []string{ann.ID, bo.ID}})
	web := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "Web", MemberAccountUserIDs: []string{bo.ID, cy.ID}, AdminAccountUserIDs: []string{ann.ID}})
	ops := mustAddTeamV4(t, s, pagertree.TeamV4{Name: "Ops", MemberAccountUserIDs: []string{cy.ID}, AdminAccountUserIDs: []string{bo.ID, cy.ID}})
	users, teams := s.AccountUsers(), s.TeamsV4()
	tests := []struct {
		id, wantMessage string
	}{
		{ann.ID, "account user '" + ann.ID + "' is the only admin of team 'Web' (" + web.ID + "): give the team another admin first"},
		{cy.ID, "account user '" + cy.ID + "' is the only member of team 'Ops' (" + ops.ID + "): give the team another member first"},
	}
	for _, tt := range tests {
		r := expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+tt.id, "", http.StatusUnprocessableEntity)
		if got := errorMessageV4(t, r); got != tt.wantMessage {
			t.Errorf("message %q, want %q", got, tt.wantMessage)
		}
	}
	if !reflect.DeepEqual(s.AccountUsers(), users) || !reflect.DeepEqual(s.TeamsV4(), teams) {
		t.Error("a refused delete changed something")
	}
	// Bo is nowhere alone: the delete goes through.
	expect(t, s, bearer, http.MethodDelete, "/api/v4/account_users/"+bo.ID, "", http.StatusNoContent)
}
