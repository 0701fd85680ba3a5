// Package samba runs a real Active Directory domain controller — Debian's
// samba-ad-dc — for tests. It provisions a fresh domain into a temporary
// directory, serves LDAP on 127.0.0.1:389 only (no DNS, NetBIOS, Kerberos,
// SMB or replication services, so nothing reaches past loopback) and
// creates a service account for the code under test to bind as.
//
// Samba cannot listen on another port, so at most one DC runs on the
// machine: Start and Shared take a lock file that also serialises separate
// test binaries (go test runs packages in parallel).
package samba

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/internal/testenv"
)

// The provisioned domain.
const (
	Realm  = "PTSYNC.TEST"
	Domain = "PTSYNC"
	BaseDN = "DC=ptsync,DC=test"

	// Addr is where the DC serves LDAP; Samba has no setting to move it.
	Addr = "127.0.0.1:389"
	URL  = "ldap://" + Addr

	// ServiceAccount is the sAMAccountName of the read account.
	ServiceAccount = "ptsync-reader"
)

// lockPath serialises DCs across test binaries of every package.
var lockPath = filepath.Join(os.TempDir(), "ptsync-samba.lock")

const (
	// readyTimeout bounds how long a freshly started samba may take to
	// accept a bind; startup normally takes a few seconds.
	readyTimeout = 90 * time.Second
	// portTimeout is how long a busy port 389 may take to free up: a DC of
	// a test binary that just ended shuts down on its own.
	portTimeout = 15 * time.Second
	stopTimeout = 15 * time.Second
)

// DC is one running domain controller.
type DC struct {
	URL    string
	BaseDN string
	// AdminDN and AdminPassword are the domain Administrator, for setting
	// up test data. Code under test binds as BindDN instead.
	AdminDN       string
	AdminPassword string
	// BindDN and BindPassword are the service account (a plain domain
	// user made with samba-tool user create).
	BindDN       string
	BindPassword string

	dir      string
	conf     string
	sambaBin string
	toolBin  string
	proc     *exec.Cmd
	stdin    *os.File // samba -i exits when its stdin closes: our lifeline
	exited   chan struct{}
	waitErr  error
	lockFile *os.File
}

// running keeps to one DC per process: a second would deadlock on the
// lock file this process already holds.
var running sync.Mutex

// Start provisions and starts a DC that is stopped and removed when t ends.
// Tests that can share one should use Shared: provisioning is the slow part.
func Start(t testing.TB) *DC {
	t.Helper()
	samba, tool := need(t)
	dc, err := start(samba, tool)
	if err != nil {
		t.Fatalf("samba: %v", err)
	}
	t.Cleanup(func() {
		if err := dc.Stop(); err != nil {
			t.Errorf("samba: %v", err)
		}
	})
	return dc
}

var shared struct {
	once sync.Once
	dc   *DC
	err  error
}

// Shared returns the process's shared DC, starting it on first use. Tests
// sharing it must keep their entries apart (each its own OU). The package's
// TestMain must call StopShared after m.Run: nothing else stops it before
// the process exits (samba then exits by itself, but its directory stays).
func Shared(t testing.TB) *DC {
	t.Helper()
	samba, tool := need(t)
	shared.once.Do(func() { shared.dc, shared.err = start(samba, tool) })
	if shared.err != nil {
		t.Fatalf("samba: %v", shared.err)
	}
	return shared.dc
}

// StopShared stops the shared DC if one was started. Call it from TestMain.
func StopShared() error {
	if shared.dc == nil {
		return nil
	}
	return shared.dc.Stop()
}

func need(t testing.TB) (samba, tool string) {
	t.Helper()
	samba = testenv.Need(t, "samba")
	tool = testenv.Need(t, "samba-tool")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "samba: an AD DC must run as root (uid %d)", os.Geteuid())
	}
	return samba, tool
}

func start(sambaBin, toolBin string) (*DC, error) {
	if !running.TryLock() {
		return nil, errors.New("a DC is already running in this process; use Shared")
	}
	lock, err := lockMachine()
	if err != nil {
		running.Unlock()
		return nil, err
	}
	dir, err := prepareDir()
	if err != nil {
		unlockMachine(lock)
		running.Unlock()
		return nil, err
	}
	dc := &DC{
		URL:           URL,
		BaseDN:        BaseDN,
		AdminDN:       "CN=Administrator,CN=Users," + BaseDN,
		AdminPassword: newPassword(),
		BindDN:        "CN=" + ServiceAccount + ",CN=Users," + BaseDN,
		BindPassword:  newPassword(),
		dir:           dir,
		conf:          filepath.Join(dir, "etc", "smb.conf"),
		sambaBin:      sambaBin,
		toolBin:       toolBin,
		lockFile:      lock,
	}
	if err := dc.boot(); err != nil {
		if stopErr := dc.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, err
	}
	return dc, nil
}

