package scim

import (
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Config is the scim: block of a source.
type Config struct {
	// BaseURL is the SCIM root: /Users, /Groups and /ServiceProviderConfig
	// are below it.
	BaseURL         string  `yaml:"base_url"`
	BearerToken     string  `yaml:"bearer_token"`
	BearerTokenFile string  `yaml:"bearer_token_file" config:"secret"`
	OAuth2          *OAuth2 `yaml:"oauth2"`
	// GroupFilter is a SCIM filter on /Groups; the server applies it, or
	// the source does when the server cannot filter.
	GroupFilter string `yaml:"group_filter"`
	// Concurrency bounds the requests for single resources (member groups
	// outside group_filter, users by id) in flight at once.
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
}

// OAuth2 is a client-credentials grant.
type OAuth2 struct {
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file" config:"secret"`
	Scopes           []string `yaml:"scopes"`
}

// DefaultConfig returns the block's defaults.
func DefaultConfig() *Config {
	return &Config{Concurrency: 4, Timeout: 30 * time.Second}
}

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
	k.Between("concurrency", c.Concurrency, 1, 64)
	if c.Timeout <= 0 {
		k.Add("timeout", "must be greater than 0")
	}
}

// ReportsOwners is false: SCIM groups have no owners in the core schema
// (config.OwnerSettings).
func (c *Config) ReportsOwners() bool { return false }

// OwnersHint says where a SCIM source's team admins come from instead.
func (c *Config) OwnersHint() string {
	return "SCIM groups have no owners; list the admins on the rule (admins:) or in pagertree.team_admins"
}
