package oktatest_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

func TestRequests(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	get(t, s.URL()+"/api/v1/groups", ssws())
	get(t, s.URL()+"/api/v1/groups/"+groupID(0)+"/users", ssws())
	get(t, s.URL()+"/api/v1/groups/00gNOPE/users", ssws())
	get(t, s.URL()+"/api/v1/users", "")
	get(t, s.URL()+"/api/v1/apps", ssws())
	postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), "okta.users.read"))
	postForm(t, s.URL()+"/api/v1/groups", nil)

	want := map[string]int{
		"GET /api/v1/groups":            1,
		"GET /api/v1/groups/{id}/users": 2,
		"GET /api/v1/users":             1,
		"GET /api/v1/apps":              1,
		"POST /oauth2/v1/token":         1,
		"POST /api/v1/groups":           1,
	}
	if got := s.Requests(); !maps.Equal(got, want) {
		t.Errorf("Requests %v", got)
	}
	if s.TotalRequests() != 7 || s.TokenRequests() != 1 {
		t.Errorf("total %d, token %d", s.TotalRequests(), s.TokenRequests())
	}
}

func TestFault(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.RateLimit = 1 })
	var mu sync.Mutex
	var seen []string
	s.SetFault(func(r *http.Request, n int) (int, http.Header, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		// A fault may look at the server: it is not called under its lock.
		seen = append(seen, fmt.Sprintf("%d %s %d", n, r.URL.Path, s.TotalRequests()))
		switch {
		case n == 1:
			return http.StatusServiceUnavailable, http.Header{"Retry-After": {"7"}}, "maintenance", true
		case r.URL.Path == "/oauth2/v1/token":
			return http.StatusBadGateway, nil, "", true
		}
		return 0, nil, "", false
	})

	// The faulted request needs no credentials and uses no quota.
	r := get(t, s.URL()+"/api/v1/groups", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "7" || string(r.body) != "maintenance" ||
		r.header.Get("X-Rate-Limit-Limit") != "" {
		t.Errorf("faulted: %d %v %q", r.status, r.header, r.body)
	}
	wantRate(t, get(t, s.URL()+"/api/v1/groups", ssws()), 200, 1, 0, c.Now().Truncate(time.Second).Add(61*time.Second))
	if r := get(t, s.URL()+"/api/v1/groups", ssws()); r.status != http.StatusTooManyRequests {
		t.Errorf("third request: %d", r.status)
	}
	if r := postForm(t, s.TokenURL(), url.Values{}); r.status != http.StatusBadGateway {
		t.Errorf("token endpoint: %d", r.status)
	}

	s.SetFault(nil)
	if r := get(t, s.URL()+"/api/v1/users", ssws()); r.status != http.StatusOK {
		t.Errorf("after SetFault(nil): %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"1 /api/v1/groups 1", "2 /api/v1/groups 2", "3 /api/v1/groups 3", "4 /oauth2/v1/token 4"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("fault saw %q", seen)
	}
	if n := s.Requests()["GET /api/v1/groups"]; n != 3 || s.TokenRequests() != 1 || s.TotalRequests() != 5 {
		t.Errorf("requests %v, total %d", s.Requests(), s.TotalRequests())
	}
}

// Run with -race: every method is safe for concurrent use.
func TestConcurrentUse(t *testing.T) {
	org := bigOrg(30, 10, func(i int) []string { return idRange(userID, i, i+10) })
	s, c := newServer(t, org, func(o *oktatest.Options) { o.RateLimit = 10_000 })
	token := accessToken(t, s, c, "okta.groups.read okta.users.read")
	const workers, rounds = 8, 10
	forms := make([]url.Values, workers)
	for i := range forms {
		forms[i] = tokenForm(t, s, c.Now(), "okta.groups.read")
	}

	fetch := func(method, u, auth string, body io.Reader) int {
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Error(err)
			return 0
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				want, got := http.StatusOK, 0
				switch (w + i) % 5 {
				case 0:
					got = fetch("GET", s.URL()+"/api/v1/groups?limit=3", ssws(), nil)
				case 1:
					got = fetch("GET", s.URL()+"/api/v1/groups/"+groupID(w)+"/users?limit=4", ssws(), nil)
				case 2:
					got = fetch("GET", s.URL()+"/api/v1/users?limit=5", bearer(token), nil)
					want = got // ExpireTokens may have run
				case 3:
					s.SetOrg(org)
					_ = s.Requests()
					got = fetch("GET", s.URL()+"/api/v1/groups?search="+url.QueryEscape(`profile.name sw "Group"`), ssws(), nil)
				case 4:
					if i == 4 {
						got = fetch("POST", s.TokenURL(), "", strings.NewReader(forms[w].Encode()))
					} else {
						s.ExpireTokens()
						got = fetch("GET", s.URL()+"/api/v1/users", ssws(), nil)
					}
				}
				if got != want {
					t.Errorf("worker %d round %d: status %d", w, i, got)
				}
			}
		})
	}
	wg.Wait()
	if n := s.TotalRequests(); n != 1+workers*rounds {
		t.Errorf("TotalRequests %d", n)
	}
}

func TestBadOrg(t *testing.T) {
	u := func(id, status string) oktatest.User { return oktatest.User{ID: id, Status: status} }
	for _, tc := range []struct {
		org  oktatest.Org
		want string
	}{
		{oktatest.Org{Users: []oktatest.User{u("", "")}}, "a user has no ID"},
		{oktatest.Org{Users: []oktatest.User{u("00u1", ""), u("00u1", "")}}, `user ID "00u1" repeated`},
		{oktatest.Org{Users: []oktatest.User{u("00u1", "Active")}}, `user "00u1" has unknown status "Active"`},
		{oktatest.Org{Groups: []oktatest.Group{{}}}, "a group has no ID"},
		{oktatest.Org{Groups: []oktatest.Group{{ID: "00g1"}, {ID: "00g1"}}}, `group ID "00g1" repeated`},
		{oktatest.Org{Groups: []oktatest.Group{{ID: "00g1", Type: "okta_group"}}}, `group "00g1" has unknown type "okta_group"`},
		{oktatest.Org{Groups: []oktatest.Group{{ID: "00g1", Members: []string{"00u9"}}}}, `member "00u9", who is not a user`},
		{oktatest.Org{Users: []oktatest.User{u("00u1", "")}, Groups: []oktatest.Group{{ID: "00g1", Members: []string{"00u1", "00u1"}}}}, `lists member "00u1" twice`},
	} {
		func() {
			defer func() {
				if r := recover(); !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("panic %v, want %q", r, tc.want)
				}
			}()
			s, _ := newServer(t, smallOrg, nil)
			s.SetOrg(tc.org)
		}()
	}
}
