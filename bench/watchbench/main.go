// Command watchbench measures watch mode's propagation latency (issue 13):
// the time from a single membership change written to the directory to
// the PagerTree write that reflects it, as the emulator sees it, and the
// PagerTree requests each incremental cycle makes. It is run by
// bench/watch.sh.
//
// For each directory — OpenLDAP (slapd with the syncprov overlay, through
// internal/testenv/slapd) and Active Directory (Samba, through
// internal/testenv/samba) — it loads a generated population, brings the
// emulator (in this process, its handler wrapped to timestamp every
// request) in step with one fast `ptsync sync`, starts `ptsync run` with
// watch mode and requests_per_second as a deployment would have them,
// waits for its first full sync and its feed, then makes single membership
// changes one at a time (a user added to a group, then removed from it)
// and times each until the emulator receives the PUT of that team whose
// member list reflects it. Everything listens on 127.0.0.1.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/ptsync/ptsync/bench/internal/proc"
	"github.com/ptsync/ptsync/internal/testenv/samba"
	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "watchbench:", err)
		os.Exit(1)
	}
}

type options struct {
	ptsync               string
	users, adUsers       int
	groups, members      int
	changes              int
	debounces            []time.Duration
	gap, timeout         time.Duration
	rps                  float64
	scope                string
	p50Target, p99Target time.Duration
	keep                 bool
	adWorkers            int
	directories          []string
	printChangeLines     bool
}

