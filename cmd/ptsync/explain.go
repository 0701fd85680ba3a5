package main

import (
	"context"

	"github.com/ptsync/ptsync/sync"
)

// runExplain says why one user (an email) or team is, or is not, wanted
// and what the plan does to it. It writes nothing to PagerTree.
func runExplain(ctx context.Context, e env) int {
	fs := newFlags("explain", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	accept := acceptSourceDropFlag(fs)
	query, code, ok := parseWithArg(fs, e, "EMAIL or TEAM")
	if !ok {
		return code
	}
	run, code, ok := loadOneShot(e, "explain", *path, true)
	if !ok {
		return code
	}
	defer run.close()
	prep, err := run.engine.Prepare(ctx, sync.RunOptions{RunID: run.runID, AcceptSourceDrop: *accept})
	if err != nil {
		return fail(e, "explain", err)
	}
	x := sync.ExplainWith(query, prep.Snapshots, prep.Desired, prep.Current, prep.Plan, prep.Policy, prep.Remembered)
	if err := x.Render(e.stdout); err != nil {
		return fail(e, "explain", err)
	}
	return exitOK
}
