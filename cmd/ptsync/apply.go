package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ptsync/ptsync/sync"
)

// runApply applies a plan saved by plan --out without trusting the file: it
// refuses a plan made for another PagerTree or with another configuration,
// and the engine refuses it when PagerTree changed since it was made or
// when it holds a change a fresh plan does not make.
func runApply(ctx context.Context, e env) int {
	fs := newFlags("apply", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	metricsFile := metricsFileFlag(fs)
	accept := acceptSourceDropFlag(fs)
	planFile, code, ok := parseWithArg(fs, e, "PLAN.json")
	if !ok {
		return code
	}
	f, err := os.Open(planFile)
	if err != nil {
		return fail(e, "apply", fmt.Errorf("%w (save one with ptsync plan --out)", err))
	}
	p, err := sync.ReadPlan(f)
	f.Close()
	if err != nil {
		return fail(e, "apply", fmt.Errorf("%s: %w", planFile, err))
	}
	// The sources too: the engine plans afresh to check every saved change.
	run, code, ok := loadOneShot(e, "apply", *path, true)
	if !ok {
		return code
	}
	defer run.close()
	here, err := planOrigin(run.cfg)
	if err != nil {
		return fail(e, "apply", err)
	}
	if err := sync.CheckOrigin(p.Origin, here); err != nil {
		return fail(e, "apply", fmt.Errorf("%s: %w", planFile, err))
	}
	ctx, cancel := withCycleTimeout(ctx, run.cfg)
	defer cancel()
	rep, err := run.engine.ApplyPlan(ctx, p, sync.RunOptions{RunID: run.runID, AcceptSourceDrop: *accept, Command: run.command})
	if !writeMetricsFile(e, "apply", run, *metricsFile) {
		return exitError
	}
	if err != nil {
		return fail(e, "apply", fmt.Errorf("%s: %w", planFile, runError(ctx, err)))
	}
	return printRun(e, "apply", rep)
}
