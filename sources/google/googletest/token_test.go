package googletest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/jwt"

	"github.com/ptsync/ptsync/sources/google/googletest"
)

func TestJWTGrant(t *testing.T) {
	c := newClock()
	s := start(t, domain(), googletest.Options{Now: c.Now})
	r := tokenRequest(t, s, grant(jwtFor(saKey(), nil, claimsAt(s, c.Now(), nil))))
	if r.status != http.StatusOK {
		t.Fatalf("token request: %s", r)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(r.body, &tok); err != nil || !strings.HasPrefix(tok.AccessToken, "ya29.") || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
		t.Fatalf("token answer %s", r)
	}
	if got := get(t, s, tok.AccessToken, "/users", url.Values{"customer": {"my_customer"}}); got.status != http.StatusOK {
		t.Fatalf("the token does not work: %s", got)
	}
	if n := s.TokenRequests(); n != 1 {
		t.Errorf("%d token requests counted", n)
	}
}

// TestJWTGrantWithOAuth2Library: golang.org/x/oauth2/jwt, configured as
// Google documents domain-wide delegation, gets a working token.
func TestJWTGrantWithOAuth2Library(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	var key struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(googletest.ServiceAccountKey(serviceAccount(), saKey(), s.TokenURL()), &key); err != nil {
		t.Fatal(err)
	}
	cfg := &jwt.Config{Email: saEmail, PrivateKey: []byte(key.PrivateKey), PrivateKeyID: keyID, Subject: admin,
		Scopes: googletest.ReadOnlyScopes, TokenURL: s.TokenURL()}
	tok, err := cfg.TokenSource(context.Background()).Token()
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if r := get(t, s, tok.AccessToken, "/groups", url.Values{"customer": {custID}}); r.status != http.StatusOK {
		t.Fatalf("the token does not work: %s", r)
	}
}

func TestServiceAccountKey(t *testing.T) {
	var key map[string]string
	if err := json.Unmarshal(googletest.ServiceAccountKey(serviceAccount(), saKey(), "https://oauth2.googleapis.com/token"), &key); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"type": "service_account", "client_email": saEmail, "client_id": "101112131415161718192",
		"private_key_id": keyID, "token_uri": "https://oauth2.googleapis.com/token", "project_id": "ptsync-test",
	} {
		if key[k] != want {
			t.Errorf("%s = %q, want %q", k, key[k], want)
		}
	}
	if !strings.HasPrefix(key["private_key"], "-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("private_key is not PKCS#8 PEM: %.40q", key["private_key"])
	}
}

