package config_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources/ldap"
)

const examplePath = "../../config.example.yaml"

// exampleEnv supplies every ${VAR} of config.example.yaml.
var exampleEnv = map[string]string{
	"PAGERTREE_USERNAME":  "ptsync@example.com",
	"PAGERTREE_PASSWORD":  "pagertree-password",
	"LDAP_PASSWORD":       "ldap-password",
	"GRAPH_CLIENT_SECRET": "graph-secret",
	"OKTA_API_TOKEN":      "okta-token",
	"SCIM_TOKEN":          "scim-token",
	"SCIM_CLIENT_SECRET":  "scim-client-secret",
}

// commentedSourceLine is a line of a commented-out sources[] entry.
var commentedSourceLine = regexp.MustCompile(`(?m)^  # (- |  )`)

// uncommentSources turns the example's commented-out sources into real ones.
func uncommentSources(example []byte) []byte {
	return commentedSourceLine.ReplaceAll(example, []byte("  $1"))
}

func readExample(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestExampleConfig(t *testing.T) {
	cfg, err := parse(readExample(t), examplePath, lookupIn(exampleEnv))
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if len(cfg.Sources) != 1 || cfg.Sources[0].Type != "ldap" {
		t.Fatalf("sources = %+v, want the one ldap source", cfg.Sources)
	}
	if got := cfg.Sources[0].Settings.(*ldap.Config).BindPassword; got != "ldap-password" {
		t.Errorf("bind_password = %q, want it from ${LDAP_PASSWORD}", got)
	}
	// The example shows each default as the value it sets.
	def := config.Default()
	for _, tc := range []struct {
		section   string
		got, want any
	}{
		{"schedule", cfg.Schedule, def.Schedule},
		{"pagertree.url", cfg.PagerTree.URL, def.PagerTree.URL},
		{"pagertree.requests_per_second", cfg.PagerTree.RequestsPerSecond, def.PagerTree.RequestsPerSecond},
		{"pagertree.concurrency", cfg.PagerTree.Concurrency, def.PagerTree.Concurrency},
		{"pagertree.timeout", cfg.PagerTree.Timeout, def.PagerTree.Timeout},
		{"pagertree.insecure_http", cfg.PagerTree.InsecureHTTP, def.PagerTree.InsecureHTTP},
		{"cycle_timeout", cfg.CycleTimeout, def.CycleTimeout},
		{"users", cfg.Users.Scope, def.Users.Scope},
		{"safety", cfg.Safety, def.Safety},
		{"state", cfg.State, def.State},
		{"metrics", cfg.Metrics, def.Metrics},
		{"log", cfg.Log, def.Log},
		{"teams[0].on_missing", cfg.Teams[0].OnMissing, config.DefaultTeamRule().OnMissing},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %+v in the example, but the default is %+v", tc.section, tc.got, tc.want)
		}
	}
	got, want := cfg.Sources[0].Settings.(*ldap.Config), ldap.DefaultConfig()
	want.Complete()
	want.URL, want.BindDN, want.BindPassword = got.URL, got.BindDN, got.BindPassword
	want.Users.BaseDN, want.Groups.BaseDN = got.Users.BaseDN, got.Groups.BaseDN
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the example's ldap block:\n%+v\ndiffers from the defaults:\n%+v", *got, *want)
	}
}

func TestExampleConfigAllSources(t *testing.T) {
	cfg, err := parse(uncommentSources(readExample(t)), examplePath, lookupIn(exampleEnv))
	if err != nil {
		t.Fatalf("config.example.yaml with every source uncommented: %v", err)
	}
	var types []string
	for _, s := range cfg.Sources {
		types = append(types, s.Type)
	}
	want := []string{"ldap", "msgraph", "google", "okta", "scim", "scim", "file"}
	if !slices.Equal(types, want) {
		t.Errorf("source types %v, want %v", types, want)
	}
}

// TestExampleDocumentsEveryKey checks that config.example.yaml (sources
// uncommented) sets every key the config structs know, each with a comment.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data := uncommentSources(readExample(t))
	cfg, err := parse(data, examplePath, lookupIn(exampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	index := regexp.MustCompile(`\[\d+\]`)
	present := map[string]bool{}
	for _, key := range config.Keys(cfg) {
		present[index.ReplaceAllString(key, "[]")] = true
	}
	for _, key := range schemaKeys(reflect.TypeOf(config.Config{}), "") {
		if !present[key] {
			t.Errorf("config.example.yaml does not show %s", key)
		}
	}

	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	for _, key := range uncommentedKeys(&root, "") {
		t.Errorf("config.example.yaml: %s has no comment", key)
	}
}

// schemaKeys lists every yaml key path of t, list items written "[]".
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := joinKey(prefix, name)
		keys = append(keys, key)
		if f.Type == reflect.TypeOf([]config.Source{}) {
			// Each type's block is a key of the source: sources[].ldap.url.
			for name, settings := range types {
				block := key + "[]." + name
				keys = append(keys, block)
				keys = append(keys, schemaKeys(reflect.TypeOf(settings()).Elem(), block)...)
			}
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, schemaKeys(ft.Elem(), key+"[]")...)
		}
	}
	return keys
}

// uncommentedKeys lists the keys under n with no comment on their line or
// just above it.
func uncommentedKeys(n *yaml.Node, path string) []string {
	var missing []string
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			missing = append(missing, uncommentedKeys(c, path)...)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			missing = append(missing, uncommentedKeys(c, path+"[]")...)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := joinKey(path, k.Value)
			if k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
				missing = append(missing, key)
			}
			missing = append(missing, uncommentedKeys(v, key)...)
		}
	}
	return missing
}

func joinKey(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
