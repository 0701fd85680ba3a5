package graphtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

const (
	device  = "#microsoft.graph.device"
	contact = "#microsoft.graph.orgContact"
	spType  = "#microsoft.graph.servicePrincipal"
)

func users(prefix string, n int) []graphtest.User {
	out := make([]graphtest.User, n)
	for i := range out {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		out[i] = graphtest.User{ID: id, DisplayName: "User " + id, UserPrincipalName: id + "@contoso.com", Mail: id + "@contoso.com", AccountEnabled: i%2 == 0}
	}
	return out
}

func userIDs(us []graphtest.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.ID
	}
	return out
}

// nestedTenant has group "all" with 100 direct users, a device, and three
// nested groups of 800 users each: 2504 transitive members, 2500 of them users.
func nestedTenant() graphtest.Tenant {
	direct := users("direct", 100)
	t := graphtest.Tenant{Users: direct, Objects: []graphtest.Object{{ID: "dev-1", ODataType: device, DisplayName: "Kiosk"}}}
	all := graphtest.Group{ID: "all", DisplayName: "All", Members: append(userIDs(direct), "dev-1")}
	for g := range 3 {
		us := users(fmt.Sprintf("team%d", g), 800)
		t.Users = append(t.Users, us...)
		id := fmt.Sprintf("team-%d", g)
		t.Groups = append(t.Groups, graphtest.Group{ID: id, DisplayName: "Team " + id, Members: userIDs(us)})
		all.Members = append(all.Members, id)
	}
	t.Groups = append(t.Groups, all)
	return t
}

func TestGraphNeedsALiveToken(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{})
	for _, tc := range []struct {
		name, auth, msg string
	}{
		{"no header", "", "Access token is empty."},
		{"basic scheme", "Basic Zm9vOmJhcg==", "Access token is empty."},
		{"unknown token", "Bearer made-up", "Access token validation failure. Invalid audience."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Client-Request-Id": {"7c8d9e0f-aaaa-bbbb-cccc-000000000001"}}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			r := get(t, s, "", "/users", h)
			if msg := wantGraphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken"); msg != tc.msg {
				t.Errorf("message %q, want %q", msg, tc.msg)
			}
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			if r.header.Get("client-request-id") != h.Get("Client-Request-Id") {
				t.Errorf("client-request-id not echoed: %q", r.header.Get("client-request-id"))
			}
		})
	}
}

func TestTokenLifetime(t *testing.T) {
	clk := newClock()
	s := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret, TokenLifetime: 10 * time.Minute, Now: clk.Now})
	tok := s.IssueToken()
	if r := get(t, s, tok, "/users", nil); r.status != http.StatusOK {
		t.Fatal(r)
	}
	clk.Advance(10 * time.Minute)
	r := get(t, s, tok, "/users", nil)
	if msg := wantGraphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken"); msg != "Lifetime validation failed, the token is expired." {
		t.Errorf("message %q", msg)
	}
	if r := get(t, s, s.IssueToken(), "/users", nil); r.status != http.StatusOK {
		t.Errorf("a fresh token was refused: %v", r)
	}
}

func TestExpireTokens(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret})
	cfg := secretConfig(s, secret, oauth2.AuthStyleInParams)
	old, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.ExpireTokens()
	r := get(t, s, old.AccessToken, "/groups", nil)
	if msg := wantGraphError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken"); msg != "Lifetime validation failed, the token is expired." {
		t.Errorf("message %q", msg)
	}
	fresh, err := cfg.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := get(t, s, fresh.AccessToken, "/groups", nil); r.status != http.StatusOK {
		t.Errorf("token issued after ExpireTokens refused: %v", r)
	}
}

