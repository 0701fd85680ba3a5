package sync

import "testing"

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
