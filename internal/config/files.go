package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secret is one secret key and its *_file twin.
type secret struct {
	key, fileKey string // key paths, for problems
	value, file  *string
}

// secrets lists every secret of c with its *_file form.
func (c *Config) secrets() []secret {
	list := []secret{{"pagertree.password", "pagertree.password_file", &c.PagerTree.Password, &c.PagerTree.PasswordFile}}
	add := func(prefix, name string, value, file *string) {
		list = append(list, secret{prefix + "." + name, prefix + "." + name + "_file", value, file})
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		if l := s.LDAP; l != nil {
			add(p+".ldap", "bind_password", &l.BindPassword, &l.BindPasswordFile)
		}
		if g := s.MSGraph; g != nil {
			add(p+".msgraph", "client_secret", &g.ClientSecret, &g.ClientSecretFile)
		}
		if o := s.Okta; o != nil {
			add(p+".okta", "api_token", &o.APIToken, &o.APITokenFile)
		}
		if sc := s.SCIM; sc != nil {
			add(p+".scim", "bearer_token", &sc.BearerToken, &sc.BearerTokenFile)
			if o := sc.OAuth2; o != nil {
				add(p+".scim.oauth2", "client_secret", &o.ClientSecret, &o.ClientSecretFile)
			}
		}
	}
	return list
}

// filePaths lists every key of c that names a file or directory.
func (c *Config) filePaths() []*string {
	paths := []*string{&c.State.Dir}
	for _, s := range c.secrets() {
		paths = append(paths, s.file)
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if l := s.LDAP; l != nil {
			paths = append(paths, &l.CAFile)
		}
		if g := s.MSGraph; g != nil {
			paths = append(paths, &g.CertificateFile, &g.PrivateKeyFile)
		}
		if g := s.Google; g != nil {
			paths = append(paths, &g.CredentialsFile)
		}
		if o := s.Okta; o != nil {
			paths = append(paths, &o.PrivateKeyFile)
		}
		if f := s.File; f != nil {
			paths = append(paths, &f.Path)
		}
	}
	return paths
}

// resolvePaths makes relative file paths relative to the configuration
// file's directory rather than to wherever ptsync was started, so
// `bind_password_file: ldap.pass` beside /etc/ptsync/ptsync.yaml means
// /etc/ptsync/ldap.pass under systemd, cron and a shell alike.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.Path)
	for _, p := range c.filePaths() {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

// maxSecretSize is far above any password or token; a bigger file is the
// wrong file (and never read whole into memory).
const maxSecretSize = 64 << 10

// readSecrets replaces each *_file secret by the file's contents, less the
// trailing newline editors and `echo` add.
func (c *Config) readSecrets() Problems {
	var problems Problems
	for _, s := range c.secrets() {
		if *s.file == "" {
			continue
		}
		name := s.key[strings.LastIndexByte(s.key, '.')+1:]
		if *s.value != "" {
			problems = append(problems, c.problem(s.fileKey, "cannot be used together with %s; set one of them", name))
			continue
		}
		data, err := readFile(*s.file, maxSecretSize)
		if err != nil {
			problems = append(problems, c.problem(s.fileKey, "%v", err))
			continue
		}
		value := strings.TrimRight(string(data), "\r\n")
		if value == "" {
			problems = append(problems, c.problem(s.fileKey, "%q is empty", *s.file))
			continue
		}
		*s.value = value
	}
	return problems
}

// readFile reads a small regular file. Its errors name the path but never
// the contents. Devices and pipes are refused before they are opened:
// /dev/zero would never end, and opening a FIFO blocks.
func readFile(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, pathErrorReason(err))
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %q: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, pathErrorReason(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, pathErrorReason(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("cannot read %q: larger than %d KiB", path, limit>>10)
	}
	return data, nil
}

// pathErrorReason drops the "open /path:" prefix the caller already says.
func pathErrorReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
