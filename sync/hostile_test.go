package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
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
	emu *pagertreetest.Server
	lie func(r *http.Request, status int, body []byte) (int, []byte)

	mu       gosync.Mutex
	requests []string
}

func (l *lyingPagerTree) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	l.mu.Lock()
	l.requests = append(l.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+string(body)))
	shut := len(l.requests) > valve
	l.mu.Unlock()
	if shut {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"errors":[{"message":"the test's valve is shut"}]}`))
		return
	}
	rec := httptest.NewRecorder()
	l.emu.ServeHTTP(rec, r)
	status, answer := rec.Code, rec.Body.Bytes()
	if l.lie != nil && r.URL.Path != "/public/login" {
		status, answer = l.lie(r, status, answer)
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
			if parts := strings.Fields(r); parts[1] != "/public/login" {
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

// hostileRig is a file source and the emulator behind a lying
// PagerTree, with a real client and engine. lie may be set between runs.
type hostileRig struct {
	t      *testing.T
	dir    string
	emu    *pagertreetest.Server
	pt     *lyingPagerTree
	engine *sync.Engine
}

func newHostileRig(t *testing.T, dir directory, pol sync.Policy) *hostileRig {
	t.Helper()
	emu := pagertreetest.New(pagertreetest.Options{})
	pt := &lyingPagerTree{emu: emu}
	srv := httptest.NewServer(pt)
	t.Cleanup(srv.Close)
	r := &hostileRig{t: t, dir: filepath.Join(t.TempDir(), "corp.yaml"), emu: emu, pt: pt}
	r.write(dir)
	r.engine = newFileEngine(t, r.dir, srv.URL, pol, nil)
	return r
}

// write makes dir the file source's directory.
func (r *hostileRig) write(dir directory) {
	r.t.Helper()
	data, err := yaml.Marshal(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.dir, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
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

// userPage rewrites a GET /user answer with edit.
func userPage(r *http.Request, status int, body []byte, edit func(offset int, page *pagertree.List[pagertree.User])) (int, []byte) {
	if r.Method != http.MethodGet || r.URL.Path != "/user" || status != http.StatusOK {
		return status, body
	}
	var page pagertree.List[pagertree.User]
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
	pol := defaultPolicy()
	pol.Scope = config.ScopeAll
	r := newHostileRig(t, withStaff(250), pol)
	if _, err := r.run(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	r.pt.reset()
	r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
		return userPage(req, status, body, func(offset int, page *pagertree.List[pagertree.User]) {
			if offset > 0 {
				page.Data, page.HasMore = []pagertree.User{}, false
			}
		})
	})
	_, err := r.run()
	const want = "pagertree: listing /user: read 100 of total_count 254 twice; PagerTree's listing is incomplete, so it is not used (try again later)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("run error %v, want one saying %q", err, want)
	}
	if w := r.pt.writes(); len(w) != 0 {
		t.Fatalf("writes %v, want none", w)
	}
}

// TestRepeatingPagerTreePagesFailTheRunBeforeAnyWrite: PagerTree ignores
// the offset and answers every user page with the first one. The run
// fails at the second page, after a bounded number of requests, and
// writes nothing.
func TestRepeatingPagerTreePagesFailTheRunBeforeAnyWrite(t *testing.T) {
	pol := defaultPolicy()
	pol.Scope = config.ScopeAll
	r := newHostileRig(t, withStaff(250), pol)
	if _, err := r.run(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	first := r.emu.Users()[:100]
	r.pt.reset()
	r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
		return userPage(req, status, body, func(_ int, page *pagertree.List[pagertree.User]) {
			page.Data, page.HasMore = first, true
		})
	})
	_, err := r.run()
	const want = "pagertree: listing /user: the page at offset 100 repeats the previous page's 100 ids; PagerTree ignores the offset, so the listing is not used"
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
}

// TestCaseTwinInPagerTreeLeavesItsTeamsAlone: the user listing holds a
// second bob, "BOB@Example.com ". Every team bob is in or wanted in, and
// both bobs, are left alone and reported; the rest of the plan is applied.
// Before, one bob silently won and the teams were rewritten.
func TestCaseTwinInPagerTreeLeavesItsTeamsAlone(t *testing.T) {
	r := newHostileRig(t, corp(), defaultPolicy())
	if _, err := r.run(); err != nil {
		t.Fatalf("first run: %v", err)
	}
	before := r.emu.Teams()
	var bob, ann pagertree.User
	for _, u := range r.emu.Users() {
		switch u.Email {
		case "bob@example.com":
			bob = u
		case "ann@example.com":
			ann = u
		}
	}
	twin := pagertree.User{ID: "usr_twin", Name: "Impostor", Email: "BOB@Example.com "}
	r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
		return userPage(req, status, body, func(_ int, page *pagertree.List[pagertree.User]) {
			page.TotalCount++
			if !page.HasMore {
				page.Data = append(page.Data, twin)
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
	if w := r.pt.writes(); !reflect.DeepEqual(w, []string{"PUT /user/" + ann.ID}) {
		t.Fatalf("writes %v, want only ann's rename", w)
	}
	ids := []string{bob.ID, twin.ID}
	slices.Sort(ids)
	reason := "PagerTree users " + strings.Join(ids, ", ") + " have the email bob@example.com (up to case and spaces); ptsync cannot tell which one is meant, so this team and its members are left alone: delete or correct all but one"
	userReason := "PagerTree users " + strings.Join(ids, ", ") + " have this email (up to case and spaces); ptsync cannot tell which one is meant, so none is updated or deleted: delete or correct all but one"
	want := []sync.Conflict{{Team: "db", Reason: reason}, {Team: "payments", Reason: reason}, {User: "bob@example.com", Reason: userReason}}
	if !reflect.DeepEqual(rep.Plan.Conflicts, want) {
		t.Fatalf("conflicts %+v, want %+v", rep.Plan.Conflicts, want)
	}
	if after := r.emu.Teams(); !reflect.DeepEqual(after, before) {
		t.Fatalf("teams changed:\n%+v\nwere\n%+v", after, before)
	}
}

// TestCreateAnswerWithoutIDFailsThatChange: PagerTree creates bob but
// answers without his id. His create fails saying so, and the payments
// team is created without him, never with an empty id; the next run,
// with honest answers, finds bob and adds him.
func TestCreateAnswerWithoutIDFailsThatChange(t *testing.T) {
	r := newHostileRig(t, corp(), defaultPolicy())
	r.setLie(func(req *http.Request, status int, body []byte) (int, []byte) {
		if req.Method != http.MethodPost || req.URL.Path != "/user" || !bytes.Contains(body, []byte(`"bob@example.com"`)) {
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
	const bobErr = "pagertree: POST /user answered 201 without an id; the change is not counted as done (the next run reads PagerTree again)"
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
	if n := len(r.pt.sent("POST /user")); n != 3 {
		t.Fatalf("%d user creates sent, want 3 (bob's not retried)", n)
	}
	for _, req := range r.pt.sent("POST /team") {
		if strings.Contains(req, `""`) {
			t.Fatalf("team create with an empty id: %s", req)
		}
	}

	r.setLie(nil)
	r.pt.reset()
	if rep, err = r.run(); err != nil || rep.Result.Counts != (sync.Counts{Applied: 2}) {
		t.Fatalf("second run: %v, counts %+v; want bob added to both teams", err, rep.Result.Counts)
	}
	if w := r.pt.writes(); len(w) != 2 || !strings.HasPrefix(w[0], "PUT /team/") || !strings.HasPrefix(w[1], "PUT /team/") {
		t.Fatalf("second run writes %v, want two team updates", w)
	}
}
