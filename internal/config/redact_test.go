package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/sources/ldap"
	"github.com/ptsync/ptsync/sources/scim"
)

// TestWithoutSecrets: every secret, inline or read from its *_file, is
// blank in the copy, in the top-level schema and in the sources' blocks
// (nested ones included), everything else is kept, and the original is
// untouched.
func TestWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "ldap.pass")
	if err := os.WriteFile(secretFile, []byte("ldap-secret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := []byte(`pagertree:
  username: ptsync@example.com
  password: pt-secret
sources:
  - name: corp
    type: ldap
    ldap:
      url: ldaps://ldap.example.com
      bind_dn: cn=ptsync,dc=example,dc=com
      bind_password_file: ldap.pass
      users: {base_dn: "ou=people,dc=example,dc=com"}
      groups: {base_dn: "ou=groups,dc=example,dc=com"}
  - name: idp
    type: scim
    scim:
      base_url: https://idp.example.com/scim/v2
      oauth2:
        token_url: https://idp.example.com/oauth2/token
        client_id: ptsync
        client_secret: scim-secret
teams:
  - source: corp
    match: "oncall-*"
`)
	cfg, err := parse(data, filepath.Join(dir, "ptsync.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := cfg.WithoutSecrets()

	dump := fmt.Sprintf("%+v %+v %+v", *cp, *cp.Sources[0].Settings.(*ldap.Config), *cp.Sources[1].Settings.(*scim.Config).OAuth2)
	for _, secret := range []string{"pt-secret", "ldap-secret-from-file", "ldap.pass", "scim-secret"} {
		if strings.Contains(dump, secret) {
			t.Errorf("the copy still holds %q: %s", secret, dump)
		}
	}
	l, s := cp.Sources[0].Settings.(*ldap.Config), cp.Sources[1].Settings.(*scim.Config)
	if cp.PagerTree.Username != "ptsync@example.com" || l.BindDN != "cn=ptsync,dc=example,dc=com" || s.OAuth2.ClientID != "ptsync" || cp.Teams[0].Match != "oncall-*" {
		t.Errorf("the copy lost what is not secret: %+v %+v %+v", cp.PagerTree, l, s.OAuth2)
	}

	origLDAP, origSCIM := cfg.Sources[0].Settings.(*ldap.Config), cfg.Sources[1].Settings.(*scim.Config)
	if cfg.PagerTree.Password != "pt-secret" || origLDAP.BindPassword != "ldap-secret-from-file" || origLDAP.BindPasswordFile != secretFile || origSCIM.OAuth2.ClientSecret != "scim-secret" {
		t.Errorf("WithoutSecrets changed the original: %q %q %q %q", cfg.PagerTree.Password, origLDAP.BindPassword, origLDAP.BindPasswordFile, origSCIM.OAuth2.ClientSecret)
	}
	if origLDAP == l || origSCIM.OAuth2 == s.OAuth2 {
		t.Error("the copy shares a source block with the original")
	}
}
