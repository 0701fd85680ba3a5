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
	if isNANPE164(raw) {
		return raw
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil {
		return raw
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// isNANPE164 reports whether s is a North American number already in
// E.164: "+1", a digit 2-9, then nine more ASCII digits. The library gives
// such a number back unchanged in every region: "+1" always selects the US
// metadata, whose national prefix "1" cannot match a number starting 2-9;
// digits alone hold no extension; and ten digits is a possible length with
// no leading zero. Skipping the library for them saves its regexps, most of
// the cost of building the desired state. TestNormalizePhoneFastPath holds
// this against the library.
func isNANPE164(s string) bool {
	if len(s) != 12 || s[0] != '+' || s[1] != '1' || s[2] < '2' || s[2] > '9' {
		return false
	}
	for i := 3; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// samePhone reports whether two numbers are the same once both are in E.164.
func samePhone(a, b, region string) bool {
	if a == b {
		return true
	}
	return NormalizePhone(a, region) == NormalizePhone(b, region)
}
