package pagertreetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ptsync/ptsync/pagertree"
)

// errUnprocessable is a v4 validation failure (422).
var errUnprocessable = errors.New("unprocessable")

func unprocessable(format string, args ...any) error {
	return &apiError{errUnprocessable, fmt.Sprintf(format, args...)}
}

// stateV4 is the account of a v4 server: account users and teams. Like
// state, its methods expect Server.mu to be held and return copies.
type stateV4 struct {
	account string
	idRand  *rand.Rand // fixed seed: the same calls issue the same ids
	ids     map[string]bool
	// Last tiny_id issued, by model.
	tinyAccountUser, tinyTeam int

	accountUsers       []*pagertree.AccountUser // creation order
	accountUserByID    map[string]*pagertree.AccountUser
	accountUserByEmail map[string]*pagertree.AccountUser // every email of each, lower case
	teams              []*pagertree.TeamV4               // creation order
	teamByID           map[string]*pagertree.TeamV4
	// existingLogins are lower-case emails of people with a PagerTree
	// login elsewhere, whom a create invites (AddExistingLogin).
	existingLogins map[string]bool
}

func newStateV4(now time.Time) *stateV4 {
	st := &stateV4{
		idRand:             rand.New(rand.NewPCG(0x70743476, 0x34617069)),
		ids:                map[string]bool{},
		accountUserByID:    map[string]*pagertree.AccountUser{},
		accountUserByEmail: map[string]*pagertree.AccountUser{},
		teamByID:           map[string]*pagertree.TeamV4{},
		existingLogins:     map[string]bool{},
	}
	st.account = st.newULID(now)
	return st
}

// crockford is the base32 alphabet of ULIDs.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newULID returns a ULID never issued before: 48 bits of Unix milliseconds
// and 80 random bits, in 26 characters of Crockford base32.
func (st *stateV4) newULID(now time.Time) string {
	for {
		hi := uint64(now.UnixMilli())<<16 | st.idRand.Uint64()&0xffff
		if id := encodeULID(hi, st.idRand.Uint64()); !st.ids[id] {
			st.ids[id] = true
			return id
		}
	}
}

