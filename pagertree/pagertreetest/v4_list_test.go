package pagertreetest

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestV4ListAccountUsersPages(t *testing.T) {
	s := newV4Server(t)
	var ids []string
	for i := range 120 {
		ids = append(ids, mustAddAccountUser(t, s, person(fmt.Sprint("user ", i), fmt.Sprintf("u%03d@example.com", i))).ID)
	}
	tests := []struct {
		query       string
		wantFrom    int // index of the first account user answered
		wantTo      int // index after the last
		wantHasMore bool
	}{
		{"", 0, 10, true},
		{"?limit=100", 0, 100, true},
		{"?limit=100&page=2", 100, 120, false},
		{"?limit=100&page=3", 120, 120, false},
		{"?limit=100&offset=100", 100, 120, false},
		{"?limit=50&offset=70", 70, 120, false},
		{"?limit=50&offset=69", 69, 119, true},
		{"?page=12", 110, 120, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var page pagertree.List[pagertree.AccountUser]
			decodeStrict(t, expect(t, s, bearer, http.MethodGet, "/api/v4/account_users"+tt.query, "", http.StatusOK), &page)
			got := []string{}
			for _, au := range page.Data {
				got = append(got, au.ID)
			}
			if want := ids[tt.wantFrom:tt.wantTo]; !slices.Equal(got, want) {
				t.Errorf("ids %v, want %v", got, want)
			}
			if page.HasMore != tt.wantHasMore || page.TotalCount != 120 {
				t.Errorf("has_more %v total_count %d, want %v 120", page.HasMore, page.TotalCount, tt.wantHasMore)
			}
		})
	}
}

func TestV4ListTeams(t *testing.T) {
	s := newV4Server(t)
	r := expect(t, s, bearer, http.MethodGet, "/api/v4/teams", "", http.StatusOK)
	if got, want := string(r.body), `{"data":[],"has_more":false,"total_count":0}`; got != want {
		t.Errorf("empty account: body %s, want %s", got, want)
	}
	ann := mustAddAccountUser(t, s, person("Ann", "ann@example.com"))
	var ids []string
	for i := range 3 {
		ids = append(ids, mustAddTeamV4(t, s, pagertree.TeamV4{Name: fmt.Sprint("team ", i), MemberAccountUserIDs: []string{ann.ID}, AdminAccountUserIDs: []string{ann.ID}}).ID)
	}
	var page pagertree.List[pagertree.TeamV4]
	decodeStrict(t, expect(t, s, bearer, http.MethodGet, "/api/v4/teams?limit=2&page=2", "", http.StatusOK), &page)
	if len(page.Data) != 1 || page.Data[0].ID != ids[2] || page.HasMore || page.TotalCount != 3 {
		t.Errorf("page 2 of 2: %+v, want the third team of 3", page)
	}
}

func TestV4ListBadBounds(t *testing.T) {
	s := newV4Server(t)
	tests := []struct {
		query, wantMessage string
	}{
		{"limit=0", "'limit' must be an integer between 1 and 100"},
		{"limit=101", "'limit' must be an integer between 1 and 100"},
		{"offset=-1", "'offset' must be an integer of at least 0"},
		{"page=0", "'page' must be an integer of at least 1"},
		{"offset=0&page=1", "give either 'offset' or 'page', not both"},
	}
	for _, tt := range tests {
		for _, collection := range []string{"/api/v4/account_users", "/api/v4/teams"} {
			t.Run(collection+"?"+tt.query, func(t *testing.T) {
				r := expect(t, s, bearer, http.MethodGet, collection+"?"+tt.query, "", http.StatusBadRequest)
				if got := errorMessageV4(t, r); got != tt.wantMessage {
					t.Errorf("message %q, want %q", got, tt.wantMessage)
				}
			})
		}
	}
}
