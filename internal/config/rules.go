package config

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"text/template"
	"unicode"
)

// TemplateFuncs returns the functions a team name template may call. Each
// takes the string it works on last, so they also read well in a pipeline:
// {{ .Name | trimPrefix "oncall-" | title }}.
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"title":      title,
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"replace":    func(old, replacement, s string) string { return strings.ReplaceAll(s, old, replacement) },
	}
}

// title upper-cases the first letter of every word ("db-primary" ->
// "Db-Primary") and leaves the other letters as they are.
func title(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inWord := false
	for _, r := range s {
		if !inWord {
			r = unicode.ToUpper(r)
		}
		inWord = unicode.IsLetter(r) || unicode.IsDigit(r)
		b.WriteRune(r)
	}
	return b.String()
}

// NameTemplate parses the rule's name template with TemplateFuncs. The
// sync engine executes it with the directory group (ID, Name, Description,
// Members) as its data.
func (r TeamRule) NameTemplate() (*template.Template, error) {
	return template.New("name").Funcs(TemplateFuncs()).Parse(r.Name)
}

// templateProbe has the fields of the group a name template is executed
// with, so Validate catches {{ .name }} and other misspelt fields.
type templateProbe struct {
	ID, Name, Description string
	Members               []string
}

// checkNameTemplate parses the template and runs it once on a sample group.
func (r TeamRule) checkNameTemplate() error {
	t, err := r.NameTemplate()
	if err != nil {
		return err
	}
	sample := templateProbe{ID: "id", Name: "oncall-example", Description: "example group", Members: []string{"u1"}}
	return t.Execute(io.Discard, sample)
}

// regexpPrefix marks a match pattern as a regular expression.
const regexpPrefix = "re:"

// Matcher returns the rule's match pattern as a predicate on group names:
// "re:<regexp>" (RE2, unanchored: write ^...$ to match whole names) or a
// path.Match glob that must match the whole name. Both are case-sensitive.
func (r TeamRule) Matcher() (func(groupName string) bool, error) {
	if expr, ok := strings.CutPrefix(r.Match, regexpPrefix); ok {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("invalid regexp: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		return re.MatchString, nil
	}
	if err := checkGlob(r.Match); err != nil {
		return nil, err
	}
	pattern := r.Match
	return func(name string) bool {
		ok, _ := path.Match(pattern, name)
		return ok
	}, nil
}

// checkGlob reports whether pattern is a valid path.Match glob.
func checkGlob(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("invalid glob: %w", err)
	}
	return nil
}
