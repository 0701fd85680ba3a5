package msgraph

import (
	"net/url"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Config is the msgraph: block of a source.
type Config struct {
	TenantID         string `yaml:"tenant_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file" config:"secret"`
	// CertificateFile and PrivateKeyFile sign a client assertion instead
	// of sending a secret (PEM; the key PKCS#1 or PKCS#8 RSA).
	CertificateFile string `yaml:"certificate_file" config:"path"`
	PrivateKeyFile  string `yaml:"private_key_file" config:"path"`
	GroupFilter     string `yaml:"group_filter"`
	Nested          bool   `yaml:"nested"`
	EmailAttribute  string `yaml:"email_attribute"`
	BaseURL         string `yaml:"base_url"`
	TokenURL        string `yaml:"token_url"`
	// Concurrency bounds the groups whose members are read at once.
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the block's defaults.
func DefaultConfig() *Config {
	return &Config{
		Nested:         true,
		EmailAttribute: "mail",
		BaseURL:        "https://graph.microsoft.com/v1.0",
		TokenURL:       "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token",
		Concurrency:    4,
		Timeout:        30 * time.Second,
	}
}

// Complete puts the tenant into the token URL.
func (c *Config) Complete() {
	if c.TenantID != "" {
		c.TokenURL = strings.ReplaceAll(c.TokenURL, "{tenant_id}", url.PathEscape(c.TenantID))
	}
}

// Check reports every problem of the block.
func (c *Config) Check(k *config.Checker) {
	k.Required("tenant_id", c.TenantID)
	k.Required("client_id", c.ClientID)
	hasSecret := c.ClientSecret != "" || c.ClientSecretFile != ""
	hasCert := c.CertificateFile != "" || c.PrivateKeyFile != ""
	switch {
	case !hasSecret && !hasCert:
		k.Add("client_secret", "is required (or client_secret_file, or certificate_file with private_key_file)")
	case hasSecret && hasCert:
		k.Add(config.FirstSet(c.CertificateFile, "certificate_file", "private_key_file"), "cannot be used together with client_secret; set one of them")
	case hasCert:
		k.PairedWith("certificate_file", c.CertificateFile, "private_key_file", c.PrivateKeyFile)
	}
	k.OneOf("email_attribute", c.EmailAttribute, "mail", "userPrincipalName")
	k.HTTPURL("base_url", c.BaseURL)
	k.HTTPURL("token_url", c.TokenURL)
	k.Between("concurrency", c.Concurrency, 1, 64)
	if c.Timeout <= 0 {
		k.Add("timeout", "must be greater than 0")
	}
}