func TestPagingAtTop999(t *testing.T) {
	s := start(t, graphtest.Tenant{Users: users("u", 2500)}, graphtest.Options{})
	tok := s.IssueToken()

	first := decodePage(t, get(t, s, tok, "/users?$top=999&$select=id,displayName", nil))
	if !strings.HasPrefix(first.NextLink, s.BaseURL()+"/users?") ||
		!strings.Contains(first.NextLink, "$top=999") || !strings.Contains(first.NextLink, "$select=id,displayName") ||
		!strings.Contains(first.NextLink, "&$skiptoken=") {
		t.Errorf("nextLink %q is not an absolute link keeping the query options", first.NextLink)
	}
	if want := s.BaseURL() + "/$metadata#users(id,displayName)"; first.Context != want {
		t.Errorf("@odata.context %q, want %q", first.Context, want)
	}

	items, sizes := getAll(t, s, tok, "/users?$top=999&$select=id,displayName", nil)
	if !slices.Equal(sizes, []int{999, 999, 502}) {
		t.Errorf("page sizes %v, want [999 999 502]", sizes)
	}
	got := ids(items)
	if !slices.Equal(got, userIDs(users("u", 2500))) {
		t.Errorf("items are not the 2500 users in order, once each (%d)", len(got))
	}
	if n := s.Requests()["GET /users"]; n != 4 {
		t.Errorf("GET /users served %d times, want 4", n)
	}

	t.Run("transitiveMembers", func(t *testing.T) {
		s := start(t, nestedTenant(), graphtest.Options{})
		items, sizes := getAll(t, s, s.IssueToken(), "/groups/all/transitiveMembers?$top=999", nil)
		if !slices.Equal(sizes, []int{999, 999, 506}) {
			t.Errorf("page sizes %v, want [999 999 506]", sizes)
		}
		seen := map[string]bool{}
		for _, id := range ids(items) {
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		if len(seen) != 2504 {
			t.Errorf("%d distinct members, want 2504", len(seen))
		}
	})
}

func TestDefaultPageSizeIs100(t *testing.T) {
	s := start(t, graphtest.Tenant{Users: users("u", 250)}, graphtest.Options{})
	_, sizes := getAll(t, s, s.IssueToken(), "/users", nil)
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("page sizes %v", sizes)
	}
}

func TestTopOutOfRange(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{})
	tok := s.IssueToken()
	for _, top := range []string{"0", "1000"} {
		msg := wantGraphError(t, get(t, s, tok, "/users?$top="+top, nil), 400, "Request_UnsupportedQuery")
		if want := "Invalid page size specified: '" + top + "'. Must be between 1 and 999 inclusive."; msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
	}
	wantGraphError(t, get(t, s, tok, "/groups?$top=many", nil), 400, "BadRequest")
}

func TestNextLinkMustBeFollowedAsGiven(t *testing.T) {
	s := start(t, graphtest.Tenant{Users: users("u", 30), Groups: []graphtest.Group{{ID: "g", DisplayName: "G"}}}, graphtest.Options{})
	tok := s.IssueToken()
	next := decodePage(t, get(t, s, tok, "/users?$top=10", nil)).NextLink
	skip := next[strings.Index(next, "$skiptoken=")+len("$skiptoken="):]
	flipped := []byte(skip)
	flipped[5] ^= 1
	for name, link := range map[string]string{
		"token edited":        strings.Replace(next, skip, string(flipped), 1),
		"$top dropped":        strings.Replace(next, "$top=10&", "", 1),
		"$top changed":        strings.Replace(next, "$top=10", "$top=20", 1),
		"used on another set": s.BaseURL() + "/groups?$top=10&$skiptoken=" + skip,
	} {
		t.Run(name, func(t *testing.T) {
			wantGraphError(t, get(t, s, tok, link, nil), 400, "Request_BadRequest")
		})
	}
	p := decodePage(t, get(t, s, tok, next, nil))
	if got := ids(p.Value); got[0] != "u-0010" || len(got) != 10 {
		t.Errorf("second page %v", got)
	}
}

