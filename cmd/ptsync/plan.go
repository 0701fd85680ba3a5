package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	accept := acceptSourceDropFlag(fs)
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
	defer run.close()
	origin, err := planOrigin(run.cfg) // local and cheap: before the network
	if err != nil {
		return fail(e, "plan", err)
	}
	ctx, cancel := withCycleTimeout(ctx, run.cfg)
	defer cancel()
	// A plan reads the state (the shrink check, pending deletes, ptsync's
	// teams) and records nothing: it is no run of the history.
	prep, err := run.engine.Prepare(ctx, sync.RunOptions{AllowDestructive: *allowDestructive, RunID: run.runID, AcceptSourceDrop: *accept})
	if !writeMetricsFile(e, "plan", run, *metricsFile) {
		return exitError
	}
	if err != nil {
		return fail(e, "plan", runError(ctx, err))
	}
	prep.Plan.Origin = origin
	prep.Plan.Origin.AllowDestructive = prep.Policy.AllowDestructive
	prep.Plan.Origin.AccountID = prep.Current.AccountID
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

// savePlan writes the plan as JSON to path, whole or not at all: to a
// temporary file beside it, synced, then renamed over path, so a crash or a
// full disk leaves the old file (or none), never half a plan. The file is
// 0600 whatever path's mode was: a plan lists every managed person.
func savePlan(path string, p sync.Plan) error {
	var buf bytes.Buffer
	if err := sync.RenderJSON(&buf, p); err != nil {
		return err
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data by a rename in path's directory.
func writeFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is; a directory that cannot
	// be synced (some file systems) has still been renamed into.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}
