package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
)

// invalidFiles maps each testdata/invalid-*.yaml to the exact error Parse
// gives for it: one problem per line, in file order.
var invalidFiles = map[string]string{
	"invalid-syntax.yaml":        `testdata/invalid-syntax.yaml:3: invalid YAML: mapping values are not allowed in this context`,
	"invalid-not-a-mapping.yaml": `testdata/invalid-not-a-mapping.yaml:1: the file must be a mapping of keys (schedule:, pagertree:, sources:, ...), got a list`,
	"invalid-empty.yaml": `testdata/invalid-empty.yaml: pagertree.username: is required
testdata/invalid-empty.yaml: pagertree.password: is required (or password_file)
testdata/invalid-empty.yaml: sources: at least one source is required
testdata/invalid-empty.yaml: teams: at least one rule is required`,
	"invalid-unknown-key.yaml":     `testdata/invalid-unknown-key.yaml:10: sources[0].ldap.bind_pasword: unknown key (did you mean bind_password?)`,
	"invalid-unknown-top-key.yaml": "testdata/invalid-unknown-top-key.yaml:1: schedul: unknown key (did you mean schedule?)\ntestdata/invalid-unknown-top-key.yaml:2: verbose: unknown key",
	"invalid-duplicate-key.yaml":   `testdata/invalid-duplicate-key.yaml:4: pagertree.username: duplicate key (first set on line 2)`,
	"invalid-wrong-type.yaml": `testdata/invalid-wrong-type.yaml:4: pagertree.concurrency: must be an integer, got a string of 4 characters
testdata/invalid-wrong-type.yaml:5: pagertree.requests_per_second: must be a number, got a list
testdata/invalid-wrong-type.yaml:15: users.delete: must be true or false, got a string of 5 characters`,
	"invalid-wrong-type-list.yaml":    `testdata/invalid-wrong-type-list.yaml:13: users.protect: must be a list, got "owner@example.com"`,
	"invalid-wrong-type-mapping.yaml": `testdata/invalid-wrong-type-mapping.yaml:1: pagertree: must be a mapping, got "https://api.pagertree.com"`,
	"invalid-missing-required.yaml": `testdata/invalid-missing-required.yaml: pagertree.username: is required
testdata/invalid-missing-required.yaml: pagertree.password: is required (or password_file)`,
	"invalid-missing-base-dn.yaml": `testdata/invalid-missing-base-dn.yaml:7: sources[0].ldap.users.base_dn: is required`,
	"invalid-bad-enum.yaml": `testdata/invalid-bad-enum.yaml:12: teams[0].on_missing: must be one of keep, empty, delete, got "remove"
testdata/invalid-bad-enum.yaml:14: log.level: must be one of debug, info, warn, error, got "verbose"`,
	"invalid-bad-duration.yaml": `testdata/invalid-bad-duration.yaml:4: pagertree.timeout: must be a duration such as 30s or 15m, got a number without a unit`,
	"invalid-bad-schedule.yaml": `testdata/invalid-bad-schedule.yaml:1: schedule: not a valid cron schedule: expected exactly 5 fields, found 3: [every 15 minutes]`,
	// A schedule that parses but never fires, a cycle that could never
	// run, and a password that would cross the network in clear.
	"invalid-never-fires.yaml": `testdata/invalid-never-fires.yaml:1: schedule: never fires (no such date in the next five years); check the day of month and month fields
testdata/invalid-never-fires.yaml:2: cycle_timeout: must be greater than 0 (a duration such as 30m)
testdata/invalid-never-fires.yaml:4: pagertree.url: is plain http:// to pagertree.example.com, so the credentials would travel in clear: use https://, or set pagertree.insecure_http: true to allow it`,
	// Each API version's keys, and only those.
	"invalid-v4-keys.yaml": `testdata/invalid-v4-keys.yaml:1: pagertree.api_key: is required with pagertree.api: v4 (or api_key_file)
testdata/invalid-v4-keys.yaml:3: pagertree.username: is a v3 key, but pagertree.api is v4: use pagertree.api_key (or api_key_file)
testdata/invalid-v4-keys.yaml:4: pagertree.password: is a v3 key, but pagertree.api is v4: use pagertree.api_key (or api_key_file)
testdata/invalid-v4-keys.yaml:5: pagertree.team_admins[1]: must be an email address such as lead@example.com, got "Lead <x@example.com>"
testdata/invalid-v4-keys.yaml:11: teams[0].admins[0]: must be an email address such as lead@example.com, got "not-an-email"`,
	"invalid-v4-no-key.yaml": `testdata/invalid-v4-no-key.yaml:1: pagertree.api_key: is required with pagertree.api: v4 (or api_key_file)
testdata/invalid-v4-no-key.yaml:8: teams[0].admins: is required with pagertree.api: v4, where every team needs an admin: list admin emails here or in pagertree.team_admins, or set admins_from_owners`,
	"invalid-v3-admin-keys.yaml": `testdata/invalid-v3-admin-keys.yaml:4: pagertree.api_key: is a v4 key, but pagertree.api is v3: use pagertree.username and password, or set pagertree.api: v4
testdata/invalid-v3-admin-keys.yaml:5: pagertree.team_admins: needs pagertree.api: v4 (v3 teams have no admins)
testdata/invalid-v3-admin-keys.yaml:11: teams[0].admins: needs pagertree.api: v4 (v3 teams have no admins)
testdata/invalid-v3-admin-keys.yaml:11: teams[0].admins_from_owners: needs pagertree.api: v4 (v3 teams have no admins)`,
	"invalid-watch.yaml":     `testdata/invalid-watch.yaml:15: watch.debounce: must be greater than 0 (a duration such as 5s)`,
	"invalid-unset-env.yaml": `testdata/invalid-unset-env.yaml:3: pagertree.password: environment variable PTSYNC_TEST_UNSET is not set`,
	"invalid-env-syntax.yaml": `testdata/invalid-env-syntax.yaml:2: pagertree.username: invalid variable name "PAGERTREE USERNAME" in ${PAGERTREE USERNAME} (write $${ for a literal ${)
testdata/invalid-env-syntax.yaml:3: pagertree.password: unterminated ${ (write $${ for a literal ${)`,
	"invalid-secret-and-file.yaml":   `testdata/invalid-secret-and-file.yaml:4: pagertree.password_file: cannot be used together with password; set one of them`,
	"invalid-unreadable-secret.yaml": `testdata/invalid-unreadable-secret.yaml:3: pagertree.password_file: cannot read "testdata/no-such-secret.txt": no such file or directory`,
	"invalid-duplicate-source.yaml":  `testdata/invalid-duplicate-source.yaml:9: sources[1].name: duplicate source name "corp" (also sources[0])`,
	"invalid-source-name.yaml":       `testdata/invalid-source-name.yaml:5: sources[0].name: must match [a-z0-9][a-z0-9_-]* (lower-case letters, digits, - and _), got "Corp LDAP"`,
	"invalid-bad-source-type.yaml":   `testdata/invalid-bad-source-type.yaml:6: sources[0].type: must be one of file, google, ldap, msgraph, okta, scim, got "activedirectory"`,
	"invalid-type-block-mismatch.yaml": `testdata/invalid-type-block-mismatch.yaml:5: sources[0].ldap: is required for type ldap
testdata/invalid-type-block-mismatch.yaml:7: sources[0].file: does not belong in a source of type ldap (set type: file, or move it to a source of its own)`,
	"invalid-no-sources.yaml": `testdata/invalid-no-sources.yaml:4: sources: at least one source is required
testdata/invalid-no-sources.yaml:5: teams: at least one rule is required`,
	"invalid-unknown-source.yaml": `testdata/invalid-unknown-source.yaml:10: teams[0].source: no source named "crop" (sources: corp)`,
	"invalid-bad-glob.yaml": `testdata/invalid-bad-glob.yaml:11: teams[0].match: invalid glob: syntax error in pattern
testdata/invalid-bad-glob.yaml:13: users.protect[1]: invalid glob: syntax error in pattern`,
	"invalid-bad-regexp.yaml": "testdata/invalid-bad-regexp.yaml:11: teams[0].match: invalid regexp: missing closing ): `^oncall-(db|web$`",
	"invalid-bad-template.yaml": `testdata/invalid-bad-template.yaml:12: teams[0].name: invalid template: function "capitalize" not defined
testdata/invalid-bad-template.yaml:15: teams[1].name: invalid template: unclosed action`,
	"invalid-template-field.yaml": `testdata/invalid-template-field.yaml:12: teams[0].name: invalid template: at <.name>: can't evaluate field name in type group`,
	"invalid-ldap.yaml": `testdata/invalid-ldap.yaml:7: sources[0].ldap.bind_dn: is required when bind_password is set
testdata/invalid-ldap.yaml:8: sources[0].ldap.url: must be an ldap:// or ldaps:// URL with a host, got "https://ldap.example.com"
testdata/invalid-ldap.yaml:10: sources[0].ldap.page_size: must be between 1 and 10000
testdata/invalid-ldap.yaml:11: sources[0].ldap.timeout: must be greater than 0
testdata/invalid-ldap.yaml:12: sources[0].ldap.ca_file: cannot read "testdata/no-such-ca.pem": no such file or directory
testdata/invalid-ldap.yaml:14: sources[0].ldap.users.base_dn: not a valid DN: DN ended with incomplete type, value pair
testdata/invalid-ldap.yaml:15: sources[0].ldap.users.filter: not a valid LDAP filter: filter does not start with an '('
testdata/invalid-ldap.yaml:16: sources[0].ldap.users.scope: must be one of sub, one, base, got "subtree"
testdata/invalid-ldap.yaml:19: sources[0].ldap.groups.member_attribute: must be one of member, uniqueMember, memberUid, got "members"
testdata/invalid-ldap.yaml:20: sources[0].ldap.groups.max_depth: must be at least 1
testdata/invalid-ldap.yaml:21: sources[0].ldap.groups.in_chain: needs active_directory: true (LDAP_MATCHING_RULE_IN_CHAIN is an Active Directory feature)`,
	"invalid-ldap-start-tls.yaml": `testdata/invalid-ldap-start-tls.yaml:9: sources[0].ldap.start_tls: only applies to ldap:// URLs; ldaps:// is TLS already
testdata/invalid-ldap-start-tls.yaml:10: sources[0].ldap.ca_file: "testdata/secret.txt" holds no PEM certificate`,
	"invalid-msgraph.yaml": `testdata/invalid-msgraph.yaml:7: sources[0].msgraph.client_id: is required
testdata/invalid-msgraph.yaml:7: sources[0].msgraph.client_secret: is required (or client_secret_file, or certificate_file with private_key_file)
testdata/invalid-msgraph.yaml:9: sources[0].msgraph.email_attribute: must be one of mail, userPrincipalName, got "upn"
testdata/invalid-msgraph.yaml:10: sources[0].msgraph.base_url: must be an absolute http:// or https:// URL, got "graph.microsoft.com/v1.0"`,
	"invalid-msgraph-certificate.yaml": `testdata/invalid-msgraph-certificate.yaml:7: sources[0].msgraph.private_key_file: is required with certificate_file`,
	"invalid-google.yaml": `testdata/invalid-google.yaml:7: sources[0].google.credentials_file: is required
testdata/invalid-google.yaml:8: sources[0].google.subject: must be the email address of the admin to act as, got "directory-admin"
testdata/invalid-google.yaml:9: sources[0].google.customer: is required`,
	"invalid-okta.yaml": `testdata/invalid-okta.yaml:10: sources[0].okta.client_id: cannot be used together with api_token; set one of them`,
	"invalid-okta-jwt.yaml": `testdata/invalid-okta-jwt.yaml:7: sources[0].okta.private_key_file: is required with client_id
testdata/invalid-okta-jwt.yaml:10: sources[0].okta.scopes: at least one scope is required with client_id`,
	"invalid-scim.yaml": `testdata/invalid-scim.yaml:9: sources[0].scim.oauth2.client_id: is required
testdata/invalid-scim.yaml:9: sources[0].scim.oauth2.client_secret: is required (or client_secret_file)
testdata/invalid-scim.yaml:13: sources[1].scim.bearer_token: is required (or bearer_token_file, or oauth2)`,
	"invalid-users-safety.yaml": `testdata/invalid-users-safety.yaml:13: users.scope: must be one of team_members, all, got "everyone"
testdata/invalid-users-safety.yaml:15: users.delete_grace: needs state.dir (the state database remembers since when each user is missing); set state.dir, or set users.delete_grace to 0s (deletes then happen on the first healthy run a user is missing)
testdata/invalid-users-safety.yaml:16: users.phone_region: must be an ISO 3166 region code such as US or GB, got "XX"
testdata/invalid-users-safety.yaml:18: safety.max_destructive: must be 0 or more (0 disables the limit)
testdata/invalid-users-safety.yaml:19: safety.max_destructive_percent: must be between 0 and 100
testdata/invalid-users-safety.yaml:20: safety.min_source_users: must be 0 or more
testdata/invalid-users-safety.yaml:21: safety.max_source_drop_percent: must be between 0 and 100
testdata/invalid-users-safety.yaml:24: state.keep_reports: must be at least 1
testdata/invalid-users-safety.yaml:26: metrics.listen: must be host:port, such as 127.0.0.1:9464 or :9464, got "9464"`,
	"invalid-url-credentials.yaml": `testdata/invalid-url-credentials.yaml:2: pagertree.url: must not carry a user or password (got "https://xxxxx@api.pagertree.com"); use the credential keys
testdata/invalid-url-credentials.yaml:9: sources[0].ldap.url: must not carry a user or password (got "ldap://xxxxx@127.0.0.1:389"); use bind_dn and bind_password`,
	"invalid-merge.yaml": `testdata/invalid-merge.yaml:10: sources[0].ldap.<<: must merge a mapping or a list of mappings, got "not a mapping"
testdata/invalid-merge.yaml:18: sources[1].ldap.<<: must merge a mapping or a list of mappings, got "ldap://127.0.0.1"`,
	// Several classes at once: decode, env and semantic problems together.
	"invalid-several.yaml": "testdata/invalid-several.yaml:1: schedule: not a valid cron schedule: expected exactly 5 fields, found 4: [*/15 * * *]\n" +
		`testdata/invalid-several.yaml:3: pagertree.url: must be an absolute http:// or https:// URL, got "api.pagertree.com"
testdata/invalid-several.yaml:5: pagertree.password: environment variable PTSYNC_TEST_UNSET is not set
testdata/invalid-several.yaml:6: pagertree.concurrency: must be between 1 and 64
testdata/invalid-several.yaml:16: sources[0].ldap.groups.nestd: unknown key (did you mean nested?)
testdata/invalid-several.yaml:20: teams[0].name: invalid template: unexpected "}" in operand
testdata/invalid-several.yaml:22: log.format: must be one of json, console, got "text"`,
}

func TestInvalidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if _, ok := invalidFiles[filepath.Base(file)]; !ok {
			t.Errorf("%s has no expected error in invalidFiles", file)
		}
	}
	for name, want := range invalidFiles {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parse(data, path, lookupIn(nil))
			if err == nil {
				t.Fatalf("Parse succeeded; want\n%s", want)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config along with its error")
			}
			var problems config.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("error is %T, want config.Problems", err)
			}
			if got := err.Error(); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
			if n := strings.Count(want, "\n") + 1; len(problems) != n {
				t.Errorf("%d problems, want %d", len(problems), n)
			}
		})
	}
}
