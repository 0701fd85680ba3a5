package googletest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptsync/ptsync/sources/google/googletest"
)

var myCustomer = url.Values{"customer": {"my_customer"}}

func TestAPINeedsALiveToken(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"no token", "", "required"},
		{"unknown token", "ya29.made-up", "authError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s, tc.token, "/users", myCustomer)
			if _, reason, _, status, _ := apiError(t, r); r.status != 401 || reason != tc.reason || status != "UNAUTHENTICATED" {
				t.Fatalf("answer %s", r)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

// TestScopes: each method takes the scopes its reference page lists.
func TestScopes(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	paths := []string{"/users", "/groups", "/groups/g1/members"}
	for _, tc := range []struct {
		scopes []string
		ok     []bool // users, groups, members
	}{
		{[]string{googletest.ScopeUserReadonly}, []bool{true, false, false}},
		{[]string{googletest.ScopeGroupReadonly}, []bool{false, true, true}},
		{[]string{googletest.ScopeGroupMemberReadonly}, []bool{false, false, true}},
		{[]string{googletest.ScopeUser, googletest.ScopeGroup}, []bool{true, true, true}},
	} {
		tok := s.IssueToken(admin, tc.scopes...)
		for i, p := range paths {
			r := get(t, s, tok, p, myCustomer)
			if p == "/groups/g1/members" {
				r = get(t, s, tok, p, nil)
			}
			if tc.ok[i] != (r.status == 200) {
				t.Errorf("%v on %s: %s", tc.scopes, p, r)
			}
			if !tc.ok[i] {
				if _, reason, msg, status, _ := apiError(t, r); r.status != 403 || reason != "insufficientPermissions" ||
					msg != "Request had insufficient authentication scopes." || status != "PERMISSION_DENIED" {
					t.Errorf("%v on %s: %s", tc.scopes, p, r)
				}
			}
		}
	}
}

func TestSubjectMustBeAnAdmin(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	r := get(t, s, s.IssueToken("alice@example.com", googletest.ReadOnlyScopes...), "/groups", myCustomer)
	if _, reason, msg, _, _ := apiError(t, r); r.status != 403 || reason != "forbidden" || msg != "Not Authorized to access this resource/api" {
		t.Fatalf("a non-admin subject: %s", r)
	}
}

// bigDomain has n users and n groups, the first holding every user.
func bigDomain(n int) googletest.Domain {
	d := googletest.Domain{CustomerID: custID}
	d.Users = append(d.Users, googletest.User{ID: "1", PrimaryEmail: admin, IsAdmin: true, FullName: "Admin"})
	var members []googletest.Member
	for i := range n - 1 {
		id := fmt.Sprint(10000 + i)
		d.Users = append(d.Users, googletest.User{ID: id, PrimaryEmail: "u" + id + "@example.com", FullName: "U " + id})
		members = append(members, googletest.Member{ID: id})
	}
	for i := range n {
		g := googletest.Group{ID: fmt.Sprint("g", i), Email: fmt.Sprintf("oncall-%d@example.com", i), Name: fmt.Sprint("G ", i)}
		if i == 0 {
			g.Members = members
		}
		d.Groups = append(d.Groups, g)
	}
	return d
}

func TestPaging(t *testing.T) {
	s := start(t, bigDomain(1201), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		path, key  string
		query      url.Values
		maxResults string
		total      int
		pages      int
	}{
		{"/users", "users", myCustomer, "", 1201, 13}, // default 100
		{"/users", "users", myCustomer, "500", 1201, 3},
		{"/groups", "groups", myCustomer, "", 1201, 7}, // default 200
		{"/groups", "groups", myCustomer, "200", 1201, 7},
		{"/groups/g0/members", "members", nil, "", 1200, 6},
		{"/groups/oncall-0@example.com/members", "members", url.Values{}, "200", 1200, 6},
		{"/groups/g0/members", "members", url.Values{"includeDerivedMembership": {"true"}}, "1", 1200, 1200},
	} {
		t.Run(fmt.Sprintf("%s maxResults=%s", tc.path, tc.maxResults), func(t *testing.T) {
			q := url.Values{}
			for k, v := range tc.query {
				q[k] = v
			}
			if tc.maxResults != "" {
				q.Set("maxResults", tc.maxResults)
			}
			got, pages := listAll(t, s, tok, tc.path, tc.key, q)
			if len(got) != tc.total || pages != tc.pages {
				t.Fatalf("%d items over %d pages, want %d over %d", len(got), pages, tc.total, tc.pages)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("%s listed twice", id)
				}
				seen[id] = true
			}
		})
	}
}

func TestMaxResultsRange(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		path, value string
		ok          bool
	}{
		{"/users", "500", true}, {"/users", "501", false}, {"/users", "0", false}, {"/users", "many", false},
		{"/groups", "200", true}, {"/groups", "201", false},
		{"/groups/g1/members", "200", true}, {"/groups/g1/members", "201", false},
	} {
		q := url.Values{"maxResults": {tc.value}}
		if tc.path != "/groups/g1/members" {
			q.Set("customer", "my_customer")
		}
		r := get(t, s, tok, tc.path, q)
		if tc.ok != (r.status == 200) {
			t.Errorf("%s maxResults=%s: %s", tc.path, tc.value, r)
			continue
		}
		if !tc.ok {
			if _, reason, msg, _, _ := apiError(t, r); r.status != 400 || reason != "invalid" || !strings.Contains(msg, "Values must be within the range") {
				t.Errorf("%s maxResults=%s: %s", tc.path, tc.value, r)
			}
		}
	}
}

