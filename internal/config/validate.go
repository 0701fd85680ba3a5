package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/nyaruka/phonenumbers"
	"github.com/robfig/cron/v3"
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
// cron spec or a descriptor (@every 15m, @hourly, @daily, ...).
func ParseSchedule(spec string) (cron.Schedule, error) {
	return scheduleParser.Parse(spec)
}

// sourceTypes are the valid sources[].type values.
var sourceTypes = []string{TypeLDAP, TypeMSGraph, TypeGoogle, TypeOkta, TypeSCIM, TypeFile}

var sourceName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// maxCAFileSize bounds the CA bundle Validate reads.
const maxCAFileSize = 4 << 20

// checker collects problems, each placed at its key's line.
type checker struct {
	c        *Config
	problems Problems
}

func (k *checker) add(key, format string, args ...any) {
	k.problems = append(k.problems, k.c.problem(key, format, args...))
}

func (c *Config) validate() Problems {
	k := &checker{c: c}
	k.schedule()
	k.pagerTree()
	k.sources()
	k.teams()
	k.users()
	k.safety()
	k.state()
	k.metrics()
	k.log()
	return k.problems
}

func (k *checker) schedule() {
	if k.c.Schedule == "" {
		k.add("schedule", "is required")
		return
	}
	if _, err := ParseSchedule(k.c.Schedule); err != nil {
		k.add("schedule", "not a valid cron schedule: %v", err)
	}
}

func (k *checker) pagerTree() {
	pt := k.c.PagerTree
	k.httpURL("pagertree.url", pt.URL)
	k.required("pagertree.username", pt.Username)
	if pt.Password == "" && pt.PasswordFile == "" {
		k.add("pagertree.password", "is required (or password_file)")
	}
	if !(pt.RequestsPerSecond > 0) {
		k.add("pagertree.requests_per_second", "must be greater than 0")
	}
	k.between("pagertree.concurrency", pt.Concurrency, 1, 64)
	if pt.Timeout <= 0 {
		k.add("pagertree.timeout", "must be greater than 0")
	}
}

func (k *checker) sources() {
	if len(k.c.Sources) == 0 {
		k.add("sources", "at least one source is required")
		return
	}
	first := map[string]int{}
	for i, s := range k.c.Sources {
		p := fmt.Sprintf("sources[%d]", i)
		switch j, dup := first[s.Name]; {
		case s.Name == "":
			k.add(p+".name", "is required")
		case !sourceName.MatchString(s.Name):
			k.add(p+".name", "must match [a-z0-9][a-z0-9_-]* (lower-case letters, digits, - and _), got %q", s.Name)
		case dup:
			k.add(p+".name", "duplicate source name %q (also sources[%d])", s.Name, j)
		default:
			first[s.Name] = i
		}
		if !k.oneOf(p+".type", s.Type, sourceTypes...) {
			continue
		}
		blocks := []struct {
			typ     string
			present bool
		}{
			{TypeLDAP, s.LDAP != nil}, {TypeMSGraph, s.MSGraph != nil}, {TypeGoogle, s.Google != nil},
			{TypeOkta, s.Okta != nil}, {TypeSCIM, s.SCIM != nil}, {TypeFile, s.File != nil},
		}
		for _, b := range blocks {
			switch {
			case b.typ == s.Type && !b.present:
				k.add(p+"."+b.typ, "is required for type %s", s.Type)
			case b.typ != s.Type && b.present:
				k.add(p+"."+b.typ, "does not belong in a source of type %s (set type: %s, or move it to a source of its own)", s.Type, b.typ)
			}
		}
		switch {
		case s.LDAP != nil && s.Type == TypeLDAP:
			k.ldap(p+".ldap", s.LDAP)
		case s.MSGraph != nil && s.Type == TypeMSGraph:
			k.msgraph(p+".msgraph", s.MSGraph)
		case s.Google != nil && s.Type == TypeGoogle:
			k.google(p+".google", s.Google)
		case s.Okta != nil && s.Type == TypeOkta:
			k.okta(p+".okta", s.Okta)
		case s.SCIM != nil && s.Type == TypeSCIM:
			k.scim(p+".scim", s.SCIM)
		case s.File != nil && s.Type == TypeFile:
			k.required(p+".file.path", s.File.Path)
		}
	}
}

