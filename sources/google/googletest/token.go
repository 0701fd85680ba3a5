package googletest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// maxJWTLifetime is the longest exp - iat Google takes: an hour.
	maxJWTLifetime = time.Hour
	// clockSkew is how far ahead of the server an iat may be.
	clockSkew = 5 * time.Minute
)

// Error texts of Google's token endpoint.
const (
	msgBadSignature = "Invalid JWT Signature."
	msgBadTimes     = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	msgBadSubject   = "Invalid email or User ID"
	msgUnauthorized = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	msgBadScope     = "Invalid OAuth scope or ID token audience provided."
)

// oauthError is a failed token request.
type oauthError struct {
	status      int
	code        string
	description string
}

func invalidGrant(description string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", description}
}

// jwtHeader and jwtClaims are the parts of the assertion Google checks.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type jwtClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Scope string   `json:"scope"`
	Aud   audience `json:"aud"`
	Exp   *float64 `json:"exp"`
	Iat   *float64 `json:"iat"`
}

// audience is the JWT aud claim: one string or an array of them (RFC 7519).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// serveToken is Google's token endpoint for the JWT bearer grant of a
// service account.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenRequests++
	s.mu.Unlock()

	claims, e := s.checkTokenRequest(r)
	if e != nil {
		writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
		return
	}
	s.mu.Lock()
	tok := s.issueLocked(claims.Sub, strings.Fields(claims.Scope))
	s.mu.Unlock()
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_in":   int(s.opts.TokenLifetime/time.Second) - 1,
		"token_type":   "Bearer",
	})
}

func (s *Server) checkTokenRequest(r *http.Request) (*jwtClaims, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, &oauthError{http.StatusMethodNotAllowed, "invalid_request", "The token endpoint takes POST only."}
	}
	// Only the body counts: ParseForm fills PostForm from a form-encoded
	// body and leaves it empty for any other content type.
	if err := r.ParseForm(); err != nil {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "The request body is not form data."}
	}
	f := r.PostForm
	switch grant := f.Get("grant_type"); grant {
	case jwtBearerGrant:
	case "":
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type"}
	default:
		return nil, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: " + grant}
	}
	raw := f.Get("assertion")
	if raw == "" {
		return nil, &oauthError{http.StatusBadRequest, "invalid_request", "Missing required parameter: assertion"}
	}
	parts := strings.Split(raw, ".")
	var hdr jwtHeader
	var claims jwtClaims
	if len(parts) != 3 || decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil {
		return nil, invalidGrant("Invalid JWT: the assertion is not a signed JWT.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, invalidGrant(msgBadSignature)
	}

	sa := s.opts.ServiceAccount
	if claims.Iss == "" || claims.Iss != sa.Email {
		return nil, invalidGrant("Invalid grant: account not found")
	}
	// A kid names the key; without one Google tries the account's keys.
	if hdr.Alg != "RS256" || sa.Key == nil || (hdr.Kid != "" && hdr.Kid != sa.KeyID) {
		return nil, invalidGrant(msgBadSignature)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(sa.Key, crypto.SHA256, digest[:], sig) != nil {
		return nil, invalidGrant(msgBadSignature)
	}
	if !slices.Contains(claims.Aud, s.TokenURL()) {
		return nil, invalidGrant("Invalid JWT: Failed audience check. The expected value was " + s.TokenURL())
	}
	now := s.opts.Now()
	if claims.Exp == nil || claims.Iat == nil {
		return nil, invalidGrant(msgBadTimes)
	}
	iat, exp := unixTime(*claims.Iat), unixTime(*claims.Exp)
	if iat.After(now.Add(clockSkew)) || !now.Before(exp) || exp.Sub(iat) > maxJWTLifetime || exp.Before(iat) {
		return nil, invalidGrant(msgBadTimes)
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 {
		return nil, &oauthError{http.StatusBadRequest, "invalid_scope", msgBadScope}
	}
	if claims.Sub == "" {
		return &claims, nil // the service account's own token
	}
	s.mu.Lock()
	u, ok := s.dir.userByEmail(claims.Sub)
	s.mu.Unlock()
	if !ok || u.Suspended {
		return nil, invalidGrant(msgBadSubject)
	}
	for _, sc := range scopes {
		if !slices.Contains(s.opts.DelegatedScopes, sc) {
			return nil, &oauthError{http.StatusUnauthorized, "unauthorized_client", msgUnauthorized}
		}
	}
	return &claims, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func unixTime(secs float64) time.Time {
	return time.Unix(0, int64(secs*float64(time.Second)))
}
