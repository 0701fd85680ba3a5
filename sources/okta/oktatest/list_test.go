package oktatest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

// walk follows next links from first and returns each page's IDs.
func walk(t *testing.T, first string) [][]string {
	t.Helper()
	var pages [][]string
	for u := first; u != ""; {
		r := get(t, u, ssws())
		self, next := links(t, r)
		if self != u {
			t.Fatalf("self %q, want %q", self, u)
		}
		pages = append(pages, ids(t, r))
		u = next
	}
	return pages
}

func sizes(pages [][]string) []int {
	var out []int
	for _, p := range pages {
		out = append(out, len(p))
	}
	return out
}

func TestGroupsPaging(t *testing.T) {
	s, _ := newServer(t, bigOrg(0, 25, nil), nil)
	first := s.URL() + "/api/v1/groups?limit=10"
	r := get(t, first, ssws())
	lines := r.header.Values("Link")
	next := regexp.MustCompile(`^<` + regexp.QuoteMeta(s.URL()) + `/api/v1/groups\?after=([A-Za-z0-9_%-]+)&limit=10>; rel="next"$`)
	if len(lines) != 2 || lines[0] != `<`+first+`>; rel="self"` || !next.MatchString(lines[1]) {
		t.Errorf("Link lines %q", lines)
	}

	pages := walk(t, first)
	if got := sizes(pages); !slices.Equal(got, []int{10, 10, 5}) {
		t.Errorf("page sizes %v", got)
	}
	if got := slices.Concat(pages...); !slices.Equal(got, idRange(groupID, 0, 25)) {
		t.Errorf("groups %v", got)
	}
	if n := s.Requests()["GET /api/v1/groups"]; n != 4 {
		t.Errorf("requests %d", n)
	}
}

// The next link keeps the request's other parameters.
func TestGroupsPagingKeepsSearch(t *testing.T) {
	s, _ := newServer(t, bigOrg(0, 25, nil), nil)
	search := `profile.name sw "Group 1"` // Group 1, Group 10 ... Group 19
	first := s.URL() + "/api/v1/groups?search=" + url.QueryEscape(search) + "&limit=4"
	_, next := links(t, get(t, first, ssws()))
	u, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("search") != search || q.Get("limit") != "4" || !strings.HasPrefix(u.RawQuery, "after=") {
		t.Errorf("next %q", next)
	}
	pages := walk(t, first)
	if got := sizes(pages); !slices.Equal(got, []int{4, 4, 3}) {
		t.Errorf("page sizes %v", got)
	}
	if got := slices.Concat(pages...); !slices.Equal(got, append([]string{groupID(1)}, idRange(groupID, 10, 20)...)) {
		t.Errorf("groups %v", got)
	}
}

func TestGroupsDefaultLimit(t *testing.T) {
	s, _ := newServer(t, bigOrg(0, 25, nil), nil)
	r := get(t, s.URL()+"/api/v1/groups", ssws())
	if _, next := links(t, r); next != "" || len(ids(t, r)) != 25 {
		t.Errorf("one page of 25 expected; next %q", next)
	}
}

// Okta caps limit at each list's maximum instead of refusing it.
func TestUsersLimits(t *testing.T) {
	org := bigOrg(450, 1, nil)
	for i := range 10 {
		org.Users[i*7].Status = "DEPROVISIONED"
	}
	s, _ := newServer(t, org, nil)
	for _, first := range []string{"/api/v1/users", "/api/v1/users?limit=1000"} {
		r := get(t, s.URL()+first, ssws())
		if _, next := links(t, r); len(ids(t, r)) != 200 || !strings.HasSuffix(next, "&limit=200") {
			t.Errorf("%s: %d users, next %q", first, len(ids(t, r)), next)
		}
	}
	pages := walk(t, s.URL()+"/api/v1/users")
	if got := sizes(pages); !slices.Equal(got, []int{200, 200, 40}) {
		t.Errorf("page sizes %v", got)
	}
	for _, id := range slices.Concat(pages...) {
		if id == userID(7) {
			t.Errorf("DEPROVISIONED user %s listed", id)
		}
	}
}

