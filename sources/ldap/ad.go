package ldap

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// Active Directory specifics.
const (
	// matchingRuleInChain walks the member links server-side (MS-ADTS 3.1.1.3.4.4.1).
	matchingRuleInChain = "1.2.840.113556.1.4.1941"
	// uacAccountDisable is the ACCOUNTDISABLE bit of userAccountControl.
	uacAccountDisable = 0x2
	attrUAC           = "userAccountControl"
)

// formatGUID renders a 16-byte objectGUID the way AD shows it: the first
// three fields are stored little-endian, the last two as bytes in order.
func formatGUID(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("objectGUID has %d bytes, want 16", len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]),
		binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]),
		b[8:10], b[10:16]), nil
}

// disabledByUAC reports whether a userAccountControl value has the
// ACCOUNTDISABLE bit set.
func disabledByUAC(v string) (bool, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return false, fmt.Errorf("userAccountControl %q is not a number", v)
	}
	return n&uacAccountDisable != 0, nil
}

// valueRange is the range option of an attribute description AD returns
// for ranged retrieval (MS-ADTS 3.1.1.3.1.3.3), "member;range=0-1499".
type valueRange struct {
	low  int
	high int // -1 for "*": the last values
}

// parseRangedAttr splits "member;range=0-1499" into "member" and its
// range; ok is false when desc carries no range option.
func parseRangedAttr(desc string) (attr string, r valueRange, ok bool, err error) {
	attr, opts, found := strings.Cut(desc, ";")
	if !found {
		return desc, valueRange{}, false, nil
	}
	for _, opt := range strings.Split(opts, ";") {
		spec, isRange := strings.CutPrefix(strings.ToLower(opt), "range=")
		if !isRange {
			continue
		}
		lo, hi, dash := strings.Cut(spec, "-")
		if !dash {
			return attr, r, false, fmt.Errorf("malformed range option %q", desc)
		}
		if r.low, err = strconv.Atoi(lo); err != nil || r.low < 0 {
			return attr, r, false, fmt.Errorf("malformed range option %q", desc)
		}
		if hi == "*" {
			r.high = -1
		} else if r.high, err = strconv.Atoi(hi); err != nil || r.high < r.low {
			return attr, r, false, fmt.Errorf("malformed range option %q", desc)
		}
		return attr, r, true, nil
	}
	return attr, valueRange{}, false, nil
}

// memberValues collects the values of a multi-valued attribute (the member
// or owner attribute) from e. When the server answered with a range that is
// not the last one, next is the first value index still to fetch, else -1.
func memberValues(e *goldap.Entry, attr string) (values []string, next int, err error) {
	next = -1
	for _, a := range e.Attributes {
		name, r, ranged, err := parseRangedAttr(a.Name)
		if err != nil {
			return nil, -1, err
		}
		if !strings.EqualFold(name, attr) {
			continue
		}
		values = append(values, a.Values...)
		if ranged && r.high >= 0 {
			next = r.high + 1
		}
	}
	return values, next, nil
}

// fetchRange reads the rest of a ranged attribute of one entry (the member
// or owner attribute), asking for "member;range=N-*" until the server marks
// the last range with "*".
// It asks the server the entry came from (at: nil for the configured one)
// over p's connection to it.
func (s *Source) fetchRange(ctx context.Context, p *peers, at *endpoint, dn, attr string, next int, ignored *int) ([]string, error) {
	shown := s.server(query{at: at}).shown
	var values []string
	for next >= 0 {
		q := query{
			at:     at,
			what:   "read " + attr + " values of " + dn,
			base:   dn,
			scope:  goldap.ScopeBaseObject,
			filter: "(objectClass=*)",
			attrs:  []string{fmt.Sprintf("%s;range=%d-*", attr, next)},
		}
		from, got := next, false
		err := s.searchAll(ctx, p, q, ignored, func(e *goldap.Entry, _ *endpoint) error {
			vals, n, err := memberValues(e, attr)
			if err != nil {
				return fmt.Errorf("ldap %s: %s: %w", shown, q.what, err)
			}
			values = append(values, vals...)
			next, got = n, true
			return nil
		})
		if err != nil {
			return nil, err
		}
		if !got {
			return nil, fmt.Errorf("ldap %s: %s: the entry was not returned; check that it still exists", shown, q.what)
		}
		if next >= 0 && next <= from {
			return nil, fmt.Errorf("ldap %s: %s: the server's range did not advance past %d", shown, q.what, from)
		}
	}
	return values, nil
}

// inChainFilter selects the entries that are members of groupDN at any
// depth: users, and the groups nested in it. groupDN is escaped here, once.
func inChainFilter(groupDN string) string {
	return fmt.Sprintf("(memberOf:%s:=%s)", matchingRuleInChain, goldap.EscapeFilter(groupDN))
}

// domainRoot returns the naming context that holds dn: its trailing DC=
// components, which is how AD names every domain (and application
// partition). In-chain searches run from there so that members outside
// the user search come back too.
func domainRoot(dn string) (string, error) {
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		return "", fmt.Errorf("parse DN %q: %w", dn, err)
	}
	start := len(parsed.RDNs)
	for start > 0 {
		rdn := parsed.RDNs[start-1]
		if len(rdn.Attributes) != 1 || !strings.EqualFold(rdn.Attributes[0].Type, "dc") {
			break
		}
		start--
	}
	if start == len(parsed.RDNs) {
		return "", fmt.Errorf("%q does not end in DC= components naming its domain", dn)
	}
	parts := make([]string, 0, len(parsed.RDNs)-start)
	for _, rdn := range parsed.RDNs[start:] {
		a := rdn.Attributes[0]
		parts = append(parts, a.Type+"="+goldap.EscapeDN(a.Value))
	}
	return strings.Join(parts, ","), nil
}
