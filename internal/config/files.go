package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// secret is one secret key and its *_file twin.
type secret struct {
	key, fileKey string // key paths, for problems
	value, file  *string
}

// fileKeys are the keys of c that name files: its secrets' *_file twins
// and the keys tagged `config:"path"`, found through their struct tags in
// the top-level schema and in every source's settings.
type fileKeys struct {
	secrets []secret
	paths   []*string
}

func (c *Config) fileKeys() fileKeys {
	var fk fileKeys
	fk.walk(reflect.ValueOf(c).Elem(), "")
	return fk
}

// walk visits struct v, whose key path is key, and what it holds.
func (fk *fileKeys) walk(v reflect.Value, key string) {
	if src, ok := v.Addr().Interface().(*Source); ok {
		if src.Settings != nil {
			fk.walk(reflect.ValueOf(src.Settings).Elem(), joinKey(key, src.Type))
		}
		return
	}
	t := v.Type()
	fields := yamlFields(t)
	for i := range t.NumField() { // in field order, so problems come out in a fixed order
		f, fv := t.Field(i), v.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fieldKey := joinKey(key, name)
		switch tag := f.Tag.Get("config"); {
		case tag == "secret":
			base := strings.TrimSuffix(name, "_file")
			j, ok := fields[base]
			if base == name || !ok {
				panic(fmt.Sprintf("config: %s is tagged secret but has no %s twin", fieldKey, base))
			}
			fk.secrets = append(fk.secrets, secret{joinKey(key, base), fieldKey, v.Field(j).Addr().Interface().(*string), fv.Addr().Interface().(*string)})
			fk.paths = append(fk.paths, fv.Addr().Interface().(*string))
		case tag == "path":
			fk.paths = append(fk.paths, fv.Addr().Interface().(*string))
		case fv.Kind() == reflect.Struct:
			fk.walk(fv, fieldKey)
		case fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Struct && !fv.IsNil():
			fk.walk(fv.Elem(), fieldKey)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for j := range fv.Len() {
				fk.walk(fv.Index(j), fieldKey+"["+strconv.Itoa(j)+"]")
			}
		}
	}
}

// resolvePaths makes relative file paths relative to the configuration
// file's directory rather than to wherever ptsync was started, so
// `bind_password_file: ldap.pass` beside /etc/ptsync/ptsync.yaml means
// /etc/ptsync/ldap.pass under systemd, cron and a shell alike.
func (c *Config) resolvePaths() {
	dir := filepath.Dir(c.Path)
	for _, p := range c.fileKeys().paths {
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
	for _, s := range c.fileKeys().secrets {
		if *s.file == "" {
			continue
		}
		name := s.key[strings.LastIndexByte(s.key, '.')+1:]
		if *s.value != "" {
			problems = append(problems, c.problem(s.fileKey, "cannot be used together with %s; set one of them", name))
			continue
		}
		data, err := ReadFile(*s.file, maxSecretSize)
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

// ReadFile reads a small regular file. Its errors name the path but never
// the contents. Devices and pipes are refused before they are opened:
// /dev/zero would never end, and opening a FIFO blocks.
func ReadFile(path string, limit int64) ([]byte, error) {
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
