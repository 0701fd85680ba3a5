package oktatest

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	scopeGroupsRead = "okta.groups.read"
	scopeUsersRead  = "okta.users.read"
	scopeLogsRead   = "okta.logs.read"

	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// maxAssertionLife is how far in the future Okta accepts a client
	// assertion's exp.
	maxAssertionLife = time.Hour
)

type accessToken struct {
	scopes  []string
	expires time.Time
}

// allows reports whether t grants scope. Okta's manage scopes include read
// access: okta.groups.manage grants okta.groups.read.
func (t accessToken) allows(scope string) bool {
	manage := strings.TrimSuffix(scope, ".read") + ".manage"
	return slices.Contains(t.scopes, scope) || slices.Contains(t.scopes, manage)
}

// api wraps a Management API handler: GET only, with credentials that give
// scope.
func (s *Server) api(scope string, h func(w http.ResponseWriter, r *http.Request, now time.Time)) func(http.ResponseWriter, *http.Request, time.Time) {
	return func(w http.ResponseWriter, r *http.Request, now time.Time) {
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, codeMethod, "The endpoint does not support the provided HTTP method")
			return
		}
		if s.authorize(w, r, now, scope) {
			h(w, r, now)
		}
	}
}

// authorize checks a Management API request's credentials and answers the
// request itself when they fall short.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, now time.Time, scope string) bool {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case strings.EqualFold(scheme, "SSWS"):
		// An API token acts with its admin's full rights: it has no scopes.
		if s.opts.APIToken == "" || subtle.ConstantTimeCompare([]byte(cred), []byte(s.opts.APIToken)) != 1 {
			writeError(w, http.StatusUnauthorized, codeInvalidToken, "Invalid token provided")
			return false
		}
		return true
	case strings.EqualFold(scheme, "Bearer"):
		s.mu.Lock()
		t, ok := s.tokens[cred]
		s.mu.Unlock()
		switch {
		case cred == "":
			s.challenge(w, r, http.StatusUnauthorized, "", "invalid_request", "The access token is missing.")
		case !ok:
			s.challenge(w, r, http.StatusUnauthorized, "", "invalid_token", "The access token is invalid.")
		case !now.Before(t.expires):
			s.challenge(w, r, http.StatusUnauthorized, "", "invalid_token", "The token has expired.")
		case !t.allows(scope):
			s.challenge(w, r, http.StatusForbidden, scope, "insufficient_scope", "The access token provided does not contain the required scopes.")
		default:
			return true
		}
		return false
	default:
		// Without credentials Okta looks for a session cookie and finds none.
		writeError(w, http.StatusForbidden, codeInvalidSession, "Invalid session")
		return false
	}
}

// challenge answers a Bearer request the way Okta's resource server does:
// an RFC 6750 WWW-Authenticate header and no body.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, status int, scope, code, description string) {
	v := fmt.Sprintf(`Bearer authorization_uri="%s/oauth2/v1/authorize", realm="%s"`, s.base, s.base)
	if scope != "" {
		v += fmt.Sprintf(`, scope="%s"`, scope)
	}
	v += fmt.Sprintf(`, error="%s", error_description="%s", resource="%s"`, code, description, r.URL.Path)
	w.Header().Set("WWW-Authenticate", v)
	w.WriteHeader(status)
}

