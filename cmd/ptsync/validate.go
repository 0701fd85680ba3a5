package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// runValidate checks a config file; with --connect it also logs in to
// PagerTree and binds to (or fetches from) every source, writing nothing.
func runValidate(ctx context.Context, e env) int {
	fs := newFlags("validate", e)
	path := fs.String("config", "ptsync.yaml", "configuration file")
	connect := fs.Bool("connect", false, "also log in to PagerTree and every source")
	if code, ok := parseFlags(fs, e); !ok {
		return code
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return printConfigError(e, err)
	}
	log, err := newLogger(cfg.Log, e.stderr)
	if err != nil {
		return fail(e, "validate", err)
	}
	// Building a source reads its files (a CA, say) but connects nowhere;
	// it catches what the schema cannot, such as a type this build lacks.
	var built []sources.Source
	for _, sc := range cfg.Sources {
		src, err := newSource(cfg, sc, log, nil)
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", *path, err)
			continue
		}
		built = append(built, src)
	}
	if len(built) < len(cfg.Sources) {
		return exitError
	}
	fmt.Fprintf(e.stdout, "%s: valid (%d sources, %d team rules)\n", *path, len(cfg.Sources), len(cfg.Teams))
	if !*connect {
		return exitOK
	}
	ok := true
	client, err := newPagerTreeClient(cfg.PagerTree, log, nil)
	if err == nil {
		err = client.Login(ctx)
	}
	ok = report(e, "pagertree "+cfg.PagerTree.URL, "logged in", err) && ok
	for i, src := range built {
		label := fmt.Sprintf("source %s (%s)", src.Name(), cfg.Sources[i].Type)
		msg, err := checkSource(ctx, src)
		ok = report(e, label, msg, err) && ok
		if w, watches := src.(sources.Watcher); watches && cfg.Watch.Enabled && err == nil {
			ok = report(e, label+" change feed", "established", checkFeed(ctx, w, cfg.Watch.Debounce)) && ok
		}
	}
	if !ok {
		return exitError
	}
	return exitOK
}

// checkSource binds to a source that can check itself, else fetches it.
func checkSource(ctx context.Context, src sources.Source) (string, error) {
	if c, ok := src.(sources.Checker); ok {
		return "connected", c.Check(ctx)
	}
	snap, err := src.Fetch(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("fetched %d users, %d groups", len(snap.Users), len(snap.Groups)), nil
}

// feedCheckTimeout bounds how long validate waits for a change feed.
const feedCheckTimeout = 30 * time.Second

// checkFeed starts a source's change feed (watch mode) and stops it once
// established: a feed the account may not read (the System Log, Deleted
// Objects' DirSync, a sync refresh over the size limit) fails here rather
// than in the daemon.
func checkFeed(ctx context.Context, w sources.Watcher, poll time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, feedCheckTimeout)
	defer cancel()
	events := make(chan sources.Event)
	done := make(chan error, 1)
	go func() { done <- w.Watch(ctx, sources.WatchOptions{Poll: poll}, events) }()
	select {
	case <-events:
		cancel()
		<-done
		return nil
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("not established within %s", feedCheckTimeout)
		}
		return err
	}
}

// report prints one line for a checked peer and says whether it passed.
func report(e env, label, okMsg string, err error) bool {
	if err != nil {
		fmt.Fprintf(e.stderr, "FAIL %s: %v%s\n", label, err, hint(err))
		return false
	}
	fmt.Fprintf(e.stdout, "ok   %s: %s\n", label, okMsg)
	return true
}

// printConfigError prints every configuration problem on its own line.
func printConfigError(e env, err error) int {
	var problems config.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Fprintln(e.stderr, p.Error())
		}
		return exitError
	}
	fmt.Fprintln(e.stderr, err)
	return exitError
}