func TestGroupUsersLimits(t *testing.T) {
	s, _ := newServer(t, bigOrg(1001, 1, func(int) []string { return idRange(userID, 0, 1001) }), nil)
	base := s.URL() + "/api/v1/groups/" + groupID(0) + "/users"
	r := get(t, base+"?limit=5000", ssws())
	if _, next := links(t, r); len(ids(t, r)) != 1000 || !strings.HasSuffix(next, "&limit=1000") {
		t.Errorf("limit=5000: %d users, next %q", len(ids(t, r)), next)
	}
	pages := walk(t, base)
	if got := sizes(pages); !slices.Equal(got, []int{1000, 1}) {
		t.Errorf("page sizes %v", got)
	}
	if got := slices.Concat(pages...); !slices.Equal(got, idRange(userID, 0, 1001)) {
		t.Error("members out of order or missing")
	}
}

func TestGroupUsers(t *testing.T) {
	org := oktatest.Org{
		Users: []oktatest.User{
			{ID: "00u3", Profile: oktatest.Profile{Login: "c@example.com", Email: "c@example.com", FirstName: "C", LastName: "Three"}},
			{ID: "00u1", Status: "SUSPENDED", Profile: oktatest.Profile{Login: "a@example.com"}},
			{ID: "00u2", Status: "STAGED", Profile: oktatest.Profile{Login: "b@example.com"}},
			{ID: "00u4", Status: "DEPROVISIONED", Profile: oktatest.Profile{Login: "d@example.com"}},
			{ID: "00u5", Profile: oktatest.Profile{Login: "e@example.com"}},
		},
		Groups: []oktatest.Group{
			{ID: "00gA", Name: "A", Members: []string{"00u5", "00u4", "00u3", "00u2", "00u1"}},
			{ID: "00gEmpty", Name: "Empty"},
		},
	}
	s, _ := newServer(t, org, nil)
	pages := walk(t, s.URL()+"/api/v1/groups/00gA/users?limit=2")
	if want := [][]string{{"00u1", "00u2"}, {"00u3", "00u4"}, {"00u5"}}; !slices.EqualFunc(pages, want, slices.Equal) {
		t.Errorf("pages %v", pages)
	}
	if n := s.Requests()["GET /api/v1/groups/{id}/users"]; n != 3 {
		t.Errorf("requests %d", n)
	}

	r := get(t, s.URL()+"/api/v1/groups/00gEmpty/users", ssws())
	if string(r.body) != "[]" {
		t.Errorf("empty group: %s", r.body)
	}
	if _, next := links(t, r); next != "" {
		t.Errorf("empty group has next %q", next)
	}

	e := wantError(t, get(t, s.URL()+"/api/v1/groups/00gNOPE/users", ssws()), http.StatusNotFound, "E0000007")
	if e.ErrorSummary != "Not found: Resource not found: 00gNOPE (UserGroup)" {
		t.Errorf("summary %q", e.ErrorSummary)
	}
}

func TestUserObject(t *testing.T) {
	org := oktatest.Org{Users: []oktatest.User{
		{ID: "00u1", Profile: oktatest.Profile{Login: "ann@example.com", Email: "ann@example.org", FirstName: "Ann", LastName: "Lee",
			DisplayName: "Ann L.", PrimaryPhone: "+1 555 0100"}},
		{ID: "00u2", Status: "STAGED", Profile: oktatest.Profile{Login: "bo@example.com", MobilePhone: "+1 555 0199"}},
	}}
	s, _ := newServer(t, org, nil)
	r := get(t, s.URL()+"/api/v1/users", ssws())
	var got []map[string]any
	if err := json.Unmarshal(r.body, &got); err != nil || len(got) != 2 {
		t.Fatalf("%s: %v", r.body, err)
	}
	stamp := "2024-01-02T03:04:05.000Z"
	want := map[string]any{
		"id": "00u1", "status": "ACTIVE", "created": stamp, "activated": stamp, "statusChanged": stamp,
		"lastLogin": stamp, "lastUpdated": stamp, "passwordChanged": stamp,
		"type": map[string]any{"id": "otyFAKE0000000000000"},
		"profile": map[string]any{"login": "ann@example.com", "email": "ann@example.org", "firstName": "Ann", "lastName": "Lee",
			"displayName": "Ann L.", "primaryPhone": "+1 555 0100", "mobilePhone": nil},
		"credentials": map[string]any{"password": map[string]any{}, "provider": map[string]any{"type": "OKTA", "name": "OKTA"}},
		"_links":      map[string]any{"self": map[string]any{"href": s.URL() + "/api/v1/users/00u1"}},
	}
	if !jsonEqual(got[0], want) {
		t.Errorf("active user\n got %v\nwant %v", got[0], want)
	}
	staged := got[1]
	for _, k := range []string{"activated", "statusChanged", "lastLogin", "passwordChanged"} {
		if v, ok := staged[k]; !ok || v != nil {
			t.Errorf("STAGED user's %s = %v, want null", k, v)
		}
	}
	if p := staged["profile"].(map[string]any); p["mobilePhone"] != "+1 555 0199" || p["displayName"] != nil {
		t.Errorf("STAGED user's profile %v", p)
	}
	if _, ok := staged["credentials"].(map[string]any)["password"]; ok {
		t.Error("STAGED user has a password")
	}
}

