package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sync"
)

// runHistory prints the last runs the state database recorded, newest
// first.
func runHistory(_ context.Context, e env) int {
	fs := newFlags("history", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	n := fs.Int("n", 20, "how many runs to show, newest first")
	output := fs.String("output", "text", "output format: text or json")
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	switch {
	case fs.NArg() > 0:
		return fail(e, "history", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case *n < 1:
		return fail(e, "history", fmt.Errorf("-n %d: show at least 1 run", *n))
	case *output != "text" && *output != "json":
		return fail(e, "history", fmt.Errorf("--output %q: use text or json", *output))
	}
	db, code, ok := openStateOf(e, "history", *path)
	if !ok {
		return code
	}
	defer db.Close()
	runs, err := db.Runs(*n)
	if err != nil {
		return fail(e, "history", err)
	}
	if *output == "json" {
		err = historyJSON(e, runs)
	} else {
		err = historyText(e, db.Dir(), runs)
	}
	if err != nil {
		return fail(e, "history", err)
	}
	return exitOK
}

// openStateOf loads the config at path and opens its state directory,
// which the command needs: without state.dir it fails, saying so.
func openStateOf(e env, name, path string) (*state.DB, int, bool) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, printConfigError(e, err), false
	}
	if cfg.State.Dir == "" {
		return nil, fail(e, name, fmt.Errorf("%s sets no state.dir, so no run is recorded: set state.dir to keep a run history", path)), false
	}
	db, err := openState(cfg)
	if err != nil {
		return nil, fail(e, name, err), false
	}
	return db, exitOK, true
}

// historyText writes the runs as a table.
func historyText(e env, dir string, runs []state.Run) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintf(e.stdout, "No runs recorded in %s yet.\n", dir)
		return err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN ID\tSTARTED\tDURATION\tRESULT\tAPPLIED\tFAILED\tWITHHELD\tCANCELLED\tCOMMAND")
	for _, r := range runs {
		result := r.Result
		if r.DryRun {
			result += " (dry run)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", sync.SafeText(r.ID), r.Started.UTC().Format(time.RFC3339),
			roundDuration(r.Ended.Sub(r.Started)), sync.SafeText(result), r.Counts.Applied, r.Counts.Failed, r.Counts.Withheld,
			r.Counts.Cancelled, sync.SafeText(r.Command))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := e.stdout.Write(buf.Bytes())
	return err
}

// roundDuration keeps a run's duration readable: 850ms, 12.3s, 4m2s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// historyRun is one run of history's JSON output.
type historyRun struct {
	RunID    string                 `json:"run_id"`
	Command  string                 `json:"command"`
	DryRun   bool                   `json:"dry_run"`
	Started  time.Time              `json:"started"`
	Ended    time.Time              `json:"ended"`
	Duration float64                `json:"duration_seconds"`
	Result   string                 `json:"result"`
	Counts   state.Counts           `json:"counts"`
	Error    string                 `json:"error,omitempty"`
	Sources  map[string]sourceCount `json:"sources"`
}

// sourceCount is what one source returned in a run.
type sourceCount struct {
	Users  int `json:"users"`
	Groups int `json:"groups"`
}

// historyJSON writes the runs as one object: {"runs": [...]}, newest first.
func historyJSON(e env, runs []state.Run) error {
	doc := struct {
		Runs []historyRun `json:"runs"`
	}{Runs: []historyRun{}}
	for _, r := range runs {
		h := historyRun{RunID: r.ID, Command: r.Command, DryRun: r.DryRun, Started: r.Started.UTC(), Ended: r.Ended.UTC(),
			Duration: r.Ended.Sub(r.Started).Seconds(), Result: r.Result, Counts: r.Counts, Error: r.Error, Sources: map[string]sourceCount{}}
		for name, c := range r.Sources {
			h.Sources[name] = sourceCount{Users: c.Users, Groups: c.Groups}
		}
		doc.Runs = append(doc.Runs, h)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// runReport prints one run's report: its plan and what became of every
// change.
func runReport(_ context.Context, e env) int {
	fs := newFlags("report", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	output := fs.String("output", "text", "output format: text, or json (the report as stored)")
	id, code, ok := parseWithArg(fs, e, "RUN_ID")
	if !ok {
		return code
	}
	if *output != "text" && *output != "json" {
		return fail(e, "report", fmt.Errorf("--output %q: use text or json", *output))
	}
	db, code, ok := openStateOf(e, "report", *path)
	if !ok {
		return code
	}
	defer db.Close()
	data, err := db.Report(id)
	if errors.Is(err, state.ErrUnknownRun) {
		return fail(e, "report", fmt.Errorf("%w; ptsync history lists the runs kept", err))
	}
	if err != nil {
		return fail(e, "report", err)
	}
	if *output == "json" {
		if _, err := e.stdout.Write(data); err != nil {
			return fail(e, "report", err)
		}
		return exitOK
	}
	rep, err := sync.ReadReport(bytes.NewReader(data))
	if err != nil {
		return fail(e, "report", fmt.Errorf("run %s: %w", strconv.Quote(id), err))
	}
	if err := sync.RenderReport(e.stdout, rep); err != nil {
		return fail(e, "report", err)
	}
	return exitOK
}
