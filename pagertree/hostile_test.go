package pagertree_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

// valve is how many requests a hostile server answers before it refuses
// every other one (400): a client that would never stop fails its test
// instead of hanging it.
const valve = 1000

// hostile is a PagerTree on 127.0.0.1 that lies: it logs in anyone and
// answers every other request with what answer says. It counts requests
// by "METHOD /path" and "METHOD /path?query".
type hostile struct {
	*httptest.Server
	mu    sync.Mutex
	count map[string]int
	total int
}

func newHostile(t *testing.T, answer func(r *http.Request, body []byte) (int, any)) *hostile {
	t.Helper()
	h := &hostile{count: map[string]int{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/public/login" {
			_, _ = w.Write([]byte(`{"token":"hostile-token"}`))
			return
		}
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.total++
		over := h.total > valve
		h.count[r.Method+" "+r.URL.Path]++
		h.count[r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery]++
		h.mu.Unlock()
		if over {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"errors":[{"message":"the test's valve is shut"}]}`))
			return
		}
		status, v := answer(r, body)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(h.Close)
	return h
}

// requests is how many requests matched key ("GET /user",
// "GET /user?limit=100&offset=0").
func (h *hostile) requests(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count[key]
}

// all is every request counted, by key.
func (h *hostile) all() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.count {
		if !strings.Contains(k, "?") {
			out[k] = v
		}
	}
	return out
}

func fakeUsers(from, to int) []pagertree.User {
	users := []pagertree.User{}
	for i := from; i < to; i++ {
		users = append(users, pagertree.User{ID: fmt.Sprintf("usr_%04d", i), Name: "User", Email: fmt.Sprintf("user%04d@example.com", i)})
	}
	return users
}

func offset(r *http.Request) int {
	var n int
	_, _ = fmt.Sscan(r.URL.Query().Get("offset"), &n)
	return n
}

// TestShortListingIsReadAgainThenRefused: total_count says 759, but every
// page after the first comes back empty with has_more false. Listing reads
// the collection a second time, then fails naming both counts; a lookup
// (the iterator) fails the same way rather than say "not there".
func TestShortListingIsReadAgainThenRefused(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		if offset(r) == 0 {
			return http.StatusOK, pagertree.List[pagertree.User]{Data: fakeUsers(0, 100), HasMore: true, TotalCount: 759}
		}
		return http.StatusOK, pagertree.List[pagertree.User]{Data: []pagertree.User{}, HasMore: false, TotalCount: 759}
	})
	c := newClient(t, h.URL, func(cfg *pagertree.Config) { cfg.Concurrency = 2 })

	const want = "pagertree: listing /user: read 100 of total_count 759 twice; PagerTree's listing is incomplete, so it is not used (try again later)"
	users, err := c.ListUsers(ctx(t))
	if err == nil || err.Error() != want || users != nil {
		t.Fatalf("ListUsers = %d users, %v; want none and %q", len(users), err, want)
	}
	if n := h.requests("GET /user?limit=100&offset=0"); n != 2 {
		t.Fatalf("the first page was read %d times, want 2 (two readings)", n)
	}
	// Each reading asks for at most the 8 pages total_count plans.
	if n := h.requests("GET /user"); n > 2*8 {
		t.Fatalf("GET /user sent %d times, want at most 16", n)
	}

	var yielded int
	var last error
	for _, err := range c.Users(ctx(t)) {
		if err != nil {
			last = err
			break
		}
		yielded++
	}
	if last == nil || last.Error() != want || yielded != 100 {
		t.Fatalf("Users yielded %d users and %v; want 100, then %q", yielded, last, want)
	}
}

// TestListingReadsAgainWhenUsersAreDeletedMeanwhile: 10 users are deleted
// once the first page is read, so 10 others slip to an earlier page
// unseen. The first reading is short and the second is taken: every user
// still there is listed, and none that is gone.
func TestListingReadsAgainWhenUsersAreDeletedMeanwhile(t *testing.T) {
	s := newEmulator(t)
	users := addUsers(t, s, 250)
	admin := newClient(t, s.URL(), nil) // someone else, deleting
	rec := newRecorder()
	var shrink sync.Once
	rec.after = func(r *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if r.URL.Path == "/user" && r.URL.Query().Get("offset") == "0" {
			shrink.Do(func() {
				for _, u := range users[:10] {
					if err := admin.DeleteUser(ctx(t), u.ID); err != nil {
						t.Errorf("DeleteUser: %v", err)
					}
				}
			})
		}
		return resp, err
	}
	c := newClient(t, s.URL(), func(cfg *pagertree.Config) { cfg.HTTPClient = rec.client() })

	got, err := c.ListUsers(ctx(t))
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if want := ids(users[10:], userID); !slices.Equal(ids(got, userID), want) {
		t.Fatalf("listed %d users, not the %d left, in order", len(got), len(want))
	}
	if n := s.Stats().Requests["GET /user"]; n != 6 {
		t.Fatalf("GET /user sent %d times, want 6 (two readings of 3 pages)", n)
	}
}

// TestRepeatingPagesEndTheListing: a server that ignores the offset and
// answers every page with the same 100 users and has_more true. The
// listing ends at the second page with an error naming the collection and
// the offset, after a bounded number of requests.
func TestRepeatingPagesEndTheListing(t *testing.T) {
	const concurrency = 2
	tests := []struct {
		name        string
		total       int
		maxRequests int
	}{
		// ceil((100+slack)/100) pages would be allowed; the repeat stops it at 2.
		{name: "total_count of one page", total: 100, maxRequests: 2},
		// The first page, the repeated one, and at most 4 × Concurrency
		// prefetched ahead of it.
		{name: "total_count of a million", total: 1_000_000, maxRequests: 2 + 4*concurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostile(t, func(*http.Request, []byte) (int, any) {
				return http.StatusOK, pagertree.List[pagertree.User]{Data: fakeUsers(0, 100), HasMore: true, TotalCount: tt.total}
			})
			c := newClient(t, h.URL, func(cfg *pagertree.Config) { cfg.Concurrency = concurrency })
			users, err := c.ListUsers(ctx(t))
			const want = "pagertree: listing /user: the page at offset 100 repeats the previous page's 100 ids; PagerTree ignores the offset, so the listing is not used"
			if err == nil || err.Error() != want || users != nil {
				t.Fatalf("ListUsers = %d users, %v; want none and %q", len(users), err, want)
			}
			n := h.requests("GET /user")
			if n < 2 || n > tt.maxRequests {
				t.Fatalf("GET /user sent %d times, want 2 to %d", n, tt.maxRequests)
			}
			if tt.maxRequests == 2 && h.requests("GET /user?limit=100&offset=100") != 1 {
				t.Fatalf("requests %v; want offsets 0 and 100 once each", h.all())
			}
		})
	}
}

// TestEndlessPagesAreBounded: a server that makes up 100 new users for
// every page and always says has_more. A reading stops at
// ceil((total_count+slack)/100) pages (12 for total_count 150: slack 1000),
// the second reading too, and the listing fails.
func TestEndlessPagesAreBounded(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		o := offset(r)
		return http.StatusOK, pagertree.List[pagertree.User]{Data: fakeUsers(o, o+100), HasMore: true, TotalCount: 150}
	})
	c := newClient(t, h.URL, nil)
	users, err := c.ListUsers(ctx(t))
	const want = "pagertree: listing /user: read more than 1200 of total_count 150 twice; PagerTree's listing is incomplete, so it is not used (try again later)"
	if err == nil || err.Error() != want || users != nil {
		t.Fatalf("ListUsers = %d users, %v; want none and %q", len(users), err, want)
	}
	if n := h.requests("GET /user"); n != 2*12 {
		t.Fatalf("GET /user sent %d times, want 24 (12 pages, twice)", n)
	}
	if n := h.requests("GET /user?limit=100&offset=1200"); n != 0 {
		t.Fatalf("page 13 was requested %d times, want never", n)
	}
}

// TestWriteAnswersMustDescribeTheObjectWritten: a create or update whose
// 2xx answer has no id, another id, or another email or name than sent
// fails with an error saying so, after exactly the one write (a create is
// not retried: it may have gone through).
func TestWriteAnswersMustDescribeTheObjectWritten(t *testing.T) {
	const notDone = "; the change is not counted as done (the next run reads PagerTree again)"
	tests := []struct {
		name   string
		status int
		answer any
		call   func(c *pagertree.Client) error
		write  string
		want   string
	}{
		{
			name: "user create without an id", status: http.StatusCreated,
			answer: pagertree.User{Name: "Ann", Email: "ann@example.com"},
			call: func(c *pagertree.Client) error {
				_, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Ann", Email: "ann@example.com"})
				return err
			},
			write: "POST /user", want: "pagertree: POST /user answered 201 without an id" + notDone,
		},
		{
			name: "user create answered with another email", status: http.StatusCreated,
			answer: pagertree.User{ID: "usr_9", Name: "Ann", Email: "ann@example.org"},
			call: func(c *pagertree.Client) error {
				_, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Ann", Email: "ann@example.com"})
				return err
			},
			write: "POST /user", want: `pagertree: POST /user answered 201 with the email "ann@example.org", not "ann@example.com"` + notDone,
		},
		{
			name: "team create without an id", status: http.StatusOK,
			answer: pagertree.Team{Name: "Payments"},
			call: func(c *pagertree.Client) error {
				_, err := c.CreateTeam(ctx(t), pagertree.TeamInput{Name: "Payments"})
				return err
			},
			write: "POST /team", want: "pagertree: POST /team answered 200 without an id" + notDone,
		},
		{
			name: "team create answered with another name", status: http.StatusCreated,
			answer: pagertree.Team{ID: "tm_1", Name: "Billing"},
			call: func(c *pagertree.Client) error {
				_, err := c.CreateTeam(ctx(t), pagertree.TeamInput{Name: "Payments"})
				return err
			},
			write: "POST /team", want: `pagertree: POST /team answered 201 with the name "Billing", not "Payments"` + notDone,
		},
		{
			name: "user update without an id", status: http.StatusOK,
			answer: pagertree.User{Name: "Ann", Email: "ann@example.com"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateUser(ctx(t), "usr_1", pagertree.UserUpdate{Name: ptr("Ann")})
				return err
			},
			write: "PUT /user/usr_1", want: "pagertree: PUT /user/:id answered 200 without an id" + notDone,
		},
		{
			name: "user update answered for another user", status: http.StatusOK,
			answer: pagertree.User{ID: "usr_2", Name: "Ann", Email: "ann@example.com"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateUser(ctx(t), "usr_1", pagertree.UserUpdate{Name: ptr("Ann")})
				return err
			},
			write: "PUT /user/usr_1", want: `pagertree: PUT /user/:id answered 200 for id "usr_2", not "usr_1"` + notDone,
		},
		{
			name: "team update without an id", status: http.StatusOK,
			answer: pagertree.Team{Name: "Payments"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateTeam(ctx(t), "tm_1", pagertree.TeamUpdate{MemberUserIDs: &[]string{"usr_1"}})
				return err
			},
			write: "PUT /team/tm_1", want: "pagertree: PUT /team/:id answered 200 without an id" + notDone,
		},
		{
			name: "team rename answered with another name", status: http.StatusOK,
			answer: pagertree.Team{ID: "tm_1", Name: "Payments"},
			call: func(c *pagertree.Client) error {
				_, err := c.UpdateTeam(ctx(t), "tm_1", pagertree.TeamUpdate{Name: ptr("Billing")})
				return err
			},
			write: "PUT /team/tm_1", want: `pagertree: PUT /team/:id answered 200 with the name "Payments", not "Billing"` + notDone,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHostile(t, func(*http.Request, []byte) (int, any) { return tt.status, tt.answer })
			c := newClient(t, h.URL, nil)
			if err := tt.call(c); err == nil || err.Error() != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if got := h.all(); len(got) != 1 || got[tt.write] != 1 {
				t.Fatalf("requests %v; want only %s, once", got, tt.write)
			}
		})
	}
}

// TestWriteAnswersThatMatchAreTaken: the checks take an answer that
// describes the object written, the email compared as PagerTree matches
// it (case and surrounding spaces aside).
func TestWriteAnswersThatMatchAreTaken(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		if r.URL.Path == "/user" {
			return http.StatusCreated, pagertree.User{ID: "usr_9", Name: "Ann", Email: "Ann@Example.com"}
		}
		return http.StatusOK, pagertree.Team{ID: "tm_1", Name: "Billing"}
	})
	c := newClient(t, h.URL, nil)
	if u, err := c.CreateUser(ctx(t), pagertree.UserInput{Name: "Ann", Email: " ann@example.com"}); err != nil || u.ID != "usr_9" {
		t.Fatalf("CreateUser = %+v, %v; want usr_9", u, err)
	}
	if tm, err := c.UpdateTeam(ctx(t), "tm_1", pagertree.TeamUpdate{Name: ptr("Billing")}); err != nil || tm.ID != "tm_1" {
		t.Fatalf("UpdateTeam = %+v, %v; want tm_1", tm, err)
	}
}

// TestHugeTotalCountReservesLittle: a total_count of a billion must not
// make the client reserve room for a billion ids, or even a million,
// before a page has shown them.
func TestHugeTotalCountReservesLittle(t *testing.T) {
	h := newHostile(t, func(r *http.Request, _ []byte) (int, any) {
		if offset(r) == 0 {
			return http.StatusOK, pagertree.List[pagertree.User]{Data: fakeUsers(0, 100), HasMore: true, TotalCount: 1_000_000_000}
		}
		return http.StatusOK, pagertree.List[pagertree.User]{Data: []pagertree.User{}, HasMore: false, TotalCount: 1_000_000_000}
	})
	c := newClient(t, h.URL, func(cfg *pagertree.Config) { cfg.Concurrency = 1 })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := c.ListUsers(ctx(t)); err == nil {
		t.Fatal("a listing of 100 users said to be a billion was taken")
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("listing allocated %d MiB for 100 users", alloc>>20)
	}
}
