package oktatest_test

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ptsync/ptsync/sources/okta/oktatest"
)

var smallOrg = bigOrg(3, 2, func(int) []string { return []string{userID(0), userID(2)} })

func TestSSWS(t *testing.T) {
	s, _ := newServer(t, smallOrg, nil)
	if got := ids(t, get(t, s.URL()+"/api/v1/groups", ssws())); len(got) != 2 {
		t.Errorf("groups %v", got)
	}
	for _, auth := range []string{"SSWS wrong", "SSWS ", "ssws " + apiToken + "x"} {
		e := wantError(t, get(t, s.URL()+"/api/v1/users", auth), http.StatusUnauthorized, "E0000011")
		if e.ErrorSummary != "Invalid token provided" || len(e.ErrorCauses) != 0 {
			t.Errorf("%q: %+v", auth, e)
		}
	}

	// An access token is no API token, nor the other way round.
	s2, c := newServer(t, smallOrg, nil)
	tok := accessToken(t, s2, c, "okta.groups.read")
	wantError(t, get(t, s2.URL()+"/api/v1/groups", "SSWS "+tok), http.StatusUnauthorized, "E0000011")
	if r := get(t, s2.URL()+"/api/v1/groups", bearer(apiToken)); r.status != http.StatusUnauthorized {
		t.Errorf("API token as Bearer: %d", r.status)
	}
}

func TestSSWSDisabled(t *testing.T) {
	s, _ := newServer(t, smallOrg, func(o *oktatest.Options) { o.APIToken = "" })
	wantError(t, get(t, s.URL()+"/api/v1/groups", "SSWS "), http.StatusUnauthorized, "E0000011")
	wantError(t, get(t, s.URL()+"/api/v1/groups", ssws()), http.StatusUnauthorized, "E0000011")
}

// Without credentials Okta falls back to its session cookie: 403 E0000005.
func TestNoCredentials(t *testing.T) {
	s, _ := newServer(t, smallOrg, nil)
	for _, auth := range []string{"", "Basic dXNlcjpwYXNz", apiToken} {
		e := wantError(t, get(t, s.URL()+"/api/v1/groups", auth), http.StatusForbidden, "E0000005")
		if e.ErrorSummary != "Invalid session" {
			t.Errorf("%q: %+v", auth, e)
		}
	}
}

func TestMethodAndPath(t *testing.T) {
	s, _ := newServer(t, smallOrg, nil)
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/v1/groups", strings.NewReader("{}"))
	req.Header.Set("Authorization", ssws())
	wantError(t, do(t, req), http.StatusMethodNotAllowed, "E0000022")
	wantError(t, get(t, s.URL()+"/oauth2/v1/token", ""), http.StatusMethodNotAllowed, "E0000022")
	wantError(t, get(t, s.URL()+"/api/v1/apps", ssws()), http.StatusNotFound, "E0000007")
}

// The service-app flow as golang.org/x/oauth2 drives it.
func TestClientCredentials(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	cfg := clientcredentials.Config{
		ClientID: clientID,
		TokenURL: s.TokenURL(),
		Scopes:   []string{"okta.groups.read", "okta.users.read"},
		EndpointParams: url.Values{
			"client_assertion_type": {jwtBearer},
			"client_assertion":      {sign(t, clientKey(), "RS256", claims(s, c.Now()))},
		},
		AuthStyle: oauth2.AuthStyleInParams,
	}
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "Bearer" || tok.Extra("expires_in") != 3600.0 || tok.Extra("scope") != "okta.groups.read okta.users.read" {
		t.Errorf("token %+v", tok)
	}
	hc := oauth2.NewClient(t.Context(), oauth2.StaticTokenSource(tok))
	for _, path := range []string{"/api/v1/groups", "/api/v1/groups/" + groupID(1) + "/users", "/api/v1/users"} {
		resp, err := hc.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}

	// The assertion carries a jti: Okta refuses to take it twice.
	_, err = cfg.Token(t.Context())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" ||
		re.ErrorDescription != "The client_assertion token has already been used." {
		t.Errorf("replayed assertion: %v", err)
	}
	if n := s.TokenRequests(); n != 2 {
		t.Errorf("TokenRequests %d", n)
	}
}

