package slapd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

func TestReaderSizeLimit(t *testing.T) {
	pop := Population{Users: 1200, Groups: 3, MembersPerGroup: 10}
	var ldif bytes.Buffer
	if err := pop.WriteLDIF(&ldif); err != nil {
		t.Fatal(err)
	}
	s := Start(t, Options{LDIF: ldif.String()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tests := []struct {
		name     string
		args     []string
		wantExit int
		wantDNs  int
	}{
		{"plain search stops at the size limit", []string{"-b", PeopleDN, "(objectClass=inetOrgPerson)", "1.1"}, 4, SizeLimit},
		{"paged search returns every entry", []string{"-b", PeopleDN, "-E", "pr=200/noprompt", "(objectClass=inetOrgPerson)", "1.1"}, 0, pop.Users},
		{"groups are readable", []string{"-b", GroupsDN, "(objectClass=groupOfNames)", "1.1"}, 0, pop.Groups},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, code, err := s.LDAPSearch(ctx, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit {
				t.Fatalf("ldapsearch exit code = %d, want %d\n%s", code, tc.wantExit, out)
			}
			if tc.wantExit == 4 && !bytes.Contains(out, []byte("Size limit exceeded")) {
				t.Errorf("output lacks %q:\n%s", "Size limit exceeded", out)
			}
			if got := bytes.Count(out, []byte("\ndn: ")) + boolInt(bytes.HasPrefix(out, []byte("dn: "))); got != tc.wantDNs {
				t.Errorf("ldapsearch returned %d entries, want %d", got, tc.wantDNs)
			}
		})
	}
}

func TestAddWhileRunning(t *testing.T) {
	s := Start(t, Options{})
	s.Add(t, `dn: uid=late,`+PeopleDN+`
objectClass: inetOrgPerson
uid: late
cn: Late
sn: L
mail: late@example.com
`)
	out, code, err := s.LDAPSearch(context.Background(), "-b", PeopleDN, "(uid=late)", "mail")
	if err != nil || code != 0 {
		t.Fatalf("ldapsearch: exit %d, %v\n%s", code, err, out)
	}
	if !bytes.Contains(out, []byte("mail: late@example.com")) {
		t.Errorf("the added entry is not found:\n%s", out)
	}
}

func TestTLS(t *testing.T) {
	s := Start(t, Options{})
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	conf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}

	bind := func(t *testing.T, conn *goldap.Conn) {
		t.Helper()
		defer conn.Close()
		if err := conn.Bind(ReaderDN, ReaderPassword); err != nil {
			t.Fatalf("bind: %v", err)
		}
		if _, ok := conn.TLSConnectionState(); !ok {
			t.Fatal("the connection is not TLS")
		}
	}
	t.Run("ldaps", func(t *testing.T) {
		conn, err := goldap.DialURL(s.LDAPSURL, goldap.DialWithTLSConfig(conf))
		if err != nil {
			t.Fatal(err)
		}
		bind(t, conn)
	})
	t.Run("starttls", func(t *testing.T) {
		conn, err := goldap.DialURL(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.StartTLS(conf); err != nil {
			conn.Close()
			t.Fatal(err)
		}
		bind(t, conn)
	})
}

func TestStopEndsSlapd(t *testing.T) {
	Require(t)
	s, err := Launch(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.cmd.ProcessState == nil {
		t.Fatal("Stop returned before slapd exited")
	}
	if _, err := goldap.DialURL(s.URL); err == nil {
		t.Fatalf("%s still accepts connections after Stop", s.URL)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReferralObject checks that a referral object turns into a search
// continuation reference in a subtree search that holds it, and into
// nothing else: the entries under it stay on the referred server.
func TestReferralObject(t *testing.T) {
	east := "ou=east," + PeopleDN
	referred := Start(t, Options{LDIF: "dn: " + east + "\nobjectClass: organizationalUnit\nou: east\n\n" +
		"dn: uid=e1," + east + "\nobjectClass: inetOrgPerson\nuid: e1\ncn: E\nsn: E\nmail: e1@example.com\n"})
	s := Start(t, Options{})
	s.AddReferral(t, east, referred.URL+"/"+east)

	conn, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(ReaderDN, ReaderPassword); err != nil {
		t.Fatal(err)
	}
	res, err := conn.Search(goldap.NewSearchRequest(PeopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	var dns []string
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	if want := []string{PeopleDN}; !slices.Equal(dns, want) {
		t.Errorf("entries %q, want only %q", dns, want)
	}
	if want := []string{referred.URL + "/" + east + "??sub"}; !slices.Equal(res.Referrals, want) {
		t.Errorf("references %q, want %q", res.Referrals, want)
	}
}

func TestKillDropsConnections(t *testing.T) {
	s := Start(t, Options{})
	conn, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(ReaderDN, ReaderPassword); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("slapd ended with %v, want SIGKILL", s.cmd.ProcessState)
	}
	if err := conn.Bind(ReaderDN, ReaderPassword); err == nil {
		t.Error("a bind on a connection to the killed slapd succeeded")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop after Kill: %v", err)
	}
}
