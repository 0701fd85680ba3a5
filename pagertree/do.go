package pagertree

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

// maxAnswerBytes bounds an answer body: a list page of 100 objects is far
// smaller, so anything above it is a fault, not data.
const maxAnswerBytes = 10 << 20

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

// request is one API call; do retries it as a whole.
type request struct {
	method string
	route  string // the template reported to the Observer and in errors
	path   string // escaped
	query  url.Values
	body   []byte // JSON; nil for none
	// anonymous requests carry no token: the login.
	anonymous bool
	// goneIsDone makes a 404 success once an earlier attempt's outcome is
	// unknown: a DELETE whose answer was lost may have deleted the object.
	goneIsDone bool
	// findLost, set on creates, looks for the object an attempt whose
	// answer was lost may have created. Found, it stores the object and
	// reports true, and the call ends without creating it again.
	findLost func(ctx context.Context) (bool, error)
}

// answer is a response read in full.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// transportError marks a failure to get an answer at all (connection
// refused or reset, EOF, attempt timeout): the request may or may not have
// reached the server.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// do sends req until it succeeds, fails for good or runs out of attempts,
// and hands a 2xx answer's body to decode (when decode is not nil).
//
// 429, 5xx and transport errors are retried after a backoff, unless the
// answer's Retry-After is longer than MaxRetryWait; a 401 logs in again
// and replays the request (up to maxRelogins times per call: under a short
// token lifetime and concurrency, the fresh token can expire before the
// replay lands, while a server that refuses every token must still end the
// call); other answers outside 2xx end the
// call with an *APIError. Cancelling ctx ends the call at once with an
// error wrapping ctx.Err().
// maxRelogins bounds the logins one call may make after 401s.
const maxRelogins = 3

func (c *Client) do(ctx context.Context, req request, decode func(body []byte) error) error {
	relogins := 0
	anyOutcomeUnknown := false
	for attempt := 1; ; attempt++ {
		token := ""
		if !req.anonymous {
			var err error
			if token, err = c.validToken(ctx); err != nil {
				return err
			}
		}
		ans, err := c.send(ctx, req, token)
		var (
			reason         string
			retryAfter     time.Duration
			outcomeUnknown bool // this attempt may have been applied
			lastErr        error
		)
		switch {
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("pagertree: %s %s: %w", req.method, req.route, ctx.Err())
		case err != nil:
			if !errors.As(err, new(*transportError)) {
				return err
			}
			reason, outcomeUnknown, lastErr = reasonTransport, true, err
		case ans.status >= 200 && ans.status < 300:
			if decode == nil {
				return nil
			}
			if err := decode(ans.body); err != nil {
				return fmt.Errorf("pagertree: %s %s: decoding the answer: %w", req.method, req.route, err)
			}
			return nil
		case ans.status == http.StatusUnauthorized && !req.anonymous && relogins < maxRelogins:
			relogins++
			c.observeRetry(reasonUnauthorized)
			c.log.Debug("PagerTree refused the token; logging in again",
				zap.String("method", req.method), zap.String("route", req.route))
			if err := c.relogin(ctx, token); err != nil {
				return err
			}
			attempt-- // the replay is owed to the expired token, not to a fault
			continue
		default:
			apiErr := newAPIError(req.method, req.route, ans.status, ans.header, ans.body, time.Now(), token, c.password)
			switch {
			case ans.status == http.StatusTooManyRequests:
				reason, retryAfter = reasonRateLimited, apiErr.RetryAfter
			case ans.status >= 500:
				reason, retryAfter, outcomeUnknown = reasonServerError, apiErr.RetryAfter, true
			case ans.status == http.StatusNotFound && req.goneIsDone && anyOutcomeUnknown:
				c.log.Debug("PagerTree object already gone after an answer was lost; counting the delete as done",
					zap.String("method", req.method), zap.String("route", req.route))
				return nil
			default:
				return apiErr
			}
			lastErr = apiErr
		}
		anyOutcomeUnknown = anyOutcomeUnknown || outcomeUnknown
		// The lookup comes before any giving up, on the last attempt too:
		// a create committed but reported failed would be made again by
		// the caller's next run.
		if outcomeUnknown && req.findLost != nil {
			found, err := req.findLost(ctx)
			if err != nil {
				return fmt.Errorf("pagertree: %s %s: the answer was lost (%v) and looking for the object failed: %w",
					req.method, req.route, lastErr, err)
			}
			if found {
				c.log.Debug("PagerTree create answer was lost but the object exists; not creating it again",
					zap.String("method", req.method), zap.String("route", req.route))
				return nil
			}
		}
		if attempt >= c.maxAttempts {
			return fmt.Errorf("%w (gave up after %d attempts)", lastErr, attempt)
		}
		// Retrying sooner than the server asked would only be refused
		// again, and waiting a day would stall a one-shot run: give up.
		if retryAfter > c.maxRetryWait {
			return fmt.Errorf("%w (not retried: the server asks for a wait longer than %v)", lastErr, c.maxRetryWait)
		}
		wait := backoff(attempt, retryAfter)
		c.observeRetry(reason)
		c.log.Debug("retrying PagerTree request",
			zap.String("method", req.method), zap.String("route", req.route), zap.String("reason", reason),
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(lastErr))
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("pagertree: %s %s: %w", req.method, req.route, err)
		}
	}
}

// decodeJSON is a decode function for do that unmarshals into v.
func decodeJSON(v any) func([]byte) error {
	return func(body []byte) error { return json.Unmarshal(body, v) }
}

// send makes one attempt: it waits for the rate limiter, sends the request
// with its own timeout and reads the whole answer.
func (c *Client) send(ctx context.Context, req request, token string) (answer, error) {
	if err := c.waitTurn(ctx); err != nil {
		return answer{}, fmt.Errorf("pagertree: %s %s: waiting for the rate limiter: %w", req.method, req.route, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, c.endpoint(req.path, req.query), body)
	if err != nil {
		return answer{}, fmt.Errorf("pagertree: %s %s: %w", req.method, req.route, err)
	}
	hr.Header.Set("Accept", "application/json")
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		hr.Header.Set("Authorization", token) // raw, no "Bearer": the API's way
	}
	start := time.Now()
	resp, err := c.http.Do(hr)
	if err != nil {
		c.observeRequest(req, 0, time.Since(start))
		return answer{}, fmt.Errorf("pagertree: %s %s: %w", req.method, req.route, &transportError{err})
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	c.observeRequest(req, resp.StatusCode, time.Since(start))
	if err != nil {
		return answer{}, fmt.Errorf("pagertree: %s %s: reading the answer: %w", req.method, req.route, &transportError{err})
	}
	if len(data) > maxAnswerBytes {
		return answer{}, fmt.Errorf("pagertree: %s %s: answer larger than %d bytes", req.method, req.route, maxAnswerBytes)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data}, nil
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
		if err := sleep(ctx, time.Duration(missing/float64(c.limiter.Limit())*float64(time.Second))); err != nil {
			return err
		}
	}
}

func (c *Client) observeRequest(req request, code int, d time.Duration) {
	if c.observer != nil {
		c.observer.ObserveRequest(req.method, req.route, code, d)
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

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
