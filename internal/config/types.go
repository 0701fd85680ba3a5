// Package config loads ptsync's YAML configuration: strict decoding,
// ${VAR} expansion, *_file secrets, defaults and validation that lists
// every problem at once with its file, line and key.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	Schedule  string     `yaml:"schedule"`
	PagerTree PagerTree  `yaml:"pagertree"`
	Sources   []Source   `yaml:"sources"`
	Teams     []TeamRule `yaml:"teams"`
	Users     Users      `yaml:"users"`
	Safety    Safety     `yaml:"safety"`
	State     State      `yaml:"state"`
	Metrics   Metrics    `yaml:"metrics"`
	Log       Log        `yaml:"log"`

	// Path is the file the configuration was loaded from.
	Path string `yaml:"-"`

	// pos is where each key sits in the file, so Validate's problems
	// carry a line too.
	pos map[string]position
}

// PagerTree is the account ptsync writes to.
type PagerTree struct {
	URL               string        `yaml:"url"`
	Username          string        `yaml:"username"`
	Password          string        `yaml:"password"`
	PasswordFile      string        `yaml:"password_file"`
	RequestsPerSecond float64       `yaml:"requests_per_second"`
	Concurrency       int           `yaml:"concurrency"`
	Timeout           time.Duration `yaml:"timeout"`
}

// Source is one entry of sources:. Exactly the block named by Type is set.
type Source struct {
	Name    string   `yaml:"name"`
	Type    string   `yaml:"type"`
	LDAP    *LDAP    `yaml:"ldap"`
	MSGraph *MSGraph `yaml:"msgraph"`
	Google  *Google  `yaml:"google"`
	Okta    *Okta    `yaml:"okta"`
	SCIM    *SCIM    `yaml:"scim"`
	File    *File    `yaml:"file"`
}

// Source types.
const (
	TypeLDAP    = "ldap"
	TypeMSGraph = "msgraph"
	TypeGoogle  = "google"
	TypeOkta    = "okta"
	TypeSCIM    = "scim"
	TypeFile    = "file"
)

// LDAP configures an LDAP or Active Directory source.
type LDAP struct {
	URL                string        `yaml:"url"`
	StartTLS           bool          `yaml:"start_tls"`
	CAFile             string        `yaml:"ca_file"`
	InsecureSkipVerify bool          `yaml:"insecure_skip_verify"`
	BindDN             string        `yaml:"bind_dn"`
	BindPassword       string        `yaml:"bind_password"`
	BindPasswordFile   string        `yaml:"bind_password_file"`
	ActiveDirectory    bool          `yaml:"active_directory"`
	PageSize           int           `yaml:"page_size"`
	Timeout            time.Duration `yaml:"timeout"`
	Users              LDAPUsers     `yaml:"users"`
	Groups             LDAPGroups    `yaml:"groups"`
}

// LDAPUsers is the user search.
type LDAPUsers struct {
	BaseDN         string `yaml:"base_dn"`
	Filter         string `yaml:"filter"`
	Scope          string `yaml:"scope"` // sub | one | base
	IDAttribute    string `yaml:"id_attribute"`
	EmailAttribute string `yaml:"email_attribute"`
	NameAttribute  string `yaml:"name_attribute"`
	PhoneAttribute string `yaml:"phone_attribute"`
	// UIDAttribute resolves memberUid values to users (uid; sAMAccountName on AD).
	UIDAttribute string `yaml:"uid_attribute"`
}

// LDAPGroups is the group search.
type LDAPGroups struct {
	BaseDN          string `yaml:"base_dn"`
	Filter          string `yaml:"filter"`
	Scope           string `yaml:"scope"`
	IDAttribute     string `yaml:"id_attribute"`
	NameAttribute   string `yaml:"name_attribute"`
	MemberAttribute string `yaml:"member_attribute"` // member | uniqueMember | memberUid
	Nested          bool   `yaml:"nested"`
	MaxDepth        int    `yaml:"max_depth"`
	// InChain resolves nesting on an AD server with LDAP_MATCHING_RULE_IN_CHAIN.
	InChain bool `yaml:"in_chain"`
}

