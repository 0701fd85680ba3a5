package scimtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/scim/scimtest"
)

const token = "static-token"

func yes() *bool { t := true; return &t }

func dir() scimtest.Directory {
	d := scimtest.Directory{}
	for _, id := range []string{"u1", "u2", "u3", "u4", "u5"} {
		d.Users = append(d.Users, scimtest.User{
			ID: id, UserName: id + "@example.com", DisplayName: "User " + id, Active: yes(),
			Name:   scimtest.Name{Formatted: "Formatted " + id, GivenName: "G", FamilyName: "F"},
			Emails: []scimtest.Multi{{Value: id + "@example.com", Type: "work", Primary: true}},
		})
	}
	d.Groups = []scimtest.Group{
		{ID: "g1", DisplayName: "oncall-db", Members: []string{"u1", "u2", "g3", "gone"}},
		{ID: "g2", DisplayName: "oncall-web", Members: []string{"u3"}},
		{ID: "g3", DisplayName: "db-contractors", Members: []string{"u4", "g1"}},
	}
	return d
}

func newServer(t *testing.T, opts scimtest.Options) *scimtest.Server {
	t.Helper()
	if opts.BearerToken == "" {
		opts.BearerToken = token
	}
	srv := scimtest.NewServer(dir(), opts)
	t.Cleanup(srv.Close)
	return srv
}

// get sends a GET and decodes the JSON answer.
func get(t *testing.T, srv *scimtest.Server, path string, query url.Values, tok string) (int, http.Header, map[string]any) {
	t.Helper()
	u := srv.BaseURL() + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %d %s: not JSON", path, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header, v
}

func ids(t *testing.T, list map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range list["Resources"].([]any) {
		out = append(out, r.(map[string]any)["id"].(string))
	}
	return out
}

func TestPagingIsOneBased(t *testing.T) {
	srv := newServer(t, scimtest.Options{MaxResults: 2})
	for _, tc := range []struct {
		startIndex, count string
		want              []string
		itemsPerPage      float64
		startEcho         float64
	}{
		{"1", "2", []string{"u1", "u2"}, 2, 1},
		{"2", "2", []string{"u2", "u3"}, 2, 2},
		{"5", "2", []string{"u5"}, 1, 5},
		{"6", "2", nil, 0, 6},
		{"0", "1", []string{"u1"}, 1, 1},  // below 1 is 1
		{"-3", "1", []string{"u1"}, 1, 1}, // below 1 is 1
		{"1", "50", []string{"u1", "u2"}, 2, 1},
		{"1", "0", nil, 0, 1},  // totalResults only
		{"1", "-1", nil, 0, 1}, // negative is 0
		{"", "", []string{"u1", "u2"}, 2, 1},
	} {
		q := url.Values{}
		if tc.startIndex != "" {
			q.Set("startIndex", tc.startIndex)
			q.Set("count", tc.count)
		}
		status, h, body := get(t, srv, "/Users", q, token)
		if status != 200 || h.Get("Content-Type") != "application/scim+json" {
			t.Fatalf("%v: %d %s", q, status, h.Get("Content-Type"))
		}
		if got := ids(t, body); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("startIndex=%s count=%s: %v, want %v", tc.startIndex, tc.count, got, tc.want)
		}
		if body["totalResults"] != float64(5) || body["itemsPerPage"] != tc.itemsPerPage || body["startIndex"] != tc.startEcho {
			t.Errorf("startIndex=%s count=%s: totalResults %v itemsPerPage %v startIndex %v", tc.startIndex, tc.count,
				body["totalResults"], body["itemsPerPage"], body["startIndex"])
		}
		if s := body["schemas"].([]any); s[0] != "urn:ietf:params:scim:api:messages:2.0:ListResponse" {
			t.Errorf("schemas %v", s)
		}
	}
	if _, _, body := get(t, srv, "/Users", url.Values{"count": {"x"}}, token); body["scimType"] != "invalidValue" {
		t.Errorf("count=x: %v", body)
	}
}

func TestFilter(t *testing.T) {
	srv := newServer(t, scimtest.Options{})
	for _, tc := range []struct {
		path, filter string
		want         []string
	}{
		{"/Groups", `displayName sw "oncall-"`, []string{"g1", "g2"}},
		{"/Groups", `displayName SW "ONCALL-"`, []string{"g1", "g2"}},
		{"/Groups", `displayName eq "oncall-web"`, []string{"g2"}},
		{"/Groups", `members[value eq "u4"]`, []string{"g3"}},
		{"/Users", `emails[type eq "work" and value ew "u3@example.com"] or userName eq "u5@example.com"`, []string{"u3", "u5"}},
	} {
		status, _, body := get(t, srv, tc.path, url.Values{"filter": {tc.filter}}, token)
		if status != 200 {
			t.Fatalf("%s: %d %v", tc.filter, status, body)
		}
		if got := ids(t, body); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}
	status, _, body := get(t, srv, "/Groups", url.Values{"filter": {`displayName sw`}}, token)
	if status != 400 || body["scimType"] != "invalidFilter" || body["status"] != "400" {
		t.Errorf("bad filter: %d %v", status, body)
	}
	noFilter := newServer(t, scimtest.Options{NoFilter: true})
	status, _, body = get(t, noFilter, "/Groups", url.Values{"filter": {`displayName sw "oncall-"`}}, token)
	if status != 400 || body["scimType"] != "invalidFilter" {
		t.Errorf("filter on a server without filtering: %d %v", status, body)
	}
}

