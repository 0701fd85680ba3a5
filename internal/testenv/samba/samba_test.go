package samba

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestSambaDC(t *testing.T) {
	// What a test binary killed mid-run leaves behind.
	stale, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	dc := Start(t)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale directory %s is still there (stat: %v)", stale, err)
	}

	t.Run("service account binds, a wrong password does not", func(t *testing.T) {
		if err := dc.tryBind(dc.BindDN, dc.BindPassword); err != nil {
			t.Fatalf("bind as %s: %v", dc.BindDN, err)
		}
		err := dc.tryBind(dc.BindDN, dc.BindPassword+"x")
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("bind with a wrong password: got %v, want invalid credentials (49)", err)
		}
	})

	t.Run("samba reads the edited configuration", func(t *testing.T) {
		for param, want := range map[string]string{
			"server services":                 "ldap",
			"interfaces":                      "lo",
			"bind interfaces only":            "Yes",
			"ldap server require strong auth": "No",
			"disable netbios":                 "Yes",
		} {
			got := strings.TrimSpace(dc.Tool(t, "testparm", "--suppress-prompt", "--parameter-name="+param))
			if got != want {
				t.Errorf("testparm %q = %q, want %q", param, got, want)
			}
		}
	})

	t.Run("administrator adds an entry the service account reads", func(t *testing.T) {
		ou := "OU=harness," + dc.BaseDN
		add := ldap.NewAddRequest(ou, nil)
		add.Attribute("objectClass", []string{"organizationalUnit"})
		if err := dc.Admin(t).Add(add); err != nil {
			t.Fatalf("add %s: %v", ou, err)
		}
		conn, err := ldap.DialURL(dc.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.Bind(dc.BindDN, dc.BindPassword); err != nil {
			t.Fatal(err)
		}
		res, err := conn.Search(ldap.NewSearchRequest(ou, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=organizationalUnit)", []string{"ou"}, nil))
		if err != nil {
			t.Fatalf("search %s: %v", ou, err)
		}
		if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("ou") != "harness" {
			t.Fatalf("search %s: got %d entries, want the OU named harness", ou, len(res.Entries))
		}
	})

	t.Run("samba-tool sees the service account", func(t *testing.T) {
		out := dc.Tool(t, "user", "show", ServiceAccount, "--attributes=distinguishedName")
		if !strings.Contains(out, "distinguishedName: "+dc.BindDN) {
			t.Fatalf("samba-tool user show %s:\n%s\nwant distinguishedName %s", ServiceAccount, out, dc.BindDN)
		}
	})

	t.Run("a second DC in the same process is refused, not deadlocked", func(t *testing.T) {
		second, err := start(dc.sambaBin, dc.toolBin)
		if err == nil {
			second.Stop()
			t.Fatal("a second DC started while one runs")
		}
		if !strings.Contains(err.Error(), "already running in this process") {
			t.Fatalf("got %v, want the already-running error", err)
		}
	})

	dir := dc.dir
	if err := dc.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after Stop (stat: %v)", dir, err)
	}
	if err := waitPortFree(Addr, 0); err != nil {
		t.Errorf("after Stop: %v", err)
	}
	if err := dc.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestSambaPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	err = waitPortFree(addr, 0)
	if err == nil || !strings.Contains(err.Error(), addr+" is already in use") {
		t.Fatalf("busy port: got %v, want an already-in-use error naming %s", err, addr)
	}
	ln.Close()
	if err := waitPortFree(addr, 0); err != nil {
		t.Fatalf("freed port: %v", err)
	}
}

func TestSambaEditGlobal(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    string
		wantErr bool
	}{
		{
			name: "replaces and adds keys in global only",
			conf: "# Global parameters\n[global]\n\tserver services = s3fs, rpc, ldap\n\trealm = X\n\n[netlogon]\n\tserver services = kept\n",
			want: "# Global parameters\n[global]\n\tlog file = /d/log\n\tserver services = ldap\n\trealm = X\n\n[netlogon]\n\tserver services = kept\n",
		},
		{
			name:    "no global section",
			conf:    "[homes]\n\tpath = /x\n",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "smb.conf")
			if err := os.WriteFile(path, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			err := editGlobal(path, map[string]string{"server services": "ldap", "log file": "/d/log"})
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
