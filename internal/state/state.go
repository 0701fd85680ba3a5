// Package state is ptsync's memory between runs: an embedded bbolt
// database (dir/state.db) of run history, last good source counts,
// missing-since times and the ids of the teams ptsync owns, with each
// run's JSON report beside it in dir/reports/<id>.json.
//
// One process holds the state at a time: Open takes bbolt's exclusive
// file lock and a second ptsync on the same directory fails after
// Options.LockTimeout. Values are JSON.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the version of the database layout this build writes.
// A database with a newer version is refused; an older one is migrated.
const SchemaVersion = 2

// Defaults of Options.
const (
	DefaultLockTimeout = 5 * time.Second
	DefaultKeepReports = 50
)

// ErrInUse is wrapped by Open's error when another process holds the
// state directory.
var ErrInUse = errors.New("state directory is in use by another ptsync")

// dbFile and reportsDir are the names inside the state directory.
const (
	dbFile     = "state.db"
	reportsDir = "reports"
)

// Buckets and keys.
var (
	bucketMeta     = []byte("meta")      // keyVersion, keyTeamsInit
	bucketRuns     = []byte("runs")      // 8-byte big-endian sequence -> Run
	bucketRunIDs   = []byte("run_ids")   // run id -> its key in bucketRuns
	bucketLastGood = []byte("last_good") // source name -> SourceCount
	bucketMissing  = []byte("missing")   // lower-cased email -> time.Time
	bucketTeams    = []byte("teams")     // PagerTree team id -> true
	bucketFeeds    = []byte("feeds")     // source name -> its change feed's cookie (watch mode); since version 2

	keyVersion   = []byte("version")
	keyTeamsInit = []byte("teams_initialized")

	allBuckets = [][]byte{bucketMeta, bucketRuns, bucketRunIDs, bucketLastGood, bucketMissing, bucketTeams, bucketFeeds}
)

// migrations[v] upgrades a database of schema version v to v+1.
var migrations = map[int]func(*bolt.Tx) error{
	1: func(tx *bolt.Tx) error { // watch mode's feed cookies
		_, err := tx.CreateBucket(bucketFeeds)
		return err
	},
}

// Options tunes Open. The zero value is the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the state directory; default 5s.
	LockTimeout time.Duration
	// KeepReports is how many of the newest runs and their reports are
	// kept; default 50.
	KeepReports int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DB is an open state directory. Its methods are safe for concurrent use.
type DB struct {
	dir      string
	opts     Options
	bolt     *bolt.DB
	recordMu sync.Mutex // serializes RecordRun: its duplicate check, report and commit
}

// Open opens the state in dir, creating dir (0700), dir/reports and
// dir/state.db if needed. A second process on the same dir waits at most
// opts.LockTimeout for the lock and then fails with an error wrapping
// ErrInUse. A database whose schema version is newer than SchemaVersion is
// refused. Open also removes leftovers of an interrupted run: temporary
// report files and reports without a run record.
func Open(dir string, opts Options) (*DB, error) {
	if dir == "" {
		return nil, errors.New("state: no directory given")
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.KeepReports <= 0 {
		opts.KeepReports = DefaultKeepReports
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(dir, reportsDir), 0o700); err != nil {
		return nil, fmt.Errorf("state: create %s: %w", dir, err)
	}
	path := filepath.Join(dir, dbFile)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (its lock was not released within %s)", ErrInUse, dir, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	db := &DB{dir: dir, opts: opts, bolt: bdb}
	if err := bdb.Update(db.initSchema); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.removeStrayReports(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// initSchema creates a new database's buckets and version, refuses a
// newer or foreign one, migrates an older one, and prunes runs beyond
// KeepReports (their files go in removeStrayReports).
func (db *DB) initSchema(tx *bolt.Tx) error {
	path := filepath.Join(db.dir, dbFile)
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		foreign := false
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { foreign = true; return nil })
		if foreign {
			return fmt.Errorf("state: %s is not a ptsync state database (it has no schema version)", path)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("state: create %s: %w", path, err)
			}
		}
		if err := putJSON(tx.Bucket(bucketMeta), keyVersion, SchemaVersion); err != nil {
			return err
		}
		return nil
	}
	version, err := schemaVersion(meta, path)
	if err != nil {
		return err
	}
	for ; version < SchemaVersion; version++ {
		migrate := migrations[version]
		if migrate == nil {
			return fmt.Errorf("state: %s has schema version %d and this build has no migration from it", path, version)
		}
		if err := migrate(tx); err != nil {
			return fmt.Errorf("state: migrate %s from schema version %d: %w", path, version, err)
		}
		if err := putJSON(meta, keyVersion, version+1); err != nil {
			return err
		}
	}
	_, err = db.prune(tx)
	return err
}

// schemaVersion is the schema version meta records, refused when it is
// not one or newer than this build's.
func schemaVersion(meta *bolt.Bucket, path string) (int, error) {
	var version int
	if raw := meta.Get(keyVersion); raw == nil || json.Unmarshal(raw, &version) != nil || version < 1 {
		return 0, fmt.Errorf("state: %s has no valid schema version (%q); not a ptsync state database?", path, raw)
	}
	if version > SchemaVersion {
		return 0, fmt.Errorf("state: %s has schema version %d, newer than this build's %d: it was written by a newer ptsync; use that version (or move the state directory aside)",
			path, version, SchemaVersion)
	}
	return version, nil
}

// OpenReadOnly opens the existing state in dir to read it, as a status
// page does on every view: it takes bbolt's shared lock, so it waits only
// for a writer and holds up a writer only while it is open, and creates,
// migrates, cleans and writes nothing. A dir without a state database is
// an error wrapping fs.ErrNotExist; one that needs a migration is refused
// (a read-write Open migrates it).
func OpenReadOnly(dir string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: true})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (its lock was not released within %s)", ErrInUse, dir, opts.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("state: %s is not a ptsync state database (it has no schema version)", path)
		}
		version, err := schemaVersion(meta, path)
		if err == nil && version < SchemaVersion {
			err = fmt.Errorf("state: %s has schema version %d; a ptsync run migrates it to %d before it can be read", path, version, SchemaVersion)
		}
		return err
	})
	if err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return &DB{dir: dir, opts: opts, bolt: bdb}, nil
}

// removeStrayReports deletes temporary files and reports that have no run
// record (a crash between writing a report and committing its run, or
// between pruning a run and removing its file). Other files are left alone.
func (db *DB) removeStrayReports() error {
	dir := filepath.Join(db.dir, reportsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	known := map[string]bool{}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRunIDs).ForEach(func(k, _ []byte) error {
			known[string(k)] = true
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		id, isReport := strings.CutSuffix(name, ".json")
		stray := strings.HasPrefix(name, tempPrefix) ||
			(isReport && validID(id) == nil && !known[id])
		if stray && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("state: %w", err)
			}
		}
	}
	return nil
}

// Close releases the database and its lock.
func (db *DB) Close() error { return db.bolt.Close() }

// Dir is the state directory as given to Open.
func (db *DB) Dir() string { return db.dir }

// Path is the database file's path.
func (db *DB) Path() string { return filepath.Join(db.dir, dbFile) }

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: encode %s: %w", key, err)
	}
	return b.Put(key, raw)
}

func getJSON(raw []byte, key []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("state: decode %s: %w", key, err)
	}
	return nil
}