func TestGroupObject(t *testing.T) {
	org := oktatest.Org{Groups: []oktatest.Group{
		{ID: "00g1", Name: "Engineering", Description: "Builds"},
		{ID: "00g2", Name: "AD people", Type: "APP_GROUP"},
	}}
	s, _ := newServer(t, org, nil)
	var got []map[string]any
	if err := json.Unmarshal(get(t, s.URL()+"/api/v1/groups", ssws()).body, &got); err != nil || len(got) != 2 {
		t.Fatal(err)
	}
	stamp := "2024-01-02T03:04:05.000Z"
	want := map[string]any{
		"id": "00g1", "created": stamp, "lastUpdated": stamp, "lastMembershipUpdated": stamp,
		"objectClass": []any{"okta:user_group"}, "type": "OKTA_GROUP",
		"profile": map[string]any{"name": "Engineering", "description": "Builds"},
		"_links": map[string]any{
			"logo": []any{
				map[string]any{"name": "medium", "href": s.URL() + "/img/logos/groups/okta-medium.png", "type": "image/png"},
				map[string]any{"name": "large", "href": s.URL() + "/img/logos/groups/okta-large.png", "type": "image/png"},
			},
			"users": map[string]any{"href": s.URL() + "/api/v1/groups/00g1/users"},
			"apps":  map[string]any{"href": s.URL() + "/api/v1/groups/00g1/apps"},
		},
	}
	if !jsonEqual(got[0], want) {
		t.Errorf("group\n got %v\nwant %v", got[0], want)
	}
	app := got[1]
	if app["type"] != "APP_GROUP" || app["profile"].(map[string]any)["description"] != nil ||
		!jsonEqual(app["objectClass"], []any{"okta:windows_security_principal"}) {
		t.Errorf("app group %v", app)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestCursors(t *testing.T) {
	s, _ := newServer(t, bigOrg(5, 5, func(int) []string { return idRange(userID, 0, 5) }), nil)
	_, groupsNext := links(t, get(t, s.URL()+"/api/v1/groups?limit=2", ssws()))
	_, membersNext := links(t, get(t, s.URL()+"/api/v1/groups/"+groupID(0)+"/users?limit=2", ssws()))
	c := after(t, groupsNext)

	// A cursor is good for its own list only, and only as handed out.
	for _, u := range []string{
		"/api/v1/groups?limit=2&after=" + url.QueryEscape(c[:len(c)-1]),
		"/api/v1/groups?limit=2&after=" + url.QueryEscape(c+"A"),
		"/api/v1/groups?after=" + groupID(1),
		"/api/v1/users?limit=2&after=" + url.QueryEscape(c),
		"/api/v1/groups/" + groupID(1) + "/users?after=" + url.QueryEscape(after(t, membersNext)),
	} {
		e := wantError(t, get(t, s.URL()+u, ssws()), http.StatusBadRequest, "E0000001")
		if e.ErrorSummary != "Api validation failed: after" {
			t.Errorf("%s: %q", u, e.ErrorSummary)
		}
	}
	// A cursor can be used again: it names a place, not a session.
	for range 2 {
		if got := ids(t, get(t, groupsNext, ssws())); !slices.Equal(got, idRange(groupID, 2, 4)) {
			t.Errorf("page after cursor %v", got)
		}
	}
}

func TestBadLimit(t *testing.T) {
	s, _ := newServer(t, smallOrg, nil)
	for _, l := range []string{"0", "-1", "ten", ""} {
		for _, path := range []string{"/api/v1/groups", "/api/v1/users", "/api/v1/groups/" + groupID(0) + "/users", "/api/v1/groups?q=G"} {
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			e := wantError(t, get(t, s.URL()+path+sep+"limit="+l, ssws()), http.StatusBadRequest, "E0000001")
			if e.ErrorSummary != "Api validation failed: limit" {
				t.Errorf("%s limit=%s: %q", path, l, e.ErrorSummary)
			}
		}
	}
}

func TestUnsupportedParameters(t *testing.T) {
	s, _ := newServer(t, smallOrg, nil)
	for _, u := range []string{
		"/api/v1/groups?expand=stats",
		"/api/v1/groups?search=" + url.QueryEscape(`type eq "OKTA_GROUP"`) + "&sortBy=profile.name",
		"/api/v1/users?search=" + url.QueryEscape(`status eq "ACTIVE"`),
		"/api/v1/users?q=ann",
		"/api/v1/users?filter=" + url.QueryEscape(`status eq "ACTIVE"`),
		"/api/v1/groups/" + groupID(0) + "/users?expand=x",
	} {
		wantError(t, get(t, s.URL()+u, ssws()), http.StatusNotImplemented, "E0000060")
	}
}

func TestSetOrg(t *testing.T) {
	s, _ := newServer(t, bigOrg(3, 4, nil), nil)
	r := get(t, s.URL()+"/api/v1/groups?limit=2", ssws())
	_, next := links(t, r)

	org := bigOrg(3, 6, func(i int) []string { return []string{userID(i % 3)} })
	org.Groups = slices.DeleteFunc(org.Groups, func(g oktatest.Group) bool { return g.ID == groupID(2) })
	s.SetOrg(org)
	// The old cursor resumes after the last group it returned.
	if got := ids(t, get(t, next, ssws())); !slices.Equal(got, []string{groupID(3), groupID(4)}) {
		t.Errorf("page after SetOrg %v", got)
	}
	if got := ids(t, get(t, s.URL()+"/api/v1/groups/"+groupID(5)+"/users", ssws())); !slices.Equal(got, []string{userID(2)}) {
		t.Errorf("members %v", got)
	}
}

// TestGetUser: GET /api/v1/users/{id} by id or login, whatever the
// status (the list leaves DEPROVISIONED users out; this does not), and
// Okta's 404 for an unknown one.
func TestGetUser(t *testing.T) {
	org := oktatest.Org{Users: []oktatest.User{
		{ID: "00u1", Profile: oktatest.Profile{Login: "ann@example.com", Email: "ann@example.org", FirstName: "Ann"}},
		{ID: "00u2", Status: "DEPROVISIONED", Profile: oktatest.Profile{Login: "bo@example.com"}},
	}}
	s, _ := newServer(t, org, nil)
	for _, tc := range []struct{ path, id, status string }{
		{"00u1", "00u1", "ACTIVE"},
		{"Ann@Example.com", "00u1", "ACTIVE"},
		{"00u2", "00u2", "DEPROVISIONED"},
	} {
		r := get(t, s.URL()+"/api/v1/users/"+tc.path, ssws())
		u := decode[map[string]any](t, r)
		if r.status != http.StatusOK || u["id"] != tc.id || u["status"] != tc.status {
			t.Errorf("GET /users/%s: %d %v, want %s %s", tc.path, r.status, u, tc.id, tc.status)
		}
	}
	// The object is the one the list serves.
	list := decode[[]map[string]any](t, get(t, s.URL()+"/api/v1/users", ssws()))
	one := decode[map[string]any](t, get(t, s.URL()+"/api/v1/users/00u1", ssws()))
	if len(list) != 1 || !jsonEqual(list[0], one) {
		t.Errorf("GET /users/00u1 %v, the list's %v", one, list)
	}
	e := wantError(t, get(t, s.URL()+"/api/v1/users/00uNOPE", ssws()), http.StatusNotFound, "E0000007")
	if e.ErrorSummary != "Not found: Resource not found: 00uNOPE (User)" {
		t.Errorf("summary %q", e.ErrorSummary)
	}
	if n := s.Requests()["GET /api/v1/users/{id}"]; n != 5 {
		t.Errorf("%d requests counted as GET /api/v1/users/{id}, want 5", n)
	}
}
