// Package httpx is the one HTTP transport of ptsync's API clients: the
// PagerTree client and the directory API sources (Microsoft Graph, Okta,
// Google, SCIM). It sends JSON requests with retries (429, 5xx and transport
// errors, full-jitter backoff honouring Retry-After), pluggable credentials
// renewed after a 401, a client-side rate ceiling, a per-attempt timeout, a
// bound on answer sizes, request metrics through an Observer, and errors
// that name a route template, never a URL with ids, and never a secret.
package httpx

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Defaults New applies to a zero Config field.
const (
	DefaultConcurrency = 4
	DefaultTimeout     = 30 * time.Second
	DefaultMaxAttempts = 6
	// DefaultMaxRetryWait is long enough for any rate limit window seen in
	// practice and short enough not to stall a scheduled run.
	DefaultMaxRetryWait = 2 * time.Minute
	// DefaultMaxAnswerBytes bounds an answer body: a PagerTree list page of
	// 100 objects or a Graph page of 999 users (1-2 MB) is far smaller, so
	// anything above it is a fault, not data.
	DefaultMaxAnswerBytes = 10 << 20
)

// Observer is told of every request attempt (code 0: no answer) and every
// retry, so callers can turn them into metrics without this package knowing
// Prometheus.
type Observer interface {
	// ObserveRequest reports a finished attempt. route is the template
	// ("/user/:id"), code the HTTP status or 0 when no answer arrived.
	ObserveRequest(method, route string, code int, d time.Duration)
	// ObserveRetry reports one retry and why: "429", "5xx", "transport" or
	// "401".
	ObserveRetry(reason string) // "429" | "5xx" | "transport" | "401"
}

// Gate paces requests by what the server says of its own limits (Okta's
// X-Rate-Limit-* headers, which differ by endpoint, hence the route):
// Wait is called before every attempt, Observe with every answer's header.
type Gate interface {
	// Wait blocks until a request of route (its template) may go.
	Wait(ctx context.Context, route string) error
	// Observe is shown the header of every answer to a request of route.
	Observe(route string, h http.Header, now time.Time)
}

// Config configures a Client.
type Config struct {
	// Service names the peer in errors and logs: "pagertree", "msgraph",
	// "okta".
	Service string
	// BaseURL is the API's base URL ("https://graph.microsoft.com/v1.0"):
	// Request.Path is joined to it, and an absolute Request.URL must have
	// its scheme and host.
	BaseURL string
	// Auth puts credentials on every request that is not Anonymous; nil
	// sends none.
	Auth Auth
	// RequestsPerSecond is a client-side ceiling on requests, every attempt
	// (retries and credential fetches through this Client included)
	// counted, however many goroutines share the Client. Zero means none.
	RequestsPerSecond float64
	// Concurrency is how many requests callers should have in flight at
	// once (DefaultConcurrency when zero); it also sizes the idle
	// connection pool of the default HTTP client.
	Concurrency int
	// Timeout bounds each attempt, answer body included (DefaultTimeout
	// when zero).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call that meets 429, 5xx or
	// transport errors (DefaultMaxAttempts when zero). The replay after a
	// credential renewal on 401 does not count.
	MaxAttempts int
	// MaxRetryWait is the longest Retry-After a 429 or 5xx may ask for and
	// still be retried (DefaultMaxRetryWait when zero). An answer asking
	// for longer ends the call at once with its *APIError, RetryAfter set.
	MaxRetryWait time.Duration
	// HTTPClient sends the requests; when nil, a client with a connection
	// pool sized for Concurrency is used. Its Timeout should stay zero:
	// Timeout above bounds each attempt instead.
	HTTPClient *http.Client
	// Observer, when set, is told of every attempt and retry.
	Observer Observer
	// Logger receives debug lines on retries and renewals (zap.NewNop when
	// nil). No line carries a credential or an Authorization header.
	Logger *zap.Logger
	// ParseError decodes an error answer's body into a provider code (may
	// be "") and messages; nil reads none. Empty messages are dropped, long
	// ones cut, and with none left the status text stands in.
	ParseError func(status int, body []byte) (code string, messages []string)
	// Gate, when set, is waited on before every attempt and shown every
	// answer's header.
	Gate Gate
	// RetryAfter, when set, replaces the Retry-After header reading for 429
	// and 5xx answers (Okta: until X-Rate-Limit-Reset). It gets the
	// answer's header and the time it arrived.
	RetryAfter func(h http.Header, now time.Time) time.Duration
	// Throttled, when set, is shown each answer outside 2xx that would
	// otherwise end the call (not 429, 5xx, or a 401 that renews the
	// credentials) as its *APIError: true makes it a rate-limit answer,
	// retried as a 429 is (Observer reason "429"). For APIs that say "slow
	// down" with another status: Google's 403 userRateLimitExceeded.
	Throttled func(e *APIError) bool
	// Secrets are extra strings cut from error messages (a password); the
	// credential Auth put on the request is always cut.
	Secrets []string
	// MaxAnswerBytes bounds an answer body (DefaultMaxAnswerBytes when
	// zero); a larger answer ends the call with an error.
	MaxAnswerBytes int64
}

