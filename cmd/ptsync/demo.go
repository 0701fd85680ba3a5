package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/internal/ptaccount"
	"github.com/ptsync/ptsync/pagertree"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
	"github.com/ptsync/ptsync/sources"
	"github.com/ptsync/ptsync/sources/file"
	"github.com/ptsync/ptsync/sync"
)

// demoDirectory is the directory the demo syncs, shipped in the binary.
//
//go:embed demo/directory.yaml
var demoDirectory []byte

const (
	demoSourceName = "directory"
	demoOwner      = "owner@acme.example"
	// demoRule is the teams: rule, as a config file would spell it.
	demoMatch = "oncall-*"
	demoName  = `{{ trimPrefix "oncall-" .Name | title }}`
)

// runDemo needs no set-up: it starts the PagerTree emulator in-process,
// syncs the embedded directory into it, changes the directory (a hire, a
// leaver, a group rename), syncs again and shows that a third plan is
// empty.
func runDemo(ctx context.Context, e env) int {
	fs := newFlags("demo", e)
	api := fs.String("api", pagertree.APIv3, "the PagerTree API the emulator speaks and ptsync writes through: v3 or v4")
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "demo", fmt.Errorf("unexpected argument %q (demo takes no arguments)", fs.Arg(0)))
	}
	if *api != pagertree.APIv3 && *api != pagertree.APIv4 {
		return fail(e, "demo", fmt.Errorf("--api %q: want v3 or v4", *api))
	}
	log, err := newLogger(config.Log{Level: "warn", Format: "console"}, e.stderr)
	if err != nil {
		return fail(e, "demo", err)
	}
	snap, err := file.Parse(demoDirectory, demoSourceName, "demo/directory.yaml", log)
	if err != nil {
		return fail(e, "demo", fmt.Errorf("embedded directory: %w", err))
	}

	emu := pagertreetest.NewServer(pagertreetest.Options{API: *api})
	defer emu.Close()
	if err := seedDemoAccount(emu, *api); err != nil {
		return fail(e, "demo", err)
	}
	ptCfg := pagertree.Config{API: *api, URL: emu.URL(), Username: pagertreetest.DefaultUsername, Password: pagertreetest.DefaultPassword}
	pol := sync.Policy{
		Rules: []config.TeamRule{{
			Source: demoSourceName, Match: demoMatch, Name: demoName, OnMissing: config.OnMissingDelete,
		}},
		Scope:                 config.ScopeTeamMembers,
		DeleteUsers:           true,
		Protect:               []string{demoOwner},
		MaxDestructive:        25,
		MaxDestructivePercent: 20,
	}
	if *api == pagertree.APIv4 {
		ptCfg = pagertree.Config{API: *api, URL: emu.URL(), APIKey: pagertreetest.DefaultAPIKey}
		pol.TeamRoles, pol.PhonesE164, pol.TeamAdmins = true, true, []string{demoOwner}
	}
	client, err := pagertree.New(ptCfg)
	if err != nil {
		return fail(e, "demo", err)
	}
	src := &memorySource{snap: snap}
	d := &demo{
		out: e.stdout,
		api: *api,
		emu: emu,
		src: src,
		engine: &sync.Engine{
			Sources:        []sources.Source{src},
			PagerTree:      ptaccount.For(*api, client),
			Policy:         pol,
			MinSourceUsers: 1,
			Concurrency:    4,
			Logger:         log,
		},
	}
	if err := d.run(ctx); err != nil {
		return fail(e, "demo", err)
	}
	return exitOK
}

// seedDemoAccount gives the emulator's account its admin and a team made
// by hand, which the demo shows ptsync leaving alone.
func seedDemoAccount(emu *pagertreetest.Server, api string) error {
	const handMade, note = "Facilities", "Made by hand in PagerTree"
	if api == pagertree.APIv4 {
		owner, err := emu.AddAccountUser(pagertree.AccountUser{
			Roles: pagertree.AccountRoles{Admin: true},
			User:  pagertree.Person{Name: "Olivia Owner", Emails: []pagertree.Email{{Email: demoOwner, Primary: true}}},
		})
		if err != nil {
			return err
		}
		_, err = emu.AddTeamV4(pagertree.TeamV4{Name: handMade, Notes: note, MemberAccountUserIDs: []string{owner.ID}, AdminAccountUserIDs: []string{owner.ID}})
		return err
	}
	owner, err := emu.AddUser(pagertree.User{Name: "Olivia Owner", Email: demoOwner, Roles: pagertree.Roles{Admin: true}})
	if err != nil {
		return err
	}
	_, err = emu.AddTeam(pagertree.Team{Name: handMade, Description: note, MemberUserIDs: []string{owner.ID}})
	return err
}

