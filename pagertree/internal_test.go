package pagertree

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func userKey(u User) string { return u.ID }

func FuzzDecodeList(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"id":"usr_1","name":"Ann","email":"ann@example.com","roles":{}}],"has_more":true,"total_count":250}`,
		`{"data":[],"has_more":false,"total_count":0}`,
		`{"data":[{"id":"usr_1"},{"id":"usr_1"}],"has_more":false,"total_count":2}`,
		`{"data":[{"id":""}],"has_more":false,"total_count":1}`,
		`{"data":null,"has_more":false,"total_count":0}`,
		`{"data":[],"total_count":-1}`,
		`{"data":[]}`,
		`{"total_count":3}`,
		`{"data":{},"total_count":1}`,
		`{"data":[1,2],"total_count":2}`,
		`{"data":[],"has_more":"yes","total_count":0}`,
		`{"data":[],"total_count":1e400}`,
		`null`,
		`{}`,
		`[]`,
		`<html>502 Bad Gateway</html>`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := decodeList(body, userKey)
		if err != nil {
			return
		}
		if list.Data == nil {
			t.Fatal("decoded a list without a data array")
		}
		if list.TotalCount < 0 {
			t.Fatalf("decoded a negative total_count %d", list.TotalCount)
		}
		for i, u := range list.Data {
			if u.ID == "" {
				t.Fatalf("decoded object %d without an id", i)
			}
		}
		// What was accepted survives a round trip unchanged.
		again, err := json.Marshal(list)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		back, err := decodeList(again, userKey)
		if err != nil {
			t.Fatalf("decoding the re-encoded list: %v", err)
		}
		if back.TotalCount != list.TotalCount || back.HasMore != list.HasMore || !slices.EqualFunc(back.Data, list.Data, func(a, b User) bool { return a == b }) {
			t.Fatalf("round trip changed the list: %+v became %+v", list, back)
		}
	})
}

func TestDecodeList(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    List[User]
		wantErr string
	}{
		{
			name: "page",
			body: `{"data":[{"id":"usr_1","email":"a@example.com"},{"id":"usr_2"}],"has_more":true,"total_count":250}`,
			want: List[User]{Data: []User{{ID: "usr_1", Email: "a@example.com"}, {ID: "usr_2"}}, HasMore: true, TotalCount: 250},
		},
		{name: "empty account", body: `{"data":[],"has_more":false,"total_count":0}`, want: List[User]{Data: []User{}}},
		{name: "has_more missing means false", body: `{"data":[],"total_count":0}`, want: List[User]{Data: []User{}}},
		{name: "null", body: `null`, wantErr: "the list has no data array"},
		{name: "empty object", body: `{}`, wantErr: "the list has no data array"},
		{name: "null data", body: `{"data":null,"total_count":0}`, wantErr: "the list has no data array"},
		{name: "no total_count", body: `{"data":[]}`, wantErr: "the list has no total_count"},
		{name: "negative total_count", body: `{"data":[],"total_count":-1}`, wantErr: "the list's total_count -1 is negative"},
		{name: "object without id", body: `{"data":[{"id":"usr_1"},{"name":"x"}],"total_count":2}`, wantErr: "object 1 of the list has no id"},
		{name: "not JSON", body: `<html>`, wantErr: "invalid character '<' looking for beginning of value"},
		{name: "data not an array", body: `{"data":{},"total_count":1}`, wantErr: "json: cannot unmarshal object into Go struct field .data of type []pagertree.User"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeList([]byte(tt.body), userKey)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if got.TotalCount != tt.want.TotalCount || got.HasMore != tt.want.HasMore || !slices.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

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
	tests := []struct {
		name       string
		status     int
		retryAfter string
		body       string
		secrets    []string
		want       APIError
		wantString string
	}{
		{
			name: "seed error body", status: 409, body: `{"errors":[{"message":"email taken"},{"message":" second "}]}`,
			want:       APIError{Status: 409, Messages: []string{"email taken", "second"}, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 409: email taken; second",
		},
		{
			name: "HTML body", status: 502, body: `<html><body>Bad gateway</body></html>`,
			want:       APIError{Status: 502, Messages: []string{"Bad Gateway"}, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 502: Bad Gateway",
		},
		{
			name: "empty body with Retry-After", status: 429, retryAfter: "2",
			want:       APIError{Status: 429, Messages: []string{"Too Many Requests"}, RetryAfter: 2 * time.Second, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 429: Too Many Requests (retry after 2s)",
		},
		{
			name: "empty messages", status: 400, body: `{"errors":[{"message":""}]}`,
			want:       APIError{Status: 400, Messages: []string{"Bad Request"}, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 400: Bad Request",
		},
		{
			name: "unknown status", status: 599, body: `{"errors":"nope"}`,
			want:       APIError{Status: 599, Messages: []string{"HTTP 599"}, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 599: HTTP 599",
		},
		{
			name: "echoed secrets are cut out", status: 401, body: `{"errors":[{"message":"token tok123 refused for pw hunter2"}]}`,
			secrets:    []string{"tok123", "hunter2", ""},
			want:       APIError{Status: 401, Messages: []string{"token [redacted] refused for pw [redacted]"}, Method: "POST", Route: "/user"},
			wantString: "pagertree: POST /user answered 401: token [redacted] refused for pw [redacted]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.retryAfter != "" {
				header.Set("Retry-After", tt.retryAfter)
			}
			got := newAPIError("POST", "/user", tt.status, header, []byte(tt.body), now, tt.secrets...)
			if got.Status != tt.want.Status || !slices.Equal(got.Messages, tt.want.Messages) || got.RetryAfter != tt.want.RetryAfter ||
				got.Method != tt.want.Method || got.Route != tt.want.Route {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
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
	got := newAPIError("GET", "/user", 400, http.Header{}, []byte(body.String()), time.Now())
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

func TestTokenText(t *testing.T) {
	tests := []struct {
		name, raw, want, wantErr string
	}{
		{name: "string", raw: `"abc.def"`, want: "abc.def"},
		{name: "number as in the seed", raw: `1`, want: "1"},
		{name: "empty string", raw: `""`, wantErr: "the answer's token is empty"},
		{name: "missing", raw: ``, wantErr: "the answer has no token"},
		{name: "object", raw: `{}`, wantErr: "the answer has no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenText(json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("tokenText(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}
