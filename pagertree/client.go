package pagertree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/ptsync/ptsync/internal/httpx"
)

// service names PagerTree in errors and logs.
const service = "pagertree"

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
	// (httpx.DefaultConcurrency when zero).
	Concurrency int
	// Timeout bounds each request attempt, answer body included
	// (httpx.DefaultTimeout when zero).
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call that meets 429, 5xx or
	// transport errors (httpx.DefaultMaxAttempts when zero). The replay after a
	// fresh login on 401 does not count.
	MaxAttempts int
	// MaxRetryWait is the longest Retry-After a 429 or 5xx may ask for and
	// still be retried (httpx.DefaultMaxRetryWait when zero). An answer asking
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
	http *httpx.Client
	auth httpx.Auth
}

// New checks cfg and returns a Client. It does not contact the server;
// call Login to check the credentials early.
func New(cfg Config) (*Client, error) {
	// The message does not quote the URL: it may carry a token as its user
	// name. httpx.New checks the rest of it.
	base, err := url.Parse(cfg.URL)
	if err == nil && base.User != nil {
		return nil, errors.New("pagertree: url: credentials belong in username and password, not the URL")
	}
	lg := &login{username: cfg.Username, password: cfg.Password}
	auth := httpx.TokenAuth("", lg.fetch) // the token goes raw in Authorization: the API's way
	hc, err := httpx.New(httpx.Config{
		Service:           service,
		BaseURL:           cfg.URL,
		Auth:              auth,
		RequestsPerSecond: cfg.RequestsPerSecond,
		Concurrency:       cfg.Concurrency,
		Timeout:           cfg.Timeout,
		MaxAttempts:       cfg.MaxAttempts,
		MaxRetryWait:      cfg.MaxRetryWait,
		HTTPClient:        cfg.HTTPClient,
		Observer:          cfg.Observer,
		Logger:            cfg.Logger,
		ParseError:        parseError,
		Secrets:           []string{cfg.Password},
	})
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Username == "":
		return nil, errors.New("pagertree: username is empty")
	case cfg.Password == "":
		return nil, errors.New("pagertree: password is empty")
	}
	lg.http, lg.url = hc, base.Redacted()
	return &Client{http: hc, auth: auth}, nil
}

// Login logs in with the configured credentials and keeps the token for
// the requests that follow. Calls that need a token log in by themselves;
// Login is for checking the credentials early, on a new Client. A 401 from
// the login itself is returned as an *APIError, not retried.
func (c *Client) Login(ctx context.Context) error {
	_, err := c.auth.Apply(ctx, &http.Request{Header: http.Header{}})
	return err
}

// login logs in with POST /public/login, sent anonymously through the
// Client's own transport; httpx.TokenAuth keeps its token, logs in once at
// a time and again when the token is refused.
type login struct {
	http               *httpx.Client
	url                string // for the log
	username, password string
}

// fetch logs in and returns the token, which has no expiry: it is kept
// until PagerTree refuses it.
func (l *login) fetch(ctx context.Context) (*oauth2.Token, error) {
	token, err := l.login(ctx)
	if err != nil {
		return nil, err
	}
	l.http.Logger().Debug("logged in to PagerTree", zap.String("url", l.url))
	return &oauth2.Token{AccessToken: token}, nil
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

func (l *login) login(ctx context.Context) (string, error) {
	body, err := json.Marshal(loginRequest{Username: l.username, Password: l.password})
	if err != nil {
		return "", fmt.Errorf("pagertree: login: encoding the request: %w", err)
	}
	var answer loginAnswer
	_, err = l.http.DecodeJSON(ctx, httpx.Request{Method: http.MethodPost, Route: "/public/login", Path: "/public/login", Body: body, Anonymous: true}, &answer)
	if err != nil {
		return "", err
	}
	token, err := tokenText(answer.Token)
	if err != nil {
		return "", fmt.Errorf("pagertree: POST /public/login: %w", err)
	}
	return token, nil
}

// parseError reads the seed's error body, {"errors":[{"message"}]}; it
// carries no code.
func parseError(_ int, body []byte) (string, []string) {
	var eb ErrorBody
	if json.Unmarshal(body, &eb) != nil {
		return "", nil
	}
	messages := make([]string, 0, len(eb.Errors))
	for _, e := range eb.Errors {
		messages = append(messages, e.Message)
	}
	return "", messages
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

// idPath is "/<collection>/<id>" with the id escaped. An empty id would
// address the collection itself and "." or ".." another path, so they are
// refused.
func idPath(collection, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("pagertree: invalid %s id %q", collection, id)
	}
	return "/" + collection + "/" + url.PathEscape(id), nil
}

// answered is what a create or update answer says of its object, and what
// it should say: the id addressed (none on a create) and the owned field
// sent (field "" when none is checked).
type answered struct {
	id, wantID       string
	field, got, sent string
}

// checkAnswer refuses a 2xx answer to a write that does not describe the
// object written: no id, another id, or another email or name than sent.
// The write may have gone through, but counting it done would pass an
// empty or wrong id on to the writes that follow (a team's members); the
// next run reads PagerTree afresh and plans what is left.
func checkAnswer(method, route string, status int, a answered) error {
	var problem string
	switch {
	case a.id == "":
		problem = "without an id"
	case a.wantID != "" && a.id != a.wantID:
		problem = fmt.Sprintf("for id %q, not %q", a.id, a.wantID)
	case a.field == "email" && !strings.EqualFold(strings.TrimSpace(a.got), strings.TrimSpace(a.sent)):
		problem = fmt.Sprintf("with the email %q, not %q", a.got, a.sent)
	case a.field == "name" && a.got != a.sent:
		problem = fmt.Sprintf("with the name %q, not %q", a.got, a.sent)
	default:
		return nil
	}
	return fmt.Errorf("pagertree: %s %s answered %d %s; the change is not counted as done (the next run reads PagerTree again)", method, route, status, problem)
}
