package ldap

import (
	"crypto/x509"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Config is the ldap: block of a source.
type Config struct {
	URL                string `yaml:"url"`
	StartTLS           bool   `yaml:"start_tls"`
	CAFile             string `yaml:"ca_file" config:"path"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	BindDN             string `yaml:"bind_dn"`
	BindPassword       string `yaml:"bind_password"`
	BindPasswordFile   string `yaml:"bind_password_file" config:"secret"`
	ActiveDirectory    bool   `yaml:"active_directory"`
	PageSize           int    `yaml:"page_size"`
	// Referrals says what a search continuation reference does: fail the
	// fetch, follow it, or ignore it (counted, and warned about).
	Referrals string        `yaml:"referrals"`
	Timeout   time.Duration `yaml:"timeout"`
	Users     Users         `yaml:"users"`
	Groups    Groups        `yaml:"groups"`
}

// Users is the user search.
type Users struct {
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

// Groups is the group search.
type Groups struct {
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
	// OwnerAttribute names the attribute holding a group's owners
	// (sources.Group.Owners): owner on OpenLDAP, managedBy on AD. Its
	// values are DNs resolved like member DNs (and, with member_attribute
	// memberUid, a value that is no DN is a login name). Empty: owners are
	// not read.
	OwnerAttribute string `yaml:"owner_attribute"`
}

// DefaultConfig holds the defaults that are the same for OpenLDAP and
// Active Directory; Complete adds the ones that differ.
func DefaultConfig() *Config {
	return &Config{
		PageSize:  500,
		Referrals: referralsFail,
		Timeout:   30 * time.Second,
		Users: Users{
			Scope:          "sub",
			EmailAttribute: "mail",
			NameAttribute:  "displayName",
			PhoneAttribute: "telephoneNumber",
		},
		Groups: Groups{
			Scope:           "sub",
			NameAttribute:   "cn",
			MemberAttribute: "member",
			Nested:          true,
			MaxDepth:        sources.DefaultMaxDepth,
		},
	}
}

// directoryDefaults are the defaults that differ between a plain LDAP
// server and Active Directory.
type directoryDefaults struct {
	userFilter, userID, uid string
	groupFilter, groupID    string
}

var (
	openLDAPDefaults = directoryDefaults{
		userFilter:  "(objectClass=inetOrgPerson)",
		userID:      "entryUUID",
		uid:         "uid",
		groupFilter: "(objectClass=groupOfNames)",
		groupID:     "entryUUID",
	}
	activeDirectoryDefaults = directoryDefaults{
		userFilter:  "(&(objectCategory=person)(objectClass=user))",
		userID:      "objectGUID",
		uid:         "sAMAccountName",
		groupFilter: "(objectClass=group)",
		groupID:     "objectGUID",
	}
	// On a plain LDAP server the group object class follows the member
	// attribute's schema.
	groupFilterByMember = map[string]string{
		"uniqueMember": "(objectClass=groupOfUniqueNames)",
		"memberUid":    "(objectClass=posixGroup)",
	}
)

// What a search continuation reference does (ldap.referrals).
const (
	// referralsFail fails the fetch: the entries it points to would look
	// deleted.
	referralsFail = "fail"
	// referralsFollow searches the referred server too, with the same
	// credentials and TLS settings.
	referralsFollow = "follow"
	// referralsIgnore leaves the referred entries out, with a warning and
	// a count (sources.Snapshot.Skipped["referral"]).
	referralsIgnore = "ignore"
)

// memberAttributes are the accepted member_attribute values, in their
// canonical case.
var memberAttributes = []string{"member", "uniqueMember", "memberUid"}

// maxCAFileSize bounds the CA bundle Check reads.
const maxCAFileSize = 4 << 20

// Complete fills the defaults that depend on Active Directory and the
// member attribute, and puts member_attribute in its canonical case.
func (c *Config) Complete() {
	c.URL = strings.TrimSpace(c.URL)
	c.Users.BaseDN = strings.TrimSpace(c.Users.BaseDN)
	c.Groups.BaseDN = strings.TrimSpace(c.Groups.BaseDN)
	c.Groups.OwnerAttribute = strings.TrimSpace(c.Groups.OwnerAttribute)
	for _, m := range memberAttributes {
		if strings.EqualFold(c.Groups.MemberAttribute, m) {
			c.Groups.MemberAttribute = m
		}
	}
	dd := openLDAPDefaults
	if c.ActiveDirectory {
		dd = activeDirectoryDefaults
	} else if f, ok := groupFilterByMember[c.Groups.MemberAttribute]; ok {
		dd.groupFilter = f
	}
	c.Users.Filter = cmpOr(c.Users.Filter, dd.userFilter)
	c.Users.IDAttribute = cmpOr(c.Users.IDAttribute, dd.userID)
	c.Users.UIDAttribute = cmpOr(c.Users.UIDAttribute, dd.uid)
	c.Groups.Filter = cmpOr(c.Groups.Filter, dd.groupFilter)
	c.Groups.IDAttribute = cmpOr(c.Groups.IDAttribute, dd.groupID)
}

// Check reports every problem of the block.
func (c *Config) Check(k *config.Checker) {
	if k.Required("url", c.URL) {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
			k.Add("url", "must be an ldap:// or ldaps:// URL with a host, got %q", config.RedactURL(c.URL))
		case u.User != nil:
			k.Add("url", "must not carry a user or password (got %q); use bind_dn and bind_password", config.RedactURL(c.URL))
		case u.Scheme == "ldaps" && c.StartTLS:
			k.Add("start_tls", "only applies to ldap:// URLs; ldaps:// is TLS already")
		}
	}
	if c.CAFile != "" {
		pem, err := config.ReadFile(c.CAFile, maxCAFileSize)
		switch {
		case err != nil:
			k.Add("ca_file", "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(pem):
			k.Add("ca_file", "%q holds no PEM certificate", c.CAFile)
		}
	}
	hasPassword := c.BindPassword != "" || c.BindPasswordFile != ""
	switch {
	case c.BindDN != "" && !hasPassword:
		k.Add("bind_password", "is required when bind_dn is set (or bind_password_file)")
	case c.BindDN == "" && hasPassword:
		k.Add("bind_dn", "is required when bind_password is set")
	case c.BindDN != "":
		checkDN(k, "bind_dn", c.BindDN)
	}
	k.Between("page_size", c.PageSize, 1, 10000)
	k.OneOf("referrals", c.Referrals, referralsFail, referralsFollow, referralsIgnore)
	if c.Timeout <= 0 {
		k.Add("timeout", "must be greater than 0")
	}

	u, g := c.Users, c.Groups
	usersBase := k.Required("users.base_dn", u.BaseDN) && checkDN(k, "users.base_dn", u.BaseDN)
	checkFilter(k, "users.filter", u.Filter)
	k.OneOf("users.scope", u.Scope, "sub", "one", "base")
	k.Required("users.id_attribute", u.IDAttribute)
	k.Required("users.email_attribute", u.EmailAttribute)
	k.Required("users.name_attribute", u.NameAttribute)

	if k.Required("groups.base_dn", g.BaseDN) {
		checkDN(k, "groups.base_dn", g.BaseDN)
	}
	checkFilter(k, "groups.filter", g.Filter)
	k.OneOf("groups.scope", g.Scope, "sub", "one", "base")
	k.Required("groups.id_attribute", g.IDAttribute)
	k.Required("groups.name_attribute", g.NameAttribute)
	if !slices.Contains(memberAttributes, g.MemberAttribute) {
		k.OneOf("groups.member_attribute", g.MemberAttribute, memberAttributes...)
	} else if g.MemberAttribute == "memberUid" {
		k.Required("users.uid_attribute", u.UIDAttribute)
	}
	if g.OwnerAttribute != "" {
		switch {
		case !validAttributeType(g.OwnerAttribute):
			k.Add("groups.owner_attribute", "must be an attribute name such as owner or managedBy (letters, digits and -, or a numeric OID; no options), got %q", g.OwnerAttribute)
		case strings.EqualFold(g.OwnerAttribute, g.MemberAttribute):
			k.Add("groups.owner_attribute", "must differ from member_attribute (%s): owners are not the members", g.MemberAttribute)
		}
	}
	if g.MaxDepth < 1 {
		k.Add("groups.max_depth", "must be at least 1")
	}
	if g.InChain && !c.ActiveDirectory {
		k.Add("groups.in_chain", "needs active_directory: true (LDAP_MATCHING_RULE_IN_CHAIN is an Active Directory feature)")
	}
	if g.InChain && !g.Nested {
		k.Add("groups.in_chain", "needs nested: true (it is a way to resolve nested groups)")
	}
	if g.InChain && g.MemberAttribute == "memberUid" {
		k.Add("groups.in_chain", "needs DN members; it cannot be used with member_attribute memberUid")
	}
	if g.InChain && usersBase {
		if _, err := domainRoot(u.BaseDN); err != nil {
			k.Add("users.base_dn", "in_chain searches the domain that holds it: %v", err)
		}
	}
}

// validAttributeType reports whether v is an attribute type as RFC 4512
// section 2.5 writes one in a search: a descriptor (a letter, then
// letters, digits and hyphens) or a numeric OID, without options such as
// ";range=" (the source adds those itself).
func validAttributeType(v string) bool {
	if v == "" {
		return false
	}
	if c := v[0]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		for i := 1; i < len(v); i++ {
			c := v[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
		return true
	}
	for _, n := range strings.Split(v, ".") {
		// number = DIGIT / ( LDIGIT 1*DIGIT ): no leading zero.
		if n == "" || strings.Trim(n, "0123456789") != "" || len(n) > 1 && n[0] == '0' {
			return false
		}
	}
	return strings.Contains(v, ".")
}

// checkDN reports a DN that does not parse and says whether it does.
func checkDN(k *config.Checker, key, dn string) bool {
	if _, err := goldap.ParseDN(dn); err != nil {
		k.Add(key, "not a valid DN: %s", ldapReason(err))
		return false
	}
	return true
}

func checkFilter(k *config.Checker, key, filter string) {
	if !k.Required(key, filter) {
		return
	}
	if _, err := goldap.CompileFilter(filter); err != nil {
		k.Add(key, "not a valid LDAP filter: %s", ldapReason(err))
	}
}

// ldapReason is go-ldap's error without its result-code wrapping.
func ldapReason(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) && le.Err != nil {
		err = le.Err
	}
	return strings.TrimPrefix(err.Error(), "ldap: ")
}

// cmpOr returns v, or fallback when v is blank.
func cmpOr(v, fallback string) string {
	if strings.TrimSpace(v) == "" {
		return fallback
	}
	return strings.TrimSpace(v)
}

// ReportsOwners reports whether groups.owner_attribute is set: only then
// do groups carry owners (config.OwnerSettings).
func (c *Config) ReportsOwners() bool { return c.Groups.OwnerAttribute != "" }

// OwnersHint names the key that makes the source report owners.
func (c *Config) OwnersHint() string {
	return "set its groups.owner_attribute (owner on OpenLDAP, managedBy on Active Directory)"
}