func TestTokenResponse(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.TokenLifetime = 90 * time.Second })
	r := postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), "okta.users.read"))
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("header %v", r.header)
	}
	var fields map[string]any
	if err := json.Unmarshal(r.body, &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 4 || fields["token_type"] != "Bearer" || fields["expires_in"] != 90.0 ||
		fields["scope"] != "okta.users.read" || fields["access_token"] == "" {
		t.Errorf("token response %s", r.body)
	}
}

func TestTokenErrors(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	now := c.Now()
	signed := func(key func() *rsa.PrivateKey, alg string, edit func(map[string]any)) func(url.Values) {
		return func(f url.Values) {
			cl := claims(s, now)
			if edit != nil {
				edit(cl)
			}
			f.Set("client_assertion", sign(t, key(), alg, cl))
		}
	}
	claim := func(k string, v any) func(url.Values) {
		return signed(clientKey, "RS256", func(m map[string]any) {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		})
	}
	set := func(k, v string) func(url.Values) { return func(f url.Values) { f.Set(k, v) } }
	del := func(k string) func(url.Values) { return func(f url.Values) { f.Del(k) } }

	const (
		badClient = "invalid_client"
		badReq    = "invalid_request"
		badScope  = "invalid_scope"
	)
	for _, tc := range []struct {
		name   string
		edit   func(url.Values)
		status int
		code   string
		desc   string
	}{
		{"no grant_type", del("grant_type"), 400, badReq, "The token request must specify a 'grant_type'. Valid values: [client_credentials]"},
		{"client_secret", set("client_secret", "s3cret"), 401, badClient, "Client Credentials requests to the Org Authorization Server must use the private_key_jwt token_endpoint_auth_method."},
		{"no assertion", del("client_assertion"), 401, badClient, "No client credentials found."},
		{"assertion type", set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), 400, badReq, "The client_assertion_type is invalid."},
		{"not a JWT", set("client_assertion", "not-a-jwt"), 401, badClient, "The parsing of the client_assertion failed."},
		{"bad base64", set("client_assertion", "e30.e30.!!"), 401, badClient, "The parsing of the client_assertion failed."},
		{"other issuer", claim("iss", "0oaSOMEONEELSE"), 401, badClient, "The issuer claim for client_assertion is not a valid client_id."},
		{"client_id differs", set("client_id", "0oaSOMEONEELSE"), 401, badClient, "The issuer claim for client_assertion is not a valid client_id."},
		{"other subject", claim("sub", "0oaSOMEONEELSE"), 401, badClient, "The subject claim for client_assertion is not a valid client_id."},
		{"HS256", signed(clientKey, "HS256", nil), 401, badClient, "The client_assertion JWT signature algorithm is invalid."},
		{"unknown key", signed(otherKey, "RS256", nil), 401, badClient, "The client_assertion signature is invalid."},
		{"other audience", claim("aud", s.URL()+"/oauth2/default/v1/token"), 401, badClient, "The audience claim for client_assertion must be the endpoint invoked for the request."},
		{"no exp", claim("exp", nil), 401, badClient, "The client_assertion must contain the 'exp' claim as seconds since epoch."},
		{"exp a string", claim("exp", fmt.Sprint(now.Add(time.Minute).Unix())), 401, badClient, "The client_assertion must contain the 'exp' claim as seconds since epoch."},
		{"expired", claim("exp", now.Unix()), 401, badClient, "The client_assertion token is expired."},
		{"exp too late", claim("exp", now.Add(61*time.Minute).Unix()), 401, badClient, "The client_assertion token has an expiration too far into the future."},
		{"iat ahead", claim("iat", now.Add(time.Minute).Unix()), 401, badClient, "The client_assertion token must be issued before the current time."},
		{"other grant", set("grant_type", "password"), 400, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials]."},
		{"no scope", del("scope"), 400, badScope, "The authorization server resource does not have any configured default scopes, 'scope' must be provided."},
		{"non-Okta scope", set("scope", "okta.users.read openid"), 400, badScope, "One or more scopes are not configured for the authorization server resource."},
		{"no scope granted", set("scope", "okta.apps.read okta.users.manage"), 400, "consent_required", "You are not allowed any of the requested scopes."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tokenForm(t, s, now, "okta.groups.read")
			tc.edit(f)
			wantOAuthError(t, postForm(t, s.TokenURL(), f), tc.status, tc.code, tc.desc)
		})
	}

	t.Run("basic auth", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(tokenForm(t, s, now, "okta.groups.read").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, "s3cret")
		wantOAuthError(t, do(t, req), 401, badClient, "Client Credentials requests to the Org Authorization Server must use the private_key_jwt token_endpoint_auth_method.")
	})
	t.Run("assertion in query", func(t *testing.T) {
		f := tokenForm(t, s, now, "okta.groups.read")
		r := postForm(t, s.TokenURL()+"?client_assertion="+url.QueryEscape(f.Get("client_assertion")), f)
		wantOAuthError(t, r, 400, badReq, "Client credentials cannot be supplied via query parameters.")
	})
}

