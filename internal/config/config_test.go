package config_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sources/google"
	"github.com/ptsync/ptsync/sources/ldap"
	"github.com/ptsync/ptsync/sources/msgraph"
	"github.com/ptsync/ptsync/sources/okta"
	"github.com/ptsync/ptsync/sources/scim"
)

// minimal is the least a configuration needs (testdata/valid-minimal.yaml).
const minimal = `
pagertree:
  username: ptsync@example.com
  password: hunter2
sources:
  - name: corp
    type: file
    file:
      path: /etc/ptsync/contractors.yaml
teams:
  - source: corp
    match: "oncall-*"
`

func mustParse(t *testing.T, yaml string, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := parse([]byte(yaml), "ptsync.yaml", lookupIn(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func TestLoadAppliesDefaults(t *testing.T) {
	cfg, err := load("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Config{
		Schedule: "@every 15m",
		PagerTree: config.PagerTree{
			API:               config.APIv3,
			URL:               "https://api.pagertree.com",
			Username:          "ptsync@example.com",
			Password:          "hunter2",
			RequestsPerSecond: 10,
			Concurrency:       4,
			Timeout:           30 * time.Second,
		},
		CycleTimeout: 30 * time.Minute,
		Sources:      []config.Source{{Name: "corp", Type: "file", Settings: &file.Config{Path: "testdata/contractors.yaml"}}},
		Teams:        []config.TeamRule{{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", Adopt: false, OnMissing: "keep"}},
		Users:        config.Users{Scope: "team_members", Delete: false, DeleteGrace: 0},
		Safety:       config.Safety{MaxDestructive: 25, MaxDestructivePercent: 20, MinSourceUsers: 1, MaxSourceDropPercent: 30},
		State:        config.State{Dir: "", KeepReports: 50},
		Metrics:      config.Metrics{Listen: "127.0.0.1:9464"},
		Status:       config.Status{Enabled: true, Auth: config.StatusAuthNone},
		Watch:        config.Watch{Debounce: 5 * time.Second, MaxDelay: time.Minute},
		Log:          config.Log{Level: "info", Format: "json"},
		Path:         "testdata/valid-minimal.yaml",
	}
	config.StripInternal(cfg)
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("config:\n%+v\nwant:\n%+v", *cfg, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "reading config: open ") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestLDAPDefaults(t *testing.T) {
	const bases = `
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com"}`
	openLDAP := ldap.Config{
		URL:       "ldap://127.0.0.1:389",
		PageSize:  500,
		Referrals: "fail",
		Timeout:   30 * time.Second,
		Users: ldap.Users{
			BaseDN: "ou=people,dc=example,dc=com", Filter: "(objectClass=inetOrgPerson)", Scope: "sub",
			IDAttribute: "entryUUID", EmailAttribute: "mail", NameAttribute: "displayName",
			PhoneAttribute: "telephoneNumber", UIDAttribute: "uid",
		},
		Groups: ldap.Groups{
			BaseDN: "ou=groups,dc=example,dc=com", Filter: "(objectClass=groupOfNames)", Scope: "sub",
			IDAttribute: "entryUUID", NameAttribute: "cn", MemberAttribute: "member", Nested: true, MaxDepth: 10,
		},
	}
	activeDirectory := openLDAP
	activeDirectory.ActiveDirectory = true
	activeDirectory.Users.Filter = "(&(objectCategory=person)(objectClass=user))"
	activeDirectory.Users.IDAttribute = "objectGUID"
	activeDirectory.Users.UIDAttribute = "sAMAccountName"
	activeDirectory.Groups.Filter = "(objectClass=group)"
	activeDirectory.Groups.IDAttribute = "objectGUID"

	posix := openLDAP
	posix.Groups.MemberAttribute = "memberUid"
	posix.Groups.Filter = "(objectClass=posixGroup)"
	unique := openLDAP
	unique.Groups.MemberAttribute = "uniqueMember"
	unique.Groups.Filter = "(objectClass=groupOfUniqueNames)"

	explicit := activeDirectory
	explicit.StartTLS = true
	explicit.PageSize = 1000
	explicit.Timeout = time.Minute
	explicit.Users.Filter = "(objectClass=person)"
	explicit.Users.IDAttribute = "objectSid"
	explicit.Users.PhoneAttribute = "mobile"
	explicit.Users.Scope = "one"
	explicit.Groups.Filter = "(objectClass=groupOfNames)"
	explicit.Groups.Nested = false
	explicit.Groups.MaxDepth = 3

	for _, tc := range []struct {
		name string
		ldap string // the ldap block's keys after url
		want ldap.Config
	}{
		{"openldap", bases, openLDAP},
		{"active directory", bases + "\n      active_directory: true", activeDirectory},
		{"memberUid picks posixGroup, in any case", `
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com", member_attribute: memberuid}`, posix},
		{"uniqueMember picks groupOfUniqueNames", `
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com", member_attribute: uniqueMember}`, unique},
		{"explicit values win, false and all", `
      active_directory: true
      start_tls: true
      page_size: 1000
      timeout: 1m
      users:
        base_dn: ou=people,dc=example,dc=com
        filter: (objectClass=person)
        id_attribute: objectSid
        phone_attribute: mobile
        scope: one
      groups:
        base_dn: ou=groups,dc=example,dc=com
        filter: (objectClass=groupOfNames)
        nested: false
        max_depth: 3`, explicit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, `
pagertree: {username: u, password: p}
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldap://127.0.0.1:389`+tc.ldap+`
teams: [{source: corp, match: "*"}]
`, nil)
			if got := *cfg.Sources[0].Settings.(*ldap.Config); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ldap:\n%+v\nwant:\n%+v", got, tc.want)
			}
		})
	}
}

func TestExplicitValuesWin(t *testing.T) {
	cfg := mustParse(t, `
schedule: "*/5 * * * *"
cycle_timeout: 90s
pagertree:
  url: http://pagertree.internal:8080
  insecure_http: true
  username: u
  password: p
  requests_per_second: 2.5
  concurrency: 1
  timeout: 5s
sources:
  - {name: corp, type: file, file: {path: /tmp/c.yaml}}
teams:
  - {source: corp, match: "re:^oncall-", name: "{{ upper .Name }}", adopt: true, on_missing: delete}
users:
  scope: all
  delete: true
  protect: ["owner@example.com"]
  phone_region: GB
safety:
  max_destructive: 0
  max_destructive_percent: 0
  min_source_users: 0
  max_source_drop_percent: 0
state:
  keep_reports: 1
metrics:
  listen: ":0"
watch:
  enabled: true
  debounce: 2s
  max_delay: 2s
log:
  level: debug
  format: console
`, nil)
	config.StripInternal(cfg)
	want := config.Config{
		Schedule:     "*/5 * * * *",
		PagerTree:    config.PagerTree{API: config.APIv3, URL: "http://pagertree.internal:8080", InsecureHTTP: true, Username: "u", Password: "p", RequestsPerSecond: 2.5, Concurrency: 1, Timeout: 5 * time.Second},
		CycleTimeout: 90 * time.Second,
		Sources:      []config.Source{{Name: "corp", Type: "file", Settings: &file.Config{Path: "/tmp/c.yaml"}}},
		Teams:        []config.TeamRule{{Source: "corp", Match: "re:^oncall-", Name: "{{ upper .Name }}", Adopt: true, OnMissing: "delete"}},
		Users:        config.Users{Scope: "all", Delete: true, Protect: []string{"owner@example.com"}, PhoneRegion: "GB"},
		Safety:       config.Safety{},
		State:        config.State{KeepReports: 1},
		Metrics:      config.Metrics{Listen: ":0"},
		Status:       config.Status{Enabled: true, Auth: config.StatusAuthNone},
		Watch:        config.Watch{Enabled: true, Debounce: 2 * time.Second, MaxDelay: 2 * time.Second},
		Log:          config.Log{Level: "debug", Format: "console"},
		Path:         "ptsync.yaml",
	}
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("config:\n%+v\nwant:\n%+v", *cfg, want)
	}
}

// TestStateAndGrace: state.dir is read from the config file's directory,
// users.delete_grace is accepted with it, and refused without it, naming
// both keys; max_source_drop_percent is accepted with or without it (it
// only acts with a state).
func TestStateAndGrace(t *testing.T) {
	cfg, err := parse([]byte(minimal+"users: {delete: true, delete_grace: 72h}\nstate: {dir: state, keep_reports: 7}\n"), "/etc/ptsync/ptsync.yaml", lookupIn(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if want := (config.State{Dir: "/etc/ptsync/state", KeepReports: 7}); cfg.State != want {
		t.Errorf("state = %+v, want %+v", cfg.State, want)
	}
	if cfg.Users.DeleteGrace != 72*time.Hour {
		t.Errorf("delete_grace = %v, want 72h", cfg.Users.DeleteGrace)
	}

	_, err = parse([]byte(minimal+"users:\n  delete: true\n  delete_grace: 1h\nsafety: {max_source_drop_percent: 10}\n"), "ptsync.yaml", lookupIn(nil))
	want := "ptsync.yaml:15: users.delete_grace: needs state.dir (the state database remembers since when each user is missing); set state.dir, or set users.delete_grace to 0s (deletes then happen on the first healthy run a user is missing)"
	if err == nil || err.Error() != want {
		t.Errorf("grace without state.dir:\n got %v\nwant %s", err, want)
	}
}

func TestAPISourceDefaults(t *testing.T) {
	cfg := mustParse(t, `
pagertree: {username: u, password: p}
sources:
  - name: entra
    type: msgraph
    msgraph: {tenant_id: "contoso.onmicrosoft.com", client_id: app, client_secret: s}
  - name: entra-explicit
    type: msgraph
    msgraph:
      tenant_id: t1
      client_id: app
      client_secret: s
      nested: false
      email_attribute: userPrincipalName
      base_url: http://127.0.0.1:9000/v1.0
      token_url: http://127.0.0.1:9000/{tenant_id}/token
  - name: workspace
    type: google
    google: {credentials_file: /etc/sa.json, subject: admin@example.com}
  - name: okta
    type: okta
    okta: {org_url: "https://example.okta.com/", api_token: t}
  - name: okta-jwt
    type: okta
    okta: {org_url: "https://example.okta.com", client_id: c, private_key_file: /etc/k.pem, scopes: [okta.users.read], base_url: "http://127.0.0.1:9001/api/v1"}
teams: [{source: entra, match: "*"}]
`, nil)
	for _, tc := range []struct {
		source string
		got    any
		want   any
	}{
		{"entra", *cfg.Sources[0].Settings.(*msgraph.Config), msgraph.Config{
			TenantID: "contoso.onmicrosoft.com", ClientID: "app", ClientSecret: "s", Nested: true, EmailAttribute: "mail",
			BaseURL: "https://graph.microsoft.com/v1.0", TokenURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
			Concurrency: 4, Timeout: 30 * time.Second,
		}},
		{"entra-explicit", *cfg.Sources[1].Settings.(*msgraph.Config), msgraph.Config{
			TenantID: "t1", ClientID: "app", ClientSecret: "s", Nested: false, EmailAttribute: "userPrincipalName",
			BaseURL: "http://127.0.0.1:9000/v1.0", TokenURL: "http://127.0.0.1:9000/t1/token",
			Concurrency: 4, Timeout: 30 * time.Second,
		}},
		{"workspace", *cfg.Sources[2].Settings.(*google.Config), google.Config{
			CredentialsFile: "/etc/sa.json", Subject: "admin@example.com", Customer: "my_customer", Nested: true,
			DerivedMembership: true, NameAttribute: "name",
			BaseURL: "https://admin.googleapis.com/admin/directory/v1", TokenURL: "https://oauth2.googleapis.com/token",
			Concurrency: 4, Timeout: 30 * time.Second,
		}},
		{"okta", *cfg.Sources[3].Settings.(*okta.Config), okta.Config{
			OrgURL: "https://example.okta.com/", APIToken: "t", Scopes: []string{"okta.users.read", "okta.groups.read"},
			BaseURL: "https://example.okta.com/api/v1", TokenURL: "https://example.okta.com/oauth2/v1/token",
			Concurrency: 4, Timeout: 30 * time.Second,
		}},
		{"okta-jwt", *cfg.Sources[4].Settings.(*okta.Config), okta.Config{
			OrgURL: "https://example.okta.com", ClientID: "c", PrivateKeyFile: "/etc/k.pem", Scopes: []string{"okta.users.read"},
			BaseURL: "http://127.0.0.1:9001/api/v1", TokenURL: "https://example.okta.com/oauth2/v1/token",
			Concurrency: 4, Timeout: 30 * time.Second,
		}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s:\n%+v\nwant:\n%+v", tc.source, tc.got, tc.want)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	env := map[string]string{
		"PT_USER": "ptsync@example.com", "PT_PASSWORD": "pa$$w0rd}", "PT_CONCURRENCY": "8",
		"HOST": "ldap.example.com", "EMPTY": "",
	}
	cfg := mustParse(t, `
pagertree:
  username: ${PT_USER}
  password: ${PT_PASSWORD}
  concurrency: ${PT_CONCURRENCY}
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldaps://${HOST}:636
      bind_dn: "cn=ptsync${EMPTY},dc=example,dc=com"
      bind_password: "$${NOT_A_VAR} $HOME $"
      users: {base_dn: "dc=example,dc=com"}
      groups: {base_dn: "dc=example,dc=com"}
teams: [{source: corp, match: "re:^oncall-.*$"}]
`, env)
	for _, tc := range []struct{ key, got, want string }{
		{"pagertree.username", cfg.PagerTree.Username, "ptsync@example.com"},
		{"pagertree.password", cfg.PagerTree.Password, "pa$$w0rd}"}, // values are not expanded again
		{"ldap.url", cfg.Sources[0].Settings.(*ldap.Config).URL, "ldaps://ldap.example.com:636"},
		{"ldap.bind_dn", cfg.Sources[0].Settings.(*ldap.Config).BindDN, "cn=ptsync,dc=example,dc=com"},
		{"ldap.bind_password", cfg.Sources[0].Settings.(*ldap.Config).BindPassword, "${NOT_A_VAR} $HOME $"},
		{"teams[0].match", cfg.Teams[0].Match, "re:^oncall-.*$"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
	if cfg.PagerTree.Concurrency != 8 {
		t.Errorf("pagertree.concurrency = %d, want 8 (from ${PT_CONCURRENCY})", cfg.PagerTree.Concurrency)
	}
}

func TestExpandEnv(t *testing.T) {
	env := lookupIn(map[string]string{"A": "1", "B_2": "two", "EMPTY": ""})
	for _, tc := range []struct{ in, want, err string }{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "1"},
		{in: "x${A}y${B_2}z", want: "x1ytwoz"},
		{in: "${EMPTY}", want: ""},
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"}, // only the "$${" pair is an escape
		{in: "$A $ $$ {A}", want: "$A $ $$ {A}"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${MISSING} ${A} ${OTHER}", err: "environment variables MISSING, OTHER are not set"},
		{in: "${A", err: "unterminated ${ (write $${ for a literal ${)"},
		{in: "${}", err: `invalid variable name "" in ${} (write $${ for a literal ${)`},
		{in: "${1A}", err: `invalid variable name "1A" in ${1A} (write $${ for a literal ${)`},
		{in: "${A:-x}", err: `invalid variable name "A:-x" in ${A:-x} (write $${ for a literal ${)`},
	} {
		got, err := config.ExpandEnv(tc.in, env)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("config.ExpandEnv(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("config.ExpandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// secretsConfig names every *_file secret; dir holds the files.
const secretsConfig = `
pagertree:
  username: u
  password_file: pagertree.pass
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldap://127.0.0.1
      bind_dn: cn=ptsync,dc=example,dc=com
      bind_password_file: secrets/ldap.pass
      users: {base_dn: "dc=example,dc=com"}
      groups: {base_dn: "dc=example,dc=com"}
  - name: entra
    type: msgraph
    msgraph: {tenant_id: t, client_id: c, client_secret_file: graph.secret}
  - name: okta
    type: okta
    okta: {org_url: "https://example.okta.com", api_token_file: okta.token}
  - name: idp
    type: scim
    scim: {base_url: "https://idp.example.com/scim/v2", bearer_token_file: scim.token}
  - name: idp-oauth
    type: scim
    scim:
      base_url: https://idp.example.com/scim/v2
      oauth2: {token_url: "https://idp.example.com/token", client_id: c, client_secret_file: ABSOLUTE}
teams: [{source: corp, match: "*"}]
`

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	elsewhere := t.TempDir()
	files := map[string]string{
		filepath.Join(dir, "pagertree.pass"):      "pt-secret\n",
		filepath.Join(dir, "secrets/ldap.pass"):   "ldap secret with spaces \r\n",
		filepath.Join(dir, "graph.secret"):        "graph-secret",
		filepath.Join(dir, "okta.token"):          "okta-token\n\n",
		filepath.Join(dir, "scim.token"):          "scim-token\n",
		filepath.Join(elsewhere, "oauth2.secret"): "oauth2-secret\n",
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := strings.Replace(secretsConfig, "ABSOLUTE", filepath.Join(elsewhere, "oauth2.secret"), 1)
	configPath := filepath.Join(dir, "ptsync.yaml")
	if err := os.WriteFile(configPath, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(configPath) // relative *_file paths are relative to the config's directory
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct{ key, got, want string }{
		{"pagertree.password", cfg.PagerTree.Password, "pt-secret"},
		{"ldap.bind_password", cfg.Sources[0].Settings.(*ldap.Config).BindPassword, "ldap secret with spaces "},
		{"ldap.bind_password_file", cfg.Sources[0].Settings.(*ldap.Config).BindPasswordFile, filepath.Join(dir, "secrets/ldap.pass")},
		{"msgraph.client_secret", cfg.Sources[1].Settings.(*msgraph.Config).ClientSecret, "graph-secret"},
		{"okta.api_token", cfg.Sources[2].Settings.(*okta.Config).APIToken, "okta-token"},
		{"scim.bearer_token", cfg.Sources[3].Settings.(*scim.Config).BearerToken, "scim-token"},
		{"scim.oauth2.client_secret", cfg.Sources[4].Settings.(*scim.Config).OAuth2.ClientSecret, "oauth2-secret"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, tc.got, tc.want)
		}
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := write("empty", "\n")
	big := write("big", strings.Repeat("x", config.MaxSecretSize+1))
	for _, tc := range []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "nope"), `ptsync.yaml:4: pagertree.password_file: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`},
		{"empty", empty, `ptsync.yaml:4: pagertree.password_file: "` + empty + `" is empty`},
		{"directory", dir, `ptsync.yaml:4: pagertree.password_file: cannot read "` + dir + `": not a regular file`},
		{"device", os.DevNull, `ptsync.yaml:4: pagertree.password_file: cannot read "/dev/null": not a regular file`},
		{"too big", big, `ptsync.yaml:4: pagertree.password_file: cannot read "` + big + `": larger than 64 KiB`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(minimal, "  password: hunter2", "  password_file: "+tc.file, 1)
			_, err := parse([]byte(doc), "ptsync.yaml", lookupIn(nil))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestSecretsStayOutOfProblems breaks every check near a secret and looks
// for the secrets in the messages.
func TestSecretsStayOutOfProblems(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("file-secret-4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PW": "env-secret-1"}
	_, err := parse([]byte(`
pagertree:
  url: "http://user:url-secret-2@"
  username: u
  password: ${PW}
  password_file: `+secretFile+`
sources:
  - name: corp
    type: ldap
    ldap:
      url: "https://cn=admin:url-secret-3@ldap.example.com"
      bind_password_file: `+secretFile+`
      ca_file: `+secretFile+`
  - name: idp
    type: scim
    scim: {base_url: "https://x:url-secret-5@:bad:port", bearer_token: env-secret-6, oauth2: {}}
teams: [{source: corp, match: "*"}]
`), "ptsync.yaml", lookupIn(env))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	for _, secret := range []string{"env-secret-1", "url-secret-2", "url-secret-3", "file-secret-4", "url-secret-5", "env-secret-6"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("problems reveal %s:\n%v", secret, err)
		}
	}
	if n := len(err.(config.Problems)); n < 6 {
		t.Errorf("only %d problems; the test should trip every secret-adjacent check:\n%v", n, err)
	}
}

func TestMergeKeysAndAliases(t *testing.T) {
	cfg := mustParse(t, `
x-ldap: &ldap
  url: ldap://127.0.0.1:389
  page_size: 100
  users: {base_dn: "ou=people,dc=example,dc=com"}
  groups: &groups {base_dn: "ou=groups,dc=example,dc=com", nested: false}
pagertree: {username: u, password: p}
sources:
  - name: east
    type: ldap
    ldap:
      <<: *ldap
      page_size: 200
  - name: west
    type: ldap
    ldap:
      <<: [{url: "ldap://10.0.0.1"}, *ldap]
      groups: *groups
teams:
  - &rule {source: east, match: "oncall-*", on_missing: empty}
  - {<<: *rule, source: west}
`, nil)
	east, west := cfg.Sources[0].Settings.(*ldap.Config), cfg.Sources[1].Settings.(*ldap.Config)
	for _, tc := range []struct {
		what      string
		got, want any
	}{
		{"east url from the anchor", east.URL, "ldap://127.0.0.1:389"},
		{"east page_size overrides the merge", east.PageSize, 200},
		{"east nested from the anchor", east.Groups.Nested, false},
		{"west url: the first merged mapping wins", west.URL, "ldap://10.0.0.1"},
		{"west page_size from the second", west.PageSize, 100},
		{"west groups from an alias", west.Groups.BaseDN, "ou=groups,dc=example,dc=com"},
		{"west groups keep their defaults", west.Groups.MaxDepth, 10},
		{"rule merged", cfg.Teams[1], config.TeamRule{Source: "west", Match: "oncall-*", Name: "{{ .Name }}", OnMissing: "empty"}},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.got, tc.want)
		}
	}
}

func TestNullKeepsDefault(t *testing.T) {
	cfg := mustParse(t, minimal+"schedule: ~\nlog:\n  level:\n", nil)
	if cfg.Schedule != "@every 15m" || cfg.Log.Level != "info" {
		t.Errorf("schedule %q, log.level %q: want the defaults for null values", cfg.Schedule, cfg.Log.Level)
	}
}

func TestProblemPositions(t *testing.T) {
	_, err := parse([]byte(minimal+"log:\n    level: loud\n"), "ptsync.yaml", lookupIn(nil))
	var problems config.Problems
	if !errors.As(err, &problems) || len(problems) != 1 {
		t.Fatalf("error %v, want one problem", err)
	}
	want := config.Problem{File: "ptsync.yaml", Line: 14, Column: 5, Key: "log.level", Message: `must be one of debug, info, warn, error, got "loud"`}
	if problems[0] != want {
		t.Errorf("problem %+v, want %+v", problems[0], want)
	}
}

func TestProblemError(t *testing.T) {
	for _, tc := range []struct {
		p    config.Problem
		want string
	}{
		{config.Problem{File: "config.yaml", Line: 12, Key: "sources[0].ldap.page_size", Message: "must be between 1 and 10000"}, "config.yaml:12: sources[0].ldap.page_size: must be between 1 and 10000"},
		{config.Problem{File: "config.yaml", Key: "sources", Message: "at least one source is required"}, "config.yaml: sources: at least one source is required"},
		{config.Problem{File: "config.yaml", Line: 3, Message: "invalid YAML: x"}, "config.yaml:3: invalid YAML: x"},
		{config.Problem{Line: 3, Key: "k", Message: "m"}, "line 3: k: m"},
		{config.Problem{Key: "k", Message: "m"}, "k: m"},
	} {
		if got := tc.p.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	both := config.Problems{{File: "a", Line: 1, Key: "x", Message: "m1"}, {File: "a", Line: 2, Key: "y", Message: "m2"}}
	if got, want := both.Error(), "a:1: x: m1\na:2: y: m2"; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

// TestValidateBuiltInCode checks a Config made without a file: problems
// then carry no file or line.
func TestValidateBuiltInCode(t *testing.T) {
	cfg := config.Default()
	cfg.PagerTree.Username, cfg.PagerTree.Password = "u", "p"
	config.SetTypes(&cfg, types)
	cfg.Sources = []config.Source{{Name: "corp", Type: "file", Settings: &file.Config{Path: "c.yaml"}}}
	cfg.Teams = []config.TeamRule{{Source: "corp", Match: "*", Name: "{{ .Name }}", OnMissing: config.OnMissingKeep}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	cfg.Sources = append(cfg.Sources, config.Source{Name: "dir", Type: "ldap", Settings: &ldap.Config{}})
	cfg.Safety.MaxSourceDropPercent = -1
	want := `sources[1].ldap.url: is required
sources[1].ldap.page_size: must be between 1 and 10000
sources[1].ldap.referrals: is required (one of fail, follow, ignore)
sources[1].ldap.timeout: must be greater than 0
sources[1].ldap.users.base_dn: is required
sources[1].ldap.users.filter: is required
sources[1].ldap.users.scope: is required (one of sub, one, base)
sources[1].ldap.users.id_attribute: is required
sources[1].ldap.users.email_attribute: is required
sources[1].ldap.users.name_attribute: is required
sources[1].ldap.groups.base_dn: is required
sources[1].ldap.groups.filter: is required
sources[1].ldap.groups.scope: is required (one of sub, one, base)
sources[1].ldap.groups.id_attribute: is required
sources[1].ldap.groups.name_attribute: is required
sources[1].ldap.groups.member_attribute: is required (one of member, uniqueMember, memberUid)
sources[1].ldap.groups.max_depth: must be at least 1
safety.max_source_drop_percent: must be between 0 and 100`
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant:\n%s", err, want)
	}
}

func TestSource(t *testing.T) {
	cfg := mustParse(t, minimal, nil)
	s, ok := cfg.Source("corp")
	if !ok || s != &cfg.Sources[0] {
		t.Errorf("Source(corp) = %p, %v; want &Sources[0]", s, ok)
	}
	if s, ok := cfg.Source("nope"); ok || s != nil {
		t.Errorf("Source(nope) = %v, %v; want nil, false", s, ok)
	}
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"@every 15m", true}, {"@hourly", true}, {"@daily", true}, {"*/15 * * * *", true}, {"0 3 * * mon-fri", true},
		{"0 */15 * * * *", false}, {"@every", false}, {"every 15m", false}, {"", false},
		// Valid fields, but no such date: February 30th, April 31st.
		{"0 0 30 2 *", false}, {"0 0 31 4 *", false}, {"0 0 29 2 *", true},
	} {
		if _, err := config.ParseSchedule(tc.spec); (err == nil) != tc.ok {
			t.Errorf("ParseSchedule(%q) error = %v, want ok=%v", tc.spec, err, tc.ok)
		}
	}
}

// TestHostileAliases checks that anchors which refer to themselves or
// expand exponentially end in a problem, not a hang or a crash.
func TestHostileAliases(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("x-0: &a0 {url: ldap://x}\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&bomb, "x-%d: &a%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	bomb.WriteString("sources: [{name: s, type: ldap, ldap: *a9}]\n")

	for _, tc := range []struct{ name, yaml, want string }{
		{"merge of itself", "pagertree: &p {<<: *p, username: u, password: p}\nsources: [{name: corp, type: file, file: {path: c.yaml}}]\nteams: [{source: corp, match: '*'}]\n", "f.yaml:1: pagertree.<<: merges a mapping into itself"},
		{"list holding itself", "pagertree: {username: u, password: p}\nsources: &s [*s]\nteams: [{source: corp, match: '*'}]\n", "f.yaml:2: sources[0]: must be a mapping, got a list\nf.yaml:3: teams[0].source: no source named \"corp\""},
		{"billion laughs", bomb.String(), "the document is too large once its aliases are expanded (over 200000 nodes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse([]byte(tc.yaml), "f.yaml", lookupIn(nil))
			var problems config.Problems
			if !errors.As(err, &problems) {
				t.Fatalf("error %v, want config.Problems", err)
			}
			// The bomb's line depends on where the budget ran out: match
			// its message alone.
			if err.Error() != tc.want && (len(problems) != 1 || problems[0].Message != tc.want) {
				t.Errorf("problems:\n%v\nwant:\n%s", err, tc.want)
			}
		})
	}
}

// TestLoadV4 reads a v4 file: the key from its *_file, and the admins of
// both levels as written.
func TestLoadV4(t *testing.T) {
	cfg, err := load("testdata/valid-v4.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	pt := cfg.PagerTree
	if pt.API != config.APIv4 || pt.APIKey != "secret-from-file" || pt.Username != "" {
		t.Errorf("pagertree = api %q, api_key %q, username %q; want v4, the key from secret.txt, no username", pt.API, pt.APIKey, pt.Username)
	}
	if !slices.Equal(pt.TeamAdmins, []string{"lead@example.com"}) {
		t.Errorf("team_admins = %q", pt.TeamAdmins)
	}
	r := cfg.Teams[1]
	if !slices.Equal(r.Admins, []string{"cto@example.com"}) || len(cfg.Teams[0].Admins) > 0 {
		t.Errorf("rules' admins = %+v, %+v", cfg.Teams[0], r)
	}
}
