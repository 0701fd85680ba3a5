package okta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/httpx"
	"github.com/ptsync/ptsync/sources"
)

const (
	// logsScope is the one scope the System Log needs.
	logsScope = "okta.logs.read"
	// logsPageSize is the largest page /logs serves, so that a burst of
	// changes costs as few requests as it can.
	logsPageSize = 1000
	// startOverlap is how far before now a fresh feed starts: a local
	// clock ahead of Okta's would otherwise skip the skew's changes. What
	// came before is the daemon's to sync: it does after a fresh start.
	startOverlap = time.Minute
	// maxCookieAge: Okta keeps the System Log 90 days, and a link older
	// than that would skip the events gone since; the day spares clock
	// skew between the host that stored the cookie and this one.
	maxCookieAge = 89 * 24 * time.Hour
)

// logChange is what a System Log event type changes: objects of one kind
// (the targets of that type), and whether they are gone.
type logChange struct {
	kind    string
	deleted bool
}

// logChanges are the event types that change what Fetch reads. A
// membership event targets the user and the group: the group suffices, as
// a sync reads its members. Deactivated and suspended users are not gone:
// Fetch reads them, disabled, as long as a group lists them.
var logChanges = map[string]logChange{
	"group.user_membership.add":       {sources.ChangeGroup, false},
	"group.user_membership.remove":    {sources.ChangeGroup, false},
	"group.lifecycle.create":          {sources.ChangeGroup, false},
	"group.lifecycle.delete":          {sources.ChangeGroup, true},
	"group.profile.update":            {sources.ChangeGroup, false},
	"user.lifecycle.create":           {sources.ChangeUser, false},
	"user.lifecycle.activate":         {sources.ChangeUser, false},
	"user.lifecycle.deactivate":       {sources.ChangeUser, false},
	"user.lifecycle.suspend":          {sources.ChangeUser, false},
	"user.lifecycle.unsuspend":        {sources.ChangeUser, false},
	"user.lifecycle.delete.initiated": {sources.ChangeUser, true},
	"user.account.update_profile":     {sources.ChangeUser, false},
}

// logsFilter asks the System Log for those event types only.
var logsFilter = func() string {
	var clauses []string
	for _, t := range slices.Sorted(maps.Keys(logChanges)) {
		clauses = append(clauses, fmt.Sprintf("eventType eq %q", t))
	}
	return strings.Join(clauses, " or ")
}()

// targetKinds are the Change kinds of the LogEvent target types.
var targetKinds = map[string]string{"User": sources.ChangeUser, "UserGroup": sources.ChangeGroup}

