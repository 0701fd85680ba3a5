// Package slapd runs a throwaway OpenLDAP server for tests and benchmarks:
// Debian's slapd on free loopback ports in a temporary directory, with a
// generated slapd.conf, an LDIF loaded with slapadd, a read account whose
// plain searches are capped at 500 entries but whose paged searches are
// not, a fresh CA and server certificate for LDAPS and StartTLS, and, when
// asked, the syncprov overlay (RFC 4533 content synchronisation).
package slapd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptsync/ptsync/internal/testenv"
)

// Binaries and schema locations of Debian's slapd and ldap-utils packages.
const (
	SlapdPath   = "/usr/sbin/slapd"
	SlapaddPath = "/usr/sbin/slapadd"
	SchemaDir   = "/etc/ldap/schema"
	ModuleDir   = "/usr/lib/ldap"
)

// The directory every server holds before any LDIF is loaded.
const (
	Suffix   = "dc=example,dc=com"
	PeopleDN = "ou=people," + Suffix
	GroupsDN = "ou=groups," + Suffix

	RootDN       = "cn=admin," + Suffix
	RootPassword = "root-secret"
	// ReaderDN is the account tests bind as: it may read everything, its
	// plain searches stop at SizeLimit entries and its paged ones do not.
	ReaderDN       = "cn=reader," + Suffix
	ReaderPassword = "reader-secret"
	// SizeLimit caps the reader's searches that are not paged.
	SizeLimit = 500
)

// startTimeout bounds how long slapd may take to accept connections.
const startTimeout = 20 * time.Second

// Options says what to load before the server starts.
type Options struct {
	// LDIF is loaded with slapadd after the base entries (the suffix,
	// ou=people, ou=groups and the reader).
	LDIF string
	// LDIFFile is a file loaded the same way, after LDIF.
	LDIFFile string
	// Access holds access directives (slapd.access(5)), each a whole
	// "access to ..." clause, put before the defaults that let the reader
	// read everything: a test hides attributes from the reader with them.
	Access []string
	// SyncProv puts the syncprov overlay on the database, so that the
	// server answers RFC 4533 sync searches (slapo-syncprov(5)).
	SyncProv bool
	// SessionLog, with SyncProv, is how many deletions syncprov keeps
	// (syncprov-sessionlog) to tell a resumed sync search which entries
	// went; 0 keeps none, and such a search gets a present phase instead.
	SessionLog int
}

// Server is one running slapd.
type Server struct {
	// URL is the plain listener (StartTLS is offered on it).
	URL string
	// LDAPSURL is the TLS listener.
	LDAPSURL string
	// CAFile holds the PEM certificate of the CA that signed the server's.
	CAFile string
	// Dir holds the configuration, the database, the certificates and the log.
	Dir string

	cmd      *exec.Cmd
	done     chan struct{} // closed when slapd has exited
	log      *testenv.Buffer
	stopOnce sync.Once
	stopErr  error
}

// Require skips the test when slapd or ldap-utils is not installed, or
// fails it in CI, where a missing peer must not pass as a skip (testenv.Missing).
func Require(t testing.TB) {
	t.Helper()
	for _, bin := range []string{SlapdPath, SlapaddPath, "ldapadd", "ldapsearch"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Missing(t, "%s is missing (make test installs slapd and ldap-utils): %v", bin, err)
		}
	}
}

// Start runs a server for the test and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Require(t)
	if opts.SyncProv {
		if _, err := os.Stat(filepath.Join(ModuleDir, "syncprov.la")); err != nil {
			testenv.Missing(t, "the syncprov module is missing (Debian's slapd package has it): %v", err)
		}
	}
	s, err := Launch(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop slapd: %v", err)
		}
	})
	return s
}

// Launch writes the configuration and certificates into dir, loads the
// LDIF and starts slapd in the foreground. The caller must call Stop.
func Launch(dir string, opts Options) (*Server, error) {
	s := &Server{Dir: dir, CAFile: filepath.Join(dir, "ca.pem")}
	if err := writeCertificates(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(config(dir, opts)), 0o600); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, "base.ldif")
	if err := os.WriteFile(base, []byte(baseLDIF+opts.LDIF), 0o600); err != nil {
		return nil, err
	}
	if err := slapadd(conf, base); err != nil {
		return nil, err
	}
	if opts.LDIFFile != "" {
		if err := slapadd(conf, opts.LDIFFile); err != nil {
			return nil, err
		}
	}
	// Another process may take a port between choosing it and slapd
	// binding it; try again with new ports when that happens.
	var err error
	for range 3 {
		if err = s.start(conf); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func slapadd(conf, ldif string) error {
	out, err := exec.Command(SlapaddPath, "-q", "-f", conf, "-l", ldif).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slapadd -l %s: %w\n%s", ldif, err, out)
	}
	return nil
}

func (s *Server) start(conf string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ports[0])
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ports[1])
	s.log = &testenv.Buffer{}
	// -d keeps slapd in the foreground, so it is our child to stop.
	cmd := exec.Command(SlapdPath, "-f", conf, "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// If the test binary dies without cleaning up, slapd goes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start slapd: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ports); err != nil {
		_ = cmd.Process.Kill()
		<-s.done
		return err
	}
	return nil
}

