package sync_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sync"
)

// The property tests apply plans to the emulator through the real client
// and adapter, once per API version: the emulator is the one model of
// PagerTree (DESIGN.md), so what a plan does to an account is what
// PagerTree's rules let it do, v4's (every team keeps a member and an
// admin) included.

// propAPIs are the API versions every property runs against.
var propAPIs = []string{pagertree.APIv3, pagertree.APIv4}

// The pools random directories and accounts draw from are small, so that
// emails, group ids and team names collide often: collisions are where
// matching, adoption, renames and conflicts happen.
var (
	propEmails = []string{"ann@x.test", "ben@x.test", "cat@x.test", "dan@x.test", "eve@x.test", "fay@x.test", "gus@x.test", "hal@x.test"}
	propNames  = []string{"", "Ann", "Ben Long", "Cat", "Dan"}
	propPhones = []string{"", "+14155550100", "+1 415 555 0100", "415-555-0101", "+442079460958", "not a number"}
	// propE164 are the phones a v4 account user may hold: the API takes
	// only E.164.
	propE164   = []string{"", "+14155550100", "+14155550101", "+442079460958"}
	propGroups = map[string][]string{ // source -> group names it may have
		"corp": {"oncall-a", "oncall-b", "oncall-c", "staff"},
		"hr":   {"team-a", "team-b", "other"},
	}
	propGroupIDs  = []string{"g1", "g2", "g3", "g4"}
	propTeamNames = []string{"oncall-a", "oncall-b", "oncall-c", "TEAM-A", "TEAM-B", "Hand Made"}
	// propAccountEmails are the emails PagerTree users are drawn from:
	// the directory's, and three it never has.
	propAccountEmails = append(slices.Clone(propEmails), "owner@x.test", "ops@x.test", "old@x.test")
	// propAdminEmails are the emails v4 admin rules name: account users
	// the directory may or may not have, and one nobody has.
	propAdminEmails = []string{"owner@x.test", "ops@x.test", "ann@x.test", "ben@x.test", "boss@elsewhere.test"}
	// propTeamAdmins are the admin lists of v4 admin rules, of
	// propAdminEmails: mostly the owner, whom every drawn v4 account has.
	propTeamAdmins = [][]string{nil, {"owner@x.test"}, {"owner@x.test"}, {"owner@x.test"}, {"ops@x.test", "owner@x.test"},
		{"ann@x.test"}, {"ben@x.test", "owner@x.test"}, {"boss@elsewhere.test"}}
)

// propGhostEmail is the email of the user the account's user listings
// miss (see propProxy): its id is a team member no listed user has, as
// when a listing misses someone. No directory has the email.
const propGhostEmail = "ghost@x.test"

// propOutsider is an email no random directory holds.
const propOutsider = "mallory@evil.test"

// subset draws a random subset of items, in order.
func subset[E any](t *rapid.T, items []E, label string) []E {
	var out []E
	for i, it := range items {
		if rapid.Bool().Draw(t, fmt.Sprintf("%s[%d]", label, i)) {
			out = append(out, it)
		}
	}
	return out
}

// drawEmail draws a pool email, sometimes with other case and spaces: the
// match key must see through them.
func drawEmail(t *rapid.T, label string) string {
	e := rapid.SampledFrom(propEmails).Draw(t, label)
	switch rapid.IntRange(0, 3).Draw(t, label+".form") {
	case 0:
		return strings.ToUpper(e[:1]) + e[1:]
	case 1:
		return " " + e
	}
	return e
}

// drawDirectory draws the snapshots of sources corp and hr. On v4 groups
// have owners, whom admins_from_owners makes admins.
func drawDirectory(t *rapid.T, v4 bool) []*sources.Snapshot {
	var snaps []*sources.Snapshot
	for _, source := range subset(t, []string{"corp", "hr"}, "sources") {
		s := sources.NewSnapshot(source)
		for i := range rapid.IntRange(0, 7).Draw(t, source+".users") {
			id := fmt.Sprintf("%s-u%d", source, i)
			email := drawEmail(t, id+".email")
			if rapid.IntRange(0, 9).Draw(t, id+".noemail") == 0 {
				email = ""
			}
			s.Users[id] = sources.User{ID: id, Email: email,
				Name:     rapid.SampledFrom(propNames).Draw(t, id+".name"),
				Phone:    rapid.SampledFrom(propPhones).Draw(t, id+".phone"),
				Disabled: rapid.IntRange(0, 4).Draw(t, id+".disabled") == 0}
		}
		userIDs := make([]string, 0, len(s.Users))
		for id := range s.Users {
			userIDs = append(userIDs, id)
		}
		slices.Sort(userIDs)
		names := rapid.Permutation(propGroups[source]).Draw(t, source+".groupnames")
		ids := rapid.Permutation(propGroupIDs).Draw(t, source+".groupids")
		for i := range rapid.IntRange(0, min(len(names), len(ids))).Draw(t, source+".groups") {
			g := sources.Group{ID: ids[i], Name: names[i], Members: subset(t, userIDs, source+"."+ids[i])}
			if v4 {
				g.Owners = subset(t, userIDs, source+"."+ids[i]+".owners")
			}
			s.Groups = append(s.Groups, g)
		}
		snaps = append(snaps, s)
	}
	return snaps
}

// propAccount is a drawn PagerTree account, as the emulator is to hold it.
type propAccount struct {
	Users []sync.AccountUser // the ghost included
	Teams []sync.AccountTeam
	// Ghost is the id of the user the user listings miss, or "".
	Ghost string
	// Logins are emails of people with a PagerTree login elsewhere, whom
	// a v4 create invites.
	Logins []string
}

