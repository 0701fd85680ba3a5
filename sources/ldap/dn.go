package ldap

import (
	"fmt"
	"sort"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// normDN returns the form two DNs are compared in: attribute types and
// values lower-cased, spaces around separators and escaping made uniform,
// multi-valued RDNs sorted. "CN=Jo Smith, OU=People,dc=Example" and
// "cn=jo smith,ou=people,dc=example" give the same string.
func normDN(dn string) (string, error) {
	if isPlainDN(dn) {
		return strings.ToLower(dn), nil
	}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("parse DN %q: %w", dn, err)
	}
	rdns := make([]string, len(parsed.RDNs))
	for i, rdn := range parsed.RDNs {
		parts := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			parts[j] = strings.ToLower(a.Type) + "=" + goldap.EscapeDN(strings.ToLower(a.Value))
		}
		sort.Strings(parts)
		rdns[i] = strings.Join(parts, "+")
	}
	return strings.Join(rdns, ","), nil
}

// isPlainDN reports whether dn needs no parsing to normalise: printable
// ASCII with no escapes, quotes, multi-valued RDNs or spaces beside a
// separator. Most DNs are like this, and parsing 100,000 member values
// would otherwise dominate a large fetch.
func isPlainDN(dn string) bool {
	if dn == "" || dn[0] == ' ' || dn[len(dn)-1] == ' ' {
		return false
	}
	typed := false // the current RDN has its '=' already
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == ' ', c == '-', c == '_', c == '.', c == '@', c == '\'', c == '(', c == ')', c == ':', c == '/':
		case c == '=' && !typed:
			if i == 0 || dn[i-1] == ' ' || dn[i-1] == ',' || i == len(dn)-1 || dn[i+1] == ' ' {
				return false
			}
			typed = true
		case c == ',' && typed:
			if i == len(dn)-1 || dn[i-1] == ' ' || dn[i+1] == ' ' {
				return false
			}
			typed = false
		default:
			return false
		}
	}
	return typed
}
