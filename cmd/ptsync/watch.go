package main

import (
	"context"
	"maps"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/server"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// Watch mode (README "Watch mode"): every source with a change feed has a
// goroutine following it; the loop gathers their changes and, a debounce
// after the last one (max_delay after the first at the latest), runs a
// sync. Feeds only ever trigger syncs: what is written comes from a sync's
// own fresh reads, never from a feed's report.

// Bounds of the wait before a failed feed is followed again.
const (
	feedRetryMin = time.Second
	feedRetryMax = time.Minute
)

// watchMetrics are watch mode's series.
type watchMetrics struct {
	events      *prometheus.CounterVec
	connected   *prometheus.GaugeVec
	propagation prometheus.Histogram
}

func newWatchMetrics(reg prometheus.Registerer) *watchMetrics {
	f := promauto.With(reg)
	return &watchMetrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "ptsync_watch_events_total",
			Help: "Directory changes the sources' change feeds reported (watch mode), by source; a feed that had to start afresh counts one.",
		}, []string{"source"}),
		connected: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ptsync_watch_connected",
			Help: "1 while the source's change feed is established, 0 while it is down and being retried (watch mode).",
		}, []string{"source"}),
		propagation: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "ptsync_propagation_seconds",
			Help:    "Time from a directory change (its time in the directory, else when its feed reported it) to the end of the sync that applied it (watch mode).",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 900, 3600},
		}),
	}
}

// feedBoard is the state of every feed, for the status page.
type feedBoard struct {
	mu    gosync.Mutex
	feeds map[string]*server.FeedStatus
}

func newFeedBoard() *feedBoard { return &feedBoard{feeds: map[string]*server.FeedStatus{}} }

// set changes source's entry under the lock.
func (b *feedBoard) set(source string, change func(f *server.FeedStatus)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.feeds[source]
	if !ok {
		f = &server.FeedStatus{Source: source}
		b.feeds[source] = f
	}
	change(f)
}

// only keeps the entries of sources, dropping feeds a reload removed.
func (b *feedBoard) only(sources []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name := range b.feeds {
		if !slices.Contains(sources, name) {
			delete(b.feeds, name)
		}
	}
}

// list is every feed, by source name.
func (b *feedBoard) list() []server.FeedStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]server.FeedStatus, 0, len(b.feeds))
	for _, f := range b.feeds {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b server.FeedStatus) int { return strings.Compare(a.Source, b.Source) })
	return out
}

// feedEvent is one Event of a source's feed, as the loop receives it.
type feedEvent struct {
	source string
	sources.Event
	seen time.Time
	// fresh says the feed started without resuming from a cookie: what
	// changed before it was established is not in it.
	fresh bool
}

// feeds are the running change feeds of one loaded config.
type feeds struct {
	cancel context.CancelFunc
	wg     gosync.WaitGroup
}

// stop ends every feed and waits for their goroutines.
func (f *feeds) stop() {
	if f == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
}

// startFeeds follows the change feed of every source of cfg that has one,
// resuming each from cookies, and sends their events to out. Sources
// without a feed stay on the schedule (logged).
func startFeeds(ctx context.Context, cfg *config.Config, log *zap.Logger, metrics *sync.Metrics, m *watchMetrics, board *feedBoard,
	cookies map[string][]byte, out chan<- feedEvent) (*feeds, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &feeds{cancel: cancel}
	var watched []string
	for _, sc := range cfg.Sources {
		// The feed's requests count with the syncs' in the source's metrics.
		src, err := newSource(cfg, sc, log.With(zap.String("source", sc.Name)), metrics)
		if err != nil {
			f.stop()
			return nil, err
		}
		w, ok := src.(sources.Watcher)
		if !ok {
			log.Info("watch: this source has no change feed; it is synced on the schedule only",
				zap.String("source", sc.Name), zap.String("type", sc.Type))
			continue
		}
		watched = append(watched, sc.Name)
		fl := &follower{source: sc.Name, w: w, poll: cfg.Watch.Debounce, out: out, m: m, board: board,
			log: log.With(zap.String("source", sc.Name))}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			fl.follow(ctx, cookies[sc.Name])
		}()
	}
	board.only(watched)
	return f, nil
}

// follower follows one source's feed.
type follower struct {
	source string
	w      sources.Watcher
	poll   time.Duration
	out    chan<- feedEvent
	m      *watchMetrics
	board  *feedBoard
	log    *zap.Logger
}

// connected records whether the feed is established, and why not.
func (fl *follower) connected(up bool, err error) {
	v := 0.0
	if up {
		v = 1
	}
	fl.m.connected.WithLabelValues(fl.source).Set(v)
	fl.board.set(fl.source, func(f *server.FeedStatus) {
		if f.Connected != up || f.Since.IsZero() {
			f.Since = time.Now()
		}
		f.Connected, f.Error = up, ""
		if err != nil {
			f.Error = err.Error()
		}
	})
}

// follow runs the feed until ctx ends: a feed that fails is followed
// again after a backoff, from the last cookie it sent.
func (fl *follower) follow(ctx context.Context, cookie []byte) {
	retry := feedRetryMin
	fl.m.events.WithLabelValues(fl.source) // a series from the first scrape, not from the first change
	fl.m.connected.WithLabelValues(fl.source).Set(0)
	for {
		established, err := fl.followOnce(ctx, &cookie)
		if ctx.Err() != nil {
			fl.connected(false, nil)
			return
		}
		fl.connected(false, err)
		if established {
			retry = feedRetryMin
		}
		fl.log.Warn("watch: change feed failed; the schedule still runs, and the feed is retried",
			zap.Error(err), zap.Duration("retry_in", retry))
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, feedRetryMax)
	}
}

