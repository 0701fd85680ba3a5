// Command planbench times a whole `ptsync plan` — the LDAP fetch, the
// PagerTree listing and the planning — against `ldapsearch` alone running
// the same searches. It is run by bench/plan.sh.
//
// It starts slapd (internal/testenv/slapd) with a generated directory and
// the PagerTree emulator in this process, brings the account in step with
// one `ptsync sync` (so the listing is as long as the directory), asks
// `ptsync plan` at debug level for the ldapsearch command lines of its
// searches, then times, alternately, `ptsync plan` and those ldapsearch
// commands run one after the other, each as its own process.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ptsync/ptsync/bench/internal/proc"
	"github.com/ptsync/ptsync/internal/testenv/slapd"
	"github.com/ptsync/ptsync/pagertree/pagertreetest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "planbench:", err)
		os.Exit(1)
	}
}

func run() error {
	users := flag.Int("users", 20000, "users to load")
	groups := flag.Int("groups", 1000, "groups to load")
	members := flag.Int("members", 20, "members per group")
	runs := flag.Int("runs", 5, "timed runs of each side")
	ptsync := flag.String("ptsync", "", "the ptsync binary")
	target := flag.Float64("target", 1.1, "fail above this ratio")
	inStep := flag.Bool("in-step", true, "bring the account in step first (false: plan against an empty account)")
	flag.Parse()
	if *ptsync == "" {
		return errors.New("-ptsync is required")
	}
	dir, err := os.MkdirTemp("", "planbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	pop := slapd.Population{Users: *users, Groups: *groups, MembersPerGroup: *members}
	ldif := filepath.Join(dir, "population.ldif")
	if err := pop.WriteLDIFFile(ldif); err != nil {
		return err
	}
	srv, err := slapd.Launch(dir, slapd.Options{LDIFFile: ldif})
	if err != nil {
		return err
	}
	defer srv.Stop()
	emu := pagertreetest.NewServer(pagertreetest.Options{})
	defer emu.Close()

	if err := os.WriteFile(filepath.Join(dir, "reader.pass"), []byte(slapd.ReaderPassword), 0o600); err != nil {
		return err
	}
	quiet, info, debug := filepath.Join(dir, "quiet.yaml"), filepath.Join(dir, "info.yaml"), filepath.Join(dir, "debug.yaml")
	for path, level := range map[string]string{quiet: "warn", info: "info", debug: "debug"} {
		if err := os.WriteFile(path, []byte(config(srv.URL, emu.URL(), level)), 0o600); err != nil {
			return err
		}
	}
	start := time.Now()
	planArgs := []string{"plan", "--config", quiet}
	if *inStep {
		if out, err := exec.Command(*ptsync, "sync", "--allow-destructive", "--config", quiet).CombinedOutput(); err != nil {
			return fmt.Errorf("bringing the account in step: %w\n%s", err, lastLines(out, 5))
		}
		planArgs = append(planArgs, "--detailed-exitcode") // in step: exit 0, nothing to change
	}
	fmt.Printf("loaded %d users and %d groups of %d; PagerTree in step (%d users, %d teams) in %s\n",
		pop.Users, pop.Groups, pop.MembersPerGroup, len(emu.Users()), len(emu.Teams()), time.Since(start).Round(time.Second))

	searches, err := ldapsearches(*ptsync, debug)
	if err != nil {
		return err
	}
	var planWall, searchWall []time.Duration
	var planCPU, searchCPU cpuTimes
	for range *runs {
		cmd := exec.Command(*ptsync, planArgs...)
		cmd.Stderr = os.Stderr
		before, err := sampleCPU(srv.Pid())
		if err != nil {
			return err
		}
		t := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
		}
		planWall = append(planWall, time.Since(t))
		if err := planCPU.add(srv.Pid(), before, cmd.ProcessState); err != nil {
			return err
		}

		if before, err = sampleCPU(srv.Pid()); err != nil {
			return err
		}
		t = time.Now()
		for _, s := range searches {
			cmd := exec.Command("sh", "-c", s)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
			searchCPU.client += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		}
		searchWall = append(searchWall, time.Since(t))
		if err := searchCPU.add(srv.Pid(), before, nil); err != nil {
			return err
		}
	}
	if err := stages(*ptsync, info); err != nil {
		return err
	}
	p, s := median(planWall), median(searchWall)
	ratio := p.Seconds() / s.Seconds()
	fmt.Printf("\n| side | median wall (%d runs) |\n|---|---|\n", *runs)
	fmt.Printf("| ptsync plan (LDAP fetch + PagerTree listing of %d users, %d teams + plan) | %s |\n", len(emu.Users()), len(emu.Teams()), p.Round(time.Millisecond))
	fmt.Printf("| ldapsearch, the same %d searches one after the other | %s |\n", len(searches), s.Round(time.Millisecond))
	fmt.Printf("\nCPU time per run (all %d cores share it; the emulator runs in this process):\n\n", runtime.NumCPU())
	fmt.Printf("| side | client | slapd | emulator | total | total / cores |\n|---|---|---|---|---|---|\n")
	planCPU.print("ptsync plan", *runs)
	searchCPU.print("ldapsearch", *runs)
	fmt.Printf("\nratio ptsync plan / ldapsearch = %.2f (target <= %.2f)\n", ratio, *target)
	if ratio > *target {
		return fmt.Errorf("ptsync plan took %.2fx ldapsearch, over the target", ratio)
	}
	return nil
}

