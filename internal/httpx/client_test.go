package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/httpx"
)

func TestNewRefusesBadConfig(t *testing.T) {
	valid := httpx.Config{Service: "okta", BaseURL: "https://example.okta.com"}
	tests := []struct {
		name    string
		edit    func(*httpx.Config)
		wantErr string
	}{
		{"no service", func(c *httpx.Config) { c.Service = "" }, "httpx: the service name is empty"},
		{"not a URL", func(c *httpx.Config) { c.BaseURL = "https://secret@exa mple.com:x" }, "okta: url is not a valid URL; want http(s)://host"},
		{"no scheme", func(c *httpx.Config) { c.BaseURL = "example.okta.com" }, `okta: url "example.okta.com": want http(s)://host`},
		{"ftp", func(c *httpx.Config) { c.BaseURL = "ftp://example.okta.com" }, `okta: url "ftp://example.okta.com": want http(s)://host`},
		{"no host", func(c *httpx.Config) { c.BaseURL = "https:///v1" }, `okta: url "https:///v1": want http(s)://host`},
		{"credentials in URL", func(c *httpx.Config) { c.BaseURL = "https://u:secret@example.okta.com" }, "okta: url: credentials do not belong in the URL"},
		{"negative rate", func(c *httpx.Config) { c.RequestsPerSecond = -1 }, "okta: requests per second -1 is negative"},
		{"negative concurrency", func(c *httpx.Config) { c.Concurrency = -2 }, "okta: concurrency -2 is negative"},
		{"negative timeout", func(c *httpx.Config) { c.Timeout = -1 }, "okta: timeout -1ns is negative"},
		{"negative attempts", func(c *httpx.Config) { c.MaxAttempts = -1 }, "okta: max attempts -1 is negative"},
		{"negative retry wait", func(c *httpx.Config) { c.MaxRetryWait = -time.Second }, "okta: max retry wait -1s is negative"},
		{"negative answer bound", func(c *httpx.Config) { c.MaxAnswerBytes = -1 }, "okta: max answer bytes -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			_, err := httpx.New(cfg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("New error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	c, err := httpx.New(valid)
	if err != nil {
		t.Fatalf("New(valid): %v", err)
	}
	if c.Concurrency() != httpx.DefaultConcurrency || c.Logger() == nil {
		t.Fatalf("Concurrency() = %d, Logger() = %v; want the default and a logger", c.Concurrency(), c.Logger())
	}
}

func TestRequestIsBuiltFromPathQueryHeaderAndBody(t *testing.T) {
	var got struct {
		uri, accept, contentType, consistency, body string
	}
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got.uri, got.accept, got.contentType = r.RequestURI, r.Header.Get("Accept"), r.Header.Get("Content-Type")
		got.consistency = r.Header.Get("ConsistencyLevel")
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		got.body = string(b[:n])
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	c := newClient(t, srv.URL+"/v1.0", nil)
	var answer struct{ OK bool }
	resp, err := c.DecodeJSON(t.Context(), httpx.Request{
		Method: http.MethodPost, Route: "/groups/{id}/members",
		Path:   "/groups/" + url.PathEscape("g/1") + "/members",
		Query:  url.Values{"$select": {"id,mail"}},
		Header: http.Header{"consistencylevel": {"eventual"}},
		Body:   []byte(`{"a":1}`),
	}, &answer)
	if err != nil || !answer.OK || resp.Status != http.StatusOK {
		t.Fatalf("DecodeJSON = %+v, %v (answer %+v)", resp, err, answer)
	}
	want := "/v1.0/groups/g%2F1/members?%24select=id%2Cmail"
	if got.uri != want || got.accept != "application/json" || got.contentType != "application/json" ||
		got.consistency != "eventual" || got.body != `{"a":1}` {
		t.Fatalf("sent %+v; want URI %s, JSON headers, ConsistencyLevel and the body", got, want)
	}
}

func TestAbsoluteURL(t *testing.T) {
	api := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	foreign := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	c := newClient(t, api.URL+"/api/v1", func(cfg *httpx.Config) { cfg.Auth = httpx.HeaderAuth("SSWS", "api-token") })

	// A next link on the base URL's host is followed as given; Path and
	// Query are ignored.
	next := api.URL + "/api/v1/users?after=abc&limit=200"
	if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/users", Path: "/ignored", Query: url.Values{"x": {"y"}}, URL: next}); err != nil {
		t.Fatalf("Do(next link): %v", err)
	}
	if sent := api.requests(); len(sent) != 1 || sent[0].Path != "/api/v1/users" || sent[0].Query != "after=abc&limit=200" || sent[0].Authorization != "SSWS api-token" {
		t.Fatalf("sent %+v; want the next link as given, with the credentials", sent)
	}

	foreignURL, _ := url.Parse(foreign.URL)
	apiURL, _ := url.Parse(api.URL)
	for name, target := range map[string]string{
		"another host":        foreign.URL + "/api/v1/users?after=abc",
		"another port":        "http://127.0.0.1:1/api/v1/users",
		"another scheme":      "https://" + apiURL.Host + "/api/v1/users",
		"credentials in it":   "http://user:pw-in-url@" + apiURL.Host + "/api/v1/users",
		"relative":            "/api/v1/users?after=abc",
		"no host":             "http:///api/v1/users",
		"not a URL":           "http://pw-in-url@" + apiURL.Host + ":x/",
		"the foreign by name": "http://localhost:" + foreignURL.Port() + "/users",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/users", URL: target})
			if err == nil || !strings.HasPrefix(err.Error(), "test: GET /users: ") {
				t.Fatalf("Do(%s) = %v; want it refused", target, err)
			}
			if strings.Contains(err.Error(), "pw-in-url") || strings.Contains(err.Error(), "after=abc") {
				t.Fatalf("the error quotes the URL: %v", err)
			}
		})
	}
	if n := len(foreign.requests()); n != 0 {
		t.Fatalf("the foreign host got %d requests", n)
	}
	if n := len(api.requests()); n != 1 {
		t.Fatalf("the API got %d requests, want only the first", n)
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) {
		case 1:
			fail(w, http.StatusServiceUnavailable, "down")
		case 2:
			w.Header().Set("Retry-After", "0")
			fail(w, http.StatusTooManyRequests, "slow down")
		case 3:
			// The answer is lost: the connection closes with no response.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			_, _ = w.Write([]byte(`{"id":"1"}`))
		}
	})
	obs := &events{}
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Observer = obs })
	// POST: Go's transport never resends it by itself.
	resp, err := c.Do(t.Context(), httpx.Request{Method: http.MethodPost, Route: "/things", Path: "/things", Body: []byte(`{}`)})
	if err != nil || string(resp.Body) != `{"id":"1"}` {
		t.Fatalf("Do = %+v, %v", resp, err)
	}
	want := []string{
		"POST /things 503", "retry 5xx", "POST /things 429", "retry 429",
		"POST /things 0", "retry transport", "POST /things 200",
	}
	if got := obs.all(); !slices.Equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusBadGateway, "bad gateway") })
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.MaxAttempts = 3 })
	_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
	var apiErr *httpx.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadGateway || err.Error() != "test: GET /x answered 502: bad gateway (gave up after 3 attempts)" {
		t.Fatalf("Do = %v; want the 502 after 3 attempts", err)
	}
	if n := len(srv.requests()); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestOtherAnswersAreNotRetried(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusConflict, "taken") })
	c := newClient(t, srv.URL, nil)
	_, err := c.Do(t.Context(), httpx.Request{Method: "POST", Route: "/user", Path: "/user"})
	if err == nil || err.Error() != "test: POST /user answered 409: taken" || len(srv.requests()) != 1 {
		t.Fatalf("Do = %v after %d requests; want the 409 after one", err, len(srv.requests()))
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	obs := &events{}
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Timeout = 100 * time.Millisecond; cfg.Observer = obs })
	if _, err := c.Do(t.Context(), httpx.Request{Method: "POST", Route: "/x", Path: "/x"}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got, want := obs.all(), []string{"POST /x 0", "retry transport", "POST /x 200"}; !slices.Equal(got, want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
}

func TestCancellationEndsTheCall(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		fail(w, http.StatusTooManyRequests, "later")
	})
	ctx, cancel := context.WithCancel(t.Context())
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.MaxRetryWait = 2 * time.Hour })
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Do(ctx, httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
	if !errors.Is(err, context.Canceled) || err.Error() != "test: GET /x: context canceled" {
		t.Fatalf("Do = %v; want context.Canceled", err)
	}
}

