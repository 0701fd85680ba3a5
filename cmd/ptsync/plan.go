package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ptsync/ptsync/sync"
)

// renderers are plan's --output formats.
var renderers = map[string]func(io.Writer, sync.Plan) error{
	"text":     sync.RenderText,
	"json":     sync.RenderJSON,
	"markdown": sync.RenderMarkdown,
}

// runPlan fetches the sources and PagerTree and prints what a sync would
// change. It writes nothing to PagerTree.
func runPlan(ctx context.Context, e env) int {
	fs := newFlags("plan", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	output := fs.String("output", "text", "output format: text, json or markdown")
	out := fs.String("out", "", "also save the plan as JSON to this file, for ptsync apply")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when the plan has changes (0 when none)")
	allowDestructive := fs.Bool("allow-destructive", false, "plan without the safety limits, as sync --allow-destructive would apply")
	metricsFile := metricsFileFlag(fs)
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(e, "plan", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	render, ok := renderers[*output]
	if !ok {
		return fail(e, "plan", fmt.Errorf("--output %q: use text, json or markdown", *output))
	}
	run, code, ok := loadOneShot(e, "plan", *path, true)
	if !ok {
		return code
	}
	prep, err := run.engine.Prepare(ctx, sync.RunOptions{AllowDestructive: *allowDestructive, RunID: run.runID})
	if !writeMetricsFile(e, "plan", run, *metricsFile) {
		return exitError
	}
	if err != nil {
		return fail(e, "plan", err)
	}
	if *out != "" {
		if err := savePlan(*out, prep.Plan); err != nil {
			return fail(e, "plan", err)
		}
	}
	if err := render(e.stdout, prep.Plan); err != nil {
		return fail(e, "plan", err)
	}
	if *detailed && !prep.Plan.InSync() {
		return exitChanges
	}
	return exitOK
}

// savePlan writes the plan as JSON to path, whole or not at all.
func savePlan(path string, p sync.Plan) error {
	var buf bytes.Buffer
	if err := sync.RenderJSON(&buf, p); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