func (dc *DC) boot() error {
	if err := dc.provision(); err != nil {
		return err
	}
	if _, err := dc.tool("user", "create", ServiceAccount, dc.BindPassword,
		"--description=ptsync test read account"); err != nil {
		return err
	}
	if err := dc.run(); err != nil {
		return err
	}
	return dc.waitReady()
}

const dirPrefix = "ptsync-samba-"

// prepareDir checks that port 389 is free and makes the DC's directory.
// The caller holds the machine lock, so directories of earlier DCs are
// left from runs that were killed: they are removed first.
func prepareDir() (string, error) {
	if err := waitPortFree(Addr, portTimeout); err != nil {
		return "", err
	}
	stale, err := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	if err != nil {
		return "", fmt.Errorf("find stale DC directories: %w", err)
	}
	for _, dir := range stale {
		if err := os.RemoveAll(dir); err != nil {
			return "", fmt.Errorf("remove the stale DC directory %s: %w", dir, err)
		}
	}
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	return dir, nil
}

// provision creates the domain and rewrites its smb.conf so that samba
// serves LDAP only, on loopback, with simple binds over plain LDAP.
func (dc *DC) provision() error {
	_, err := dc.command(dc.toolBin, "domain", "provision",
		"--server-role=dc",
		"--dns-backend=NONE",
		"--use-rfc2307",
		"--realm="+Realm,
		"--domain="+Domain,
		"--host-ip=127.0.0.1",
		"--adminpass="+dc.AdminPassword,
		"--targetdir="+dc.dir,
		"--option=interfaces=lo",
		"--option=bind interfaces only=yes",
		"--option=xattr_tdb:file="+filepath.Join(dc.dir, "xattr.tdb"),
		"--option=vfs objects=dfs_samba4 acl_xattr xattr_tdb",
	)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	return editGlobal(dc.conf, map[string]string{
		// Only the LDAP server: no kdc, dns update, nbt, ntp or replication
		// task that could try to talk to anything.
		"server services":                 "ldap",
		"disable netbios":                 "yes",
		"ldap server require strong auth": "no",
		// No certificate to generate at start-up; tests use plain LDAP.
		"tls enabled":  "no",
		"log file":     filepath.Join(dc.dir, "log.%m"),
		"panic action": "",
	})
}

// editGlobal sets keys in the [global] section of an smb.conf, replacing
// the lines provisioning wrote for them.
func editGlobal(path string, set map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	inGlobal, inserted := false, false
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			inGlobal = strings.EqualFold(trimmed, "[global]")
			out = append(out, line)
			if inGlobal && !inserted {
				for _, k := range slices.Sorted(maps.Keys(set)) {
					out = append(out, "\t"+k+" = "+set[k])
				}
				inserted = true
			}
			continue
		}
		if inGlobal {
			if key, _, ok := strings.Cut(trimmed, "="); ok {
				if _, replaced := set[strings.ToLower(strings.TrimSpace(key))]; replaced {
					continue
				}
			}
		}
		out = append(out, line)
	}
	if !inserted {
		return fmt.Errorf("%s has no [global] section", path)
	}
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (dc *DC) run() error {
	logFile, err := os.Create(filepath.Join(dc.dir, "samba.out"))
	if err != nil {
		return fmt.Errorf("samba log: %w", err)
	}
	defer logFile.Close()
	stdinRead, stdinWrite, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("samba stdin: %w", err)
	}
	defer stdinRead.Close()
	// -i keeps it in the foreground and makes it exit when stdin closes, so
	// a test binary that dies (timeout, kill) takes its DC with it.
	// -M single: one process, nothing forked that could outlive it.
	cmd := exec.Command(dc.sambaBin, "-i", "-M", "single", "-s", dc.conf)
	cmd.Env = dc.env()
	cmd.Stdin = stdinRead
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		stdinWrite.Close()
		return fmt.Errorf("start samba: %w", err)
	}
	dc.proc, dc.stdin, dc.exited = cmd, stdinWrite, make(chan struct{})
	go func() {
		dc.waitErr = cmd.Wait()
		close(dc.exited)
	}()
	return nil
}