type logEvent struct {
	Published string `json:"published"`
	EventType string `json:"eventType"`
	Target    []struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"target"`
}

// changes are what e changed: its targets of the kind its type changes,
// or, naming none, one change of unknown object (a full sync is due).
func (e logEvent) changes() []sources.Change {
	lc, ok := logChanges[e.EventType]
	if !ok {
		return nil // not asked for: it changes nothing Fetch reads
	}
	at, _ := time.Parse(time.RFC3339Nano, e.Published)
	var out []sources.Change
	for _, t := range e.Target {
		if t.ID != "" && targetKinds[t.Type] == lc.kind {
			out = append(out, sources.Change{ID: t.ID, Kind: lc.kind, Deleted: lc.deleted, At: at})
		}
	}
	if len(out) == 0 {
		out = []sources.Change{{At: at}}
	}
	return out
}

// cookie is an Event.Cookie: the feed's next link, when it was read, and
// the filter it was made with (the link carries it).
type cookie struct {
	Next   string    `json:"next"`
	At     time.Time `json:"at"`
	Filter string    `json:"filter"`
}

// errLinkRefused is Okta answering 400 to a link of the feed.
var errLinkRefused = errors.New("the System Log refused the feed's link")

// Watch implements sources.Watcher by polling the System Log every
// opts.Poll. It makes Okta's polling request (since, no until, ascending)
// and follows its next link as given: Okta filters a polling request on
// when each event was stored, not published, and always answers with a next
// link, so following it later returns exactly what was stored since,
// delayed events included, nothing twice. An Event follows every poll, with
// the changes and that link as the cookie.
func (s *Source) Watch(ctx context.Context, opts sources.WatchOptions, events chan<- sources.Event) error {
	link, reset := s.resume(opts.Cookie)
	for {
		changes, next, err := s.poll(ctx, link)
		if errors.Is(err, errLinkRefused) && ctx.Err() == nil {
			s.log.Info("okta: the feed starts afresh", zap.Error(err))
			reset = true
			changes, next, err = s.poll(ctx, "")
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		c, _ := json.Marshal(cookie{Next: next, At: time.Now(), Filter: logsFilter}) // strings and a time of now marshal
		if !sources.Send(ctx, events, sources.Event{Changes: changes, Cookie: c, Reset: reset}) {
			return nil
		}
		link, reset = next, false
		if httpx.Sleep(ctx, opts.Poll) != nil {
			return nil
		}
	}
}

// resume returns the link a cookie resumes the feed from. Without one it
// returns "" (start from now); with one it cannot use it returns "" and
// true: start afresh, changes may have been missed.
func (s *Source) resume(raw []byte) (string, bool) {
	if raw == nil {
		return "", false
	}
	link, why := s.cookieLink(raw)
	if why == "" {
		return link, false
	}
	s.log.Info("okta: the feed starts afresh", zap.String("reason", why))
	return "", true
}

// cookieLink is the link of a cookie, or why it cannot be resumed from.
func (s *Source) cookieLink(raw []byte) (link, why string) {
	var c cookie
	if json.Unmarshal(raw, &c) != nil || c.Next == "" || c.At.IsZero() {
		return "", "the cookie is not an Okta feed's"
	}
	base, _ := url.Parse(s.cfg.BaseURL) // checked by Config.Check
	u, err := url.Parse(c.Next)
	if err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) ||
		u.Path != strings.TrimSuffix(base.Path, "/")+"/logs" {
		return "", "the cookie is another org's"
	}
	if time.Since(c.At) > maxCookieAge {
		return "", "the cookie is older than the System Log keeps"
	}
	if c.Filter != logsFilter {
		return "", "the cookie's feed asks for other event types (another ptsync version)"
	}
	return c.Next, ""
}

// poll reads the System Log from link, or from now when link is "", up to
// its end: while pages come full it follows their next links at once. It
// returns the changes and the link the next poll follows.
func (s *Source) poll(ctx context.Context, link string) ([]sources.Change, string, error) {
	req := httpx.Request{Method: http.MethodGet, Route: "/logs", URL: link}
	if link == "" {
		req.Path, req.Query = "/logs", url.Values{
			"since":     {time.Now().Add(-startOverlap).UTC().Format(time.RFC3339)},
			"filter":    {logsFilter},
			"sortOrder": {"ASCENDING"},
			"limit":     {fmt.Sprint(logsPageSize)},
		}
	}
	var changes []sources.Change
	for {
		var page []logEvent
		resp, err := s.logs.DecodeJSON(ctx, req, &page)
		var apiErr *httpx.APIError
		if req.URL != "" && errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest {
			return nil, "", fmt.Errorf("%w: %w", errLinkRefused, err)
		}
		if err != nil {
			return nil, "", explainLogs(err)
		}
		for _, e := range page {
			changes = append(changes, e.changes()...)
		}
		next := httpx.LinkNext(resp.Header)
		if next == "" {
			return nil, "", errors.New("okta: GET /logs: a polling request answered without a next link")
		}
		if len(page) < logsPageSize {
			return changes, next, nil
		}
		req = httpx.Request{Method: http.MethodGet, Route: "/logs", URL: next}
	}
}

// explainLogs says what a refusal of the System Log needs.
func explainLogs(err error) error {
	var apiErr *httpx.APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden {
		return fmt.Errorf("%w: the token may not read the System Log: an API token of an admin who may view it (a read-only admin may), or a service app granted okta.logs.read", err)
	}
	return explain(err)
}
