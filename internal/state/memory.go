package state

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SourceCount is what one source returned.
type SourceCount struct {
	Users  int       `json:"users"`
	Groups int       `json:"groups"`
	At     time.Time `json:"at"`
}

// LastGood returns the source counts of the last healthy runs, by source.
func (db *DB) LastGood() (map[string]SourceCount, error) {
	out, err := readBucket[SourceCount](db, bucketLastGood)
	if err != nil {
		return nil, fmt.Errorf("state: last good counts: %w", err)
	}
	return out, nil
}

// readBucket decodes every value of bucket, by key.
func readBucket[T any](db *DB, bucket []byte) (map[string]T, error) {
	out := map[string]T{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			var value T
			if err := getJSON(v, k, &value); err != nil {
				return err
			}
			out[string(k)] = value
			return nil
		})
	})
	return out, err
}

// SetLastGood stores counts, merging: sources not in counts keep theirs. A
// zero At is set to the clock's now.
func (db *DB) SetLastGood(counts map[string]SourceCount) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLastGood)
		for name, c := range counts {
			if name == "" {
				return errors.New("empty source name")
			}
			if c.At.IsZero() {
				c.At = db.opts.Now()
			}
			if err := putJSON(b, []byte(name), c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: set last good counts: %w", err)
	}
	return nil
}

// normEmail is the key of a missing user: trimmed and lower-cased.
func normEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// UpdateMissing records the clock's now as the first-missing time of each
// email in missing not yet recorded, forgets every recorded email not in
// missing (it came back), and returns the map after the update. Emails are
// keyed trimmed and lower-cased; empty ones are ignored.
func (db *DB) UpdateMissing(missing []string) (map[string]time.Time, error) {
	want := make(map[string]bool, len(missing))
	for _, e := range missing {
		if e = normEmail(e); e != "" {
			want[e] = true
		}
	}
	now := db.opts.Now().Round(0) // no monotonic reading: the same value a reload gives
	out := make(map[string]time.Time, len(want))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMissing)
		var gone [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if !want[string(k)] {
				gone = append(gone, k)
				return nil
			}
			var t time.Time
			if err := getJSON(v, k, &t); err != nil {
				return err
			}
			out[string(k)] = t
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for e := range want {
			if _, ok := out[e]; ok {
				continue
			}
			if err := putJSON(b, []byte(e), now); err != nil {
				return err
			}
			out[e] = now
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: update missing users: %w", err)
	}
	return out, nil
}

// Missing returns the recorded first-missing times by lower-cased email.
func (db *DB) Missing() (map[string]time.Time, error) {
	out, err := readBucket[time.Time](db, bucketMissing)
	if err != nil {
		return nil, fmt.Errorf("state: missing users: %w", err)
	}
	return out, nil
}

// OwnedTeams returns the ids of the PagerTree teams ptsync owns, and
// whether OwnTeams has ever been called (before that, an empty set means
// "not known yet" rather than "owns none").
func (db *DB) OwnedTeams() (ids map[string]bool, initialized bool, err error) {
	ids = map[string]bool{}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		initialized = tx.Bucket(bucketMeta).Get(keyTeamsInit) != nil
		return tx.Bucket(bucketTeams).ForEach(func(k, _ []byte) error {
			ids[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return nil, false, fmt.Errorf("state: owned teams: %w", err)
	}
	return ids, initialized, nil
}

// OwnTeams adds ids to the owned teams (created or adopted) and marks the
// set initialized, even when ids is empty.
func (db *DB) OwnTeams(ids ...string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTeams)
		for _, id := range ids {
			if id == "" {
				return errors.New("empty team id")
			}
			if err := putJSON(b, []byte(id), true); err != nil {
				return err
			}
		}
		return putJSON(tx.Bucket(bucketMeta), keyTeamsInit, true)
	})
	if err != nil {
		return fmt.Errorf("state: own teams: %w", err)
	}
	return nil
}

// ForgetTeams removes ids from the owned teams (deleted, or handed back);
// unknown ids are ignored. It does not change initialized.
func (db *DB) ForgetTeams(ids ...string) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTeams)
		for _, id := range ids {
			if id == "" {
				continue
			}
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: forget teams: %w", err)
	}
	return nil
}

// FeedCookies returns the cookie each source's change feed last synced up
// to (watch mode), by source name.
func (db *DB) FeedCookies() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFeeds).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("state: read feed cookies: %w", err)
	}
	return out, nil
}

// SetFeedCookie records that source's feed has been synced up to cookie;
// a nil cookie forgets it (the next feed starts from now).
func (db *DB) SetFeedCookie(source string, cookie []byte) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFeeds)
		if cookie == nil {
			return b.Delete([]byte(source))
		}
		return b.Put([]byte(source), cookie)
	})
	if err != nil {
		return fmt.Errorf("state: record the feed cookie of %s: %w", source, err)
	}
	return nil
}
