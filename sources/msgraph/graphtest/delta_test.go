package graphtest_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

type deltaPage struct {
	Context   string           `json:"@odata.context"`
	NextLink  string           `json:"@odata.nextLink"`
	DeltaLink string           `json:"@odata.deltaLink"`
	Value     []map[string]any `json:"value"`
}

// deltaRound follows a delta round from first to its deltaLink and returns
// every item in order and the page count.
func deltaRound(t *testing.T, s *graphtest.Server, tok, first string, header http.Header) (items []map[string]any, pages int, deltaLink string) {
	t.Helper()
	for next := spaces(first); next != ""; {
		r := get(t, s, tok, next, header)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %v", next, r)
		}
		var p deltaPage
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("%v in %s", err, r.body)
		}
		if (p.NextLink == "") == (p.DeltaLink == "") {
			t.Fatalf("page %d has nextLink %q and deltaLink %q; want exactly one", pages+1, p.NextLink, p.DeltaLink)
		}
		items = append(items, p.Value...)
		pages++
		next, deltaLink = p.NextLink, p.DeltaLink
	}
	return items, pages, deltaLink
}

// spaces escapes the spaces of a readable $filter.
func spaces(u string) string { return strings.ReplaceAll(u, " ", "%20") }

// byID merges a round's items by id (a large group spans pages), members
// as "+id" or "-id".
func byID(items []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, it := range items {
		id := it["id"].(string)
		m := out[id]
		if m == nil {
			m = map[string]any{}
			out[id] = m
		}
		for k, v := range it {
			if k != "members@delta" {
				m[k] = v
				continue
			}
			var changes []string
			if prev, ok := m["members"].([]string); ok {
				changes = prev
			}
			for _, mc := range v.([]any) {
				mc := mc.(map[string]any)
				sign := "+"
				if _, removed := mc["@removed"]; removed {
					sign = "-"
				}
				changes = append(changes, sign+mc["id"].(string))
			}
			m["members"] = changes
		}
	}
	return out
}

func deltaTenant() graphtest.Tenant {
	t := graphtest.Tenant{Users: users("u", 250)}
	t.Users = append(t.Users, graphtest.User{ID: "ada", DisplayName: "Ada", Mail: "ada@contoso.com", AccountEnabled: true})
	t.Objects = []graphtest.Object{{ID: "dev-1", ODataType: device}}
	t.Groups = []graphtest.Group{
		{ID: "big", DisplayName: "oncall-big", Members: userIDs(t.Users[:150])},
		{ID: "small", DisplayName: "oncall-small", Description: "few", Members: []string{"ada", "dev-1", "big"}},
		{ID: "m365", DisplayName: "Marketing", Mail: "marketing@contoso.com"},
		{ID: "empty", DisplayName: "oncall-empty"},
	}
	return t
}

func TestDeltaInitialRoundPages(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()

	items, pages, link := deltaRound(t, s, tok, "/users/delta?$select=displayName,mail,accountEnabled", nil)
	if len(items) != 251 || pages != 3 {
		t.Fatalf("%d users in %d pages, want 251 in 3 (100 a page)", len(items), pages)
	}
	if !strings.HasPrefix(link, s.BaseURL()+"/users/delta?$deltatoken=") {
		t.Errorf("deltaLink %q", link)
	}
	ada := byID(items)["ada"]
	if !maps.Equal(ada, map[string]any{"id": "ada", "displayName": "Ada", "mail": "ada@contoso.com", "accountEnabled": true}) {
		t.Errorf("ada: %v", ada)
	}

	first := decodePage(t, get(t, s, tok, "/groups/delta?$select=displayName,description,members", nil))
	if !strings.HasPrefix(first.NextLink, s.BaseURL()+"/groups/delta?$skiptoken=") || strings.Contains(first.NextLink, "$select") {
		t.Errorf("nextLink %q: want the options in the opaque token", first.NextLink)
	}
	groups, pages, _ := deltaRound(t, s, tok, "/groups/delta?$select=displayName,description,members", nil)
	// 4 groups + 153 members: two pages, "big" on both with half its members each.
	if pages != 2 || len(groups) != 5 {
		t.Fatalf("%d group items in %d pages, want 5 in 2", len(groups), pages)
	}
	got := byID(groups)
	if n := len(got["big"]["members"].([]string)); n != 150 {
		t.Errorf("big has %d members over its pages, want 150", n)
	}
	if m := got["small"]["members"]; !slices.Equal(m.([]string), []string{"+ada", "+dev-1", "+big"}) {
		t.Errorf("small members@delta %v", m)
	}
	for _, it := range groups {
		if it["id"] == "small" {
			types := []string{}
			for _, mc := range it["members@delta"].([]any) {
				types = append(types, mc.(map[string]any)["@odata.type"].(string))
			}
			if !slices.Equal(types, []string{"#microsoft.graph.user", device, "#microsoft.graph.group"}) {
				t.Errorf("member types %v", types)
			}
		}
	}
	if _, ok := got["empty"]["members"]; ok {
		t.Errorf("a group without members has members@delta: %v", got["empty"])
	}
	if _, ok := got["empty"]["description"]; ok {
		t.Errorf("a property never set is sent: %v", got["empty"])
	}
	if n := s.Requests()["GET /groups/delta"]; n != 3 {
		t.Errorf("GET /groups/delta counted %d, want 3", n)
	}
}

