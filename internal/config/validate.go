package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/robfig/cron/v3"
	"golang.org/x/crypto/bcrypt"
)

// Validate checks c's values and returns every problem at once, as
// Problems, or nil. It reads ldap.ca_file but connects nowhere
// (`ptsync validate --connect` does that).
func (c *Config) Validate() error {
	if ps := c.validate(); len(ps) > 0 {
		sortProblems(ps)
		return ps
	}
	return nil
}

var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule as Validate does: a standard 5-field
// cron spec or a descriptor (@every 15m, @hourly, @daily, ...) that fires.
// A spec such as "0 0 30 2 *" (February 30th) parses but never fires, and
// a daemon on it would never sync: it is an error here, so `validate` and
// `run` refuse it alike.
func ParseSchedule(spec string) (cron.Schedule, error) {
	s, err := scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("not a valid cron schedule: %w", err)
	}
	if s.Next(time.Now()).IsZero() {
		return nil, errors.New("never fires (no such date in the next five years); check the day of month and month fields")
	}
	return s, nil
}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Checker collects a configuration's problems, each placed at its key's
// line. A source type's Check gets one whose keys are relative to its
// block.
type Checker struct {
	c        *Config
	prefix   string
	problems *Problems
}

// Under returns a Checker for the block at key (relative to k's).
func (k *Checker) Under(key string) *Checker {
	return &Checker{c: k.c, prefix: k.key(key), problems: k.problems}
}

func (k *Checker) key(key string) string { return joinKey(k.prefix, key) }

// Add reports a problem with key.
func (k *Checker) Add(key, format string, args ...any) {
	*k.problems = append(*k.problems, k.c.problem(k.key(key), format, args...))
}

// Settings is what a source factory does first: it takes the settings it
// was given as its own block type T, and completes and checks them
// (CheckSettings), so a block built in code meets the loader's rules. Its
// errors name the source.
func Settings[T SourceSettings](source, typ string, settings any) (T, error) {
	s, ok := settings.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("source %q: %s settings of type %T", source, typ, settings)
	}
	if err := CheckSettings(typ, s); err != nil {
		return s, fmt.Errorf("source %q: %w", source, err)
	}
	return s, nil
}

// CheckSettings completes and checks a source block built in code rather
// than loaded (tests, tools), so it meets the same rules as a loaded one.
// typ prefixes the keys of its problems.
func CheckSettings(typ string, s SourceSettings) error {
	var problems Problems
	s.Complete()
	s.Check(&Checker{c: &Config{}, prefix: typ, problems: &problems})
	if len(problems) > 0 {
		return problems
	}
	return nil
}

func (c *Config) validate() Problems {
	var problems Problems
	k := &Checker{c: c, problems: &problems}
	k.schedule()
	k.pagerTree()
	k.sources()
	k.teams()
	k.users()
	k.safety()
	k.state()
	k.cycleTimeout()
	k.metrics()
	k.status()
	k.watch()
	k.log()
	return problems
}

func (k *Checker) watch() {
	w := k.c.Watch
	if w.Debounce <= 0 {
		k.Add("watch.debounce", "must be greater than 0 (a duration such as 5s)")
	}
	if w.MaxDelay < w.Debounce {
		k.Add("watch.max_delay", "must be at least watch.debounce (%s), got %s", w.Debounce, w.MaxDelay)
	}
}

func (k *Checker) schedule() {
	if k.c.Schedule == "" {
		k.Add("schedule", "is required")
		return
	}
	if _, err := ParseSchedule(k.c.Schedule); err != nil {
		k.Add("schedule", "%v", err)
	}
}

func (k *Checker) cycleTimeout() {
	if k.c.CycleTimeout <= 0 {
		k.Add("cycle_timeout", "must be greater than 0 (a duration such as 30m)")
	}
}

func (k *Checker) pagerTree() {
	pt := k.c.PagerTree
	if k.HTTPURL("pagertree.url", pt.URL) && !pt.InsecureHTTP {
		k.notInClear("pagertree.url", pt.URL)
	}
	if k.OneOf("pagertree.api", pt.API, APIv3, APIv4) {
		k.credentials(pt)
	}
	if !(pt.RequestsPerSecond > 0) {
		k.Add("pagertree.requests_per_second", "must be greater than 0")
	}
	k.Between("pagertree.concurrency", pt.Concurrency, 1, 64)
	if pt.Timeout <= 0 {
		k.Add("pagertree.timeout", "must be greater than 0")
	}
	k.emails("pagertree.team_admins", pt.TeamAdmins)
}

