package file

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/sources"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		users   map[string]sources.User
		groups  []sources.Group
		skipped map[string]int
	}{
		{
			name: "spec example",
			yaml: `
users:
  - {id: c-001, email: jo@vendor.example, name: Jo Vendor, phone: "+1 415 555 0100"}
  - {id: c-002, email: sam@vendor.example, name: Sam Vendor, disabled: true}
groups:
  - {id: g-db, name: oncall-db, members: [c-001, c-002]}
`,
			users: map[string]sources.User{
				"c-001": {ID: "c-001", Email: "jo@vendor.example", Name: "Jo Vendor", Phone: "+1 415 555 0100"},
				"c-002": {ID: "c-002", Email: "sam@vendor.example", Name: "Sam Vendor", Disabled: true},
			},
			groups:  []sources.Group{{ID: "g-db", Name: "oncall-db", Members: []string{"c-001", "c-002"}}},
			skipped: map[string]int{},
		},
		{
			name: "email trimmed, id defaults to lower-cased email",
			yaml: `
users:
  - {email: "  Ann@Example.com ", name: " Ann "}
groups:
  - {id: g1, name: ops, description: Operations, members: [ann@example.com]}
`,
			users: map[string]sources.User{
				"ann@example.com": {ID: "ann@example.com", Email: "Ann@Example.com", Name: "Ann"},
			},
			groups:  []sources.Group{{ID: "g1", Name: "ops", Description: "Operations", Members: []string{"ann@example.com"}}},
			skipped: map[string]int{},
		},
		{
			name: "nested groups flattened, cycle tolerated, members deduplicated",
			yaml: `
users:
  - {id: a, email: a@x.example}
  - {id: b, email: b@x.example}
  - {id: c, email: c@x.example}
groups:
  - {id: g1, name: one, members: [a, g2]}
  - {id: g2, name: two, members: [b, g1, a]}
  - {id: g3, name: three, members: [c, g1]}
`,
			users: map[string]sources.User{
				"a": {ID: "a", Email: "a@x.example"},
				"b": {ID: "b", Email: "b@x.example"},
				"c": {ID: "c", Email: "c@x.example"},
			},
			groups: []sources.Group{
				{ID: "g1", Name: "one", Members: []string{"a", "b"}},
				{ID: "g3", Name: "three", Members: []string{"a", "b", "c"}},
				{ID: "g2", Name: "two", Members: []string{"a", "b"}},
			},
			skipped: map[string]int{},
		},
		{
			name: "unknown members dropped and counted once per mention",
			yaml: `
users:
  - {id: a, email: a@x.example}
groups:
  - {id: g1, name: one, members: [a, ghost]}
  - {id: g2, name: two, members: [g1, ghost, phantom]}
`,
			users: map[string]sources.User{"a": {ID: "a", Email: "a@x.example"}},
			groups: []sources.Group{
				{ID: "g1", Name: "one", Members: []string{"a"}},
				{ID: "g2", Name: "two", Members: []string{"a"}},
			},
			skipped: map[string]int{sources.SkipOutsideScope: 3},
		},
		{
			name: "user without email skipped, and left out of groups",
			yaml: `
users:
  - {id: a, email: a@x.example}
  - {id: b, name: No Mail}
groups:
  - {id: g1, name: one, members: [a, b]}
`,
			users:   map[string]sources.User{"a": {ID: "a", Email: "a@x.example"}},
			groups:  []sources.Group{{ID: "g1", Name: "one", Members: []string{"a"}}},
			skipped: map[string]int{sources.SkipNoEmail: 1},
		},
		{
			name: "duplicate email merged into the first user",
			yaml: `
users:
  - {id: a, email: dup@x.example, name: First}
  - {id: b, email: " DUP@x.example", name: Second}
groups:
  - {id: g1, name: one, members: [b]}
  - {id: g2, name: two, members: [a, b]}
`,
			users: map[string]sources.User{"a": {ID: "a", Email: "dup@x.example", Name: "First"}},
			groups: []sources.Group{
				{ID: "g1", Name: "one", Members: []string{"a"}},
				{ID: "g2", Name: "two", Members: []string{"a"}},
			},
			skipped: map[string]int{sources.SkipDuplicateEmail: 1},
		},
		{
			name:    "empty file",
			yaml:    "",
			users:   map[string]sources.User{},
			groups:  []sources.Group{},
			skipped: map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := Parse([]byte(tt.yaml), "contractors", "people.yaml", zap.NewNop())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if snap.Source != "contractors" {
				t.Errorf("Source = %q, want contractors", snap.Source)
			}
			if !reflect.DeepEqual(snap.Users, tt.users) {
				t.Errorf("Users =\n%#v\nwant\n%#v", snap.Users, tt.users)
			}
			if !reflect.DeepEqual(snap.Groups, tt.groups) {
				t.Errorf("Groups =\n%#v\nwant\n%#v", snap.Groups, tt.groups)
			}
			if !reflect.DeepEqual(snap.Skipped, tt.skipped) {
				t.Errorf("Skipped = %v, want %v", snap.Skipped, tt.skipped)
			}
		})
	}
}