// oauthError is the body of the token endpoint's errors.
type oauthError struct {
	status      int
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func invalidClient(description string) *oauthError {
	return &oauthError{http.StatusUnauthorized, "invalid_client", description}
}

func badRequest(code, description string) *oauthError {
	return &oauthError{http.StatusBadRequest, code, description}
}

// token serves the org authorization server's token endpoint.
func (s *Server) token(w http.ResponseWriter, r *http.Request, now time.Time) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, codeMethod, "The endpoint does not support the provided HTTP method")
		return
	}
	resp, oerr := s.issue(r, now)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if oerr != nil {
		writeJSON(w, oerr.status, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

type tokenResponse struct {
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
}

// issue checks a token request and mints its access token. The errors and
// their descriptions are those of Okta's OAuth 2.0 error catalogue.
func (s *Server) issue(r *http.Request, now time.Time) (*tokenResponse, *oauthError) {
	if err := r.ParseForm(); err != nil {
		return nil, badRequest("invalid_request", "The request body is not well-formed.")
	}
	if q := r.URL.Query(); q.Has("client_assertion") || q.Has("client_secret") {
		return nil, badRequest("invalid_request", "Client credentials cannot be supplied via query parameters.")
	}
	f := r.PostForm
	grantType := f.Get("grant_type")
	if grantType == "" {
		return nil, badRequest("invalid_request", "The token request must specify a 'grant_type'. Valid values: [client_credentials]")
	}
	if _, _, basic := r.BasicAuth(); basic || f.Has("client_secret") {
		return nil, invalidClient("Client Credentials requests to the Org Authorization Server must use the private_key_jwt token_endpoint_auth_method.")
	}
	if !f.Has("client_assertion") {
		return nil, invalidClient("No client credentials found.")
	}
	if f.Get("client_assertion_type") != jwtBearer {
		return nil, badRequest("invalid_request", "The client_assertion_type is invalid.")
	}
	if oerr := s.verifyAssertion(f.Get("client_assertion"), f.Get("client_id"), now); oerr != nil {
		return nil, oerr
	}
	if grantType != "client_credentials" {
		return nil, badRequest("unsupported_grant_type", "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].")
	}

	requested := strings.Fields(f.Get("scope"))
	if len(requested) == 0 {
		return nil, badRequest("invalid_scope", "The authorization server resource does not have any configured default scopes, 'scope' must be provided.")
	}
	// The org authorization server knows only Okta's own scopes. Of those
	// it grants the ones in the app's grants collection and drops the rest;
	// only when none is left does the request fail.
	var granted []string
	for _, sc := range requested {
		if !strings.HasPrefix(sc, "okta.") {
			return nil, badRequest("invalid_scope", "One or more scopes are not configured for the authorization server resource.")
		}
		if slices.Contains(s.opts.Scopes, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	if len(granted) == 0 {
		return nil, badRequest("consent_required", "You are not allowed any of the requested scopes.")
	}

	token := randomID("")
	s.mu.Lock()
	s.tokens[token] = accessToken{scopes: granted, expires: now.Add(s.opts.TokenLifetime)}
	s.mu.Unlock()
	return &tokenResponse{
		TokenType:   "Bearer",
		ExpiresIn:   max(1, int(math.Ceil(s.opts.TokenLifetime.Seconds()))),
		AccessToken: token,
		Scope:       strings.Join(granted, " "),
	}, nil
}

var signingHashes = map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512}

// verifyAssertion checks a private_key_jwt client assertion (RFC 7523) and
// records its jti, which may not be used again.
func (s *Server) verifyAssertion(jwt, clientID string, now time.Time) *oauthError {
	parseErr := invalidClient("The parsing of the client_assertion failed.")
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return parseErr
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp json.RawMessage `json:"exp"`
		Iat json.RawMessage `json:"iat"`
		Jti string          `json:"jti"`
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		return parseErr
	}

	switch {
	case s.opts.ClientID == "" || s.opts.ClientKey == nil || claims.Iss != s.opts.ClientID,
		clientID != "" && clientID != claims.Iss:
		return invalidClient("The issuer claim for client_assertion is not a valid client_id.")
	case claims.Sub != claims.Iss:
		return invalidClient("The subject claim for client_assertion is not a valid client_id.")
	}
	hash, ok := signingHashes[header.Alg]
	if !ok {
		return invalidClient("The client_assertion JWT signature algorithm is invalid.")
	}
	digest := hash.New()
	digest.Write([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(s.opts.ClientKey, hash, digest.Sum(nil), sig) != nil {
		return invalidClient("The client_assertion signature is invalid.")
	}
	if !audienceIs(claims.Aud, s.TokenURL()) {
		return invalidClient("The audience claim for client_assertion must be the endpoint invoked for the request.")
	}
	exp, ok := numericDate(claims.Exp)
	switch {
	case !ok:
		return invalidClient("The client_assertion must contain the 'exp' claim as seconds since epoch.")
	case !now.Before(exp):
		return invalidClient("The client_assertion token is expired.")
	case exp.After(now.Add(maxAssertionLife)):
		return invalidClient("The client_assertion token has an expiration too far into the future.")
	}
	if iat, ok := numericDate(claims.Iat); ok && iat.After(now) {
		return invalidClient("The client_assertion token must be issued before the current time.")
	}

	// jti is optional; when present it guards against replay.
	if claims.Jti == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for jti, exp := range s.assertions {
		if !now.Before(exp) { // expired assertions are refused anyway
			delete(s.assertions, jti)
		}
	}
	if _, used := s.assertions[claims.Jti]; used {
		return invalidClient("The client_assertion token has already been used.")
	}
	s.assertions[claims.Jti] = exp
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// audienceIs reports whether an aud claim, a string or an array of strings,
// names want.
func audienceIs(aud json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one == want
	}
	var many []string
	return json.Unmarshal(aud, &many) == nil && slices.Contains(many, want)
}

// numericDate reads a JWT NumericDate: a JSON number of seconds since the
// epoch. A string, even of digits, is not one.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	secs, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, false
	}
	whole := math.Floor(secs)
	return time.Unix(int64(whole), int64((secs-whole)*float64(time.Second))), true
}
