package google

import (
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/config"
)

// Config is the google: block of a source.
type Config struct {
	// CredentialsFile is the service account's JSON key.
	CredentialsFile string `yaml:"credentials_file" config:"path"`
	// Subject is the admin the service account acts as (domain-wide
	// delegation).
	Subject    string `yaml:"subject"`
	Customer   string `yaml:"customer"`
	GroupQuery string `yaml:"group_query"`
	Nested     bool   `yaml:"nested"`
	// DerivedMembership, with Nested, has Google expand nested groups
	// (members.list includeDerivedMembership); false reads each nested
	// group's own members once and flattens them here.
	DerivedMembership bool `yaml:"derived_membership"`
	// NameAttribute is what becomes the group's name for teams[].match
	// and the name template: the group's name or its email address.
	NameAttribute string `yaml:"name_attribute"`
	BaseURL       string `yaml:"base_url"`
	// TokenURL is where the signed JWT is exchanged for a token, and its
	// audience. Left at Google's default, the key's token_uri is used.
	TokenURL string `yaml:"token_url"`
	// Concurrency bounds the groups whose members are read at once.
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
}

// DefaultTokenURL is Google's OAuth 2.0 token endpoint, token_url's
// default.
const DefaultTokenURL = "https://oauth2.googleapis.com/token"

// DefaultConfig returns the block's defaults.
func DefaultConfig() *Config {
	return &Config{
		Customer:          "my_customer",
		Nested:            true,
		DerivedMembership: true,
		NameAttribute:     "name",
		BaseURL:           "https://admin.googleapis.com/admin/directory/v1",
		TokenURL:          DefaultTokenURL,
		Concurrency:       4,
		Timeout:           30 * time.Second,
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
	k.OneOf("name_attribute", c.NameAttribute, "name", "email")
	k.HTTPURL("base_url", c.BaseURL)
	k.HTTPURL("token_url", c.TokenURL)
	k.Between("concurrency", c.Concurrency, 1, 64)
	if c.Timeout <= 0 {
		k.Add("timeout", "must be greater than 0")
	}
}
