package sources

import (
	"context"
	"errors"
)

// Refresher is a source whose snapshot can be brought up to date by
// re-reading only the objects its change feed named, instead of the whole
// directory: what lets a watch-mode sync take well under a second on a
// directory whose whole read takes several.
type Refresher interface {
	Source
	// FetchMemo is Fetch, and also returns the memo Refresh patches the
	// snapshot from.
	FetchMemo(ctx context.Context) (*Snapshot, Memo, error)
	// Refresh returns the snapshot Fetch would return now, given the memo
	// of an earlier FetchMemo or Refresh and every change made to the
	// directory since, as the source's feed reported them; it reads only
	// the changed objects. Where it cannot (a change without an id, too
	// many changes, a setting whose answer depends on more than the
	// changed objects), it returns an error wrapping ErrCannotRefresh
	// before it writes anything anywhere, and the caller fetches whole.
	// The memo passed in is left as it was.
	Refresh(ctx context.Context, memo Memo, changes []Change) (*Snapshot, Memo, error)
}

// Memo is a source's own record of what it read, kept by the caller
// between syncs and opaque to it.
type Memo any

// ErrCannotRefresh is wrapped by Refresh's error when the changes call
// for a whole fetch.
var ErrCannotRefresh = errors.New("the changes cannot be read by object")
