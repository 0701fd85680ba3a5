package pagertreetest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ptsync/ptsync/pagertree"
)

// fixture is the file Load reads.
type fixture struct {
	Users []fixtureUser `json:"users" yaml:"users"`
	Teams []fixtureTeam `json:"teams" yaml:"teams"`
}

type fixtureUser struct {
	Name  string       `json:"name" yaml:"name"`
	Email string       `json:"email" yaml:"email"`
	Phone string       `json:"phone" yaml:"phone"`
	Roles fixtureRoles `json:"roles" yaml:"roles"`
}

type fixtureRoles struct {
	Admin        bool `json:"admin" yaml:"admin"`
	AdminBilling bool `json:"admin_billing" yaml:"admin_billing"`
	Broadcast    bool `json:"broadcast" yaml:"broadcast"`
}

type fixtureTeam struct {
	Name        string   `json:"name" yaml:"name"`
	Description string   `json:"description" yaml:"description"` // v4: notes
	Members     []string `json:"members" yaml:"members"`         // user emails
	Admins      []string `json:"admins" yaml:"admins"`           // user emails; v4 only
}

// Load adds the users and teams of a YAML or JSON fixture, all or nothing:
//
//	users:
//	  - {name: Ann, email: ann@example.com, phone: "+14155550100", roles: {admin: true}}
//	teams:
//	  - {name: DB, description: database on-call, members: [ann@example.com]}
//
// A fixture whose first character is "{" is JSON, anything else YAML.
// Team members are user emails (of the fixture or already stored), matched
// without regard to letter case. Decoding is strict: an unknown key is an
// error.
//
// In v4 mode users become account users (roles admin, admin_billing and
// broadcast become admin, billing and broadcaster), a description becomes
// the team's notes, and a team may list its admins, user emails too; a
// team that does not has its first member as admin. Account users and
// teams must then pass the API's checks: a name, a phone in E.164, at
// least one member and one admin. In v3 mode "admins" is an error.
func (s *Server) Load(r io.Reader) error {
	fx, err := decodeFixture(r)
	if err != nil {
		return fmt.Errorf("pagertreetest: load fixture: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		return s.v4.load(fx, s.now())
	}
	// Check everything first so that a bad fixture adds nothing.
	if err := s.checkFixture(fx); err != nil {
		return fmt.Errorf("pagertreetest: load fixture: %w", err)
	}
	now := s.now()
	for i, fu := range fx.Users {
		if _, err := s.addUser(pagertree.User{
			Name:  fu.Name,
			Email: fu.Email,
			Phone: fu.Phone,
			Roles: pagertree.Roles(fu.Roles),
		}, now); err != nil {
			return fmt.Errorf("pagertreetest: load fixture: users[%d]: %w", i, err)
		}
	}
	for i, ft := range fx.Teams {
		members := make([]string, len(ft.Members))
		for j, email := range ft.Members {
			members[j] = s.userByEmail[strings.ToLower(email)].ID
		}
		if _, err := s.addTeam(pagertree.Team{Name: ft.Name, Description: ft.Description, MemberUserIDs: members}, now); err != nil {
			return fmt.Errorf("pagertreetest: load fixture: teams[%d]: %w", i, err)
		}
	}
	return nil
}

func decodeFixture(r io.Reader) (fixture, error) {
	var fx fixture
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	switch {
	case errors.Is(err, io.EOF):
		return fx, nil // an empty fixture adds nothing
	case err != nil:
		return fx, fmt.Errorf("read: %w", err)
	}
	if first == '{' {
		dec := json.NewDecoder(br)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fx); err != nil {
			return fx, fmt.Errorf("decode JSON: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return fx, errors.New("decode JSON: data after the fixture object")
		}
		return fx, nil
	}
	dec := yaml.NewDecoder(br)
	dec.KnownFields(true)
	if err := dec.Decode(&fx); err != nil && !errors.Is(err, io.EOF) {
		return fx, fmt.Errorf("decode YAML: %w", err)
	}
	return fx, nil
}

// firstNonSpace peeks at the first non-whitespace byte of br.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if !strings.ContainsRune(" \t\r\n", rune(b)) {
			return b, br.UnreadByte()
		}
	}
}

// checkFixtureUsers checks each user of fx with check and that no email
// is there twice, and every team for a name. It returns the problems and
// the fixture's emails, lower-cased, for the teams' checks.
func checkFixtureUsers(fx fixture, check func(fixtureUser) error) ([]error, map[string]bool) {
	var problems []error
	emails := map[string]bool{}
	for i, fu := range fx.Users {
		lower := strings.ToLower(fu.Email)
		if err := check(fu); err != nil {
			problems = append(problems, fmt.Errorf("users[%d]: %w", i, err))
		} else if emails[lower] {
			problems = append(problems, fmt.Errorf("users[%d]: email %q appears twice", i, fu.Email))
		}
		emails[lower] = true
	}
	for i, ft := range fx.Teams {
		if strings.TrimSpace(ft.Name) == "" {
			problems = append(problems, fmt.Errorf("teams[%d]: 'name' is required", i))
		}
	}
	return problems, emails
}

// checkFixture finds every reason Load would fail, before anything is stored.
func (s *Server) checkFixture(fx fixture) error {
	problems, emails := checkFixtureUsers(fx, func(fu fixtureUser) error { return s.checkEmail(fu.Email, nil) })
	for i, ft := range fx.Teams {
		if ft.Admins != nil {
			problems = append(problems, fmt.Errorf("teams[%d] %q: 'admins' is for v4 only", i, ft.Name))
		}
		for _, email := range ft.Members {
			lower := strings.ToLower(email)
			if !emails[lower] && s.userByEmail[lower] == nil {
				problems = append(problems, fmt.Errorf("teams[%d] %q: member %q is no user", i, ft.Name, email))
			}
		}
	}
	return errors.Join(problems...)
}
