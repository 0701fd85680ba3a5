package config_test

import (
	"strings"
	"testing"
)

// TestValuesAreNotEchoed pastes a password into every number, true/false
// and duration field: the problems say what kind of value each got, and
// never repeat it.
func TestValuesAreNotEchoed(t *testing.T) {
	const secret = "Tr0ub4dor&3-secret"
	_, err := parse([]byte(`
cycle_timeout: `+secret+`
pagertree:
  username: ptsync@example.com
  password: hunter2
  concurrency: `+secret+`
  requests_per_second: `+secret+`
  insecure_http: `+secret+`
  timeout: `+secret+`
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldap://127.0.0.1
      page_size: `+secret+`
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com", nested: `+secret+`}
teams:
  - {source: corp, match: "oncall-*", adopt: 12.5}
safety:
  max_destructive: 2.0
  max_source_drop_percent: x
  min_source_users: 99999999999999999999999
  max_destructive_percent: inf
users:
  delete_grace: "  "
`), "f.yaml", lookupIn(nil))
	want := `f.yaml:2: cycle_timeout: must be a duration such as 30s or 15m, got a string of 18 characters
f.yaml:6: pagertree.concurrency: must be an integer, got a string of 18 characters
f.yaml:7: pagertree.requests_per_second: must be a number, got a string of 18 characters
f.yaml:8: pagertree.insecure_http: must be true or false, got a string of 18 characters
f.yaml:9: pagertree.timeout: must be a duration such as 30s or 15m, got a string of 18 characters
f.yaml:15: sources[0].ldap.page_size: must be an integer, got a string of 18 characters
f.yaml:17: sources[0].ldap.groups.nested: must be true or false, got a string of 18 characters
f.yaml:19: teams[0].adopt: must be true or false, got a string of 4 characters
f.yaml:21: safety.max_destructive: must be an integer, got a decimal number
f.yaml:22: safety.max_source_drop_percent: must be a number, got a string of 1 character
f.yaml:23: safety.min_source_users: must be an integer, got a number out of range
f.yaml:24: safety.max_destructive_percent: must be a finite number
f.yaml:26: users.delete_grace: must be a duration such as 30s or 15m, got an empty value`
	if err == nil || err.Error() != want {
		t.Errorf("problems:\n%v\nwant:\n%s", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "Tr0ub4dor") {
		t.Errorf("the problems repeat the value pasted in:\n%v", err)
	}
}

// TestPlainHTTPOnlyToLoopback: the PagerTree password and token cross the
// network only encrypted, unless the config says otherwise in so many
// words; this machine is not the network.
func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for _, tc := range []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://api.pagertree.com", false, true},
		{"https://10.0.0.5:8443", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://127.8.9.10", false, true},
		{"http://[::1]:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://LocalHost.", false, true},
		{"http://api.pagertree.com", false, false},
		{"http://10.0.0.5:8080", false, false},
		{"http://[::2]:8080", false, false},
		{"http://[::ffff:10.0.0.5]", false, false},
		{"http://localhost.example.com", false, false},
		{"http://128.0.0.1", false, false},
		{"http://api.pagertree.com", true, true},
		{"http://10.0.0.5:8080", true, true},
	} {
		insecure := "false"
		if tc.insecure {
			insecure = "true"
		}
		_, err := parse([]byte(`
pagertree:
  url: "`+tc.url+`"
  insecure_http: `+insecure+`
  username: ptsync@example.com
  password: hunter2
sources: [{name: corp, type: file, file: {path: c.yaml}}]
teams: [{source: corp, match: "oncall-*"}]
`), "f.yaml", lookupIn(nil))
		if tc.ok && err != nil {
			t.Errorf("url %s, insecure_http %v: %v; want it accepted", tc.url, tc.insecure, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "f.yaml:3: pagertree.url: is plain http:// to ")) {
			t.Errorf("url %s, insecure_http %v: error %v; want it refused as plain http", tc.url, tc.insecure, err)
		}
	}
}
