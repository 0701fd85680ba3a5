package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Retry backoff: full jitter, uniform in [0, min(backoffMax, backoffBase ·
// 2^(attempt-1))], and never shorter than the answer's Retry-After.
const (
	backoffBase = 100 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// Retry reasons given to Observer.ObserveRetry.
const (
	reasonRateLimited  = "429"
	reasonServerError  = "5xx"
	reasonTransport    = "transport"
	reasonUnauthorized = "401"
)

// maxRenewals bounds the credential renewals one call may make after 401s:
// under a short token lifetime and concurrency, the fresh credential can
// expire before the replay lands, while a server that refuses every
// credential must still end the call.
const maxRenewals = 3

// Request is one API call; Do retries it as a whole.
type Request struct {
	Method string
	// Route is the template reported to the Observer and in errors and
	// logs ("/groups/{id}/members"), never with ids.
	Route string
	// Path is an escaped path joined under the base URL's path, with Query
	// as its query...
	Path  string
	Query url.Values
	// ... or URL is an absolute URL (a next link), followed as given: Path
	// and Query are then ignored. It must have the base URL's scheme and
	// host, or Do refuses it, so credentials never go to another host.
	URL string
	// Header holds extra headers (ConsistencyLevel: eventual).
	Header http.Header
	// Body is the JSON body; nil for none.
	Body []byte
	// Anonymous requests carry no credentials (PagerTree's login).
	Anonymous bool
	// GoneIsDone makes a 404 success once an earlier attempt's outcome is
	// unknown: a DELETE whose answer was lost may have deleted the object.
	GoneIsDone bool
	// FindLost, set on creates, looks for the object an attempt whose
	// answer was lost (transport error, timeout, 5xx) may have created.
	// Found, it keeps the object and reports true, and the call ends
	// without creating it again.
	FindLost func(ctx context.Context) (bool, error)
}

// Response is an answer read in full. Status is 0 when the call ended
// because FindLost found the object.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// transportError marks a failure to get an answer at all (connection
// refused or reset, EOF, attempt timeout): the request may or may not have
// reached the server.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// Do sends req until it succeeds (a 2xx answer, returned), fails for good
// or runs out of attempts.
//
// 429, 5xx, transport errors and the answers Config.Throttled picks are
// retried after a backoff, unless the answer's Retry-After is longer than
// MaxRetryWait; a 401 has Auth renew the credentials and replays the
// request (up to maxRenewals times per call, not counted as attempts);
// other answers outside 2xx end the call
// with an *APIError. Before retrying after an answer that may have been
// lost, FindLost is asked whether the object exists. Cancelling ctx ends
// the call at once with an error wrapping ctx.Err(). Errors from Auth are
// returned as they are.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	target, err := c.target(req)
	if err != nil {
		return nil, c.errorf(req, "%w", err)
	}
	auth := c.auth
	if req.Anonymous {
		auth = nil
	}
	renewals := 0
	anyOutcomeUnknown := false
	for attempt := 1; ; attempt++ {
		hr, err := c.newHTTPRequest(ctx, req, target)
		if err != nil {
			return nil, c.errorf(req, "%w", err)
		}
		credential := ""
		if auth != nil {
			if credential, err = auth.Apply(ctx, hr); err != nil {
				return nil, err
			}
		}
		ans, err := c.send(ctx, req, hr)
		var (
			reason         string
			retryAfter     time.Duration
			outcomeUnknown bool // this attempt may have been applied
			lastErr        error
		)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, c.errorf(req, "%w", ctx.Err())
		case err != nil:
			if !errors.As(err, new(*transportError)) {
				return nil, err
			}
			reason, outcomeUnknown, lastErr = reasonTransport, true, err
		case ans.Status >= 200 && ans.Status < 300:
			return ans, nil
		case ans.Status == http.StatusUnauthorized && auth != nil && renewals < maxRenewals:
			renewals++
			c.log.Debug("the server refused the credentials; renewing them",
				zap.String("method", req.Method), zap.String("route", req.Route))
			err := auth.Renew(ctx, credential)
			if errors.Is(err, ErrCannotRenew) {
				return nil, c.newAPIError(req, ans, time.Now(), credential)
			}
			c.observeRetry(reasonUnauthorized)
			if err != nil {
				return nil, err
			}
			attempt-- // the replay is owed to the expired credential, not to a fault
			continue
		default:
			apiErr := c.newAPIError(req, ans, time.Now(), credential)
			switch {
			case ans.Status == http.StatusTooManyRequests:
				reason, retryAfter = reasonRateLimited, apiErr.RetryAfter
			case ans.Status >= 500:
				reason, retryAfter, outcomeUnknown = reasonServerError, apiErr.RetryAfter, true
			case c.throttled != nil && c.throttled(apiErr):
				reason, retryAfter = reasonRateLimited, apiErr.RetryAfter
			case ans.Status == http.StatusNotFound && req.GoneIsDone && anyOutcomeUnknown:
				c.log.Debug("object already gone after an answer was lost; counting the delete as done",
					zap.String("method", req.Method), zap.String("route", req.Route))
				return ans, nil
			default:
				return nil, apiErr
			}
			lastErr = apiErr
		}
		anyOutcomeUnknown = anyOutcomeUnknown || outcomeUnknown
		// The lookup comes before any giving up, on the last attempt too:
		// a create committed but reported failed would be made again by
		// the caller's next run.
		if outcomeUnknown && req.FindLost != nil {
			found, err := req.FindLost(ctx)
			if err != nil {
				return nil, c.errorf(req, "the answer was lost (%v) and looking for the object failed: %w", lastErr, err)
			}
			if found {
				c.log.Debug("create answer was lost but the object exists; not creating it again",
					zap.String("method", req.Method), zap.String("route", req.Route))
				return &Response{}, nil
			}
		}
		if attempt >= c.maxAttempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt)
		}
		// Retrying sooner than the server asked would only be refused
		// again, and waiting a day would stall a one-shot run: give up.
		if retryAfter > c.maxRetryWait {
			return nil, fmt.Errorf("%w (not retried: the server asks for a wait longer than %v)", lastErr, c.maxRetryWait)
		}
		wait := backoff(attempt, retryAfter)
		c.observeRetry(reason)
		c.log.Debug("retrying request",
			zap.String("method", req.Method), zap.String("route", req.Route), zap.String("reason", reason),
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(lastErr))
		if err := Sleep(ctx, wait); err != nil {
			return nil, c.errorf(req, "%w", err)
		}
	}
}

