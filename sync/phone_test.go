package sync

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct{ raw, region, want string }{
		{"+1 415-555-0100", "", "+14155550100"},
		{"+1 (415) 555 0100", "US", "+14155550100"},
		{"(415) 555-0100", "US", "+14155550100"},
		{"(415) 555-0100", "us", "+14155550100"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"+44 20 7946 0958", "US", "+442079460958"},
		{"(415) 555-0100", "", "(415) 555-0100"}, // no region: kept as given
		{"  ext. only  ", "US", "ext. only"},
		{"", "US", ""},
	}
	for _, tc := range tests {
		t.Run(tc.raw+"/"+tc.region, func(t *testing.T) {
			if got := NormalizePhone(tc.raw, tc.region); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSamePhone(t *testing.T) {
	tests := []struct {
		a, b, region string
		want         bool
	}{
		{"+14155550100", "+1 415 555 0100", "", true},
		{"+14155550100", "415.555.0100", "US", true},
		{"+14155550100", "415.555.0100", "", false},
		{"+14155550100", "+14155550101", "US", false},
		{"", "+14155550100", "US", false},
	}
	for _, tc := range tests {
		if got := samePhone(tc.a, tc.b, tc.region); got != tc.want {
			t.Errorf("samePhone(%q, %q, %q): got %t, want %t", tc.a, tc.b, tc.region, got, tc.want)
		}
	}
}

// libraryE164 is NormalizePhone without its fast path: the library's answer.
func libraryE164(raw, region string) string {
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

// TestNormalizePhoneFastPath holds NormalizePhone, fast path included, to
// the library's answer over every area code, random numbers of the fast
// path's shape, near misses of it and random strings of phone characters.
func TestNormalizePhoneFastPath(t *testing.T) {
	inputs := []string{
		"+44 (0)20 7946 0958", "+4402079460103", "+442079460103", "+39 06 1234 5678", "+390612345678",
		"+14155550100 x123", "+14155550100x123", "+14155550100;ext=123", "+14155550100#", "+1415555010#", "+1415555010)", "+1415555010-",
		"+1415555CALL", "+1800FLOWERS", "tel:+14155550100", "+14155550100;phone-context=+1",
		"+10155550100", "+11155550100", "+1415555010", "+141555501000", "+1 4155550100", " +14155550100 ",
		"+1", "+12", "+1234", "+123456789012345678", "+12345678901234567890", "14155550100", "4155550100",
		"++14155550100", "+-14155550100", "+１４１５５５５０１００", "+14155550100\u00a0", "+7 495 123-45-67",
		"+8801712345678", "+5491123456789", "+52 1 55 1234 5678", "+61 (0)2 9876 5432", "+4903012345678",
		"+00014155550100", "0014155550100", "01114155550100", "+1-800-555-0199", "+19999999999",
	}
	for npa := 200; npa <= 999; npa++ {
		inputs = append(inputs, fmt.Sprintf("+1%d5550100", npa), fmt.Sprintf("+1%d0000000", npa), fmt.Sprintf("+1%d9999999", npa),
			fmt.Sprintf("+1 %d 555 0100", npa), fmt.Sprintf("+1 (%d) 555-0100", npa), fmt.Sprintf("+1-%d-055-0100", npa),
			fmt.Sprintf("+1.%d.555.0100", npa), fmt.Sprintf("+1 %d 1555 010", npa), fmt.Sprintf("+1(%d)5550100", npa))
	}
	rng := rand.New(rand.NewPCG(4, 1))
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	const phoneChars = "+0123456789 ()-.x#;,/extTEL:"
	for range 5000 {
		inputs = append(inputs, "+1"+digits(10), "+"+digits(1+rng.IntN(16)), "+1"+digits(rng.IntN(14)))
		// "+1" and ten digits with separators sprinkled anywhere after it.
		spaced := []byte("+1")
		for _, d := range digits(9 + rng.IntN(3)) {
			if rng.IntN(3) == 0 {
				spaced = append(spaced, " -.()"[rng.IntN(5)])
			}
			spaced = append(spaced, byte(d))
		}
		if rng.IntN(4) == 0 {
			spaced = append(spaced, " -.()"[rng.IntN(5)])
		}
		inputs = append(inputs, string(spaced))
		b := make([]byte, rng.IntN(18))
		for i := range b {
			b[i] = phoneChars[rng.IntN(len(phoneChars))]
		}
		inputs = append(inputs, string(b))
	}
	for _, region := range []string{"", "US", "us", "CA", "AG", "GB", "IT", "ZZ", "XX"} {
		for _, raw := range inputs {
			if got, want := NormalizePhone(raw, region), libraryE164(raw, region); got != want {
				t.Errorf("NormalizePhone(%q, %q) = %q, library gives %q", raw, region, got, want)
			}
		}
	}
}