// demo is one run of the demo: where it prints and what it drives.
type demo struct {
	out    io.Writer
	api    string // the PagerTree API: pagertree.APIv3 or APIv4
	emu    *pagertreetest.Server
	src    *memorySource
	engine *sync.Engine
	step   int
}

func (d *demo) run(ctx context.Context) error {
	d.intro()

	d.heading("Plan: what a first sync would do (nothing is written)")
	if _, err := d.plan(ctx); err != nil {
		return err
	}
	d.heading("Sync: apply that plan")
	if err := d.sync(ctx); err != nil {
		return err
	}

	d.heading("The directory changes")
	if err := d.change(); err != nil {
		return err
	}
	d.heading("Plan: only the difference")
	if _, err := d.plan(ctx); err != nil {
		return err
	}
	d.heading("Sync: apply it")
	if err := d.sync(ctx); err != nil {
		return err
	}

	d.heading("Plan again: nothing left to do")
	p, err := d.plan(ctx)
	if err != nil {
		return err
	}
	if !p.InSync() {
		return fmt.Errorf("the third plan should be empty but has %d changes: this is a bug, please report it", len(p.Changes)+len(p.Withheld))
	}
	fmt.Fprint(d.out, `
That is the whole loop. To run it against your own directory and account:
  ptsync validate --config ptsync.yaml --connect   # check the config, log in everywhere
  ptsync plan --config ptsync.yaml                 # see what would change
  ptsync sync --config ptsync.yaml                 # apply it (deletes are capped by safety:)
  ptsync run --config ptsync.yaml                  # the daemon: syncs on schedule:, serves /metrics /healthz /readyz
See config.example.yaml for every key, and ptsync emulator to try a config safely.
`)
	return nil
}

func (d *demo) intro() {
	groups := make([]string, 0, len(d.src.snap.Groups))
	for _, g := range d.src.snap.Groups {
		groups = append(groups, g.Name)
	}
	disabled := 0
	for _, u := range d.src.snap.Users {
		if u.Disabled {
			disabled++
		}
	}
	fmt.Fprintf(d.out, `ptsync demo
===========
A PagerTree API emulator (API %s) runs in this process at %s.
Its account already has an admin, %s, and a team made by
hand, "Facilities": ptsync never changes admins, protected users, or teams
it does not manage.

The directory (a "file" source embedded in the binary) has %d people, %d of
them disabled, plus %d entry without an email (skipped), in %d groups:
%s.
The teams: rule is  match: %q  name: '%s'
so each on-call group becomes a team; users.delete: true removes leavers.
`, d.api, d.emu.URL(), demoOwner, len(d.src.snap.Users), disabled, d.src.snap.Skipped[sources.SkipNoEmail],
		len(d.src.snap.Groups), strings.Join(groups, ", "), demoMatch, demoName)
}

func (d *demo) heading(title string) {
	d.step++
	line := fmt.Sprintf("%d. %s", d.step, title)
	fmt.Fprintf(d.out, "\n%s\n%s\n", line, strings.Repeat("-", len([]rune(line))))
}

// plan prints the plan the engine makes now, and what reading cost.
func (d *demo) plan(ctx context.Context) (sync.Plan, error) {
	d.emu.ResetStats()
	prep, err := d.engine.Prepare(ctx, sync.RunOptions{})
	if err != nil {
		return sync.Plan{}, err
	}
	if err := sync.RenderText(d.out, prep.Plan); err != nil {
		return sync.Plan{}, err
	}
	d.traffic()
	return prep.Plan, nil
}

// sync runs one cycle and prints its result and the account after it.
func (d *demo) sync(ctx context.Context) error {
	d.emu.ResetStats()
	rep, err := d.engine.RunOnce(ctx, sync.RunOptions{})
	if err != nil {
		return err
	}
	if err := sync.RenderResult(d.out, rep.Result); err != nil {
		return err
	}
	d.traffic()
	if code := sync.ExitCode(rep, nil); code != sync.ExitOK {
		return fmt.Errorf("the sync ended with exit code %d", code)
	}
	fmt.Fprintln(d.out)
	d.account()
	return nil
}

