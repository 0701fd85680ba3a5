package pagertreetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// state is the account's users and teams. Its methods expect Server.mu to
// be held and return copies, so nothing stored is shared outside the lock.
type state struct {
	account     string
	idRand      *rand.Rand // fixed seed: the same calls issue the same ids
	ids         map[string]bool
	users       []*pagertree.User // creation order
	userByID    map[string]*pagertree.User
	userByEmail map[string]*pagertree.User // by lower-case email
	teams       []*pagertree.Team          // creation order
	teamByID    map[string]*pagertree.Team
}

func newState() state {
	st := state{
		idRand:      rand.New(rand.NewPCG(0x70616765, 0x72747265)),
		ids:         map[string]bool{},
		userByID:    map[string]*pagertree.User{},
		userByEmail: map[string]*pagertree.User{},
		teamByID:    map[string]*pagertree.Team{},
	}
	st.account = st.newID("acc_")
	return st
}

// idAlphabet is the shortid alphabet the seed's ids ("usr_r1mnuJg6z") use.
const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

// newID returns prefix and nine random characters, never issued before.
func (st *state) newID(prefix string) string {
	for {
		b := []byte(prefix)
		for range 9 {
			b = append(b, idAlphabet[st.idRand.IntN(len(idAlphabet))])
		}
		if id := string(b); !st.ids[id] {
			st.ids[id] = true
			return id
		}
	}
}

// timestamp formats t as the API does: RFC 3339, UTC, milliseconds.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// Errors of the state, each mapped to its HTTP status by the handlers.
var (
	errInvalid  = errors.New("invalid")   // 400
	errNotFound = errors.New("not found") // 404
	errConflict = errors.New("conflict")  // 409
)

// apiError is a state error carrying the message the API answers with.
type apiError struct {
	kind    error
	message string
}

func (e *apiError) Error() string { return e.message }
func (e *apiError) Unwrap() error { return e.kind }

func invalid(format string, args ...any) error {
	return &apiError{errInvalid, fmt.Sprintf(format, args...)}
}

// checkEmail validates an email a user would get; self is the user that
// may already hold it (nil on create).
func (st *state) checkEmail(email string, self *pagertree.User) error {
	if email == "" {
		return invalid("'email' is a required parameter")
	}
	if !validEmail(email) {
		return invalid("'email' must be an email address")
	}
	if other, ok := st.userByEmail[strings.ToLower(email)]; ok && other != self {
		return &apiError{errConflict, "a user with email '" + email + "' already exists"}
	}
	return nil
}