func TestUserProperties(t *testing.T) {
	s := start(t, graphtest.Tenant{Users: []graphtest.User{
		{ID: "u1", DisplayName: "Ada", Mail: "ada@contoso.com", UserPrincipalName: "ada@contoso.com", MobilePhone: "+1 555 0100", BusinessPhones: []string{"+1 555 0101"}, AccountEnabled: true},
		{ID: "u2", DisplayName: "Bob", UserPrincipalName: "bob@contoso.com"},
	}}, graphtest.Options{})
	tok := s.IssueToken()

	t.Run("default set has no accountEnabled", func(t *testing.T) {
		p := decodePage(t, get(t, s, tok, "/users", nil))
		want := []string{"businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}
		for _, u := range p.Value {
			if keys := slices.Sorted(maps.Keys(u)); !slices.Equal(keys, want) {
				t.Errorf("keys %v, want %v", keys, want)
			}
		}
		bob := p.Value[1]
		if bob["mail"] != nil || bob["mobilePhone"] != nil || fmt.Sprint(bob["businessPhones"]) != "[]" {
			t.Errorf("unset properties should be null and an empty collection []: %v", bob)
		}
		if p.Context != s.BaseURL()+"/$metadata#users" {
			t.Errorf("@odata.context %q", p.Context)
		}
	})
	t.Run("$select", func(t *testing.T) {
		p := decodePage(t, get(t, s, tok, "/users?$select=ID,accountEnabled,mobilePhone", nil))
		ada := p.Value[0]
		if len(ada) != 3 || ada["id"] != "u1" || ada["accountEnabled"] != true || ada["mobilePhone"] != "+1 555 0100" {
			t.Errorf("got %v", ada)
		}
		if p.Value[1]["accountEnabled"] != false {
			t.Errorf("accountEnabled false must be sent, got %v", p.Value[1])
		}
		if p.Context != s.BaseURL()+"/$metadata#users(id,accountEnabled,mobilePhone)" {
			t.Errorf("@odata.context %q", p.Context)
		}
	})
	t.Run("unknown property", func(t *testing.T) {
		msg := wantGraphError(t, get(t, s, tok, "/users?$select=id,shoeSize", nil), 400, "BadRequest")
		if !strings.Contains(msg, "'shoeSize' on type 'microsoft.graph.user'") {
			t.Errorf("message %q", msg)
		}
	})
	t.Run("one user by id or userPrincipalName", func(t *testing.T) {
		for _, key := range []string{"u2", "BOB@contoso.com"} {
			r := get(t, s, tok, "/users/"+url.PathEscape(key)+"?$select=displayName,accountEnabled", nil)
			if r.status != http.StatusOK || !strings.Contains(string(r.body), `"displayName":"Bob"`) || !strings.Contains(string(r.body), `#users(displayName,accountEnabled)/$entity`) {
				t.Errorf("%s: %v", key, r)
			}
		}
		wantGraphError(t, get(t, s, tok, "/users/nobody", nil), 404, "Request_ResourceNotFound")
	})
}

func TestFilter(t *testing.T) {
	s := start(t, graphtest.Tenant{
		Users: users("u", 6),
		Groups: []graphtest.Group{
			{ID: "g1", DisplayName: "Eng Platform", Mail: "eng-platform@contoso.com"},
			{ID: "g2", DisplayName: "Eng Web", Mail: "eng-web@contoso.com"},
			{ID: "g3", DisplayName: "Sales", Mail: "SALES@contoso.com", Description: "quota"},
			{ID: "g4", DisplayName: "O'Brien team", Mail: "obrien@fabrikam.com"},
			{ID: "g5", DisplayName: "No mail"},
		},
	}, graphtest.Options{})
	tok := s.IssueToken()
	filter := func(expr string) string { return "/groups?$filter=" + url.QueryEscape(expr) }
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{"startswith(displayName,'eng')", []string{"g1", "g2"}},
		{"startsWith(displayName, 'ENG W')", []string{"g2"}},
		{"displayName eq 'sales'", []string{"g3"}},
		{"mail eq 'sales@CONTOSO.com'", []string{"g3"}},
		{"startswith(mail,'eng-')", []string{"g1", "g2"}},
		{"displayName eq 'O''Brien team'", []string{"g4"}},
		{"id eq 'g5'", []string{"g5"}},
		{"displayName eq 'nobody'", nil},
	} {
		items, _ := getAll(t, s, tok, filter(tc.expr), nil)
		if got := ids(items); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.expr, got, tc.want)
		}
	}

	disabled, _ := getAll(t, s, tok, "/users?$filter="+url.QueryEscape("accountEnabled eq false"), nil)
	if got := ids(disabled); !slices.Equal(got, []string{"u-0001", "u-0003", "u-0005"}) {
		t.Errorf("accountEnabled eq false: %v", got)
	}

	t.Run("unsupported property", func(t *testing.T) {
		wantGraphError(t, get(t, s, tok, filter("description eq 'quota'"), nil), 400, "Request_UnsupportedQuery")
	})
	t.Run("endsWith is an advanced query", func(t *testing.T) {
		path := filter("endswith(mail,'@contoso.com')")
		msg := wantGraphError(t, get(t, s, tok, path, nil), 400, "Request_UnsupportedQuery")
		if !strings.Contains(msg, "ConsistencyLevel:eventual") {
			t.Errorf("message %q", msg)
		}
		wantGraphError(t, get(t, s, tok, path+"&$count=true", nil), 400, "Request_UnsupportedQuery")
		p := decodePage(t, get(t, s, tok, path+"&$count=true", eventual))
		if got := ids(p.Value); !slices.Equal(got, []string{"g1", "g2", "g3"}) || p.Count == nil || *p.Count != 3 {
			t.Errorf("got %v count %v", got, p.Count)
		}
	})
	t.Run("$count without the header is ignored", func(t *testing.T) {
		if p := decodePage(t, get(t, s, tok, "/groups?$count=true", nil)); p.Count != nil {
			t.Errorf("@odata.count %d without ConsistencyLevel", *p.Count)
		}
	})
	t.Run("what the fake does not model says so", func(t *testing.T) {
		for _, path := range []string{
			filter("displayName eq 'Sales' or displayName eq 'Eng Web'"),
			"/groups?$orderby=displayName",
			"/groups/g1/members?$filter=" + url.QueryEscape("displayName eq 'x'"),
		} {
			if msg := wantGraphError(t, get(t, s, tok, path, nil), 400, "Request_UnsupportedQuery"); !strings.HasPrefix(msg, "graphtest:") {
				t.Errorf("%s: message %q", path, msg)
			}
		}
	})
}

