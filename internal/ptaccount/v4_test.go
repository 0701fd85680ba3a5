package ptaccount_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sync"
)

// The v4 adapter's translation: the branches of UpdateUser the contract
// does not tell apart by outcome (where the person it updates comes from)
// and the exact body it sends.

const (
	getAccountUser = "GET " + pagertree.APIPrefix + "/account_users/:id"
	putAccountUser = "PUT " + pagertree.APIPrefix + "/account_users/:id"
)

// newV4Adapter is a fresh *ptaccount.V4 over a v4 emulator, with its
// requests recorded.
func newV4Adapter(t *testing.T) (*ptaccount.V4, *v4Account) {
	t.Helper()
	srv := pagertreetest.NewServer(pagertreetest.Options{API: "v4"})
	t.Cleanup(srv.Close)
	acc := &v4Account{srv: srv, rec: &recorder{}}
	cfg := pagertree.Config{API: pagertree.APIv4, APIKey: pagertreetest.DefaultAPIKey}
	return ptaccount.NewV4(newClient(t, srv, cfg, acc.rec)), acc
}

// userAttributes is the user_attributes of the last PUT of an account user.
func userAttributes(t *testing.T, acc inspect) map[string]json.RawMessage {
	t.Helper()
	body := lastWrite(t, acc, http.MethodPut, pagertree.APIPrefix+"/account_users/")
	var attrs map[string]json.RawMessage
	if err := json.Unmarshal(body["user_attributes"], &attrs); err != nil {
		t.Fatalf("user_attributes %s: %v", body["user_attributes"], err)
	}
	if got := keys(body); !slices.Equal(got, []string{"user_attributes"}) {
		t.Errorf("PUT sent %v, want only user_attributes (roles are not ptsync's)", got)
	}
	return attrs
}

