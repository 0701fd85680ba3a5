package clientassert_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/clientassert"
)

func decodePart(t *testing.T, part string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSign(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	for _, alg := range []string{clientassert.RS256, clientassert.PS256} {
		t.Run(alg, func(t *testing.T) {
			s := clientassert.Signer{ClientID: "app", Key: key, Alg: alg, Header: map[string]any{"x5t#S256": "thumb"}}
			jwt, err := s.Sign("https://login.example/token", now)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(jwt, ".")
			if len(parts) != 3 {
				t.Fatalf("%q is not a compact JWS", jwt)
			}
			header, claims := decodePart(t, parts[0]), decodePart(t, parts[1])
			if header["alg"] != alg || header["typ"] != "JWT" || header["x5t#S256"] != "thumb" {
				t.Errorf("header %v", header)
			}
			if claims["aud"] != "https://login.example/token" || claims["iss"] != "app" || claims["sub"] != "app" ||
				claims["exp"] != float64(now.Add(5*time.Minute).Unix()) || claims["nbf"] != float64(now.Unix()) || claims["jti"] == "" {
				t.Errorf("claims %v", claims)
			}
			sig, err := base64.RawURLEncoding.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			if alg == clientassert.RS256 {
				err = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig)
			} else {
				err = rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], sig, nil)
			}
			if err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			again, err := s.Sign("https://login.example/token", now)
			if err != nil || decodePart(t, strings.Split(again, ".")[1])["jti"] == claims["jti"] {
				t.Errorf("two assertions share a jti (%v)", err)
			}
		})
	}
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyAndCertificate(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		writePEM(t, dir, "pkcs1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key)),
		writePEM(t, dir, "pkcs8.pem", "PRIVATE KEY", pkcs8),
	} {
		got, err := clientassert.LoadKey(path)
		if err != nil || !got.Equal(key) {
			t.Errorf("LoadKey(%s) = %v", path, err)
		}
	}
	if _, err := clientassert.LoadKey(writePEM(t, dir, "ec.pem", "PRIVATE KEY", ecDER)); err == nil || !strings.Contains(err.Error(), "an RSA key is needed") {
		t.Errorf("LoadKey of an EC key: %v", err)
	}
	if _, err := clientassert.LoadKey(filepath.Join(dir, "none.pem")); err == nil {
		t.Error("LoadKey of a missing file succeeded")
	}

	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ptsync"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle with the key first: the certificate is still found.
	bundle := filepath.Join(dir, "bundle.pem")
	data := append(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(bundle, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := clientassert.LoadCertificate(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if err := clientassert.MatchKey(cert, key); err != nil {
		t.Errorf("MatchKey of the certificate's own key: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if err := clientassert.MatchKey(cert, other); err == nil {
		t.Error("MatchKey accepted another key")
	}
	sum := sha256.Sum256(der)
	if got := clientassert.Thumbprint(cert); got != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("Thumbprint = %s", got)
	}
}