// drawAccount draws an account the emulator of the version accepts: ids
// it keeps ("usr_…", "tem_…"), and on v4 names and E.164 phones for every
// user, and a member and an admin for every team. On v4 users may have a
// second email and be invited, and a managed team's marker records some
// of its admins as ptsync's (the others were made by hand), and sometimes
// an admin that is no longer one.
func drawAccount(t *rapid.T, v4 bool) propAccount {
	var acct propAccount
	emails := subset(t, propAccountEmails, "pt.users")
	if v4 && !slices.Contains(emails, "owner@x.test") {
		// The account owner is always there.
		emails = append(emails, "owner@x.test")
	}
	taken := map[string]bool{}
	for _, e := range emails {
		taken[e] = true
	}
	names, phones := propNames, propPhones
	if v4 {
		names, phones = propNames[1:], propE164
	}
	for i, email := range emails {
		id := fmt.Sprintf("usr_p%d", i)
		if rapid.IntRange(0, 5).Draw(t, id+".case") == 0 {
			email = strings.ToUpper(email[:1]) + email[1:]
		}
		u := sync.AccountUser{ID: id, Email: email,
			Name:  rapid.SampledFrom(names).Draw(t, id+".name"),
			Phone: rapid.SampledFrom(phones).Draw(t, id+".phone"),
			Admin: rapid.IntRange(0, 4).Draw(t, id+".admin") == 0}
		if v4 {
			u.Invited = rapid.IntRange(0, 7).Draw(t, id+".invited") == 0
			free := slices.DeleteFunc(slices.Clone(propAccountEmails), func(e string) bool {
				return taken[e]
			})
			if len(free) > 0 && rapid.IntRange(0, 4).Draw(t, id+".second") == 0 {
				second := rapid.SampledFrom(free).Draw(t, id+".second.email")
				taken[second] = true
				u.Emails = []string{second}
			}
		}
		acct.Users = append(acct.Users, u)
	}
	if v4 {
		acct.Logins = subset(t, propEmails, "pt.logins")
	}
	candidates := make([]string, 0, len(acct.Users)+1)
	for _, u := range acct.Users {
		candidates = append(candidates, u.ID)
	}
	if rapid.IntRange(0, 2).Draw(t, "pt.ghost") == 0 {
		acct.Ghost = "usr_ghost"
		acct.Users = append(acct.Users, sync.AccountUser{ID: acct.Ghost, Email: propGhostEmail, Name: "Ghost"})
		candidates = append(candidates, acct.Ghost)
	}
	emailOf := map[string]string{}
	for _, u := range acct.Users {
		emailOf[u.ID] = sync.EmailKey(u.Email)
	}
	for i := range rapid.IntRange(0, 6).Draw(t, "pt.teams") {
		id := fmt.Sprintf("tem_p%d", i)
		members := subset(t, candidates, id+".members")
		var admins []string
		if v4 { // a member and an admin; the owner is always there to draw
			if len(members) == 0 {
				members = []string{rapid.SampledFrom(candidates).Draw(t, id+".member")}
			}
			if admins = subset(t, candidates, id+".admins"); len(admins) == 0 {
				admins = []string{rapid.SampledFrom(candidates).Draw(t, id+".admin")}
			}
		}
		var description string
		switch rapid.IntRange(0, 3).Draw(t, id+".owner") {
		case 0:
			description = "made by hand"
		case 1, 2:
			m := sync.Marker{
				Source:  rapid.SampledFrom([]string{"corp", "hr", "retired"}).Draw(t, id+".source"),
				GroupID: rapid.SampledFrom(append(slices.Clone(propGroupIDs), "g-gone")).Draw(t, id+".group"),
			}
			for _, a := range subset(t, admins, id+".recorded") {
				m.Admins = append(m.Admins, emailOf[a])
			}
			if v4 && rapid.IntRange(0, 4).Draw(t, id+".stale") == 0 {
				// ptsync added them, and someone took them out by hand since.
				m.Admins = append(m.Admins, rapid.SampledFrom(propAdminEmails).Draw(t, id+".stale.email"))
			}
			slices.Sort(m.Admins)
			m.Admins = slices.Compact(m.Admins)
			description = sync.WithMarker(rapid.SampledFrom([]string{"", "notes"}).Draw(t, id+".notes"), m)
		}
		acct.Teams = append(acct.Teams, sync.AccountTeam{ID: id, Name: rapid.SampledFrom(propTeamNames).Draw(t, id+".name"),
			Description: description, MemberIDs: members, AdminIDs: admins})
	}
	return acct
}

// load preloads the account into the emulator, keeping the drawn ids.
func (a propAccount) load(t propTB, emu *pagertreetest.Server, v4 bool) {
	for _, u := range a.Users {
		var err error
		if v4 {
			au := pagertree.AccountUser{Common: pagertree.Common{ID: u.ID}, Roles: pagertree.AccountRoles{Admin: u.Admin}, Invited: u.Invited,
				User: pagertree.Person{Name: u.Name, Emails: []pagertree.Email{{Email: u.Email, Primary: true}}}}
			for _, e := range u.Emails {
				au.User.Emails = append(au.User.Emails, pagertree.Email{Email: e})
			}
			if u.Phone != "" {
				au.User.Phones = []pagertree.Phone{{Phone: u.Phone, Primary: true}}
			}
			_, err = emu.AddAccountUser(au)
		} else {
			_, err = emu.AddUser(pagertree.User{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Roles: pagertree.Roles{Admin: u.Admin}})
		}
		if err != nil {
			t.Fatalf("preload user %s: %v", u.ID, err)
		}
	}
	for _, tm := range a.Teams {
		var err error
		if v4 {
			_, err = emu.AddTeamV4(pagertree.TeamV4{Common: pagertree.Common{ID: tm.ID}, Name: tm.Name, Notes: tm.Description,
				MemberAccountUserIDs: tm.MemberIDs, AdminAccountUserIDs: tm.AdminIDs})
		} else {
			_, err = emu.AddTeam(pagertree.Team{ID: tm.ID, Name: tm.Name, Description: tm.Description, MemberUserIDs: tm.MemberIDs})
		}
		if err != nil {
			t.Fatalf("preload team %s: %v", tm.ID, err)
		}
	}
	for _, e := range a.Logins {
		emu.AddExistingLogin(e)
	}
}