func TestAttributes(t *testing.T) {
	srv := newServer(t, scimtest.Options{})
	_, _, full := get(t, srv, "/Users/u1", nil, token)
	for _, key := range []string{"userName", "groups", "meta", "name", "emails"} {
		if _, ok := full[key]; !ok {
			t.Errorf("a whole user lacks %s: %v", key, full)
		}
	}
	_, _, u := get(t, srv, "/Users/u1", url.Values{"attributes": {"displayName,name.formatted,emails.value"}}, token)
	want := map[string]any{
		"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:User"}, "id": "u1", "displayName": "User u1",
		"name": map[string]any{"formatted": "Formatted u1"}, "emails": []any{map[string]any{"value": "u1@example.com"}},
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("attributes:\n%v\nwant\n%v", u, want)
	}
	_, _, u = get(t, srv, "/Users/u1", url.Values{"excludedAttributes": {"groups,meta,name.givenName,id"}}, token)
	if _, ok := u["groups"]; ok {
		t.Errorf("excluded groups still there: %v", u)
	}
	if u["id"] != "u1" || u["name"].(map[string]any)["formatted"] == nil || u["name"].(map[string]any)["givenName"] != nil {
		t.Errorf("excludedAttributes: %v", u)
	}
	_, _, list := get(t, srv, "/Groups", url.Values{"attributes": {"urn:ietf:params:scim:schemas:core:2.0:Group:displayName"}}, token)
	for _, r := range list["Resources"].([]any) {
		if _, ok := r.(map[string]any)["members"]; ok {
			t.Errorf("members returned though not asked for: %v", r)
		}
	}
	ignoring := newServer(t, scimtest.Options{IgnoreAttributes: true})
	if _, _, u := get(t, ignoring, "/Users/u1", url.Values{"attributes": {"displayName"}}, token); u["groups"] == nil {
		t.Errorf("IgnoreAttributes: %v", u)
	}
}

func TestMembers(t *testing.T) {
	srv := newServer(t, scimtest.Options{})
	_, _, g := get(t, srv, "/Groups/g1", nil, token)
	members := g["members"].([]any)
	want := []any{
		map[string]any{"value": "u1", "type": "User", "$ref": srv.BaseURL() + "/Users/u1", "display": "User u1"},
		map[string]any{"value": "u2", "type": "User", "$ref": srv.BaseURL() + "/Users/u2", "display": "User u2"},
		map[string]any{"value": "g3", "type": "Group", "$ref": srv.BaseURL() + "/Groups/g3", "display": "db-contractors"},
		map[string]any{"value": "gone", "type": "User", "$ref": srv.BaseURL() + "/Users/gone"},
	}
	if !reflect.DeepEqual(members, want) {
		t.Errorf("members:\n%v\nwant\n%v", members, want)
	}
	omit := newServer(t, scimtest.Options{OmitMemberType: true})
	_, _, g = get(t, omit, "/Groups/g1", url.Values{"attributes": {"members.value"}}, token)
	if m := g["members"].([]any)[0].(map[string]any); !reflect.DeepEqual(m, map[string]any{"value": "u1"}) {
		t.Errorf("members.value without types: %v", m)
	}
	if status, _, body := get(t, srv, "/Users/g1", nil, token); status != 404 || body["status"] != "404" {
		t.Errorf("a group read as a user: %d %v", status, body)
	}
}

func TestServiceProviderConfig(t *testing.T) {
	srv := newServer(t, scimtest.Options{MaxResults: 7, NoFilter: true, NoPaging: true})
	status, _, spc := get(t, srv, "/ServiceProviderConfig", nil, "") // no credentials needed
	if status != 200 {
		t.Fatalf("%d %v", status, spc)
	}
	if f := spc["filter"].(map[string]any); f["supported"] != false || f["maxResults"] != float64(7) {
		t.Errorf("filter %v", f)
	}
	if p := spc["pagination"].(map[string]any); p["index"] != false || p["maxPageSize"] != float64(7) {
		t.Errorf("pagination %v", p)
	}
	_, _, list := get(t, srv, "/Users", url.Values{"startIndex": {"3"}, "count": {"1"}}, token)
	if len(ids(t, list)) != 5 || list["startIndex"] != float64(1) {
		t.Errorf("without paging, startIndex and count are ignored: %v", list)
	}
	none := newServer(t, scimtest.Options{NoServiceProviderConfig: true})
	if status, _, _ := get(t, none, "/ServiceProviderConfig", nil, token); status != 404 {
		t.Errorf("NoServiceProviderConfig: %d", status)
	}
}

