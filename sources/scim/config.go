// Package scim is the SCIM 2.0 source (RFC 7644). This build parses and
// checks its configuration block; the fetch is not in it yet, so the
// registry refuses to build one.
package scim

import "github.com/ptsync/ptsync/internal/config"

// Config is the scim: block of a source.
type Config struct {
	BaseURL         string  `yaml:"base_url"`
	BearerToken     string  `yaml:"bearer_token"`
	BearerTokenFile string  `yaml:"bearer_token_file" config:"secret"`
	OAuth2          *OAuth2 `yaml:"oauth2"`
	GroupFilter     string  `yaml:"group_filter"`
}

// OAuth2 is a client-credentials grant.
type OAuth2 struct {
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file" config:"secret"`
	Scopes           []string `yaml:"scopes"`
}

// DefaultConfig returns the block's defaults: none.
func DefaultConfig() *Config { return &Config{} }

// Complete has no defaults that depend on other keys.
func (c *Config) Complete() {}

// Check reports every problem of the block.
func (c *Config) Check(k *config.Checker) {
	k.HTTPURL("base_url", c.BaseURL)
	hasToken := c.BearerToken != "" || c.BearerTokenFile != ""
	switch {
	case !hasToken && c.OAuth2 == nil:
		k.Add("bearer_token", "is required (or bearer_token_file, or oauth2)")
	case hasToken && c.OAuth2 != nil:
		k.Add("oauth2", "cannot be used together with bearer_token; set one of them")
	case c.OAuth2 != nil:
		o := c.OAuth2
		k.HTTPURL("oauth2.token_url", o.TokenURL)
		k.Required("oauth2.client_id", o.ClientID)
		if o.ClientSecret == "" && o.ClientSecretFile == "" {
			k.Add("oauth2.client_secret", "is required (or client_secret_file)")
		}
	}
}
