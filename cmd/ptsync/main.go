// Command ptsync keeps a PagerTree account in step with a company
// directory. main only wires packages together; see SPEC.md for commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"

	"github.com/ptsync/ptsync/pagertree"
)

// Exit codes, the same for every command.
const (
	exitOK       = 0
	exitError    = 1
	exitChanges  = 2 // plan --detailed-exitcode found changes
	exitWithheld = 3 // destructive changes withheld by the safety limits
)

// env is what a command gets: its arguments and where to write.
type env struct {
	args   []string
	stdout io.Writer
	stderr io.Writer
}

// command is one subcommand. It returns the process exit code; errors are
// printed by the command itself as one line on stderr.
type command struct {
	summary string
	run     func(ctx context.Context, e env) int
}

// commands is every subcommand of SPEC.md.
var commands = map[string]command{
	"plan":     {"print what a sync would change (changes nothing)", runPlan},
	"sync":     {"one cycle: plan, then apply", runSync},
	"apply":    {"apply a saved plan", runApply},
	"run":      {"the daemon: sync on a schedule, serve metrics and health, reload on SIGHUP", runRun},
	"validate": {"check the config (--connect: also log in everywhere)", runValidate},
	"explain":  {"why one user or team is (or is not) wanted", runExplain},
	"demo":     {"an embedded directory and PagerTree emulator, one full cycle", runDemo},
	"emulator": {"serve the PagerTree API emulator", runEmulator},
	"history":  {"the last runs, from the state database (state.dir)", runHistory},
	"report":   {"one run's report: its plan and what became of every change", runReport},
	"status":   {"serve the status page from the state directory (for installs without the daemon)", runStatus},
	"version":  {"print version, commit and Go version", runVersion},
}

func main() {
	// A sync briefly holds the directory twice (snapshots and the desired
	// state); collecting at 50% heap growth instead of Go's 100% keeps the
	// peak near 1.5x the live set for a little more GC work, which suits a
	// background daemon. GOGC and GOMEMLIMIT still override it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code. Tests call it
// directly with their own context and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "ptsync: unknown command %q (run 'ptsync help' for the list)\n", args[0])
		return exitError
	}
	return cmd.run(ctx, env{args: args[1:], stdout: stdout, stderr: stderr})
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ptsync COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
}

// newFlags returns a flag set that reports parse errors on e.stderr.
func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("ptsync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses e.args into fs, mapping -h to success and a bad flag to
// exitError. ok is false when the command should return code at once.
func parseFlags(fs *flag.FlagSet, e env) (code int, ok bool) {
	err := fs.Parse(e.args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, false
	case err != nil:
		return exitError, false
	}
	return exitOK, true
}

// fail prints one error line for command name and returns exitError.
func fail(e env, name string, err error) int {
	fmt.Fprintf(e.stderr, "ptsync %s: %v%s\n", name, err, hint(err))
	return exitError
}

// hint is what to do about err, where the error itself cannot say: "" or
// "; ..." to append to its line.
func hint(err error) string {
	var api *pagertree.APIError
	if errors.As(err, &api) && api.Service == "pagertree" && api.Status == http.StatusUnauthorized {
		return "; PagerTree refused the credentials: check pagertree.api_key (api: v4; the key may be revoked) or pagertree.username and password (api: v3)"
	}
	return ""
}
