// Command ldapbench compares ptsync's LDAP fetch with ldapsearch on a
// local slapd holding a generated directory. It is run by bench/ldap.sh.
//
// The parent starts slapd (internal/testenv/slapd), loads the population,
// asks a child "ldapbench fetch" for the ldapsearch command lines the
// source logs for its searches, then times, alternately, the child
// fetching and those ldapsearch commands, each as its own process, and
// reports wall time and peak RSS (getrusage of each child).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/sources"
	ldapsource "github.com/ptsync/ptsync/sources/ldap"
)

// targetRatio is docs/benchmarks.md's target: ptsync's fetch, which runs
// the user and the group search at once, takes no longer than ldapsearch
// running them one after the other.
const targetRatio = 1.0

func main() { os.Exit(run()) }

func run() int {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "fetch" {
		err = fetchMain(os.Args[2:])
	} else {
		err = benchMain(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ldapbench:", err)
		return 1
	}
	return 0
}

// fetchResult is what the child prints.
type fetchResult struct {
	Users    int      `json:"users"`
	Groups   int      `json:"groups"`
	Members  int      `json:"members"`
	Seconds  float64  `json:"seconds"`
	Commands []string `json:"commands,omitempty"`
}

func sourceConfig(url string, pageSize int) *ldapsource.Config {
	cfg := ldapsource.DefaultConfig()
	cfg.URL = url
	cfg.BindDN, cfg.BindPassword = slapd.ReaderDN, slapd.ReaderPassword
	cfg.PageSize = pageSize
	cfg.Timeout = time.Minute
	cfg.Users.BaseDN, cfg.Groups.BaseDN = slapd.PeopleDN, slapd.GroupsDN
	return cfg
}

// fetchMain is the child: one Fetch, its counts and duration as JSON.
func fetchMain(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	url := fs.String("url", "", "slapd URL")
	pageSize := fs.Int("page", 1000, "page size")
	commands := fs.Bool("commands", false, "also print the ldapsearch command lines of each search")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the fetch to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the fetch to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *memProfile != "" {
		defer func() {
			if f, err := os.Create(*memProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log, logs := zap.NewNop(), (*observer.ObservedLogs)(nil)
	if *commands {
		var core zapcore.Core
		core, logs = observer.New(zapcore.DebugLevel)
		log = zap.New(core)
	}
	src, err := ldapsource.New("bench", sourceConfig(*url, *pageSize), sources.Options{Log: log})
	if err != nil {
		return err
	}
	start := time.Now()
	snap, err := src.Fetch(context.Background())
	if err != nil {
		return err
	}
	res := fetchResult{Users: len(snap.Users), Groups: len(snap.Groups), Seconds: time.Since(start).Seconds()}
	for _, g := range snap.Groups {
		res.Members += len(g.Members)
	}
	if logs != nil {
		for _, e := range logs.FilterMessage("ldap search").All() {
			res.Commands = append(res.Commands, e.ContextMap()["ldapsearch"].(string))
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// measurement is one child process run.
type measurement struct {
	wall   time.Duration
	cpu    time.Duration // user + system
	maxRSS int64         // KiB
}

func runChild(cmd *exec.Cmd) (measurement, error) {
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return measurement{}, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	m := measurement{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = ru.Maxrss
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return m, nil
}

func benchMain(args []string) error {
	fs := flag.NewFlagSet("ldapbench", flag.ContinueOnError)
	users := fs.Int("users", 50000, "users to load")
	groups := fs.Int("groups", 5000, "groups to load")
	members := fs.Int("members", 20, "members per group")
	runs := fs.Int("runs", 5, "timed runs of each side")
	pageSize := fs.Int("page", 1000, "page size for both ptsync and ldapsearch (-E pr=N/noprompt)")
	cpuProfile := fs.String("cpuprofile", "", "after the timed runs, profile one more fetch into this file")
	memProfile := fs.String("memprofile", "", "after the timed runs, write the allocations of one more fetch into this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "ldapbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	pop := slapd.Population{Users: *users, Groups: *groups, MembersPerGroup: *members}
	ldif := filepath.Join(dir, "population.ldif")
	if err := pop.WriteLDIFFile(ldif); err != nil {
		return err
	}
	loadStart := time.Now()
	srv, err := slapd.Launch(dir, slapd.Options{LDIFFile: ldif})
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("loaded %d users and %d groups (%d members each) with slapadd in %s\n",
		pop.Users, pop.Groups, pop.MembersPerGroup, time.Since(loadStart).Round(time.Millisecond))

	// The warm-up run also yields the ldapsearch equivalents of the
	// source's searches, so both sides ask for the same entries and attributes.
	out, err := exec.Command(self, "fetch", "-url", srv.URL, "-page", fmt.Sprint(*pageSize), "-commands").Output()
	if err != nil {
		return fmt.Errorf("warm-up fetch: %w", err)
	}
	var warm fetchResult
	if err := json.Unmarshal(out, &warm); err != nil {
		return fmt.Errorf("warm-up fetch printed %q: %w", out, err)
	}
	if warm.Users != pop.Users || warm.Groups != pop.Groups || warm.Members != pop.Groups*pop.MembersPerGroup {
		return fmt.Errorf("fetch returned %d users, %d groups, %d memberships; want %d, %d, %d",
			warm.Users, warm.Groups, warm.Members, pop.Users, pop.Groups, pop.Groups*pop.MembersPerGroup)
	}
	var searches []string
	for _, c := range warm.Commands {
		// exec: the shell becomes ldapsearch, so its rusage is ldapsearch's.
		searches = append(searches, "exec "+strings.Replace(c, "-w '***'", "-w '"+slapd.ReaderPassword+"'", 1)+" >/dev/null")
		fmt.Println("ldapsearch side:", c)
	}

	var fetchWall, searchWall, inProcess, fetchCPU, searchCPU []time.Duration
	var fetchRSS, searchRSS int64
	for range *runs {
		var res fetchResult
		cmd := exec.Command(self, "fetch", "-url", srv.URL, "-page", fmt.Sprint(*pageSize))
		var stdout strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
		m, err := runChild(cmd)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(stdout.String()), &res); err != nil {
			return err
		}
		fetchWall = append(fetchWall, m.wall)
		fetchCPU = append(fetchCPU, m.cpu)
		inProcess = append(inProcess, time.Duration(res.Seconds*float64(time.Second)))
		fetchRSS = max(fetchRSS, m.maxRSS)

		var total, cpu time.Duration
		for _, s := range searches {
			cmd := exec.Command("sh", "-c", s)
			cmd.Stderr = os.Stderr
			m, err := runChild(cmd)
			if err != nil {
				return err
			}
			total += m.wall
			cpu += m.cpu
			searchRSS = max(searchRSS, m.maxRSS)
		}
		searchWall = append(searchWall, total)
		searchCPU = append(searchCPU, cpu)
	}
	if *cpuProfile != "" || *memProfile != "" {
		cmd := exec.Command(self, "fetch", "-url", srv.URL, "-page", fmt.Sprint(*pageSize), "-cpuprofile", *cpuProfile, "-memprofile", *memProfile)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("profiled fetch: %w", err)
		}
	}
	f, s := median(fetchWall), median(searchWall)
	fmt.Printf("\n| side | median wall (%d runs) | median CPU (user+sys) | peak RSS |\n|---|---|---|---|\n", *runs)
	fmt.Printf("| ptsync fetch (one process; in-process fetch %s) | %s | %s | %.1f MiB |\n",
		median(inProcess).Round(time.Millisecond), f.Round(time.Millisecond), median(fetchCPU).Round(time.Millisecond), float64(fetchRSS)/1024)
	fmt.Printf("| ldapsearch -E pr=%d/noprompt (%d processes) | %s | %s | %.1f MiB |\n",
		*pageSize, len(searches), s.Round(time.Millisecond), median(searchCPU).Round(time.Millisecond), float64(searchRSS)/1024)
	fmt.Printf("\nratio ptsync / ldapsearch = %.2f (target <= %.1f)\n", f.Seconds()/s.Seconds(), targetRatio)
	if f.Seconds() > targetRatio*s.Seconds() {
		return fmt.Errorf("ptsync is slower than %.1fx ldapsearch", targetRatio)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
