package config

import (
	"net/url"
	"strings"
	"time"
)

// Every default lives in this file. Parse decodes the file over these
// values, so a key that is present always wins, even when it is false, 0
// or "" (nested: false, max_destructive: 0). The few defaults that depend
// on another key (Active Directory attributes, the Entra token URL's
// tenant, Okta's URLs) are filled in by complete, where an empty string
// means "not set".

// Default returns the top-level defaults: a file that sets only the
// required keys gets these.
func Default() Config {
	return Config{
		Schedule: "@every 15m",
		PagerTree: PagerTree{
			URL:               "https://api.pagertree.com",
			RequestsPerSecond: 10,
			Concurrency:       4,
			Timeout:           30 * time.Second,
		},
		Users: Users{Scope: ScopeTeamMembers},
		Safety: Safety{
			MaxDestructive:        25,
			MaxDestructivePercent: 20,
			MinSourceUsers:        1,
			MaxSourceDropPercent:  30,
		},
		State:   State{KeepReports: 50},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "json"},
	}
}

// defaultTeamRule is what each teams[] entry starts from.
func defaultTeamRule() TeamRule {
	return TeamRule{Name: "{{ .Name }}", OnMissing: OnMissingKeep}
}

// defaultLDAP holds the LDAP defaults that are the same for OpenLDAP and
// Active Directory; complete adds the ones that differ.
func defaultLDAP() LDAP {
	return LDAP{
		PageSize: 500,
		Timeout:  30 * time.Second,
		Users: LDAPUsers{
			Scope:          "sub",
			EmailAttribute: "mail",
			NameAttribute:  "displayName",
			PhoneAttribute: "telephoneNumber",
		},
		Groups: LDAPGroups{
			Scope:           "sub",
			NameAttribute:   "cn",
			MemberAttribute: "member",
			Nested:          true,
			MaxDepth:        10,
		},
	}
}

func defaultMSGraph() MSGraph {
	return MSGraph{
		Nested:         true,
		EmailAttribute: "mail",
		BaseURL:        "https://graph.microsoft.com/v1.0",
		TokenURL:       "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token",
	}
}

func defaultGoogle() Google {
	return Google{
		Customer: "my_customer",
		Nested:   true,
		BaseURL:  "https://admin.googleapis.com/admin/directory/v1",
		TokenURL: "https://oauth2.googleapis.com/token",
	}
}

func defaultOkta() Okta {
	return Okta{Scopes: []string{"okta.users.read", "okta.groups.read"}}
}

// directoryDefaults are the LDAP defaults that differ between a plain LDAP
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

// memberAttributes are the accepted member_attribute values, in their
// canonical case.
var memberAttributes = []string{"member", "uniqueMember", "memberUid"}

// complete fills the defaults that depend on other keys and puts
// case-insensitive values in their canonical case.
func (c *Config) complete() {
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.LDAP != nil {
			completeLDAP(s.LDAP)
		}
		if g := s.MSGraph; g != nil && g.TenantID != "" {
			g.TokenURL = strings.ReplaceAll(g.TokenURL, "{tenant_id}", url.PathEscape(g.TenantID))
		}
		if o := s.Okta; o != nil && o.OrgURL != "" {
			org := strings.TrimRight(o.OrgURL, "/")
			o.BaseURL = or(o.BaseURL, org+"/api/v1")
			o.TokenURL = or(o.TokenURL, org+"/oauth2/v1/token")
		}
	}
}

func completeLDAP(l *LDAP) {
	for _, m := range memberAttributes {
		if strings.EqualFold(l.Groups.MemberAttribute, m) {
			l.Groups.MemberAttribute = m
		}
	}
	dd := openLDAPDefaults
	if l.ActiveDirectory {
		dd = activeDirectoryDefaults
	} else if f, ok := groupFilterByMember[l.Groups.MemberAttribute]; ok {
		dd.groupFilter = f
	}
	l.Users.Filter = or(l.Users.Filter, dd.userFilter)
	l.Users.IDAttribute = or(l.Users.IDAttribute, dd.userID)
	l.Users.UIDAttribute = or(l.Users.UIDAttribute, dd.uid)
	l.Groups.Filter = or(l.Groups.Filter, dd.groupFilter)
	l.Groups.IDAttribute = or(l.Groups.IDAttribute, dd.groupID)
}

// or returns v, or fallback when v is empty.
func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}
