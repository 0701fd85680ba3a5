package pagertree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/ptsync/ptsync/internal/httpx"
)

// service names PagerTree in errors and logs.
const service = "pagertree"

// The APIs a Client speaks (Config.API).
const (
	APIv3 = "v3"
	APIv4 = "v4"
)

// Config configures a Client.
type Config struct {
	// URL is the server's base URL, e.g. "https://api.pagertree.com"; v4
	// routes go under it at APIPrefix.
	URL string
	// API is the API the Client speaks: APIv3 (also when empty), logging
	// in with Username and Password, or APIv4, sending APIKey. A Client
	// speaks one: the other's methods fail without sending anything.
	API string
	// Username and Password are the credentials POST /public/login takes
	// (v3 only).
	Username, Password string
	// APIKey is the key v4 sends as "Authorization: Bearer <key>" (v4 only).
	APIKey string
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

// Client is a PagerTree API client of one API, v3 or v4. On v3 it logs in
// on first use and again when the token is refused; on v4 it sends the API
// key. All methods are safe for concurrent use.
type Client struct {
	http *httpx.Client
	auth httpx.Auth
	v4   bool
}

// New checks cfg and returns a Client. It does not contact the server;
// call Login to check the credentials early.
func New(cfg Config) (*Client, error) {
	if cfg.API == "" {
		cfg.API = APIv3
	}
	if cfg.API != APIv3 && cfg.API != APIv4 {
		return nil, fmt.Errorf("pagertree: api %q: want %q or %q", cfg.API, APIv3, APIv4)
	}
	v4 := cfg.API == APIv4
	// The message does not quote the URL: it may carry a token as its user
	// name. httpx.New checks the rest of it.
	base, err := url.Parse(cfg.URL)
	switch {
	case err == nil && base.User != nil && v4:
		return nil, errors.New("pagertree: url: credentials belong in the api key, not the URL")
	case err == nil && base.User != nil:
		return nil, errors.New("pagertree: url: credentials belong in username and password, not the URL")
	case err == nil && v4 && strings.HasSuffix(strings.TrimRight(base.Path, "/"), APIPrefix):
		// Routes are joined under the URL: this one would send to /api/v4/api/v4/….
		return nil, fmt.Errorf("pagertree: url %q: give the server's URL without %s; the client adds it", base.String(), APIPrefix)
	}
	var (
		lg    *login
		auth  httpx.Auth
		parse = parseError
	)
	if v4 {
		auth, parse = httpx.HeaderAuth("Bearer", cfg.APIKey), parseErrorV4
	} else {
		lg = &login{username: cfg.Username, password: cfg.Password}
		auth = httpx.TokenAuth("", lg.fetch) // the token goes raw in Authorization: the API's way
	}
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
		ParseError:        parse,
		Secrets:           []string{cfg.Password, cfg.APIKey},
	})
	if err != nil {
		return nil, err
	}
	// Credentials of the other API are refused rather than ignored: they
	// say the configuration meant the other API.
	switch {
	case v4 && cfg.APIKey == "":
		return nil, errors.New("pagertree: api key is empty (the v4 API needs one)")
	case v4 && (cfg.Username != "" || cfg.Password != ""):
		return nil, errors.New("pagertree: username and password are for the v3 API; v4 takes an api key only")
	case v4:
		return &Client{http: hc, auth: auth, v4: true}, nil
	case cfg.APIKey != "":
		return nil, errors.New(`pagertree: an api key is for the v4 API; set api to "v4" to use it, or leave it empty for v3`)
	case cfg.Username == "":
		return nil, errors.New("pagertree: username is empty")
	case cfg.Password == "":
		return nil, errors.New("pagertree: password is empty")
	}
	lg.http, lg.url = hc, base.Redacted()
	return &Client{http: hc, auth: auth}, nil
}

// Login checks the credentials early, on a new Client; the other calls
// need no Login first. On v3 it logs in and keeps the token for the
// requests that follow. On v4, which has no login, it lists one account
// user: a key the server refuses fails it. Either way a 401 is returned as
// an *APIError, not retried.
func (c *Client) Login(ctx context.Context) error {
	if c.v4 {
		return c.checkKey(ctx)
	}
	_, err := c.auth.Apply(ctx, &http.Request{Header: http.Header{}})
	return err
}

