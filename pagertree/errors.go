package pagertree

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIError is an answer outside 2xx. Use errors.As to get it from an error
// any method returns.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Messages are the body's errors[].message, or the status text when
	// the body carries none (or is not JSON).
	Messages []string
	// RetryAfter is the answer's Retry-After (seconds or HTTP date), zero
	// when absent.
	RetryAfter time.Duration
	// Method and Route are the request's method and route template
	// ("/user/:id"), never the URL with ids and query.
	Method, Route string
}

// Error reads "pagertree: POST /user answered 409: email taken".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pagertree: %s %s answered %d: %s", e.Method, e.Route, e.Status, strings.Join(e.Messages, "; "))
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	return b.String()
}

// Bounds on what an error body may put into an error string.
const (
	maxErrorMessages      = 10
	maxErrorMessageLength = 512
)

// newAPIError builds the error for an answer outside 2xx. secrets (the
// token sent, the password) are cut out of the server's messages in case
// it echoes them.
func newAPIError(method, route string, status int, header http.Header, body []byte, now time.Time, secrets ...string) *APIError {
	messages := errorMessages(status, body)
	for i, m := range messages {
		for _, s := range secrets {
			if s != "" {
				m = strings.ReplaceAll(m, s, "[redacted]")
			}
		}
		messages[i] = m
	}
	return &APIError{
		Status:     status,
		Messages:   messages,
		RetryAfter: parseRetryAfter(header.Get("Retry-After"), now),
		Method:     method,
		Route:      route,
	}
}

// errorMessages decodes the seed's {"errors":[{"message"}]} body and falls
// back to the status text for any other body.
func errorMessages(status int, body []byte) []string {
	var eb ErrorBody
	var messages []string
	if json.Unmarshal(body, &eb) == nil {
		for _, e := range eb.Errors {
			m := strings.TrimSpace(e.Message)
			if m == "" {
				continue
			}
			if len(m) > maxErrorMessageLength {
				m = strings.ToValidUTF8(m[:maxErrorMessageLength], "") + "…"
			}
			messages = append(messages, m)
			if len(messages) == maxErrorMessages {
				break
			}
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