func wantOAuthError(t *testing.T, r response, status int, code, desc string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e map[string]string
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if len(e) != 2 || e["error"] != code || e["error_description"] != desc {
		t.Errorf("body %s, want %s: %s", r.body, code, desc)
	}
}

func TestAssertionVariants(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	now := c.Now()
	for _, tc := range []struct {
		name string
		alg  string
		edit func(map[string]any)
	}{
		{"RS384", "RS384", nil},
		{"RS512", "RS512", nil},
		{"aud array", "RS256", func(m map[string]any) { m["aud"] = []string{"https://example.com", s.TokenURL()} }},
		{"no iat", "RS256", func(m map[string]any) { delete(m, "iat") }},
		{"exp in exactly an hour", "RS256", func(m map[string]any) { m["exp"] = now.Add(time.Hour).Unix() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := claims(s, now)
			if tc.edit != nil {
				tc.edit(cl)
			}
			f := tokenForm(t, s, now, "okta.groups.read")
			f.Set("client_assertion", sign(t, clientKey(), tc.alg, cl))
			decode[tokenResponse](t, postForm(t, s.TokenURL(), f))
		})
	}

	// jti is optional, and without it nothing stops a replay.
	cl := claims(s, now)
	delete(cl, "jti")
	f := tokenForm(t, s, now, "okta.groups.read")
	f.Set("client_assertion", sign(t, clientKey(), "RS256", cl))
	for range 2 {
		decode[tokenResponse](t, postForm(t, s.TokenURL(), f))
	}
}

// Okta grants the requested scopes that the app holds and drops the others.
func TestScopesGrantedInPart(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	tok := decode[tokenResponse](t, postForm(t, s.TokenURL(),
		tokenForm(t, s, c.Now(), "okta.apps.read okta.groups.read okta.groups.read")))
	if tok.Scope != "okta.groups.read" {
		t.Errorf("scope %q", tok.Scope)
	}
	if r := get(t, s.URL()+"/api/v1/groups", bearer(tok.AccessToken)); r.status != http.StatusOK {
		t.Errorf("groups: %d", r.status)
	}
	wantChallenge(t, s, get(t, s.URL()+"/api/v1/users", bearer(tok.AccessToken)), http.StatusForbidden,
		`scope="okta.users.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="/api/v1/users"`)
}