// TestPageTokenIsBoundToTheRequest: a page token goes with the parameters
// it was issued for; made up or moved, it is refused.
func TestPageTokenIsBoundToTheRequest(t *testing.T) {
	s := start(t, bigDomain(30), googletest.Options{})
	tok := adminToken(s)
	first := get(t, s, tok, "/users", url.Values{"customer": {"my_customer"}, "maxResults": {"10"}}).json(t)
	next := first["nextPageToken"].(string)
	for _, tc := range []struct {
		name  string
		path  string
		query url.Values
		ok    bool
	}{
		{"as given", "/users", url.Values{"customer": {"my_customer"}, "pageToken": {next}}, true},
		{"another page size", "/users", url.Values{"customer": {"my_customer"}, "pageToken": {next}, "maxResults": {"3"}}, true},
		{"another customer value", "/users", url.Values{"customer": {custID}, "pageToken": {next}}, false},
		{"another list", "/groups", url.Values{"customer": {"my_customer"}, "pageToken": {next}}, false},
		{"edited", "/users", url.Values{"customer": {"my_customer"}, "pageToken": {"MjA" + next[3:]}}, false},
		{"made up", "/users", url.Values{"customer": {"my_customer"}, "pageToken": {"20"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s, tok, tc.path, tc.query)
			if tc.ok != (r.status == 200) {
				t.Fatalf("answer %s", r)
			}
			if !tc.ok {
				if _, reason, msg, _, _ := apiError(t, r); reason != "invalid" || msg != "Invalid page token" {
					t.Fatalf("answer %s", r)
				}
			}
		})
	}
}

func TestCustomerAndDomain(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		path  string
		query url.Values
		ids   []string // nil: 400 badRequest
	}{
		{"/users", nil, nil},
		{"/users", url.Values{"customer": {"C999"}}, nil},
		{"/users", url.Values{"customer": {custID}}, []string{"1001", "1002", "1003", "1004", "1005", "1006"}},
		{"/users", url.Values{"domain": {"example.org"}}, []string{"1006"}},
		{"/groups", nil, nil},
		{"/groups", url.Values{"customer": {"my_customer"}}, []string{"g1", "g2", "g3", "g4"}},
	} {
		r := get(t, s, tok, tc.path, tc.query)
		if tc.ids == nil {
			if _, reason, msg, _, _ := apiError(t, r); r.status != 400 || reason != "badRequest" || msg != "Bad Request" {
				t.Errorf("%s %v: %s", tc.path, tc.query, r)
			}
			continue
		}
		if r.status != 200 || !slices.Equal(ids(r.json(t), strings.TrimPrefix(tc.path, "/")), tc.ids) {
			t.Errorf("%s %v: %s", tc.path, tc.query, r)
		}
	}
}