func TestV4UpdateUserNotListedGetsItFirst(t *testing.T) {
	a, acc := newV4Adapter(t)
	id := acc.addUser(t, seedUser{Name: "Kim", Emails: []string{"kim@example.com", "kim@old.example.com"}, Phones: []string{"+14155550100"}})
	before := stateUserByID(t, acc, id)

	phone := "+14155550199"
	if err := a.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	st := acc.stats()
	if st.Requests[getAccountUser] != 1 || st.Requests[putAccountUser] != 1 {
		t.Errorf("requests %v, want one GET of the account user, then one PUT", st.Requests)
	}
	after := stateUserByID(t, acc, id)
	want := before
	want.Phone, want.Phones = phone, []string{phone}
	if !sameStateUser(after, want) {
		t.Errorf("the emulator holds\n %+v, want\n %+v (the phone entry changed in place)", after, want)
	}
	attrs := userAttributes(t, acc)
	if got := keys(attrs); !slices.Equal(got, []string{"id", "phones_attributes"}) {
		t.Errorf("user_attributes %v, want id and phones_attributes only", got)
	}
	var phones []map[string]any
	if err := json.Unmarshal(attrs["phones_attributes"], &phones); err != nil {
		t.Fatal(err)
	}
	wantPhone := map[string]any{"id": before.PhoneIDs[0], "phone": phone, "primary": true}
	if len(phones) != 1 || !maps.Equal(phones[0], wantPhone) {
		t.Errorf("phones_attributes %v, want [%v]", phones, wantPhone)
	}
	var personID string
	if err := json.Unmarshal(attrs["id"], &personID); err != nil || personID != before.PersonID {
		t.Errorf("user_attributes id %s, want the person's id %q", attrs["id"], before.PersonID)
	}

	// The answer is remembered: the next update reads nothing.
	name := "Kim Renamed"
	if err := a.UpdateUser(t.Context(), id, sync.UserPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if n := acc.stats().Requests[getAccountUser]; n != 1 {
		t.Errorf("%d GETs of the account user after a second update, want still 1", n)
	}
	if got := keys(userAttributes(t, acc)); !slices.Equal(got, []string{"id", "name"}) {
		t.Errorf("user_attributes %v, want id and name only", got)
	}
	if got := stateUserByID(t, acc, id); got.Name != name || got.Phone != phone || !slices.Equal(got.PhoneIDs, before.PhoneIDs) {
		t.Errorf("the emulator holds %+v, want the name %q and the phone %s in its entry", got, name, phone)
	}
}

func TestV4UpdateUserListedReadsNothing(t *testing.T) {
	a, acc := newV4Adapter(t)
	id := acc.addUser(t, seedUser{Name: "Lee", Emails: []string{"lee@example.com"}})
	if _, err := a.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	phone := "+14155550123"
	if err := a.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if n := acc.stats().Requests[getAccountUser]; n != 0 {
		t.Errorf("%d GETs of a listed account user, want none: the listing has the person", n)
	}
	var phones []map[string]any
	if err := json.Unmarshal(userAttributes(t, acc)["phones_attributes"], &phones); err != nil {
		t.Fatal(err)
	}
	// The person had no phone: the entry has no id, so one is added.
	if want := map[string]any{"phone": phone, "primary": true}; len(phones) != 1 || !maps.Equal(phones[0], want) {
		t.Errorf("phones_attributes %v, want [%v]", phones, want)
	}
	added := stateUserByID(t, acc, id)
	if !slices.Equal(added.Phones, []string{phone}) {
		t.Errorf("the emulator holds phones %v, want [%s]", added.Phones, phone)
	}

	// The update's answer is remembered with the entry PagerTree added: a
	// second phone update changes that entry rather than add another.
	phone = "+14155550124"
	if err := a.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if got := stateUserByID(t, acc, id); !slices.Equal(got.Phones, []string{phone}) || !slices.Equal(got.PhoneIDs, added.PhoneIDs) {
		t.Errorf("the emulator holds phones %v %v, want [%s] in the entry %v", got.Phones, got.PhoneIDs, phone, added.PhoneIDs)
	}
	if n := acc.stats().Requests[getAccountUser]; n != 0 {
		t.Errorf("%d GETs, want none", n)
	}
}

func TestV4UpdateUserCreatedReadsNothing(t *testing.T) {
	a, acc := newV4Adapter(t)
	created, err := a.CreateUser(t.Context(), sync.NewUser{Email: "max@example.com", Name: "Max", Phone: "+14155550100"})
	if err != nil {
		t.Fatal(err)
	}
	before := stateUserByID(t, acc, created.ID)
	phone := "+14155550111"
	if err := a.UpdateUser(t.Context(), created.ID, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if n := acc.stats().Requests[getAccountUser]; n != 0 {
		t.Errorf("%d GETs of an account user the adapter created, want none", n)
	}
	if after := stateUserByID(t, acc, created.ID); after.Phone != phone || !slices.Equal(after.PhoneIDs, before.PhoneIDs) {
		t.Errorf("the emulator holds %+v, want the phone %s in the created entry %v", after, phone, before.PhoneIDs)
	}
}

func TestV4UpdateUserMissingSendsNoPUT(t *testing.T) {
	a, acc := newV4Adapter(t)
	name := "x"
	err := a.UpdateUser(t.Context(), "01J0000000000000000000NONE", sync.UserPatch{Name: &name})
	wantAPIError(t, err, http.StatusNotFound)
	st := acc.stats()
	if st.Requests[getAccountUser] != 1 || st.Requests[putAccountUser] != 0 || st.WriteAttempts != 0 {
		t.Errorf("requests %v, want one GET and no write", st.Requests)
	}
}

// TestV4UpdateUserStalePhoneFails: the phone entry the listing read is
// gone when the update comes (someone changed the person meanwhile). The
// PUT names an entry PagerTree no longer has; the refusal is returned and
// nothing changes, so nothing is written on a wrong entry, and the next
// run's listing reads the person afresh.
func TestV4UpdateUserStalePhoneFails(t *testing.T) {
	a, acc := newV4Adapter(t)
	id := acc.addUser(t, seedUser{Name: "Ola", Emails: []string{"ola@example.com"}, Phones: []string{"+14155550100"}})
	if _, err := a.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	listed := stateUserByID(t, acc, id)

	// Someone else replaces the phone entry.
	other := newClient(t, acc.srv, pagertree.Config{API: pagertree.APIv4, APIKey: pagertreetest.DefaultAPIKey}, nil)
	if _, err := other.UpdateAccountUser(t.Context(), id, pagertree.AccountUserUpdate{User: pagertree.PersonAttributes{
		ID:     listed.PersonID,
		Phones: []pagertree.PhoneAttributes{{ID: listed.PhoneIDs[0], Destroy: true}, {Phone: "+14155550155", Primary: true}},
	}}); err != nil {
		t.Fatal(err)
	}
	before := stateUserByID(t, acc, id)

	phone := "+14155550199"
	wantAPIError(t, a.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}), http.StatusNotFound)
	if after := stateUserByID(t, acc, id); !sameStateUser(after, before) {
		t.Errorf("the emulator holds\n %+v, want\n %+v unchanged", after, before)
	}

	// The next run lists again and the update finds the new entry.
	if _, err := a.ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateUser(t.Context(), id, sync.UserPatch{Phone: &phone}); err != nil {
		t.Fatal(err)
	}
	if after := stateUserByID(t, acc, id); !slices.Equal(after.Phones, []string{phone}) || !slices.Equal(after.PhoneIDs, before.PhoneIDs) {
		t.Errorf("the emulator holds %+v, want the phone %s in the entry %v", after, phone, before.PhoneIDs)
	}
}