// OAuth2 is a client-credentials grant used by the API sources.
type OAuth2 struct {
	TokenURL         string   `yaml:"token_url"`
	ClientID         string   `yaml:"client_id"`
	ClientSecret     string   `yaml:"client_secret"`
	ClientSecretFile string   `yaml:"client_secret_file"`
	Scopes           []string `yaml:"scopes"`
}

// MSGraph configures a Microsoft Entra ID source.
type MSGraph struct {
	TenantID         string `yaml:"tenant_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	CertificateFile  string `yaml:"certificate_file"`
	PrivateKeyFile   string `yaml:"private_key_file"`
	GroupFilter      string `yaml:"group_filter"`
	Nested           bool   `yaml:"nested"`
	EmailAttribute   string `yaml:"email_attribute"`
	BaseURL          string `yaml:"base_url"`
	TokenURL         string `yaml:"token_url"`
}

// Google configures a Google Workspace source.
type Google struct {
	CredentialsFile string `yaml:"credentials_file"`
	Subject         string `yaml:"subject"`
	Customer        string `yaml:"customer"`
	GroupQuery      string `yaml:"group_query"`
	Nested          bool   `yaml:"nested"`
	BaseURL         string `yaml:"base_url"`
	TokenURL        string `yaml:"token_url"`
}

// Okta configures an Okta source.
type Okta struct {
	OrgURL         string   `yaml:"org_url"`
	APIToken       string   `yaml:"api_token"`
	APITokenFile   string   `yaml:"api_token_file"`
	ClientID       string   `yaml:"client_id"`
	PrivateKeyFile string   `yaml:"private_key_file"`
	Scopes         []string `yaml:"scopes"`
	GroupSearch    string   `yaml:"group_search"`
	BaseURL        string   `yaml:"base_url"`
	TokenURL       string   `yaml:"token_url"`
}

// SCIM configures a SCIM 2.0 source.
type SCIM struct {
	BaseURL         string  `yaml:"base_url"`
	BearerToken     string  `yaml:"bearer_token"`
	BearerTokenFile string  `yaml:"bearer_token_file"`
	OAuth2          *OAuth2 `yaml:"oauth2"`
	GroupFilter     string  `yaml:"group_filter"`
}

// File configures a YAML file source.
type File struct {
	Path string `yaml:"path"`
}

// TeamRule turns matching groups of one source into teams.
type TeamRule struct {
	Source    string `yaml:"source"`
	Match     string `yaml:"match"` // glob, or "re:<regexp>"
	Name      string `yaml:"name"`  // text/template over the group
	Adopt     bool   `yaml:"adopt"`
	OnMissing string `yaml:"on_missing"` // keep | empty | delete
}

// on_missing values.
const (
	OnMissingKeep   = "keep"
	OnMissingEmpty  = "empty"
	OnMissingDelete = "delete"
)

// Users says which users ptsync manages.
type Users struct {
	Scope       string        `yaml:"scope"` // team_members | all
	Delete      bool          `yaml:"delete"`
	DeleteGrace time.Duration `yaml:"delete_grace"`
	Protect     []string      `yaml:"protect"`
	// PhoneRegion is the region (ISO 3166, e.g. US) of directory phone
	// numbers written without a +country code; empty keeps them as given.
	PhoneRegion string `yaml:"phone_region"`
}

// users.scope values.
const (
	ScopeTeamMembers = "team_members"
	ScopeAll         = "all"
)

// Safety bounds what one run may destroy.
type Safety struct {
	MaxDestructive        int     `yaml:"max_destructive"`
	MaxDestructivePercent float64 `yaml:"max_destructive_percent"`
	MinSourceUsers        int     `yaml:"min_source_users"`
	MaxSourceDropPercent  float64 `yaml:"max_source_drop_percent"`
}

// State is the embedded run-history database.
type State struct {
	Dir         string `yaml:"dir"`
	KeepReports int    `yaml:"keep_reports"`
}

// Metrics is the daemon's HTTP listener.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Log configures the zap logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | console
}