func run() error {
	var o options
	flag.StringVar(&o.ptsync, "ptsync", "", "the ptsync binary")
	dirs := flag.String("directories", "openldap,ad", "directories to measure, comma-separated: openldap, ad")
	flag.IntVar(&o.users, "users", 20000, "users in the directory")
	flag.IntVar(&o.adUsers, "ad-users", 0, "users in the AD directory (0: -users)")
	flag.IntVar(&o.groups, "groups", 200, "groups (each a team)")
	flag.IntVar(&o.members, "members", 20, "members per group")
	flag.IntVar(&o.changes, "changes", 30, "single membership changes to time (alternately an add and the remove of it)")
	debounces := flag.String("debounce", "5s", "watch.debounce (ptsync's default: 5s); a comma-separated list measures each against the same directory")
	flag.DurationVar(&o.gap, "gap", 0, "wait after a change landed before the next one (0: 2 × debounce), plus a random 0 to 1 debounce")
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on a change that has not landed after this long")
	flag.Float64Var(&o.rps, "rps", 10, "pagertree.requests_per_second of the daemon")
	flag.StringVar(&o.scope, "scope", "all", "users.scope: all (every directory user is in PagerTree) or team_members")
	flag.DurationVar(&o.p50Target, "p50", 10*time.Second, "target: median latency below this")
	flag.DurationVar(&o.p99Target, "p99", 60*time.Second, "target: 99th percentile latency below this")
	flag.IntVar(&o.adWorkers, "ad-workers", 4, "LDAP connections adding the AD population at once")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, ptsync's log) and say where")
	flag.BoolVar(&o.printChangeLines, "v", true, "print a line per change")
	flag.Parse()
	if o.ptsync == "" {
		return errors.New("-ptsync is required")
	}
	for _, v := range strings.Split(*debounces, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d <= 0 {
			return fmt.Errorf("-debounce %q: want positive durations", v)
		}
		o.debounces = append(o.debounces, d)
	}
	if o.adUsers == 0 {
		o.adUsers = o.users
	}
	o.directories = strings.Split(*dirs, ",")
	work, err := os.MkdirTemp("", "watchbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory (kept):", work)
	} else {
		defer os.RemoveAll(work)
	}

	var results []result
	for _, name := range o.directories {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		var d *directory
		switch name {
		case "openldap":
			d, err = openLDAP(o, dir)
		case "ad":
			d, err = activeDirectory(o)
		default:
			return fmt.Errorf("-directories: unknown %q (openldap, ad)", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for i, debounce := range o.debounces {
			sub := filepath.Join(dir, fmt.Sprintf("debounce-%s", debounce))
			if err := os.MkdirAll(sub, 0o700); err != nil {
				return err
			}
			if i == 0 {
				if err := ldapsearchBaseline(o, d, sub); err != nil {
					d.stop()
					return fmt.Errorf("%s: %w", name, err)
				}
			}
			r, err := measure(o, d, sub, debounce)
			if err != nil {
				d.stop()
				return fmt.Errorf("%s: %w", name, err)
			}
			results = append(results, r)
		}
		d.stop()
	}

	fmt.Printf("\n| directory | users | debounce | rps | changes | p50 | p90 | p99 | max | requests per cycle |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Println(r.row(o))
	}
	fmt.Println()
	var missed []string
	for _, r := range results {
		p50, p99 := r.percentile(0.50), r.percentile(0.99)
		fmt.Printf("%s, debounce %s: p50 %s = %.2f × the target (%s), p99 %s = %.2f × the target (%s)", r.name, r.debounce, secs(p50),
			p50.Seconds()/o.p50Target.Seconds(), secs(o.p50Target), secs(p99), p99.Seconds()/o.p99Target.Seconds(), secs(o.p99Target))
		if r.lost > 0 {
			fmt.Printf("; %d of %d changes never landed", r.lost, len(r.changes))
		}
		fmt.Printf("; source reads: %s", r.reads())
		fmt.Println()
		if p50 >= o.p50Target || p99 >= o.p99Target || r.lost > 0 {
			missed = append(missed, fmt.Sprintf("%s (debounce %s)", r.name, r.debounce))
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("targets missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

// directory is one directory server holding the population, and how to
// make a change in it.
type directory struct {
	name  string
	users int
	// source is the ldap block of the source, indented for the config;
	// password is its bind password.
	source, password string
	// modify adds user to group (add) or removes them, and returns once
	// the server acknowledged it.
	modify func(group, user int, add bool) error
	stop   func()
	// pid is the server's process id, for its CPU time.
	pid int
	// provisioned is how long loading the population took.
	provisioned time.Duration
}

// population is the generated directory, the same for both servers:
// users user000000.., groups group00000.. of members consecutive users.
func population(o options, users int) slapd.Population {
	return slapd.Population{Users: users, Groups: o.groups, MembersPerGroup: o.members}
}

// openLDAP starts slapd with syncprov and a session log, loaded with the
// population by slapadd. ptsync binds as a watch account whose searches
// have no size limit: a sync search is not paged (README, "Watch: LDAP").
func openLDAP(o options, dir string) (*directory, error) {
	pop := population(o, o.users)
	ldif := filepath.Join(dir, "population.ldif")
	if err := pop.WriteLDIFFile(ldif); err != nil {
		return nil, err
	}
	start := time.Now()
	srvDir := filepath.Join(dir, "slapd")
	if err := os.MkdirAll(srvDir, 0o700); err != nil {
		return nil, err
	}
	srv, err := slapd.Launch(srvDir, slapd.Options{
		LDIF:       watcherLDIF,
		LDIFFile:   ldif,
		SyncProv:   true,
		SessionLog: 1000,
		// Options.Access lines go into the database section as written:
		// the watch account's limit (slapd.conf(5) "limits"; the harness's
		// reader keeps its 500) and its read access.
		Access: []string{
			`limits dn.exact="` + watcherDN + `" size=unlimited`,
			`access to * by dn.exact="` + watcherDN + `" read by * break`,
		},
	})
	if err != nil {
		return nil, err
	}
	provisioned := time.Since(start)
	conn, err := ldap.DialURL(srv.URL)
	if err == nil {
		err = conn.Bind(slapd.RootDN, slapd.RootPassword)
	}
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("bind as the rootdn: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ldap.pass"), []byte(watcherPassword), 0o600); err != nil {
		return nil, err
	}
	fmt.Printf("openldap: slapd with syncprov (sessionlog 1000) loaded with %d users and %d groups of %d in %s\n",
		pop.Users, pop.Groups, pop.MembersPerGroup, provisioned.Round(100*time.Millisecond))
	return &directory{
		name:     "OpenLDAP (syncprov)",
		users:    pop.Users,
		password: watcherPassword,
		source: fmt.Sprintf(`      url: %s
      bind_dn: %s
      bind_password_file: ../ldap.pass
      page_size: 1000
      users: {base_dn: "%s"}
      groups: {base_dn: "%s"}
`, srv.URL, watcherDN, slapd.PeopleDN, slapd.GroupsDN),
		modify: func(group, user int, add bool) error {
			return modifyMember(conn, "cn="+slapd.GroupName(group)+","+slapd.GroupsDN, slapd.UserDN(user), add)
		},
		stop: func() {
			conn.Close()
			if err := srv.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "watchbench: stop slapd:", err)
			}
		},
		provisioned: provisioned,
		pid:         srv.Pid(),
	}, nil
}

const (
	watcherDN       = "cn=watcher," + slapd.Suffix
	watcherPassword = "watcher-secret"
	watcherLDIF     = `dn: ` + watcherDN + `
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: watcher
userPassword: ` + watcherPassword + `

`
)

func modifyMember(conn *ldap.Conn, group, member string, add bool) error {
	m := ldap.NewModifyRequest(group, nil)
	if add {
		m.Add("member", []string{member})
	} else {
		m.Delete("member", []string{member})
	}
	return conn.Modify(m)
}

// activeDirectory provisions a Samba DC (internal/testenv/samba: LDAP on
// 127.0.0.1:389 only) and adds the population over LDAP as the domain
// Administrator, on several connections at once. ptsync binds as the
// harness's service account, a plain domain user (DirSync with
// LDAP_DIRSYNC_OBJECT_SECURITY).
func activeDirectory(o options) (*directory, error) {
	start := time.Now()
	dc, tb, err := startSamba()
	if err != nil {
		return nil, err
	}
	fmt.Printf("ad: Samba DC provisioned in %s\n", time.Since(start).Round(time.Second))
	stop := func() { tb.cleanup() }
	dial := func() (*ldap.Conn, error) {
		conn, err := ldap.DialURL(dc.URL)
		if err != nil {
			return nil, err
		}
		if err := conn.Bind(dc.AdminDN, dc.AdminPassword); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	admin, err := dial()
	if err != nil {
		stop()
		return nil, fmt.Errorf("bind as the Administrator: %w", err)
	}
	ou := "OU=bench," + dc.BaseDN
	usersDN, groupsDN := "OU=users,"+ou, "OU=groups,"+ou
	for _, dn := range []string{ou, usersDN, groupsDN} {
		add := ldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"organizationalUnit"})
		if err := admin.Add(add); err != nil {
			stop()
			return nil, fmt.Errorf("add %s: %w", dn, err)
		}
	}
	pop := population(o, o.adUsers)
	userDN := func(i int) string { return "CN=" + slapd.UserUID(i) + "," + usersDN }
	groupDN := func(g int) string { return "CN=" + slapd.GroupName(g) + "," + groupsDN }
	load := time.Now()
	err = parallel(o.adWorkers, pop.Users, dial, func(conn *ldap.Conn, i int) error {
		add := ldap.NewAddRequest(userDN(i), nil)
		add.Attribute("objectClass", []string{"user"})
		add.Attribute("sAMAccountName", []string{slapd.UserUID(i)})
		add.Attribute("mail", []string{slapd.UserEmail(i)})
		add.Attribute("displayName", []string{fmt.Sprintf("User %06d", i)})
		add.Attribute("telephoneNumber", []string{fmt.Sprintf("+1 415 555 %04d", i%10000)})
		// A normal account that needs no password: enabled without one.
		add.Attribute("userAccountControl", []string{"544"})
		return conn.Add(add)
	}, func(done int) {
		fmt.Printf("ad: %d of %d users added (%s, %.0f/s)\n", done, pop.Users, time.Since(load).Round(time.Second),
			float64(done)/time.Since(load).Seconds())
	})
	if err == nil {
		err = parallel(o.adWorkers, pop.Groups, dial, func(conn *ldap.Conn, g int) error {
			add := ldap.NewAddRequest(groupDN(g), nil)
			add.Attribute("objectClass", []string{"group"})
			add.Attribute("sAMAccountName", []string{slapd.GroupName(g)})
			members := make([]string, pop.MembersPerGroup)
			for j := range members {
				members[j] = userDN(pop.GroupMember(g, j))
			}
			add.Attribute("member", members)
			return conn.Add(add)
		}, nil)
	}
	if err != nil {
		admin.Close()
		stop()
		return nil, err
	}
	provisioned := time.Since(load)
	fmt.Printf("ad: %d users and %d groups of %d added over LDAP in %s (%.0f users/s)\n", pop.Users, pop.Groups,
		pop.MembersPerGroup, provisioned.Round(time.Second), float64(pop.Users)/provisioned.Seconds())
	return &directory{
		name:     "Active Directory (Samba, DirSync)",
		users:    pop.Users,
		password: dc.BindPassword,
		source: fmt.Sprintf(`      url: %s
      bind_dn: "%s"
      bind_password: "%s"
      active_directory: true
      page_size: 1000
      users: {base_dn: "%s"}
      groups: {base_dn: "%s"}
`, dc.URL, dc.BindDN, dc.BindPassword, usersDN, groupsDN),
		modify: func(group, user int, add bool) error {
			return modifyMember(admin, groupDN(group), userDN(user), add)
		},
		stop: func() {
			admin.Close()
			stop()
		},
		provisioned: provisioned,
		pid:         childNamed("samba"),
	}, nil
}

// childNamed is the pid of this process's child called name (0: none).
func childNamed(name string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[end+1:]))
		if open < 0 || len(fields) < 2 || string(stat[open+1:end]) != name || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(stat[:open])))
		return pid
	}
	return 0
}

