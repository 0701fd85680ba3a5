package pagertreetest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

func TestListUsersPages(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	var ids []string
	for i := range 25 {
		ids = append(ids, mustAddUser(t, s, pagertree.User{Name: fmt.Sprint("user ", i), Email: fmt.Sprintf("u%02d@example.com", i)}).ID)
	}
	tests := []struct {
		query       string
		wantFrom    int // index of the first user answered
		wantTo      int // index after the last
		wantHasMore bool
	}{
		{"", 0, 10, true}, // default limit 10
		{"?limit=10&page=1", 0, 10, true},
		{"?limit=10&page=2", 10, 20, true},
		{"?limit=10&page=3", 20, 25, false},
		{"?limit=10&page=4", 25, 25, false},
		{"?page=2", 10, 20, true},
		{"?limit=10&offset=0", 0, 10, true},
		{"?limit=10&offset=10", 10, 20, true},
		{"?limit=10&offset=15", 15, 25, false},
		{"?limit=10&offset=20", 20, 25, false},
		{"?limit=10&offset=24", 24, 25, false},
		{"?limit=10&offset=25", 25, 25, false},
		{"?limit=10&offset=30", 25, 25, false},
		{"?offset=14", 14, 24, true},
		{"?limit=1", 0, 1, true},
		{"?limit=24", 0, 24, true},
		{"?limit=25", 0, 25, false},
		{"?limit=26", 0, 25, false},
		{"?limit=100", 0, 25, false},
		{"?limit=100&page=1000000000000000000", 25, 25, false}, // no overflow
		{"?limit=5&page=5", 20, 25, false},
		{"?limit=5&page=6", 25, 25, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := expect(t, s, token, http.MethodGet, "/user"+tt.query, "", http.StatusOK)
			var page pagertree.List[pagertree.User]
			decodeStrict(t, r, &page)
			var got []string
			for _, u := range page.Data {
				got = append(got, u.ID)
			}
			want := ids[tt.wantFrom:tt.wantTo]
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("ids %v, want %v", got, want)
			}
			if page.HasMore != tt.wantHasMore || page.TotalCount != 25 {
				t.Errorf("has_more %v total_count %d, want %v 25", page.HasMore, page.TotalCount, tt.wantHasMore)
			}
			if page.Data == nil || (len(want) == 0 && !strings.Contains(string(r.body), `"data":[]`)) {
				t.Errorf("empty page must carry data: []; got %s", r.body)
			}
		})
	}
}

func TestListTeamsPages(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	var ids []string
	for i := range 3 {
		ids = append(ids, mustAddTeam(t, s, pagertree.Team{Name: fmt.Sprint("team ", i)}).ID)
	}
	tests := []struct {
		query       string
		wantIDs     []string
		wantHasMore bool
	}{
		{"", ids, false},
		{"?limit=2", ids[:2], true},
		{"?limit=2&page=2", ids[2:], false},
		{"?limit=2&offset=1", ids[1:], false},
		{"?offset=3", []string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var page pagertree.List[pagertree.Team]
			decodeStrict(t, expect(t, s, token, http.MethodGet, "/team"+tt.query, "", http.StatusOK), &page)
			got := []string{}
			for _, tm := range page.Data {
				got = append(got, tm.ID)
			}
			if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") || page.HasMore != tt.wantHasMore || page.TotalCount != 3 {
				t.Errorf("got ids %v has_more %v total %d, want %v %v 3", got, page.HasMore, page.TotalCount, tt.wantIDs, tt.wantHasMore)
			}
		})
	}
}

func TestListEmptyAccount(t *testing.T) {
	s := newTestServer(t)
	r := expect(t, s, login(t, s), http.MethodGet, "/user", "", http.StatusOK)
	if got, want := string(r.body), `{"data":[],"has_more":false,"total_count":0}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func TestListBadBounds(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	const (
		limitMessage  = "'limit' must be an integer between 1 and 100"
		offsetMessage = "'offset' must be an integer of at least 0"
		pageMessage   = "'page' must be an integer of at least 1"
	)
	tests := []struct {
		query, wantMessage string
	}{
		{"limit=0", limitMessage},
		{"limit=101", limitMessage},
		{"limit=-1", limitMessage},
		{"limit=ten", limitMessage},
		{"limit=", limitMessage},
		{"limit=1.5", limitMessage},
		{"offset=-1", offsetMessage},
		{"offset=x", offsetMessage},
		{"page=0", pageMessage},
		{"page=-2", pageMessage},
		{"page=first", pageMessage},
		{"offset=0&page=1", "give either 'offset' or 'page', not both"},
	}
	for _, tt := range tests {
		for _, collection := range []string{"/user", "/team"} {
			t.Run(collection+"?"+tt.query, func(t *testing.T) {
				r := expect(t, s, token, http.MethodGet, collection+"?"+tt.query, "", http.StatusBadRequest)
				if got := errorMessage(t, r); got != tt.wantMessage {
					t.Errorf("message %q, want %q", got, tt.wantMessage)
				}
			})
		}
	}
}
