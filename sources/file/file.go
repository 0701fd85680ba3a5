// Package file is the `file` source: a YAML file of users and groups in the
// sources model, for people outside the directory (contractors, vendors),
// for the demo and for tests.
//
// The format (SPEC.md "Sources"):
//
//	users:
//	  - {id: c-001, email: jo@vendor.example, name: Jo Vendor, phone: "+1 415 555 0100"}
//	  - {id: c-002, email: sam@vendor.example, name: Sam Vendor, disabled: true}
//	groups:
//	  - {id: g-db, name: oncall-db, description: Database on-call, members: [c-001, c-002]}
//
// Decoding is strict: an unknown key or a wrong type is an error naming the
// file and line. A user's id may be left out; it then defaults to the
// email, lower-cased. A group's id is required, because it is the stable
// key that lets a renamed group rename its team. Group members are user ids
// or group ids; a group member is flattened into its members, down to
// sources.DefaultMaxDepth levels, cycles tolerated. A user id that is also a
// group id is an error, as is an id used twice. A member naming no user or
// group is dropped and counted as outside_scope. Users without an email and
// users sharing an email follow sources.Builder's rules, as every source
// does: skipped as no_email; merged (an enabled entry wins over a disabled
// one, else the first stays) and counted as duplicate_email, groups naming
// either id getting the one kept.
package file

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Config is the file: block of a source.
type Config struct {
	Path string `yaml:"path" config:"path"`
}

// DefaultConfig returns the block's defaults: none.
func DefaultConfig() *Config { return &Config{} }

// Complete has no defaults to fill.
func (c *Config) Complete() {}

// Check reports a missing path.
func (c *Config) Check(k *config.Checker) {
	k.Required("path", c.Path)
}

// Source reads one YAML file on every Fetch, so edits are picked up by the
// next run without a restart.
type Source struct {
	name string
	path string
	log  *zap.Logger
}

// New builds a file source from its *Config. It is a sources.Factory.
func New(name string, settings any, opts sources.Options) (sources.Source, error) {
	cfg, err := config.Settings[*Config](name, "file", settings)
	if err != nil {
		return nil, err
	}
	return &Source{name: name, path: cfg.Path, log: opts.Logger()}, nil
}

// Name is the source's configured name.
func (s *Source) Name() string { return s.name }

// Fetch reads and parses the file. Its errors do not repeat the source's
// name: the caller names the source it fetched.
func (s *Source) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("read users file: %w", err)
	}
	return Parse(data, s.name, s.path, s.log)
}

type userEntry struct {
	line                   int
	id, email, name, phone string
	disabled               bool
}

type groupEntry struct {
	line                  int
	id, name, description string
	members               []string
}

// Parse decodes a file's content into a snapshot of source name. path only
// labels errors ("path:line: ..."). Warnings (merged duplicates) go to log.
func Parse(data []byte, name, path string, log *zap.Logger) (*sources.Snapshot, error) {
	users, groups, err := decode(data, path)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := parser{
		b:      sources.NewBuilder(name, log.With(zap.String("file", path))),
		path:   path,
		users:  map[string]sources.UserRef{},
		groups: map[string]sources.GroupRef{},
		idLine: map[string]int{},
	}
	if err := p.addUsers(users); err != nil {
		return nil, err
	}
	if err := p.addGroups(groups); err != nil {
		return nil, err
	}
	return p.b.Snapshot(true, sources.DefaultMaxDepth), nil
}

type parser struct {
	b      *sources.Builder
	path   string
	users  map[string]sources.UserRef  // user id -> handle (sources.NoUser: skipped)
	groups map[string]sources.GroupRef // group id -> handle
	idLine map[string]int              // every user and group id -> its line
}

func (p *parser) addUsers(entries []userEntry) error {
	for _, u := range entries {
		email := strings.TrimSpace(u.email)
		id := strings.TrimSpace(u.id)
		if id == "" {
			if email == "" {
				return fmt.Errorf("%s:%d: user has neither id nor email", p.path, u.line)
			}
			id = strings.ToLower(email)
		}
		if err := p.claimID(id, u.line); err != nil {
			return err
		}
		ref, err := p.b.AddUser(sources.User{
			ID:       id,
			Email:    email,
			Name:     strings.TrimSpace(u.name),
			Phone:    strings.TrimSpace(u.phone),
			Disabled: u.disabled,
		})
		if err != nil {
			return fmt.Errorf("%s:%d: %w", p.path, u.line, err)
		}
		p.users[id] = ref
	}
	return nil
}

func (p *parser) addGroups(entries []groupEntry) error {
	for i := range entries {
		g := &entries[i]
		g.id = strings.TrimSpace(g.id)
		g.name = strings.TrimSpace(g.name)
		if g.id == "" {
			return fmt.Errorf("%s:%d: group %q has no id (the stable id its team is tied to)", p.path, g.line, g.name)
		}
		if g.name == "" {
			return fmt.Errorf("%s:%d: group %q has no name", p.path, g.line, g.id)
		}
		if err := p.claimID(g.id, g.line); err != nil {
			return err
		}
		p.groups[g.id] = p.b.AddGroup(sources.Group{ID: g.id, Name: g.name, Description: g.description})
	}
	for _, g := range entries {
		ref := p.groups[g.id]
		for _, m := range g.members {
			m = strings.TrimSpace(m)
			if sub, ok := p.groups[m]; ok {
				p.b.AddSubgroup(ref, sub)
			} else if u, ok := p.users[m]; ok {
				p.b.AddMember(ref, u) // a user without email (NoUser) was counted once, as no_email
			} else {
				// Counted once per mention, like a directory member
				// outside the search.
				p.b.Skip(sources.SkipOutsideScope, 1)
			}
		}
	}
	return nil
}

// claimID records id at line, failing when it is already taken.
func (p *parser) claimID(id string, line int) error {
	if first, dup := p.idLine[id]; dup {
		return fmt.Errorf("%s:%d: id %q is already used at line %d (ids must be unique across users and groups)", p.path, line, id, first)
	}
	p.idLine[id] = line
	return nil
}

// ReportsOwners is false: a directory file's groups have no owners
// (config.OwnerSettings).
func (c *Config) ReportsOwners() bool { return false }

// OwnersHint says where a file source's team admins come from instead.
func (c *Config) OwnersHint() string {
	return "a file's groups have no owners; list the admins on the rule (admins:) or in pagertree.team_admins"
}