// drawPolicy draws the rules and switches. On v4 teams need a member and
// an admin (TeamRoles), and admins come from pagertree.team_admins, the
// rule's admins and the groups' owners.
func drawPolicy(t *rapid.T, v4 bool) sync.Policy {
	onMissing := []string{config.OnMissingKeep, config.OnMissingEmpty, config.OnMissingDelete}
	pol := sync.Policy{
		Rules: []config.TeamRule{
			{Source: "corp", Match: "oncall-*", Name: "{{ .Name }}", Adopt: rapid.Bool().Draw(t, "corp.adopt"),
				OnMissing: rapid.SampledFrom(onMissing).Draw(t, "corp.on_missing")},
			{Source: "hr", Match: "re:^team-", Name: "{{ upper .Name }}", Adopt: rapid.Bool().Draw(t, "hr.adopt"),
				OnMissing: rapid.SampledFrom(onMissing).Draw(t, "hr.on_missing")},
		},
		Scope:            rapid.SampledFrom([]string{config.ScopeTeamMembers, config.ScopeAll}).Draw(t, "scope"),
		DeleteUsers:      rapid.Bool().Draw(t, "delete"),
		Protect:          rapid.SampledFrom([][]string{nil, {"eve@*"}, {"*@x.test"}}).Draw(t, "protect"),
		PhoneRegion:      rapid.SampledFrom([]string{"", "US"}).Draw(t, "region"),
		AllowDestructive: rapid.Bool().Draw(t, "allow"),
	}
	if !pol.AllowDestructive {
		// Off half the time: over the limit every destructive change is
		// withheld, which hides what the other safety rules do.
		pol.MaxDestructive = rapid.SampledFrom([]int{0, 0, 0, 1, 2, 3}).Draw(t, "max_destructive")
	}
	if v4 {
		pol.TeamRoles, pol.PhonesE164 = true, true
		pol.TeamAdmins = rapid.SampledFrom(propTeamAdmins).Draw(t, "team_admins")
		for i := range pol.Rules {
			r := &pol.Rules[i]
			if rapid.IntRange(0, 2).Draw(t, r.Source+".admins") == 0 {
				r.Admins = rapid.SampledFrom(propTeamAdmins[1:]).Draw(t, r.Source+".admins.emails")
			}
			r.AdminsFromOwners = rapid.Bool().Draw(t, r.Source+".admins_from_owners")
			if len(r.Admins) == 0 && len(pol.TeamAdmins) == 0 {
				// As the configuration requires on v4: admins from somewhere.
				r.AdminsFromOwners = true
			}
		}
	}
	return pol
}

// propProxy stands in front of the emulator. It answers 422, committing
// nothing, to the writes in fail; it counts, by object id, the write
// requests that name an object in their path, failed ones included; and
// it leaves the user with id hidden out of every user listing (its
// total_count too), as a listing that misses someone would.
type propProxy struct {
	next   http.Handler
	v4     bool
	hidden string

	mu gosync.Mutex
	// fail holds failure keys (propFailKey): "PUT <id>", "DELETE <id>",
	// "POST user <email key>", "POST team <name>".
	fail     map[string]bool
	attempts map[string]int
	// refused are the writes the emulator itself refused (status 400 or
	// more), as "METHOD path: status body".
	refused []string
}

// propRoute is the kind and id of a users or teams route of either
// version, or ok false for any other route (login).
func propRoute(p string) (kind sync.Kind, id string, ok bool) {
	collection, id, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(p, pagertree.APIPrefix), "/"), "/")
	switch collection {
	case "user", "account_users":
		return sync.KindUser, id, true
	case "team", "teams":
		return sync.KindTeam, id, true
	}
	return "", "", false
}

// propFailKey is the failure key of a change, as propProxy.fail takes it.
func propFailKey(c sync.Change) string {
	switch {
	case c.Op == sync.OpUpdate:
		return "PUT " + c.ID
	case c.Op == sync.OpDelete:
		return "DELETE " + c.ID
	case c.Kind == sync.KindUser:
		return "POST user " + sync.EmailKey(c.Name)
	}
	return "POST team " + c.Name
}

// propCreateKey is the failure key of a create request's body: the email of
// a user (v3's, or v4's nested emails), the name of a team.
func propCreateKey(kind sync.Kind, body []byte) string {
	var b struct {
		Name  string `json:"name"`
		Email string `json:"email"`
		User  struct {
			Emails []struct {
				Email string `json:"email"`
			} `json:"emails_attributes"`
		} `json:"user_attributes"`
	}
	_ = json.Unmarshal(body, &b)
	if kind == sync.KindTeam {
		return "POST team " + b.Name
	}
	email := b.Email
	if len(b.User.Emails) > 0 {
		email = b.User.Emails[0].Email
	}
	return "POST user " + sync.EmailKey(email)
}

func (p *propProxy) setFailures(fail map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = fail
}

// written is the number of write requests that named object id.
func (p *propProxy) written(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts[id]
}

// reset forgets the writes counted and refused so far.
func (p *propProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.attempts)
	p.refused = nil
}

// refusals are the writes the emulator refused since the last reset.
func (p *propProxy) refusals() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refused)
}

func (p *propProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, id, ok := propRoute(r.URL.Path)
	switch {
	case !ok:
		p.next.ServeHTTP(w, r)
		return
	case r.Method == http.MethodGet:
		if kind == sync.KindUser && id == "" && p.hidden != "" {
			p.serveListing(w, r)
			return
		}
		p.next.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := r.Method + " " + id
	if r.Method == http.MethodPost {
		key = propCreateKey(kind, body)
	}
	p.mu.Lock()
	if id != "" {
		p.attempts[id]++
	}
	fail := p.fail[key]
	p.mu.Unlock()
	if fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		if p.v4 {
			_, _ = w.Write([]byte(`{"errors":[{"message":"rejected by the test"}],"code":422}`))
		} else {
			_, _ = w.Write([]byte(`{"errors":[{"message":"rejected by the test"}]}`))
		}
		return
	}
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	if rec.Code >= 400 {
		p.mu.Lock()
		p.refused = append(p.refused, fmt.Sprintf("%s %s: %d %s", r.Method, r.URL.Path, rec.Code, strings.TrimSpace(rec.Body.String())))
		p.mu.Unlock()
	}
	propCopyResponse(w, rec, rec.Body.Bytes())
}