// credentials checks the keys of the chosen API version and refuses the
// other version's: a username left beside an api_key would otherwise be
// silently ignored, and the admin would wonder which one is used.
func (k *Checker) credentials(pt PagerTree) {
	other := func(key, set, version, instead string) {
		if set != "" {
			k.Add(key, "is a %s key, but pagertree.api is %s: use %s", version, pt.API, instead)
		}
	}
	if pt.API == APIv4 {
		other("pagertree.username", pt.Username, APIv3, "pagertree.api_key (or api_key_file)")
		other("pagertree.password", pt.Password, APIv3, "pagertree.api_key (or api_key_file)")
		other("pagertree.password_file", pt.PasswordFile, APIv3, "pagertree.api_key_file")
		if pt.APIKey == "" && pt.APIKeyFile == "" {
			k.Add("pagertree.api_key", "is required with pagertree.api: v4 (or api_key_file)")
		}
		return
	}
	other("pagertree.api_key", pt.APIKey, APIv4, "pagertree.username and password, or set pagertree.api: v4")
	other("pagertree.api_key_file", pt.APIKeyFile, APIv4, "pagertree.password_file, or set pagertree.api: v4")
	if len(pt.TeamAdmins) > 0 {
		k.Add("pagertree.team_admins", "needs pagertree.api: v4 (v3 teams have no admins)")
	}
	k.Required("pagertree.username", pt.Username)
	if pt.Password == "" && pt.PasswordFile == "" {
		k.Add("pagertree.password", "is required (or password_file)")
	}
}

// emails reports each entry of list that is not an email address.
func (k *Checker) emails(key string, list []string) {
	for i, e := range list {
		if a, err := mail.ParseAddress(e); err != nil || a.Name != "" || a.Address != strings.TrimSpace(e) {
			k.Add(fmt.Sprintf("%s[%d]", key, i), "must be an email address such as lead@example.com, got %q", e)
		}
	}
}

func (k *Checker) sources() {
	if len(k.c.Sources) == 0 {
		k.Add("sources", "at least one source is required")
		return
	}
	first := map[string]int{}
	for i, s := range k.c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		switch j, dup := first[s.Name]; {
		case s.Name == "":
			k.Add(p+".name", "is required")
		case !sourceName.MatchString(s.Name):
			k.Add(p+".name", "must match [a-z0-9][a-z0-9_-]* (lower-case letters, digits, - and _), got %q", s.Name)
		case dup:
			k.Add(p+".name", "duplicate source name %q (also sources[%d])", s.Name, j)
		default:
			first[s.Name] = i
		}
		if !k.OneOf(p+".type", s.Type, k.c.types.names()...) {
			continue
		}
		if s.Settings == nil {
			k.Add(p+"."+s.Type, "is required for type %s", s.Type)
			continue
		}
		s.Settings.Check(k.Under(p + "." + s.Type))
	}
}

func (k *Checker) teams() {
	if len(k.c.Teams) == 0 {
		k.Add("teams", "at least one rule is required")
		return
	}
	for i, r := range k.c.Teams {
		p := fmt.Sprintf("teams[%d]", i)
		if k.Required(p+".source", r.Source) {
			if _, ok := k.c.Source(r.Source); !ok {
				k.unknownSource(p+".source", r.Source)
			}
		}
		if k.Required(p+".match", r.Match) {
			if _, err := r.Matcher(); err != nil {
				k.Add(p+".match", "%v", err)
			}
		}
		if k.Required(p+".name", r.Name) {
			if err := r.checkNameTemplate(); err != nil {
				k.Add(p+".name", "invalid template: %s", templateError(err))
			}
		}
		k.OneOf(p+".on_missing", r.OnMissing, OnMissingKeep, OnMissingEmpty, OnMissingDelete)
		k.teamAdmins(p, r)
	}
}

