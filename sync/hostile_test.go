package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/sync"
)

// valve is how many requests a lying PagerTree answers before it refuses
// every other one (400): a client that would never stop fails its test
// instead of hanging it.
const valve = 2000

// lyingPagerTree sits in front of the emulator and lets lie rewrite the
// answer to a request (status and body as the emulator gave them). It
// records every request ("METHOD /path body"), as the recorder does.
type lyingPagerTree struct {
	acct account
	lie  func(r *http.Request, status int, body []byte) (int, []byte)

	mu       gosync.Mutex
	requests []string
}

// isLogin reports whether path is v3's login, which no lie touches and
// which is no write (v4 has no login).
func (l *lyingPagerTree) isLogin(path string) bool {
	return !l.acct.v4() && path == l.acct.loginRoute()
}

func (l *lyingPagerTree) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	l.mu.Lock()
	l.requests = append(l.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	shut := len(l.requests) > valve
	lie := l.lie
	l.mu.Unlock()
	if shut {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(l.acct.errorBody("the test's valve is shut"))
		return
	}
	rec := httptest.NewRecorder()
	l.acct.emu.ServeHTTP(rec, r)
	status, answer := rec.Code, rec.Body.Bytes()
	if lie != nil && !l.isLogin(r.URL.Path) {
		status, answer = lie(r, status, answer)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// sent is the recorded requests of method, "METHOD /path body".
func (l *lyingPagerTree) sent(method string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.requests {
		if strings.HasPrefix(r, method+" ") {
			out = append(out, r)
		}
	}
	return out
}

// writes is every recorded write, "METHOD /path" only.
func (l *lyingPagerTree) writes() []string {
	var out []string
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		for _, r := range l.sent(method) {
			if parts := strings.Fields(r); !l.isLogin(parts[1]) {
				out = append(out, parts[0]+" "+parts[1])
			}
		}
	}
	return out
}

func (l *lyingPagerTree) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = nil
}

// hostileRig is a file source and the emulator of one API version behind
// a lying PagerTree, with a real client and engine. lie may be set between
// runs. Unlike rig it preloads nothing on v3; on v4 it preloads the owner,
// an account admin, as every team's admin (pagertree.team_admins): a v4
// team needs one.
type hostileRig struct {
	account
	t      *testing.T
	dir    string
	pt     *lyingPagerTree
	engine *sync.Engine
}

func newHostileRig(t *testing.T, api string, dir directory, pol sync.Policy) *hostileRig {
	t.Helper()
	acct := newAccount(api)
	pt := &lyingPagerTree{acct: acct}
	srv := httptest.NewServer(pt)
	t.Cleanup(srv.Close)
	r := &hostileRig{account: acct, t: t, dir: filepath.Join(t.TempDir(), "corp.yaml"), pt: pt}
	if acct.v4() {
		acct.addUser(t, userView{Name: "Owner", Email: ownerEmail, Admin: true})
	}
	r.write(dir)
	r.engine = newFileEngine(t, acct, r.dir, srv.URL, acct.policy(pol), nil)
	return r
}

// write makes dir the file source's directory.
func (r *hostileRig) write(dir directory) {
	r.t.Helper()
	writeDirectory(r.t, r.dir, dir)
}

// setLie changes the lie for the requests that follow.
func (r *hostileRig) setLie(lie func(req *http.Request, status int, body []byte) (int, []byte)) {
	r.pt.mu.Lock()
	defer r.pt.mu.Unlock()
	r.pt.lie = lie
}

func (r *hostileRig) run() (sync.Report, error) {
	r.t.Helper()
	return r.engine.RunOnce(context.Background(), sync.RunOptions{})
}

// userPage rewrites an answer to the user listing (GET /user on v3, GET
// /api/v4/account_users on v4) with edit; the page's users are left as
// the version's JSON.
func (a account) userPage(r *http.Request, status int, body []byte, edit func(offset int, page *pagertree.List[json.RawMessage])) (int, []byte) {
	if r.Method != http.MethodGet || r.URL.Path != a.userRoute() || status != http.StatusOK {
		return status, body
	}
	var page pagertree.List[json.RawMessage]
	if err := json.Unmarshal(body, &page); err != nil {
		panic(err)
	}
	var offset int
	_, _ = fmt.Sscan(r.URL.Query().Get("offset"), &offset)
	edit(offset, &page)
	out, err := json.Marshal(page)
	if err != nil {
		panic(err)
	}
	return status, out
}

