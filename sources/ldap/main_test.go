package ldap

import (
	"fmt"
	"os"
	"testing"

	"github.com/ptsync/ptsync/internal/testenv/samba"
)

// TestMain stops the directory servers tests share across the package
// once every test is done. A harness with a shared server adds its stop
// call here.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := samba.StopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "stop the shared samba DC: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
