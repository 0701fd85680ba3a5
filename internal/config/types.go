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
	// CycleTimeout bounds one sync run (run's cycles and the one-shot
	// commands): past it the run is cancelled and /readyz turns 503.
	CycleTimeout time.Duration `yaml:"cycle_timeout"`
	Metrics      Metrics       `yaml:"metrics"`
	// Status is the status page served at / on metrics.listen.
	Status Status `yaml:"status"`
	// Watch is watch mode: the daemon follows the sources' change feeds
	// and syncs within seconds of a change, between scheduled syncs.
	Watch Watch `yaml:"watch"`
	Log   Log   `yaml:"log"`

	// Path is the file the configuration was loaded from.
	Path string `yaml:"-"`

	// pos is where each key sits in the file, so Validate's problems
	// carry a line too.
	pos map[string]position
	// types are the source types the file was loaded with.
	types SourceTypes
}

// PagerTree is the account ptsync writes to.
type PagerTree struct {
	// API is the PagerTree API version: v3 (the seed's, the default) or v4
	// (today's PagerTree).
	API string `yaml:"api"`
	URL string `yaml:"url"`
	// InsecureHTTP allows an http:// URL to a host that is not loopback,
	// where the password and token travel in clear.
	InsecureHTTP bool   `yaml:"insecure_http"`
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file" config:"secret"`
	// APIKey is v4's Bearer key; username and password are v3's.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file" config:"secret"`
	// TeamAdmins are the emails of the admins of every managed team whose
	// rule names none (v4).
	TeamAdmins        []string      `yaml:"team_admins"`
	RequestsPerSecond float64       `yaml:"requests_per_second"`
	Concurrency       int           `yaml:"concurrency"`
	Timeout           time.Duration `yaml:"timeout"`
}

// Source is one entry of sources:. Settings is the block named by Type
// (ldap:, msgraph:, ...), decoded over that type's defaults into the type
// its package registers; nil when the type is unknown or the block absent.
type Source struct {
	Name     string         `yaml:"name"`
	Type     string         `yaml:"type"`
	Settings SourceSettings `yaml:"-"`
}

// SourceSettings is one source type's configuration block. The type's
// package owns it: its fields (with yaml tags), its defaults (the value
// SourceTypes' constructor returns) and its checks. Fields tagged
// `config:"secret"` are *_file twins of the secret named without _file;
// fields tagged `config:"path"` name files, read relative to the config
// file's directory.
type SourceSettings interface {
	// Complete fills the defaults that depend on other keys of the block.
	Complete()
	// Check reports every problem of the completed block through k, with
	// keys relative to the block (users.base_dn).
	Check(k *Checker)
}

// OwnerSettings is a SourceSettings whose source reports group owners only
// when configured to (LDAP's groups.owner_attribute), so a rule with
// admins_from_owners over it is checked, not left silently without admins.
type OwnerSettings interface {
	ReportsOwners() bool
	// OwnersHint says which key makes the source report owners.
	OwnersHint() string
}

// SourceTypes maps each source type name to a constructor of its block
// holding the type's defaults.
type SourceTypes map[string]func() SourceSettings

// TeamRule turns matching groups of one source into teams.
type TeamRule struct {
	Source    string `yaml:"source"`
	Match     string `yaml:"match"` // glob, or "re:<regexp>"
	Name      string `yaml:"name"`  // text/template over the group
	Adopt     bool   `yaml:"adopt"`
	OnMissing string `yaml:"on_missing"` // keep | empty | delete
	// Admins are the emails of the admins of this rule's teams (v4); set,
	// it replaces pagertree.team_admins for them.
	Admins []string `yaml:"admins"`
	// AdminsFromOwners makes each group's owners admins of its team too
	// (v4), where the source reports owners.
	AdminsFromOwners bool `yaml:"admins_from_owners"`
}

// PagerTree API versions.
const (
	APIv3 = "v3"
	APIv4 = "v4"
)

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
	Dir         string `yaml:"dir" config:"path"`
	KeepReports int    `yaml:"keep_reports"`
}

// Metrics is the daemon's HTTP listener.
type Metrics struct {
	Listen string `yaml:"listen"`
}

// Status is the read-only status page the daemon serves at / on
// metrics.listen, and ptsync status from state.dir alone. It needs
// state.dir.
type Status struct {
	// Enabled serves the page. Without auth, metrics.listen must then be
	// a loopback address (when state.dir is set).
	Enabled bool `yaml:"enabled"`
	// Auth is none or basic: HTTP basic auth with Username and
	// PasswordHash, a bcrypt hash (ptsync status --hash-password).
	Auth             string `yaml:"auth"`
	Username         string `yaml:"username"`
	PasswordHash     string `yaml:"password_hash"`
	PasswordHashFile string `yaml:"password_hash_file" config:"secret"`
}

// status.auth values.
const (
	StatusAuthNone  = "none"
	StatusAuthBasic = "basic"
)

// Watch is watch mode (ptsync run only).
type Watch struct {
	Enabled bool `yaml:"enabled"`
	// Debounce is how long the daemon waits after a change for more
	// before it syncs (changes close together make one sync), and how
	// often a polled feed asks.
	Debounce time.Duration `yaml:"debounce"`
	// MaxDelay bounds the wait: under a stream of changes the daemon
	// still syncs this long after the first change it has not synced.
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Log configures the zap logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | console
}
