package sync

import (
	"strings"
	"testing"
)

func TestAccountOf(t *testing.T) {
	one := Current{Users: []AccountUser{{ID: "u1", AccountID: "A"}}, Teams: []AccountTeam{{ID: "t1", AccountID: "A"}}}
	if id, err := accountOf(one); id != "A" || err != nil {
		t.Errorf("one account: %q, %v", id, err)
	}
	if id, err := accountOf(convergedAccount()); id != "" || err != nil {
		t.Errorf("v3 objects carry no account: %q, %v", id, err)
	}
	two := one
	two.Teams = []AccountTeam{{ID: "t2", AccountID: "B"}}
	if _, err := accountOf(two); err == nil || !strings.Contains(err.Error(), "two accounts (A and B)") {
		t.Errorf("objects of two accounts: %v, want an error naming both", err)
	}
}
