package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Results of a run.
const (
	ResultOK            = "ok"
	ResultChangesFailed = "changes_failed"
	ResultWithheld      = "withheld"
	ResultError         = "error"
	ResultCancelled     = "cancelled"
)

// Counts are a run's changes by outcome.
type Counts struct {
	Applied   int `json:"applied"`
	Failed    int `json:"failed"`
	Withheld  int `json:"withheld"`
	Cancelled int `json:"cancelled"`
	DryRun    int `json:"dry_run"`
}

// Run is one run's history record; its full report is in Report(ID).
type Run struct {
	ID      string    `json:"id"`
	Command string    `json:"command"` // e.g. "ptsync sync --config /etc/ptsync.yaml"
	DryRun  bool      `json:"dry_run"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Result  string    `json:"result"` // ResultOK, ResultChangesFailed, ...
	Counts  Counts    `json:"counts"`
	Error   string    `json:"error,omitempty"`
	// Sources are the users and groups each source returned.
	Sources map[string]SourceCount `json:"sources,omitempty"`
}

// ErrUnknownRun is wrapped by Report's error for an id with no run record
// (never recorded, or pruned).
var ErrUnknownRun = errors.New("unknown run")

// tempPrefix starts the names of report files being written; it can never
// be the start of a valid run id.
const tempPrefix = ".tmp-"

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// validID accepts run ids that are safe as file names: letters, digits,
// '-' and '_', at most 128, not starting with '-' or '_'.
func validID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("state: invalid run id %q (want 1-128 letters, digits, '-' or '_')", id)
	}
	return nil
}

// testHook, when set, is called by RecordRun at these points: "temp-written"
// (the report's temp file is complete, not yet renamed), "before-commit"
// (inside the transaction; an error fails the RecordRun) and "committed"
// (before the pruned runs' reports are removed).
var testHook func(point, id string) error

func hook(point, id string) error {
	if testHook == nil {
		return nil
	}
	return testHook(point, id)
}

// RecordRun stores r and writes report (a JSON document, the run's full
// report) to dir/reports/<id>.json, then prunes the oldest runs and their
// reports beyond KeepReports. The report is written atomically (temp file,
// fsync, rename, fsync of the directory) before the run is committed in
// one transaction, so a run record always has its report; if the commit
// fails the report is removed again, and Open removes a report whose
// commit a crash prevented. An id already recorded is refused.
func (db *DB) RecordRun(r Run, report []byte) error {
	if err := validID(r.ID); err != nil {
		return err
	}
	if !json.Valid(report) {
		return fmt.Errorf("state: the report of run %s is not valid JSON", r.ID)
	}
	value, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("state: encode run %s: %w", r.ID, err)
	}
	db.recordMu.Lock()
	defer db.recordMu.Unlock()
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRunIDs).Get([]byte(r.ID)) != nil {
			return fmt.Errorf("state: run %s is already recorded", r.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	path := db.reportPath(r.ID)
	if err := writeFileAtomic(path, report, func() { _ = hook("temp-written", r.ID) }); err != nil {
		return fmt.Errorf("state: write the report of run %s: %w", r.ID, err)
	}
	var pruned []string
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := hook("before-commit", r.ID); err != nil {
			return err
		}
		ids := tx.Bucket(bucketRunIDs) // recordMu and the file lock keep r.ID new since the check
		runs := tx.Bucket(bucketRuns)
		seq, err := runs.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		if err := runs.Put(key, value); err != nil {
			return err
		}
		if err := ids.Put([]byte(r.ID), key); err != nil {
			return err
		}
		pruned, err = db.prune(tx)
		return err
	})
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("state: record run %s: %w", r.ID, err)
	}
	_ = hook("committed", r.ID)
	for _, id := range pruned {
		// A file left by a crash here is removed by the next Open.
		if err := os.Remove(db.reportPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("state: prune the report of run %s: %w", id, err)
		}
	}
	return nil
}

// prune deletes the oldest runs beyond KeepReports and returns their ids;
// the caller removes their report files after the commit.
func (db *DB) prune(tx *bolt.Tx) ([]string, error) {
	runs, ids := tx.Bucket(bucketRuns), tx.Bucket(bucketRunIDs)
	c := runs.Cursor()
	n := 0 // Stats().KeyN misses this transaction's writes
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	excess := n - db.opts.KeepReports
	var keys [][]byte
	var pruned []string
	for k, v := c.First(); k != nil && len(keys) < excess; k, v = c.Next() {
		var r Run
		if err := getJSON(v, k, &r); err != nil {
			return nil, err
		}
		keys = append(keys, k)
		pruned = append(pruned, r.ID)
	}
	for i, k := range keys {
		if err := runs.Delete(k); err != nil {
			return nil, err
		}
		if err := ids.Delete([]byte(pruned[i])); err != nil {
			return nil, err
		}
	}
	return pruned, nil
}

// Runs returns the newest n runs, newest first (n <= 0: all kept).
func (db *DB) Runs(n int) ([]Run, error) {
	var out []Run
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		for k, v := c.Last(); k != nil && (n <= 0 || len(out) < n); k, v = c.Prev() {
			var r Run
			if err := getJSON(v, k, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: runs: %w", err)
	}
	return out, nil
}

// Report returns the JSON report of run id. An invalid id is refused; an
// id with no run record (never recorded, or pruned) fails with an error
// wrapping ErrUnknownRun.
func (db *DB) Report(id string) ([]byte, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	unknown := fmt.Errorf("state: %w %s: no such run in %s (or pruned: only the newest %d are kept)",
		ErrUnknownRun, id, db.dir, db.opts.KeepReports)
	var known bool
	err := db.bolt.View(func(tx *bolt.Tx) error {
		known = tx.Bucket(bucketRunIDs).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: report %s: %w", id, err)
	}
	if !known {
		return nil, unknown
	}
	b, err := os.ReadFile(db.reportPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, unknown // pruned since the lookup
	}
	if err != nil {
		return nil, fmt.Errorf("state: report %s: %w", id, err)
	}
	return b, nil
}

func (db *DB) reportPath(id string) string {
	return filepath.Join(db.dir, reportsDir, id+".json")
}

// writeFileAtomic writes data to path so that path holds either its old
// content or all of data, even after a crash: a temp file in the same
// directory, fsync, rename, fsync of the directory. beforeRename is a test
// hook.
func writeFileAtomic(path string, data []byte, beforeRename func()) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	beforeRename()
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