// encodeULID writes the 128 bits hi:lo as 26 base32 digits, the first of
// which holds only the top 3 bits.
func encodeULID(hi, lo uint64) string {
	var out [26]byte
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// prefixAlphabet is that of the ids after a prefix ("acu_xxxxxxxx").
const prefixAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// newPrefixID returns prefix and eight random characters, never issued before.
func (st *stateV4) newPrefixID(prefix string) string {
	for {
		b := []byte(prefix)
		for range 8 {
			b = append(b, prefixAlphabet[st.idRand.IntN(len(prefixAlphabet))])
		}
		if id := string(b); !st.ids[id] {
			st.ids[id] = true
			return id
		}
	}
}

// claimIDs marks the ids a caller of AddAccountUser or AddTeamV4 gave as
// issued; empty ones are skipped. It marks none if one is taken.
func (st *stateV4) claimIDs(ids ...string) error {
	given := map[string]bool{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if st.ids[id] || given[id] {
			return &apiError{errConflict, "id '" + id + "' is already used"}
		}
		given[id] = true
	}
	for id := range given {
		st.ids[id] = true
	}
	return nil
}

// e164 is what the API takes as a phone number.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// checkPerson validates a person an account user would have; self is the
// account user that may already hold its emails (nil on create).
func (st *stateV4) checkPerson(p pagertree.Person, self *pagertree.AccountUser) error {
	if strings.TrimSpace(p.Name) == "" {
		return unprocessable("user name can't be blank")
	}
	if len(p.Emails) == 0 {
		return unprocessable("user must have at least one email")
	}
	seen := map[string]bool{}
	for _, e := range p.Emails {
		lower := strings.ToLower(e.Email)
		switch other := st.accountUserByEmail[lower]; {
		case e.Email == "":
			return unprocessable("email can't be blank")
		case !validEmail(e.Email):
			return unprocessable("email '%s' is invalid", e.Email)
		case seen[lower]:
			return unprocessable("email '%s' is given twice", e.Email)
		case other != nil && other != self:
			return unprocessable("email '%s' has already been taken", e.Email)
		}
		seen[lower] = true
	}
	for _, ph := range p.Phones {
		if !e164.MatchString(ph.Phone) {
			return unprocessable("phone '%s' is not in E.164 format (+ and 8 to 15 digits)", ph.Phone)
		}
	}
	return nil
}

// fillPersonIDs gives ids to a person and its emails and phones that have none.
func (st *stateV4) fillPersonIDs(p *pagertree.Person, now time.Time) {
	if p.ID == "" {
		p.ID = st.newULID(now)
	}
	if p.PrefixID == "" {
		p.PrefixID = st.newPrefixID("usr_")
	}
	for i := range p.Emails {
		if p.Emails[i].ID == "" {
			p.Emails[i].ID = st.newULID(now)
		}
	}
	for i := range p.Phones {
		if p.Phones[i].ID == "" {
			p.Phones[i].ID = st.newULID(now)
		}
		if p.Phones[i].PrefixID == "" {
			p.Phones[i].PrefixID = st.newPrefixID("phn_")
		}
	}
}

// addAccountUser stores au, filling in what the API assigns.
func (st *stateV4) addAccountUser(au pagertree.AccountUser, now time.Time) (pagertree.AccountUser, error) {
	au = copyAccountUser(&au)
	onePrimary(au.User.Emails, -1, emailFields)
	onePrimary(au.User.Phones, -1, phoneFields)
	if err := st.checkPerson(au.User, nil); err != nil {
		return pagertree.AccountUser{}, err
	}
	ids := []string{au.ID, au.PrefixID, au.User.ID, au.User.PrefixID}
	for _, e := range au.User.Emails {
		ids = append(ids, e.ID)
	}
	for _, ph := range au.User.Phones {
		ids = append(ids, ph.ID, ph.PrefixID)
	}
	if err := st.claimIDs(ids...); err != nil {
		return pagertree.AccountUser{}, err
	}
	if au.ID == "" {
		au.ID = st.newULID(now)
	}
	if au.PrefixID == "" {
		au.PrefixID = st.newPrefixID("acu_")
	}
	st.fillPersonIDs(&au.User, now)
	au.AccountID = st.account
	au.TinyID = nextTiny(&st.tinyAccountUser, au.TinyID)
	au.CreatedAt, au.UpdatedAt = stamps(au.CreatedAt, au.UpdatedAt, now)
	stored := &au
	st.accountUsers = append(st.accountUsers, stored)
	st.accountUserByID[au.ID] = stored
	st.indexEmails(stored)
	return copyAccountUser(stored), nil
}

// nextTiny returns given, or the model's next tiny_id when it is zero,
// keeping last at the largest issued.
func nextTiny(last *int, given int) int {
	if given == 0 {
		given = *last + 1
	}
	*last = max(*last, given)
	return given
}

// stamps fills in empty created_at and updated_at.
func stamps(created, updated string, now time.Time) (string, string) {
	if created == "" {
		created = timestamp(now)
	}
	if updated == "" {
		updated = created
	}
	return created, updated
}

func (st *stateV4) indexEmails(au *pagertree.AccountUser) {
	for _, e := range au.User.Emails {
		st.accountUserByEmail[strings.ToLower(e.Email)] = au
	}
}

func (st *stateV4) unindexEmails(au *pagertree.AccountUser) {
	for _, e := range au.User.Emails {
		delete(st.accountUserByEmail, strings.ToLower(e.Email))
	}
}

// accountUserParams is an account user's body as strong params permit it;
// nil fields were not sent. Roles replace the whole hash, as assigning a
// Rails hash attribute does. member_team_ids and notification_rule_id are
// permitted but not modelled, so dropped.
type accountUserParams struct {
	Roles *pagertree.AccountRoles `json:"roles"`
	User  *personParams           `json:"user_attributes"`
}

// personParams are user_attributes. ID must be the user's own on update
// and is ignored on create.
type personParams struct {
	ID     string          `json:"id"`
	Name   *string         `json:"name"`
	Emails []contactParams `json:"emails_attributes"`
	Phones []contactParams `json:"phones_attributes"`
}

// contactParams is one entry of emails_attributes or phones_attributes;
// Email is read from the first, Phone from the second.
type contactParams struct {
	ID      string              `json:"id"`
	Email   *string             `json:"email"`
	Phone   *string             `json:"phone"`
	Primary *pagertree.FlexBool `json:"primary"`
	Destroy pagertree.FlexBool  `json:"_destroy"`
}

// createAccountUser serves POST /account_users.
func (st *stateV4) createAccountUser(p accountUserParams, now time.Time) (pagertree.AccountUser, error) {
	var au pagertree.AccountUser
	if p.Roles != nil {
		au.Roles = *p.Roles
	}
	if p.User != nil {
		// The user is new: an email or phone naming an id finds nothing,
		// as in Rails.
		if err := applyPerson(&au.User, *p.User); err != nil {
			return pagertree.AccountUser{}, err
		}
	}
	for _, e := range au.User.Emails {
		au.Invited = au.Invited || st.existingLogins[strings.ToLower(e.Email)]
	}
	return st.addAccountUser(au, now)
}

// updateAccountUser serves PUT /account_users/:id.
func (st *stateV4) updateAccountUser(id string, p accountUserParams, now time.Time) (pagertree.AccountUser, error) {
	stored, err := st.findAccountUser(id)
	if err != nil {
		return pagertree.AccountUser{}, err
	}
	au := copyAccountUser(stored)
	if p.Roles != nil {
		au.Roles = *p.Roles
	}
	if p.User != nil {
		// Without the user's own id, Rails would build another user.
		if p.User.ID != au.User.ID {
			return pagertree.AccountUser{}, unprocessable("user_attributes id '%s' is not the id of this account user's user ('%s')", p.User.ID, au.User.ID)
		}
		if err := applyPerson(&au.User, *p.User); err != nil {
			return pagertree.AccountUser{}, err
		}
	}
	if err := st.checkPerson(au.User, stored); err != nil {
		return pagertree.AccountUser{}, err
	}
	st.fillPersonIDs(&au.User, now)
	au.UpdatedAt = timestamp(now)
	st.unindexEmails(stored)
	*stored = au
	st.indexEmails(stored)
	return copyAccountUser(stored), nil
}

// applyPerson applies a person's nested attributes to p.
func applyPerson(p *pagertree.Person, a personParams) error {
	if a.Name != nil {
		p.Name = *a.Name
	}
	emails, err := applyContacts(p.Emails, a.Emails, "Email", p.ID, func(c contactParams) *string { return c.Email }, emailFields)
	if err != nil {
		return err
	}
	phones, err := applyContacts(p.Phones, a.Phones, "Phone", p.ID, func(c contactParams) *string { return c.Phone }, phoneFields)
	if err != nil {
		return err
	}
	p.Emails, p.Phones = emails, phones
	return nil
}

// fields exposes an email's or a phone's id, value and primary flag.
type fields[T any] func(*T) (id, value *string, primary *pagertree.FlexBool)

func emailFields(e *pagertree.Email) (*string, *string, *pagertree.FlexBool) {
	return &e.ID, &e.Email, &e.Primary
}

func phoneFields(ph *pagertree.Phone) (*string, *string, *pagertree.FlexBool) {
	return &ph.ID, &ph.Phone, &ph.Primary
}

// applyContacts applies nested attributes to a copy of items, as Rails'
// accepts_nested_attributes_for does: an entry with an id changes that
// item, or removes it with _destroy; one without adds an item (or nothing,
// with _destroy). An entry marked primary becomes the only primary item.
func applyContacts[T any](items []T, attrs []contactParams, model, userID string, value func(contactParams) *string, f fields[T]) ([]T, error) {
	items = slices.Clone(items)
	destroyed := map[int]bool{}
	chosen := -1
	for _, a := range attrs {
		var i int
		if a.ID == "" {
			if a.Destroy {
				continue
			}
			items = append(items, *new(T))
			i = len(items) - 1
		} else {
			i = slices.IndexFunc(items, func(it T) bool { id, _, _ := f(&it); return *id == a.ID })
			if i < 0 || destroyed[i] {
				return nil, &apiError{errNotFound, fmt.Sprintf("Couldn't find %s with ID=%s for User with ID=%s", model, a.ID, userID)}
			}
			if a.Destroy {
				destroyed[i] = true
				continue
			}
		}
		_, val, primary := f(&items[i])
		if v := value(a); v != nil {
			*val = *v
		}
		if a.Primary != nil {
			*primary = *a.Primary
			if *a.Primary {
				chosen = i
			}
		}
	}
	kept := make([]T, 0, len(items))
	keptChosen := -1
	for i, it := range items {
		if destroyed[i] {
			continue
		}
		if i == chosen {
			keptChosen = len(kept)
		}
		kept = append(kept, it)
	}
	onePrimary(kept, keptChosen, f)
	return kept, nil
}

// onePrimary leaves exactly one item primary, unless there are none:
// chosen if not -1, else the first already primary, else the first.
func onePrimary[T any](items []T, chosen int, f fields[T]) {
	for i := range items {
		if _, _, primary := f(&items[i]); chosen < 0 && bool(*primary) {
			chosen = i
		}
	}
	chosen = max(chosen, 0)
	for i := range items {
		_, _, primary := f(&items[i])
		*primary = pagertree.FlexBool(i == chosen)
	}
}

// deleteAccountUser removes an account user from the account and from its
// teams, unless a team would be left without a member or an admin.
func (st *stateV4) deleteAccountUser(id string, now time.Time) error {
	stored, err := st.findAccountUser(id)
	if err != nil {
		return err
	}
	for _, t := range st.teams {
		for _, role := range []struct {
			name string
			ids  []string
		}{{"member", t.MemberAccountUserIDs}, {"admin", t.AdminAccountUserIDs}} {
			if len(role.ids) == 1 && role.ids[0] == id {
				return unprocessable("account user '%s' is the only %s of team '%s' (%s): give the team another %s first", id, role.name, t.Name, t.ID, role.name)
			}
		}
	}
	for _, t := range st.teams {
		members := slices.DeleteFunc(slices.Clone(t.MemberAccountUserIDs), func(m string) bool { return m == id })
		admins := slices.DeleteFunc(slices.Clone(t.AdminAccountUserIDs), func(m string) bool { return m == id })
		if len(members) != len(t.MemberAccountUserIDs) || len(admins) != len(t.AdminAccountUserIDs) {
			t.MemberAccountUserIDs, t.AdminAccountUserIDs = members, admins
			t.UpdatedAt = timestamp(now)
		}
	}
	st.accountUsers = slices.DeleteFunc(st.accountUsers, func(au *pagertree.AccountUser) bool { return au == stored })
	delete(st.accountUserByID, id)
	st.unindexEmails(stored)
	return nil
}

func (st *stateV4) findAccountUser(id string) (*pagertree.AccountUser, error) {
	if au := st.accountUserByID[id]; au != nil {
		return au, nil
	}
	return nil, &apiError{errNotFound, "account user '" + id + "' not found"}
}

// copyAccountUser returns a copy of au sharing nothing mutable with it,
// its lists never nil.
func copyAccountUser(au *pagertree.AccountUser) pagertree.AccountUser {
	c := *au
	c.User.Emails = append([]pagertree.Email{}, au.User.Emails...)
	c.User.Phones = append([]pagertree.Phone{}, au.User.Phones...)
	return c
}

// checkTeam validates a team's name and roles.
func (st *stateV4) checkTeam(t pagertree.TeamV4) error {
	if strings.TrimSpace(t.Name) == "" {
		return unprocessable("name can't be blank")
	}
	for _, role := range []struct {
		param string
		ids   []string
	}{{"member_account_user_ids", t.MemberAccountUserIDs}, {"admin_account_user_ids", t.AdminAccountUserIDs}} {
		if len(role.ids) == 0 {
			return unprocessable("a team needs at least 1 account user in %s", role.param)
		}
		for _, id := range role.ids {
			if st.accountUserByID[id] == nil {
				return unprocessable("%s contains '%s', which is no account user", role.param, id)
			}
		}
	}
	return nil
}

// addTeam stores t, filling in what the API assigns, its default schedule
// and escalation policy included.
func (st *stateV4) addTeam(t pagertree.TeamV4, now time.Time) (pagertree.TeamV4, error) {
	t.MemberAccountUserIDs = dedupe(t.MemberAccountUserIDs)
	t.AdminAccountUserIDs = dedupe(t.AdminAccountUserIDs)
	if err := st.checkTeam(t); err != nil {
		return pagertree.TeamV4{}, err
	}
	if err := st.claimIDs(t.ID, t.PrefixID, t.ScheduleID, t.EscalationPolicyID); err != nil {
		return pagertree.TeamV4{}, err
	}
	if t.ID == "" {
		t.ID = st.newULID(now)
	}
	if t.PrefixID == "" {
		t.PrefixID = st.newPrefixID("tem_")
	}
	if t.ScheduleID == "" {
		t.ScheduleID = st.newULID(now)
	}
	if t.EscalationPolicyID == "" {
		t.EscalationPolicyID = st.newULID(now)
	}
	t.AccountID = st.account
	t.TinyID = nextTiny(&st.tinyTeam, t.TinyID)
	t.CreatedAt, t.UpdatedAt = stamps(t.CreatedAt, t.UpdatedAt, now)
	stored := &t
	st.teams = append(st.teams, stored)
	st.teamByID[t.ID] = stored
	return copyTeamV4(stored), nil
}

// teamParams is a team's body as strong params permit it; nil fields were
// not sent. schedule_id and escalation_policy_id are not permitted.
type teamParams struct {
	Name                 *string   `json:"name"`
	Notes                *string   `json:"notes"`
	MemberAccountUserIDs *[]string `json:"member_account_user_ids"`
	AdminAccountUserIDs  *[]string `json:"admin_account_user_ids"`
}

func (st *stateV4) createTeam(p teamParams, now time.Time) (pagertree.TeamV4, error) {
	return st.addTeam(pagertree.TeamV4{
		Name:                 deref(p.Name),
		Notes:                deref(p.Notes),
		MemberAccountUserIDs: deref(p.MemberAccountUserIDs),
		AdminAccountUserIDs:  deref(p.AdminAccountUserIDs),
	}, now)
}

func (st *stateV4) updateTeam(id string, p teamParams, now time.Time) (pagertree.TeamV4, error) {
	stored, err := st.findTeam(id)
	if err != nil {
		return pagertree.TeamV4{}, err
	}
	t := copyTeamV4(stored)
	if p.Name != nil {
		t.Name = *p.Name
	}
	if p.Notes != nil {
		t.Notes = *p.Notes
	}
	if p.MemberAccountUserIDs != nil {
		t.MemberAccountUserIDs = dedupe(*p.MemberAccountUserIDs)
	}
	if p.AdminAccountUserIDs != nil {
		t.AdminAccountUserIDs = dedupe(*p.AdminAccountUserIDs)
	}
	if err := st.checkTeam(t); err != nil {
		return pagertree.TeamV4{}, err
	}
	t.UpdatedAt = timestamp(now)
	*stored = t
	return copyTeamV4(stored), nil
}

func (st *stateV4) deleteTeam(id string) error {
	stored, err := st.findTeam(id)
	if err != nil {
		return err
	}
	st.teams = slices.DeleteFunc(st.teams, func(t *pagertree.TeamV4) bool { return t == stored })
	delete(st.teamByID, id)
	return nil
}

func (st *stateV4) findTeam(id string) (*pagertree.TeamV4, error) {
	if t := st.teamByID[id]; t != nil {
		return t, nil
	}
	return nil, &apiError{errNotFound, "team '" + id + "' not found"}
}

// copyTeamV4 returns a copy of t sharing nothing mutable with it, its
// lists never nil.
func copyTeamV4(t *pagertree.TeamV4) pagertree.TeamV4 {
	c := *t
	c.MemberAccountUserIDs = append([]string{}, t.MemberAccountUserIDs...)
	c.AdminAccountUserIDs = append([]string{}, t.AdminAccountUserIDs...)
	return c
}

// errSpeaksV3 and errSpeaksV4 refuse preloads meant for the other API.
var (
	errSpeaksV3 = errors.New("the server speaks v3 (Options.API)")
	errSpeaksV4 = errors.New("the server speaks v4 (Options.API)")
)

// AddAccountUser stores u directly, bypassing HTTP and faults, and returns
// it as stored: ids, prefix ids, account_id, tiny_id and timestamps are
// filled in where empty, and one email (and one phone, if any) made
// primary. It fails as an API create would: on a blank name, no email, a
// malformed email or one any account user has, a phone not in E.164; and
// on an id already used, or in v3 mode. Invited is kept as given.
func (s *Server) AddAccountUser(u pagertree.AccountUser) (pagertree.AccountUser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 == nil {
		return pagertree.AccountUser{}, fmt.Errorf("pagertreetest: add account user: %w", errSpeaksV3)
	}
	added, err := s.v4.addAccountUser(u, s.now())
	if err != nil {
		return pagertree.AccountUser{}, fmt.Errorf("pagertreetest: add account user: %w", err)
	}
	return added, nil
}

// AddTeamV4 stores t directly, bypassing HTTP and faults, and returns it
// as stored: ids, account_id, tiny_id, timestamps, schedule_id and
// escalation_policy_id are filled in where empty, repeated ids dropped. It
// fails as an API create would: on a blank name, no member or no admin, an
// id that is no account user; and on an id already used, or in v3 mode.
func (s *Server) AddTeamV4(t pagertree.TeamV4) (pagertree.TeamV4, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 == nil {
		return pagertree.TeamV4{}, fmt.Errorf("pagertreetest: add team: %w", errSpeaksV3)
	}
	added, err := s.v4.addTeam(t, s.now())
	if err != nil {
		return pagertree.TeamV4{}, fmt.Errorf("pagertreetest: add team: %w", err)
	}
	return added, nil
}

// AccountUsers returns a copy of every account user, in creation order
// (none in v3 mode).
func (s *Server) AccountUsers() []pagertree.AccountUser {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 == nil {
		return nil
	}
	out := make([]pagertree.AccountUser, len(s.v4.accountUsers))
	for i, au := range s.v4.accountUsers {
		out[i] = copyAccountUser(au)
	}
	return out
}

// TeamsV4 returns a copy of every v4 team, in creation order (none in v3
// mode).
func (s *Server) TeamsV4() []pagertree.TeamV4 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 == nil {
		return nil
	}
	out := make([]pagertree.TeamV4, len(s.v4.teams))
	for i, t := range s.v4.teams {
		out[i] = copyTeamV4(t)
	}
	return out
}

// AddExistingLogin marks email, matched without regard to letter case, as
// that of a person with a PagerTree login in another account: an API
// create of an account user with it invites that person, and the account
// user it makes has Invited set. It does nothing in v3 mode.
func (s *Server) AddExistingLogin(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		s.v4.existingLogins[strings.ToLower(email)] = true
	}
}

// AccountID is the account's id: the account_id of every v4 object, or in
// v3 mode the sid of every user and team.
func (s *Server) AccountID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v4 != nil {
		return s.v4.account
	}
	return s.account
}
