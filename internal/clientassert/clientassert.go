// Package clientassert signs the JWT client assertions OAuth 2.0 token
// endpoints take instead of a client secret (RFC 7523: Entra ID's
// certificate credentials, Okta's private_key_jwt), and reads the PEM keys
// and certificates they are signed with.
package clientassert

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Type is the client_assertion_type of a JWT assertion.
const Type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// lifetime is how long an assertion is good for: long enough for clock
// skew, short enough that a leaked one is soon useless. Each token request
// signs a fresh one.
const lifetime = 5 * time.Minute

// Signing algorithms.
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256: what Okta takes
	PS256 = "PS256" // RSASSA-PSS with SHA-256: what Entra ID's docs ask for
)

// Signer signs client assertions for one client.
type Signer struct {
	ClientID string
	Key      *rsa.PrivateKey
	Alg      string // RS256 (the default) or PS256
	// Header holds extra JOSE header fields, such as Entra ID's x5t#S256
	// certificate thumbprint.
	Header map[string]any
}

// Sign returns a fresh assertion for the token endpoint audience:
// iss and sub are the client id, jti is random, and it expires in minutes.
func (s Signer) Sign(audience string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	alg := s.Alg
	if alg == "" {
		alg = RS256
	}
	header := map[string]any{"alg": alg, "typ": "JWT"}
	for k, v := range s.Header {
		header[k] = v
	}
	claims := map[string]any{
		"aud": audience,
		"iss": s.ClientID,
		"sub": s.ClientID,
		"jti": base64.RawURLEncoding.EncodeToString(jti),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(lifetime).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch alg {
	case RS256:
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, digest[:])
	case PS256:
		sig, err = rsa.SignPSS(rand.Reader, s.Key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	default:
		err = fmt.Errorf("unknown algorithm %q", alg)
	}
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Thumbprint is a certificate's x5t#S256: the base64url SHA-256 of its DER.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// maxPEMSize bounds the key and certificate files read.
const maxPEMSize = 1 << 20

// LoadKey reads an RSA private key from a PEM file (PKCS#1 "RSA PRIVATE
// KEY" or PKCS#8 "PRIVATE KEY"). Its errors name the file, never its
// contents.
func LoadKey(path string) (*rsa.PrivateKey, error) {
	block, err := readPEM(path, "private key")
	if err != nil {
		return nil, err
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKCS#1 or PKCS#8 private key", path)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: the private key is %T; an RSA key is needed (RS256)", path, parsed)
	}
	return key, nil
}

// LoadCertificate reads the first certificate of a PEM file.
func LoadCertificate(path string) (*x509.Certificate, error) {
	block, err := readPEM(path, "certificate")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid certificate: %w", path, err)
	}
	return cert, nil
}

// MatchKey reports whether key is the private key of cert.
func MatchKey(cert *x509.Certificate, key *rsa.PrivateKey) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	return nil
}

func readPEM(path, what string) (*pem.Block, error) {
	data, err := config.ReadFile(path, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM %s in it", path, what)
		}
		if (what == "certificate") == (block.Type == "CERTIFICATE") {
			return block, nil
		}
	}
}