// teamAdmins checks a rule's admin keys. v4 teams must always have an
// admin, so a v4 rule needs one from somewhere; v3 teams have none.
func (k *Checker) teamAdmins(p string, r TeamRule) {
	k.emails(p+".admins", r.Admins)
	pt := k.c.PagerTree
	if pt.API == APIv3 {
		if len(r.Admins) > 0 {
			k.Add(p+".admins", "needs pagertree.api: v4 (v3 teams have no admins)")
		}
		if r.AdminsFromOwners {
			k.Add(p+".admins_from_owners", "needs pagertree.api: v4 (v3 teams have no admins)")
		}
	}
	if pt.API == APIv4 && r.AdminsFromOwners {
		if src, ok := k.c.Source(r.Source); ok {
			if o, ok := src.Settings.(OwnerSettings); ok && !o.ReportsOwners() {
				k.Add(p+".admins_from_owners", "source %q reports no group owners: %s", r.Source, o.OwnersHint())
			}
		}
	}
	if pt.API == APIv4 && len(r.Admins) == 0 && len(pt.TeamAdmins) == 0 && !r.AdminsFromOwners {
		k.Add(p+".admins", "is required with pagertree.api: v4, where every team needs an admin: list admin emails here or in pagertree.team_admins, or set admins_from_owners")
	}
}

// templateError words a text/template error for a config user: without
// the template's internal name, position prefix or the probe's Go type.
func templateError(err error) string {
	msg := templateErrorPrefix.ReplaceAllString(err.Error(), "")
	msg = strings.ReplaceAll(msg, `executing "name" `, "")
	return strings.ReplaceAll(msg, "config.templateProbe", "group")
}

var templateErrorPrefix = regexp.MustCompile(`^template: name:\d+(:\d+)?: `)

// unknownSource reports a rule's source that no sources[] entry names,
// listing the names there are.
func (k *Checker) unknownSource(key, name string) {
	var names []string
	for _, s := range k.c.Sources {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		k.Add(key, "no source named %q", name)
		return
	}
	k.Add(key, "no source named %q (sources: %s)", name, strings.Join(names, ", "))
}

func (k *Checker) users() {
	u := k.c.Users
	k.OneOf("users.scope", u.Scope, ScopeTeamMembers, ScopeAll)
	switch {
	case u.DeleteGrace < 0:
		k.Add("users.delete_grace", "must not be negative")
	case u.DeleteGrace > 0 && k.c.State.Dir == "":
		// Refused rather than ignored: the grace is counted from when a
		// run first found a user missing, which only the state database
		// remembers, and a grace that silently did nothing would delete
		// people the admin meant to keep.
		k.Add("users.delete_grace", "needs state.dir (the state database remembers since when each user is missing); set state.dir, or set users.delete_grace to 0s (deletes then happen on the first healthy run a user is missing)")
	}
	if u.PhoneRegion != "" && !phonenumbers.GetSupportedRegions()[u.PhoneRegion] {
		k.Add("users.phone_region", "must be an ISO 3166 region code such as US or GB, got %q", u.PhoneRegion)
	}
	for i, pattern := range u.Protect {
		if err := checkGlob(pattern); err != nil {
			k.Add(fmt.Sprintf("users.protect[%d]", i), "%v", err)
		}
	}
}

func (k *Checker) safety() {
	s := k.c.Safety
	if s.MaxDestructive < 0 {
		k.Add("safety.max_destructive", "must be 0 or more (0 disables the limit)")
	}
	k.Percent("safety.max_destructive_percent", s.MaxDestructivePercent)
	if s.MinSourceUsers < 0 {
		k.Add("safety.min_source_users", "must be 0 or more")
	}
	k.Percent("safety.max_source_drop_percent", s.MaxSourceDropPercent)
}

func (k *Checker) state() {
	if k.c.State.KeepReports < 1 {
		k.Add("state.keep_reports", "must be at least 1")
	}
}

func (k *Checker) metrics() {
	listen := k.c.Metrics.Listen
	_, port, err := net.SplitHostPort(listen)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n > 65535 {
		k.Add("metrics.listen", "must be host:port, such as 127.0.0.1:9464 or :9464, got %q", listen)
	}
}

