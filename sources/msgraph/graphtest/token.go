package graphtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	// graphScope is the one scope a client-credentials request for Graph may
	// carry; graphAppScope names the same resource by its application id.
	graphScope    = "https://graph.microsoft.com/.default"
	graphAppScope = "00000003-0000-0000-c000-000000000000/.default"
	jwtBearer     = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionSkew is how far an assertion's nbf and exp may be off: clock
	// skew between the client and the token service.
	assertionSkew = 5 * time.Minute
)

// stsError is a failed token request: HTTP status, OAuth error, AADSTS code
// and the text that follows "AADSTSnnnn: " in error_description.
type stsError struct {
	status int
	oauth  string
	code   int
	msg    string
}

func stsErr(status int, oauth string, code int, format string, args ...any) *stsError {
	return &stsError{status, oauth, code, fmt.Sprintf(format, args...)}
}

func missingParam(name string) *stsError {
	return stsErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

// serveToken is the identity platform's /{tenant}/oauth2/v2.0/token for the
// client-credentials grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	s.tokenRequests++
	tenantID := s.dir.tenantID
	s.mu.Unlock()

	if e := s.checkTokenRequest(r, tenant, tenantID); e != nil {
		s.writeSTSError(w, e)
		return
	}
	s.mu.Lock()
	tok := s.issueLocked()
	s.mu.Unlock()
	secs := int(s.opts.TokenLifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

func (s *Server) checkTokenRequest(r *http.Request, tenant, tenantID string) *stsError {
	if r.Method != http.MethodPost {
		return stsErr(http.StatusBadRequest, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method)
	}
	if !strings.EqualFold(tenant, tenantID) {
		return stsErr(http.StatusBadRequest, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)
	}
	// Only the body counts: ParseForm fills PostForm from a form-encoded body
	// and leaves it empty for any other content type.
	if err := r.ParseForm(); err != nil {
		return stsErr(http.StatusBadRequest, "invalid_request", 90023, "The request body is not valid form data: %v", err)
	}
	f := r.PostForm
	switch grant := f.Get("grant_type"); grant {
	case "client_credentials":
	case "":
		return missingParam("grant_type")
	default:
		return stsErr(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grant)
	}

	// RFC 6749 section 2.3.1: client_secret_basic form-urlencodes the id and
	// secret before base64 (golang.org/x/oauth2 does so).
	clientID := f.Get("client_id")
	basicUser, basicPass, hasBasic := r.BasicAuth()
	if hasBasic {
		basicUser, basicPass = formUnescape(basicUser), formUnescape(basicPass)
		if clientID != "" && clientID != basicUser {
			return stsErr(http.StatusBadRequest, "invalid_request", 90023, "The client_id in the body ('%s') differs from the one in the Authorization header ('%s').", clientID, basicUser)
		}
		clientID = basicUser
	}
	if clientID == "" {
		return missingParam("client_id")
	}
	if !strings.EqualFold(clientID, s.opts.ClientID) {
		return stsErr(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenantID)
	}
	if e := checkScope(f.Get("scope"), tenantID); e != nil {
		return e
	}

	// A Basic header with an empty password only names the client (x/oauth2's
	// auto-detection sends one even when the credential is an assertion).
	secret := f.Get("client_secret")
	basicSecret := hasBasic && basicPass != ""
	assertion := f.Has("client_assertion") || f.Has("client_assertion_type")
	methods := 0
	for _, used := range []bool{secret != "", basicSecret, assertion} {
		if used {
			methods++
		}
	}
	switch {
	case methods > 1:
		return stsErr(http.StatusBadRequest, "invalid_request", 90023, "The request uses more than one client authentication method (RFC 6749 section 2.3 allows one).")
	case methods == 0:
		return stsErr(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case assertion:
		return s.checkAssertion(f, tenantID)
	case basicSecret:
		secret = basicPass
	}
	return s.checkSecret(secret)
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func checkScope(scope, tenantID string) *stsError {
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return missingParam("scope")
	}
	for _, sc := range scopes {
		if !strings.HasSuffix(sc, "/.default") {
			return stsErr(http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", sc)
		}
	}
	if len(scopes) > 1 {
		return stsErr(http.StatusBadRequest, "invalid_scope", 700022, "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", scope)
	}
	if !strings.EqualFold(scopes[0], graphScope) && !strings.EqualFold(scopes[0], graphAppScope) {
		resource := strings.TrimSuffix(scopes[0], "/.default")
		return stsErr(http.StatusBadRequest, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", resource, tenantID)
	}
	return nil
}

func (s *Server) checkSecret(secret string) *stsError {
	want := s.opts.ClientSecret
	if want == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 {
		return stsErr(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", s.opts.ClientID)
	}
	if s.opts.SecretExpired {
		return stsErr(http.StatusUnauthorized, "invalid_client", 7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", s.opts.ClientID)
	}
	return nil
}

// assertionHeader and assertionClaims are the parts of a client assertion the
// identity platform checks (certificate-credentials documentation).
type assertionHeader struct {
	Alg     string `json:"alg"`
	X5t     string `json:"x5t"`
	X5tS256 string `json:"x5t#S256"`
}

type assertionClaims struct {
	Aud audience `json:"aud"`
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Exp *float64 `json:"exp"`
	Nbf *float64 `json:"nbf"`
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

func (s *Server) checkAssertion(f url.Values, tenantID string) *stsError {
	switch typ := f.Get("client_assertion_type"); typ {
	case jwtBearer:
	case "":
		return missingParam("client_assertion_type")
	default:
		return stsErr(http.StatusBadRequest, "invalid_request", 90023, "client_assertion_type '%s' is not supported; use '%s'.", typ, jwtBearer)
	}
	raw := f.Get("client_assertion")
	if raw == "" {
		return missingParam("client_assertion")
	}
	malformed := stsErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return malformed
	}
	var hdr assertionHeader
	var claims assertionClaims
	sig, sigErr := base64.RawURLEncoding.DecodeString(parts[2])
	if decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil || sigErr != nil || claims.Exp == nil {
		return malformed
	}

	clientID := s.opts.ClientID
	thumb := hdr.X5tS256
	if thumb == "" {
		thumb = hdr.X5t
	}
	keyNotFound := stsErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]", thumb, clientID)
	switch {
	case s.certKey == nil:
		return keyNotFound
	case hdr.X5tS256 != "" && hdr.X5tS256 != s.certS256:
		return keyNotFound
	case hdr.X5tS256 == "" && hdr.X5t != s.certS1:
		return keyNotFound
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var err error
	switch hdr.Alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(s.certKey, crypto.SHA256, digest[:], sig)
	case "PS256":
		err = rsa.VerifyPSS(s.certKey, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		err = fmt.Errorf("unsupported alg %q", hdr.Alg)
	}
	if err != nil {
		return stsErr(http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - %v, Thumbprint of key used by client: '%s']", err, thumb)
	}

	if claims.Iss != clientID || claims.Sub != clientID {
		return stsErr(http.StatusUnauthorized, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.")
	}
	// The audience is the token endpoint itself, as the client was given it.
	if !slices.Contains(claims.Aud, s.tokenURL(tenantID)) {
		return stsErr(http.StatusUnauthorized, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials.")
	}
	now := s.opts.Now()
	exp := unixTime(*claims.Exp)
	nbf := time.Time{}
	if claims.Nbf != nil {
		nbf = unixTime(*claims.Nbf)
	}
	if !now.Before(exp.Add(assertionSkew)) || now.Add(assertionSkew).Before(nbf) {
		return stsErr(http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.", stsTime(now), stsTime(nbf), stsTime(exp))
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func unixTime(secs float64) time.Time {
	return time.Unix(0, int64(secs*float64(time.Second))).UTC()
}

// stsTime is the identity platform's timestamp format.
func stsTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// writeSTSError writes the identity platform's error body: the AADSTS code
// leads error_description and is repeated in error_codes, and the trace and
// correlation ids close the description as well as having their own fields.
func (s *Server) writeSTSError(w http.ResponseWriter, e *stsError) {
	now := stsTime(s.opts.Now())
	trace, corr := newGUID(), newGUID()
	writeJSON(w, e.status, "application/json; charset=utf-8", map[string]any{
		"error":             e.oauth,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", e.code, e.msg, trace, corr, now),
		"error_codes":       []int{e.code},
		"timestamp":         now,
		"trace_id":          trace,
		"correlation_id":    corr,
	})
}
