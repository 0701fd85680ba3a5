package pagertreetest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLogin(t *testing.T) {
	s := NewServer(Options{Username: "ops@example.com", Password: "s3cret"})
	t.Cleanup(s.Close)
	tests := []struct {
		name        string
		body        string
		wantStatus  int
		wantMessage string // for errors
	}{
		{"right credentials", `{"username":"ops@example.com","password":"s3cret"}`, http.StatusOK, ""},
		{"username in another letter case", `{"username":"OPS@Example.com","password":"s3cret"}`, http.StatusOK, ""},
		{"wrong password", `{"username":"ops@example.com","password":"S3cret"}`, http.StatusUnauthorized, "invalid username or password"},
		{"wrong username", `{"username":"admin@example.com","password":"s3cret"}`, http.StatusUnauthorized, "invalid username or password"},
		{"default credentials do not apply", `{"username":"admin@example.com","password":"password"}`, http.StatusUnauthorized, "invalid username or password"},
		{"no username", `{"password":"s3cret"}`, http.StatusBadRequest, "'username' is a required parameter"},
		{"no password", `{"username":"ops@example.com"}`, http.StatusBadRequest, "'password' is a required parameter"},
		{"malformed JSON", `{"username":`, http.StatusBadRequest, "malformed JSON body: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, "", http.MethodPost, "/public/login", tt.body, tt.wantStatus)
			if tt.wantStatus != http.StatusOK {
				if got := errorMessage(t, r); got != tt.wantMessage {
					t.Errorf("message %q, want %q", got, tt.wantMessage)
				}
				return
			}
			var out struct {
				Token string `json:"token"`
			}
			decodeStrict(t, r, &out)
			if len(out.Token) != 48 {
				t.Errorf("token %q: want 48 hex characters", out.Token)
			}
		})
	}
}

func TestTokenIsRequiredRaw(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantMessage   string
	}{
		{"raw token", token, http.StatusOK, ""},
		{"no token", "", http.StatusUnauthorized, "a token is required in the Authorization header"},
		{"unknown token", "0123456789abcdef", http.StatusUnauthorized, "invalid or expired token"},
		{"Bearer token", "Bearer " + token, http.StatusUnauthorized, `invalid token: it goes raw in Authorization, without "Bearer"`},
		{"token with a suffix", token + "x", http.StatusUnauthorized, "invalid or expired token"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/user", "/team", "/user/usr_000000000", "/team/tem_000000000"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				status := tt.wantStatus
				if status == http.StatusOK && strings.Count(path, "/") == 2 {
					status = http.StatusNotFound // authenticated, but no such object
				}
				r := expect(t, s, tt.authorization, http.MethodGet, path, "", status)
				if tt.wantMessage != "" {
					if got := errorMessage(t, r); got != tt.wantMessage {
						t.Errorf("message %q, want %q", got, tt.wantMessage)
					}
				}
			})
		}
	}
}

func TestExpireTokens(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	expect(t, s, token, http.MethodGet, "/user", "", http.StatusOK)
	s.ExpireTokens()
	expect(t, s, token, http.MethodGet, "/user", "", http.StatusUnauthorized)
	expect(t, s, login(t, s), http.MethodGet, "/user", "", http.StatusOK)
}

func TestRouting(t *testing.T) {
	s := newTestServer(t)
	token := login(t, s)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantMessage        string
		wantAllow          string
	}{
		{"unknown path", http.MethodGet, "/users", http.StatusNotFound, "no route GET /users", ""},
		{"root", http.MethodGet, "/", http.StatusNotFound, "no route GET /", ""},
		{"empty id", http.MethodGet, "/user/", http.StatusNotFound, "no route GET /user/", ""},
		{"nested path", http.MethodGet, "/team/tem_1/members", http.StatusNotFound, "no route GET /team/tem_1/members", ""},
		{"PATCH a user", http.MethodPatch, "/user/usr_1", http.StatusMethodNotAllowed, "method PATCH not allowed on /user/:id", "GET, PUT, DELETE"},
		{"DELETE the collection", http.MethodDelete, "/team", http.StatusMethodNotAllowed, "method DELETE not allowed on /team", "GET, POST"},
		{"GET login", http.MethodGet, "/public/login", http.StatusMethodNotAllowed, "method GET not allowed on /public/login", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := expect(t, s, token, tt.method, tt.path, "", tt.wantStatus)
			if got := errorMessage(t, r); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

// TestHandlerWithoutListener serves through New, as `ptsync emulator`
// mounts it in a server of its own.
func TestHandlerWithoutListener(t *testing.T) {
	s := New(Options{})
	if s.URL() != "" {
		t.Errorf("URL() = %q for a server not listening, want empty", s.URL())
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/public/login", strings.NewReader(`{"username":"admin@example.com","password":"password"}`)))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), `{"token":"`) {
		t.Errorf("login: %d %s", rec.Code, rec.Body)
	}
	s.Close() // no listener: nothing to do, and no panic
}

func TestBodyTooLarge(t *testing.T) {
	s := newTestServer(t)
	body := `{"email":"ann@example.com","name":"` + strings.Repeat("a", maxBodyBytes) + `"}`
	r := expect(t, s, login(t, s), http.MethodPost, "/user", body, http.StatusBadRequest)
	if got := errorMessage(t, r); got != "cannot read the request body" {
		t.Errorf("message %q", got)
	}
	if len(s.Users()) != 0 {
		t.Error("a body over the limit created a user")
	}
}