// propCopyResponse writes what rec recorded, with body as its body.
func propCopyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte) {
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// serveListing answers a page of the user listing without the hidden user.
func (p *propProxy) serveListing(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	var page struct {
		Data       []json.RawMessage `json:"data"`
		HasMore    bool              `json:"has_more"`
		TotalCount int               `json:"total_count"`
	}
	if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil {
		page.TotalCount--
		page.Data = slices.DeleteFunc(page.Data, func(raw json.RawMessage) bool {
			var obj struct {
				ID string `json:"id"`
			}
			return json.Unmarshal(raw, &obj) == nil && obj.ID == p.hidden
		})
		body, _ = json.Marshal(page)
	}
	propCopyResponse(w, rec, body)
}

// propTB is what a rig needs of a test: *testing.T or *rapid.T.
type propTB interface {
	Fatalf(format string, args ...any)
	Cleanup(f func())
	Context() context.Context
}

// propRig is one account: the emulator preloaded with it, the proxy in
// front on 127.0.0.1, and the adapter over a real client of the version.
type propRig struct {
	v4    bool
	emu   *pagertreetest.Server
	proxy *propProxy
	pt    sync.PagerTree
}

// newPropRig starts a rig holding acct; it is closed when the check ends.
func newPropRig(t propTB, api string, acct propAccount) *propRig {
	v4 := api == pagertree.APIv4
	emu := pagertreetest.New(pagertreetest.Options{API: api})
	acct.load(t, emu, v4)
	proxy := &propProxy{next: emu, v4: v4, hidden: acct.Ghost, attempts: map[string]int{}}
	return &propRig{v4: v4, emu: emu, proxy: proxy, pt: propServe(t, api, proxy)}
}

// propServe serves h on 127.0.0.1 until the test ends, and returns the
// adapter over a client of api talking to it with the emulator's default
// credentials.
func propServe(t propTB, api string, h http.Handler) sync.PagerTree {
	srv := httptest.NewServer(h)
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	cfg := pagertree.Config{API: api, URL: srv.URL, HTTPClient: &http.Client{Transport: transport}}
	if api == pagertree.APIv4 {
		cfg.APIKey = pagertreetest.DefaultAPIKey
	} else {
		cfg.Username, cfg.Password = pagertreetest.DefaultUsername, pagertreetest.DefaultPassword
	}
	client, err := pagertree.New(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return ptaccount.For(api, client)
}

// list reads the account as the engine does, through the client and the
// adapter (so without the hidden user).
func (r *propRig) list(t propTB) sync.Current {
	users, err := r.pt.ListUsers(t.Context())
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	teams, err := r.pt.ListTeams(t.Context())
	if err != nil {
		t.Fatalf("list teams: %v", err)
	}
	cur := sync.Current{Users: users, Teams: teams}
	for _, u := range users {
		cur.AccountID = cmp.Or(cur.AccountID, u.AccountID)
	}
	return cur
}

// truth is the emulator's state in sync's terms, read from the emulator
// itself (the hidden user included), sorted by id.
func (r *propRig) truth() sync.Current {
	var cur sync.Current
	if r.v4 {
		for _, au := range r.emu.AccountUsers() {
			u := sync.AccountUser{ID: au.ID, Email: au.User.PrimaryEmail(), Name: au.User.Name, Admin: au.Roles.Admin, Invited: au.Invited}
			for _, e := range au.User.Emails {
				if e.Email != u.Email {
					u.Emails = append(u.Emails, e.Email)
				}
			}
			if ph, ok := au.User.PrimaryPhone(); ok {
				u.Phone = ph.Phone
			}
			cur.Users = append(cur.Users, u)
		}
		for _, t := range r.emu.TeamsV4() {
			cur.Teams = append(cur.Teams, sync.AccountTeam{ID: t.ID, Name: t.Name, Description: t.Notes,
				MemberIDs: t.MemberAccountUserIDs, AdminIDs: t.AdminAccountUserIDs})
		}
	} else {
		for _, u := range r.emu.Users() {
			cur.Users = append(cur.Users, sync.AccountUser{ID: u.ID, Email: u.Email, Name: u.Name, Phone: u.Phone, Admin: u.Roles.Admin})
		}
		for _, t := range r.emu.Teams() {
			cur.Teams = append(cur.Teams, sync.AccountTeam{ID: t.ID, Name: t.Name, Description: t.Description, MemberIDs: t.MemberUserIDs})
		}
	}
	slices.SortFunc(cur.Users, func(a, b sync.AccountUser) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(cur.Teams, func(a, b sync.AccountTeam) int { return strings.Compare(a.ID, b.ID) })
	return cur
}

// drawFailures picks, in half the cases, a random subset of the plan's
// writes for the proxy to fail. Team writes and user creates fail more
// often than user updates and deletes: a user delete that goes through
// after its team's write failed is what empties teams.
func drawFailures(t *rapid.T, p sync.Plan) map[string]bool {
	fail := map[string]bool{}
	if !rapid.Bool().Draw(t, "inject") {
		return fail
	}
	for i, c := range p.Changes {
		odds := 2 // one in odds fails
		if c.Kind == sync.KindUser && c.Op != sync.OpCreate {
			odds = 8
		}
		if rapid.IntRange(1, odds).Draw(t, fmt.Sprintf("fail[%d]", i)) == 1 {
			fail[propFailKey(c)] = true
		}
	}
	return fail
}

// TestPlanApplyPlanConverges: for random directories and accounts, on
// each API version, planning, applying through the client to the
// emulator and planning again leaves nothing to do but what the safety
// limits still withhold; objects ptsync does not manage are untouched
// (but for the deleted users PagerTree takes out of every team); account
// admins and protected users are never written; and no team that had
// members is left with none unless --allow-destructive. On v4 no team is
// left without a member or an admin, an admin someone made by hand is
// never removed nor recorded as ptsync's, and a configured admin is never
// deleted. When PagerTree refuses some of the writes, all of that holds
// too, and the next run, refused nothing, converges the same way.
func TestPlanApplyPlanConverges(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) { propConverges(rt, api) })
		})
	}
}

