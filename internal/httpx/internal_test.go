package httpx

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "7", 7 * time.Second},
		{"zero seconds", "0", 0},
		{"padded seconds", " 3 ", 3 * time.Second},
		{"negative seconds", "-3", 0},
		{"fractional seconds", "1.5", 0},
		{"huge seconds", "99999999999999999999", 0},
		{"seconds that overflow a Duration", "9999999999999", time.Duration(1<<63 - 1)},
		{"HTTP date ahead", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"HTTP date past", "Sun, 01 Mar 2026 11:59:00 GMT", 0},
		{"RFC 850 date", "Sunday, 01-Mar-26 12:01:00 GMT", time.Minute},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.value, now); got != tt.want {
				t.Fatalf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestNewAPIError(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	okta := func(_ int, body []byte) (string, []string) {
		var b struct {
			ErrorCode    string `json:"errorCode"`
			ErrorSummary string `json:"errorSummary"`
		}
		if json.Unmarshal(body, &b) != nil {
			return "", nil
		}
		return b.ErrorCode, []string{b.ErrorSummary}
	}
	resetIn := func(h http.Header, now time.Time) time.Duration {
		reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
		if err != nil {
			return 0
		}
		return time.Unix(reset, 0).Sub(now)
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		credential string
		cfg        Config // Service, Secrets, ParseError and RetryAfter
		want       APIError
		wantString string
	}{
		{
			name: "seed error body", status: 409, body: `{"errors":[{"message":"email taken"},{"message":" second "}]}`,
			want:       APIError{Status: 409, Messages: []string{"email taken", "second"}},
			wantString: "pagertree: POST /user answered 409: email taken; second",
		},
		{
			name: "HTML body", status: 502, body: `<html><body>Bad gateway</body></html>`,
			want:       APIError{Status: 502, Messages: []string{"Bad Gateway"}},
			wantString: "pagertree: POST /user answered 502: Bad Gateway",
		},
		{
			name: "empty body with Retry-After", status: 429, header: http.Header{"Retry-After": {"2"}},
			want:       APIError{Status: 429, Messages: []string{"Too Many Requests"}, RetryAfter: 2 * time.Second},
			wantString: "pagertree: POST /user answered 429: Too Many Requests (retry after 2s)",
		},
		{
			name: "empty messages", status: 400, body: `{"errors":[{"message":""}]}`,
			want:       APIError{Status: 400, Messages: []string{"Bad Request"}},
			wantString: "pagertree: POST /user answered 400: Bad Request",
		},
		{
			name: "unknown status", status: 599, body: `{"errors":"nope"}`,
			want:       APIError{Status: 599, Messages: []string{"HTTP 599"}},
			wantString: "pagertree: POST /user answered 599: HTTP 599",
		},
		{
			name: "echoed secrets are cut out", status: 401, body: `{"errors":[{"message":"token tok123 refused for pw hunter2"}]}`,
			credential: "tok123", cfg: Config{Secrets: []string{"hunter2", ""}},
			want:       APIError{Status: 401, Messages: []string{"token [redacted] refused for pw [redacted]"}},
			wantString: "pagertree: POST /user answered 401: token [redacted] refused for pw [redacted]",
		},
		{
			name: "a provider code", status: 400, body: `{"errorCode":"E0000001","errorSummary":"Api validation failed: login"}`,
			cfg:        Config{Service: "okta", ParseError: okta},
			want:       APIError{Service: "okta", Status: 400, Code: "E0000001", Messages: []string{"Api validation failed: login"}},
			wantString: "okta: POST /user answered 400: Api validation failed: login (E0000001)",
		},
		{
			name: "a provider code with a retry", status: 429, body: `{"errorCode":"E0000047","errorSummary":""}`,
			header:     http.Header{"X-Rate-Limit-Reset": {strconv.FormatInt(now.Add(30*time.Second).Unix(), 10)}, "Retry-After": {"1"}},
			cfg:        Config{Service: "okta", ParseError: okta, RetryAfter: resetIn},
			want:       APIError{Service: "okta", Status: 429, Code: "E0000047", Messages: []string{"Too Many Requests"}, RetryAfter: 30 * time.Second},
			wantString: "okta: POST /user answered 429: Too Many Requests (retry after 30s) (E0000047)",
		},
		{
			name: "the RetryAfter hook reads only 429 and 5xx", status: 409, header: http.Header{"X-Rate-Limit-Reset": {"99999999999"}, "Retry-After": {"1"}},
			cfg:        Config{RetryAfter: resetIn},
			want:       APIError{Status: 409, Messages: []string{"Conflict"}, RetryAfter: time.Second},
			wantString: "pagertree: POST /user answered 409: Conflict (retry after 1s)",
		},
		{
			name: "a negative RetryAfter reading is zero", status: 503, header: http.Header{"X-Rate-Limit-Reset": {"1"}},
			cfg:        Config{RetryAfter: resetIn},
			want:       APIError{Status: 503, Messages: []string{"Service Unavailable"}},
			wantString: "pagertree: POST /user answered 503: Service Unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.ParseError == nil {
				cfg.ParseError = seedErrors
			}
			cfg.Service = cmp.Or(cfg.Service, "pagertree")
			cfg.BaseURL = "http://127.0.0.1"
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Service, want.Method, want.Route = cfg.Service, "POST", "/user"
			header := tt.header
			if header == nil {
				header = http.Header{}
			}
			got := c.newAPIError(Request{Method: "POST", Route: "/user"}, &Response{Status: tt.status, Header: header, Body: []byte(tt.body)}, now, tt.credential)
			if got.Service != want.Service || got.Status != want.Status || got.Code != want.Code || !slices.Equal(got.Messages, want.Messages) ||
				got.RetryAfter != want.RetryAfter || got.Method != want.Method || got.Route != want.Route {
				t.Fatalf("got %+v, want %+v", *got, want)
			}
			if got.Error() != tt.wantString {
				t.Fatalf("Error() = %q, want %q", got.Error(), tt.wantString)
			}
		})
	}
}

