package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ptsync/ptsync/sync"
)

// runApply applies a plan saved by plan --out, refusing it when PagerTree
// changed since it was made.
func runApply(ctx context.Context, e env) int {
	fs := newFlags("apply", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	metricsFile := metricsFileFlag(fs)
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
	run, code, ok := loadOneShot(e, "apply", *path, false)
	if !ok {
		return code
	}
	rep, err := run.engine.ApplyPlan(ctx, p, sync.RunOptions{RunID: run.runID})
	if !writeMetricsFile(e, "apply", run, *metricsFile) {
		return exitError
	}
	if err != nil {
		return fail(e, "apply", fmt.Errorf("%s: %w", planFile, err))
	}
	return printRun(e, "apply", rep)
}