// traffic prints what the last step cost in PagerTree requests.
func (d *demo) traffic() {
	st := d.emu.Stats()
	total := 0
	for _, n := range st.Requests {
		total += n
	}
	fmt.Fprintf(d.out, "(PagerTree requests: %d, of which writes: %d)\n", total, st.WriteAttempts)
}

// demoTeam is a team as the demo prints it, whichever the API.
type demoTeam struct {
	name, description   string
	memberIDs, adminIDs []string
}

// holdings is the emulator's account: first names by user id, and teams.
func (d *demo) holdings() (map[string]string, []demoTeam) {
	names := map[string]string{}
	var teams []demoTeam
	if d.api == pagertree.APIv4 {
		for _, u := range d.emu.AccountUsers() {
			names[u.ID] = strings.Fields(u.User.Name)[0]
		}
		for _, t := range d.emu.TeamsV4() {
			teams = append(teams, demoTeam{t.Name, t.Notes, t.MemberAccountUserIDs, t.AdminAccountUserIDs})
		}
		return names, teams
	}
	for _, u := range d.emu.Users() {
		names[u.ID] = strings.Fields(u.Name)[0]
	}
	for _, t := range d.emu.Teams() {
		teams = append(teams, demoTeam{name: t.Name, description: t.Description, memberIDs: t.MemberUserIDs})
	}
	return names, teams
}

// account prints PagerTree's teams as the emulator holds them.
func (d *demo) account() {
	names, teams := d.holdings()
	firstNames := func(ids []string) string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			out = append(out, names[id])
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	fmt.Fprintf(d.out, "PagerTree now has %d users and these teams:\n", len(names))
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	slices.SortFunc(teams, func(a, b demoTeam) int { return strings.Compare(a.name, b.name) })
	for _, t := range teams {
		owner := "made by hand, left alone"
		if m, ok := sync.ParseMarker(t.description); ok {
			owner = "ptsync, group " + m.GroupID
		}
		line := "  " + t.name + "\t" + owner + "\t" + firstNames(t.memberIDs)
		if d.api == pagertree.APIv4 {
			line += "\tadmins: " + firstNames(t.adminIDs)
		}
		fmt.Fprintln(tw, line)
	}
	_ = tw.Flush() // d.out is the command's stdout; a write error shows there first
}

// change edits the directory in memory: a hire, a leaver, a group rename.
func (d *demo) change() error {
	s := d.src.snap
	const hireID, leaverID, renamedID = "e-032", "e-003", "grp-1d88"
	leaver, ok := s.Users[leaverID]
	if !ok {
		return fmt.Errorf("embedded directory: no user %s to leave", leaverID)
	}
	s.Users[hireID] = sources.User{ID: hireID, Email: "priya.natarajan@acme.example", Name: "Priya Natarajan", Phone: "+1 415 555 0132"}
	delete(s.Users, leaverID)
	var renamedFrom, renamedTo string
	for i := range s.Groups {
		g := &s.Groups[i]
		g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return id == leaverID })
		switch {
		case g.Name == "oncall-payments":
			g.Members = append(g.Members, hireID)
		case g.ID == renamedID:
			renamedFrom, g.Name = g.Name, "oncall-databases"
			renamedTo = g.Name
		}
	}
	fmt.Fprintf(d.out, `  hired    Priya Natarajan (priya.natarajan@acme.example) joins oncall-payments
  left     %s (%s) leaves the company: out of every group
  renamed  group %s is now %s (same group id, %s)
`, leaver.Name, leaver.Email, renamedFrom, renamedTo, renamedID)
	return nil
}

// memorySource is a source whose directory lives in memory, so the demo
// can change it between runs. Fetch returns a copy, as a real source
// returns a fresh snapshot each time.
type memorySource struct {
	snap *sources.Snapshot
}

func (m *memorySource) Name() string { return m.snap.Source }

func (m *memorySource) Fetch(ctx context.Context) (*sources.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &sources.Snapshot{
		Source:  m.snap.Source,
		Users:   maps.Clone(m.snap.Users),
		Skipped: maps.Clone(m.snap.Skipped),
		Groups:  make([]sources.Group, len(m.snap.Groups)),
	}
	for i, g := range m.snap.Groups {
		g.Members = slices.Clone(g.Members)
		c.Groups[i] = g
	}
	return c, nil
}