func TestParameters(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		path, param, value string
		status             int
		msgPrefix          string
	}{
		{"/users", "projection", "basic", 200, ""},
		{"/users", "projection", "full", 200, ""},
		{"/users", "projection", "custom", 400, "googletest: projection=custom"},
		{"/users", "projection", "tiny", 400, "Invalid value at 'projection'"},
		{"/users", "viewType", "admin_view", 200, ""},
		{"/users", "showDeleted", "false", 200, ""},
		{"/users", "showDeleted", "true", 400, "googletest: showDeleted=true"},
		{"/users", "query", "isSuspended=false", 400, "googletest: the query parameter"},
		{"/users", "orderBy", "email", 400, "googletest: the orderBy parameter"},
		{"/users", "prettyPrint", "false", 200, ""},
		{"/users", "pagesize", "10", 400, `Invalid JSON payload received. Unknown name "pagesize"`},
		{"/groups", "userKey", "alice@example.com", 400, "googletest: the userKey parameter"},
		{"/groups/g1/members", "includeDerivedMembership", "maybe", 400, "Invalid value at 'includeDerivedMembership'"},
		{"/groups/g1/members", "roles", "OWNER,BOSS", 400, "Invalid Input: roles"},
		{"/groups/g1/members", "customer", "my_customer", 400, `Invalid JSON payload received. Unknown name "customer"`},
	} {
		q := url.Values{tc.param: {tc.value}}
		if !strings.Contains(tc.path, "members") {
			q.Set("customer", "my_customer")
		}
		r := get(t, s, tok, tc.path, q)
		if r.status != tc.status {
			t.Errorf("%s %s=%s: %s", tc.path, tc.param, tc.value, r)
			continue
		}
		if tc.status != 200 {
			if _, _, msg, _, _ := apiError(t, r); !strings.HasPrefix(msg, tc.msgPrefix) {
				t.Errorf("%s %s=%s: %s", tc.path, tc.param, tc.value, r)
			}
		}
	}
}

func TestRoutes(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		method, path string
		status       int
		reason       string
	}{
		{"GET", "/users/alice@example.com", 400, "invalid"}, // users.get: not modelled
		{"GET", "/groups/g1", 400, "invalid"},               // groups.get: not modelled
		{"GET", "/groups/nope@example.com/members", 404, "notFound"},
		{"GET", "/customers/my_customer", 404, "notFound"},
		{"POST", "/users", 405, "invalid"},
	} {
		r := do(t, tc.method, s.BaseURL()+tc.path, tok, nil, "")
		if _, reason, _, _, _ := apiError(t, r); r.status != tc.status || reason != tc.reason {
			t.Errorf("%s %s: %s", tc.method, tc.path, r)
		}
	}
	want := map[string]int{"GET /users/alice@example.com": 1, "GET /groups/g1": 1, "GET /groups/{groupKey}/members": 1, "GET /customers/my_customer": 1, "POST /users": 1}
	if got := s.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
	if r := do(t, "GET", s.URL()+"/elsewhere", tok, nil, ""); r.status != 404 {
		t.Errorf("outside the API: %s", r)
	}
}

func TestUserResource(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	body := get(t, s, adminToken(s), "/users", myCustomer).json(t)
	users := body["users"].([]any)
	alice, dave := users[1].(map[string]any), users[4].(map[string]any)
	if body["kind"] != "admin#directory#users" || alice["kind"] != "admin#directory#user" || alice["primaryEmail"] != "alice@example.com" ||
		alice["customerId"] != custID || alice["suspended"] != false || alice["archived"] != false {
		t.Errorf("alice: %v", alice)
	}
	if name := alice["name"].(map[string]any); name["fullName"] != "Alice Anders" || name["givenName"] != "Alice" {
		t.Errorf("alice's name: %v", name)
	}
	wantPhones := []any{
		map[string]any{"value": "+1 415 555 0100", "type": "mobile", "primary": true},
		map[string]any{"value": "555", "type": "custom", "customType": "pager"},
	}
	if !reflect.DeepEqual(alice["phones"], wantPhones) {
		t.Errorf("alice's phones: %v", alice["phones"])
	}
	if dave["suspended"] != true || dave["suspensionReason"] != "ADMIN" {
		t.Errorf("dave: %v", dave)
	}
	if carol := users[3].(map[string]any); carol["archived"] != true {
		t.Errorf("carol: %v", carol)
	}
	if bob := users[2].(map[string]any); bob["name"].(map[string]any)["fullName"] != "Robert Brown" || bob["phones"] != nil {
		t.Errorf("bob: %v", bob)
	}
}