// followOnce is one Watch call. It reports whether the feed got
// established, and keeps *cookie at the newest one the feed sent.
func (fl *follower) followOnce(ctx context.Context, cookie *[]byte) (bool, error) {
	events := make(chan sources.Event)
	done := make(chan error, 1)
	go func() { done <- fl.w.Watch(ctx, sources.WatchOptions{Cookie: *cookie, Poll: fl.poll}, events) }()
	fresh := *cookie == nil
	established := false
	for {
		select {
		case err := <-done:
			return established, err
		case ev := <-events:
			fe := feedEvent{source: fl.source, Event: ev, seen: time.Now()}
			if !established {
				established = true
				fl.connected(true, nil)
				fl.log.Info("watch: change feed established", zap.Bool("resumed", !fresh))
				fe.fresh = fresh
			}
			if ev.Cookie != nil {
				*cookie = ev.Cookie
			}
			n := len(ev.Changes)
			if ev.Reset {
				n++
				fl.log.Warn("watch: the change feed could not resume and started afresh; a sync follows")
			}
			if n > 0 {
				fl.m.events.WithLabelValues(fl.source).Add(float64(n))
				fl.board.set(fl.source, func(f *server.FeedStatus) { f.LastEvent, f.Changes = fe.seen, f.Changes+n })
			}
			select {
			case fl.out <- fe:
			case <-ctx.Done():
				return established, ctx.Err()
			}
		}
	}
}

// pendingChange is a change no sync has started since.
type pendingChange struct {
	source string
	// change is what the feed said; one without ID has the source read
	// whole (a feed that reset or started afresh may have missed some).
	change sources.Change
	at     time.Time // in the directory, else when seen
}

// bySource are the changes of pending, by source.
func bySource(pending []pendingChange) map[string][]sources.Change {
	out := map[string][]sources.Change{}
	for _, p := range pending {
		out[p.source] = append(out[p.source], p.change)
	}
	return out
}

// watchState is the loop's side of watch mode.
type watchState struct {
	debounce, maxDelay time.Duration
	pending            []pendingChange
	// cookies are the newest cookie of each feed; the ones a sync
	// started with are stored once it succeeds.
	cookies map[string][]byte
	// timer fires when the pending changes are due: debounce after the
	// last, max_delay after the first (firstAt).
	timer   *time.Timer
	firstAt time.Time
	// due says the timer fired while a sync was running.
	due bool
}

func newWatchState(cfg config.Watch, cookies map[string][]byte) *watchState {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &watchState{debounce: cfg.Debounce, maxDelay: cfg.MaxDelay, cookies: cookies, timer: t}
}

// add takes one feed event; it reports whether it holds anything to sync.
func (w *watchState) add(ev feedEvent) bool {
	if ev.Cookie != nil {
		w.cookies[ev.source] = ev.Cookie
	}
	n := len(ev.Changes)
	for _, c := range ev.Changes {
		at := c.At
		if at.IsZero() || at.After(ev.seen) {
			at = ev.seen
		}
		w.pending = append(w.pending, pendingChange{source: ev.source, change: c, at: at})
	}
	if ev.Reset || ev.fresh {
		// Changes may have been missed: a sync covers them.
		w.pending = append(w.pending, pendingChange{source: ev.source, change: sources.Change{At: ev.seen}, at: ev.seen})
		n++
	}
	if n == 0 {
		return false
	}
	now := ev.seen
	if w.firstAt.IsZero() {
		w.firstAt = now
	}
	w.timer.Reset(min(w.debounce, w.firstAt.Add(w.maxDelay).Sub(now)))
	return true
}

// take hands the pending changes and the cookies to a starting sync.
func (w *watchState) take() ([]pendingChange, map[string][]byte) {
	taken := w.pending
	w.pending = nil
	w.firstAt = time.Time{}
	w.due = false
	w.timer.Stop()
	return taken, maps.Clone(w.cookies)
}

// restartFeeds stops the running feeds and, with watch.enabled, follows
// the feeds of the loaded config, from the newest cookies.
func (d *daemon) restartFeeds(ctx context.Context) {
	d.feeds.stop()
	d.feeds = nil
	cfg := d.loaded.cfg
	d.watch.debounce, d.watch.maxDelay = cfg.Watch.Debounce, cfg.Watch.MaxDelay
	if !cfg.Watch.Enabled {
		d.feedBoard.only(nil)
		return
	}
	f, err := startFeeds(ctx, cfg, d.log(), d.metrics, d.watchMetrics, d.feedBoard, maps.Clone(d.watch.cookies), d.feedEvents)
	if err != nil { // loadDaemonConfig built these sources already: not expected
		d.log().Error("watch: the change feeds could not start; syncing on the schedule only", zap.Error(err))
		return
	}
	d.feeds = f
}

// watchSynced records that the cycle that just succeeded covered the
// changes pending when it started: their propagation time is observed,
// and the feeds' cookies of then are stored, so a restart resumes after
// them.
func (d *daemon) watchSynced() {
	now := time.Now()
	for _, c := range d.inflight.changes {
		d.watchMetrics.propagation.Observe(now.Sub(c.at).Seconds())
	}
	if d.state != nil {
		for source, cookie := range d.inflight.cookies {
			if err := d.state.SetFeedCookie(source, cookie); err != nil {
				d.log().Warn("watch: could not store the feed's cookie; a restart replays its changes", zap.String("source", source), zap.Error(err))
			}
		}
	}
	d.inflight = inflightWatch{}
}