func propConverges(rt *rapid.T, api string) {
	v4 := api == pagertree.APIv4
	snaps, acct, pol := drawDirectory(rt, v4), drawAccount(rt, v4), drawPolicy(rt, v4)
	want, err := sync.BuildDesired(snaps, pol)
	if err != nil {
		rt.Fatalf("BuildDesired: %v", err)
	}
	r := newPropRig(rt, api, acct)
	before, cur := r.truth(), r.list(rt)
	first := sync.MakePlan(cur, want, pol)
	fail := drawFailures(rt, first)
	r.proxy.setFailures(fail)
	res := sync.Apply(rt.Context(), r.pt, cur, first, sync.ApplyOptions{Concurrency: 3})
	for _, c := range res.Changes {
		if c.Outcome == sync.OutcomeFailed && len(fail) == 0 {
			rt.Fatalf("%s failed: %s\nplan:\n  %s", propBrief(c.Change), c.Error, strings.Join(propBriefs(first.Changes), "\n  "))
		}
	}
	noRefusals(rt, r.proxy, first)
	after := r.truth()
	r.checkRun(rt, before, after, want, pol, first)

	if len(fail) > 0 {
		// The next run, with every write going through, is a run from the
		// state the failures left: it must converge like any other.
		r.proxy.setFailures(nil)
		r.proxy.reset()
		before, cur = after, r.list(rt)
		first = sync.MakePlan(cur, want, pol)
		for _, c := range sync.Apply(rt.Context(), r.pt, cur, first, sync.ApplyOptions{Concurrency: 3}).Changes {
			if c.Outcome == sync.OutcomeFailed {
				rt.Fatalf("retry: %s failed: %s\nplan:\n  %s", propBrief(c.Change), c.Error, strings.Join(propBriefs(first.Changes), "\n  "))
			}
		}
		noRefusals(rt, r.proxy, first)
		after = r.truth()
		r.checkRun(rt, before, after, want, pol, first)
	}
	second := sync.MakePlan(r.list(rt), want, pol)
	if len(second.Changes) > 0 {
		rt.Fatalf("second plan not empty:\n  %s\nfirst plan:\n  %s", strings.Join(propBriefs(second.Changes), "\n  "), strings.Join(propBriefs(first.Changes), "\n  "))
	}
	if got, wantWithheld := propBriefs(second.Withheld), propBriefs(first.Withheld); !slices.Equal(got, wantWithheld) {
		rt.Fatalf("withheld changed:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantWithheld, "\n  "))
	}
	for _, c := range second.Withheld {
		// --allow-destructive lifts every limit; on v4 PagerTree still
		// refuses the delete of a team's last member or admin.
		if pol.AllowDestructive && !(v4 && c.Kind == sync.KindUser && c.Op == sync.OpDelete) {
			rt.Fatalf("withheld under --allow-destructive: %s (%s)", propBrief(c), c.WithheldReason)
		}
	}
}

// noRefusals fails when the emulator refused a write of the run: ptsync
// is to send only writes PagerTree takes (it withholds those PagerTree
// would refuse), even when some of the plan's writes are missing (they
// failed, or a reviewer left them out of a saved plan).
func noRefusals(t *rapid.T, proxy *propProxy, p sync.Plan) {
	for _, r := range proxy.refusals() {
		t.Fatalf("PagerTree refused %s\nplan:\n  %s", r, strings.Join(propBriefs(p.Changes), "\n  "))
	}
}

// checkRun checks what one run of plan p did, taking the account from
// before to after.
func (r *propRig) checkRun(t *rapid.T, before, after sync.Current, want sync.Desired, pol sync.Policy, p sync.Plan) {
	noTeamEmptied(t, before, after, pol, p)
	deleted := map[string]bool{} // users the run deleted
	for _, u := range before.Users {
		if !slices.ContainsFunc(after.Users, func(a sync.AccountUser) bool { return a.ID == u.ID }) {
			deleted[u.ID] = true
		}
	}
	for _, team := range before.Teams {
		if !unmanaged(team, want, p) {
			continue
		}
		if n := r.proxy.written(team.ID); n > 0 {
			t.Fatalf("unmanaged team %s %q written %d times", team.ID, team.Name, n)
		}
		// Deleting a user takes them out of every team, unmanaged ones
		// included; nothing else about the team may change.
		untouched := team
		untouched.MemberIDs = slices.DeleteFunc(slices.Clone(team.MemberIDs), func(id string) bool { return deleted[id] })
		untouched.AdminIDs = slices.DeleteFunc(slices.Clone(team.AdminIDs), func(id string) bool { return deleted[id] })
		i := slices.IndexFunc(after.Teams, func(a sync.AccountTeam) bool { return a.ID == team.ID })
		if i < 0 || !teamsEqual(after.Teams[i], untouched) {
			t.Fatalf("unmanaged team %s %q changed", team.ID, team.Name)
		}
	}
	noUntouchableWritten(t, r.proxy, before, pol, p)
	onlyWantedMembersAdded(t, before, after, want)
	if r.v4 {
		v4Rules(t, before, after, want, p)
	}
}

// noUntouchableWritten fails when any write request named an account
// admin or a protected user.
func noUntouchableWritten(t *rapid.T, proxy *propProxy, before sync.Current, pol sync.Policy, p sync.Plan) {
	for _, u := range before.Users {
		if (u.Admin || propProtected(u, pol.Protect)) && proxy.written(u.ID) > 0 {
			t.Fatalf("admin or protected user %s (%s) written by\n  %s", u.ID, u.Email, strings.Join(propBriefs(p.Changes), "\n  "))
		}
	}
}

// propProtected reports whether any of u's emails matches a users.protect
// glob.
func propProtected(u sync.AccountUser, globs []string) bool {
	for _, e := range append([]string{u.Email}, u.Emails...) {
		for _, g := range globs {
			if ok, _ := path.Match(strings.ToLower(strings.TrimSpace(g)), sync.EmailKey(e)); ok {
				return true
			}
		}
	}
	return false
}

// v4Rules checks what v4 adds: every team keeps a member and an admin; an
// admin made by hand (one the team's marker does not record) is still
// admin after the run unless the user or the team is gone, and is not
// recorded as ptsync's; and no configured admin is deleted.
func v4Rules(t *rapid.T, before, after sync.Current, want sync.Desired, p sync.Plan) {
	plan := strings.Join(propBriefs(p.Changes), "\n  ")
	users := map[string]sync.AccountUser{}
	for _, u := range after.Users {
		users[u.ID] = u
	}
	for _, team := range after.Teams {
		if len(team.MemberIDs) == 0 || len(team.AdminIDs) == 0 {
			t.Fatalf("team %s %q left with members %v and admins %v by\n  %s", team.ID, team.Name, team.MemberIDs, team.AdminIDs, plan)
		}
	}
	emailsOf := func(cur sync.Current, id string) []string {
		i := slices.IndexFunc(cur.Users, func(u sync.AccountUser) bool { return u.ID == id })
		if i < 0 {
			return nil
		}
		u := cur.Users[i]
		var keys []string
		for _, e := range append([]string{u.Email}, u.Emails...) {
			keys = append(keys, sync.EmailKey(e))
		}
		return keys
	}
	for _, team := range before.Teams {
		i := slices.IndexFunc(after.Teams, func(a sync.AccountTeam) bool { return a.ID == team.ID })
		if i < 0 {
			continue
		}
		now := after.Teams[i]
		recordedBefore, _ := sync.ParseMarker(team.Description)
		recordedAfter, _ := sync.ParseMarker(now.Description)
		for _, id := range team.AdminIDs {
			emails := emailsOf(before, id)
			if slices.ContainsFunc(emails, func(e string) bool { return slices.Contains(recordedBefore.Admins, e) }) {
				continue // ptsync's
			}
			if _, ok := users[id]; !ok {
				continue // deleted
			}
			if !slices.Contains(now.AdminIDs, id) {
				t.Fatalf("team %s %q: admin %s %v, made by hand, was removed by\n  %s", team.ID, team.Name, id, emails, plan)
			}
			if slices.ContainsFunc(emails, func(e string) bool { return slices.Contains(recordedAfter.Admins, e) }) {
				t.Fatalf("team %s %q: admin %s %v, made by hand, is recorded as ptsync's: %q, by\n  %s", team.ID, team.Name, id, emails, now.Description, plan)
			}
		}
	}
	configured := map[string]bool{}
	for _, w := range want.Teams {
		for _, e := range w.Admins {
			configured[e] = true
		}
	}
	for _, u := range before.Users {
		if _, ok := users[u.ID]; ok {
			continue
		}
		if slices.ContainsFunc(emailsOf(before, u.ID), func(e string) bool { return configured[e] }) {
			t.Fatalf("configured admin %s (%s) deleted by\n  %s", u.ID, u.Email, plan)
		}
	}
}

// unmanaged reports whether the plan must leave team t alone: it carries
// no marker of a synced source and the plan does not adopt it.
func unmanaged(t sync.AccountTeam, want sync.Desired, p sync.Plan) bool {
	if m, ok := sync.ParseMarker(t.Description); ok && want.Sources[m.Source] {
		return false
	}
	return !slices.ContainsFunc(p.Changes, func(c sync.Change) bool { return c.ID == t.ID && c.Description != "" })
}

// noTeamEmptied fails unless every team of before that had members and is
// still there in after has some, or the run allowed destruction.
func noTeamEmptied(t *rapid.T, before, after sync.Current, pol sync.Policy, p sync.Plan) {
	if pol.AllowDestructive {
		return
	}
	for _, team := range before.Teams {
		i := slices.IndexFunc(after.Teams, func(a sync.AccountTeam) bool { return a.ID == team.ID })
		if i >= 0 && hasMember(team, before.Users) && !hasMember(after.Teams[i], after.Users) {
			t.Fatalf("team %s %q had members and was left with none:\n  %s", team.ID, team.Name, strings.Join(propBriefs(p.Changes), "\n  "))
		}
	}
}

// hasMember reports whether any of the team's member ids names one of users.
func hasMember(t sync.AccountTeam, users []sync.AccountUser) bool {
	return slices.ContainsFunc(t.MemberIDs, func(id string) bool {
		return slices.ContainsFunc(users, func(u sync.AccountUser) bool { return u.ID == id })
	})
}

// teamsEqual compares teams, member and admin lists as sets.
func teamsEqual(a, b sync.AccountTeam) bool {
	set := func(ids []string) []string {
		s := slices.Clone(ids)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description &&
		slices.Equal(set(a.MemberIDs), set(b.MemberIDs)) && slices.Equal(set(a.AdminIDs), set(b.AdminIDs))
}

// propBrief is a change in one comparable line: op, kind, name, id, the
// fields, members and admins it writes, what it destroys. Reasons are
// left out.
func propBrief(c sync.Change) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", c.Op, c.Kind, c.Name)
	if c.ID != "" {
		fmt.Fprintf(&b, " #%s", c.ID)
	}
	if c.Kind == sync.KindUser && c.Op == sync.OpCreate {
		fmt.Fprintf(&b, " (%s, %s)", c.UserName, c.UserPhone)
	}
	for _, f := range c.Fields {
		if f.Field == "description" {
			fmt.Fprintf(&b, " description:%q", f.New)
			continue
		}
		fmt.Fprintf(&b, " %s:%q>%q", f.Field, f.Old, f.New)
	}
	if c.Op == sync.OpCreate && c.Kind == sync.KindTeam {
		fmt.Fprintf(&b, " description:%q", c.Description)
	}
	if c.MembersSet {
		fmt.Fprintf(&b, " members=[%s]", strings.Join(c.Members, ","))
	}
	for _, m := range c.MembersAdded {
		fmt.Fprintf(&b, " +%s", m)
	}
	for _, m := range c.MembersRemoved {
		fmt.Fprintf(&b, " -%s", m)
	}
	if len(c.KeepIDs) > 0 {
		fmt.Fprintf(&b, " keep=[%s]", strings.Join(c.KeepIDs, ","))
	}
	if c.AdminsSet {
		fmt.Fprintf(&b, " admins=[%s]", strings.Join(c.Admins, ","))
	}
	for _, a := range c.AdminsAdded {
		fmt.Fprintf(&b, " +admin:%s", a)
	}
	for _, a := range c.AdminsRemoved {
		fmt.Fprintf(&b, " -admin:%s", a)
	}
	if len(c.KeepAdminIDs) > 0 {
		fmt.Fprintf(&b, " keep-admins=[%s]", strings.Join(c.KeepAdminIDs, ","))
	}
	if c.Destructive > 0 {
		fmt.Fprintf(&b, " destroys=%d", c.Destructive)
	}
	return b.String()
}

func propBriefs(cs []sync.Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, propBrief(c))
	}
	return out
}