func (s *Server) waitReady(ports []int) error {
	deadline := time.Now().Add(startTimeout)
	for _, port := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-s.done:
				return fmt.Errorf("slapd exited before listening on %s: %s\n%s", addr, s.cmd.ProcessState, s.log.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("slapd does not listen on %s after %s:\n%s", addr, startTimeout, s.log.String())
			}
		}
	}
	return nil
}

// Stop ends slapd (SIGTERM, then SIGKILL if it lingers) and waits for it.
// Pid is slapd's process id, for benchmarks that account its CPU time.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = fmt.Errorf("slapd ignored SIGTERM for 10s and was killed:\n%s", s.log.String())
		}
	})
	return s.stopErr
}

// Kill ends slapd at once with SIGKILL, as a crash or an OOM kill would,
// and waits for it: its connections drop without a word.
func (s *Server) Kill() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// AddReferral adds a referral object (RFC 3296) at dn whose ref is url,
// bound as the rootdn with the ManageDsaIT control. dn's first RDN must be
// a single attribute (extensibleObject lets it be any). A search whose
// scope holds dn then gets a search continuation reference to url instead
// of the entries under it.
func (s *Server) AddReferral(t testing.TB, dn, url string) {
	t.Helper()
	rdn, _, _ := strings.Cut(dn, ",")
	attr, value, ok := strings.Cut(rdn, "=")
	if !ok || strings.Contains(rdn, "+") {
		t.Fatalf("AddReferral: %q does not start with a single-valued RDN", dn)
	}
	ldif := fmt.Sprintf("dn: %s\nobjectClass: referral\nobjectClass: extensibleObject\n%s: %s\nref: %s\n", dn, attr, value, url)
	s.add(t, ldif, "-M")
}

// Add loads ldif into the running server with ldapadd, bound as the rootdn.
func (s *Server) Add(t testing.TB, ldif string) {
	t.Helper()
	s.add(t, ldif)
}

// Modify applies ldif, whose records say their changetype (add, modify,
// delete, modrdn), with ldapmodify bound as the rootdn.
func (s *Server) Modify(t testing.TB, ldif string) {
	t.Helper()
	s.run(t, "ldapmodify", ldif)
}

func (s *Server) add(t testing.TB, ldif string, flags ...string) {
	t.Helper()
	s.run(t, "ldapadd", ldif, flags...)
}

func (s *Server) run(t testing.TB, program, ldif string, flags ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"-x", "-H", s.URL, "-D", RootDN, "-w", RootPassword}, flags...)
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", program, err, out)
	}
}

// LDAPSearch runs ldapsearch against the plain listener bound as the
// reader, with args after the bind options (-b, -E, the filter, ...). It
// returns the output and ldapsearch's exit code; err is only for failures
// to run it at all.
func (s *Server) LDAPSearch(ctx context.Context, args ...string) (out []byte, exitCode int, err error) {
	full := append([]string{"-x", "-LLL", "-H", s.URL, "-D", ReaderDN, "-w", ReaderPassword}, args...)
	out, err = exec.CommandContext(ctx, "ldapsearch", full...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out, exit.ExitCode(), nil
	}
	return out, 0, err
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func config(dir string, opts Options) string {
	var b strings.Builder
	for _, schema := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s/%s.schema\n", SchemaDir, schema)
	}
	fmt.Fprintf(&b, `pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath %[2]s
moduleload back_mdb
%[9]sTLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server-key.pem

database mdb
maxsize 4294967296
suffix "%[3]s"
rootdn "%[4]s"
rootpw %[5]s
directory %[1]s/db
index objectClass eq
%[10]s
# The reader's plain searches stop at %[7]d entries; its paged searches may
# return every entry (slapd.conf(5), size.prtotal).
limits dn.exact="%[6]s" size.soft=%[7]d size.hard=%[7]d size.prtotal=unlimited

access to attrs=userPassword
	by anonymous auth
	by * none
%[8]saccess to *
	by dn.exact="%[6]s" read
	by * none
`, dir, ModuleDir, Suffix, RootDN, RootPassword, ReaderDN, SizeLimit, accessLines(opts.Access), syncProvModule(opts), syncProvOverlay(opts))
	return b.String()
}

func syncProvModule(opts Options) string {
	if !opts.SyncProv {
		return ""
	}
	return "moduleload syncprov\n"
}

// syncProvOverlay configures syncprov as its manual page advises: the
// indexes its searches use, and the session log when asked for.
func syncProvOverlay(opts Options) string {
	if !opts.SyncProv {
		return ""
	}
	conf := "index entryCSN,entryUUID eq\noverlay syncprov\n"
	if opts.SessionLog > 0 {
		conf += fmt.Sprintf("syncprov-sessionlog %d\n", opts.SessionLog)
	}
	return conf
}

// accessLines renders extra access directives, one a line.
func accessLines(access []string) string {
	var b strings.Builder
	for _, a := range access {
		b.WriteString(strings.TrimSpace(a) + "\n")
	}
	return b.String()
}

const baseLDIF = `dn: ` + Suffix + `
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ` + PeopleDN + `
objectClass: organizationalUnit
ou: people

dn: ` + GroupsDN + `
objectClass: organizationalUnit
ou: groups

dn: ` + ReaderDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: ` + ReaderPassword + `

`