// validEmail reports whether email looks like an address: something, "@",
// something, and no white space.
func validEmail(email string) bool {
	local, domain, ok := strings.Cut(email, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(email, " \t\r\n")
}

// checkMembers validates a team's member ids.
func (st *state) checkMembers(ids []string) error {
	for _, id := range ids {
		if st.userByID[id] == nil {
			return invalid("'member_user_ids' contains '%s', which is no user", id)
		}
	}
	return nil
}

// checkNewID validates an id given by a caller of AddUser or AddTeam.
func (st *state) checkNewID(id, prefix string) error {
	if !strings.HasPrefix(id, prefix) {
		return invalid("id '%s' must start with %q", id, prefix)
	}
	if st.ids[id] {
		return &apiError{errConflict, "id '" + id + "' is already used"}
	}
	return nil
}

// addUser stores u, filling in what the API assigns.
func (st *state) addUser(u pagertree.User, now time.Time) (pagertree.User, error) {
	if err := st.checkEmail(u.Email, nil); err != nil {
		return pagertree.User{}, err
	}
	if u.ID == "" {
		u.ID = st.newID("usr_")
	} else if err := st.checkNewID(u.ID, "usr_"); err != nil {
		return pagertree.User{}, err
	} else {
		st.ids[u.ID] = true
	}
	u.SID = st.account
	if u.CreatedAt == "" {
		u.CreatedAt = timestamp(now)
	}
	if u.UpdatedAt == "" {
		u.UpdatedAt = u.CreatedAt
	}
	stored := &u
	st.users = append(st.users, stored)
	st.userByID[u.ID] = stored
	st.userByEmail[strings.ToLower(u.Email)] = stored
	return u, nil
}

// userChanges is a user PUT: nil fields were not sent.
type userChanges struct {
	Name  *string          `json:"name"`
	Email *string          `json:"email"`
	Phone *string          `json:"phone"`
	Roles *pagertree.Roles `json:"roles"`
}

func (st *state) updateUser(id string, c userChanges, now time.Time) (pagertree.User, error) {
	stored := st.userByID[id]
	if stored == nil {
		return pagertree.User{}, &apiError{errNotFound, "user '" + id + "' not found"}
	}
	if c.Email != nil {
		if err := st.checkEmail(*c.Email, stored); err != nil {
			return pagertree.User{}, err
		}
	}
	u := *stored
	if c.Name != nil {
		u.Name = *c.Name
	}
	if c.Email != nil {
		delete(st.userByEmail, strings.ToLower(u.Email))
		u.Email = *c.Email
		st.userByEmail[strings.ToLower(u.Email)] = stored
	}
	if c.Phone != nil {
		u.Phone = *c.Phone
	}
	if c.Roles != nil {
		u.Roles = *c.Roles
	}
	u.UpdatedAt = timestamp(now)
	*stored = u
	return u, nil
}

// deleteUser removes a user and takes it out of every team.
func (st *state) deleteUser(id string, now time.Time) error {
	stored := st.userByID[id]
	if stored == nil {
		return &apiError{errNotFound, "user '" + id + "' not found"}
	}
	st.users = slices.DeleteFunc(st.users, func(u *pagertree.User) bool { return u == stored })
	delete(st.userByID, id)
	delete(st.userByEmail, strings.ToLower(stored.Email))
	for _, t := range st.teams {
		if slices.Contains(t.MemberUserIDs, id) {
			t.MemberUserIDs = slices.DeleteFunc(t.MemberUserIDs, func(m string) bool { return m == id })
			t.UpdatedAt = timestamp(now)
		}
	}
	return nil
}

func (st *state) user(id string) (pagertree.User, error) {
	if u := st.userByID[id]; u != nil {
		return *u, nil
	}
	return pagertree.User{}, &apiError{errNotFound, "user '" + id + "' not found"}
}

// addTeam stores t, filling in what the API assigns.
func (st *state) addTeam(t pagertree.Team, now time.Time) (pagertree.Team, error) {
	if strings.TrimSpace(t.Name) == "" {
		return pagertree.Team{}, invalid("'name' is a required parameter")
	}
	if err := st.checkMembers(t.MemberUserIDs); err != nil {
		return pagertree.Team{}, err
	}
	if t.ID == "" {
		t.ID = st.newID("tem_")
	} else if err := st.checkNewID(t.ID, "tem_"); err != nil {
		return pagertree.Team{}, err
	} else {
		st.ids[t.ID] = true
	}
	if t.ScheduleID == "" {
		t.ScheduleID = st.newID("skd_")
	}
	t.SID = st.account
	t.MemberUserIDs = dedupe(t.MemberUserIDs)
	if t.CreatedAt == "" {
		t.CreatedAt = timestamp(now)
	}
	if t.UpdatedAt == "" {
		t.UpdatedAt = t.CreatedAt
	}
	stored := &t
	st.teams = append(st.teams, stored)
	st.teamByID[t.ID] = stored
	return copyTeam(stored), nil
}

// teamChanges is a team PUT: nil fields were not sent.
type teamChanges struct {
	Name          *string   `json:"name"`
	Description   *string   `json:"description"`
	MemberUserIDs *[]string `json:"member_user_ids"`
}

func (st *state) updateTeam(id string, c teamChanges, now time.Time) (pagertree.Team, error) {
	stored := st.teamByID[id]
	if stored == nil {
		return pagertree.Team{}, &apiError{errNotFound, "team '" + id + "' not found"}
	}
	if c.Name != nil && strings.TrimSpace(*c.Name) == "" {
		return pagertree.Team{}, invalid("'name' must not be empty")
	}
	if c.MemberUserIDs != nil {
		if err := st.checkMembers(*c.MemberUserIDs); err != nil {
			return pagertree.Team{}, err
		}
	}
	if c.Name != nil {
		stored.Name = *c.Name
	}
	if c.Description != nil {
		stored.Description = *c.Description
	}
	if c.MemberUserIDs != nil {
		stored.MemberUserIDs = dedupe(*c.MemberUserIDs)
	}
	stored.UpdatedAt = timestamp(now)
	return copyTeam(stored), nil
}

func (st *state) deleteTeam(id string) error {
	stored := st.teamByID[id]
	if stored == nil {
		return &apiError{errNotFound, "team '" + id + "' not found"}
	}
	st.teams = slices.DeleteFunc(st.teams, func(t *pagertree.Team) bool { return t == stored })
	delete(st.teamByID, id)
	return nil
}

func (st *state) team(id string) (pagertree.Team, error) {
	if t := st.teamByID[id]; t != nil {
		return copyTeam(t), nil
	}
	return pagertree.Team{}, &apiError{errNotFound, "team '" + id + "' not found"}
}

// copyTeam returns a copy of t sharing nothing mutable with it.
func copyTeam(t *pagertree.Team) pagertree.Team {
	c := *t
	c.MemberUserIDs = slices.Clone(t.MemberUserIDs)
	if c.MemberUserIDs == nil {
		c.MemberUserIDs = []string{}
	}
	return c
}

// dedupe returns ids without repeats, in first-seen order, never nil.
func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// AddUser stores u directly, bypassing HTTP and faults, and returns it as
// stored: id, sid and timestamps are filled in when empty. Any roles are
// kept, admin included. It fails on a missing, malformed or already used
// email, an id already used or not starting with "usr_", or in v4 mode.
func (s *Server) AddUser(u pagertree.User) (pagertree.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		return pagertree.User{}, fmt.Errorf("pagertreetest: add user: %w", errSpeaksV4)
	}
	added, err := s.addUser(u, s.now())
	if err != nil {
		return pagertree.User{}, fmt.Errorf("pagertreetest: add user: %w", err)
	}
	return added, nil
}

// AddTeam stores t directly, bypassing HTTP and faults, and returns it as
// stored: id, sid, timestamps and a schedule_id are filled in when empty.
// It fails on a missing name, a member id that is no user, an id already
// used or not starting with "tem_", or in v4 mode.
func (s *Server) AddTeam(t pagertree.Team) (pagertree.Team, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		return pagertree.Team{}, fmt.Errorf("pagertreetest: add team: %w", errSpeaksV4)
	}
	added, err := s.addTeam(t, s.now())
	if err != nil {
		return pagertree.Team{}, fmt.Errorf("pagertreetest: add team: %w", err)
	}
	return added, nil
}

// Users returns a copy of every user, in creation order.
func (s *Server) Users() []pagertree.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pagertree.User, len(s.users))
	for i, u := range s.users {
		out[i] = *u
	}
	return out
}

// Teams returns a copy of every team, in creation order.
func (s *Server) Teams() []pagertree.Team {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pagertree.Team, len(s.teams))
	for i, t := range s.teams {
		out[i] = copyTeam(t)
	}
	return out
}