// countingAuth is an Auth whose credentials are "cred-N", renewed at will.
type countingAuth struct {
	mu       sync.Mutex
	n        int
	renewErr error
	renewals []string
}

func (a *countingAuth) Apply(_ context.Context, r *http.Request) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cred := "cred-" + strconv.Itoa(a.n)
	r.Header.Set("Authorization", cred)
	return cred, nil
}

func (a *countingAuth) Renew(_ context.Context, used string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.renewals = append(a.renewals, used)
	if a.renewErr != nil {
		return a.renewErr
	}
	a.n++
	return nil
}

func TestUnauthorizedRenewsAndReplays(t *testing.T) {
	t.Run("a renewed credential is accepted", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "cred-1" {
				fail(w, http.StatusUnauthorized, "expired")
				return
			}
			_, _ = w.Write([]byte(`{}`))
		})
		auth := &countingAuth{}
		obs := &events{}
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = auth; cfg.Observer = obs; cfg.MaxAttempts = 1 })
		if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
		// MaxAttempts 1: the replay is not counted as an attempt.
		if got, want := obs.all(), []string{"GET /x 401", "retry 401", "GET /x 200"}; !slices.Equal(auth.renewals, []string{"cred-0"}) || !slices.Equal(got, want) {
			t.Fatalf("renewals %v, observed %q; want one renewal and %q", auth.renewals, got, want)
		}
	})
	t.Run("a server refusing every credential ends the call", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			fail(w, http.StatusUnauthorized, "refused "+r.Header.Get("Authorization"))
		})
		auth := &countingAuth{}
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = auth })
		_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
		if err == nil || err.Error() != "test: GET /x answered 401: refused [redacted]" {
			t.Fatalf("Do = %v; want the last 401, its credential cut", err)
		}
		if n := len(srv.requests()); n != 4 || len(auth.renewals) != 3 {
			t.Fatalf("%d requests, %d renewals; want 4 and 3", n, len(auth.renewals))
		}
	})
	t.Run("a renewal error ends the call", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusUnauthorized, "no") })
		renewErr := errors.New("the identity provider is down")
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = &countingAuth{renewErr: renewErr} })
		if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != renewErr {
			t.Fatalf("Do = %v; want the renewal's error as it is", err)
		}
	})
	t.Run("ErrCannotRenew returns the 401", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusUnauthorized, "bad key") })
		obs := &events{}
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = &countingAuth{renewErr: httpx.ErrCannotRenew}; cfg.Observer = obs })
		_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
		var apiErr *httpx.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || len(srv.requests()) != 1 {
			t.Fatalf("Do = %v after %d requests; want the 401 after one", err, len(srv.requests()))
		}
		if got, want := obs.all(), []string{"GET /x 401"}; !slices.Equal(got, want) {
			t.Fatalf("observed %q, want %q: no retry", got, want)
		}
	})
	t.Run("anonymous requests carry no credentials and are not renewed", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusUnauthorized, "wrong password") })
		auth := &countingAuth{}
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = auth })
		_, err := c.Do(t.Context(), httpx.Request{Method: "POST", Route: "/login", Path: "/login", Anonymous: true})
		if sent := srv.requests(); err == nil || len(sent) != 1 || sent[0].Header["Authorization"] != nil || len(auth.renewals) != 0 {
			t.Fatalf("Do = %v, sent %+v, renewals %v; want one request without Authorization", err, sent, auth.renewals)
		}
	})
}

