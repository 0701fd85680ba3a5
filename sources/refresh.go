package sources

import (
	"context"
	"errors"
	"fmt"
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

// CannotRefresh is the error of a Refresh that cannot be done, saying why.
func CannotRefresh(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCannotRefresh, fmt.Sprintf(format, args...))
}

// ChangedIDs splits changes into the ids of the users and of the groups
// they name. It fails with CannotRefresh for a change that names no object
// (no id, Partial, no known kind), and for more than max objects: past
// that, a whole read costs less than reading each.
func ChangedIDs(changes []Change, max int) (users, groups map[string]bool, err error) {
	users, groups = map[string]bool{}, map[string]bool{}
	for _, c := range changes {
		switch {
		case c.ID == "":
			return nil, nil, CannotRefresh("the change feed did not say which object changed")
		case c.Partial:
			return nil, nil, CannotRefresh("the change feed does not see every change (deletions, objects leaving the search)")
		case c.Kind == ChangeUser:
			users[c.ID] = true
		case c.Kind == ChangeGroup:
			groups[c.ID] = true
		default:
			return nil, nil, CannotRefresh("a change of unknown kind %q", c.Kind)
		}
	}
	if n := len(users) + len(groups); n > max {
		return nil, nil, CannotRefresh("%d objects changed, more than %d", n, max)
	}
	return users, groups, nil
}

// Patch is list after a refresh read again the objects whose ids changed
// holds, fresh being those it found: an object found again takes the old
// one's place, one not found is dropped, and one new to list goes last,
// where a directory lists a new object. list is left as it was.
func Patch[T any](list []T, id func(T) string, changed map[string]bool, fresh []T) []T {
	found := make(map[string]T, len(fresh))
	for _, f := range fresh {
		found[id(f)] = f
	}
	out := make([]T, 0, len(list)+len(fresh))
	placed := map[string]bool{}
	for _, o := range list {
		k := id(o)
		if !changed[k] {
			out = append(out, o)
		} else if f, ok := found[k]; ok && !placed[k] {
			out = append(out, f)
			placed[k] = true
		}
	}
	for _, f := range fresh {
		if k := id(f); !placed[k] {
			out = append(out, f)
			placed[k] = true
		}
	}
	return out
}

// SharesEmail reports whether a user of changed has an email another user
// of all has too, compared as Builder compares them. Which of the two a
// snapshot keeps depends on the order the directory lists them in, which a
// refresh does not know.
func SharesEmail[T any](all, changed []T, email func(T) string) bool {
	count := map[string]int{}
	for _, u := range all {
		count[emailKey(email(u))]++
	}
	for _, u := range changed {
		if k := emailKey(email(u)); k != "" && count[k] > 1 {
			return true
		}
	}
	return false
}
