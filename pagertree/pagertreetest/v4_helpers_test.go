package pagertreetest

import (
	"strings"
	"testing"

	"github.com/ptsync/ptsync/pagertree"
)

// bearer is the Authorization a v4 server made with default options takes.
const bearer = "Bearer " + DefaultAPIKey

// newV4Server starts a v4 emulator closed when the test ends.
func newV4Server(t testing.TB) *Server {
	t.Helper()
	s := NewServer(Options{API: "v4"})
	t.Cleanup(s.Close)
	return s
}

// errorMessageV4 returns the one message of a v4 error answer, checking
// the body has exactly v4's shape and its code is the status.
func errorMessageV4(t testing.TB, r reply) string {
	t.Helper()
	var body pagertree.ErrorBodyV4
	decodeStrict(t, r, &body)
	if len(body.Errors) != 1 || body.Code != r.status {
		t.Fatalf("error body %s for status %d: want one error and that code", r.body, r.status)
	}
	return body.Errors[0].Message
}

func decodeAccountUser(t testing.TB, r reply) pagertree.AccountUser {
	t.Helper()
	var au pagertree.AccountUser
	decodeStrict(t, r, &au)
	return au
}

func decodeTeamV4(t testing.TB, r reply) pagertree.TeamV4 {
	t.Helper()
	var tm pagertree.TeamV4
	decodeStrict(t, r, &tm)
	return tm
}

// person is an account user to preload with a name and emails, the first
// primary.
func person(name string, emails ...string) pagertree.AccountUser {
	au := pagertree.AccountUser{User: pagertree.Person{Name: name}}
	for _, e := range emails {
		au.User.Emails = append(au.User.Emails, pagertree.Email{Email: e})
	}
	return au
}

func mustAddAccountUser(t testing.TB, s *Server, au pagertree.AccountUser) pagertree.AccountUser {
	t.Helper()
	added, err := s.AddAccountUser(au)
	if err != nil {
		t.Fatal(err)
	}
	return added
}

func mustAddTeamV4(t testing.TB, s *Server, tm pagertree.TeamV4) pagertree.TeamV4 {
	t.Helper()
	added, err := s.AddTeamV4(tm)
	if err != nil {
		t.Fatal(err)
	}
	return added
}

// isULID reports whether id is 26 characters of Crockford base32 whose
// first holds no more than 3 bits.
func isULID(id string) bool {
	if len(id) != 26 || id[0] > '7' {
		return false
	}
	for _, c := range id {
		if !strings.ContainsRune(crockford, c) {
			return false
		}
	}
	return true
}

// ulidMillis decodes the timestamp of a ULID: its first 10 characters.
func ulidMillis(id string) int64 {
	var ms int64
	for _, c := range id[:10] {
		ms = ms<<5 | int64(strings.IndexRune(crockford, c))
	}
	return ms
}

// isPrefixID reports whether id is prefix and 8 lower-case letters or digits.
func isPrefixID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	return ok && len(rest) == 8 && strings.Trim(rest, prefixAlphabet) == ""
}