// userJSON is each of users as the version's listing carries it.
func userJSON(users []userView) []json.RawMessage {
	out := make([]json.RawMessage, len(users))
	for i, u := range users {
		data, err := json.Marshal(u.raw)
		if err != nil {
			panic(err)
		}
		out[i] = data
	}
	return out
}

// withStaff is corp plus n people in no synced group, so that the account
// takes several pages.
func withStaff(n int) directory {
	dir := corp()
	for i := range n {
		dir.Users = append(dir.Users, person{ID: fmt.Sprintf("s%03d", i), Email: fmt.Sprintf("staff%03d@example.com", i), Name: "Staff"})
	}
	return dir
}

// TestShortPagerTreeListingFailsTheRunBeforeAnyWrite: after a first sync of
// 254 users, every user page after the first comes back empty with
// has_more false. The run fails naming both counts and writes nothing;
// before, it planned against 100 users and sent 154 creates.
func TestShortPagerTreeListingFailsTheRunBeforeAnyWrite(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		pol := defaultPolicy()
		pol.Scope = config.ScopeAll
		r := newHostileRig(t, api, withStaff(250), pol)
		if _, err := r.run(); err != nil {
			t.Fatalf("first run: %v", err)
		}
		r.pt.reset()
		r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
			return r.userPage(req, status, body, func(offset int, page *pagertree.List[json.RawMessage]) {
				if offset > 0 {
					page.Data, page.HasMore = []json.RawMessage{}, false
				}
			})
		})
		_, err := r.run()
		total := 254
		if r.v4() {
			total++ // the owner, preloaded on v4 only
		}
		want := fmt.Sprintf("pagertree: listing %s: read 100 of total_count %d twice; PagerTree's listing is incomplete, so it is not used (try again later)", r.userRoute(), total)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("run error %v, want one saying %q", err, want)
		}
		if w := r.pt.writes(); len(w) != 0 {
			t.Fatalf("writes %v, want none", w)
		}
	})
}

// TestRepeatingPagerTreePagesFailTheRunBeforeAnyWrite: PagerTree ignores
// the offset and answers every user page with the first one. The run
// fails at the second page, after a bounded number of requests, and
// writes nothing.
func TestRepeatingPagerTreePagesFailTheRunBeforeAnyWrite(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		pol := defaultPolicy()
		pol.Scope = config.ScopeAll
		r := newHostileRig(t, api, withStaff(250), pol)
		if _, err := r.run(); err != nil {
			t.Fatalf("first run: %v", err)
		}
		first := userJSON(r.users()[:100])
		r.pt.reset()
		r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
			return r.userPage(req, status, body, func(_ int, page *pagertree.List[json.RawMessage]) {
				page.Data, page.HasMore = first, true
			})
		})
		_, err := r.run()
		want := "pagertree: listing " + r.userRoute() + ": the page at offset 100 repeats the previous page's 100 ids; PagerTree ignores the offset, so the listing is not used"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("run error %v, want one saying %q", err, want)
		}
		if w := r.pt.writes(); len(w) != 0 {
			t.Fatalf("writes %v, want none", w)
		}
		// Page 1, the repeat, and at most 4 × Concurrency (the default 4)
		// prefetched ahead of it.
		if n := len(r.pt.sent("GET")); n > 2+16+1 { // +1: the team listing
			t.Fatalf("%d GET requests, want at most 19", n)
		}
	})
}

