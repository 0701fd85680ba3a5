package pagertree

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
)

// Config configures a Client.
type Config struct {
	// URL is the API's base URL, e.g. "https://api.pagertree.com".
	URL string
	// Username and Password are the credentials POST /public/login takes.
	Username, Password string
	// RequestsPerSecond is a client-side ceiling on requests, every attempt
	// (retries and logins included) counted, however many goroutines share
	// the Client. Zero means no client-side limit.
	RequestsPerSecond float64
	// Concurrency bounds the pages of a list fetched at once
	// (DefaultConcurrency when zero).
	Concurrency int
	// Timeout bounds each request attempt, answer body included
	// (DefaultTimeout when zero).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call that meets 429, 5xx or
	// transport errors (DefaultMaxAttempts when zero). The replay after a
	// fresh login on 401 does not count.
	MaxAttempts int
	// MaxRetryWait is the longest Retry-After a 429 or 5xx may ask for and
	// still be retried (DefaultMaxRetryWait when zero). An answer asking
	// for longer ends the call at once with its *APIError, RetryAfter set:
	// retrying sooner than asked is pointless, and waiting that long would
	// stall the run.
	MaxRetryWait time.Duration
	// HTTPClient sends the requests; when nil, a client with a connection
	// pool sized for Concurrency is used. Its Timeout should stay zero:
	// Timeout above bounds each attempt instead.
	HTTPClient *http.Client
	// Observer, when set, is told of every request attempt and retry.
	Observer Observer
	// Logger receives debug lines on logins and retries (zap.NewNop when
	// nil). No line carries a token, password or Authorization header.
	Logger *zap.Logger
}

// Client is a PagerTree API client. It logs in on first use and again when
// the token is refused. All methods are safe for concurrent use.
type Client struct {
	base         *url.URL
	username     string
	password     string
	http         *http.Client
	limiterMu    sync.Mutex // see waitTurn
	limiter      *rate.Limiter
	concurrency  int
	timeout      time.Duration
	maxAttempts  int
	maxRetryWait time.Duration
	observer     Observer
	log          *zap.Logger

	// loginSlot is a one-slot semaphore that lets a single login run at a
	// time; unlike a mutex, waiting on it respects the caller's context.
	loginSlot chan struct{}
	tokenMu   sync.RWMutex
	token     string
}

// New checks cfg and returns a Client. It does not contact the server;
// call Login to check the credentials early.
func New(cfg Config) (*Client, error) {
	// Neither message quotes the URL: url.Parse's error repeats it whole,
	// and a URL may carry a token as its user name.
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, errors.New("pagertree: url is not a valid URL; want http(s)://host")
	}
	if base.User != nil {
		return nil, errors.New("pagertree: url: credentials belong in username and password, not the URL")
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("pagertree: url %q: want http(s)://host", base.String())
	}
	switch {
	case cfg.Username == "":
		return nil, errors.New("pagertree: username is empty")
	case cfg.Password == "":
		return nil, errors.New("pagertree: password is empty")
	case cfg.RequestsPerSecond < 0:
		return nil, fmt.Errorf("pagertree: requests per second %v is negative", cfg.RequestsPerSecond)
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("pagertree: concurrency %d is negative", cfg.Concurrency)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("pagertree: timeout %v is negative", cfg.Timeout)
	case cfg.MaxAttempts < 0:
		return nil, fmt.Errorf("pagertree: max attempts %d is negative", cfg.MaxAttempts)
	case cfg.MaxRetryWait < 0:
		return nil, fmt.Errorf("pagertree: max retry wait %v is negative", cfg.MaxRetryWait)
	}
	c := &Client{
		base:         base,
		username:     cfg.Username,
		password:     cfg.Password,
		http:         cfg.HTTPClient,
		concurrency:  cmp.Or(cfg.Concurrency, DefaultConcurrency),
		timeout:      cmp.Or(cfg.Timeout, DefaultTimeout),
		maxAttempts:  cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		maxRetryWait: cmp.Or(cfg.MaxRetryWait, DefaultMaxRetryWait),
		observer:     cfg.Observer,
		log:          cfg.Logger,
		loginSlot:    make(chan struct{}, 1),
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
	return c, nil
}

// Login logs in with the configured credentials and keeps the token for
// the requests that follow. Calls that need a token log in by themselves;
// Login is for checking the credentials early. A 401 from the login itself
// is returned as an *APIError, not retried.
func (c *Client) Login(ctx context.Context) error {
	return c.relogin(ctx, c.currentToken())
}

func (c *Client) currentToken() string {
	c.tokenMu.RLock()
	defer c.tokenMu.RUnlock()
	return c.token
}

// validToken returns the token, logging in first when there is none yet.
func (c *Client) validToken(ctx context.Context) (string, error) {
	if token := c.currentToken(); token != "" {
		return token, nil
	}
	if err := c.relogin(ctx, ""); err != nil {
		return "", err
	}
	return c.currentToken(), nil
}

// relogin logs in unless the token has changed from failed since the caller
// used it: when many requests meet a 401 at once, the first one in logs in
// and the others pick up its token, so there is no storm of logins.
func (c *Client) relogin(ctx context.Context, failed string) error {
	select {
	case c.loginSlot <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("pagertree: waiting for login: %w", ctx.Err())
	}
	defer func() { <-c.loginSlot }()
	if c.currentToken() != failed {
		return nil
	}
	token, err := c.login(ctx)
	if err != nil {
		return err
	}
	c.tokenMu.Lock()
	c.token = token
	c.tokenMu.Unlock()
	c.log.Debug("logged in to PagerTree", zap.String("url", c.base.Redacted()))
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// loginAnswer is the login response. The seed's example shows a number for
// token, the service sends a string; both are taken as the token's text.
type loginAnswer struct {
	Token json.RawMessage `json:"token"`
}

func (c *Client) login(ctx context.Context) (string, error) {
	body, err := json.Marshal(loginRequest{Username: c.username, Password: c.password})
	if err != nil {
		return "", fmt.Errorf("pagertree: login: encoding the request: %w", err)
	}
	var answer loginAnswer
	err = c.do(ctx, request{method: http.MethodPost, route: "/public/login", path: "/public/login", body: body, anonymous: true}, decodeJSON(&answer))
	if err != nil {
		return "", err
	}
	token, err := tokenText(answer.Token)
	if err != nil {
		return "", fmt.Errorf("pagertree: POST /public/login: %w", err)
	}
	return token, nil
}

// tokenText returns a login answer's token as the text to send back:
// a JSON string unquoted, a JSON number as written.
func tokenText(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", errors.New("the answer's token is empty")
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", errors.New("the answer has no token")
}

// endpoint is the URL of an escaped path under the base URL's path.
func (c *Client) endpoint(path string, query url.Values) string {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	return u.String()
}

// idPath is "/<collection>/<id>" with the id escaped. An empty id would
// address the collection itself and "." or ".." another path, so they are
// refused.
func idPath(collection, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("pagertree: invalid %s id %q", collection, id)
	}
	return "/" + collection + "/" + url.PathEscape(id), nil
}