func TestHeaderAuth(t *testing.T) {
	tests := []struct{ scheme, value, want string }{
		{"Bearer", "k1", "Bearer k1"},
		{"SSWS", "00abc", "SSWS 00abc"},
		{"", "raw-token", "raw-token"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/echo" {
					fail(w, http.StatusUnauthorized, "key "+tt.value+" revoked")
					return
				}
				_, _ = w.Write([]byte(`{}`))
			})
			c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Auth = httpx.HeaderAuth(tt.scheme, tt.value) })
			if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
				t.Fatalf("Do: %v", err)
			}
			// A 401 is final: there is nothing to renew.
			_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/echo", Path: "/echo"})
			if err == nil || err.Error() != "test: GET /echo answered 401: key [redacted] revoked" {
				t.Fatalf("Do(/echo) = %v; want the 401 with the key cut", err)
			}
			sent := srv.requests()
			if len(sent) != 2 || sent[0].Authorization != tt.want || sent[1].Authorization != tt.want {
				t.Fatalf("sent %+v; want two requests with Authorization %q", sent, tt.want)
			}
		})
	}
	if err := httpx.HeaderAuth("Bearer", "k").Renew(t.Context(), "k"); !errors.Is(err, httpx.ErrCannotRenew) {
		t.Fatalf("Renew = %v, want ErrCannotRenew", err)
	}
}

