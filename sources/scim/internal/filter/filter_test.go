package filter

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

const userJSON = `{
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "Ext-1",
  "userName": "Bjensen@example.com",
  "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
  "displayName": "Babs Jensen",
  "title": "",
  "active": true,
  "loginCount": 42,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z"},
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Tour Operations"}
}`

func resource(t *testing.T) map[string]any {
	t.Helper()
	var r map[string]any
	if err := json.Unmarshal([]byte(userJSON), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRFCExamples evaluates the filters RFC 7644 §3.4.2.2 gives as
// examples (and a few more) against one user.
func TestRFCExamples(t *testing.T) {
	r := resource(t)
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{`userName eq "bjensen@example.com"`, true}, // case-insensitive
		{`userName Eq "nobody"`, false},
		{`name.familyName co "ens"`, true},
		{`userName sw "Bj"`, true},
		{`userName ew "EXAMPLE.COM"`, true},
		{`title pr`, false}, // empty string is not present
		{`displayName pr`, true},
		{`nickName pr`, false},
		{`meta.lastModified gt "2011-05-13T04:42:34Z"`, false},
		{`meta.lastModified ge "2011-05-13T04:42:34Z"`, true},
		{`meta.lastModified lt "2011-05-14T00:00:00Z"`, true},
		{`meta.lastModified le "2011-01-01T00:00:00Z"`, false},
		{`title pr and userType eq "Employee"`, false},
		{`title pr or displayName eq "babs jensen"`, true},
		{`userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")`, false},
		{`userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")`, false},
		{`userType eq "Employee" and (emails.type eq "work")`, false},
		{`emails[type eq "work" and value co "@example.com"]`, true},
		{`emails[type eq "home" and value co "@example.com"]`, false},
		{`emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]`, true},
		{`emails co "jensen.org"`, true}, // the value sub-attribute of each item
		{`emails.type eq "home"`, true},
		{`active eq true`, true},
		{`active eq false`, false},
		{`loginCount gt 41`, true},
		{`loginCount le 41`, false},
		{`nickName eq null`, true},
		{`displayName ne null`, true},
		{`id eq "2819C223-7F76-453A-919D-413861904646"`, false}, // id is caseExact
		{`externalId eq "Ext-1"`, true},
		{`externalId eq "ext-1"`, false},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984"`, true},
		{`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department sw "Ops"`, false},
		{`a eq "x" or b eq "y" and c eq "z" or displayName pr`, true}, // and binds tighter
		{`displayName pr and (a eq "x" or b pr)`, false},
		{`NOT (displayName pr)`, false},
		{`not(nickName pr)`, true},
		{`displayName eq "Babs \"The\" Jensen"`, false},
	} {
		e, err := Parse(tc.filter)
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.filter, err)
			continue
		}
		if got := e.Match(r); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestMembers(t *testing.T) {
	var g map[string]any
	_ = json.Unmarshal([]byte(`{"id":"g1","displayName":"oncall-db","members":[{"value":"U1","type":"User"},{"value":"g2","type":"Group"}]}`), &g)
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{`members eq "U1"`, true},
		{`members eq "u1"`, false}, // members.value is caseExact
		{`members[value eq "u1"]`, false},
		{`members[type eq "group"]`, true}, // type is not
		{`displayName sw "ONCALL-"`, true},
	} {
		e, err := Parse(tc.filter)
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.filter, err)
		}
		if got := e.Match(g); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.filter, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, f := range []string{
		``,
		`displayName`,
		`displayName sw`,
		`displayName xx "a"`,
		`displayName sw "a`,
		`displayName sw oncall`,
		`(displayName pr`,
		`displayName pr)`,
		`displayName pr and`,
		`emails[type eq "work"`,
		`emails[type[value pr]]`,
		`active gt true`,
		`loginCount co 4`,
		`1abc pr`,
		`display.name.x pr`,
		`displayName eq 1.2.3`,
		`displayName pr or or displayName pr`,
	} {
		_, err := Parse(f)
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("Parse(%q) = %v, want an *Error", f, err)
		}
	}
}

func TestAttributes(t *testing.T) {
	e, err := Parse(`displayName sw "oncall-" and (externalId pr or emails[type eq "work" and value co "x"]) and not (DisplayName eq "y")`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"displayName", "externalId", "emails.type", "emails.value"}
	if got := Attributes(e); !slices.Equal(got, want) {
		t.Errorf("Attributes = %v, want %v", got, want)
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Path
	}{
		{"displayName", Path{Attr: "displayName"}},
		{"name.formatted", Path{Attr: "name", Sub: "formatted"}},
		{"members.$ref", Path{Attr: "members", Sub: "$ref"}},
		{"urn:ietf:params:scim:schemas:core:2.0:Group:displayName", Path{Attr: "displayName"}},
		{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
			Path{URN: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", Attr: "manager", Sub: "value"}},
	} {
		got, err := ParsePath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParsePath(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if tc.want.URN != "" && got.String() != tc.in {
			t.Errorf("String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`displayName sw "oncall-"`, `emails[type eq "work"] and not (a pr)`, `a eq 1 or (b ne null)`} {
		f.Add(s)
	}
	r := map[string]any{"displayName": "oncall-x", "emails": []any{map[string]any{"type": "work", "value": "x"}}}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		e.Match(r)
		Attributes(e)
	})
}
