package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/ptsync/ptsync/sources"
)

// Watch implements sources.Watcher by polling the file every opts.Poll: a
// file whose content changed is one change of unknown scope (a sync reads
// it whole anyway). The cookie is the content's SHA-256, so a restart
// notices an edit made while ptsync was down.
func (s *Source) Watch(ctx context.Context, opts sources.WatchOptions, events chan<- sources.Event) error {
	last, err := s.contentHash()
	if err != nil {
		return err
	}
	first := sources.Event{Cookie: []byte(last)}
	if opts.Cookie != nil && string(opts.Cookie) != last {
		first.Changes = []sources.Change{{}}
	}
	if !sources.Send(ctx, events, first) {
		return nil
	}
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now, err := s.contentHash()
		if err != nil {
			return err
		}
		if now == last {
			continue
		}
		last = now
		if !sources.Send(ctx, events, sources.Event{Changes: []sources.Change{{}}, Cookie: []byte(now)}) {
			return nil
		}
	}
}

func (s *Source) contentHash() (string, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return "", fmt.Errorf("read users file: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}
