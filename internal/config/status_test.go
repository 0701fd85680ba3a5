package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
)

// A bcrypt hash of "correct horse" (cost 4).
const statusHash = "$2a$04$JiF0Ijdsdvxki3FCjmv14OSEHgHtvDC.stRu4QmJXSsL8X8XoPJI."

// TestStatusExposure is the status page's rule: without auth, only a
// loopback metrics.listen; basic auth needs a username and a bcrypt hash.
func TestStatusExposure(t *testing.T) {
	tests := []struct {
		name, extra string
		problem     string // "" for none; else a substring of the error
	}{
		{"the default: loopback, no auth", "state: {dir: /var/lib/ptsync}\n", ""},
		{"every interface without auth", "state: {dir: /var/lib/ptsync}\nmetrics: {listen: \":9464\"}\n",
			`status.auth: is none, and metrics.listen :9464 is not a loopback address: the status page would be open to anyone who can reach it. Set status.auth: basic with status.username and status.password_hash, or status.enabled: false`},
		{"0.0.0.0 without auth", "state: {dir: /var/lib/ptsync}\nmetrics: {listen: 0.0.0.0:9464}\n", "is not a loopback address"},
		{"a host name without auth", "state: {dir: /var/lib/ptsync}\nmetrics: {listen: \"ptsync.example.com:9464\"}\n", "is not a loopback address"},
		{"every interface, page off", "state: {dir: /var/lib/ptsync}\nmetrics: {listen: \":9464\"}\nstatus: {enabled: false}\n", ""},
		{"every interface, no state (no page)", "metrics: {listen: \":9464\"}\n", ""},
		{"every interface with basic auth", "state: {dir: /var/lib/ptsync}\nmetrics: {listen: \":9464\"}\nstatus: {auth: basic, username: oncall, password_hash: \"" + statusHash + "\"}\n", ""},
		{"basic without a username", "status: {auth: basic, password_hash: \"" + statusHash + "\"}\n", "status.username: is required"},
		{"basic with a colon in the username", "status: {auth: basic, username: \"a:b\", password_hash: \"" + statusHash + "\"}\n", "status.username: must not contain ':'"},
		{"basic without a hash", "status: {auth: basic, username: oncall}\n", "status.password_hash: is required"},
		{"basic with the password, not a hash", "status: {auth: basic, username: oncall, password_hash: correct horse}\n", "status.password_hash: must be a bcrypt hash"},
		{"an unknown auth", "status: {auth: digest}\n", "status.auth: must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(minimal+tt.extra), "ptsync.yaml", lookupIn(nil))
			switch {
			case tt.problem == "" && err != nil:
				t.Errorf("Parse: %v", err)
			case tt.problem != "" && (err == nil || !strings.Contains(err.Error(), tt.problem)):
				t.Errorf("Parse = %v, want a problem containing %q", err, tt.problem)
			case err != nil && strings.Contains(err.Error(), "correct horse"):
				t.Errorf("the problem shows the password: %v", err)
			}
		})
	}
}

// TestStatusPasswordHashFile reads the hash from a file, and keeps it out
// of what is hashed or shown of a config.
func TestStatusPasswordHashFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "status.hash"), []byte(statusHash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ptsync.yaml")
	if err := os.WriteFile(path, []byte(minimal+"status: {auth: basic, username: oncall, password_hash_file: status.hash}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.Status{Enabled: true, Auth: config.StatusAuthBasic, Username: "oncall", PasswordHash: statusHash,
		PasswordHashFile: filepath.Join(dir, "status.hash")}); cfg.Status != want {
		t.Errorf("status = %+v, want %+v", cfg.Status, want)
	}
	if s := cfg.WithoutSecrets().Status; s.PasswordHash != "" || s.PasswordHashFile != "" {
		t.Errorf("WithoutSecrets keeps the hash: %+v", s)
	}
}