// waitReady polls until the service account can bind, samba exits or the
// deadline passes.
func (dc *DC) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-dc.exited:
			return fmt.Errorf("samba exited during start-up (%v): %s", dc.waitErr, dc.logTail())
		default:
		}
		lastErr = dc.tryBind(dc.BindDN, dc.BindPassword)
		if lastErr == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("samba not ready on %s after %s (last bind error: %v): %s", Addr, readyTimeout, lastErr, dc.logTail())
}

func (dc *DC) tryBind(dn, password string) error {
	conn, err := ldap.DialURL(dc.URL, ldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Bind(dn, password)
}

// Stop stops samba, removes its directory and releases the machine lock.
// It is safe to call more than once.
func (dc *DC) Stop() error {
	var errs []error
	if dc.proc != nil {
		dc.stdin.Close()
		select {
		case <-dc.exited:
		case <-time.After(stopTimeout):
			// The whole group: samba may have forked despite -M single.
			if err := syscall.Kill(-dc.proc.Process.Pid, syscall.SIGKILL); err != nil {
				errs = append(errs, fmt.Errorf("kill samba: %w", err))
			}
			<-dc.exited
		}
		dc.proc = nil
	}
	if dc.dir != "" {
		if err := os.RemoveAll(dc.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", dc.dir, err))
		}
		dc.dir = ""
	}
	if dc.lockFile != nil {
		unlockMachine(dc.lockFile)
		dc.lockFile = nil
		running.Unlock()
	}
	return errors.Join(errs...)
}

// Admin returns a connection bound as the domain Administrator, closed when
// t ends.
func (dc *DC) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(dc.URL)
	if err != nil {
		t.Fatalf("samba: dial %s: %v", dc.URL, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Bind(dc.AdminDN, dc.AdminPassword); err != nil {
		t.Fatalf("samba: bind as %s: %v", dc.AdminDN, err)
	}
	return conn
}

// Tool runs samba-tool against the DC's database (for example "user",
// "disable", "alice") and returns its standard output.
func (dc *DC) Tool(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dc.tool(args...)
	if err != nil {
		t.Fatalf("samba: %v", err)
	}
	return out
}

func (dc *DC) tool(args ...string) (string, error) {
	return dc.command(dc.toolBin, append(args, "--configfile="+dc.conf)...)
}

// command runs a samba program to completion. Its arguments may hold
// passwords, so errors name only the subcommand.
func (dc *DC) command(program string, args ...string) (string, error) {
	cmd := exec.Command(program, args...)
	cmd.Env = dc.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		what := filepath.Base(program)
		if len(args) >= 2 {
			what += " " + args[0] + " " + args[1]
		}
		return "", fmt.Errorf("%s: %w: %s", what, err, lastLines(stderr.String(), 15))
	}
	return stdout.String(), nil
}

func (dc *DC) env() []string {
	// TDB_NO_FSYNC: a throwaway database needs no durability, and fsync
	// per write makes loading thousands of entries several times slower.
	// KRB5_CONFIG: never read the machine's Kerberos configuration.
	return append(os.Environ(), "TDB_NO_FSYNC=1", "KRB5_CONFIG="+filepath.Join(dc.dir, "private", "krb5.conf"))
}

func (dc *DC) logTail() string {
	data, err := os.ReadFile(filepath.Join(dc.dir, "samba.out"))
	if err != nil {
		return "(no samba output: " + err.Error() + ")"
	}
	return lastLines(string(data), 20)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lockMachine blocks until no other process runs a DC through this package.
func lockMachine() (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return f, nil
}

func unlockMachine(f *os.File) {
	// Closing the file drops the flock.
	f.Close()
}

// waitPortFree waits for addr to stop accepting connections. Holding the
// machine lock, a listener there is either a DC still shutting down or
// something foreign (a samba left from a run killed hard, a system samba).
func waitPortFree(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is already in use, so a test DC cannot start: stop whatever listens there "+
				"(see `ss -ltnp 'sport = :%s'`; a leftover `samba -i -M single -s %s*/etc/smb.conf` "+
				"from a killed test run can be stopped with kill)", addr, portOf(addr), filepath.Join(os.TempDir(), dirPrefix))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return port
}

// newPassword returns a random password that meets AD's default
// complexity rules: at least 7 long, with upper case, lower case, digits
// and a symbol.
func newPassword() string {
	return "Pt-" + rand.Text()
}
