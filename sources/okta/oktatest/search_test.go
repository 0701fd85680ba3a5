package oktatest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

var searchOrg = oktatest.Org{Groups: []oktatest.Group{
	{ID: "00g1", Name: "Engineering Managers", Description: "Builds things"},
	{ID: "00g2", Name: "Engineering"},
	{ID: "00g3", Name: "eng-oncall", Description: "PagerDuty rotation", Type: "APP_GROUP"},
	{ID: "00g4", Name: "Everyone", Description: "All users", Type: "BUILT_IN"},
	{ID: "00g5", Name: "Sales", Description: "Sells things"},
}}

func TestGroupSearch(t *testing.T) {
	s, _ := newServer(t, searchOrg, nil)
	for _, tc := range []struct {
		search string
		want   []string
	}{
		{`profile.name sw "Eng"`, []string{"00g1", "00g2", "00g3"}},
		{`profile.name eq "engineering"`, []string{"00g2"}},
		{`profile.name EQ "SALES"`, []string{"00g5"}},
		{`type eq "OKTA_GROUP"`, []string{"00g1", "00g2", "00g5"}},
		{`type eq "APP_GROUP" or type eq "BUILT_IN"`, []string{"00g3", "00g4"}},
		{`profile.name sw "Eng" and type eq "OKTA_GROUP"`, []string{"00g1", "00g2"}},
		{`profile.name sw "Eng" AND type eq "OKTA_GROUP" Or id eq "00g5"`, []string{"00g1", "00g2", "00g5"}},
		{`type eq "BUILT_IN" or profile.name sw "Eng" and type eq "APP_GROUP"`, []string{"00g3", "00g4"}},
		{`(type eq "BUILT_IN" or profile.name sw "Eng") and type eq "APP_GROUP"`, []string{"00g3"}},
		{`((type eq "BUILT_IN"))`, []string{"00g4"}},
		{`profile.description co "THINGS"`, []string{"00g1", "00g5"}},
		{`profile.description pr`, []string{"00g1", "00g3", "00g4", "00g5"}},
		{`id eq "00g4"`, []string{"00g4"}},
		{`profile.name gt "s"`, []string{"00g5"}},
		{`profile.name le "engineering"`, []string{"00g2", "00g3"}}, // "-" sorts before "i"
		{`lastUpdated gt "2020-01-01T00:00:00.000Z"`, []string{"00g1", "00g2", "00g3", "00g4", "00g5"}},
		{`lastMembershipUpdated lt "2020-01-01T00:00:00.000Z"`, nil},
		{`created eq "2024-01-02T03:04:05Z"`, []string{"00g1", "00g2", "00g3", "00g4", "00g5"}},
		{`profile.samAccountName sw "Eng"`, nil},
		{`source.id eq "0oa2v0el0gP90aqjJ0g7"`, nil},
		{`profile.name eq "Say \"hi\" \u00e9"`, nil},
	} {
		got := ids(t, get(t, s.URL()+"/api/v1/groups?search="+url.QueryEscape(tc.search), ssws()))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.search, got, tc.want)
		}
	}
}

func TestGroupSearchErrors(t *testing.T) {
	s, _ := newServer(t, searchOrg, nil)
	for _, search := range []string{
		``,
		`profile.name`,
		`profile.name eq`,
		`profile.name eq Eng`,
		`profile.name ne "Eng"`,
		`id co "00g"`,
		`name eq "Eng"`,
		`not type eq "APP_GROUP"`,
		`(type eq "APP_GROUP"`,
		`type eq "APP_GROUP")`,
		`type eq "APP_GROUP" and`,
		`type eq "APP_GROUP" xor type eq "BUILT_IN"`,
		`profile.name eq "unterminated`,
		`profile.name eq "bad \x escape"`,
		`lastUpdated gt "yesterday"`,
		`lastUpdated sw "2024"`,
	} {
		e := wantError(t, get(t, s.URL()+"/api/v1/groups?search="+url.QueryEscape(search), ssws()), http.StatusBadRequest, "E0000031")
		if e.ErrorSummary != "Invalid search criteria." || len(e.ErrorCauses) != 1 {
			t.Errorf("%s: %+v", search, e)
		}
	}
}

// filter is narrower than search: id and type with eq, timestamps, and
// exact values.
func TestGroupFilter(t *testing.T) {
	s, _ := newServer(t, searchOrg, nil)
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`type eq "APP_GROUP"`, []string{"00g3"}},
		{`type eq "app_group"`, nil},
		{`type eq "OKTA_GROUP" and (lastUpdated lt "2015-11-11T00:00:00.000Z" or lastMembershipUpdated gt "2015-11-11T00:00:00.000Z")`, []string{"00g1", "00g2", "00g5"}},
	} {
		got := ids(t, get(t, s.URL()+"/api/v1/groups?filter="+url.QueryEscape(tc.filter), ssws()))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.filter, got, tc.want)
		}
	}
	for _, filter := range []string{`profile.name eq "Sales"`, `id sw "00g"`, `created gt "2015-11-11T00:00:00.000Z"`} {
		wantError(t, get(t, s.URL()+"/api/v1/groups?filter="+url.QueryEscape(filter), ssws()), http.StatusBadRequest, "E0000031")
	}
	// search and filter together must both hold.
	q := url.Values{"search": {`profile.name sw "eng"`}, "filter": {`type eq "APP_GROUP"`}}
	if got := ids(t, get(t, s.URL()+"/api/v1/groups?"+q.Encode(), ssws())); !slices.Equal(got, []string{"00g3"}) {
		t.Errorf("search and filter: %v", got)
	}
}

// q is a name prefix query that never pages; exact matches come first.
func TestGroupQuery(t *testing.T) {
	s, _ := newServer(t, searchOrg, nil)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"q=engineering", []string{"00g2", "00g1"}},
		{"q=ENG", []string{"00g1", "00g2", "00g3"}},
		{"q=eng&limit=2", []string{"00g1", "00g2"}},
		{"q=eng&limit=2&after=whatever", []string{"00g1", "00g2"}},
		{"q=nobody", nil},
		{"q=e&search=" + url.QueryEscape(`type eq "APP_GROUP"`), []string{"00g3"}},
	} {
		r := get(t, s.URL()+"/api/v1/groups?"+tc.query, ssws())
		if got := ids(t, r); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
		if _, next := links(t, r); next != "" {
			t.Errorf("%s: next link %q", tc.query, next)
		}
	}
}

func TestGroupQueryDefaultLimit(t *testing.T) {
	org := oktatest.Org{}
	for i := range 301 {
		org.Groups = append(org.Groups, oktatest.Group{ID: fmt.Sprintf("00g%03d", i), Name: fmt.Sprint("Team ", i)})
	}
	s, _ := newServer(t, org, nil)
	r := get(t, s.URL()+"/api/v1/groups?q=team", ssws())
	if n := len(ids(t, r)); n != 300 {
		t.Errorf("%d groups, want 300", n)
	}
	if _, next := links(t, r); next != "" {
		t.Errorf("next link %q", next)
	}
}
