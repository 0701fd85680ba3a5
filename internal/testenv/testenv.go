// Package testenv finds the real programs tests run against (slapd, samba,
// promtool). Outside CI a missing one skips the test with a hint; in CI
// (CI=true) it fails it, so a green run always means the peer was there.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// InCI reports whether the tests run in CI.
func InCI() bool { return os.Getenv("CI") == "true" }

// Need returns the path of program, failing the test in CI and skipping it
// elsewhere when the program is not installed.
func Need(t testing.TB, program string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		candidate := dir + "/" + program
		if fi, statErr := os.Stat(candidate); statErr == nil && fi.Mode()&0o111 != 0 {
			return candidate
		}
	}
	Missing(t, "%s is not installed (make test installs it with apt-get)", program)
	return ""
}

// Missing fails the test in CI and skips it elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Buffer collects the output of a process or logger that writes from
// other goroutines while a test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