// memberTenant: A has a user, B, a device; B has a user, C and A's user
// again; C has a user, A (a cycle), a contact and a service principal.
func memberTenant() graphtest.Tenant {
	return graphtest.Tenant{
		Users: []graphtest.User{
			{ID: "u1", DisplayName: "One", AccountEnabled: true},
			{ID: "u2", DisplayName: "Two", AccountEnabled: true},
			{ID: "u3", DisplayName: "Three"},
			{ID: "owner", DisplayName: "Owner"},
		},
		Objects: []graphtest.Object{
			{ID: "dev", ODataType: device, DisplayName: "Printer"},
			{ID: "con", ODataType: contact, DisplayName: "Vendor"},
			{ID: "sp", ODataType: spType, DisplayName: "Robot"},
		},
		Groups: []graphtest.Group{
			{ID: "A", DisplayName: "A", Members: []string{"u1", "B", "dev"}, Owners: []string{"owner", "sp"}},
			{ID: "B", DisplayName: "B", Description: "nested", Members: []string{"u2", "C", "u1"}},
			{ID: "C", DisplayName: "C", Members: []string{"u3", "A", "con", "sp"}},
		},
	}
}

func types(items []map[string]any) map[string]string {
	out := map[string]string{}
	for _, it := range items {
		out[it["id"].(string)], _ = it["@odata.type"].(string)
	}
	return out
}

func TestMembers(t *testing.T) {
	s := start(t, memberTenant(), graphtest.Options{})
	tok := s.IssueToken()

	p := decodePage(t, get(t, s, tok, "/groups/A/members", nil))
	if want := map[string]string{"u1": "#microsoft.graph.user", "B": "#microsoft.graph.group", "dev": device}; !maps.Equal(types(p.Value), want) {
		t.Errorf("types %v, want %v", types(p.Value), want)
	}
	if p.Context != s.BaseURL()+"/$metadata#directoryObjects" {
		t.Errorf("@odata.context %q", p.Context)
	}
	u1, b := p.Value[0], p.Value[1]
	if _, ok := u1["accountEnabled"]; ok || u1["displayName"] != "One" || u1["userPrincipalName"] != nil {
		t.Errorf("user member without $select should carry the default set: %v", u1)
	}
	if b["description"] != "nested" || b["displayName"] != "B" {
		t.Errorf("group member %v", b)
	}

	p = decodePage(t, get(t, s, tok, "/groups/A/members?$select=id,accountEnabled", nil))
	for _, it := range p.Value {
		_, has := it["accountEnabled"]
		if it["@odata.type"] == nil || has != (it["@odata.type"] == "#microsoft.graph.user") || len(it) > 3 {
			t.Errorf("$select on members: %v", it)
		}
	}

	owners := decodePage(t, get(t, s, tok, "/groups/A/owners", nil))
	if want := map[string]string{"owner": "#microsoft.graph.user", "sp": spType}; !maps.Equal(types(owners.Value), want) {
		t.Errorf("owners %v", types(owners.Value))
	}
	wantGraphError(t, get(t, s, tok, "/groups/nope/members", nil), 404, "Request_ResourceNotFound")
	wantGraphError(t, get(t, s, tok, "/groups/nope/owners", nil), 404, "Request_ResourceNotFound")
	wantGraphError(t, get(t, s, tok, "/groups/u1/members", nil), 404, "Request_ResourceNotFound")
}

