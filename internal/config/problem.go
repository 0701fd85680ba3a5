package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration, located by file, line
// and dotted key path (sources[0].ldap.page_size) so the user can go
// straight to it.
type Problem struct {
	File   string
	Line   int // 0 when the key is absent from the file
	Column int
	Key    string
	// Message never holds a secret's value or a secret file's contents.
	Message string
}

// Error reads "config.yaml:12: sources[0].ldap.page_size: must be between
// 1 and 10000"; the line, the file or the key is left out when unknown.
func (p Problem) Error() string {
	var b strings.Builder
	switch {
	case p.File != "" && p.Line > 0:
		b.WriteString(p.File + ":" + strconv.Itoa(p.Line) + ": ")
	case p.File != "":
		b.WriteString(p.File + ": ")
	case p.Line > 0:
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one configuration, in file order. It
// is the error Load, Parse and Validate return.
type Problems []Problem

// Error puts one problem on each line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// position is where a key (or a list item) sits in the file.
type position struct{ line, column int }

// parentKey strips the last segment of a key path: sources[0].ldap.url ->
// sources[0].ldap -> sources[0] -> sources -> "".
func parentKey(key string) string {
	i := strings.LastIndexAny(key, ".[")
	if i < 0 {
		return ""
	}
	return key[:i]
}

// joinKey appends a mapping key to a key path.
func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