func TestParseDuplicateEmailWarns(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	_, err := Parse([]byte("users:\n  - {id: a, email: d@x.example}\n  - {id: b, email: d@x.example}\n"), "s", "f.yaml", zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d warnings, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	want := map[string]any{"file": "f.yaml", "email": "d@x.example", "merged_id": "b", "kept_id": "a"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("warning fields = %v, want %v", fields, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "unknown key",
			yaml: "users:\n  - {id: a, email: a@x.example, mail: typo}\n",
			want: `people.yaml:2: unknown key "mail" in a user (known keys: id, email, name, phone, disabled)`,
		},
		{
			name: "unknown top-level key",
			yaml: "users: []\nteams: []\n",
			want: `people.yaml:2: unknown key "teams" in the file (known keys: users, groups)`,
		},
		{
			name: "wrong type",
			yaml: "users:\n  - {id: a, email: a@x.example, disabled: maybe}\n",
			want: `people.yaml:2: disabled must be true or false, not "maybe"`,
		},
		{
			name: "every problem at once",
			yaml: "users:\n  - {id: a, email: a@x.example, mail: typo}\n  - {id: b, email: [b@x.example]}\ngroups: {id: g}\n",
			want: `people.yaml:2: unknown key "mail" in a user (known keys: id, email, name, phone, disabled); ` +
				`people.yaml:3: email must be a single value, not a list or mapping; people.yaml:4: groups must be a list`,
		},
		{
			name: "repeated key",
			yaml: "users:\n  - id: a\n    email: a@x.example\n    email: b@x.example\n",
			want: `people.yaml:4: key "email" appears twice in a user`,
		},
		{
			name: "a user that is not a mapping",
			yaml: "users:\n  - a@x.example\n",
			want: "people.yaml:2: a user must be a mapping with keys id, email, name, phone, disabled",
		},
		{
			name: "members not a list",
			yaml: "groups:\n  - {id: g, name: one, members: a}\n",
			want: "people.yaml:2: members must be a list",
		},
		{
			name: "syntax error",
			yaml: "users:\n  - id: a\n\temail: x\n",
			want: "people.yaml:2: found a tab character that violates indentation",
		},
		{
			name: "duplicate user id",
			yaml: "users:\n  - {id: a, email: a@x.example}\n  - {id: a, email: b@x.example}\n",
			want: `people.yaml:3: id "a" is already used at line 2 (ids must be unique across users and groups)`,
		},
		{
			name: "group id equal to a user id",
			yaml: "users:\n  - {id: a, email: a@x.example}\ngroups:\n  - {id: a, name: one}\n",
			want: `people.yaml:4: id "a" is already used at line 2 (ids must be unique across users and groups)`,
		},
		{
			name: "group without id",
			yaml: "groups:\n  - {name: one}\n",
			want: `people.yaml:2: group "one" has no id (the stable id its team is tied to)`,
		},
		{
			name: "group without name",
			yaml: "groups:\n  - {id: g1}\n",
			want: `people.yaml:2: group "g1" has no name`,
		},
		{
			name: "user with neither id nor email",
			yaml: "users:\n  - {name: Nobody}\n",
			want: "people.yaml:2: user has neither id nor email",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "s", "people.yaml", zap.NewNop())
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to start with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  any
		want string
	}{
		{name: "no file block", cfg: nil, want: `source "c": file settings of type <nil>`},
		{name: "empty path", cfg: &Config{}, want: `source "c": file.path: is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New("c", tt.cfg, sources.Options{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("New error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFetch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "people.yaml")
	if err := os.WriteFile(path, []byte("users:\n  - {id: a, email: a@x.example}\ngroups:\n  - {id: g, name: one, members: [a]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := New("contractors", &Config{Path: path}, sources.Options{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != "contractors" {
		t.Errorf("Name = %q", src.Name())
	}
	snap, err := src.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 1 || len(snap.Groups) != 1 || snap.Groups[0].Members[0] != "a" {
		t.Errorf("snapshot = %+v", snap)
	}

	t.Run("the file changes between fetches", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("users:\n  - {id: a, email: a@x.example}\n  - {id: b, email: b@x.example}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		snap, err := src.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Users) != 2 || len(snap.Groups) != 0 {
			t.Errorf("snapshot = %+v, want 2 users and no group", snap)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		missing, _ := New("contractors", &Config{Path: filepath.Join(dir, "nope.yaml")}, sources.Options{})
		_, err := missing.Fetch(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), "read users file: open ") {
			t.Errorf("error = %v", err)
		}
	})

	t.Run("a bad file names the file and line", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("users:\n  - {id: a, emial: a@x.example}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := src.Fetch(context.Background())
		want := path + `:2: unknown key "emial" in a user (known keys: id, email, name, phone, disabled)`
		if err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := src.Fetch(ctx); err == nil || !strings.Contains(err.Error(), "context canceled") {
			t.Errorf("error = %v, want context canceled", err)
		}
	})
}