func TestTransitiveMembers(t *testing.T) {
	s := start(t, memberTenant(), graphtest.Options{})
	tok := s.IssueToken()
	for root, want := range map[string]map[string]string{
		// Nested groups are members too; the cycle back to A stops there and
		// A is not its own member.
		"A": {"u1": "#microsoft.graph.user", "B": "#microsoft.graph.group", "dev": device, "u2": "#microsoft.graph.user",
			"C": "#microsoft.graph.group", "u3": "#microsoft.graph.user", "con": contact, "sp": spType},
		"C": {"u3": "#microsoft.graph.user", "A": "#microsoft.graph.group", "u1": "#microsoft.graph.user", "B": "#microsoft.graph.group",
			"u2": "#microsoft.graph.user", "dev": device, "con": contact, "sp": spType},
	} {
		items, _ := getAll(t, s, tok, "/groups/"+root+"/transitiveMembers", nil)
		if len(items) != len(want) || !maps.Equal(types(items), want) {
			t.Errorf("%s: %d items %v, want %v", root, len(items), types(items), want)
		}
	}
	// Path segments are case-insensitive in Graph.
	if r := get(t, s, tok, "/groups/A/transitivemembers", nil); r.status != http.StatusOK {
		t.Errorf("lower-case segment: %v", r)
	}
}

// The documentation of both relationships lists the OData cast among what
// needs ConsistencyLevel: eventual and $count=true.
func TestCastIsAnAdvancedQuery(t *testing.T) {
	for _, rel := range []string{"members", "transitiveMembers"} {
		t.Run(rel, func(t *testing.T) {
			s := start(t, memberTenant(), graphtest.Options{})
			tok := s.IssueToken()
			path := "/groups/A/" + rel + "/microsoft.graph.user"
			for name, r := range map[string]response{
				"neither":      get(t, s, tok, path, nil),
				"header only":  get(t, s, tok, path, eventual),
				"$count only":  get(t, s, tok, path+"?$count=true", nil),
				"$count=false": get(t, s, tok, path+"?$count=false", eventual),
			} {
				if msg := wantGraphError(t, r, 400, "Request_UnsupportedQuery"); !strings.Contains(msg, "ConsistencyLevel:eventual") {
					t.Errorf("%s: message %q", name, msg)
				}
			}
			p := decodePage(t, get(t, s, tok, path+"?$count=true", eventual))
			wantIDs := map[string][]string{"members": {"u1"}, "transitiveMembers": {"u1", "u2", "u3"}}[rel]
			if got := ids(p.Value); !slices.Equal(got, wantIDs) || p.Count == nil || *p.Count != len(wantIDs) {
				t.Errorf("got %v count %v, want %v", got, p.Count, wantIDs)
			}
			for _, it := range p.Value {
				if _, ok := it["@odata.type"]; ok {
					t.Errorf("cast items carry no @odata.type: %v", it)
				}
			}
			if p.Context != s.BaseURL()+"/$metadata#users" {
				t.Errorf("@odata.context %q", p.Context)
			}
			key := "GET /groups/{id}/" + rel + "/microsoft.graph.user"
			if n := s.Requests()[key]; n != 5 {
				t.Errorf("%s served %d times, want 5: %v", key, n, s.Requests())
			}
		})
	}

	t.Run("every page needs the header", func(t *testing.T) {
		s := start(t, nestedTenant(), graphtest.Options{})
		tok := s.IssueToken()
		p := decodePage(t, get(t, s, tok, "/groups/all/transitiveMembers/microsoft.graph.user?$count=true&$top=999&$select=id", eventual))
		if p.Count == nil || *p.Count != 2500 || len(p.Value) != 999 {
			t.Fatalf("first page: count %v, %d items", p.Count, len(p.Value))
		}
		wantGraphError(t, get(t, s, tok, p.NextLink, nil), 400, "Request_UnsupportedQuery")

		items, sizes := getAll(t, s, tok, p.NextLink, eventual)
		if !slices.Equal(sizes, []int{999, 502}) {
			t.Errorf("later pages %v", sizes)
		}
		next := decodePage(t, get(t, s, tok, p.NextLink, eventual))
		if next.Count != nil {
			t.Errorf("@odata.count belongs on the first page only")
		}
		all := append(ids(p.Value), ids(items)...)
		sort.Strings(all)
		if len(slices.Compact(all)) != 2500 {
			t.Errorf("%d distinct users, want 2500", len(slices.Compact(all)))
		}
	})
	t.Run("other casts", func(t *testing.T) {
		s := start(t, memberTenant(), graphtest.Options{})
		tok := s.IssueToken()
		p := decodePage(t, get(t, s, tok, "/groups/A/transitiveMembers/microsoft.graph.group?$count=true", eventual))
		if got := ids(p.Value); !slices.Equal(got, []string{"B", "C"}) || p.Context != s.BaseURL()+"/$metadata#groups" {
			t.Errorf("got %v %s", got, p.Context)
		}
		wantGraphError(t, get(t, s, tok, "/groups/A/members/microsoft.graph.banana?$count=true", eventual), 400, "BadRequest")
	})
}

