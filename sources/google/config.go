// Package google is the Google Workspace source (Admin SDK Directory API).
// This build parses and checks its configuration block; the fetch is not
// in it yet, so the registry refuses to build one.
package google

import (
	"strings"

	"github.com/ptsync/ptsync/internal/config"
)

// Config is the google: block of a source.
type Config struct {
	CredentialsFile string `yaml:"credentials_file" config:"path"`
	Subject         string `yaml:"subject"`
	Customer        string `yaml:"customer"`
	GroupQuery      string `yaml:"group_query"`
	Nested          bool   `yaml:"nested"`
	BaseURL         string `yaml:"base_url"`
	TokenURL        string `yaml:"token_url"`
}

// DefaultConfig returns the block's defaults.
func DefaultConfig() *Config {
	return &Config{
		Customer: "my_customer",
		Nested:   true,
		BaseURL:  "https://admin.googleapis.com/admin/directory/v1",
		TokenURL: "https://oauth2.googleapis.com/token",
	}
}

// Complete has no defaults that depend on other keys.
func (c *Config) Complete() {}

// Check reports every problem of the block.
func (c *Config) Check(k *config.Checker) {
	k.Required("credentials_file", c.CredentialsFile)
	if k.Required("subject", c.Subject) && !strings.Contains(c.Subject, "@") {
		k.Add("subject", "must be the email address of the admin to act as, got %q", c.Subject)
	}
	k.Required("customer", c.Customer)
	k.HTTPURL("base_url", c.BaseURL)
	k.HTTPURL("token_url", c.TokenURL)
}