// parallel runs do(conn, i) for i in [0, n) on workers connections,
// calling progress every 2,000 items.
func parallel(workers, n int, dial func() (*ldap.Conn, error), do func(*ldap.Conn, int) error, progress func(int)) error {
	next := make(chan int)
	errs := make(chan error, workers)
	var done int
	var mu gosync.Mutex
	var wg gosync.WaitGroup
	for range workers {
		conn, err := dial()
		if err != nil {
			close(next)
			wg.Wait()
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			for i := range next {
				if err := do(conn, i); err != nil {
					errs <- fmt.Errorf("item %d: %w", i, err)
					for range next { // drain
					}
					return
				}
				mu.Lock()
				done++
				if progress != nil && done%2000 == 0 {
					progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
			continue
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// result is the measurement of one directory.
type result struct {
	name        string
	users       int
	debounce    time.Duration
	changes     []change
	lost        int
	initialReqs map[string]int
	initialTime time.Duration
	fullSyncs   int // watch cycles that fell back to a full sync
	fallbacks   []string
	propagation string  // the daemon's own histogram, sum / count
	idleCPU     float64 // the server's CPU with nothing changing, in cores
}

// change is one timed membership change.
type change struct {
	group, user int
	add         bool
	latency     time.Duration // directory write to the PUT seen; 0: never landed
	// trigger is the write to the start of the watch cycle (feed delay
	// and debounce); fetch the source's read in that cycle.
	trigger, fetch time.Duration
	// refreshed says that read was of the changed entries only.
	refreshed bool
	requests  map[string]int
	cycles    int // sync runs started between this change and the next
	scoped    int // of which scoped
}

func (r result) latencies() []time.Duration {
	var out []time.Duration
	for _, c := range r.changes {
		if c.latency > 0 {
			out = append(out, c.latency)
		}
	}
	slices.Sort(out)
	return out
}

// percentile is the nearest-rank percentile of the latencies (at 30
// changes, p99 is the largest).
func (r result) percentile(p float64) time.Duration {
	l := r.latencies()
	if len(l) == 0 {
		return 0
	}
	return l[max(0, int(math.Ceil(p*float64(len(l))))-1)]
}

// reads says how the watch cycles read the source: only the changed
// entries (refreshed) or whole, with the median time of each.
func (r result) reads() string {
	var refreshed, whole []time.Duration
	for _, c := range r.changes {
		if c.refreshed {
			refreshed = append(refreshed, c.fetch)
		} else if c.fetch > 0 {
			whole = append(whole, c.fetch)
		}
	}
	median := func(d []time.Duration) string {
		if len(d) == 0 {
			return "-"
		}
		slices.Sort(d)
		return secs(d[len(d)/2])
	}
	return fmt.Sprintf("%d refreshed (median %s), %d whole (median %s)", len(refreshed), median(refreshed), len(whole), median(whole))
}

func (r result) row(o options) string {
	totals := map[int]int{}
	var counts []int
	for _, c := range r.changes {
		n := total(c.requests)
		totals[n]++
		counts = append(counts, n)
	}
	slices.Sort(counts)
	reqs := "-"
	if len(counts) > 0 {
		reqs = fmt.Sprintf("%d–%d (median %d): %s", counts[0], counts[len(counts)-1], counts[len(counts)/2], typicalRequests(r.changes))
	}
	return fmt.Sprintf("| %s | %d | %s | %g | %d | %s | %s | %s | %s | %s |", r.name, r.users, r.debounce, o.rps, len(r.changes),
		secs(r.percentile(0.5)), secs(r.percentile(0.9)), secs(r.percentile(0.99)), secs(r.percentile(1)), reqs)
}

// typicalRequests is the most common request mix of a cycle.
func typicalRequests(cs []change) string {
	seen := map[string]int{}
	for _, c := range cs {
		seen[describe(c.requests)]++
	}
	best, n := "", 0
	for k, v := range seen {
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return fmt.Sprintf("%s (%d of %d)", best, n, len(cs))
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func describe(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d× %s", m[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// measure runs the emulator and the daemon against d and times the
// changes.
func measure(o options, d *directory, dir string, debounce time.Duration) (result, error) {
	res := result{name: d.name, users: d.users, debounce: debounce}
	gap := o.gap
	if gap == 0 {
		gap = 2 * debounce
	}
	rec := &recorder{h: pagertreetest.New(pagertreetest.Options{})}
	emu := httptest.NewServer(rec) // 127.0.0.1
	defer emu.Close()

	// The account in step first, at full speed: at 10 requests a second,
	// creating 20,000 users would take over half an hour.
	start := time.Now()
	inStep := filepath.Join(dir, "in-step.yaml")
	if err := os.WriteFile(inStep, []byte(config(o, d, emu.URL, 100000, "", 0, "info")), 0o600); err != nil {
		return res, err
	}
	if out, err := exec.Command(o.ptsync, "sync", "--allow-destructive", "--config", inStep).CombinedOutput(); err != nil {
		return res, fmt.Errorf("bringing the account in step: %w\n%s", err, lastLines(out, 10))
	}
	emuState := rec.h.(*pagertreetest.Server)
	teams, users := map[string]string{}, map[string]string{}
	for _, t := range emuState.Teams() {
		teams[t.Name] = t.ID
	}
	for _, u := range emuState.Users() {
		users[u.Email] = u.ID
	}
	fmt.Printf("%s: PagerTree in step (%d users, %d teams) in %s\n", d.name, len(users), len(teams), time.Since(start).Round(time.Second))

	metricsAddr, err := freeAddr()
	if err != nil {
		return res, err
	}
	daemonCfg := filepath.Join(dir, "ptsync.yaml")
	if err := os.WriteFile(daemonCfg, []byte(config(o, d, emu.URL, o.rps, metricsAddr, debounce, "info")), 0o600); err != nil {
		return res, err
	}
	logPath := filepath.Join(dir, "ptsync.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	mark := rec.len()
	start = time.Now()
	cmd := exec.Command(o.ptsync, "run", "--config", daemonCfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	p := &process{done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	exited := p.done
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if !o.keep {
			return
		}
		fmt.Printf("%s: ptsync's log: %s\n", d.name, logPath)
	}()
	m := &daemonMetrics{url: "http://" + metricsAddr + "/metrics"}
	if err := waitEstablished(debounce, m, rec, p, logPath); err != nil {
		return res, err
	}
	res.initialTime = time.Since(start)
	sum0, count0, _ := m.propagation()
	res.initialReqs = rec.routes(mark, rec.len())
	fmt.Printf("%s: daemon ready in %s: first full sync and feed established, quiet; its requests: %s\n",
		d.name, res.initialTime.Round(100*time.Millisecond), describe(res.initialReqs))

	for k, ch := range plan(o, d.users) {
		email := slapd.UserEmail(ch.user)
		teamID := teams[slapd.GroupName(ch.group)]
		if teamID == "" {
			return res, fmt.Errorf("team %s is not in PagerTree", slapd.GroupName(ch.group))
		}
		// With users.scope team_members, a user in no group is not in
		// PagerTree before the add creates them: looked up every 100 ms
		// (the PUT's time is recorded as it is answered, so this does not
		// blur the latency).
		var looked time.Time
		userID := func() string {
			if id := users[email]; id != "" || time.Since(looked) < 100*time.Millisecond {
				return id
			}
			looked = time.Now()
			for _, u := range emuState.Users() {
				if u.Email == email {
					users[email] = u.ID
				}
			}
			return users[email]
		}
		reqMark, logMark := rec.len(), fileSize(logPath)
		t0 := time.Now()
		if err := d.modify(ch.group, ch.user, ch.add); err != nil {
			return res, fmt.Errorf("change %d: %w", k+1, err)
		}
		landed, ok := rec.waitTeamPut(reqMark, teamID, userID, ch.add, o.timeout, exited)
		if ok {
			ch.latency = landed.Sub(t0)
		} else {
			res.lost++
		}
		select {
		case <-exited:
			return res, fmt.Errorf("ptsync run exited: %v\n%s", p.err, tail(logPath, 20))
		// A random part, up to one debounce, so that the next write
		// meets a polled feed (DirSync) at any point of its interval.
		case <-time.After(gap + rand.N(debounce)):
		}
		ch.requests = rec.routes(reqMark, rec.len())
		cyc := readCycles(logPath, logMark)
		ch.cycles, ch.scoped = cyc.started, cyc.scoped
		if !cyc.cycleStart.IsZero() {
			ch.trigger = cyc.cycleStart.Sub(t0)
		}
		ch.fetch, ch.refreshed = cyc.fetch, cyc.refreshed
		res.fullSyncs += len(cyc.fallbacks)
		res.fallbacks = append(res.fallbacks, cyc.fallbacks...)
		res.changes = append(res.changes, ch)
		if o.printChangeLines {
			op := "add"
			if !ch.add {
				op = "remove"
			}
			lat := "never landed"
			if ch.latency > 0 {
				lat = secs(ch.latency)
			}
			read := "whole"
			if ch.refreshed {
				read = "refreshed"
			}
			fmt.Printf("%s: change %2d: %-6s %s in %s: %s (cycle began %s after the write, source read %s, %s); %d cycle(s), %d scoped; requests: %s\n",
				d.name, k+1, op, slapd.UserUID(ch.user), slapd.GroupName(ch.group), lat, secs(ch.trigger), secs(ch.fetch), read,
				ch.cycles, ch.scoped, describe(ch.requests))
		}
	}
	if sum, count, err := m.propagation(); err == nil {
		sum, count = sum-sum0, count-count0
		res.propagation = fmt.Sprintf("%d observed, mean %.2f s", int(count), sum/max(count, 1))
		fmt.Printf("%s: ptsync_propagation_seconds (the daemon's own view, from the change's time in the directory to the end of its sync): %s\n",
			d.name, res.propagation)
	}
	// The directory server's CPU with nothing changing: what following the
	// feed costs it (a persistent search; DirSync polled every debounce).
	if d.pid > 0 {
		window := max(20*time.Second, 4*debounce)
		before, err1 := proc.CPU(strconv.Itoa(d.pid))
		reqs := rec.len()
		time.Sleep(window)
		after, err2 := proc.CPU(strconv.Itoa(d.pid))
		if err1 == nil && err2 == nil {
			res.idleCPU = float64(after-before) / float64(window)
			fmt.Printf("%s: with nothing changing, the directory server used %.0f%% of a core over %s (the feed alone); PagerTree requests meanwhile: %d\n",
				d.name, 100*res.idleCPU, window, rec.len()-reqs)
		}
	}
	for _, f := range res.fallbacks {
		fmt.Printf("%s: a watch cycle fell back to a full sync: %s\n", d.name, f)
	}
	return res, nil
}

// ldapsearchBaseline times ldapsearch running the searches a sync's
// source read makes, one after the other, as the source logs them at
// debug level (one `ptsync plan` against an empty emulator): what the
// server itself takes to answer them.
func ldapsearchBaseline(o options, d *directory, dir string) error {
	emu := httptest.NewServer(pagertreetest.New(pagertreetest.Options{}))
	defer emu.Close()
	cfg := filepath.Join(dir, "debug.yaml")
	if err := os.WriteFile(cfg, []byte(config(o, d, emu.URL, 100000, "", 0, "debug")), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(o.ptsync, "plan", "--config", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && cmd.ProcessState.ExitCode() != 2 { // 2: changes to make
		return fmt.Errorf("ptsync plan at debug level: %w\n%s", err, lastLines([]byte(stderr.String()), 10))
	}
	var fetch time.Duration
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	sc.Buffer(nil, 1<<20)
	var searches []string
	for sc.Scan() {
		var line struct {
			Msg        string  `json:"msg"`
			LDAPSearch string  `json:"ldapsearch"`
			Duration   float64 `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.LDAPSearch != "" {
			searches = append(searches, "exec "+strings.Replace(line.LDAPSearch, "-w '***'", "-w '"+d.password+"'", 1)+" >/dev/null")
		}
		if line.Msg == "fetched source" {
			fetch = time.Duration(line.Duration * float64(time.Second))
		}
	}
	if len(searches) == 0 {
		return errors.New("ptsync plan logged no ldapsearch command line")
	}
	start := time.Now()
	for _, s := range searches {
		cmd := exec.Command("sh", "-c", s)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	fmt.Printf("%s: a source read (ptsync plan, debug level) took %s; ldapsearch, its %d searches one after the other, %s\n",
		d.name, secs(fetch), len(searches), secs(time.Since(start)))
	return nil
}

// plan is the sequence of changes: pairs of a user added to a group and
// removed from it again, each pair a different group and a user in no
// group before.
func plan(o options, users int) []change {
	pop := population(o, users)
	member := func(g, u int) bool {
		for j := range pop.MembersPerGroup {
			if pop.GroupMember(g, j) == u {
				return true
			}
		}
		return false
	}
	var out []change
	for i := 0; len(out) < o.changes; i++ {
		g := (i * 37) % o.groups
		u := (o.groups*o.members + i*101) % users
		for member(g, u) {
			u = (u + 1) % users
		}
		out = append(out, change{group: g, user: u, add: true})
		if len(out) < o.changes {
			out = append(out, change{group: g, user: u, add: false})
		}
	}
	return out
}

// config is the ptsync config: the daemon's with watch (rps as given, a
// schedule that does not fire during the run, state.dir as a deployment
// has it), or the one that brings the account in step.
func config(o options, d *directory, url string, rps float64, metricsAddr string, debounce time.Duration, level string) string {
	daemon := metricsAddr != ""
	var b strings.Builder
	fmt.Fprintf(&b, `schedule: "@every 24h"
pagertree:
  url: %s
  username: %s
  password: %s
  requests_per_second: %g
`, url, pagertreetest.DefaultUsername, pagertreetest.DefaultPassword, rps)
	if !daemon {
		b.WriteString("  concurrency: 8\n")
	}
	fmt.Fprintf(&b, `sources:
  - name: corp
    type: ldap
    ldap:
%steams:
  - {source: corp, match: "group*"}
users:
  scope: %s
safety:
  max_source_drop_percent: 0
log:
  level: %s
`, d.source, o.scope, level)
	if daemon {
		fmt.Fprintf(&b, `metrics:
  listen: %s
state:
  dir: state
watch:
  enabled: true
  debounce: %s
`, metricsAddr, debounce)
	}
	return b.String()
}

// waitEstablished waits for the daemon's first full sync to succeed, its
// feed to be established, and then for quiet: no sync run and no request
// for two debounces and a few seconds (the fresh feed's own sync included).
func waitEstablished(debounce time.Duration, m *daemonMetrics, rec *recorder, p *process, logPath string) error {
	deadline := time.Now().Add(20 * time.Minute)
	quiet := 2*debounce + 5*time.Second
	var lastRuns float64 = -1
	lastReqs := -1
	since := time.Now()
	for {
		select {
		case <-p.done:
			return fmt.Errorf("ptsync run exited: %v\n%s", p.err, tail(logPath, 20))
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon is not ready after 20 minutes:\n%s", tail(logPath, 20))
		}
		s, err := m.scrape()
		if err != nil {
			continue // not listening yet
		}
		runs := s.sum("ptsync_sync_runs_total{")
		if s.sum(`ptsync_sync_runs_total{result="failure"}`) > 0 {
			return fmt.Errorf("a sync run failed:\n%s", tail(logPath, 20))
		}
		if runs != lastRuns || rec.len() != lastReqs {
			lastRuns, lastReqs, since = runs, rec.len(), time.Now()
			continue
		}
		if s.sum(`ptsync_sync_runs_total{result="success"}`) >= 1 && s.sum(`ptsync_watch_connected{source="corp"}`) == 1 &&
			time.Since(since) >= quiet {
			return nil
		}
	}
}

// process is the running daemon: done is closed when it has exited, with err.
type process struct {
	done chan struct{}
	err  error
}

// daemonMetrics scrapes the daemon's /metrics.
type daemonMetrics struct{ url string }

type series map[string]float64

func (s series) sum(prefix string) float64 {
	var v float64
	for k, x := range s {
		if strings.HasPrefix(k, prefix) {
			v += x
		}
	}
	return v
}

func (m *daemonMetrics) scrape() (series, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(m.url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", m.url, resp.Status)
	}
	s := series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			s[line[:i]] = v
		}
	}
	return s, sc.Err()
}

func (m *daemonMetrics) propagation() (sum, count float64, err error) {
	s, err := m.scrape()
	if err != nil {
		return 0, 0, err
	}
	return s["ptsync_propagation_seconds_sum"], s["ptsync_propagation_seconds_count"], nil
}

// recorder wraps the emulator's handler and records every request: its
// route, when it was answered, and the member list of each team PUT.
type recorder struct {
	h    http.Handler
	mu   gosync.Mutex
	reqs []request
}

type request struct {
	at      time.Time
	route   string // "PUT /team/:id"
	id      string
	members []string
	status  int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	route, id := routeOf(req.Method, req.URL.Path)
	var members []string
	if route == "PUT /team/:id" {
		body, err := io.ReadAll(req.Body)
		if err == nil {
			var put struct {
				MemberUserIDs *[]string `json:"member_user_ids"`
			}
			if json.Unmarshal(body, &put) == nil && put.MemberUserIDs != nil {
				members = *put.MemberUserIDs
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.h.ServeHTTP(sw, req)
	r.mu.Lock()
	r.reqs = append(r.reqs, request{at: time.Now(), route: route, id: id, members: members, status: sw.status})
	r.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func routeOf(method, path string) (route, id string) {
	for _, coll := range []string{"/user", "/team"} {
		if rest, ok := strings.CutPrefix(path, coll+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
			return method + " " + coll + "/:id", rest
		}
	}
	return method + " " + path, ""
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// routes counts the requests [from, to) by route (and status, when not 2xx).
func (r *recorder) routes(from, to int) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, q := range r.reqs[from:to] {
		k := q.route
		if q.status >= 300 {
			k += fmt.Sprintf(" (%d)", q.status)
		}
		out[k]++
	}
	return out
}

// waitTeamPut waits for a PUT of team whose members hold user (add) or do
// not (remove), from request index from on, and returns when it was
// answered.
func (r *recorder) waitTeamPut(from int, team string, userID func() string, add bool, timeout time.Duration, exited <-chan struct{}) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		user := userID()
		r.mu.Lock()
		for _, q := range r.reqs[from:] {
			if q.route == "PUT /team/:id" && q.id == team && q.status < 300 && q.members != nil && user != "" && slices.Contains(q.members, user) == add {
				r.mu.Unlock()
				return q.at, true
			}
		}
		r.mu.Unlock()
		select {
		case <-exited:
			return time.Time{}, false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Time{}, false
}

// cycles is what ptsync's log says of the sync runs after an offset.
type cycles struct {
	started, scoped int
	cycleStart      time.Time     // the first watch cycle's start
	fetch           time.Duration // its source read
	refreshed       bool          // which read only the changed entries
	fallbacks       []string
}

func readCycles(path string, offset int64) cycles {
	var c cycles
	f, err := os.Open(path)
	if err != nil {
		return c
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return c
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	fetched := false
	for sc.Scan() {
		var l struct {
			TS       string  `json:"ts"`
			Msg      string  `json:"msg"`
			Duration float64 `json:"duration"`
			Error    string  `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "watch: syncing directory changes":
			if c.cycleStart.IsZero() {
				c.cycleStart, _ = time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
			}
		case "sync run started":
			c.started++
		case "scoped sync run started":
			c.started++
			c.scoped++
		case "watch: a full sync instead of a scoped one":
			c.started-- // the full one that follows is counted
			c.scoped--
			c.fallbacks = append(c.fallbacks, l.Error)
		case "fetched source", "refreshed source":
			if !fetched && !c.cycleStart.IsZero() {
				c.fetch, fetched = time.Duration(l.Duration*float64(time.Second)), true
				c.refreshed = l.Msg == "refreshed source"
			}
		}
	}
	return c
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	return lastLines(data, n)
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// benchTB lets this program use the Samba harness, whose Start takes a
// testing.TB: a failure panics with tbFailure, which startSamba recovers.
// Only the methods the harness calls are implemented.
type benchTB struct {
	testing.TB
	cleanups []func()
}

type tbFailure struct{ msg string }

func (t *benchTB) Helper()                           {}
func (t *benchTB) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *benchTB) Fatalf(format string, args ...any) { panic(tbFailure{fmt.Sprintf(format, args...)}) }
func (t *benchTB) Fatal(args ...any)                 { panic(tbFailure{fmt.Sprint(args...)}) }
func (t *benchTB) Skipf(format string, args ...any) {
	panic(tbFailure{"cannot run: " + fmt.Sprintf(format, args...)})
}
func (t *benchTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "watchbench: "+format+"\n", args...)
}
func (t *benchTB) Logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func (t *benchTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

func startSamba() (dc *samba.DC, tb *benchTB, err error) {
	tb = &benchTB{}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(tbFailure)
			if !ok {
				panic(r)
			}
			tb.cleanup()
			dc, err = nil, errors.New(f.msg)
		}
	}()
	return samba.Start(tb), tb, nil
}