func TestRoutes(t *testing.T) {
	s := start(t, memberTenant(), graphtest.Options{})
	tok := s.IssueToken()
	r := get(t, s, tok, "/groups/B", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"description":"nested"`) || !strings.Contains(string(r.body), "#groups/$entity") {
		t.Errorf("GET /groups/B: %v", r)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
	}
	wantGraphError(t, get(t, s, tok, "/groups/nope", nil), 404, "Request_ResourceNotFound")
	wantGraphError(t, get(t, s, tok, "/applications", nil), 400, "BadRequest")
	wantGraphError(t, get(t, s, tok, "/groups/A/memberOf", nil), 400, "BadRequest")
	post, err := do(http.MethodPost, s.BaseURL()+"/groups", tok, nil, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	wantGraphError(t, post, 405, "Request_BadRequest")

	want := map[string]int{
		"GET /groups/{id}": 2, "GET /applications": 1, "GET /groups/A/memberOf": 1, "POST /groups": 1,
	}
	if got := s.Requests(); !maps.Equal(got, want) {
		t.Errorf("Requests() = %v, want %v", got, want)
	}
	if s.TotalRequests() != 5 || s.TokenRequests() != 0 {
		t.Errorf("TotalRequests %d TokenRequests %d", s.TotalRequests(), s.TokenRequests())
	}
}

func TestThrottle(t *testing.T) {
	clk := newClock()
	s := start(t, graphtest.Tenant{}, graphtest.Options{Now: clk.Now})
	tok := s.IssueToken()
	s.Throttle(2, 1500*time.Millisecond)

	// A request with a bad token gets its 401 and leaves the throttle alone.
	wantGraphError(t, get(t, s, "bad", "/users", nil), 401, "InvalidAuthenticationToken")

	r := get(t, s, tok, "/users", nil)
	wantGraphError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want whole seconds rounded up", r.header.Get("Retry-After"))
	}
	if s.RetryAfterViolations() != 0 {
		t.Fatalf("violations before any early retry: %d", s.RetryAfterViolations())
	}

	clk.Advance(time.Second) // too early
	wantGraphError(t, get(t, s, tok, "/users", nil), http.StatusTooManyRequests, "TooManyRequests")
	if s.RetryAfterViolations() != 1 {
		t.Errorf("violations %d, want 1", s.RetryAfterViolations())
	}

	clk.Advance(2 * time.Second) // the second 429's Retry-After has elapsed
	if r := get(t, s, tok, "/users", nil); r.status != http.StatusOK {
		t.Errorf("after Retry-After: %v", r)
	}
	if r := get(t, s, tok, "/users", nil); r.status != http.StatusOK || s.RetryAfterViolations() != 1 {
		t.Errorf("throttle should be used up: %v, %d violations", r, s.RetryAfterViolations())
	}
	if n := s.Requests()["GET /users"]; n != 5 {
		t.Errorf("GET /users counted %d times, want 5", n)
	}
}

func TestFault(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{})
	tok := s.IssueToken()
	var seen []int
	s.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		seen = append(seen, n)
		if n == 2 {
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"3"}}, `{"error":{"code":"serviceNotAvailable"}}`, true
		}
		return 0, nil, "", false
	})
	statuses := []int{get(t, s, tok, "/users", nil).status}
	r := get(t, s, tok, "/groups", nil)
	statuses = append(statuses, r.status, get(t, s, "", "/users", nil).status)
	if !slices.Equal(statuses, []int{200, 503, 401}) || !slices.Equal(seen, []int{1, 2, 3}) {
		t.Errorf("statuses %v, hook saw %v", statuses, seen)
	}
	if string(r.body) != `{"error":{"code":"serviceNotAvailable"}}` || r.header.Get("Retry-After") != "3" {
		t.Errorf("fault answer %v %v", r, r.header)
	}
	s.SetFault(nil)
	if get(t, s, tok, "/groups", nil).status != http.StatusOK || len(seen) != 3 {
		t.Errorf("SetFault(nil) did not remove the hook")
	}
}

func TestSetTenant(t *testing.T) {
	s := start(t, graphtest.Tenant{ID: "8f0e5a3c-0000-4000-8000-000000000001", Groups: []graphtest.Group{{ID: "g1", DisplayName: "Old"}}}, graphtest.Options{ClientSecret: secret})
	tok := s.IssueToken()
	s.SetTenant(graphtest.Tenant{Groups: []graphtest.Group{{ID: "g2", DisplayName: "New"}}})
	items, _ := getAll(t, s, tok, "/groups", nil)
	if got := ids(items); !slices.Equal(got, []string{"g2"}) {
		t.Errorf("groups after SetTenant: %v", got)
	}
	if s.TenantID() != "8f0e5a3c-0000-4000-8000-000000000001" || !strings.Contains(s.TokenURL(), s.TenantID()) {
		t.Errorf("tenant id changed: %s", s.TokenURL())
	}
	if r := get(t, s, tok, "/groups", nil); r.status != http.StatusOK {
		t.Errorf("tokens should survive SetTenant: %v", r)
	}
}

func TestInconsistentTenantPanics(t *testing.T) {
	for name, tenant := range map[string]graphtest.Tenant{
		"unknown member":   {Groups: []graphtest.Group{{ID: "g", Members: []string{"ghost"}}}},
		"group owner":      {Groups: []graphtest.Group{{ID: "g", Owners: []string{"g"}}}},
		"duplicate id":     {Users: []graphtest.User{{ID: "x"}}, Groups: []graphtest.Group{{ID: "x"}}},
		"empty id":         {Users: []graphtest.User{{DisplayName: "nobody"}}},
		"user as object":   {Objects: []graphtest.Object{{ID: "o", ODataType: "#microsoft.graph.user"}}},
		"unknown obj type": {Objects: []graphtest.Object{{ID: "o", ODataType: "#microsoft.graph.banana"}}},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			graphtest.NewServer(tenant, graphtest.Options{}).Close()
		})
	}
}

// The tenant given to NewServer or SetTenant is copied: changing it afterwards
// changes nothing the server says.
func TestTenantIsCopied(t *testing.T) {
	tenant := memberTenant()
	s := start(t, tenant, graphtest.Options{})
	tenant.Groups[0].Members[0] = "u3"
	tenant.Users[0].DisplayName = "Changed"
	p := decodePage(t, get(t, s, s.IssueToken(), "/groups/A/members", nil))
	if p.Value[0]["id"] != "u1" || p.Value[0]["displayName"] != "One" {
		t.Errorf("server follows caller's edits: %v", p.Value[0])
	}
}

func TestConcurrentUse(t *testing.T) {
	tenant := nestedTenant()
	s := start(t, tenant, graphtest.Options{ClientSecret: secret})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := s.IssueToken()
			path := []string{"/users?$top=999", "/groups/all/transitiveMembers?$top=500"}[w%2]
			n := 0
			for next := s.BaseURL() + path; next != ""; {
				r, err := do(http.MethodGet, next, tok, nil, nil)
				if err != nil || r.status != http.StatusOK {
					errs <- fmt.Errorf("%s: %v %v", next, r, err)
					return
				}
				var p page
				if err := json.Unmarshal(r.body, &p); err != nil {
					errs <- err
					return
				}
				n += len(p.Value)
				next = p.NextLink
			}
			if want := []int{2500, 2504}[w%2]; n != want {
				errs <- fmt.Errorf("%s: %d items, want %d", path, n, want)
			}
		}()
	}
	for range 20 {
		s.SetTenant(tenant)
		_ = s.Requests()
		s.Throttle(0, 0)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
