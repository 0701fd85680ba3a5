package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
)

// fakeAccount is an in-memory PagerTree behind the sync.PagerTree
// interface, for tests that apply plans without HTTP. Like PagerTree it
// rejects a second user with the same email, answers not found for
// unknown ids and, as PagerTree and its emulator do, takes a deleted user
// out of every team's member list. It records the id of every object
// written to (a team a user delete edits is not written to: no request
// names it). A write to an object named in fail (the email of a user
// create, the name of a team create, the id otherwise) fails and changes
// nothing.
type fakeAccount struct {
	mu      gosync.Mutex
	users   map[string]AccountUser
	teams   map[string]AccountTeam
	nextID  int
	written map[string]int // object id -> writes to it
	writes  int
	fail    map[string]bool
}

var (
	errFakeNotFound  = errors.New("not found")
	errFakeDuplicate = errors.New("a user with this email already exists")
	errFakeInjected  = errors.New("injected failure")
)

// failing is the injected error of a write to key; the caller holds f.mu.
func (f *fakeAccount) failing(write, key string) error {
	if f.fail[key] {
		return fmt.Errorf("%s %s: %w", write, key, errFakeInjected)
	}
	return nil
}

var _ PagerTree = (*fakeAccount)(nil)

func newFakeAccount(cur Current) *fakeAccount {
	f := &fakeAccount{users: map[string]AccountUser{}, teams: map[string]AccountTeam{}, written: map[string]int{}}
	for _, u := range cur.Users {
		f.users[u.ID] = u
	}
	for _, t := range cur.Teams {
		t.MemberIDs = slices.Clone(t.MemberIDs)
		f.teams[t.ID] = t
	}
	return f
}

// current is the account as a Reader would list it, sorted by id.
func (f *fakeAccount) current() Current {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cur Current
	for _, u := range f.users {
		cur.Users = append(cur.Users, u)
	}
	for _, t := range f.teams {
		t.MemberIDs = slices.Clone(t.MemberIDs)
		cur.Teams = append(cur.Teams, t)
	}
	slices.SortFunc(cur.Users, func(a, b AccountUser) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(cur.Teams, func(a, b AccountTeam) int { return cmp.Compare(a.ID, b.ID) })
	return cur
}

func (f *fakeAccount) ListUsers(context.Context) ([]AccountUser, error) {
	return f.current().Users, nil
}
func (f *fakeAccount) ListTeams(context.Context) ([]AccountTeam, error) {
	return f.current().Teams, nil
}

// wrote counts a write to id; the caller holds f.mu.
func (f *fakeAccount) wrote(id string) {
	f.written[id]++
	f.writes++
}

func (f *fakeAccount) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s-new-%04d", prefix, f.nextID)
}

func (f *fakeAccount) CreateUser(_ context.Context, in NewUser) (AccountUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("create user", EmailKey(in.Email)); err != nil {
		return AccountUser{}, err
	}
	for _, u := range f.users {
		if EmailKey(u.Email) == EmailKey(in.Email) {
			return AccountUser{}, fmt.Errorf("create user %s: %w", in.Email, errFakeDuplicate)
		}
	}
	u := AccountUser{ID: f.id("user"), Email: in.Email, Name: in.Name, Phone: in.Phone}
	f.users[u.ID] = u
	f.wrote(u.ID)
	return u, nil
}

func (f *fakeAccount) UpdateUser(_ context.Context, id string, p UserPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("update user", id); err != nil {
		return err
	}
	u, ok := f.users[id]
	if !ok {
		return fmt.Errorf("update user %s: %w", id, errFakeNotFound)
	}
	if p.Name != nil {
		u.Name = *p.Name
	}
	if p.Phone != nil {
		u.Phone = *p.Phone
	}
	f.users[id] = u
	f.wrote(id)
	return nil
}

func (f *fakeAccount) DeleteUser(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("delete user", id); err != nil {
		return err
	}
	if _, ok := f.users[id]; !ok {
		return fmt.Errorf("delete user %s: %w", id, errFakeNotFound)
	}
	delete(f.users, id)
	for tid, t := range f.teams {
		if slices.Contains(t.MemberIDs, id) {
			t.MemberIDs = slices.DeleteFunc(t.MemberIDs, func(m string) bool { return m == id })
			f.teams[tid] = t
		}
	}
	f.wrote(id)
	return nil
}

func (f *fakeAccount) CreateTeam(_ context.Context, in NewTeam) (AccountTeam, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("create team", in.Name); err != nil {
		return AccountTeam{}, err
	}
	t := AccountTeam{ID: f.id("team"), Name: in.Name, Description: in.Description, MemberIDs: slices.Clone(in.MemberIDs)}
	f.teams[t.ID] = t
	f.wrote(t.ID)
	return t, nil
}

func (f *fakeAccount) UpdateTeam(_ context.Context, id string, p TeamPatch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("update team", id); err != nil {
		return err
	}
	t, ok := f.teams[id]
	if !ok {
		return fmt.Errorf("update team %s: %w", id, errFakeNotFound)
	}
	if p.Name != nil {
		t.Name = *p.Name
	}
	if p.Description != nil {
		t.Description = *p.Description
	}
	if p.MemberIDs != nil {
		t.MemberIDs = slices.Clone(*p.MemberIDs)
	}
	f.teams[id] = t
	f.wrote(id)
	return nil
}

func (f *fakeAccount) DeleteTeam(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failing("delete team", id); err != nil {
		return err
	}
	if _, ok := f.teams[id]; !ok {
		return fmt.Errorf("delete team %s: %w", id, errFakeNotFound)
	}
	delete(f.teams, id)
	f.wrote(id)
	return nil
}