// wantChallenge checks that r is Okta's Bearer challenge: status, no body,
// and a WWW-Authenticate header ending in tail.
func wantChallenge(t *testing.T, s *oktatest.Server, r response, status int, tail string) {
	t.Helper()
	want := fmt.Sprintf(`Bearer authorization_uri="%s/oauth2/v1/authorize", realm="%s", %s`, s.URL(), s.URL(), tail)
	if r.status != status || len(r.body) != 0 || r.header.Get("WWW-Authenticate") != want {
		t.Errorf("got %d %q, body %q; want %d %q", r.status, r.header.Get("WWW-Authenticate"), r.body, status, want)
	}
}

func TestBearerScopes(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	users := accessToken(t, s, c, "okta.users.read")
	if r := get(t, s.URL()+"/api/v1/users", bearer(users)); r.status != http.StatusOK {
		t.Errorf("users: %d", r.status)
	}
	for _, path := range []string{"/api/v1/groups", "/api/v1/groups/" + groupID(0) + "/users"} {
		wantChallenge(t, s, get(t, s.URL()+path, bearer(users)), http.StatusForbidden,
			`scope="okta.groups.read", error="insufficient_scope", error_description="The access token provided does not contain the required scopes.", resource="`+path+`"`)
	}

	// A manage scope includes read access.
	s2, c2 := newServer(t, smallOrg, func(o *oktatest.Options) { o.Scopes = []string{"okta.groups.manage"} })
	manage := accessToken(t, s2, c2, "okta.groups.manage")
	if r := get(t, s2.URL()+"/api/v1/groups/"+groupID(0)+"/users", bearer(manage)); r.status != http.StatusOK {
		t.Errorf("group users with okta.groups.manage: %d", r.status)
	}
	if r := get(t, s2.URL()+"/api/v1/users", bearer(manage)); r.status != http.StatusForbidden {
		t.Errorf("users with okta.groups.manage: %d", r.status)
	}
}

func TestBearerExpiry(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	tok := accessToken(t, s, c, "okta.groups.read")
	c.Advance(time.Hour - time.Nanosecond)
	if r := get(t, s.URL()+"/api/v1/groups", bearer(tok)); r.status != http.StatusOK {
		t.Fatalf("before expiry: %d", r.status)
	}
	c.Advance(time.Nanosecond)
	expired := `error="invalid_token", error_description="The token has expired.", resource="/api/v1/groups"`
	wantChallenge(t, s, get(t, s.URL()+"/api/v1/groups", bearer(tok)), http.StatusUnauthorized, expired)

	wantChallenge(t, s, get(t, s.URL()+"/api/v1/groups", bearer("made-up")), http.StatusUnauthorized,
		`error="invalid_token", error_description="The access token is invalid.", resource="/api/v1/groups"`)
	wantChallenge(t, s, get(t, s.URL()+"/api/v1/groups", "Bearer "), http.StatusUnauthorized,
		`error="invalid_request", error_description="The access token is missing.", resource="/api/v1/groups"`)
}

func TestExpireTokens(t *testing.T) {
	s, c := newServer(t, smallOrg, nil)
	old := accessToken(t, s, c, "okta.groups.read")
	s.ExpireTokens()
	wantChallenge(t, s, get(t, s.URL()+"/api/v1/groups", bearer(old)), http.StatusUnauthorized,
		`error="invalid_token", error_description="The token has expired.", resource="/api/v1/groups"`)
	fresh := accessToken(t, s, c, "okta.groups.read")
	if r := get(t, s.URL()+"/api/v1/groups", bearer(fresh)); r.status != http.StatusOK {
		t.Errorf("new token: %d", r.status)
	}
	if r := get(t, s.URL()+"/api/v1/groups", ssws()); r.status != http.StatusOK {
		t.Errorf("API token: %d", r.status)
	}
}

func TestOAuthDisabled(t *testing.T) {
	s, c := newServer(t, smallOrg, func(o *oktatest.Options) { o.ClientID, o.ClientKey = "", nil })
	wantOAuthError(t, postForm(t, s.TokenURL(), tokenForm(t, s, c.Now(), "okta.groups.read")), 401,
		"invalid_client", "The issuer claim for client_assertion is not a valid client_id.")
}
