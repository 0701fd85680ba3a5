package sync

import (
	"context"
	"errors"
	gosync "sync"

	"go.uber.org/zap"

	"github.com/ptsync/ptsync/sources"
)

// sourceReader reads one source for a run; refreshed says it read only
// what changed (sources.Refresher).
type sourceReader func(ctx context.Context, src sources.Source) (snap *sources.Snapshot, refreshed bool, err error)

// fetchWhole reads src whole.
func fetchWhole(ctx context.Context, src sources.Source) (*sources.Snapshot, bool, error) {
	snap, err := src.Fetch(ctx)
	return snap, false, err
}

// memos are what a run that leaves a baseline keeps of the sources that
// can be refreshed (sources.Refresher), by source name: the next scoped
// sync reads only what changed in them since.
type memos struct {
	mu gosync.Mutex
	by map[string]sources.Memo
}

// fetch is a sourceReader that reads src whole and keeps its memo.
func (m *memos) fetch(ctx context.Context, src sources.Source) (*sources.Snapshot, bool, error) {
	r, ok := src.(sources.Refresher)
	if !ok {
		return fetchWhole(ctx, src)
	}
	snap, memo, err := r.FetchMemo(ctx)
	m.keep(src.Name(), memo, err)
	return snap, false, err
}

// refresh is a sourceReader that reads only the objects changes name of
// each source that has a memo in last, and the others whole, keeping the
// new memos. A source that cannot be refreshed so is read whole.
func (m *memos) refresh(last map[string]sources.Memo, changes map[string][]sources.Change, log *zap.Logger) sourceReader {
	return func(ctx context.Context, src sources.Source) (*sources.Snapshot, bool, error) {
		r, ok := src.(sources.Refresher)
		memo, kept := last[src.Name()]
		if !ok || !kept {
			return m.fetch(ctx, src)
		}
		snap, memo, err := r.Refresh(ctx, memo, changes[src.Name()])
		if errors.Is(err, sources.ErrCannotRefresh) {
			log.Info("reading the source whole", zap.String("source", src.Name()), zap.Error(err))
			return m.fetch(ctx, src)
		}
		m.keep(src.Name(), memo, err)
		return snap, err == nil, err
	}
}

func (m *memos) keep(source string, memo sources.Memo, err error) {
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.by == nil {
		m.by = map[string]sources.Memo{}
	}
	m.by[source] = memo
}

// done is what was kept, once every source was read; nil for no memos.
func (m *memos) done() map[string]sources.Memo {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.by
}
