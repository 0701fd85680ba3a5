package sources

import (
	"math/rand/v2"
	"net/mail"
	"testing"
)

// TestPlainAddressAgreesWithNetMail: every address the fast path takes,
// net/mail takes as it is, with no display name.
func TestPlainAddressAgreesWithNetMail(t *testing.T) {
	inputs := []string{"jo@example.com", "Jo.Doe+oncall@mail.example.co.uk", "a@b", "a_b%c@x-y.z", "-@-", "a..b@x", ".a@x", "a.@x", "a@x..y", "a@x.", "a@", "@x", "a@_x"}
	rng := rand.New(rand.NewPCG(7, 8))
	// Mostly address-shaped strings, with now and then a character from
	// the rest of what an address may hold.
	part := func(chars string) string {
		b := make([]rune, 1+rng.IntN(8))
		for i := range b {
			if rng.IntN(20) == 0 {
				odd := []rune("!#<> \"(),;:[]\\é@")
				b[i] = odd[rng.IntN(len(odd))]
				continue
			}
			b[i] = rune(chars[rng.IntN(len(chars))])
		}
		return string(b)
	}
	for range 100000 {
		inputs = append(inputs, part("aZ09._%+-")+"@"+part("aZ09.-_"))
	}
	taken := 0
	for _, in := range inputs {
		if !plainAddress(in) {
			continue
		}
		taken++
		addr, err := mail.ParseAddress(in)
		if err != nil || addr.Name != "" || addr.Address != in {
			t.Errorf("plainAddress(%q) is true, net/mail gives %v, %v", in, addr, err)
		}
	}
	if taken < 100 {
		t.Fatalf("only %d inputs took the fast path: the test proves little", taken)
	}
}
