// Package server is the daemon's HTTP side: /metrics for Prometheus,
// /healthz for liveness, /readyz for readiness and, once EnableStatus is
// called, the status page at / (the last runs, the newest plan, pending
// deletes, source sizes, PagerTree request rates) read from the state
// database, and watch mode's change feeds. It knows nothing of syncing;
// the daemon tells it when it is ready and why it is not, and how its
// feeds are, and the page reads only that and what runs recorded.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

const (
	// readHeaderTimeout stops a client that opens a connection and sends
	// nothing from holding it forever.
	readHeaderTimeout = 10 * time.Second
	// shutdownTimeout bounds how long Serve waits for requests in flight
	// once told to stop: a scrape takes milliseconds.
	shutdownTimeout = 5 * time.Second
	// initialReason is what /readyz says until the daemon says otherwise.
	initialReason = "starting"
)

// Server serves /metrics, /healthz, /readyz and, once EnableStatus is
// called, the status page. It starts not ready; its methods are safe for
// concurrent use.
//
// Readiness is the state the daemon last set (SetReady, SetNotReady) and
// two times it may arm, checked when /readyz is asked, so that a daemon
// stuck where it cannot say so itself is still reported: a deadline
// (SetDeadline), which once passed overrides the state, and an expiry
// (SetExpiry), which once passed ends a ready state.
type Server struct {
	handler  http.Handler
	mux      *http.ServeMux
	gatherer prometheus.Gatherer // nil: no /metrics, no request rates on the page
	log      *zap.Logger
	now      func() time.Time

	// status is the status page, nil until EnableStatus.
	status atomicStatus
	// feeds reports watch mode's change feeds for the page (SetFeeds).
	feeds atomic.Pointer[func() []FeedStatus]

	mu       sync.Mutex
	notReady string // why /readyz answers 503; "" when ready
	deadline alarm
	expiry   alarm
}

// alarm is a reason /readyz gives from a time on; a zero at is disarmed.
type alarm struct {
	at     time.Time
	reason string
}

func (a alarm) rang(now time.Time) bool { return !a.at.IsZero() && !now.Before(a.at) }

// New returns a Server whose /metrics serves what gatherer gathers; a nil
// gatherer serves no /metrics (ptsync status, which has no metrics of its
// own). log receives the HTTP server's own errors (zap.NewNop when nil).
func New(gatherer prometheus.Gatherer, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{gatherer: gatherer, log: log, now: time.Now, notReady: initialReason}
	mux := http.NewServeMux()
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog: zap.NewStdLog(log.With(zap.String("handler", "/metrics"))),
		}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.mux, s.handler = mux, mux
	return s
}

// Handler returns the server's routes, for tests and for mounting
// elsewhere. GET (and HEAD) only; other methods get 405. The status page
// needs to know the address each request came in on
// (http.LocalAddrContextKey, which http.Server sets): without it, a page
// without auth answers 403.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady makes /readyz answer 200.
func (s *Server) SetReady() { s.setReason("") }

// SetNotReady makes /readyz answer 503 with reason, one line.
func (s *Server) SetNotReady(reason string) {
	if reason == "" {
		reason = "not ready"
	}
	s.setReason(reason)
}

func (s *Server) setReason(reason string) {
	s.mu.Lock()
	s.notReady = reason
	s.mu.Unlock()
}

// SetDeadline makes /readyz answer 503 with reason from at on, whatever
// the state set by SetReady or SetNotReady, until ClearDeadline or another
// SetDeadline: something under way (a sync run) should have ended by at.
func (s *Server) SetDeadline(at time.Time, reason string) {
	s.mu.Lock()
	s.deadline = alarm{at, reason}
	s.mu.Unlock()
}

// ClearDeadline disarms SetDeadline.
func (s *Server) ClearDeadline() { s.SetDeadline(time.Time{}, "") }

// SetExpiry makes a ready state lapse at at: from then on /readyz answers
// 503 with reason until SetExpiry moves it (a sync run succeeded again).
// A reason set by SetNotReady or a passed deadline is said first.
func (s *Server) SetExpiry(at time.Time, reason string) {
	s.mu.Lock()
	s.expiry = alarm{at, reason}
	s.mu.Unlock()
}

// Ready reports whether /readyz answers 200 and, when it does not, why.
func (s *Server) Ready() (ready bool, reason string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.deadline.rang(now):
		return false, s.deadline.reason
	case s.notReady != "":
		return false, s.notReady
	case s.expiry.rang(now):
		return false, s.expiry.reason
	}
	return true, ""
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if ready, reason := s.Ready(); !ready {
		writeText(w, http.StatusServiceUnavailable, reason)
		return
	}
	writeText(w, http.StatusOK, "ok")
}

// writeText answers one line of plain text that no cache keeps: a probe
// must see the state of now.
func writeText(w http.ResponseWriter, status int, line string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, line)
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets requests in flight finish (for a few seconds at
// most) and closes ln. It returns nil after such a shutdown, or the error
// that stopped it serving sooner. With the status page enabled without
// auth, a listener that is not on a loopback address is closed at once
// and refused (ErrExposed); with the page, Serve also samples the request
// counters for its rates until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	if st := s.status.Load(); st != nil {
		if err := st.checkListener(ln.Addr()); err != nil {
			_ = ln.Close()
			return err
		}
		go st.rates.run(ctx)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving HTTP on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	if err != nil {
		// A request still running after the timeout is cut off.
		err = errors.Join(err, hs.Close())
	}
	if serveErr := <-served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	if err != nil {
		return fmt.Errorf("shutting down HTTP on %s: %w", ln.Addr(), err)
	}
	return nil
}