func TestSecretsAreCut(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusBadRequest, "client secret s3cr3t-value is wrong")
	})
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Secrets = []string{"s3cr3t-value"} })
	_, err := c.Do(t.Context(), httpx.Request{Method: "POST", Route: "/token", Path: "/token", Anonymous: true})
	if err == nil || err.Error() != "test: POST /token answered 400: client secret [redacted] is wrong" {
		t.Fatalf("Do = %v", err)
	}
}

// gate records the calls of a Gate.
type gate struct {
	mu      sync.Mutex
	events  []string
	waitErr error
}

func (g *gate) Wait(ctx context.Context, _ string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, "wait")
	return g.waitErr
}

func (g *gate) Observe(_ string, h http.Header, _ time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, "observe "+h.Get("X-Rate-Limit-Remaining"))
}

func TestGateIsCalledAroundEachAttempt(t *testing.T) {
	var calls atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		w.Header().Set("X-Rate-Limit-Remaining", strconv.Itoa(int(10-n)))
		if n == 1 {
			fail(w, http.StatusTooManyRequests, "slow down")
			return
		}
		_, _ = w.Write([]byte(`{}`))
	})
	g := &gate{}
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Gate = g })
	if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if want := []string{"wait", "observe 9", "wait", "observe 8"}; !slices.Equal(g.events, want) {
		t.Fatalf("gate saw %q, want %q", g.events, want)
	}

	// A Wait that fails ends the call before anything is sent.
	g = &gate{waitErr: errors.New("the window is closed")}
	c = newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.Gate = g })
	_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
	if err == nil || err.Error() != "test: GET /x: waiting for the server's rate limit: the window is closed" || calls.Load() != 2 {
		t.Fatalf("Do = %v after %d requests; want the gate's error and no request", err, calls.Load())
	}
}

func TestRetryAfterHookIsUsed(t *testing.T) {
	// The hook reads X-Wait-Ms; Retry-After asks for an hour, which the
	// default reading would refuse to wait for.
	hook := func(h http.Header, _ time.Time) time.Duration {
		ms, _ := strconv.Atoi(h.Get("X-Wait-Ms"))
		return time.Duration(ms) * time.Millisecond
	}
	t.Run("waited for", func(t *testing.T) {
		var calls atomic.Int32
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				w.Header().Set("Retry-After", "3600")
				w.Header().Set("X-Wait-Ms", "300")
				fail(w, http.StatusTooManyRequests, "slow down")
				return
			}
			_, _ = w.Write([]byte(`{}`))
		})
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.RetryAfter = hook })
		if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
		sent := srv.requests()
		if len(sent) != 2 || sent[1].At.Sub(sent[0].At) < 300*time.Millisecond {
			t.Fatalf("%d requests; want the retry at least 300ms after the first", len(sent))
		}
	})
	t.Run("longer than MaxRetryWait", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Wait-Ms", "60000")
			fail(w, http.StatusServiceUnavailable, "maintenance")
		})
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.RetryAfter = hook; cfg.MaxRetryWait = time.Second })
		_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
		var apiErr *httpx.APIError
		if !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Minute || len(srv.requests()) != 1 {
			t.Fatalf("Do = %v after %d requests; want the 503 with RetryAfter 1m, not retried", err, len(srv.requests()))
		}
	})
}