func TestDeltaLinkReportsChangesSince(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	_, _, users := deltaRound(t, s, tok, "/users/delta?$select=displayName,mail", nil)
	_, _, groups := deltaRound(t, s, tok, "/groups/delta?$select=displayName,description,members", nil)

	s.Update(func(tn *graphtest.Tenant) {
		tn.Users[0].DisplayName = "Renamed"     // u-0000, a member of big
		tn.Users[1].MobilePhone = "+1 555 0100" // not selected: does not show
		tn.Users = append(tn.Users, graphtest.User{ID: "new", Mail: "new@contoso.com"})
		tn.Users = slices.DeleteFunc(tn.Users, func(u graphtest.User) bool { return u.ID == "u-0002" })
		big := &tn.Groups[0]
		big.Members = slices.DeleteFunc(big.Members, func(id string) bool { return id == "u-0002" || id == "u-0003" })
		big.Members = append(big.Members, "new")
		tn.Groups[1].DisplayName = "oncall-tiny"
		tn.Groups = slices.DeleteFunc(tn.Groups, func(g graphtest.Group) bool { return g.ID == "m365" || g.ID == "empty" })
		tn.Groups = append(tn.Groups, graphtest.Group{ID: "g-new", DisplayName: "oncall-new", Members: []string{"ada"}})
	})

	items, pages, users2 := deltaRound(t, s, tok, users, nil)
	got := byID(items)
	want := map[string]map[string]any{
		"u-0000": {"id": "u-0000", "displayName": "Renamed", "mail": "u-0000@contoso.com"},
		"new":    {"id": "new", "mail": "new@contoso.com"},
		"u-0002": {"id": "u-0002", "@removed": map[string]any{"reason": "changed"}},
	}
	if pages != 1 || !maps.EqualFunc(got, want, func(a, b map[string]any) bool { return mapsEqual(a, b) }) {
		t.Errorf("users delta (%d pages):\n got %v\nwant %v", pages, got, want)
	}

	items, _, groups2 := deltaRound(t, s, tok, groups, nil)
	got = byID(items)
	if m := got["big"]["members"]; !slices.Equal(m.([]string), []string{"+new", "-u-0002", "-u-0003"}) {
		t.Errorf("big members@delta %v", m)
	}
	if got["big"]["displayName"] != "oncall-big" {
		t.Errorf("without Prefer: return=minimal an update carries its unchanged properties: %v", got["big"])
	}
	if got["small"]["displayName"] != "oncall-tiny" || got["small"]["members"] != nil {
		t.Errorf("small: %v", got["small"])
	}
	if got["g-new"]["displayName"] != "oncall-new" || !slices.Equal(got["g-new"]["members"].([]string), []string{"+ada"}) {
		t.Errorf("g-new: %v", got["g-new"])
	}
	for id, reason := range map[string]string{"m365": "changed", "empty": "deleted"} {
		if r, _ := got[id]["@removed"].(map[string]any); r["reason"] != reason || len(got[id]) != 2 {
			t.Errorf("%s: %v, want removed for reason %q", id, got[id], reason)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d groups changed, want 5: %v", len(got), got)
	}

	// Nothing changed since: an empty page and a deltaLink again.
	if items, _, _ := deltaRound(t, s, tok, users2, nil); len(items) != 0 {
		t.Errorf("no change, yet %v", items)
	}
	if items, _, _ := deltaRound(t, s, tok, groups2, nil); len(items) != 0 {
		t.Errorf("no change, yet %v", items)
	}
}

// mapsEqual compares decoded JSON objects one level deep.
func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if am, ok := v.(map[string]any); ok {
			bm, ok := b[k].(map[string]any)
			if !ok || !maps.Equal(am, bm) {
				return false
			}
			continue
		}
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDeltaPreferMinimal(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	_, _, link := deltaRound(t, s, tok, "/groups/delta?$select=displayName,description,members", nil)
	s.Update(func(tn *graphtest.Tenant) {
		tn.Groups[0].Members = tn.Groups[0].Members[1:]
		tn.Groups[1].DisplayName = "renamed"
	})
	items, _, _ := deltaRound(t, s, tok, link, http.Header{"Prefer": {"return=minimal"}})
	got := byID(items)
	if len(got["big"]) != 2 || !slices.Equal(got["big"]["members"].([]string), []string{"-u-0000"}) {
		t.Errorf("a membership change alone: %v, want the id and members@delta only", got["big"])
	}
	if !maps.Equal(got["small"], map[string]any{"id": "small", "displayName": "renamed"}) {
		t.Errorf("a rename: %v, want the id and the new name only", got["small"])
	}
}

func TestDeltaTracksOnlySelected(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	_, _, users := deltaRound(t, s, tok, "/users/delta?$select=displayName", nil)
	_, _, groups := deltaRound(t, s, tok, "/groups/delta?$select=displayName", nil)
	s.Update(func(tn *graphtest.Tenant) {
		tn.Users[0].Mail = "elsewhere@contoso.com"
		tn.Groups[0].Members = nil
	})
	if items, _, _ := deltaRound(t, s, tok, users, nil); len(items) != 0 {
		t.Errorf("a mail change shows without mail selected: %v", items)
	}
	if items, _, _ := deltaRound(t, s, tok, groups, nil); len(items) != 0 {
		t.Errorf("a membership change shows without members selected: %v", items)
	}
}

func TestDeltaTokenLatest(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	for _, coll := range []string{"users", "groups"} {
		t.Run(coll, func(t *testing.T) {
			// The docs spell it $deltaToken=latest; Graph's links $deltatoken.
			items, pages, link := deltaRound(t, s, tok, "/"+coll+"/delta?$select=displayName&$deltaToken=latest", nil)
			if len(items) != 0 || pages != 1 || !strings.Contains(link, "$deltatoken=") {
				t.Fatalf("latest: %d items, %d pages, link %q; want none, 1, a deltaLink", len(items), pages, link)
			}
			s.Update(func(tn *graphtest.Tenant) {
				tn.Users[5].DisplayName += "!"
				tn.Groups[1].DisplayName += "!"
			})
			items, _, _ = deltaRound(t, s, tok, link, nil)
			want := map[string]bool{"users": items[0]["id"] == "u-0005", "groups": items[0]["id"] == "small"}
			if len(items) != 1 || !want[coll] || len(items[0]) != 2 {
				t.Errorf("after one change: %v", items)
			}
		})
	}
}

func TestDeltaTokenEnds(t *testing.T) {
	clk := newClock()
	s := start(t, deltaTenant(), graphtest.Options{Now: clk.Now})
	// Access tokens live an hour on the fake's clock: each request gets its own.
	tok := s.IssueToken
	_, _, link := deltaRound(t, s, tok(), "/users/delta?$select=displayName", nil)
	firstPage := decodePage(t, get(t, s, tok(), "/users/delta?$select=displayName", nil)).NextLink

	t.Run("seven days", func(t *testing.T) {
		clk.Advance(7*24*time.Hour - time.Second)
		if r := get(t, s, tok(), link, nil); r.status != http.StatusOK {
			t.Fatalf("a token short of seven days: %v", r)
		}
		clk.Advance(time.Second)
		msg := wantGraphError(t, get(t, s, tok(), link, nil), http.StatusBadRequest, "syncStateNotFound")
		if !strings.Contains(msg, "expired") {
			t.Errorf("message %q", msg)
		}
	})

	_, _, link = deltaRound(t, s, tok(), "/users/delta?$select=displayName", nil)
	t.Run("ExpireDeltaTokens", func(t *testing.T) {
		s.ExpireDeltaTokens()
		wantGraphError(t, get(t, s, tok(), link, nil), http.StatusBadRequest, "syncStateNotFound")
		wantGraphError(t, get(t, s, tok(), firstPage, nil), http.StatusBadRequest, "syncStateNotFound")
	})

	_, _, link = deltaRound(t, s, tok(), "/users/delta?$select=displayName&$filter=id eq 'ada' or id eq 'u-0001'", nil)
	t.Run("ResetDeltaSync", func(t *testing.T) {
		s.ResetDeltaSync()
		r := get(t, s, tok(), link, nil)
		wantGraphError(t, r, http.StatusGone, "resyncRequired")
		loc := r.header.Get("Location")
		if !strings.HasPrefix(loc, s.BaseURL()+"/users/delta?") || !strings.HasSuffix(loc, "$deltatoken=") {
			t.Fatalf("Location %q, want the initial request with an empty $deltatoken", loc)
		}
		items, _, fresh := deltaRound(t, s, tok(), loc, nil)
		if got := ids(items); !slices.Equal(got, []string{"u-0001", "ada"}) {
			t.Errorf("following Location: %v, want a full round with the initial filter", got)
		}
		if r := get(t, s, tok(), fresh, nil); r.status != http.StatusOK {
			t.Errorf("a token issued after the reset: %v", r)
		}
	})
}

func TestDeltaLinksMustBeFollowedAsGiven(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	_, _, link := deltaRound(t, s, tok, "/users/delta?$select=displayName", nil)
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("$deltatoken")
	for name, bad := range map[string]string{
		"options added":    link + "&$select=mail",
		"edited token":     s.BaseURL() + "/users/delta?$deltatoken=x" + token,
		"other collection": s.BaseURL() + "/groups/delta?$deltatoken=" + token,
		"as a skiptoken":   s.BaseURL() + "/users/delta?$skiptoken=" + token,
	} {
		t.Run(name, func(t *testing.T) {
			msg := wantGraphError(t, get(t, s, tok, bad, nil), http.StatusBadRequest, "Request_BadRequest")
			if !strings.HasPrefix(msg, "graphtest: ") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestDeltaQueryOptions(t *testing.T) {
	s := start(t, deltaTenant(), graphtest.Options{})
	tok := s.IssueToken()
	for _, path := range []string{
		"/users/delta?$top=10",
		"/groups/delta?$orderby=displayName",
		"/groups/delta?$expand=members",
		"/groups/delta?$filter=startswith(displayName,'oncall-')",
		"/users/delta?$filter=id eq 'a' and displayName eq 'b'",
	} {
		wantGraphError(t, get(t, s, tok, spaces(path), nil), http.StatusBadRequest, "Request_UnsupportedQuery")
	}
	wantGraphError(t, get(t, s, tok, "/users/delta?$select=nope", nil), http.StatusBadRequest, "BadRequest")

	items, _, _ := deltaRound(t, s, tok, "/groups/microsoft.graph.delta?$filter=id eq 'small' or id eq 'empty'", nil)
	if got := ids(items); !slices.Equal(got, []string{"small", "empty"}) {
		t.Errorf("id filter: %v", got)
	}
	// No $select: the default properties, and members.
	if it := items[0]; it["displayName"] != "oncall-small" || it["members@delta"] == nil {
		t.Errorf("default group delta item %v", it)
	}
}