// status checks the status page's auth and that, without auth, it would
// be served only on a loopback address.
func (k *Checker) status() {
	s := k.c.Status
	if !k.OneOf("status.auth", s.Auth, StatusAuthNone, StatusAuthBasic) {
		return
	}
	if s.Auth == StatusAuthBasic {
		if k.Required("status.username", s.Username) && strings.Contains(s.Username, ":") {
			k.Add("status.username", "must not contain ':', which HTTP basic auth cannot carry in a username")
		}
		key := FirstSet(s.PasswordHashFile, "status.password_hash_file", "status.password_hash")
		if k.Required(key, s.PasswordHash) {
			if _, err := bcrypt.Cost([]byte(s.PasswordHash)); err != nil {
				k.Add(key, "must be a bcrypt hash ($2a$, $2b$ or $2y$), not the password itself: make one with ptsync status --hash-password")
			}
		}
		return
	}
	if !s.Enabled || k.c.State.Dir == "" {
		return // no page is served
	}
	if host, _, err := net.SplitHostPort(k.c.Metrics.Listen); err == nil && !isLoopback(host) {
		k.Add("status.auth", "is none, and metrics.listen %s is not a loopback address: the status page would be open to anyone who can reach it. Set status.auth: basic with status.username and status.password_hash, or status.enabled: false", k.c.Metrics.Listen)
	}
}

func (k *Checker) log() {
	k.OneOf("log.level", k.c.Log.Level, "debug", "info", "warn", "error")
	k.OneOf("log.format", k.c.Log.Format, "json", "console")
}

// Required reports an empty value and says whether there is one.
func (k *Checker) Required(key, value string) bool {
	if value == "" {
		k.Add(key, "is required")
		return false
	}
	return true
}

// OneOf reports a value outside allowed and says whether it is inside.
func (k *Checker) OneOf(key, value string, allowed ...string) bool {
	switch {
	case slices.Contains(allowed, value):
		return true
	case value == "":
		k.Add(key, "is required (one of %s)", strings.Join(allowed, ", "))
	default:
		k.Add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
	}
	return false
}

func (k *Checker) Between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		k.Add(key, "must be between %d and %d", lo, hi)
	}
}

func (k *Checker) Percent(key string, v float64) {
	if !(v >= 0 && v <= 100) {
		k.Add(key, "must be between 0 and 100")
	}
}

// HTTPURL reports a missing or non-http(s) URL and says whether it is good.
func (k *Checker) HTTPURL(key, value string) bool {
	if !k.Required(key, value) {
		return false
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.Add(key, "must be an absolute http:// or https:// URL, got %q", RedactURL(value))
		return false
	}
	if u.User != nil {
		// Credentials have their own keys (and *_file forms); one in a URL
		// would end up in every error and log line that names the server.
		k.Add(key, "must not carry a user or password (got %q); use the credential keys", RedactURL(value))
		return false
	}
	return true
}

// notInClear reports an http:// URL to a host that is not loopback: the
// credentials sent to it would cross the network in clear. value is a
// valid http(s) URL.
func (k *Checker) notInClear(key, value string) {
	u, _ := url.Parse(value)
	if u.Scheme != "http" || isLoopback(u.Hostname()) {
		return
	}
	k.Add(key, "is plain http:// to %s, so the credentials would travel in clear: use https://, or set pagertree.insecure_http: true to allow it", u.Hostname())
}

// isLoopback reports whether host (a name or an IP, without port or
// brackets) is this machine: localhost, 127.0.0.0/8 or ::1.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PairedWith reports one of two keys that only work together set alone.
func (k *Checker) PairedWith(aKey, a, bKey, b string) {
	switch {
	case a == "":
		k.Add(aKey, "is required with %s", bKey)
	case b == "":
		k.Add(bKey, "is required with %s", aKey)
	}
}

// FirstSet returns aKey when a is set, else bKey.
func FirstSet(a, aKey, bKey string) string {
	if a != "" {
		return aKey
	}
	return bKey
}

// RedactURL hides a password in a URL's user info before it is printed,
// even in a URL too broken to parse.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		// The whole user part goes: a token is as often written as the
		// user name (https://TOKEN@host) as the password.
		u.User = url.User("xxxxx")
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if at := strings.LastIndexByte(rest, '@'); ok && at >= 0 {
		return scheme + "://xxxxx" + rest[at:]
	}
	return raw
}
