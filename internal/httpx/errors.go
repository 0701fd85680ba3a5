package httpx

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is an answer outside 2xx. Use errors.As to get it from an error
// Do returns.
type APIError struct {
	// Service names the peer ("pagertree").
	Service string
	// Status is the HTTP status code.
	Status int
	// Code is the provider's error code when ParseError gave one
	// ("E0000011", "TooManyRequests"), else "".
	Code string
	// Messages are the body's error messages, or the status text when the
	// body carries none (or is not what ParseError reads).
	Messages []string
	// RetryAfter is how long the answer asks to wait (Retry-After, seconds
	// or HTTP date, or Config.RetryAfter's reading), zero when absent.
	RetryAfter time.Duration
	// Method and Route are the request's method and route template
	// ("/user/:id"), never the URL with ids and query.
	Method, Route string
}

// Error reads "pagertree: POST /user answered 409: email taken", followed
// by " (retry after 2s)" when RetryAfter is set and " (E0000011)" when Code
// is.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s answered %d: %s", e.Service, e.Method, e.Route, e.Status, strings.Join(e.Messages, "; "))
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	return b.String()
}

// Bounds on what an error body may put into an error string.
const (
	maxErrorMessages      = 10
	maxErrorMessageLength = 512
)

// newAPIError builds the error for an answer outside 2xx. The server's
// code and messages are bounded, and secrets (the credential sent,
// Config.Secrets) cut out of them in case the server echoes them.
func (c *Client) newAPIError(req Request, ans *Response, now time.Time, credential string) *APIError {
	var code string
	var messages []string
	if c.parseError != nil {
		code, messages = c.parseError(ans.Status, ans.Body)
	}
	var retryAfter time.Duration
	if c.retryAfter != nil && (ans.Status == http.StatusTooManyRequests || ans.Status >= 500) {
		retryAfter = max(c.retryAfter(ans.Header, now), 0)
	} else {
		retryAfter = parseRetryAfter(ans.Header.Get("Retry-After"), now)
	}
	secrets := append([]string{credential}, c.secrets...)
	messages = boundMessages(ans.Status, messages)
	for i, m := range messages {
		messages[i] = redact(m, secrets)
	}
	return &APIError{
		Service:    c.service,
		Status:     ans.Status,
		Code:       redact(cut(strings.TrimSpace(code)), secrets),
		Messages:   messages,
		RetryAfter: retryAfter,
		Method:     req.Method,
		Route:      req.Route,
	}
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// boundMessages trims the messages, drops empty ones, cuts long ones and
// keeps at most maxErrorMessages; with none left, the status text stands
// in.
func boundMessages(status int, raw []string) []string {
	var messages []string
	for _, m := range raw {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		messages = append(messages, cut(m))
		if len(messages) == maxErrorMessages {
			break
		}
	}
	if len(messages) == 0 {
		text := http.StatusText(status)
		if text == "" {
			text = "HTTP " + strconv.Itoa(status)
		}
		messages = []string{text}
	}
	return messages
}

// cut shortens s to maxErrorMessageLength bytes of whole characters.
func cut(s string) string {
	if len(s) <= maxErrorMessageLength {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorMessageLength], "") + "…"
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date
// (RFC 9110 10.2.3). Anything unreadable, or a date already past, is zero.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseUint(value, 10, 64); err == nil {
		if seconds > math.MaxInt64/uint64(time.Second) {
			return math.MaxInt64
		}
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
