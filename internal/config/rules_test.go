package config_test

import (
	"strings"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
)

func TestNameTemplate(t *testing.T) {
	group := struct {
		ID, Name, Description string
		Members               []string
	}{ID: "g1", Name: "oncall-db-primary", Description: "Database on-call"}
	for _, tc := range []struct{ template, want string }{
		{"{{ .Name }}", "oncall-db-primary"},
		{`{{ trimPrefix "oncall-" .Name }}`, "db-primary"},
		{`{{ .Name | trimPrefix "oncall-" | title }}`, "Db-Primary"},
		{`{{ trimSuffix "-primary" .Name | upper }}`, "ONCALL-DB"},
		{`{{ replace "-" " " .Name | title }}`, "Oncall Db Primary"},
		{`{{ lower .Description }}`, "database on-call"},
		{`{{ title "ünïcode wörds" }}`, "Ünïcode Wörds"},
		{`Team {{ .ID }}`, "Team g1"},
	} {
		tmpl, err := config.TeamRule{Name: tc.template}.NameTemplate()
		if err != nil {
			t.Errorf("%s: %v", tc.template, err)
			continue
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, group); err != nil {
			t.Errorf("%s: %v", tc.template, err)
			continue
		}
		if b.String() != tc.want {
			t.Errorf("%s rendered %q, want %q", tc.template, b.String(), tc.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		matches []string
		misses  []string
	}{
		{"oncall-*", []string{"oncall-", "oncall-db"}, []string{"Oncall-db", "team-oncall-db", "oncall-a/b"}},
		{"oncall-[a-c]?", []string{"oncall-b1"}, []string{"oncall-d1", "oncall-b"}},
		{"re:^oncall-(db|web)$", []string{"oncall-db", "oncall-web"}, []string{"oncall-dbx", "x-oncall-db"}},
		{"re:oncall", []string{"team-oncall-db", "oncall"}, []string{"on-call"}},
		{"re:(?i)^ONCALL-", []string{"oncall-db", "OnCall-x"}, []string{"db-oncall-"}},
	} {
		match, err := config.TeamRule{Match: tc.pattern}.Matcher()
		if err != nil {
			t.Errorf("%s: %v", tc.pattern, err)
			continue
		}
		for _, name := range tc.matches {
			if !match(name) {
				t.Errorf("%s does not match %q", tc.pattern, name)
			}
		}
		for _, name := range tc.misses {
			if match(name) {
				t.Errorf("%s matches %q", tc.pattern, name)
			}
		}
	}
}
