package graphtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

func secretConfig(s *graphtest.Server, secret string, style oauth2.AuthStyle) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: s.TokenURL(), Scopes: []string{scope}, AuthStyle: style}
}

// The identity platform documents both client_secret in the body and the
// RFC 6749 Basic header; x/oauth2's auto-detection tries the header first, so
// it must succeed there in one request.
func TestClientSecretGrant(t *testing.T) {
	for _, tc := range []struct {
		name     string
		style    oauth2.AuthStyle
		requests int
	}{
		{"auto-detect uses the Basic header", oauth2.AuthStyleAutoDetect, 1},
		{"in header", oauth2.AuthStyleInHeader, 1},
		{"in params", oauth2.AuthStyleInParams, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret, TokenLifetime: 30 * time.Minute})
			tok, err := secretConfig(s, secret, tc.style).Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := s.TokenRequests(); got != tc.requests {
				t.Errorf("token requests = %d, want %d", got, tc.requests)
			}
			if tok.TokenType != "Bearer" || tok.Extra("ext_expires_in") != float64(1800) {
				t.Errorf("token_type %q ext_expires_in %v", tok.TokenType, tok.Extra("ext_expires_in"))
			}
			if left := time.Until(tok.Expiry); left < 29*time.Minute || left > 30*time.Minute {
				t.Errorf("token expires in %v, want 30m from expires_in", left)
			}
			if r := get(t, s, tok.AccessToken, "/users", nil); r.status != http.StatusOK {
				t.Errorf("Graph refused the issued token: %v", r)
			}
			if s.TotalRequests() != 1 {
				t.Errorf("token requests leaked into Graph's count: %d", s.TotalRequests())
			}
		})
	}
}

func TestClientSecretErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     graphtest.Options
		secret   string
		tokenURL func(*graphtest.Server) string
		status   int
		oauthErr string
		code     int
	}{
		{"wrong secret", graphtest.Options{ClientSecret: secret}, "nope", nil, 401, "invalid_client", 7000215},
		{"expired secret", graphtest.Options{ClientSecret: secret, SecretExpired: true}, secret, nil, 401, "invalid_client", 7000222},
		{"secret auth disabled", graphtest.Options{}, secret, nil, 401, "invalid_client", 7000215},
		{"unknown client", graphtest.Options{ClientID: "99999999-0000-0000-0000-000000000000", ClientSecret: secret}, secret, nil, 400, "unauthorized_client", 700016},
		{"unknown tenant", graphtest.Options{ClientSecret: secret}, secret, func(s *graphtest.Server) string {
			return s.URL() + "/00000000-1111-2222-3333-444444444444/oauth2/v2.0/token"
		}, 400, "invalid_request", 90002},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, graphtest.Tenant{}, tc.opts)
			cfg := secretConfig(s, tc.secret, oauth2.AuthStyleInParams)
			if tc.tokenURL != nil {
				cfg.TokenURL = tc.tokenURL(s)
			}
			_, err := cfg.Token(context.Background())
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("want *oauth2.RetrieveError, got %v", err)
			}
			wantSTSError(t, response{re.Response.StatusCode, re.Response.Header, re.Body}, tc.status, tc.oauthErr, tc.code)
			if re.ErrorCode != tc.oauthErr || !strings.HasPrefix(re.ErrorDescription, "AADSTS") {
				t.Errorf("x/oauth2 read error %q %q", re.ErrorCode, re.ErrorDescription)
			}
		})
	}
}

// With a wrong secret, x/oauth2's auto-detection fails in the header, then
// again in the body: two token requests for one Token call.
func TestWrongSecretAutoDetectTriesBothStyles(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret})
	_, err := secretConfig(s, "wrong", oauth2.AuthStyleAutoDetect).Token(context.Background())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || !strings.HasPrefix(re.ErrorDescription, "AADSTS7000215:") {
		t.Fatalf("got %v", err)
	}
	if got := s.TokenRequests(); got != 2 {
		t.Errorf("token requests = %d, want 2 (header, then params)", got)
	}
}