func TestParseErrorIsUsed(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"Request_BadRequest","message":"Invalid filter clause"}}`))
	})
	var gotStatus int
	c := newClient(t, srv.URL, func(cfg *httpx.Config) {
		cfg.Service = "msgraph"
		cfg.ParseError = func(status int, body []byte) (string, []string) {
			gotStatus = status
			if !strings.Contains(string(body), "Request_BadRequest") {
				return "", nil
			}
			return "Request_BadRequest", []string{"Invalid filter clause"}
		}
	})
	_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/users", Path: "/users"})
	var apiErr *httpx.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "Request_BadRequest" || gotStatus != http.StatusBadRequest ||
		err.Error() != "msgraph: GET /users answered 400: Invalid filter clause (Request_BadRequest)" {
		t.Fatalf("Do = %v (%+v)", err, apiErr)
	}
}

func TestRequestsPerSecondSpacesAttempts(t *testing.T) {
	const rps = 20
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.RequestsPerSecond = rps })
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 2 {
				if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
					t.Errorf("Do: %v", err)
				}
			}
		})
	}
	wg.Wait()
	sent := srv.requests()
	times := make([]time.Time, len(sent))
	for i, s := range sent {
		times[i] = s.At
	}
	slices.SortFunc(times, time.Time.Compare)
	// Transit times vary a little between client and server: half a turn
	// of slack, while a limiter with a burst would let two arrive at once.
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < time.Second/rps/2 {
			t.Fatalf("requests %d and %d arrived %v apart; want about %v", i-1, i, gap, time.Second/rps)
		}
	}
}

func TestLostAnswers(t *testing.T) {
	// lose makes the first request's answer never arrive, after handling it.
	lose := func(handle http.HandlerFunc) http.HandlerFunc {
		var once sync.Once
		return func(w http.ResponseWriter, r *http.Request) {
			lost := false
			once.Do(func() { lost = true })
			if lost {
				handle(httptestRecorder{}, r)
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			handle(w, r)
		}
	}
	t.Run("a 404 after a lost DELETE is done", func(t *testing.T) {
		var mu sync.Mutex
		exists := true
		srv := newServer(t, lose(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if !exists {
				fail(w, http.StatusNotFound, "no such user")
				return
			}
			exists = false
			w.WriteHeader(http.StatusNoContent)
		}))
		c := newClient(t, srv.URL, nil)
		resp, err := c.Do(t.Context(), httpx.Request{Method: "DELETE", Route: "/user/:id", Path: "/user/1", GoneIsDone: true})
		if err != nil || resp.Status != http.StatusNotFound || len(srv.requests()) != 2 {
			t.Fatalf("Do = %+v, %v after %d requests; want the 404 taken as done after 2", resp, err, len(srv.requests()))
		}
		// Without a lost answer before it, a 404 is an error.
		if _, err := c.Do(t.Context(), httpx.Request{Method: "DELETE", Route: "/user/:id", Path: "/user/1", GoneIsDone: true}); err == nil {
			t.Fatal("a first-attempt 404 counted as done")
		}
	})
	t.Run("FindLost stops a create from being repeated", func(t *testing.T) {
		var creates atomic.Int32
		srv := newServer(t, lose(func(w http.ResponseWriter, r *http.Request) {
			creates.Add(1)
			_, _ = w.Write([]byte(`{"id":"1"}`))
		}))
		c := newClient(t, srv.URL, nil)
		var looked int
		resp, err := c.DecodeJSON(t.Context(), httpx.Request{Method: "POST", Route: "/user", Path: "/user", Body: []byte(`{}`),
			FindLost: func(context.Context) (bool, error) { looked++; return true, nil }}, new(struct{}))
		if err != nil || resp.Status != 0 || looked != 1 || creates.Load() != 1 {
			t.Fatalf("Do = %+v, %v; looked %d times, %d creates; want status 0, one lookup, one create", resp, err, looked, creates.Load())
		}
	})
	t.Run("a failed lookup ends the call", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusInternalServerError, "oops") })
		c := newClient(t, srv.URL, nil)
		_, err := c.Do(t.Context(), httpx.Request{Method: "POST", Route: "/user", Path: "/user",
			FindLost: func(context.Context) (bool, error) { return false, errors.New("list failed") }})
		want := "test: POST /user: the answer was lost (test: POST /user answered 500: oops) and looking for the object failed: list failed"
		if err == nil || err.Error() != want {
			t.Fatalf("Do = %v, want %q", err, want)
		}
	})
}

// httptestRecorder is a ResponseWriter that discards what it is given.
type httptestRecorder struct{}

func (httptestRecorder) Header() http.Header         { return http.Header{} }
func (httptestRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (httptestRecorder) WriteHeader(int)             {}

func TestAnswerSizeBound(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		_, _ = w.Write([]byte(strings.Repeat("a", n)))
	})
	c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.MaxAnswerBytes = 100 })
	for n, wantErr := range map[int]string{100: "", 101: "test: GET /x: answer larger than 100 bytes"} {
		resp, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x", Query: url.Values{"n": {strconv.Itoa(n)}}})
		if (wantErr == "" && (err != nil || len(resp.Body) != n)) || (wantErr != "" && (err == nil || err.Error() != wantErr)) {
			t.Errorf("a %d-byte answer: %v; want %q", n, err, wantErr)
		}
	}
}

func TestDecodeJSONError(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`<html>`)) })
	c := newClient(t, srv.URL, nil)
	var v struct{}
	_, err := c.DecodeJSON(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}, &v)
	if want := "test: GET /x: decoding the answer: invalid character '<' looking for beginning of value"; err == nil || err.Error() != want {
		t.Fatalf("DecodeJSON = %v, want %q", err, want)
	}
}

func ExampleLinkNext() {
	h := http.Header{}
	h.Add("Link", `<https://example.okta.com/api/v1/users?limit=200>; rel="self"`)
	h.Add("Link", `<https://example.okta.com/api/v1/users?after=00u1&limit=200>; rel="next"`)
	fmt.Println(httpx.LinkNext(h))
	// Output: https://example.okta.com/api/v1/users?after=00u1&limit=200
}

