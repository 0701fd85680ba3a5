package main

import (
	"context"
	"fmt"

	"github.com/ptsync/ptsync/sync"
)

// runSync runs one cycle: plan, then apply. With --dry-run it applies
// nothing and exits as plan does (0 unless it failed).
func runSync(ctx context.Context, e env) int {
	fs := newFlags("sync", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	dryRun := fs.Bool("dry-run", false, "plan and log what would be done; write nothing")
	allowDestructive := fs.Bool("allow-destructive", false, "lift the safety limits for this run")
	metricsFile := metricsFileFlag(fs)
	accept := acceptSourceDropFlag(fs)
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "sync", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	run, code, ok := loadOneShot(e, "sync", *path, true)
	if !ok {
		return code
	}
	defer run.close()
	ctx, cancel := withCycleTimeout(ctx, run.cfg)
	defer cancel()
	rep, err := run.engine.RunOnce(ctx, sync.RunOptions{DryRun: *dryRun, AllowDestructive: *allowDestructive, RunID: run.runID,
		AcceptSourceDrop: *accept, Command: run.command})
	if !writeMetricsFile(e, "sync", run, *metricsFile) {
		return exitError
	}
	if err != nil {
		return fail(e, "sync", runError(ctx, err))
	}
	code = printRun(e, "sync", rep)
	if n := rep.Result.Counts.Cancelled; n > 0 {
		<-ctx.Done() // past its deadline (see sync's Apply) or ended: its cause is set now
		fail(e, "sync", fmt.Errorf("run cancelled (%v): %d changes not applied; the next run plans them again", context.Cause(ctx), n))
	}
	return code
}

// printRun prints a run's plan and result and returns its exit code.
func printRun(e env, name string, rep sync.Report) int {
	if err := sync.RenderText(e.stdout, rep.Plan); err != nil {
		return fail(e, name, err)
	}
	fmt.Fprintln(e.stdout)
	if err := sync.RenderResult(e.stdout, rep.Result); err != nil {
		return fail(e, name, err)
	}
	if rep.StateError != "" {
		// The run did its work, but what it should remember is lost.
		return fail(e, name, fmt.Errorf("state.dir: %s", rep.StateError))
	}
	if rep.DryRun {
		return exitOK
	}
	return sync.ExitCode(rep, nil)
}
