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
// or group ids; a group member is flattened into its members, recursively,
// cycles tolerated. A user id that is also a group id is an error, as is an
// id used twice. A member naming no user or group is dropped and counted as
// outside_scope; a user without an email is skipped and counted as
// no_email; a second user with an email already seen (compared trimmed and
// without regard to case) is merged into the first, with a warning, and
// counted as duplicate_email: groups naming either id get the first user.
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

// Source reads one YAML file on every Fetch, so edits are picked up by the
// next run without a restart.
type Source struct {
	name string
	path string
	log  *zap.Logger
}

// New builds a file source from its configuration block. It is a
// sources.Factory.
func New(cfg config.Source, log *zap.Logger) (sources.Source, error) {
	if cfg.File == nil || cfg.File.Path == "" {
		return nil, fmt.Errorf("source %q: file.path is required (the YAML file of users and groups)", cfg.Name)
	}
	return &Source{name: cfg.Name, path: cfg.File.Path, log: log}, nil
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
	p := parser{
		snap:    sources.NewSnapshot(name),
		path:    path,
		log:     log,
		alias:   map[string]string{},
		byEmail: map[string]string{},
		idLine:  map[string]int{},
	}
	if err := p.users(users); err != nil {
		return nil, err
	}
	if err := p.groups(groups); err != nil {
		return nil, err
	}
	return p.snap, nil
}

type parser struct {
	snap *sources.Snapshot
	path string
	log  *zap.Logger
	// alias maps the id of a user merged away (duplicate email) or skipped
	// (no email) to the id that stands for it; "" for skipped.
	alias   map[string]string
	byEmail map[string]string // lower-cased email -> user id
	idLine  map[string]int    // every user and group id -> its line
}

func (p *parser) users(entries []userEntry) error {
	for _, u := range entries {
		line := u.line
		email := strings.TrimSpace(u.email)
		id := strings.TrimSpace(u.id)
		if id == "" {
			if email == "" {
				return fmt.Errorf("%s:%d: user has neither id nor email", p.path, line)
			}
			id = strings.ToLower(email)
		}
		if err := p.claimID(id, line); err != nil {
			return err
		}
		if email == "" {
			p.snap.Skip(sources.SkipNoEmail)
			p.alias[id] = ""
			continue
		}
		key := strings.ToLower(email)
		if first, dup := p.byEmail[key]; dup {
			p.log.Warn("duplicate email in users file: merged into the first entry",
				zap.String("file", p.path), zap.Int("line", line), zap.String("email", key),
				zap.String("id", id), zap.String("kept_id", first))
			p.snap.Skip(sources.SkipDuplicateEmail)
			p.alias[id] = first
			continue
		}
		p.byEmail[key] = id
		p.snap.Users[id] = sources.User{
			ID:       id,
			Email:    email,
			Name:     strings.TrimSpace(u.name),
			Phone:    strings.TrimSpace(u.phone),
			Disabled: u.disabled,
		}
	}
	return nil
}

func (p *parser) groups(entries []groupEntry) error {
	byID := make(map[string]*groupEntry, len(entries))
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
		byID[g.id] = g
	}
	p.snap.Groups = make([]sources.Group, 0, len(entries))
	for _, g := range entries {
		p.snap.Groups = append(p.snap.Groups, sources.Group{
			ID:          g.id,
			Name:        g.name,
			Description: g.description,
			Members:     p.flatten(g.id, byID),
		})
	}
	return nil
}

// flatten returns the user ids of group id, member groups expanded. Each
// group is visited once, so a cycle ends where it started.
func (p *parser) flatten(id string, byID map[string]*groupEntry) []string {
	var members []string
	seenUser := map[string]bool{}
	visited := map[string]bool{}
	var walk func(string)
	walk = func(gid string) {
		if visited[gid] {
			return
		}
		visited[gid] = true
		for _, m := range byID[gid].members {
			m = strings.TrimSpace(m)
			if _, ok := byID[m]; ok {
				walk(m)
				continue
			}
			uid := m
			if target, ok := p.alias[m]; ok {
				if target == "" {
					continue // a user without email: counted once, as no_email
				}
				uid = target
			}
			if _, ok := p.snap.Users[uid]; !ok {
				// Counted where the group names it directly, once per
				// mention, like a directory member outside the search.
				if gid == id {
					p.snap.Skip(sources.SkipOutsideScope)
				}
				continue
			}
			if !seenUser[uid] {
				seenUser[uid] = true
				members = append(members, uid)
			}
		}
	}
	walk(id)
	return members
}

// claimID records id at line, failing when it is already taken.
func (p *parser) claimID(id string, line int) error {
	if first, dup := p.idLine[id]; dup {
		return fmt.Errorf("%s:%d: id %q is already used at line %d (ids must be unique across users and groups)", p.path, line, id, first)
	}
	p.idLine[id] = line
	return nil
}