// propSummary counts changes by op, as a plan's summary does.
func propSummary(cs []sync.Change) sync.Summary {
	var s sync.Summary
	for _, c := range cs {
		switch c.Op {
		case sync.OpCreate:
			s.Create++
		case sync.OpUpdate:
			s.Update++
		case sync.OpDelete:
			s.Delete++
		}
	}
	return s
}

// mutatePlan edits a copy of a saved plan at random: half the time it keeps
// only a random subset of the changes (what a reviewer may do), then it
// makes up to three edits of the kinds an attacker makes to a plan file,
// and fixes the summary up so the file still reads. It reports whether it
// changed anything.
func mutatePlan(t *rapid.T, p sync.Plan, cur sync.Current) (sync.Plan, bool) {
	p.Changes = slices.Clone(p.Changes)
	dropped := false
	if rapid.Bool().Draw(t, "subset") {
		kept := subset(t, p.Changes, "keep")
		dropped = len(kept) < len(p.Changes)
		p.Changes = kept
	}
	edits := rapid.IntRange(0, 3).Draw(t, "edits")
	teamChange := func(label string) int {
		var teams []int
		for i, c := range p.Changes {
			if c.Kind == sync.KindTeam {
				teams = append(teams, i)
			}
		}
		if len(teams) == 0 {
			return -1
		}
		return rapid.SampledFrom(teams).Draw(t, label)
	}
	anyUser := func(label string) sync.AccountUser {
		if len(cur.Users) == 0 {
			return sync.AccountUser{ID: "usr_p0", Email: "ann@x.test"}
		}
		return rapid.SampledFrom(cur.Users).Draw(t, label)
	}
	anyTeam := func(label string) sync.AccountTeam {
		if len(cur.Teams) == 0 {
			return sync.AccountTeam{ID: "tem_p0", Name: "Hand Made"}
		}
		return rapid.SampledFrom(cur.Teams).Draw(t, label)
	}
	for e := range edits {
		label := fmt.Sprintf("edit[%d]", e)
		switch rapid.IntRange(0, 14).Draw(t, label) {
		case 0: // drop a change: a reviewer's subset
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".drop")
				p.Changes = slices.Delete(p.Changes, i, i+1)
			}
		case 1: // list a change twice
			if len(p.Changes) > 0 {
				p.Changes = append(p.Changes, rapid.SampledFrom(p.Changes).Draw(t, label+".dup"))
			}
		case 2: // apply what the limits withheld
			if len(p.Withheld) > 0 {
				c := rapid.SampledFrom(p.Withheld).Draw(t, label+".withheld")
				c.WithheldReason = ""
				p.Changes = append(p.Changes, c)
			}
		case 3: // delete any user: an admin, a protected one
			u := anyUser(label + ".user")
			p.Changes = append(p.Changes, sync.Change{Op: sync.OpDelete, Kind: sync.KindUser, Name: sync.EmailKey(u.Email), ID: u.ID, Destructive: 1})
		case 4: // delete any team: a hand-made one
			tm := anyTeam(label + ".team")
			p.Changes = append(p.Changes, sync.Change{Op: sync.OpDelete, Kind: sync.KindTeam, Name: tm.Name, ID: tm.ID, Destructive: 1})
		case 5: // set any team's members
			tm := anyTeam(label + ".team")
			members := subset(t, append(slices.Clone(propEmails), propOutsider), label+".members")
			p.Changes = append(p.Changes, sync.Change{Op: sync.OpUpdate, Kind: sync.KindTeam, Name: tm.Name, ID: tm.ID,
				Members: members, MembersSet: true, MembersAdded: members})
		case 6: // create a user the directory does not want
			p.Changes = append(p.Changes, sync.Change{Op: sync.OpCreate, Kind: sync.KindUser, Name: propOutsider, UserName: "Mallory"})
		case 7: // add an outside email to a team write
			if i := teamChange(label + ".change"); i >= 0 {
				c := &p.Changes[i]
				c.Members = append(slices.Clone(c.Members), propOutsider)
				c.MembersAdded = append(slices.Clone(c.MembersAdded), propOutsider)
				c.MembersSet = true
			}
		case 8: // replace a team's members with an outside email
			if i := teamChange(label + ".change"); i >= 0 {
				c := &p.Changes[i]
				c.MembersRemoved = append(slices.Clone(c.MembersRemoved), c.Members...)
				c.Members, c.MembersAdded, c.MembersSet = []string{propOutsider}, []string{propOutsider}, true
			}
		case 9: // point a change at another object
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".change")
				if p.Changes[i].Kind == sync.KindUser {
					p.Changes[i].ID = anyUser(label + ".user").ID
				} else {
					p.Changes[i].ID = anyTeam(label + ".team").ID
				}
			}
		case 10: // claim --allow-destructive
			p.Origin.AllowDestructive = !p.Origin.AllowDestructive
		case 11: // take a team over by writing a marker into it
			if i := teamChange(label + ".change"); i >= 0 && p.Changes[i].Op == sync.OpUpdate {
				p.Changes[i].Description = sync.Marker{Source: "corp", GroupID: rapid.SampledFrom(propGroupIDs).Draw(t, label+".group")}.String()
			}
		case 12: // turn an update into a delete
			if len(p.Changes) > 0 {
				i := rapid.IntRange(0, len(p.Changes)-1).Draw(t, label+".change")
				if p.Changes[i].Op == sync.OpUpdate {
					p.Changes[i].Op = sync.OpDelete
				}
			}
		case 13: // keep ids the team does not hold
			if i := teamChange(label + ".change"); i >= 0 {
				p.Changes[i].KeepIDs = append(slices.Clone(p.Changes[i].KeepIDs), anyUser(label+".user").ID)
			}
		case 14: // make someone admin of a team, or take its admins away
			if i := teamChange(label + ".change"); i >= 0 {
				c := &p.Changes[i]
				admins := subset(t, append(slices.Clone(propEmails), propOutsider), label+".admins")
				c.AdminsRemoved = append(slices.Clone(c.AdminsRemoved), c.Admins...)
				c.Admins, c.AdminsAdded, c.AdminsSet = admins, admins, true
			}
		}
	}
	p.Summary = propSummary(p.Changes)
	return p, dropped || edits > 0
}

