package scim

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ptsync/ptsync/sources"
)

func TestUserMapping(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       sources.User
	}{
		{"primary email and phone win",
			`{"id":"1","displayName":" Ann ","emails":[{"value":"a@home","type":"home"},{"value":"a@work","type":"work"},{"value":"a@p","primary":true}],
			  "phoneNumbers":[{"value":"m","type":"mobile"},{"value":"w","type":"work"},{"value":"p","type":"home","primary":true}]}`,
			sources.User{ID: "1", Email: "a@p", Name: "Ann", Phone: "p"}},
		{"work email, work phone before mobile",
			`{"id":"2","emails":[{"value":"b@home","type":"home"},{"value":"b@work","type":"Work"}],
			  "phoneNumbers":[{"value":"m","type":"mobile"},{"value":"w","type":"work"}],"name":{"formatted":"Bea B"}}`,
			sources.User{ID: "2", Email: "b@work", Name: "Bea B", Phone: "w"}},
		{"first email; mobile phone; no fax",
			`{"id":"3","emails":[{"value":"c@x"},{"value":"c@y","type":"home"}],"phoneNumbers":[{"value":"f","type":"fax"},{"value":"m","type":"mobile"}],
			  "name":{"givenName":"Cy","familyName":"Cole"}}`,
			sources.User{ID: "3", Email: "c@x", Name: "Cy Cole", Phone: "m"}},
		{"empty values passed over; only a fax is no phone",
			`{"id":"4","emails":[{"value":" ","primary":true},{"value":"d@x","type":"other"}],"phoneNumbers":[{"value":"f","type":"fax"}]}`,
			sources.User{ID: "4", Email: "d@x"}},
		{"active false is disabled", `{"id":"5","active":false}`, sources.User{ID: "5", Disabled: true}},
		{"active as a string", `{"id":"6","active":"False","emails":[{"value":"e@x","primary":"true"},{"value":"e@w","type":"work"}]}`,
			sources.User{ID: "6", Email: "e@x", Disabled: true}},
		{"active true", `{"id":"7","active":true}`, sources.User{ID: "7"}},
		{"no active: enabled", `{"id":"8"}`, sources.User{ID: "8"}},
	} {
		var u scimUser
		if err := json.Unmarshal([]byte(tc.json), &u); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := u.user(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMemberKind(t *testing.T) {
	for _, tc := range []struct {
		m    member
		want string
	}{
		{member{Type: "User"}, kindUser},
		{member{Type: "Group", Ref: "https://x/Users/1"}, kindGroup},
		{member{Ref: "https://x/scim/v2/Groups/1"}, kindGroup},
		{member{Ref: "https://x/scim/v2/Users/1"}, kindUser},
		{member{}, kindUnknown},
		{member{Type: "ServicePrincipal"}, "serviceprincipal"},
	} {
		if got := tc.m.kind(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.m, got, tc.want)
		}
	}
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		body, code string
		messages   []string
	}{
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"bad"}`, "invalidFilter", []string{"bad", "", ""}},
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":401,"detail":"no"}`, "", []string{"no", "", ""}},
		{`{"error":"invalid_token","error_description":"expired"}`, "", []string{"", "", "expired"}},
		{`<html>`, "", nil},
	} {
		code, messages := parseError(400, []byte(tc.body))
		if code != tc.code || !reflect.DeepEqual(messages, tc.messages) {
			t.Errorf("%s: %q %q", tc.body, code, messages)
		}
	}
}
