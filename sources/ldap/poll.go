package ldap

import (
	"context"
	"fmt"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/sources"
)

// pollSettle is how far before the newest modifyTimestamp seen a poll
// looks again: a write stamped before it may commit after the poll that
// saw it. What the last poll returned is not reported twice.
const pollSettle = 5 * time.Second

// poller asks the user and the group search for the entries modified since
// the newest modifyTimestamp seen. Deleted entries are not seen.
type poller struct {
	s    *Source
	conn goldap.Client
	// mark is the newest modifyTimestamp seen; zero: none yet, and a poll
	// reads the whole content.
	mark time.Time
	// seen holds the entries the last poll returned (see poll).
	seen map[string]struct{}
}

// watchPoll follows the poll feed: without a cookie its first poll reads
// the whole content and reports nothing but the established event.
func (s *Source) watchPoll(ctx context.Context, w *watch) error {
	from := w.resume(feedPoll)
	p := &poller{s: s}
	if from.Mark != "" {
		mark, err := time.Parse(time.RFC3339Nano, from.Mark)
		if err != nil {
			w.restart(s, fmt.Errorf("mark %q: %w", from.Mark, err))
		} else {
			p.mark = mark
		}
	}
	resumed := !p.mark.IsZero()
	conn, err := s.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	p.conn = conn

	changes, err := p.poll(ctx, resumed)
	if err != nil {
		return err
	}
	if err := w.established(ctx, changes, p.cookie()); err != nil {
		return err
	}
	return w.every(ctx, func() ([]sources.Change, watchCookie, error) {
		changes, err := p.poll(ctx, true)
		return changes, p.cookie(), err
	})
}

func (p *poller) cookie() watchCookie {
	c := watchCookie{Feed: feedPoll}
	if !p.mark.IsZero() {
		c.Mark = p.mark.UTC().Format(time.RFC3339Nano)
	}
	return c
}

// poll runs the user and the group search for the entries modified since
// pollSettle before the mark, and returns those the last poll did not
// return, when report is set. An entry is told by its DN and
// modifyTimestamp, and its entryCSN where the server keeps one (OpenLDAP),
// which tells apart two changes in the same second.
func (p *poller) poll(ctx context.Context, report bool) ([]sources.Change, error) {
	since := ""
	if !p.mark.IsZero() {
		since = fmt.Sprintf("(%s>=%s)", attrModifyTimestamp, p.mark.Add(-pollSettle).UTC().Format("20060102150405Z"))
	}
	us, gs := p.s.cfg.users, p.s.cfg.groups
	searches := []struct {
		kind, idAttr string
		q            query
	}{
		{sources.ChangeUser, us.idAttr, query{what: "poll users", base: us.base, scope: us.scope, filter: us.filter}},
		{sources.ChangeGroup, gs.idAttr, query{what: "poll groups", base: gs.base, scope: gs.scope, filter: gs.filter}},
	}
	var changes []sources.Change
	seen := map[string]struct{}{}
	newest := p.mark
	for _, search := range searches {
		q := search.q
		if since != "" {
			q.filter = "(&" + q.filter + since + ")"
		}
		q.attrs = dedupe([]string{search.idAttr, attrModifyTimestamp, attrEntryCSN})
		// Continuation references are not followed: watch follows the
		// configured server only.
		_, err := p.s.search(ctx, p.conn, q, func(e *goldap.Entry) error {
			at := modifiedAt(e)
			if at.After(newest) {
				newest = at
			}
			key := strings.Join([]string{search.kind, e.DN, e.GetEqualFoldAttributeValue(attrModifyTimestamp), e.GetEqualFoldAttributeValue(attrEntryCSN)}, "\x00")
			seen[key] = struct{}{}
			if _, old := p.seen[key]; report && !old {
				// A clone does not pin the decoded page (see decodeEntry).
				changes = append(changes, sources.Change{ID: strings.Clone(changeID(e, search.idAttr)), Kind: search.kind, At: at, Partial: true})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if newest.IsZero() && len(seen) > 0 {
		return nil, fmt.Errorf("ldap %s: watch polls modifyTimestamp, and no entry of the user or group search has one the bind account may read", p.s.cfg.shownURL)
	}
	p.mark, p.seen = newest, seen
	return changes, nil
}

// attrEntryCSN is OpenLDAP's change sequence number of an entry.
const attrEntryCSN = "entryCSN"
