package server

import (
	"slices"
	"strings"
	"time"
)

// FeedStatus is one source's change feed (watch mode), as the status page shows it.
type FeedStatus struct {
	Source    string
	Connected bool
	Since     time.Time // when it was established, or went down (zero: not yet established)
	LastEvent time.Time // when it last reported changes (zero: none yet)
	Changes   int       // changes it reported since the daemon started
	Error     string    // why it is down, when it is
}

// SetFeeds makes the status page show watch mode's feeds: feeds is called
// on every page view (it must be safe for concurrent use). Without it (or
// when it returns none) the page has no feeds section.
//
// Only the daemon's page shows them (StatusOptions.Daemon): ptsync status
// follows no feed. SetFeeds may be called at any time, before EnableStatus
// too; nil removes the section.
func (s *Server) SetFeeds(feeds func() []FeedStatus) {
	if feeds == nil {
		s.feeds.Store(nil)
		return
	}
	s.feeds.Store(&feeds)
}

// feedList is what the func SetFeeds set reports now, by source name
// like the page's other tables; nil without one.
func (s *Server) feedList() []FeedStatus {
	f := s.feeds.Load()
	if f == nil {
		return nil
	}
	// A copy: the slice is the caller's, and other page views read it too.
	feeds := slices.Clone((*f)())
	slices.SortStableFunc(feeds, func(a, b FeedStatus) int { return strings.Compare(a.Source, b.Source) })
	return feeds
}