func TestAPIErrorBoundsMessages(t *testing.T) {
	var body strings.Builder
	body.WriteString(`{"errors":[`)
	for i := range 20 {
		if i > 0 {
			body.WriteString(",")
		}
		body.WriteString(`{"message":"` + strings.Repeat("é", 400) + `"}`)
	}
	body.WriteString(`]}`)
	c, err := New(Config{Service: "pagertree", BaseURL: "http://127.0.0.1", ParseError: seedErrors})
	if err != nil {
		t.Fatal(err)
	}
	got := c.newAPIError(Request{Method: "GET", Route: "/user"}, &Response{Status: 400, Header: http.Header{}, Body: []byte(body.String())}, time.Now(), "")
	if len(got.Messages) != maxErrorMessages {
		t.Fatalf("kept %d messages, want %d", len(got.Messages), maxErrorMessages)
	}
	want := strings.Repeat("é", maxErrorMessageLength/2) + "…"
	if got.Messages[0] != want {
		t.Fatalf("message not cut to %d bytes of whole characters: %q", maxErrorMessageLength, got.Messages[0])
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		floor      time.Duration
		ceiling    time.Duration
	}{
		{"first retry", 1, 0, 0, backoffBase},
		{"third retry", 3, 0, 0, 4 * backoffBase},
		{"capped", 40, 0, 0, backoffMax},
		{"Retry-After is a floor", 1, 3 * time.Second, 3 * time.Second, 3 * time.Second},
		{"Retry-After below the jitter", 8, time.Second, time.Second, backoffMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 1000 {
				if got := backoff(tt.attempt, tt.retryAfter); got < tt.floor || got > tt.ceiling {
					t.Fatalf("backoff(%d, %v) = %v, want within [%v, %v]", tt.attempt, tt.retryAfter, got, tt.floor, tt.ceiling)
				}
			}
		})
	}
}

// seedErrors reads the seed's {"errors":[{"message"}]} error body, the one
// the tests' servers answer with (pagertree passes its own reader).
func seedErrors(_ int, body []byte) (string, []string) {
	var eb struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &eb) != nil {
		return "", nil
	}
	var messages []string
	for _, e := range eb.Errors {
		messages = append(messages, e.Message)
	}
	return "", messages
}

// TestNoParseErrorReadsNoMessages: without ParseError, no body format is
// assumed; the status text stands in.
func TestNoParseErrorReadsNoMessages(t *testing.T) {
	c, err := New(Config{Service: "okta", BaseURL: "http://127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.newAPIError(Request{Method: "GET", Route: "/users"}, &Response{Status: 409, Header: http.Header{}, Body: []byte(`{"errors":[{"message":"taken"}]}`)}, time.Now(), "")
	if !slices.Equal(got.Messages, []string{"Conflict"}) {
		t.Errorf("messages %q, want the status text", got.Messages)
	}
}