func TestJWTGrantErrors(t *testing.T) {
	c := newClock()
	s := start(t, domain(), googletest.Options{Now: c.Now, DelegatedScopes: append([]string{googletest.ScopeUser}, googletest.ReadOnlyScopes...)})
	now := c.Now()
	signed := func(header, edit map[string]any) url.Values {
		return grant(jwtFor(saKey(), header, claimsAt(s, now, edit)))
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
		desc   string
	}{
		{"no grant_type", url.Values{"assertion": {"x"}}, 400, "invalid_request", "Missing required parameter: grant_type"},
		{"other grant", url.Values{"grant_type": {"client_credentials"}}, 400, "unsupported_grant_type", "Invalid grant_type: client_credentials"},
		{"no assertion", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}}, 400, "invalid_request", "Missing required parameter: assertion"},
		{"not a JWT", grant("abc.def"), 400, "invalid_grant", "Invalid JWT: the assertion is not a signed JWT."},
		{"signed by another key", grant(jwtFor(rogueKey(), nil, claimsAt(s, now, nil))), 400, "invalid_grant", "Invalid JWT Signature."},
		{"another key id", signed(map[string]any{"kid": "0000"}, nil), 400, "invalid_grant", "Invalid JWT Signature."},
		{"HS256", signed(map[string]any{"alg": "HS256"}, nil), 400, "invalid_grant", "Invalid JWT Signature."},
		{"unknown service account", signed(nil, map[string]any{"iss": "other@p.iam.gserviceaccount.com"}), 400, "invalid_grant", "Invalid grant: account not found"},
		{"wrong audience", signed(nil, map[string]any{"aud": "https://oauth2.googleapis.com/token"}), 400, "invalid_grant", "Invalid JWT: Failed audience check."},
		{"longer than an hour", signed(nil, map[string]any{"exp": now.Add(61 * time.Minute).Unix()}), 400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)"},
		{"expired", signed(nil, map[string]any{"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), 400, "invalid_grant", "Check your iat and exp values"},
		{"issued in the future", signed(nil, map[string]any{"iat": now.Add(10 * time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}), 400, "invalid_grant", "Check your iat and exp values"},
		{"no exp", signed(nil, map[string]any{"exp": nil}), 400, "invalid_grant", "Check your iat and exp values"},
		{"no scope", signed(nil, map[string]any{"scope": nil}), 400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."},
		{"subject not in the domain", signed(nil, map[string]any{"sub": "ghost@example.com"}), 400, "invalid_grant", "Invalid email or User ID"},
		{"subject suspended", signed(nil, map[string]any{"sub": "dave@example.com"}), 400, "invalid_grant", "Invalid email or User ID"},
		{"scope not delegated", signed(nil, map[string]any{"scope": googletest.ScopeUserReadonly + " " + googletest.ScopeGroup}), 401, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tokenRequest(t, s, tc.form)
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if r.status != tc.status || json.Unmarshal(r.body, &e) != nil || e.Error != tc.code || !strings.Contains(e.Description, tc.desc) {
				t.Fatalf("answer %s, want %d %s %q", r, tc.status, tc.code, tc.desc)
			}
		})
	}
	if r := do(t, http.MethodGet, s.TokenURL(), "", nil, ""); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET on the token endpoint: %s", r)
	}
	// A subject by alias, and a delegated read-write scope, are fine.
	if r := tokenRequest(t, s, signed(nil, map[string]any{"sub": "ali@example.com", "scope": googletest.ScopeUser})); r.status != http.StatusOK {
		t.Errorf("subject by alias: %s", r)
	}
}

// TestServiceAccountsOwnToken: without sub the token is the service
// account's own, and the Directory API refuses it.
func TestServiceAccountsOwnToken(t *testing.T) {
	c := newClock()
	s := start(t, domain(), googletest.Options{Now: c.Now})
	r := tokenRequest(t, s, grant(jwtFor(saKey(), nil, claimsAt(s, c.Now(), map[string]any{"sub": nil}))))
	if r.status != http.StatusOK {
		t.Fatalf("token request: %s", r)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(r.body, &tok)
	got := get(t, s, tok.AccessToken, "/users", url.Values{"customer": {"my_customer"}})
	if _, reason, msg, _, _ := apiError(t, got); got.status != 403 || reason != "forbidden" || msg != "Not Authorized to access this resource/api" {
		t.Fatalf("API with the account's own token: %s", got)
	}
}

func TestTokenLifetime(t *testing.T) {
	c := newClock()
	s := start(t, domain(), googletest.Options{Now: c.Now, TokenLifetime: 10 * time.Minute})
	r := tokenRequest(t, s, grant(jwtFor(saKey(), nil, claimsAt(s, c.Now(), nil))))
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if json.Unmarshal(r.body, &tok) != nil || tok.ExpiresIn != 599 {
		t.Fatalf("token answer %s", r)
	}
	q := url.Values{"customer": {"my_customer"}}
	c.Advance(9 * time.Minute)
	if got := get(t, s, tok.AccessToken, "/users", q); got.status != 200 {
		t.Fatalf("before expiry: %s", got)
	}
	c.Advance(time.Minute)
	got := get(t, s, tok.AccessToken, "/users", q)
	if _, reason, _, status, _ := apiError(t, got); got.status != 401 || reason != "authError" || status != "UNAUTHENTICATED" ||
		!strings.Contains(got.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("after expiry: %s %v", got, got.header)
	}
}

func TestExpireTokens(t *testing.T) {
	s := start(t, domain(), googletest.Options{})
	old := adminToken(s)
	s.ExpireTokens()
	q := url.Values{"customer": {"my_customer"}}
	if r := get(t, s, old, "/users", q); r.status != 401 {
		t.Fatalf("expired token: %s", r)
	}
	if r := get(t, s, adminToken(s), "/users", q); r.status != 200 {
		t.Fatalf("a token issued after: %s", r)
	}
}