func TestThrottledHookRetriesOtherStatuses(t *testing.T) {
	// The hook picks 403s whose code says "rate limited", as Google's are.
	throttled := func(e *httpx.APIError) bool { return e.Status == http.StatusForbidden && e.Code == "slowDown" }
	parse := func(_ int, body []byte) (string, []string) {
		code, msg, _ := strings.Cut(string(body), ":")
		return code, []string{msg}
	}
	answer := func(w http.ResponseWriter, status int, body string) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	t.Run("picked: retried as a 429", func(t *testing.T) {
		var calls atomic.Int32
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) <= 2 {
				answer(w, http.StatusForbidden, "slowDown:rate limit exceeded")
				return
			}
			_, _ = w.Write([]byte(`{}`))
		})
		obs := &events{}
		c := newClient(t, srv.URL, func(cfg *httpx.Config) {
			cfg.ParseError, cfg.Throttled, cfg.Observer = parse, throttled, obs
		})
		if _, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"}); err != nil {
			t.Fatalf("Do: %v", err)
		}
		want := []string{"GET /x 403", "retry 429", "GET /x 403", "retry 429", "GET /x 200"}
		if got := obs.all(); !slices.Equal(got, want) {
			t.Fatalf("observed %q, want %q", got, want)
		}
	})
	t.Run("picked: gives up after MaxAttempts", func(t *testing.T) {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			answer(w, http.StatusForbidden, "slowDown:rate limit exceeded")
		})
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.ParseError, cfg.Throttled, cfg.MaxAttempts = parse, throttled, 2 })
		_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
		if err == nil || err.Error() != "test: GET /x answered 403: rate limit exceeded (slowDown) (gave up after 2 attempts)" {
			t.Fatalf("Do = %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		hook func(*httpx.APIError) bool
	}{{"not picked", throttled}, {"no hook", nil}} {
		t.Run(tc.name+": ends the call", func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				answer(w, http.StatusForbidden, "forbidden:not an admin")
			})
			c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.ParseError, cfg.Throttled = parse, tc.hook })
			_, err := c.Do(t.Context(), httpx.Request{Method: "GET", Route: "/x", Path: "/x"})
			if err == nil || err.Error() != "test: GET /x answered 403: not an admin (forbidden)" || len(srv.requests()) != 1 {
				t.Fatalf("Do = %v after %d requests; want the 403 after one", err, len(srv.requests()))
			}
		})
	}
}
