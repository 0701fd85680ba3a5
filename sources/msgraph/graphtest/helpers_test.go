package graphtest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptsync/ptsync/sources/msgraph/graphtest"
)

const (
	clientID = "5a1c0d3e-7b2f-4c89-9e61-0f2d3c4b5a69"
	// secret has characters x/oauth2 form-escapes in a Basic header ('+', '~'
	// stays), so the header path is exercised for real.
	secret = "Xy8Q~a.b_c+d-e"
	scope  = "https://graph.microsoft.com/.default"
)

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func start(t *testing.T, tenant graphtest.Tenant, opts graphtest.Options) *graphtest.Server {
	t.Helper()
	if opts.ClientID == "" {
		opts.ClientID = clientID
	}
	s := graphtest.NewServer(tenant, opts)
	t.Cleanup(s.Close)
	return s
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a request; it is safe to call from any goroutine.
func do(method, rawURL, token string, header http.Header, body io.Reader) (response, error) {
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}, err
}

// get fetches a Graph path ("/users?$top=5") or an absolute nextLink.
func get(t *testing.T, s *graphtest.Server, token, pathOrURL string, header http.Header) response {
	t.Helper()
	u := pathOrURL
	if strings.HasPrefix(u, "/") {
		u = s.BaseURL() + u
	}
	r, err := do(http.MethodGet, u, token, header, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventual is the header half of Graph's advanced query parameters.
var eventual = http.Header{"Consistencylevel": {"eventual"}}

type page struct {
	Context  string           `json:"@odata.context"`
	Count    *int             `json:"@odata.count"`
	NextLink string           `json:"@odata.nextLink"`
	Value    []map[string]any `json:"value"`
}

func decodePage(t *testing.T, r response) page {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200, got %v", r)
	}
	var p page
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v in %s", err, r.body)
	}
	return p
}

type graphErrorBody struct {
	Error struct {
		Code       string            `json:"code"`
		Message    string            `json:"message"`
		InnerError map[string]string `json:"innerError"`
	} `json:"error"`
}

// wantGraphError checks an error answer's status and code and returns its message.
func wantGraphError(t *testing.T, r response, status int, code string) string {
	t.Helper()
	var e graphErrorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("%v in %v", err, r)
	}
	if r.status != status || e.Error.Code != code {
		t.Fatalf("want %d %s, got %v", status, code, r)
	}
	if e.Error.InnerError["request-id"] != r.header.Get("request-id") || r.header.Get("request-id") == "" {
		t.Errorf("innerError %v does not repeat request-id %q", e.Error.InnerError, r.header.Get("request-id"))
	}
	return e.Error.Message
}

// getAll follows nextLinks from path, returning every item and the page sizes.
func getAll(t *testing.T, s *graphtest.Server, token, path string, header http.Header) (items []map[string]any, sizes []int) {
	t.Helper()
	for next := path; next != ""; {
		p := decodePage(t, get(t, s, token, next, header))
		items = append(items, p.Value...)
		sizes = append(sizes, len(p.Value))
		next = p.NextLink
	}
	return items, sizes
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["id"].(string)
	}
	return out
}

// stsBody is the identity platform's token error body.
type stsBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

// postToken posts form to the token endpoint, with a Basic header when user
// is not empty.
func postToken(t *testing.T, tokenURL string, form url.Values, user, pass string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// wantSTSError checks a token error answer: status, OAuth error, AADSTS code,
// and the identity platform's body shape.
func wantSTSError(t *testing.T, r response, status int, oauthErr string, code int) stsBody {
	t.Helper()
	var e stsBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("%v in %v", err, r)
	}
	prefix := fmt.Sprintf("AADSTS%d: ", code)
	if r.status != status || e.Error != oauthErr || !strings.HasPrefix(e.Description, prefix) || len(e.Codes) != 1 || e.Codes[0] != code {
		t.Fatalf("want %d %s %s..., got %v", status, oauthErr, prefix, r)
	}
	if e.TraceID == "" || e.CorrelationID == "" || e.Timestamp == "" ||
		!strings.Contains(e.Description, "\r\nTrace ID: "+e.TraceID+"\r\nCorrelation ID: "+e.CorrelationID+"\r\nTimestamp: "+e.Timestamp) {
		t.Errorf("error body lacks the identity platform's trace fields: %s", r.body)
	}
	return e
}

func secretForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope}}
}

// newCert makes an RSA key and a self-signed certificate for it.
func newCert(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ptsync graphtest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func thumbS256(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func thumbS1(c *x509.Certificate) string {
	h := sha1.Sum(c.Raw)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// assertion builds a client assertion as the certificate-credentials
// documentation describes it; edit may change header and claims before signing.
func assertion(t *testing.T, tokenURL string, now time.Time, key *rsa.PrivateKey, cert *x509.Certificate, edit func(header, claims map[string]any)) string {
	t.Helper()
	header := map[string]any{"alg": "RS256", "typ": "JWT", "x5t#S256": thumbS256(cert)}
	claims := map[string]any{
		"aud": tokenURL, "iss": clientID, "sub": clientID, "jti": fmt.Sprint(now.UnixNano()),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	if edit != nil {
		edit(header, claims)
	}
	return signJWT(t, key, header, claims)
}

func signJWT(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := seg(header) + "." + seg(claims)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	var err error
	if header["alg"] == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}
