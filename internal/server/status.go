package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/ptsync/ptsync/internal/state"
)

// status.auth values.
const (
	AuthNone  = "none"
	AuthBasic = "basic"
)

// DefaultRuns is how many runs the page lists by default.
const DefaultRuns = 20

// StatusOptions configure the status page.
type StatusOptions struct {
	// State is where each request reads the state: Held(db) in the
	// daemon, Reopen(dir, ...) in ptsync status. Required.
	State StateSource
	// Listen is the address the page is served on (metrics.listen, or
	// ptsync status --listen). With Auth "none" it must be loopback
	// (CheckExposure); Serve checks the listener too, and each request
	// the address it came in on.
	Listen string
	// Auth is AuthNone ("" too) or AuthBasic; basic needs Username and
	// PasswordHash, a bcrypt hash.
	Auth, Username, PasswordHash string
	// ConfigPath is the config file, for the commands the page shows
	// (made absolute).
	ConfigPath string
	// Daemon says the page is the daemon's (ptsync run): it shows its
	// readiness, and its PagerTree request rates when the server has a
	// gatherer.
	Daemon bool
	// Version is ptsync's version, shown in the footer.
	Version string
	// MaxSourceDropPercent is safety.max_source_drop_percent: a source
	// that much smaller than its last good size is marked. 0: not marked.
	MaxSourceDropPercent float64
	// Runs is how many runs the page lists; DefaultRuns when 0.
	Runs int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrExposed is wrapped by the error of a status page that would be open
// without auth on an address other computers can reach.
var ErrExposed = errors.New("the status page would be open to anyone who can reach it")

// CheckExposure says whether the status page may be served on listen
// (host:port) with auth: anything goes with basic auth; without, listen's
// host must be loopback (localhost, 127.0.0.0/8, ::1). An empty host or
// 0.0.0.0 listens on every interface, and a name other than localhost may
// resolve anywhere: both are refused.
func CheckExposure(listen, auth string) error {
	switch auth {
	case AuthBasic:
		return nil
	case "", AuthNone:
	default:
		return fmt.Errorf("status.auth %q: must be %s or %s", auth, AuthNone, AuthBasic)
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("status page address %q: %w", listen, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%w on %s, which is not a loopback address: set status.auth: basic (with status.username and status.password_hash), serve it on 127.0.0.1, or set status.enabled: false", ErrExposed, listen)
	}
	return nil
}

// isLoopbackHost reports whether host (a name or an IP, without port or
// brackets) is this machine: localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isLoopbackAddr reports whether a (a listener's or a connection's local
// address) is a loopback IP.
func isLoopbackAddr(a net.Addr) bool {
	if a == nil {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// atomicStatus holds the status page once EnableStatus has set it.
type atomicStatus = atomic.Pointer[statusPage]

// statusPage is the status page: its options, checked, and its rates.
type statusPage struct {
	opts  StatusOptions
	srv   *Server
	log   *zap.Logger
	rates *rateSampler
	auth  *basicAuth // nil: AuthNone
}

// EnableStatus serves the status page at / (and each run's report at
// /runs/ID, its JSON at /runs/ID/report.json) with opts. It refuses
// options that would serve it without auth on an address that is not
// loopback (ErrExposed), a basic auth without a username or a valid bcrypt
// hash, and a second call. Call it before Serve.
func (s *Server) EnableStatus(opts StatusOptions) error {
	if opts.State == nil {
		return errors.New("status page: no state to read")
	}
	if err := CheckExposure(opts.Listen, opts.Auth); err != nil {
		return err
	}
	if opts.Runs <= 0 {
		opts.Runs = DefaultRuns
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConfigPath != "" && !filepath.IsAbs(opts.ConfigPath) {
		if abs, err := filepath.Abs(opts.ConfigPath); err == nil {
			opts.ConfigPath = abs
		}
	}
	p := &statusPage{opts: opts, srv: s, log: s.log.With(zap.String("handler", "status"))}
	if opts.Auth == AuthBasic {
		a, err := newBasicAuth(opts.Username, opts.PasswordHash)
		if err != nil {
			return err
		}
		p.auth = a
	}
	g := s.gatherer
	if !opts.Daemon {
		g = nil
	}
	p.rates = newRateSampler(g, opts.Now)
	if !s.status.CompareAndSwap(nil, p) {
		return errors.New("status page: already enabled")
	}
	s.mux.Handle("GET /{$}", p.guard(p.index))
	s.mux.Handle("GET /runs/{id}", p.guard(p.run))
	s.mux.Handle("GET /runs/{id}/report.json", p.guard(p.reportJSON))
	return nil
}

// checkListener refuses, without auth, a listener that is not on a
// loopback address (":9464" listens on every interface).
func (p *statusPage) checkListener(a net.Addr) error {
	if p.auth != nil || isLoopbackAddr(a) {
		return nil
	}
	return fmt.Errorf("%w on %s, which is not a loopback address: set status.auth: basic or status.enabled: false", ErrExposed, a)
}

// basicAuth checks HTTP basic credentials against a bcrypt hash.
type basicAuth struct {
	user [sha256.Size]byte
	hash []byte
	// ok is the digest of the last credentials that passed, so a page
	// and its reload do not pay bcrypt's cost each: a browser sends them
	// with every request. Failures always pay it.
	ok atomic.Pointer[[sha256.Size]byte]
	// slots bounds the bcrypt comparisons running at once, so a flood of
	// wrong passwords costs a few cores at most.
	slots chan struct{}
}

func newBasicAuth(user, hash string) (*basicAuth, error) {
	if user == "" || strings.Contains(user, ":") {
		return nil, errors.New("status.auth basic: status.username must be set, without ':'")
	}
	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return nil, errors.New("status.auth basic: status.password_hash is not a bcrypt hash (make one with ptsync status --hash-password)")
	}
	return &basicAuth{user: sha256.Sum256([]byte(user)), hash: []byte(hash), slots: make(chan struct{}, 4)}, nil
}

// check reports whether r carries the credentials.
func (a *basicAuth) check(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	digest := sha256.Sum256([]byte(user + "\x00" + pass))
	if last := a.ok.Load(); last != nil && subtle.ConstantTimeCompare(last[:], digest[:]) == 1 {
		return true
	}
	u := sha256.Sum256([]byte(user))
	select {
	case a.slots <- struct{}{}:
	case <-r.Context().Done():
		return false
	}
	passOK := bcrypt.CompareHashAndPassword(a.hash, []byte(pass)) == nil // always run: no timing tells the username
	<-a.slots
	if subtle.ConstantTimeCompare(a.user[:], u[:]) != 1 || !passOK {
		return false
	}
	a.ok.Store(&digest)
	return true
}

// guard wraps a page handler: the security headers every page carries,
// then the access rule (basic auth, or without it only a request that came
// in on a loopback address).
func (p *statusPage) guard(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-store")
		switch {
		case p.auth != nil:
			if !p.auth.check(r) {
				hdr.Set("WWW-Authenticate", `Basic realm="ptsync status", charset="UTF-8"`)
				writeText(w, http.StatusUnauthorized, "401 Unauthorized: the ptsync status page needs status.username and its password")
				return
			}
		default:
			local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
			if !isLoopbackAddr(local) {
				writeText(w, http.StatusForbidden, "403 Forbidden: the ptsync status page has no auth (status.auth: none), so it answers only on a loopback address")
				return
			}
		}
		h(w, r)
	})
}

//go:embed templates
var templateFS embed.FS

// styleCSS is the page's whole style sheet, inlined; the Content Security
// Policy allows it by hash and allows nothing else: no script, no image,
// no frame, no form.
var styleCSS = mustRead("templates/style.css")

var contentSecurityPolicy = "default-src 'none'; style-src 'sha256-" + hashCSS(styleCSS) +
	"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func mustRead(name string) string {
	b, err := templateFS.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func hashCSS(css string) string {
	sum := sha256.Sum256([]byte(css))
	return base64.StdEncoding.EncodeToString(sum[:])
}

var (
	indexTemplate = parsePage("templates/index.html")
	runTemplate   = parsePage("templates/run.html")
	errorTemplate = parsePage("templates/error.html")
)

func parsePage(name string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", name))
}

// render writes page data with t, status and all, or a plain 500 when
// the template fails (it is executed into a buffer first).
func (p *statusPage) render(w http.ResponseWriter, t *template.Template, status int, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		p.log.Error("status page: template failed", zap.Error(err))
		writeText(w, http.StatusInternalServerError, "500 Internal Server Error: the status page could not be rendered (see the log)")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// layout is what every page shows around its content.
type layout struct {
	Title   string
	CSS     template.CSS
	Now     time.Time
	Version string
	Daemon  bool
	// Problem is why the state could not be read, InUse whether another
	// ptsync holds it.
	Problem string
	InUse   bool
	// NoState says no run has written a state yet.
	NoState bool
}

func (p *statusPage) layout(title string) layout {
	return layout{Title: title, CSS: template.CSS(styleCSS), Now: p.opts.Now(), Version: p.opts.Version, Daemon: p.opts.Daemon}
}

// fail answers a request whose state could not be read: 503 while
// another ptsync holds it (try again), 200 before there is any state (a
// page saying so), 404 for a run there is no record of, else 500.
func (p *statusPage) fail(w http.ResponseWriter, title string, err error) {
	l := p.layout(title)
	l.Problem = err.Error()
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, state.ErrInUse):
		l.InUse = true
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	case errors.Is(err, ErrNoState):
		l.NoState = true
		status = http.StatusOK
	case errors.Is(err, state.ErrUnknownRun):
		status = http.StatusNotFound
	default:
		p.log.Warn("status page: the state could not be read", zap.Error(err))
	}
	p.render(w, errorTemplate, status, l)
}

// runHref is the address of a run's page.
func runHref(id string) string { return "/runs/" + url.PathEscape(id) }