// Client sends requests to one API. All methods are safe for concurrent
// use.
type Client struct {
	service        string
	base           *url.URL
	auth           Auth
	http           *http.Client
	limiterMu      sync.Mutex // see waitTurn
	limiter        *rate.Limiter
	concurrency    int
	timeout        time.Duration
	maxAttempts    int
	maxRetryWait   time.Duration
	maxAnswerBytes int64
	observer       Observer
	log            *zap.Logger
	parseError     func(status int, body []byte) (string, []string)
	gate           Gate
	retryAfter     func(h http.Header, now time.Time) time.Duration
	throttled      func(e *APIError) bool
	secrets        []string
}

// New checks cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	if cfg.Service == "" {
		return nil, errors.New("httpx: the service name is empty")
	}
	base, err := parseBaseURL(cfg.Service, cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.RequestsPerSecond < 0:
		return nil, fmt.Errorf("%s: requests per second %v is negative", cfg.Service, cfg.RequestsPerSecond)
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("%s: concurrency %d is negative", cfg.Service, cfg.Concurrency)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%s: timeout %v is negative", cfg.Service, cfg.Timeout)
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("%s: max attempts %d is negative", cfg.Service, cfg.MaxAttempts)
	case cfg.MaxRetryWait < 0:
		return nil, fmt.Errorf("%s: max retry wait %v is negative", cfg.Service, cfg.MaxRetryWait)
	case cfg.MaxAnswerBytes < 0:
		return nil, fmt.Errorf("%s: max answer bytes %d is negative", cfg.Service, cfg.MaxAnswerBytes)
	}
	c := &Client{
		service:        cfg.Service,
		base:           base,
		auth:           cfg.Auth,
		http:           cfg.HTTPClient,
		concurrency:    cmp.Or(cfg.Concurrency, DefaultConcurrency),
		timeout:        cmp.Or(cfg.Timeout, DefaultTimeout),
		maxAttempts:    cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		maxRetryWait:   cmp.Or(cfg.MaxRetryWait, DefaultMaxRetryWait),
		maxAnswerBytes: cmp.Or(cfg.MaxAnswerBytes, DefaultMaxAnswerBytes),
		observer:       cfg.Observer,
		log:            cfg.Logger,
		parseError:     cfg.ParseError,
		gate:           cfg.Gate,
		retryAfter:     cfg.RetryAfter,
		throttled:      cfg.Throttled,
		secrets:        cfg.Secrets,
	}
	// A burst of one spaces attempts at least 1/RequestsPerSecond apart, so
	// no one-second window, wherever it starts, holds more than the limit
	// plus the attempt at its very edge; a larger burst would let a window
	// hold limit+burst-1 and a server enforcing the same limit answer 429.
	// With rate.Inf, AllowN always allows and the burst does not matter.
	c.limiter = rate.NewLimiter(rate.Inf, 0)
	if cfg.RequestsPerSecond > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1)
	}
	if c.http == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		// The default of two idle connections per host would make
		// concurrent callers open and close a connection per request.
		transport.MaxIdleConnsPerHost = max(c.concurrency, transport.MaxIdleConnsPerHost)
		c.http = &http.Client{Transport: transport}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.log = c.log.With(zap.String("service", c.service))
	return c, nil
}

// parseBaseURL checks a base URL. No message quotes the URL's userinfo:
// url.Parse's error repeats the URL whole, and a URL may carry a token as
// its user name.
func parseBaseURL(service, raw string) (*url.URL, error) {
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: url is not a valid URL; want http(s)://host", service)
	}
	if base.User != nil {
		return nil, fmt.Errorf("%s: url: credentials do not belong in the URL", service)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%s: url %q: want http(s)://host", service, base.String())
	}
	return base, nil
}

// Concurrency is the number of requests callers should keep in flight at
// most (Config.Concurrency or its default).
func (c *Client) Concurrency() int { return c.concurrency }

// Logger is the Client's logger, with the service named.
func (c *Client) Logger() *zap.Logger { return c.log }

// target is the URL req goes to: Request.URL as given when set (it must
// share the base URL's scheme and host, so credentials never go to another
// host), else Request.Path under the base URL's path with Request.Query.
func (c *Client) target(req Request) (string, error) {
	if req.URL == "" {
		u := c.base.JoinPath(req.Path)
		u.RawQuery = req.Query.Encode()
		return u.String(), nil
	}
	// As in parseBaseURL, no message quotes the URL.
	u, err := url.Parse(req.URL)
	switch {
	case err != nil:
		return "", errors.New("the next URL is not a valid URL")
	case u.User != nil:
		return "", errors.New("the next URL carries credentials")
	case !u.IsAbs() || u.Host == "":
		return "", errors.New("the next URL is not absolute")
	case !strings.EqualFold(u.Scheme, c.base.Scheme) || !strings.EqualFold(u.Host, c.base.Host):
		return "", fmt.Errorf("refusing to send to %s://%s: not the base URL's scheme and host", u.Scheme, u.Host)
	}
	return u.String(), nil
}
