package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources"
)

// nextEvent waits for the feed's next event, failing after a deadline.
func nextEvent(t *testing.T, events <-chan sources.Event, errs <-chan error) sources.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case err := <-errs:
		t.Fatalf("Watch returned %v before the event", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sources.Event{}
}

func TestWatchReportsEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "people.yaml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("users: []\n")
	src := &Source{name: "contractors", path: path}
	ctx, cancel := context.WithCancel(context.Background())
	events, errs := make(chan sources.Event), make(chan error, 1)
	go func() { errs <- src.Watch(ctx, sources.WatchOptions{Poll: 10 * time.Millisecond}, events) }()

	first := nextEvent(t, events, errs)
	if len(first.Changes) != 0 || first.Cookie == nil {
		t.Fatalf("first event without a cookie to resume from: %+v, want no change and a cookie", first)
	}
	write("users: [{id: c-1, email: jo@vendor.example}]\n")
	edit := nextEvent(t, events, errs)
	if len(edit.Changes) != 1 || edit.Changes[0].ID != "" || string(edit.Cookie) == string(first.Cookie) {
		t.Fatalf("after an edit: %+v, want one change of unknown scope and a new cookie", edit)
	}
	cancel()
	if err := <-errs; err != nil {
		t.Fatalf("Watch after cancel: %v, want nil", err)
	}

	// A feed resumed from the old cookie reports the edit made since.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() {
		errs <- src.Watch(ctx, sources.WatchOptions{Cookie: first.Cookie, Poll: 10 * time.Millisecond}, events)
	}()
	if resumed := nextEvent(t, events, errs); len(resumed.Changes) != 1 {
		t.Fatalf("resumed from a cookie before an edit: %+v, want the edit", resumed)
	}
	// ...and a file that goes away fails the feed (the daemon retries it).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("Watch of a removed file returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not fail on a removed file")
	}
}