func TestTokenRequestValidation(t *testing.T) {
	s := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret})
	with := func(edit func(url.Values)) url.Values {
		f := secretForm()
		edit(f)
		return f
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		oauthErr   string
		code       int
	}{
		{"no grant_type", with(func(f url.Values) { f.Del("grant_type") }), "", "", 400, "invalid_request", 900144},
		{"password grant", with(func(f url.Values) { f.Set("grant_type", "password") }), "", "", 400, "unsupported_grant_type", 70003},
		{"no client_id", with(func(f url.Values) { f.Del("client_id") }), "", "", 400, "invalid_request", 900144},
		{"no scope", with(func(f url.Values) { f.Del("scope") }), "", "", 400, "invalid_request", 900144},
		{"delegated scope", with(func(f url.Values) { f.Set("scope", "User.Read") }), "", "", 400, "invalid_scope", 1002012},
		{"other resource", with(func(f url.Values) { f.Set("scope", "https://management.azure.com/.default") }), "", "", 400, "invalid_resource", 500011},
		{"two resources", with(func(f url.Values) { f.Set("scope", scope+" https://management.azure.com/.default") }), "", "", 400, "invalid_scope", 700022},
		{"no credential", with(func(f url.Values) { f.Del("client_secret") }), "", "", 401, "invalid_client", 7000218},
		{"secret in body and header", secretForm(), clientID, secret, 400, "invalid_request", 90023},
		{"header and body name different clients", with(func(f url.Values) { f.Del("client_secret") }), "someone-else", secret, 400, "invalid_request", 90023},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantSTSError(t, postToken(t, s.TokenURL(), tc.form, tc.user, tc.pass), tc.status, tc.oauthErr, tc.code)
		})
	}
	t.Run("GET", func(t *testing.T) {
		r, err := do(http.MethodGet, s.TokenURL(), "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		wantSTSError(t, r, 400, "invalid_request", 900561)
	})
	t.Run("Graph's app id as the resource", func(t *testing.T) {
		f := with(func(f url.Values) { f.Set("scope", "00000003-0000-0000-c000-000000000000/.default") })
		if r := postToken(t, s.TokenURL(), f, "", ""); r.status != http.StatusOK {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("tenant id is case-insensitive", func(t *testing.T) {
		u := strings.Replace(s.TokenURL(), s.TenantID(), strings.ToUpper(s.TenantID()), 1)
		if r := postToken(t, u, secretForm(), "", ""); r.status != http.StatusOK {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("success body", func(t *testing.T) {
		r := postToken(t, s.TokenURL(), secretForm(), "", "")
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != http.StatusOK {
			t.Fatalf("%v: %v", err, r)
		}
		if body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["ext_expires_in"] != float64(3600) || body["access_token"] == "" {
			t.Errorf("got %s", r.body)
		}
		if len(body) != 4 {
			t.Errorf("unexpected fields in %s", r.body)
		}
	})
}

func TestCertificateAssertionWithOAuth2(t *testing.T) {
	key, cert := newCert(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleAutoDetect} {
		s := start(t, graphtest.Tenant{}, graphtest.Options{Certificate: cert})
		cfg := &clientcredentials.Config{
			ClientID: clientID, TokenURL: s.TokenURL(), Scopes: []string{scope}, AuthStyle: style,
			EndpointParams: url.Values{
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {assertion(t, s.TokenURL(), time.Now(), key, cert, nil)},
			},
		}
		tok, err := cfg.Token(context.Background())
		if err != nil {
			t.Fatalf("style %v: %v", style, err)
		}
		// Auto-detection sends a Basic header with an empty password: that
		// names the client and is no second credential.
		if s.TokenRequests() != 1 {
			t.Errorf("style %v: %d token requests", style, s.TokenRequests())
		}
		if r := get(t, s, tok.AccessToken, "/groups", nil); r.status != http.StatusOK {
			t.Errorf("style %v: %v", style, r)
		}
	}
}

func TestCertificateAssertion(t *testing.T) {
	key, cert := newCert(t)
	otherKey, otherCert := newCert(t)
	clk := newClock()
	s := start(t, graphtest.Tenant{}, graphtest.Options{Certificate: cert, Now: clk.Now})
	now := clk.Now()
	form := func(a string) url.Values {
		return url.Values{
			"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a},
		}
	}
	signed := func(edit func(h, c map[string]any)) string { return assertion(t, s.TokenURL(), now, key, cert, edit) }

	for _, tc := range []struct {
		name      string
		assertion string
	}{
		{"RS256 with x5t#S256", signed(nil)},
		{"PS256, as the current documentation asks", signed(func(h, c map[string]any) { h["alg"] = "PS256" })},
		{"legacy SHA-1 x5t", signed(func(h, c map[string]any) { delete(h, "x5t#S256"); h["x5t"] = thumbS1(cert) })},
		{"audience as an array", signed(func(h, c map[string]any) { c["aud"] = []string{s.TokenURL()} })},
		{"within clock skew after exp", signed(func(h, c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := postToken(t, s.TokenURL(), form(tc.assertion), "", ""); r.status != http.StatusOK {
				t.Fatalf("got %v", r)
			}
		})
	}

	tampered := signed(nil)
	parts := strings.Split(tampered, ".")
	parts[1] = strings.Split(signed(func(h, c map[string]any) { c["exp"] = now.Add(time.Hour).Unix() }), ".")[1]
	tampered = strings.Join(parts, ".")

	for _, tc := range []struct {
		name      string
		assertion string
		status    int
		oauthErr  string
		code      int
	}{
		{"unregistered certificate", assertion(t, s.TokenURL(), now, otherKey, otherCert, nil), 401, "invalid_client", 700027},
		{"registered thumbprint, other key", assertion(t, s.TokenURL(), now, otherKey, cert, nil), 401, "invalid_client", 700027},
		{"claims changed after signing", tampered, 401, "invalid_client", 700027},
		{"no thumbprint", signed(func(h, c map[string]any) { delete(h, "x5t#S256") }), 401, "invalid_client", 700027},
		{"HS256", signed(func(h, c map[string]any) { h["alg"] = "HS256" }), 401, "invalid_client", 700027},
		{"issuer is not the client", signed(func(h, c map[string]any) { c["iss"] = "someone" }), 401, "invalid_client", 700021},
		{"subject is not the client", signed(func(h, c map[string]any) { c["sub"] = "someone" }), 401, "invalid_client", 700021},
		{"audience is the v1 endpoint", signed(func(h, c map[string]any) {
			c["aud"] = strings.Replace(s.TokenURL(), "/oauth2/v2.0/token", "/oauth2/token", 1)
		}), 401, "invalid_client", 700023},
		{"expired", signed(func(h, c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }), 401, "invalid_client", 700024},
		{"not yet valid", signed(func(h, c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }), 401, "invalid_client", 700024},
		{"no exp", signed(func(h, c map[string]any) { delete(c, "exp") }), 400, "invalid_request", 50027},
		{"not a JWT", "not.a-jwt", 400, "invalid_request", 50027},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantSTSError(t, postToken(t, s.TokenURL(), form(tc.assertion), "", ""), tc.status, tc.oauthErr, tc.code)
		})
	}

	t.Run("wrong assertion type", func(t *testing.T) {
		f := form(signed(nil))
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		wantSTSError(t, postToken(t, s.TokenURL(), f, "", ""), 400, "invalid_request", 90023)
	})
	t.Run("assertion and secret", func(t *testing.T) {
		f := form(signed(nil))
		f.Set("client_secret", secret)
		wantSTSError(t, postToken(t, s.TokenURL(), f, "", ""), 400, "invalid_request", 90023)
	})
	t.Run("assertion is judged by Options.Now", func(t *testing.T) {
		a := signed(nil)
		clk.Advance(time.Hour)
		defer clk.Advance(-time.Hour)
		wantSTSError(t, postToken(t, s.TokenURL(), form(a), "", ""), 401, "invalid_client", 700024)
	})
	t.Run("no certificate registered", func(t *testing.T) {
		bare := start(t, graphtest.Tenant{}, graphtest.Options{ClientSecret: secret})
		a := assertion(t, bare.TokenURL(), time.Now(), key, cert, nil)
		wantSTSError(t, postToken(t, bare.TokenURL(), form(a), "", ""), 401, "invalid_client", 700027)
	})
}