func config(ldapURL, pagertreeURL, level string) string {
	return fmt.Sprintf(`pagertree:
  url: %s
  username: %s
  password: %s
  requests_per_second: 100000
  concurrency: 8
sources:
  - name: corp
    type: ldap
    ldap:
      url: %s
      bind_dn: %s
      bind_password_file: reader.pass
      page_size: 1000
      users: {base_dn: "%s"}
      groups: {base_dn: "%s"}
teams:
  - {source: corp, match: "group*"}
users:
  scope: all
log:
  level: %s
`, pagertreeURL, pagertreetest.DefaultUsername, pagertreetest.DefaultPassword, ldapURL, slapd.ReaderDN, slapd.PeopleDN, slapd.GroupsDN, level)
}

// ldapsearches runs one plan at debug level and returns the ldapsearch
// command lines its searches log, with the password filled in, ready for sh.
func ldapsearches(ptsync, config string) ([]string, error) {
	cmd := exec.Command(ptsync, "plan", "--config", config)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ptsync plan at debug level: %w", err)
	}
	var searches []string
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			LDAPSearch string `json:"ldapsearch"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.LDAPSearch != "" {
			fmt.Println("ldapsearch side:", line.LDAPSearch)
			// exec: the shell becomes ldapsearch.
			searches = append(searches, "exec "+strings.Replace(line.LDAPSearch, "-w '***'", "-w '"+slapd.ReaderPassword+"'", 1)+" >/dev/null")
		}
	}
	if len(searches) == 0 {
		return nil, errors.New("ptsync plan logged no ldapsearch command line")
	}
	return searches, nil
}

// stages runs one more plan at info level and prints how long each stage
// took, as its log says: the fetch and the PagerTree read run at once.
func stages(ptsync, config string) error {
	cmd := exec.Command(ptsync, "plan", "--config", config)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ptsync plan at info level: %w", err)
	}
	for _, l := range strings.Split(stderr.String(), "\n") {
		var line struct {
			Msg      string  `json:"msg"`
			Duration float64 `json:"duration"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Duration > 0 {
			fmt.Printf("stage %-16s %s\n", line.Msg+":", time.Duration(line.Duration*float64(time.Second)).Round(time.Millisecond))
		}
	}
	return nil
}

// cpuTimes adds up, over the timed runs of one side, the CPU time of the
// client processes, of slapd and of this process (the emulator): on a
// machine with few cores their sum, not the critical path, can set the wall
// time.
type cpuTimes struct{ client, slapd, emulator time.Duration }

type cpuSample struct{ slapd, self time.Duration }

func sampleCPU(slapdPid int) (cpuSample, error) {
	slapd, err := proc.CPU(strconv.Itoa(slapdPid))
	if err != nil {
		return cpuSample{}, err
	}
	self, err := proc.CPU("self")
	return cpuSample{slapd: slapd, self: self}, err
}

// add accounts one run that started at before; client is the ptsync
// process (nil when the caller counted its clients itself).
func (c *cpuTimes) add(slapdPid int, before cpuSample, client *os.ProcessState) error {
	after, err := sampleCPU(slapdPid)
	if err != nil {
		return err
	}
	c.slapd += after.slapd - before.slapd
	c.emulator += after.self - before.self
	if client != nil {
		c.client += client.UserTime() + client.SystemTime()
	}
	return nil
}

func (c cpuTimes) print(side string, runs int) {
	per := func(d time.Duration) time.Duration { return (d / time.Duration(runs)).Round(time.Millisecond) }
	total := c.client + c.slapd + c.emulator
	fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", side, per(c.client), per(c.slapd), per(c.emulator), per(total),
		per(total/time.Duration(runtime.NumCPU())))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