func TestMisbehaviour(t *testing.T) {
	srv := newServer(t, scimtest.Options{MaxResults: 2, TotalResultsDelta: 10, IgnoreStartIndex: true})
	_, _, list := get(t, srv, "/Users", url.Values{"startIndex": {"3"}, "count": {"2"}}, token)
	if got := ids(t, list); !reflect.DeepEqual(got, []string{"u1", "u2"}) || list["totalResults"] != float64(15) {
		t.Errorf("%v %v", got, list["totalResults"])
	}
}

func TestAuthentication(t *testing.T) {
	srv := newServer(t, scimtest.Options{ClientID: "client", ClientSecret: "secret", Scope: "scim.read", TokenLifetime: time.Minute})
	for _, tok := range []string{"", "wrong"} {
		status, h, body := get(t, srv, "/Users", nil, tok)
		if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || body["status"] != "401" ||
			body["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
			t.Errorf("token %q: %d %v", tok, status, body)
		}
	}

	post := func(form url.Values, basicUser, basicPass string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicUser != "" {
			req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	grant := url.Values{"grant_type": {"client_credentials"}, "scope": {"scim.read"}}
	status, tok := post(grant, "client", "secret")
	if status != 200 || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(60) {
		t.Fatalf("Basic: %d %v", status, tok)
	}
	if status, _, _ := get(t, srv, "/Users", nil, tok["access_token"].(string)); status != 200 {
		t.Errorf("the issued token: %d", status)
	}
	inBody := url.Values{"grant_type": {"client_credentials"}, "scope": {"scim.read"}, "client_id": {"client"}, "client_secret": {"secret"}}
	if status, tok := post(inBody, "", ""); status != 200 || tok["access_token"] == "" {
		t.Errorf("secret in the body: %d %v", status, tok)
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       string
	}{
		{"wrong secret", grant, "client", "nope", 401, "invalid_client"},
		{"unknown client", grant, "other", "secret", 401, "invalid_client"},
		{"no credentials", grant, "", "", 401, "invalid_client"},
		{"wrong scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"other"}}, "client", "secret", 400, "invalid_scope"},
		{"wrong grant", url.Values{"grant_type": {"password"}}, "client", "secret", 400, "unsupported_grant_type"},
		{"twice", inBody, "client", "secret", 400, "invalid_request"},
	} {
		if status, body := post(tc.form, tc.user, tc.pass); status != tc.status || body["error"] != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if n := srv.TokenRequests(); n != 8 {
		t.Errorf("%d token requests counted, want 8", n)
	}

	srv.ExpireTokens()
	if status, _, body := get(t, srv, "/Users", nil, tok["access_token"].(string)); status != 401 || !strings.Contains(body["detail"].(string), "expired") {
		t.Errorf("an expired token: %d %v", status, body)
	}
	if status, _, _ := get(t, srv, "/Users", nil, srv.IssueToken()); status != 200 {
		t.Errorf("a token issued after ExpireTokens: %d", status)
	}

	bodyOnly := newServer(t, scimtest.Options{ClientID: "client", ClientSecret: "secret", SecretInBodyOnly: true})
	srv = bodyOnly
	if status, body := post(url.Values{"grant_type": {"client_credentials"}}, "client", "secret"); status != 401 || body["error"] != "invalid_client" {
		t.Errorf("Basic on a body-only server: %d %v", status, body)
	}
}

func TestThrottleFaultAndCounters(t *testing.T) {
	srv := newServer(t, scimtest.Options{})
	srv.Throttle(1, 1500*time.Millisecond)
	status, h, body := get(t, srv, "/Users", nil, token)
	if status != 429 || h.Get("Retry-After") != "2" || body["status"] != "429" {
		t.Errorf("throttled: %d %v %v", status, h, body)
	}
	get(t, srv, "/Users", nil, token)
	if v := srv.RetryAfterViolations(); v != 1 {
		t.Errorf("%d violations, want 1", v)
	}
	srv.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		return 503, http.Header{"Retry-After": {"0"}}, `{"detail":"down"}`, n == 3
	})
	if status, _, body := get(t, srv, "/Groups/g1", nil, token); status != 503 || body["detail"] != "down" {
		t.Errorf("fault: %d %v", status, body)
	}
	want := map[string]int{"GET /Users": 2, "GET /Groups/{id}": 1}
	if got := srv.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if calls := srv.Calls(); len(calls) != 3 || calls[2].Route != "/Groups/{id}" {
		t.Errorf("calls %+v", calls)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.BaseURL()+"/Users", nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Errorf("Accept: text/html answered %d", resp.StatusCode)
	}
}
