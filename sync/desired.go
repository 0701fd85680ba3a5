package sync

import (
	"bytes"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	gosync "sync"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Policy is every configuration choice planning needs, plus the run's
// --allow-destructive switch.
type Policy struct {
	// Rules are the teams: rules, in configuration order.
	Rules []config.TeamRule
	// Scope is users.scope: team_members (the default when empty) or all.
	Scope string
	// DeleteUsers is users.delete.
	DeleteUsers bool
	// DeleteGrace is users.delete_grace: a leaver is deleted only once a
	// healthy run first found them missing that long ago (Remembered);
	// until then the plan lists them as pending. 0: at once.
	DeleteGrace time.Duration
	// Protect holds users.protect: path.Match globs on lower-cased emails.
	Protect []string

	MaxDestructive        int     // safety.max_destructive; 0 disables
	MaxDestructivePercent float64 // safety.max_destructive_percent; 0 disables
	AllowDestructive      bool    // --allow-destructive for this run

	// PhoneRegion is the ISO 3166 region (e.g. "US") assumed for numbers
	// written without a +country code. When empty, such numbers cannot be
	// put in E.164 and are kept as the directory gives them (trimmed).
	PhoneRegion string

	// TeamAdmins is pagertree.team_admins: the admins of every team whose
	// rule names none.
	TeamAdmins []string
	// PhonesE164 says the account takes phones in E.164 only (PagerTree
	// v4): a directory phone that cannot be put in E.164 is left out, and
	// the plan lists it, rather than failing the person's create.
	PhonesE164 bool
	// TeamRoles says the account's teams must always have at least one
	// member and one admin (PagerTree v4): a group with no wanted member is
	// not made a team, and no write may leave a team without either.
	TeamRoles bool
}

// Origin is one directory record behind a wanted user.
type Origin struct {
	Source string `json:"source"`
	UserID string `json:"user_id"`
}

// WantedUser is one person ptsync wants in PagerTree.
type WantedUser struct {
	Email string // lower-cased, trimmed: the match key
	// Name and Phone come from the first source, in configuration order,
	// that has a non-empty value; Phone is E.164 when it parses.
	Name, Phone string
	Sources     []Origin
}

// WantedTeam is one group a rule turned into a team.
type WantedTeam struct {
	Key       string // Marker.Key(): the match key
	Source    string
	GroupID   string
	GroupName string
	Name      string // the team name the rule's template rendered
	// Admins are the wanted admins' emails (lower-cased, sorted): the
	// rule's admins, else pagertree.team_admins, plus the group's owners
	// with admins_from_owners.
	Admins    []string
	Rule      int // index into Policy.Rules
	Members   []string
	Adopt     bool
	OnMissing string
}

// Marker is the ownership marker the team carries.
func (t WantedTeam) Marker() Marker { return Marker{Source: t.Source, GroupID: t.GroupID} }

// admins is the wanted admin set of group g's team under rule r.
func (r rule) admins(pol Policy, snap *sources.Snapshot, g sources.Group) []string {
	list := r.cfg.Admins
	if len(list) == 0 {
		list = pol.TeamAdmins
	}
	out := make([]string, 0, len(list)+len(g.Owners))
	for _, e := range list {
		out = append(out, EmailKey(e))
	}
	if r.cfg.AdminsFromOwners {
		for _, id := range g.Owners {
			if u, ok := snap.Users[id]; ok && !u.Disabled && EmailKey(u.Email) != "" {
				out = append(out, EmailKey(u.Email))
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Desired is the PagerTree state the directory asks for.
type Desired struct {
	Users map[string]WantedUser // by lower-cased email
	Teams map[string]WantedTeam // by marker key
	// Sources names every source that was fetched (the engine aborts on any
	// source error, so each of them is healthy). A managed team whose
	// source is not here is never touched.
	Sources map[string]bool
	// Present holds every enabled email any source returned, wanted or not:
	// users.delete removes only users absent from all of them. A disabled
	// directory user is not present: disabling is how directories mark a
	// leaver.
	Present map[string]bool
	// Skipped counts directory users left out, by reason (disabled, no_email).
	Skipped map[string]int
	// UnusablePhones are the wanted users' phones left out because the
	// account takes E.164 only (PhonesE164): "email (phone)", sorted.
	UnusablePhones []string
}

// Reasons BuildDesired leaves a directory user out.
const (
	SkipDisabled = "disabled"
	SkipNoEmail  = sources.SkipNoEmail
)

// EmailKey is the form emails are matched in: trimmed and lower-cased.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// rule is a teams: rule ready to match.
type rule struct {
	index int
	cfg   config.TeamRule
	match func(name string) bool
	name  *template.Template
}

// compileRules parses every rule's match and template, naming the rule in
// any error.
func compileRules(rules []config.TeamRule) ([]rule, error) {
	out := make([]rule, 0, len(rules))
	for i, r := range rules {
		match, err := r.Matcher()
		if err != nil {
			return nil, fmt.Errorf("teams[%d].match %q: %w", i, r.Match, err)
		}
		t, err := r.NameTemplate()
		if err != nil {
			return nil, fmt.Errorf("teams[%d].name: %w", i, err)
		}
		out = append(out, rule{index: i, cfg: r, match: match, name: t})
	}
	return out, nil
}

// ruleFor is the first rule of source that matches the group name: rules
// are tried in configuration order, so put specific rules first.
func ruleFor(rules []rule, source, group string) (rule, bool) {
	for _, r := range rules {
		if r.cfg.Source == source && r.match(group) {
			return r, true
		}
	}
	return rule{}, false
}

// teamName renders the rule's template with the group as data (.Name, .ID,
// .Description).
func (r rule) teamName(source string, g sources.Group) (string, error) {
	var buf bytes.Buffer
	if err := r.name.Execute(&buf, g); err != nil {
		return "", fmt.Errorf("teams[%d].name for group %q of source %q: %w", r.index, g.Name, source, err)
	}
	name := strings.TrimSpace(buf.String())
	if name == "" || !utf8.ValidString(name) {
		return "", fmt.Errorf("teams[%d].name for group %q of source %q renders an empty or invalid team name", r.index, g.Name, source)
	}
	// A team name is printed in plans and logs and shown in PagerTree: a
	// newline or a bidi override in it could forge plan lines or disguise
	// the team, so it is refused rather than written.
	if HasControl(name) {
		return "", fmt.Errorf("teams[%d].name for group %q (id %q) of source %q renders team name %q, which holds control characters; rename the group in the directory, or make the rule's match skip it or its name template drop them",
			r.index, g.Name, g.ID, source, name)
	}
	return name, nil
}

// BuildDesired turns the snapshots (in configuration order) into the wanted
// PagerTree state. It fails on a bad rule or when two groups render the
// same team name; both are configuration errors to fix, not to guess at.
func BuildDesired(snaps []*sources.Snapshot, pol Policy) (Desired, error) {
	rules, err := compileRules(pol.Rules)
	if err != nil {
		return Desired{}, err
	}
	want := Desired{
		Users:   map[string]WantedUser{},
		Teams:   map[string]WantedTeam{},
		Sources: map[string]bool{},
		Present: map[string]bool{},
		Skipped: map[string]int{},
	}
	everyone := map[string]*WantedUser{}
	type groupRef struct{ source, group string }
	byName := map[string]groupRef{}
	for _, snap := range snaps {
		want.Sources[snap.Source] = true
		ids := make([]string, 0, len(snap.Users))
		for id := range snap.Users {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			u := snap.Users[id]
			email := EmailKey(u.Email)
			switch {
			case email == "":
				want.Skipped[SkipNoEmail]++
				continue
			case u.Disabled:
				want.Skipped[SkipDisabled]++
				continue
			}
			want.Present[email] = true
			w := everyone[email]
			if w == nil {
				w = &WantedUser{Email: email}
				everyone[email] = w
			}
			if w.Name == "" {
				w.Name = strings.TrimSpace(u.Name)
			}
			if w.Phone == "" {
				w.Phone = strings.TrimSpace(u.Phone) // normalised below, once wanted
			}
			w.Sources = append(w.Sources, Origin{Source: snap.Source, UserID: id})
		}

		groups := append([]sources.Group(nil), snap.Groups...)
		sort.Slice(groups, func(i, j int) bool { return groups[i].ID < groups[j].ID })
		for _, g := range groups {
			r, ok := ruleFor(rules, snap.Source, g.Name)
			if !ok {
				continue
			}
			name, err := r.teamName(snap.Source, g)
			if err != nil {
				return Desired{}, err
			}
			if other, dup := byName[name]; dup {
				return Desired{}, fmt.Errorf("team name %q is rendered by two groups: %q of source %q and %q of source %q; make the teams: rules give them different names",
					name, other.group, other.source, g.Name, snap.Source)
			}
			byName[name] = groupRef{source: snap.Source, group: g.Name}
			key := Marker{Source: snap.Source, GroupID: g.ID}.Key()
			if _, dup := want.Teams[key]; dup {
				return Desired{}, fmt.Errorf("source %q returned group id %q twice", snap.Source, g.ID)
			}
			want.Teams[key] = WantedTeam{
				Key: key, Source: snap.Source, GroupID: g.ID, GroupName: g.Name, Name: name,
				Rule: r.index, Members: groupMembers(snap, g), Admins: r.admins(pol, snap, g), Adopt: r.cfg.Adopt, OnMissing: onMissing(r.cfg),
			}
		}
	}

	if pol.Scope == config.ScopeAll {
		for email, w := range everyone {
			want.Users[email] = *w
		}
	} else {
		for _, t := range want.Teams {
			for _, email := range t.Members {
				want.Users[email] = *everyone[email]
			}
			// Admins who are directory users are wanted like members;
			// any other admin must already be in PagerTree.
			for _, email := range t.Admins {
				if w, ok := everyone[email]; ok {
					want.Users[email] = *w
				}
			}
		}
	}
	normalizePhones(want.Users, pol.PhoneRegion)
	if pol.PhonesE164 {
		for email, u := range want.Users {
			if u.Phone != "" && !isE164(u.Phone) {
				want.UnusablePhones = append(want.UnusablePhones, email+" ("+u.Phone+")")
				u.Phone = ""
				want.Users[email] = u
			}
		}
		sort.Strings(want.UnusablePhones)
	}
	return want, nil
}

// isE164 reports whether phone is written in E.164: "+", then 8 to 15
// digits, the first not 0.
func isE164(phone string) bool {
	if len(phone) < 9 || len(phone) > 16 || phone[0] != '+' || phone[1] == '0' {
		return false
	}
	for _, r := range phone[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// normalizePhones puts every wanted user's phone in E.164. Parsing a number
// is the costliest step of building the desired state (microseconds each,
// a second per hundred thousand), so it runs on every CPU.
func normalizePhones(users map[string]WantedUser, region string) {
	var emails []string
	for email, u := range users {
		if u.Phone != "" {
			emails = append(emails, email)
		}
	}
	phones := make([]string, len(emails))
	workers := min(runtime.GOMAXPROCS(0), 1+len(emails)/1000)
	var wg gosync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(emails); i += workers {
				phones[i] = NormalizePhone(users[emails[i]].Phone, region)
			}
		})
	}
	wg.Wait()
	for i, email := range emails {
		u := users[email]
		u.Phone = phones[i]
		users[email] = u
	}
}

// groupMembers is the group's enabled members with an email, as sorted,
// unique email keys. A member disabled in this source does not count even
// if another source has them enabled: the group's own directory decides.
func groupMembers(snap *sources.Snapshot, g sources.Group) []string {
	seen := make(map[string]bool, len(g.Members))
	members := make([]string, 0, len(g.Members))
	for _, id := range g.Members {
		u, ok := snap.Users[id]
		email := EmailKey(u.Email)
		if !ok || u.Disabled || email == "" || seen[email] {
			continue
		}
		seen[email] = true
		members = append(members, email)
	}
	sort.Strings(members)
	return members
}

// onMissing is the rule's on_missing with its default, keep.
func onMissing(r config.TeamRule) string {
	if r.OnMissing == "" {
		return config.OnMissingKeep
	}
	return r.OnMissing
}
