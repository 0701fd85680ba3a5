package server

import (
	"fmt"
	"net/http"
	"strings"
	stdsync "sync"
	"testing"
	"time"
)

// pageAt is the status page of a daemon with an empty state whose clock
// stands at now.
func pageAt(t *testing.T, now time.Time, daemon bool) (*Server, func() string) {
	t.Helper()
	s := newStatusServer(t, nil, StatusOptions{Daemon: daemon, Now: func() time.Time { return now }})
	return s, func() string {
		t.Helper()
		rec := getOn(t, s.Handler(), loopback, "/", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET / = %d:\n%s", rec.Code, rec.Body.String())
		}
		return rec.Body.String()
	}
}

// TestStatusFeeds: the daemon's page lists watch mode's feeds by source,
// one connected and one down, with since when, the last change, the count
// and the error, escaped like every other value.
func TestStatusFeeds(t *testing.T) {
	now := time.Date(2025, 6, 2, 11, 5, 0, 0, time.UTC)
	s, page := pageAt(t, now, true)
	s.SetFeeds(func() []FeedStatus {
		return []FeedStatus{
			{Source: "corp", Connected: true, Since: now.Add(-2 * time.Hour), LastEvent: now.Add(-30 * time.Second), Changes: 12},
			{Source: "ad", Since: now.Add(-5 * time.Minute),
				Error: "dial tcp 192.0.2.5:636: <script>window.pwned=1</script>\nsecond line & more"},
		}
	})
	body := page()
	mustContain(t, "the page", body,
		`<a href="#feeds">Change feeds</a>`, `<section id="feeds">`,
		"Watch mode: directory changes are synced within seconds; the schedule still runs while a feed is down.",
		// down: its error escaped, its newline kept
		"<tr>\n"+`<td data-label="Source" class="name">ad</td>`,
		`<span class="badge bad">down</span><div class="error">dial tcp 192.0.2.5:636: &lt;script&gt;window.pwned=1&lt;/script&gt;`+"\nsecond line &amp; more</div>",
		`<time datetime="2025-06-02T11:00:00Z">2025-06-02 11:00:00 UTC</time><br><span class="muted">5m ago</span>`,
		`<td data-label="Last change"><span class="muted">none yet</span></td>`,
		`<td data-label="Changes">0</td>`,
		// connected
		"<tr>\n"+`<td data-label="Source" class="name">corp</td>`,
		`<td data-label="State"><span class="badge ok">connected</span></td>`,
		`<time datetime="2025-06-02T09:05:00Z">2025-06-02 09:05:00 UTC</time><br><span class="muted">2h ago</span>`,
		`<time datetime="2025-06-02T11:04:30Z">2025-06-02 11:04:30 UTC</time><br><span class="muted">30s ago</span>`,
		`<td data-label="Changes">12</td>`,
	)
	if strings.Contains(body, "<script") {
		t.Error("the feed's error came out as markup")
	}
	if ad, corp := strings.Index(body, `class="name">ad<`), strings.Index(body, `class="name">corp<`); ad > corp {
		t.Error("the feeds are not listed by source name")
	}

	// A feed not yet established.
	s.SetFeeds(func() []FeedStatus { return []FeedStatus{{Source: "okta"}} })
	mustContain(t, "the page", page(), `<span class="badge bad">down</span></td>`, `<td data-label="Since"><span class="muted">not yet established</span></td>`)
}

// TestStatusWithoutFeeds: no feeds section without SetFeeds, when it
// reports none, once it is unset, or on ptsync status's page.
func TestStatusWithoutFeeds(t *testing.T) {
	now := time.Date(2025, 6, 2, 11, 5, 0, 0, time.UTC)
	corp := func() []FeedStatus { return []FeedStatus{{Source: "corp", Connected: true, Since: now}} }
	noSection := func(what, body string) {
		t.Helper()
		mustNotContain(t, what, body, `id="feeds"`, "#feeds", "Change feeds", "Watch mode")
	}

	s, page := pageAt(t, now, true)
	noSection("the page without SetFeeds", page())
	s.SetFeeds(func() []FeedStatus { return nil })
	noSection("the page without feeds", page())
	s.SetFeeds(corp)
	mustContain(t, "the page with a feed", page(), `id="feeds"`)
	s.SetFeeds(nil)
	noSection("the page once SetFeeds(nil)", page())

	s, page = pageAt(t, now, false)
	s.SetFeeds(corp)
	noSection("ptsync status's page", page())
}

// TestStatusFeedsConcurrently views the page from several goroutines while
// the feeds func changes (run it with -race): the page must not write to
// the slice the func returns, which every view shares.
func TestStatusFeedsConcurrently(t *testing.T) {
	now := time.Date(2025, 6, 2, 11, 5, 0, 0, time.UTC)
	s, _ := pageAt(t, now, true)
	shared := []FeedStatus{{Source: "okta"}, {Source: "corp", Connected: true, Since: now}, {Source: "ad"}}
	sharedFeeds := func() []FeedStatus { return shared }

	done := make(chan struct{})
	setter := make(chan struct{})
	go func() {
		defer close(setter)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			switch i % 3 {
			case 0:
				s.SetFeeds(sharedFeeds)
			case 1:
				s.SetFeeds(nil)
			case 2:
				s.SetFeeds(func() []FeedStatus { return []FeedStatus{{Source: fmt.Sprint("src-", i), Changes: i}} })
			}
		}
	}()
	var views stdsync.WaitGroup
	for range 4 {
		views.Go(func() {
			for range 50 {
				rec := getOn(t, s.Handler(), loopback, "/", nil)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Last runs") {
					t.Errorf("a page view during SetFeeds = %d:\n%s", rec.Code, rec.Body.String())
					return
				}
			}
		})
	}
	views.Wait()
	close(done)
	<-setter
	if shared[0].Source != "okta" || shared[2].Source != "ad" {
		t.Errorf("the page reordered the caller's slice: %v", shared)
	}
}