// DecodeJSON is Do, then json.Unmarshal of a 2xx answer's body into v.
func (c *Client) DecodeJSON(ctx context.Context, req Request, v any) (*Response, error) {
	resp, err := c.Do(ctx, req)
	if err != nil || resp.Status < 200 || resp.Status >= 300 {
		return resp, err
	}
	if err := json.Unmarshal(resp.Body, v); err != nil {
		return resp, c.errorf(req, "decoding the answer: %w", err)
	}
	return resp, nil
}

// errorf is an error about req: "<service>: <method> <route>: <format>".
func (c *Client) errorf(req Request, format string, args ...any) error {
	return fmt.Errorf("%s: %s %s: "+format, append([]any{c.service, req.Method, req.Route}, args...)...)
}

// newHTTPRequest makes one attempt's request, credentials not yet set.
func (c *Client) newHTTPRequest(ctx context.Context, req Request, target string) (*http.Request, error) {
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Accept", "application/json")
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	for name, values := range req.Header {
		hr.Header[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
	}
	return hr, nil
}

// send makes one attempt: it waits for the gate and the rate limiter,
// sends hr with its own timeout and reads the whole answer.
func (c *Client) send(ctx context.Context, req Request, hr *http.Request) (*Response, error) {
	if c.gate != nil {
		if err := c.gate.Wait(ctx, req.Route); err != nil {
			return nil, c.errorf(req, "waiting for the server's rate limit: %w", err)
		}
	}
	if err := c.waitTurn(ctx); err != nil {
		return nil, c.errorf(req, "waiting for the rate limiter: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.http.Do(hr.WithContext(ctx))
	if err != nil {
		c.observeRequest(req, 0, time.Since(start))
		return nil, c.errorf(req, "%w", &transportError{err})
	}
	defer resp.Body.Close()
	if c.gate != nil {
		c.gate.Observe(req.Route, resp.Header, time.Now())
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxAnswerBytes+1))
	c.observeRequest(req, resp.StatusCode, time.Since(start))
	if err != nil {
		return nil, c.errorf(req, "reading the answer: %w", &transportError{err})
	}
	if int64(len(data)) > c.maxAnswerBytes {
		return nil, c.errorf(req, "answer larger than %d bytes", c.maxAnswerBytes)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// waitTurn blocks until the rate limiter lets one request go.
//
// A token is taken only when it is there at the moment of taking, and the
// taking is serialised so that the limiter sees time move forward. Limiter.
// Wait instead reserves slots ahead: a waiter that wakes late is then
// followed by the next one on its own slot, closer than 1/RequestsPerSecond,
// and a server enforcing the same limit answers 429. Here a late waiter
// pushes the next one back.
func (c *Client) waitTurn(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.limiterMu.Lock()
		now := time.Now()
		if c.limiter.AllowN(now, 1) {
			c.limiterMu.Unlock()
			return nil
		}
		missing := 1 - c.limiter.TokensAt(now)
		c.limiterMu.Unlock()
		if err := Sleep(ctx, time.Duration(missing/float64(c.limiter.Limit())*float64(time.Second))); err != nil {
			return err
		}
	}
}

func (c *Client) observeRequest(req Request, code int, d time.Duration) {
	if c.observer != nil {
		c.observer.ObserveRequest(req.Method, req.Route, code, d)
	}
}

func (c *Client) observeRetry(reason string) {
	if c.observer != nil {
		c.observer.ObserveRetry(reason)
	}
}

// backoff is the wait before the retry that follows attempt.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	ceiling := backoffMax
	if shift := attempt - 1; shift < 30 {
		ceiling = min(backoffMax, backoffBase<<shift)
	}
	return max(time.Duration(rand.Int64N(int64(ceiling)+1)), retryAfter)
}

// Sleep waits for d or until ctx is done, and says which.
func Sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