// do sends req, once speaks lets it.
func (c *Client) do(ctx context.Context, req httpx.Request) (*httpx.Response, error) {
	if err := c.speaks(req); err != nil {
		return nil, err
	}
	return c.http.Do(ctx, req)
}

// decode is httpx's DecodeJSON, once speaks lets req go.
func (c *Client) decode(ctx context.Context, req httpx.Request, v any) (*httpx.Response, error) {
	if err := c.speaks(req); err != nil {
		return nil, err
	}
	return c.http.DecodeJSON(ctx, req, v)
}

// speaks refuses a request of the API the Client does not speak: a v3
// method called on a v4 Client, or the reverse, fails naming the mix-up
// instead of drawing a 404 from the server (or, on v3, a login with no
// credentials). Every request but the v3 login goes through do or decode.
func (c *Client) speaks(req httpx.Request) error {
	v4 := strings.HasPrefix(req.Route, APIPrefix+"/")
	if v4 == c.v4 {
		return nil
	}
	want, have := APIv3, APIv4
	if v4 {
		want, have = APIv4, APIv3
	}
	return fmt.Errorf("pagertree: %s %s is a %s call, and this client speaks %s (Config.API); nothing was sent", req.Method, req.Route, want, have)
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
	return "", messages(eb.Errors)
}

func messages(errs []ErrorMessage) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Message)
	}
	return out
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

// idPath is "<collection>/<id>", collection a route ("/user",
// "/api/v4/teams"), with the id escaped. An empty id would address the
// collection itself and "." or ".." another path, so they are refused.
func idPath(collection, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("pagertree: %s: invalid id %q", collection, id)
	}
	return collection + "/" + url.PathEscape(id), nil
}

// answered is what a create or update answer says of its object, and what
// it should say. Each check is made only when there is something to
// compare with: the id addressed (none on a create), the person's id (a v4
// update of a person), the emails sent (one of them will do: v4 sends a
// list) and the name sent.
type answered struct {
	id, wantID         string
	userID, wantUserID string
	emails, sentEmails []string
	name               string
	sentName           *string
}

// checkAnswer refuses a 2xx answer to a write that does not describe the
// object written: no id, another id or person, none of the emails sent, or
// another name than sent. The write may have gone through, but counting it
// done would pass an empty or wrong id on to the writes that follow (a
// team's members); the next run reads PagerTree afresh and plans what is
// left.
func checkAnswer(method, route string, status int, a answered) error {
	var problem string
	switch {
	case a.id == "":
		problem = "without an id"
	case a.wantID != "" && a.id != a.wantID:
		problem = fmt.Sprintf("for id %q, not %q", a.id, a.wantID)
	case a.wantUserID != "" && a.userID != a.wantUserID:
		problem = fmt.Sprintf("for the user %q, not %q", a.userID, a.wantUserID)
	case len(a.sentEmails) > 0 && !slices.ContainsFunc(a.emails, func(e string) bool { return slices.ContainsFunc(a.sentEmails, sameEmail(e)) }):
		got := "no email"
		if len(a.emails) > 0 {
			got = "the email " + quoted(a.emails, ", ")
		}
		problem = fmt.Sprintf("with %s, not %s", got, quoted(a.sentEmails, " or "))
	case a.sentName != nil && a.name != *a.sentName:
		problem = fmt.Sprintf("with the name %q, not %q", a.name, *a.sentName)
	default:
		return nil
	}
	return fmt.Errorf("pagertree: %s %s answered %d %s; the change is not counted as done (the next run reads PagerTree again)", method, route, status, problem)
}

// sameEmail matches an email as PagerTree does: case and surrounding
// spaces aside.
func sameEmail(email string) func(string) bool {
	email = strings.TrimSpace(email)
	return func(other string) bool { return strings.EqualFold(strings.TrimSpace(other), email) }
}

// quoted is the strings quoted and joined by sep.
func quoted(ss []string, sep string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, sep)
}