func TestFields(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		path, fields string
		want         string // the first item, as fmt prints it; "" for a 400
	}{
		{"/users", "users(id,primaryEmail)", "map[id:1001 primaryEmail:admin@example.com]"},
		{"/users", "users(id,name/fullName)", "map[id:1001 name:map[fullName:Dir Admin]]"},
		{"/users", "users/id,users/suspended", "map[id:1001 suspended:false]"},
		{"/users", "nextPageToken,users(id,name(givenName,familyName),phones)", "map[id:1001 name:map[familyName:Admin givenName:Dir]]"},
		{"/users", "users(id,name),users/name/fullName", "map[id:1001 name:map[displayName:Dir Admin familyName:Admin fullName:Dir Admin givenName:Dir]]"},
		{"/users", "users(id,phones(value))", ""}, // phones is typed "any"
		{"/users", "users(id,nickname)", ""},
		{"/users", "users(id", ""},
		{"/users", "people", ""},
		{"/groups", "groups(id,email,directMembersCount)", "map[directMembersCount:4 email:oncall-db@example.com id:g1]"},
		{"/groups/g1/members", "members(id,role,type)", "map[id:1002 role:OWNER type:USER]"},
	} {
		q := url.Values{"fields": {tc.fields}}
		if !strings.Contains(tc.path, "members") {
			q.Set("customer", "my_customer")
		}
		r := get(t, s, tok, tc.path, q)
		if tc.want == "" {
			if _, reason, msg, _, _ := apiError(t, r); r.status != 400 || reason != "invalidParameter" || !strings.HasPrefix(msg, "Invalid field selection") {
				t.Errorf("fields=%s: %s", tc.fields, r)
			}
			continue
		}
		body := r.json(t)
		key := tc.path[strings.LastIndex(tc.path, "/")+1:]
		list, _ := body[key].([]any)
		if r.status != 200 || len(list) == 0 || fmt.Sprint(list[0]) != tc.want {
			t.Errorf("fields=%s: %s", tc.fields, r)
		}
		if _, ok := body["kind"]; ok {
			t.Errorf("fields=%s: kind kept", tc.fields)
		}
	}
}

func TestGroupQuery(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	for _, tc := range []struct {
		query string
		ids   []string // nil: 400
	}{
		{"email:oncall-*", []string{"g1", "g3"}},
		{"email:ONCALL-*", []string{"g1", "g3"}},
		{"email=oncall-web@example.com", []string{"g3"}},
		{"name='DB on-call'", []string{"g1"}},
		{`name='Contractor\'s group'`, []string{"g2"}},
		{"name:web*", []string{"g3"}},
		{"name:DB* email:oncall-*", []string{"g1"}},
		{"name:nothing*", []string{}},
		{"memberKey=bob@example.com", []string{"g1", "g2", "g3"}},
		{"memberKey=1002", []string{"g1"}},
		{"memberKey=ali@example.com", []string{"g1"}},
		{"memberKey=contractors@example.com", []string{"g1"}},
		{"memberKey=bob@example.com email:oncall-*", nil},
		{"email:oncall-", nil},
		{"email:*", nil},
		{"owner=alice", nil},
		{"email oncall", nil},
		{"name='unclosed", nil},
	} {
		r := get(t, s, tok, "/groups", url.Values{"customer": {"my_customer"}, "query": {tc.query}})
		if tc.ids == nil {
			if _, reason, _, _, _ := apiError(t, r); r.status != 400 || reason != "invalid" {
				t.Errorf("query %q: %s", tc.query, r)
			}
			continue
		}
		got := ids(r.json(t), "groups")
		if r.status != 200 || !slices.Equal(got, tc.ids) && len(got)+len(tc.ids) > 0 {
			t.Errorf("query %q: %v (%s)", tc.query, got, r)
		}
	}
}

// member is one members.list entry, as the test reads it.
type member struct{ ID, Email, Role, Type, Status string }

func members(t *testing.T, s *googletest.Server, tok, groupKey string, q url.Values) []member {
	t.Helper()
	r := get(t, s, tok, "/groups/"+groupKey+"/members", q)
	if r.status != 200 {
		t.Fatalf("members of %s: %s", groupKey, r)
	}
	var out []member
	list, _ := r.json(t)["members"].([]any)
	for _, item := range list {
		m := item.(map[string]any)
		str := func(k string) string { v, _ := m[k].(string); return v }
		if m["kind"] != "admin#directory#member" || str("etag") == "" {
			t.Errorf("member %v", m)
		}
		out = append(out, member{str("id"), str("email"), str("role"), str("type"), str("status")})
	}
	return out
}

