package server

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/ptsync/ptsync/internal/testenv"
)

// updateScreenshot makes TestBrowserStatusPage write the README's
// screenshot too:
//
//	go test ./internal/server/ -run Browser -args -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/status.png from TestBrowserStatusPage")

// readmeScreenshot is the README's picture of the page, from this package.
const readmeScreenshot = "../../docs/status.png"

// browserPatience bounds the whole browser test: it catches a hang.
const browserPatience = 2 * time.Minute

// newBrowser starts Debian's chromium, headless, for the test and returns
// the context of its first tab. In CI a missing chromium fails the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	exe := testenv.Need(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), browserPatience)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.DisableGPU,
		chromedp.WindowSize(1100, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return bctx
}

// newTab opens another tab of the browser.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	return tab
}

func do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, tab context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowserStatusPage opens the daemon's status page in a real browser:
// the DOM shows the change feeds (one connected, one down), the runs, the
// withheld changes with the command that applies them and the pending
// delete; the group named in HTML is text (no element came of it, its
// script did not run); the style sheet applies (the CSP allows it); the
// page fits a phone's width, with JavaScript and without; and with
// JavaScript off the page is the same, down to the byte, and its links
// still lead to a run's report. Screenshots go to the test's temp dir
// (and, with -update-screenshot, to docs/status.png).
func TestBrowserStatusPage(t *testing.T) {
	browser := newBrowser(t)
	d := startTestDaemon(t, StatusOptions{})
	d.Server.SetFeeds(func() []FeedStatus { return browserFeeds })
	shots := t.TempDir()

	// With JavaScript, as a desktop browser.
	tab := newTab(t, browser)
	do(t, tab, chromedp.EmulateViewport(1100, 900), chromedp.Navigate(d.URL+"/"))
	withJS := run(t, tab, chromedp.OuterHTML(chromedp.CSS("html")))
	text := run(t, tab, chromedp.Evaluate[string](`document.body.innerText`))
	mustContain(t, "the page's text", text,
		"r-first", "r-shrunk", "r-withheld", "8 applied", "3 withheld",
		"ptsync sync --config /etc/ptsync/ptsync.yaml --allow-destructive",
		"members -bob.baker@example.com -cat.cole@example.com",
		"dan.dunn@example.com", "2025-06-05 11:00:00 UTC",
		htmlGroup, // as text, exactly as the directory has it
		"Change feeds", "connected", "down", browserFeeds[1].Error,
	)
	if rows := run(t, tab, chromedp.Nodes(chromedp.CSSAll("#feeds tbody tr"))); len(rows) != 2 {
		t.Errorf("the feeds table has %d rows, want 2", len(rows))
	}
	if rows := run(t, tab, chromedp.Nodes(chromedp.CSSAll("#runs tbody tr"))); len(rows) != 3 {
		t.Errorf("the runs table has %d rows, want 3", len(rows))
	}
	if n := run(t, tab, chromedp.Nodes(chromedp.CSSAll("script, b"), chromedp.AtLeast(0))); len(n) != 0 {
		t.Errorf("the page has %d <script> or <b> elements: the group name became markup", len(n))
	}
	if pwned := run(t, tab, chromedp.Evaluate[bool](`window.pwned === 1`)); pwned {
		t.Error("the group name's script ran")
	}
	names := run(t, tab, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#plan td.name")).map(e => e.textContent)`))
	if !containsString(names, htmlGroup) {
		t.Errorf("the withheld changes name %q, want %q among them", names, htmlGroup)
	}
	// The inline style applies: the Content Security Policy allows it.
	if bg := run(t, tab, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".badge.warn")).backgroundColor`)); bg != "rgb(255, 244, 206)" {
		t.Errorf("a withheld badge's background is %q: the style sheet did not apply", bg)
	}
	if bg := run(t, tab, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#feeds .badge.bad")).backgroundColor`)); bg != "rgb(255, 225, 228)" {
		t.Errorf("a down feed's badge has the background %q, want the error colour", bg)
	}
	shot := run(t, tab, chromedp.FullScreenshot(100))
	writePNG(t, filepath.Join(shots, "status.png"), shot)
	if *updateScreenshot {
		writePNG(t, readmeScreenshot, shot)
		t.Logf("wrote %s", readmeScreenshot)
	}

	// On a phone: nothing wider than the screen.
	do(t, tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(d.URL+"/"))
	metrics, err := chromedp.Call(tab, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if w := metrics.CSSContentSize.Width; w > 391 {
		t.Errorf("on a 390px wide phone the page is %.0fpx wide: it scrolls sideways", w)
	}
	writePNG(t, filepath.Join(shots, "status-phone.png"), run(t, tab, chromedp.FullScreenshot(100)))

	// Without JavaScript: the same page, and its links work.
	noJS := newTab(t, browser)
	if _, err := chromedp.Call(noJS, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	// (Scripts really are off in this tab.)
	do(t, noJS, chromedp.Navigate(`data:text/html,<p id="js">off</p><script>document.getElementById("js").textContent = "on"</script>`))
	if p := run(t, noJS, chromedp.OuterHTML(chromedp.CSS("#js"))); p != `<p id="js">off</p>` {
		t.Fatalf("scripts still run in the tab without JavaScript: %s", p)
	}
	do(t, noJS, chromedp.EmulateViewport(1100, 900), chromedp.Navigate(d.URL+"/"))
	withoutJS := run(t, noJS, chromedp.OuterHTML(chromedp.CSS("html")))
	if withoutJS != withJS {
		t.Errorf("the page differs without JavaScript:\nwith:\n%s\nwithout:\n%s", withJS, withoutJS)
	}
	if rows := run(t, noJS, chromedp.Nodes(chromedp.CSSAll("#runs tbody tr"))); len(rows) != 3 {
		t.Errorf("without JavaScript the runs table has %d rows, want 3", len(rows))
	}
	writePNG(t, filepath.Join(shots, "status-nojs.png"), run(t, noJS, chromedp.FullScreenshot(100)))
	do(t, noJS, chromedp.Click(chromedp.CSS(`#runs a[href="/runs/r-first"]`)), chromedp.WaitVisible(chromedp.CSS("#changes")))
	report := run(t, noJS, chromedp.OuterHTML(chromedp.CSS("#changes")))
	mustContain(t, "run r-first's report without JavaScript", report,
		"ann.archer@example.com", "oncall-&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;")
	writePNG(t, filepath.Join(shots, "run-nojs.png"), run(t, noJS, chromedp.FullScreenshot(100)))

	// On a phone without JavaScript: the feeds are cards, nothing is wider
	// than the screen.
	do(t, noJS, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(d.URL+"/"))
	metrics, err = chromedp.Call(noJS, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if w := metrics.CSSContentSize.Width; w > 391 {
		t.Errorf("without JavaScript, on a 390px wide phone the page is %.0fpx wide: it scrolls sideways", w)
	}
	if shown := run(t, noJS, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#feeds thead")).display`)); shown != "none" {
		t.Errorf("without JavaScript, on a phone the feeds table's head is %q, want none (cards)", shown)
	}
	writePNG(t, filepath.Join(shots, "status-phone-nojs.png"), run(t, noJS, chromedp.FullScreenshot(100)))
	t.Logf("screenshots in %s", shots)
}

// browserFeeds are the daemon's change feeds in the browser test: corp's
// followed since the start, which reported the story's two edits, and
// hr's, down.
var browserFeeds = []FeedStatus{
	{Source: "corp", Connected: true, Since: storyStart.Add(-time.Minute), LastEvent: storyStart.Add(2*time.Hour - 4*time.Second), Changes: 2},
	{Source: "hr", Since: storyStart.Add(2*time.Hour + 3*time.Minute), Error: "read users file: open /srv/directory/hr.yaml: permission denied"},
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// writePNG writes a screenshot after checking it is one.
func writePNG(t *testing.T, path string, data []byte) {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("the screenshot for %s is not a PNG (%d bytes)", path, len(data))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".png") && len(data) < 1000 {
		t.Errorf("the screenshot %s is only %d bytes", path, len(data))
	}
}
