package sync

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// NormalizePhone returns the number in E.164 (+14155550100). Numbers
// without a +country code are read in region (ISO 3166, e.g. "US"). A
// number that does not parse is returned trimmed, as given, so it is still
// compared and shown rather than silently dropped.
func NormalizePhone(raw, region string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	if e164, ok := nanpE164(raw); ok {
		return e164
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil {
		return raw
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// nanpE164 returns a North American number written "+1", then ten
// digits of which the first is 2-9, with at most the separators people type
// between them (space, hyphen, dot, parentheses: "+1 (415) 555-0100"), in
// E.164. The library gives such a number back as "+1" and the ten digits in
// every region: "+1" always selects the US metadata, whose national prefix
// "1" cannot match a number starting 2-9; those separators are punctuation
// it strips, and digits and separators hold no extension; ten digits is a
// possible length with no leading zero. Skipping the library for them saves
// its regexps, most of the cost of building the desired state.
// TestNormalizePhoneFastPath holds this against the library.
func nanpE164(s string) (string, bool) {
	if len(s) < 12 || len(s) > 32 || s[0] != '+' || s[1] != '1' {
		return "", false
	}
	var b [12]byte
	b[0], b[1] = '+', '1'
	n := 2
	for i := 2; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if n == len(b) || (n == 2 && c < '2') {
				return "", false
			}
			b[n] = c
			n++
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	if n != len(b) {
		return "", false
	}
	if len(s) == len(b) {
		return s, true // already E.164: no copy
	}
	return string(b[:]), true
}

// samePhone reports whether two numbers are the same once both are in E.164.
func samePhone(a, b, region string) bool {
	if a == b {
		return true
	}
	return NormalizePhone(a, region) == NormalizePhone(b, region)
}