// TestMutatedPlanIsRefusedOrHarmless: on each API version, a saved plan,
// edited at random (a reviewer's subset, or an attacker's additions with
// the summary fixed up), is either refused by ApplyPlan's check against a
// fresh plan, or, applied through the client to the emulator, leaves
// every invariant true: no admin or protected user written, no team
// ptsync does not manage written, no team that had members left with none
// (unless the plan says --allow-destructive), only emails the directory
// wants added as members, and on v4 every team with a member and an
// admin, and every admin made by hand still one. An unedited plan is
// never refused.
func TestMutatedPlanIsRefusedOrHarmless(t *testing.T) {
	for _, api := range propAPIs {
		t.Run(api, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) { propMutated(rt, api) })
		})
	}
}

func propMutated(rt *rapid.T, api string) {
	v4 := api == pagertree.APIv4
	snaps, acct, pol := drawDirectory(rt, v4), drawAccount(rt, v4), drawPolicy(rt, v4)
	want, err := sync.BuildDesired(snaps, pol)
	if err != nil {
		rt.Fatalf("BuildDesired: %v", err)
	}
	r := newPropRig(rt, api, acct)
	before, cur := r.truth(), r.list(rt)
	made := sync.MakePlan(cur, want, pol)
	made.Origin.AllowDestructive = pol.AllowDestructive
	edited, mutated := mutatePlan(rt, made, cur)

	var file bytes.Buffer
	if err := sync.RenderJSON(&file, edited); err != nil {
		rt.Fatal(err)
	}
	saved, err := sync.ReadPlan(&file)
	if err != nil {
		if !mutated {
			rt.Fatalf("an unedited plan does not read back: %v", err)
		}
		return
	}
	freshPol := pol
	freshPol.AllowDestructive = saved.Origin.AllowDestructive
	fresh := sync.MakePlan(cur, want, freshPol)
	toApply, err := sync.VerifySaved(saved, fresh, cur)
	if err != nil {
		if !mutated {
			rt.Fatalf("an unedited plan was refused: %v", err)
		}
		var refused *sync.RefusedError
		if !errors.As(err, &refused) || len(refused.Refusals) == 0 {
			rt.Fatalf("refused without saying which change: %v", err)
		}
		return
	}

	sync.Apply(rt.Context(), r.pt, cur, toApply, sync.ApplyOptions{Concurrency: 3})
	noRefusals(rt, r.proxy, toApply)
	after := r.truth()
	noUntouchableWritten(rt, r.proxy, before, pol, toApply)
	for _, team := range before.Teams {
		if unmanaged(team, want, fresh) && r.proxy.written(team.ID) > 0 {
			rt.Fatalf("unmanaged team %s %q written by %v", team.ID, team.Name, propBriefs(toApply.Changes))
		}
	}
	noTeamEmptied(rt, before, after, freshPol, toApply)
	onlyWantedMembersAdded(rt, before, after, want)
	if v4 {
		v4Rules(rt, before, after, want, toApply)
	}
}

