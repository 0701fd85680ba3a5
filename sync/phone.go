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
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil {
		return raw
	}
	return phonenumbers.Format(n, phonenumbers.E164)
}

// samePhone reports whether two numbers are the same once both are in E.164.
func samePhone(a, b, region string) bool {
	if a == b {
		return true
	}
	return NormalizePhone(a, region) == NormalizePhone(b, region)
}