func (k *checker) ldap(p string, l *LDAP) {
	if k.required(p+".url", l.URL) {
		u, err := url.Parse(l.URL)
		switch {
		case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
			k.add(p+".url", "must be an ldap:// or ldaps:// URL with a host, got %q", redactURL(l.URL))
		case u.User != nil:
			k.add(p+".url", "must not carry a user or password (got %q); use bind_dn and bind_password", redactURL(l.URL))
		case u.Scheme == "ldaps" && l.StartTLS:
			k.add(p+".start_tls", "only applies to ldap:// URLs; ldaps:// is TLS already")
		}
	}
	if l.CAFile != "" {
		pem, err := readFile(l.CAFile, maxCAFileSize)
		switch {
		case err != nil:
			k.add(p+".ca_file", "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			k.add(p+".ca_file", "%q holds no PEM certificate", l.CAFile)
		}
	}
	hasPassword := l.BindPassword != "" || l.BindPasswordFile != ""
	switch {
	case l.BindDN != "" && !hasPassword:
		k.add(p+".bind_password", "is required when bind_dn is set (or bind_password_file)")
	case l.BindDN == "" && hasPassword:
		k.add(p+".bind_dn", "is required when bind_password is set")
	case l.BindDN != "":
		k.dn(p+".bind_dn", l.BindDN)
	}
	k.between(p+".page_size", l.PageSize, 1, 10000)
	if l.Timeout <= 0 {
		k.add(p+".timeout", "must be greater than 0")
	}

	u, g := l.Users, l.Groups
	if k.required(p+".users.base_dn", u.BaseDN) {
		k.dn(p+".users.base_dn", u.BaseDN)
	}
	k.filter(p+".users.filter", u.Filter)
	k.oneOf(p+".users.scope", u.Scope, "sub", "one", "base")
	k.required(p+".users.id_attribute", u.IDAttribute)
	k.required(p+".users.email_attribute", u.EmailAttribute)
	k.required(p+".users.name_attribute", u.NameAttribute)

	if k.required(p+".groups.base_dn", g.BaseDN) {
		k.dn(p+".groups.base_dn", g.BaseDN)
	}
	k.filter(p+".groups.filter", g.Filter)
	k.oneOf(p+".groups.scope", g.Scope, "sub", "one", "base")
	k.required(p+".groups.id_attribute", g.IDAttribute)
	k.required(p+".groups.name_attribute", g.NameAttribute)
	if !slices.ContainsFunc(memberAttributes, func(m string) bool { return strings.EqualFold(m, g.MemberAttribute) }) {
		k.oneOf(p+".groups.member_attribute", g.MemberAttribute, memberAttributes...)
	} else if strings.EqualFold(g.MemberAttribute, "memberUid") {
		k.required(p+".users.uid_attribute", u.UIDAttribute)
	}
	if g.MaxDepth < 1 {
		k.add(p+".groups.max_depth", "must be at least 1")
	}
	if g.InChain && !l.ActiveDirectory {
		k.add(p+".groups.in_chain", "needs active_directory: true (LDAP_MATCHING_RULE_IN_CHAIN is an Active Directory feature)")
	}
	if g.InChain && !g.Nested {
		k.add(p+".groups.in_chain", "needs nested: true (it is a way to resolve nested groups)")
	}
}

func (k *checker) msgraph(p string, g *MSGraph) {
	k.required(p+".tenant_id", g.TenantID)
	k.required(p+".client_id", g.ClientID)
	hasSecret := g.ClientSecret != "" || g.ClientSecretFile != ""
	hasCert := g.CertificateFile != "" || g.PrivateKeyFile != ""
	switch {
	case !hasSecret && !hasCert:
		k.add(p+".client_secret", "is required (or client_secret_file, or certificate_file with private_key_file)")
	case hasSecret && hasCert:
		k.add(p+"."+firstSet(g.CertificateFile, "certificate_file", "private_key_file"), "cannot be used together with client_secret; set one of them")
	case hasCert:
		k.pairedWith(p, "certificate_file", g.CertificateFile, "private_key_file", g.PrivateKeyFile)
	}
	k.oneOf(p+".email_attribute", g.EmailAttribute, "mail", "userPrincipalName")
	k.httpURL(p+".base_url", g.BaseURL)
	k.httpURL(p+".token_url", g.TokenURL)
}

func (k *checker) google(p string, g *Google) {
	k.required(p+".credentials_file", g.CredentialsFile)
	if k.required(p+".subject", g.Subject) && !strings.Contains(g.Subject, "@") {
		k.add(p+".subject", "must be the email address of the admin to act as, got %q", g.Subject)
	}
	k.required(p+".customer", g.Customer)
	k.httpURL(p+".base_url", g.BaseURL)
	k.httpURL(p+".token_url", g.TokenURL)
}

func (k *checker) okta(p string, o *Okta) {
	if !k.httpURL(p+".org_url", o.OrgURL) {
		return // base_url and token_url derive from it
	}
	hasToken := o.APIToken != "" || o.APITokenFile != ""
	hasJWT := o.ClientID != "" || o.PrivateKeyFile != ""
	switch {
	case !hasToken && !hasJWT:
		k.add(p+".api_token", "is required (or api_token_file, or client_id with private_key_file)")
	case hasToken && hasJWT:
		k.add(p+"."+firstSet(o.ClientID, "client_id", "private_key_file"), "cannot be used together with api_token; set one of them")
	case hasJWT:
		k.pairedWith(p, "client_id", o.ClientID, "private_key_file", o.PrivateKeyFile)
		if len(o.Scopes) == 0 {
			k.add(p+".scopes", "at least one scope is required with client_id")
		}
	}
	k.httpURL(p+".base_url", o.BaseURL)
	k.httpURL(p+".token_url", o.TokenURL)
}

func (k *checker) scim(p string, s *SCIM) {
	k.httpURL(p+".base_url", s.BaseURL)
	hasToken := s.BearerToken != "" || s.BearerTokenFile != ""
	switch {
	case !hasToken && s.OAuth2 == nil:
		k.add(p+".bearer_token", "is required (or bearer_token_file, or oauth2)")
	case hasToken && s.OAuth2 != nil:
		k.add(p+".oauth2", "cannot be used together with bearer_token; set one of them")
	case s.OAuth2 != nil:
		o := s.OAuth2
		k.httpURL(p+".oauth2.token_url", o.TokenURL)
		k.required(p+".oauth2.client_id", o.ClientID)
		if o.ClientSecret == "" && o.ClientSecretFile == "" {
			k.add(p+".oauth2.client_secret", "is required (or client_secret_file)")
		}
	}
}

func (k *checker) teams() {
	if len(k.c.Teams) == 0 {
		k.add("teams", "at least one rule is required")
		return
	}
	for i, r := range k.c.Teams {
		p := fmt.Sprintf("teams[%d]", i)
		if k.required(p+".source", r.Source) {
			if _, ok := k.c.Source(r.Source); !ok {
				k.unknownSource(p+".source", r.Source)
			}
		}
		if k.required(p+".match", r.Match) {
			if _, err := r.Matcher(); err != nil {
				k.add(p+".match", "%v", err)
			}
		}
		if k.required(p+".name", r.Name) {
			if err := r.checkNameTemplate(); err != nil {
				k.add(p+".name", "invalid template: %s", templateError(err))
			}
		}
		k.oneOf(p+".on_missing", r.OnMissing, OnMissingKeep, OnMissingEmpty, OnMissingDelete)
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
func (k *checker) unknownSource(key, name string) {
	var names []string
	for _, s := range k.c.Sources {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		k.add(key, "no source named %q", name)
		return
	}
	k.add(key, "no source named %q (sources: %s)", name, strings.Join(names, ", "))
}

func (k *checker) users() {
	u := k.c.Users
	k.oneOf("users.scope", u.Scope, ScopeTeamMembers, ScopeAll)
	switch {
	case u.DeleteGrace < 0:
		k.add("users.delete_grace", "must not be negative")
	case u.DeleteGrace > 0:
		// Refused rather than ignored: a grace period that silently does
		// nothing would delete people the admin meant to keep.
		k.add("users.delete_grace", "needs the state database, which this build does not have yet; set 0s (deletes then happen on the first healthy run a user is missing)")
	}
	if u.PhoneRegion != "" && !phonenumbers.GetSupportedRegions()[u.PhoneRegion] {
		k.add("users.phone_region", "must be an ISO 3166 region code such as US or GB, got %q", u.PhoneRegion)
	}
	for i, pattern := range u.Protect {
		if err := checkGlob(pattern); err != nil {
			k.add(fmt.Sprintf("users.protect[%d]", i), "%v", err)
		}
	}
}

func (k *checker) safety() {
	s := k.c.Safety
	if s.MaxDestructive < 0 {
		k.add("safety.max_destructive", "must be 0 or more (0 disables the limit)")
	}
	k.percent("safety.max_destructive_percent", s.MaxDestructivePercent)
	if s.MinSourceUsers < 0 {
		k.add("safety.min_source_users", "must be 0 or more")
	}
	k.percent("safety.max_source_drop_percent", s.MaxSourceDropPercent)
}

func (k *checker) state() {
	if k.c.State.Dir != "" {
		k.add("state.dir", "the state database is not in this build yet; leave state.dir empty")
	}
	if k.c.State.KeepReports < 1 {
		k.add("state.keep_reports", "must be at least 1")
	}
}

func (k *checker) metrics() {
	listen := k.c.Metrics.Listen
	_, port, err := net.SplitHostPort(listen)
	if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n > 65535 {
		k.add("metrics.listen", "must be host:port, such as 127.0.0.1:9464 or :9464, got %q", listen)
	}
}

func (k *checker) log() {
	k.oneOf("log.level", k.c.Log.Level, "debug", "info", "warn", "error")
	k.oneOf("log.format", k.c.Log.Format, "json", "console")
}

// required reports an empty value and says whether there is one.
func (k *checker) required(key, value string) bool {
	if value == "" {
		k.add(key, "is required")
		return false
	}
	return true
}

// oneOf reports a value outside allowed and says whether it is inside.
func (k *checker) oneOf(key, value string, allowed ...string) bool {
	switch {
	case slices.Contains(allowed, value):
		return true
	case value == "":
		k.add(key, "is required (one of %s)", strings.Join(allowed, ", "))
	default:
		k.add(key, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
	}
	return false
}

func (k *checker) between(key string, v, lo, hi int) {
	if v < lo || v > hi {
		k.add(key, "must be between %d and %d", lo, hi)
	}
}

func (k *checker) percent(key string, v float64) {
	if !(v >= 0 && v <= 100) {
		k.add(key, "must be between 0 and 100")
	}
}

// httpURL reports a missing or non-http(s) URL and says whether it is good.
func (k *checker) httpURL(key, value string) bool {
	if !k.required(key, value) {
		return false
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.add(key, "must be an absolute http:// or https:// URL, got %q", redactURL(value))
		return false
	}
	if u.User != nil {
		// Credentials have their own keys (and *_file forms); one in a URL
		// would end up in every error and log line that names the server.
		k.add(key, "must not carry a user or password (got %q); use the credential keys", redactURL(value))
		return false
	}
	return true
}

// pairedWith reports one of two keys that only work together set alone.
func (k *checker) pairedWith(prefix, aKey, a, bKey, b string) {
	switch {
	case a == "":
		k.add(prefix+"."+aKey, "is required with %s", bKey)
	case b == "":
		k.add(prefix+"."+bKey, "is required with %s", aKey)
	}
}

func (k *checker) dn(key, dn string) {
	if _, err := ldap.ParseDN(dn); err != nil {
		k.add(key, "not a valid DN: %s", ldapReason(err))
	}
}

func (k *checker) filter(key, filter string) {
	if !k.required(key, filter) {
		return
	}
	if _, err := ldap.CompileFilter(filter); err != nil {
		k.add(key, "not a valid LDAP filter: %s", ldapReason(err))
	}
}

// ldapReason is go-ldap's error without its result-code wrapping.
func ldapReason(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		err = le.Err
	}
	return strings.TrimPrefix(err.Error(), "ldap: ")
}

// firstSet returns aKey when a is set, else bKey.
func firstSet(a, aKey, bKey string) string {
	if a != "" {
		return aKey
	}
	return bKey
}

// redactURL hides a password in a URL's user info before it is printed,
// even in a URL too broken to parse.
func redactURL(raw string) string {
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
