package okta

import (
	"cmp"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Config is the okta: block of a source.
type Config struct {
	OrgURL       string `yaml:"org_url"`
	APIToken     string `yaml:"api_token"`
	APITokenFile string `yaml:"api_token_file" config:"secret"`
	// ClientID and PrivateKeyFile authenticate an OAuth 2.0 service app
	// with private_key_jwt instead of an API token.
	ClientID       string   `yaml:"client_id"`
	PrivateKeyFile string   `yaml:"private_key_file" config:"path"`
	Scopes         []string `yaml:"scopes"`
	GroupSearch    string   `yaml:"group_search"`
	BaseURL        string   `yaml:"base_url"`
	TokenURL       string   `yaml:"token_url"`
	// Concurrency bounds the groups whose members are read at once.
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
}

// DefaultConfig returns the block's defaults.
func DefaultConfig() *Config {
	return &Config{
		Scopes:      []string{"okta.users.read", "okta.groups.read"},
		Concurrency: 4,
		Timeout:     30 * time.Second,
	}
}

// Complete derives the API and token URLs from org_url.
func (c *Config) Complete() {
	if c.OrgURL != "" {
		org := strings.TrimRight(c.OrgURL, "/")
		c.BaseURL = cmp.Or(c.BaseURL, org+"/api/v1")
		c.TokenURL = cmp.Or(c.TokenURL, org+"/oauth2/v1/token")
	}
}

// Check reports every problem of the block.
func (c *Config) Check(k *config.Checker) {
	if !k.HTTPURL("org_url", c.OrgURL) {
		return // base_url and token_url derive from it
	}
	hasToken := c.APIToken != "" || c.APITokenFile != ""
	hasJWT := c.ClientID != "" || c.PrivateKeyFile != ""
	switch {
	case !hasToken && !hasJWT:
		k.Add("api_token", "is required (or api_token_file, or client_id with private_key_file)")
	case hasToken && hasJWT:
		k.Add(config.FirstSet(c.ClientID, "client_id", "private_key_file"), "cannot be used together with api_token; set one of them")
	case hasJWT:
		k.PairedWith("client_id", c.ClientID, "private_key_file", c.PrivateKeyFile)
		if len(c.Scopes) == 0 {
			k.Add("scopes", "at least one scope is required with client_id")
		}
	}
	k.HTTPURL("base_url", c.BaseURL)
	k.HTTPURL("token_url", c.TokenURL)
	k.Between("concurrency", c.Concurrency, 1, 64)
	if c.Timeout <= 0 {
		k.Add("timeout", "must be greater than 0")
	}
}

// ReportsOwners is false: this build does not read Okta group owners
// (config.OwnerSettings).
func (c *Config) ReportsOwners() bool { return false }

// OwnersHint says where an Okta source's team admins come from instead.
func (c *Config) OwnersHint() string {
	return "this build does not read Okta group owners; list the admins on the rule (admins:) or in pagertree.team_admins"
}