func TestMembers(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	vendor := members(t, s, tok, "g1", nil)[3]
	if vendor.Email != "vendor@partner.example" || vendor.Type != "USER" || vendor.Role != "MANAGER" || vendor.ID == "" {
		t.Fatalf("the external member: %+v", vendor)
	}
	for _, tc := range []struct {
		name, group string
		query       url.Values
		want        []member
	}{
		{"direct", "g1", nil, []member{
			{"1002", "alice@example.com", "OWNER", "USER", "ACTIVE"},
			{"1003", "bob@example.com", "MEMBER", "USER", "ACTIVE"},
			{"g2", "contractors@example.com", "MEMBER", "GROUP", "ACTIVE"},
			vendor,
		}},
		{"by email alias", "DBA@example.com", url.Values{"roles": {"OWNER,MANAGER"}}, []member{
			{"1002", "alice@example.com", "OWNER", "USER", "ACTIVE"},
			vendor,
		}},
		{"derived: own members first, nested ones once, through the cycle", "g1", url.Values{"includeDerivedMembership": {"true"}}, []member{
			{"1002", "alice@example.com", "OWNER", "USER", "ACTIVE"},
			{"1003", "bob@example.com", "MEMBER", "USER", "ACTIVE"},
			{"g2", "contractors@example.com", "MEMBER", "GROUP", "ACTIVE"},
			vendor,
			{"1004", "carol@example.com", "MANAGER", "USER", "ACTIVE"},
			{"1005", "dave@example.com", "MEMBER", "USER", "SUSPENDED"},
		}},
		{"derived with roles", "g2", url.Values{"includeDerivedMembership": {"true"}, "roles": {"owner"}}, []member{
			{"1003", "bob@example.com", "OWNER", "USER", "ACTIVE"},
			{"1002", "alice@example.com", "OWNER", "USER", "ACTIVE"},
		}},
		{"the whole domain", "g4", nil, []member{{custID, "", "MEMBER", "CUSTOMER", "ACTIVE"}}},
		{"empty", "g3", url.Values{"roles": {"OWNER"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := members(t, s, tok, tc.group, tc.query); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	for _, tc := range []struct {
		kind          googletest.Limit
		status        int
		reason, gstat string
		messagePrefix string
	}{
		{googletest.UserRateLimitExceeded, 403, "userRateLimitExceeded", "PERMISSION_DENIED", "Quota exceeded for quota metric 'Queries'"},
		{googletest.QuotaExceeded, 403, "quotaExceeded", "PERMISSION_DENIED", "Quota exceeded for quota metric 'Concurrent requests'"},
		{googletest.RateLimitExceeded, 429, "rateLimitExceeded", "RESOURCE_EXHAUSTED", "Rate Limit Exceeded"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			s := start(t, domain(), googletest.Options{})
			tok := adminToken(s)
			s.Throttle(2, tc.kind)
			if r := get(t, s, "ya29.bad", "/users", myCustomer); r.status != 401 {
				t.Fatalf("a bad token is refused first: %s", r)
			}
			for range 2 {
				r := get(t, s, tok, "/users", myCustomer)
				code, reason, msg, status, dom := apiError(t, r)
				if code != tc.status || reason != tc.reason || status != tc.gstat || dom != "usageLimits" || !strings.HasPrefix(msg, tc.messagePrefix) {
					t.Fatalf("throttled answer %s", r)
				}
				if ra := r.header.Get("Retry-After"); ra != "" {
					t.Fatalf("Retry-After %q: Google sends none", ra)
				}
			}
			if r := get(t, s, tok, "/users", myCustomer); r.status != 200 {
				t.Fatalf("after the throttle: %s", r)
			}
		})
	}
}

func TestErrorBody(t *testing.T) {
	want := `{"error":{"code":403,"errors":[{"domain":"usageLimits","message":"slow down","reason":"userRateLimitExceeded"}],"message":"slow down","status":"PERMISSION_DENIED"}}`
	if got := googletest.ErrorBody(403, "userRateLimitExceeded", "slow down"); got != want {
		t.Errorf("ErrorBody = %s\nwant %s", got, want)
	}
}

func TestFault(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	var seq []int
	var mu sync.Mutex
	s.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		seq = append(seq, n)
		return 503, http.Header{"X-Fault": {"yes"}}, googletest.ErrorBody(503, "backendError", "Backend Error"), n == 2
	})
	if r := get(t, s, tok, "/users", myCustomer); r.status != 200 {
		t.Fatalf("first: %s", r)
	}
	if r := get(t, s, tok, "/users", myCustomer); r.status != 503 || r.header.Get("X-Fault") != "yes" {
		t.Fatalf("second: %s", r)
	}
	s.SetFault(nil)
	if r := get(t, s, tok, "/users", myCustomer); r.status != 200 {
		t.Fatalf("third: %s", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seq, []int{1, 2}) || s.TotalRequests() != 3 {
		t.Errorf("fault saw %v, %d requests", seq, s.TotalRequests())
	}
}

func TestSetDomain(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	tok := adminToken(s)
	d := domain()
	d.CustomerID = ""
	d.Users, d.Groups = d.Users[:2], nil
	s.SetDomain(d)
	if got := ids(get(t, s, tok, "/users", url.Values{"customer": {custID}}).json(t), "users"); !slices.Equal(got, []string{"1001", "1002"}) {
		t.Errorf("users after SetDomain: %v", got)
	}
	if s.CustomerID() != custID {
		t.Errorf("CustomerID %q", s.CustomerID())
	}
}

func TestInconsistentDomainPanics(t *testing.T) {
	for name, edit := range map[string]func(*googletest.Domain){
		"user without id":        func(d *googletest.Domain) { d.Users[1].ID = "" },
		"duplicate user id":      func(d *googletest.Domain) { d.Users[1].ID = "1001" },
		"duplicate email":        func(d *googletest.Domain) { d.Groups[0].Email = "alice@example.com" },
		"alias taken":            func(d *googletest.Domain) { d.Users[2].Aliases = []string{"dba@example.com"} },
		"unknown member":         func(d *googletest.Domain) { d.Groups[0].Members[0].ID = "9999" },
		"domain member by email": func(d *googletest.Domain) { d.Groups[0].Members[0] = googletest.Member{Email: "bob@example.com"} },
		"bad role":               func(d *googletest.Domain) { d.Groups[0].Members[0].Role = "ADMIN" },
		"group id of a user":     func(d *googletest.Domain) { d.Groups[0].ID = "1001" },
	} {
		t.Run(name, func(t *testing.T) {
			d := domain()
			edit(&d)
			defer func() {
				if recover() == nil {
					t.Fatal("NewServer did not panic")
				}
			}()
			googletest.NewServer(d, googletest.Options{}).Close()
		})
	}
}

// TestDomainIsCopied: changing the Domain after NewServer changes nothing.
func TestDomainIsCopied(t *testing.T) {
	d := domain()
	s := start(t, d, googletest.Options{})
	d.Users[1].Phones[0].Value = "changed"
	d.Groups[0].Members[0].Role = googletest.RoleMember
	body := get(t, s, adminToken(s), "/users", myCustomer).json(t)
	if phone := body["users"].([]any)[1].(map[string]any)["phones"].([]any)[0].(map[string]any)["value"]; phone != "+1 415 555 0100" {
		t.Errorf("phone %v", phone)
	}
	if m := members(t, s, adminToken(s), "g1", nil)[0]; m.Role != "OWNER" {
		t.Errorf("role %v", m.Role)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := start(t, bigDomain(300), googletest.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			tok := adminToken(s)
			if i%2 == 0 {
				s.SetDomain(bigDomain(300)) // the same directory, swapped in
			}
			q := url.Values{"maxResults": {"50"}}
			n := 0
			for {
				resp, err := http.Get(s.BaseURL() + "/groups/g0/members?" + q.Encode())
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 401 { // no token
					t.Errorf("status %d", resp.StatusCode)
				}
				r := get(t, s, tok, "/groups/g0/members", q)
				if r.status != 200 {
					t.Errorf("page: %s", r)
					return
				}
				body := r.json(t)
				n += len(ids(body, "members"))
				next, _ := body["nextPageToken"].(string)
				if next == "" {
					break
				}
				q.Set("pageToken", next)
			}
			if n != 299 {
				t.Errorf("%d members", n)
			}
		})
	}
	wg.Wait()
	if got := s.Requests()["GET /groups/{groupKey}/members"]; got != 8*6*2 {
		t.Errorf("%d requests counted, want %d", got, 8*6*2)
	}
}