// TestCaseTwinInPagerTreeLeavesItsTeamsAlone: the user listing holds a
// second bob, "BOB@Example.com ". Every team bob is in or wanted in, and
// both bobs, are left alone and reported; the rest of the plan is applied.
// Before, one bob silently won and the teams were rewritten.
func TestCaseTwinInPagerTreeLeavesItsTeamsAlone(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newHostileRig(t, api, corp(), defaultPolicy())
		if _, err := r.run(); err != nil {
			t.Fatalf("first run: %v", err)
		}
		before := r.teams()
		bob, ann := r.user(t, "bob@example.com"), r.user(t, "ann@example.com")
		var twin any = pagertree.User{ID: "usr_twin", Name: "Impostor", Email: "BOB@Example.com "}
		if r.v4() {
			// Of this account: objects of another account would fail the
			// listing as a whole.
			twin = pagertree.AccountUser{Common: pagertree.Common{ID: "usr_twin", AccountID: r.emu.AccountID()},
				User: pagertree.Person{ID: "usr_twin_person", Name: "Impostor", Emails: []pagertree.Email{{ID: "eml_twin", Email: "BOB@Example.com ", Primary: true}}}}
		}
		twinJSON := userJSON([]userView{{raw: twin}})
		r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
			return r.userPage(req, status, body, func(_ int, page *pagertree.List[json.RawMessage]) {
				page.TotalCount++
				if !page.HasMore {
					page.Data = append(page.Data, twinJSON...)
				}
			})
		})
		// cat joins payments, bob and ann are renamed: the payments and db
		// writes and bob's rename would involve the twin; ann's would not.
		dir := corp()
		dir.Groups[0].Members = append(dir.Groups[0].Members, "p3")
		dir.Users[0].Name = "Ann Archer-Lee"
		dir.Users[1].Name = "Robert Baker"
		r.write(dir)
		r.pt.reset()

		rep, err := r.run()
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if w := r.pt.writes(); !reflect.DeepEqual(w, []string{"PUT " + r.userRoute() + "/" + ann.ID}) {
			t.Fatalf("writes %v, want only ann's rename", w)
		}
		ids := []string{bob.ID, "usr_twin"}
		slices.Sort(ids)
		reason := "PagerTree users " + strings.Join(ids, ", ") + " have the email bob@example.com (up to case and spaces); ptsync cannot tell which one is meant, so this team and its members are left alone: delete or correct all but one"
		userReason := "PagerTree users " + strings.Join(ids, ", ") + " have this email (up to case and spaces); ptsync cannot tell which one is meant, so none is updated or deleted: delete or correct all but one"
		want := []sync.Conflict{{Team: "db", Reason: reason}, {Team: "payments", Reason: reason}, {User: "bob@example.com", Reason: userReason}}
		if !reflect.DeepEqual(rep.Plan.Conflicts, want) {
			t.Fatalf("conflicts %+v, want %+v", rep.Plan.Conflicts, want)
		}
		if after := r.teams(); !reflect.DeepEqual(after, before) {
			t.Fatalf("teams changed:\n%+v\nwere\n%+v", after, before)
		}
	})
}

// TestCreateAnswerWithoutIDFailsThatChange: PagerTree creates bob but
// answers without his id. His create fails saying so, and the payments
// team is created without him, never with an empty id; the next run,
// with honest answers, finds bob and adds him.
func TestCreateAnswerWithoutIDFailsThatChange(t *testing.T) {
	forEachAPI(t, func(t *testing.T, api string) {
		r := newHostileRig(t, api, corp(), defaultPolicy())
		r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
			if req.Method != http.MethodPost || req.URL.Path != r.userRoute() || !bytes.Contains(body, []byte(`"bob@example.com"`)) {
				return status, body
			}
			var u map[string]any
			if err := json.Unmarshal(body, &u); err != nil {
				panic(err)
			}
			delete(u, "id")
			out, _ := json.Marshal(u)
			return status, out
		})
		rep, err := r.run()
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		bobErr := "pagertree: POST " + r.userRoute() + " answered 201 without an id; the change is not counted as done (the next run reads PagerTree again)"
		failed := map[string]string{}
		for _, c := range rep.Result.Changes {
			if c.Outcome == sync.OutcomeFailed {
				failed[string(c.Kind)+" "+c.Name] = c.Error
			}
		}
		wantFailed := map[string]string{
			"user bob@example.com": bobErr,
			"team payments":        "partly applied: written without 1 member(s): bob@example.com (user create failed: " + bobErr + ")",
			"team db":              "partly applied: written without 1 member(s): bob@example.com (user create failed: " + bobErr + ")",
		}
		if !reflect.DeepEqual(failed, wantFailed) {
			t.Fatalf("failed changes %v, want %v", failed, wantFailed)
		}
		if n := len(r.pt.sent("POST " + r.userRoute())); n != 3 {
			t.Fatalf("%d user creates sent, want 3 (bob's not retried)", n)
		}
		for _, req := range r.pt.sent("POST " + r.teamRoute()) {
			if strings.Contains(req, `""`) {
				t.Fatalf("team create with an empty id: %s", req)
			}
		}

		r.setLie(nil)
		r.pt.reset()
		if rep, err = r.run(); err != nil || rep.Result.Counts != (sync.Counts{Applied: 2}) {
			t.Fatalf("second run: %v, counts %+v; want bob added to both teams", err, rep.Result.Counts)
		}
		updateTeam := "PUT " + r.teamRoute() + "/"
		if w := r.pt.writes(); len(w) != 2 || !strings.HasPrefix(w[0], updateTeam) || !strings.HasPrefix(w[1], updateTeam) {
			t.Fatalf("second run writes %v, want two team updates", w)
		}
	})
}
