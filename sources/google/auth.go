package google

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// Scopes are the read-only Directory API scopes the token is asked for;
// each must be delegated to the service account's client id.
var Scopes = []string{
	"https://www.googleapis.com/auth/admin.directory.user.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.member.readonly",
}

// serviceAccountKey is the part of a service account's JSON key ptsync
// reads (the file Google Cloud console → IAM → Service accounts → Keys
// downloads).
type serviceAccountKey struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	ClientID     string `json:"client_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	TokenURI     string `json:"token_uri"`
}

// maxKeyFileSize bounds the key file read: a key is about 2.3 KB.
const maxKeyFileSize = 1 << 20

// loadKey reads and checks a service account key. Its errors name the
// file and the field at fault, never the key.
func loadKey(path string) (*serviceAccountKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a service account key", path, maxKeyFileSize)
	}
	var key serviceAccountKey
	if err := json.Unmarshal(data, &key); err != nil {
		return nil, fmt.Errorf("%s: not a service account JSON key (the JSON does not parse)", path)
	}
	switch {
	case key.Type != "service_account":
		return nil, fmt.Errorf("%s: a key of type %q, want a service account key (\"type\": \"service_account\")", path, key.Type)
	case key.ClientEmail == "":
		return nil, fmt.Errorf("%s: the key has no client_email", path)
	case key.PrivateKey == "":
		return nil, fmt.Errorf("%s: the key has no private_key", path)
	}
	if _, err := parseRSAKey(key.PrivateKey); err != nil {
		return nil, fmt.Errorf("%s: private_key: %w", path, err)
	}
	if key.TokenURI != "" {
		if u, err := url.Parse(key.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%s: token_uri is not an http(s) URL", path)
		}
	}
	return &key, nil
}

// parseRSAKey reads the PEM RSA key of a service account key (PKCS#8, as
// Google issues them, or PKCS#1). Errors never quote the key.
func parseRSAKey(pemKey string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(pemKey))
	if block == nil {
		return nil, errors.New("not a PEM key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rsaKey, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key; service account keys are RSA", k)
		}
		return rsaKey, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8 or PKCS#1 RSA key")
}

// tokenURL is where the JWT goes, and its audience: token_url when set to
// other than Google's default, else the key's token_uri, else the default.
func tokenURL(cfg *Config, key *serviceAccountKey) string {
	switch {
	case cfg.TokenURL != "" && cfg.TokenURL != DefaultTokenURL:
		return cfg.TokenURL
	case key.TokenURI != "":
		return key.TokenURI
	}
	return DefaultTokenURL
}

// tokenFetcher returns the token request of a service account acting as
// subject (domain-wide delegation): a JWT signed RS256 with the key (iss
// the key's client_email, sub the subject, aud the token URL, the scopes,
// an hour's lifetime) exchanged with grant_type jwt-bearer. Each call
// signs a fresh JWT and fetches a new token; httpx.TokenAuth keeps it.
func tokenFetcher(cfg *Config, key *serviceAccountKey, transport http.RoundTripper, timeout time.Duration) func(context.Context) (*oauth2.Token, error) {
	endpoint := tokenURL(cfg, key)
	jc := &jwt.Config{
		Email:        key.ClientEmail,
		PrivateKey:   []byte(key.PrivateKey),
		PrivateKeyID: key.PrivateKeyID,
		Subject:      cfg.Subject,
		Scopes:       Scopes,
		TokenURL:     endpoint,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		// x/oauth2/jwt posts without the context: the transport puts it
		// on the request, so cancelling a fetch ends its token request too.
		// Token reads the whole answer before it returns, so cancel runs
		// after the body is in.
		hc := &http.Client{Transport: contextTransport{ctx: ctx, base: transport}}
		tok, err := jc.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc)).Token()
		switch {
		case err == nil:
			return tok, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("the token request to %s: %w", endpoint, ctx.Err())
		}
		return nil, tokenError(err)
	}
}

// contextTransport sends every request with its context.
type contextTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t contextTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(r.WithContext(t.ctx))
}

// tokenHints explain the OAuth errors of Google's token endpoint for a
// service account with domain-wide delegation.
var tokenHints = map[string]string{
	"unauthorized_client": "domain-wide delegation is not granted to this client id for these scopes (Admin console → Security → API controls)",
	"invalid_grant":       "the key is wrong or revoked, or subject is not an admin",
	"invalid_scope":       "the token endpoint refused the scopes requested",
	"invalid_client":      "the token endpoint does not know this service account",
}

// maxDescription bounds the token endpoint's error_description quoted.
const maxDescription = 200

// tokenError turns a failed token request into one plain line: the OAuth
// error with Google's description and a hint. The JWT sent is never in
// it.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// A transport error names the URL (no secret in it) and the cause.
		return err
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(re.Body, &body)
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	msg := fmt.Sprintf("the token endpoint answered %d", status)
	if body.Error != "" {
		msg += " " + body.Error
	}
	if d := strings.TrimSpace(body.Description); d != "" {
		if len(d) > maxDescription {
			d = strings.ToValidUTF8(d[:maxDescription], "") + "…"
		}
		msg += " (" + d + ")"
	}
	if hint, ok := tokenHints[body.Error]; ok {
		msg += ": " + hint
	}
	return errors.New(msg)
}