// onlyWantedMembersAdded fails when a team of after holds a member, or an
// admin, it did not hold in before whose emails the directory (or, for an
// admin, the admin rules) do not want.
func onlyWantedMembersAdded(t *rapid.T, before, after sync.Current, want sync.Desired) {
	emails := map[string][]string{}
	for _, u := range after.Users {
		for _, e := range append([]string{u.Email}, u.Emails...) {
			emails[u.ID] = append(emails[u.ID], sync.EmailKey(e))
		}
	}
	admins := map[string]bool{}
	for _, w := range want.Teams {
		for _, e := range w.Admins {
			admins[e] = true
		}
	}
	had := map[string]sync.AccountTeam{}
	for _, team := range before.Teams {
		had[team.ID] = team
	}
	for _, team := range after.Teams {
		for _, id := range team.MemberIDs {
			if slices.Contains(had[team.ID].MemberIDs, id) {
				continue
			}
			if !slices.ContainsFunc(emails[id], func(e string) bool { _, ok := want.Users[e]; return ok }) {
				t.Fatalf("team %s %q gained member %s (%q), whom the directory does not want", team.ID, team.Name, id, emails[id])
			}
		}
		for _, id := range team.AdminIDs {
			if slices.Contains(had[team.ID].AdminIDs, id) {
				continue
			}
			if !slices.ContainsFunc(emails[id], func(e string) bool { return admins[e] }) {
				t.Fatalf("team %s %q gained admin %s (%q), whom no admin rule names", team.ID, team.Name, id, emails[id])
			}
		}
	}
}
