package config

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path: strict decoding, ${VAR}
// expansion from the environment, *_file secrets, defaults and Validate.
// types are the source types the file may use, each decoding and checking
// its own block. A bad file yields Problems listing everything wrong with
// it at once.
func Load(path string, types SourceTypes) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data, path, os.LookupEnv, types)
}

// Parse is Load from bytes already read; path names the file in problems
// and anchors relative file paths. lookupEnv resolves ${VAR} (os.LookupEnv
// when nil).
func Parse(data []byte, path string, lookupEnv func(string) (string, bool), types SourceTypes) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Problems{syntaxProblem(path, err)}
	}
	cfg := Default()
	cfg.Path = path
	cfg.types = types
	d := newDecoder(path, lookupEnv, types)
	if !d.document(&root, &cfg) {
		return nil, d.problems // checking a partial config would only mislead
	}
	cfg.pos = d.pos
	cfg.resolvePaths()
	for _, src := range cfg.Sources {
		if src.Settings != nil {
			src.Settings.Complete()
		}
	}
	problems := append(d.problems, cfg.readSecrets()...)
	for _, p := range cfg.validate() {
		// A key that could not be decoded keeps its default or stays
		// empty; saying so again ("is required") would only be noise.
		if !d.failed(p.Key) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, problems
	}
	return &cfg, nil
}

// names lists the type names, sorted.
func (t SourceTypes) names() []string {
	names := make([]string, 0, len(t))
	for name := range t {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Source returns the source named name.
func (c *Config) Source(name string) (*Source, bool) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], true
		}
	}
	return nil, false
}

// problem builds a Problem for key, placed at the key or, when the key is
// absent from the file, at its nearest ancestor that is there.
func (c *Config) problem(key, format string, args ...any) Problem {
	p := Problem{File: c.Path, Key: key, Message: fmt.Sprintf(format, args...)}
	for k := key; k != ""; k = parentKey(k) {
		if at, ok := c.pos[k]; ok {
			p.Line, p.Column = at.line, at.column
			break
		}
	}
	return p
}

// sortProblems puts problems in file order; problems about absent keys
// (line 0) come first, in the order they were found.
func sortProblems(ps Problems) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}

var yamlErrorLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxProblem turns a YAML parser error into a Problem with its line.
func syntaxProblem(path string, err error) Problem {
	p := Problem{File: path, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	if m := yamlErrorLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Message = "invalid YAML: " + m[2]
	}
	return p
}
