package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The tests re-exec their own binary as a second process: with helperEnv
// set, TestMain runs that helper instead of the tests.
const (
	helperEnv    = "PTSYNC_STATE_TEST_HELPER"
	helperDirEnv = "PTSYNC_STATE_TEST_DIR"
	// helperKillEnv ("point:i") makes the crash helper SIGKILL itself at
	// testHook's point in run i.
	helperKillEnv = "PTSYNC_STATE_TEST_KILL"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "lock":
		helperLock(os.Getenv(helperDirEnv))
	case "crash":
		helperCrash(os.Getenv(helperDirEnv))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperLock holds the state open until its stdin closes.
func helperLock(dir string) {
	db, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := db.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

const crashKeep = 5

// crashReport is the report the crash helper writes for run i of pid.
func crashReport(id string) []byte {
	b, _ := json.Marshal(map[string]string{"id": id, "pad": strings.Repeat(id, 4096)})
	return b
}

// helperCrash records runs (and touches the other buckets) in a loop,
// printing "recorded <id>" after each, until it is killed.
func helperCrash(dir string) {
	if point, i, ok := strings.Cut(os.Getenv(helperKillEnv), ":"); ok {
		testHook = func(p, id string) error {
			if p == point && strings.HasSuffix(id, "-"+i) {
				self, _ := os.FindProcess(os.Getpid())
				_ = self.Kill() // SIGKILL
				select {}
			}
			return nil
		}
	}
	db, err := Open(dir, Options{KeepReports: crashKeep})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := range 100000 { // a bound in case the parent dies
		id := fmt.Sprintf("p%d-%d", os.Getpid(), i)
		now := time.Now()
		r := Run{ID: id, Command: "ptsync sync", Started: now, Ended: now, Result: ResultOK,
			Counts: Counts{Applied: i}, Sources: map[string]SourceCount{"corp": {Users: i, At: now}}}
		if err := db.RecordRun(r, crashReport(id)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := db.SetLastGood(r.Sources); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if _, err := db.UpdateMissing([]string{fmt.Sprintf("u%d@x.com", i%7)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("recorded", id)
	}
	os.Exit(0)
}

// helper starts this test binary as a helper process on dir.
func helper(t *testing.T, kind, dir string, env ...string) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+kind, helperDirEnv+"="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout), stdin
}

func open(t *testing.T, dir string, opts Options) *DB {
	t.Helper()
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func closeDB(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// reportFiles lists dir/reports.
func reportFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, reportsDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func runIDs(t *testing.T, db *DB, n int) []string {
	t.Helper()
	runs, err := db.Runs(n)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

func record(t *testing.T, db *DB, id string) {
	t.Helper()
	if err := db.RecordRun(Run{ID: id, Result: ResultOK}, []byte(`{"id":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
}

// rawVersion reads the schema version key of a closed state directory.
func rawVersion(t *testing.T, dir string) string {
	t.Helper()
	bdb, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var v string
	_ = bdb.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			v = string(b.Get(keyVersion))
		}
		return nil
	})
	return v
}

func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "state")
	db := open(t, dir, Options{})
	if db.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", db.Dir(), dir)
	}
	closeDB(t, db)
	for name, want := range map[string]os.FileMode{"": 0o700, reportsDir: 0o700, dbFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	if v := rawVersion(t, dir); v != "2" {
		t.Errorf("schema version %q, want 2", v)
	}
	// Reopening keeps it.
	closeDB(t, open(t, dir, Options{}))
	if v := rawVersion(t, dir); v != "2" {
		t.Errorf("schema version after reopen %q, want 2", v)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	closeDB(t, open(t, dir, Options{}))
	bdb, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte("3")) }); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "schema version 3, newer than this build's 2") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
	if v := rawVersion(t, dir); v != "3" {
		t.Errorf("refused database was changed: version %q", v)
	}
}

func TestForeignDatabaseRefused(t *testing.T) {
	dir := t.TempDir()
	bdb, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err }); err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a ptsync state database") {
		t.Fatalf("Open of a foreign bbolt file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, dbFile), []byte("not bbolt at all, but long enough to have a header"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open of a garbage file: no error")
	}
}

func TestRunsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123, time.UTC)
	want := []Run{
		{ID: "a1", Command: "ptsync sync --config /etc/ptsync.yaml", Started: t0, Ended: t0.Add(time.Second),
			Result: ResultOK, Counts: Counts{Applied: 3}, Sources: map[string]SourceCount{"corp": {Users: 10, Groups: 2, At: t0}}},
		{ID: "b2", Command: "ptsync plan", DryRun: true, Started: t0.Add(time.Minute), Ended: t0.Add(2 * time.Minute),
			Result: ResultOK, Counts: Counts{DryRun: 7}},
		{ID: "c3", Command: "ptsync run", Started: t0.Add(time.Hour), Ended: t0.Add(time.Hour),
			Result: ResultError, Error: "corp: connection refused", Counts: Counts{Failed: 1, Withheld: 2, Cancelled: 3}},
	}
	for _, r := range want {
		if err := db.RecordRun(r, []byte(`{"run":"`+r.ID+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	closeDB(t, db)

	db = open(t, dir, Options{})
	defer closeDB(t, db)
	got, err := db.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	newestFirst := slices.Clone(want)
	slices.Reverse(newestFirst)
	if !reflect.DeepEqual(got, newestFirst) {
		t.Errorf("Runs(0) =\n%+v\nwant\n%+v", got, newestFirst)
	}
	if ids := runIDs(t, db, 2); !slices.Equal(ids, []string{"c3", "b2"}) {
		t.Errorf("Runs(2) = %v", ids)
	}
	if ids := runIDs(t, db, 10); len(ids) != 3 {
		t.Errorf("Runs(10) = %v", ids)
	}
	for _, r := range want {
		b, err := db.Report(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != `{"run":"`+r.ID+`"}` {
			t.Errorf("Report(%s) = %s", r.ID, b)
		}
	}
}

func TestEmptyDatabase(t *testing.T) {
	db := open(t, t.TempDir(), Options{})
	defer closeDB(t, db)
	if runs, err := db.Runs(0); err != nil || len(runs) != 0 {
		t.Errorf("Runs = %v, %v", runs, err)
	}
	if m, err := db.LastGood(); err != nil || len(m) != 0 {
		t.Errorf("LastGood = %v, %v", m, err)
	}
	if m, err := db.Missing(); err != nil || len(m) != 0 {
		t.Errorf("Missing = %v, %v", m, err)
	}
	if ids, init, err := db.OwnedTeams(); err != nil || len(ids) != 0 || init {
		t.Errorf("OwnedTeams = %v, %v, %v", ids, init, err)
	}
}

func TestPruning(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{KeepReports: 3})
	for i := 1; i <= 5; i++ {
		record(t, db, fmt.Sprintf("r%d", i))
	}
	if ids := runIDs(t, db, 0); !slices.Equal(ids, []string{"r5", "r4", "r3"}) {
		t.Errorf("runs after pruning: %v", ids)
	}
	if files := reportFiles(t, dir); !slices.Equal(files, []string{"r3.json", "r4.json", "r5.json"}) {
		t.Errorf("report files after pruning: %v", files)
	}
	_, err := db.Report("r1")
	if !errors.Is(err, ErrUnknownRun) || !strings.Contains(err.Error(), "pruned") || !strings.Contains(err.Error(), "r1") {
		t.Errorf("Report of a pruned run: %v", err)
	}
	closeDB(t, db)

	// A lower KeepReports prunes at Open.
	db = open(t, dir, Options{KeepReports: 2})
	if ids := runIDs(t, db, 0); !slices.Equal(ids, []string{"r5", "r4"}) {
		t.Errorf("runs after reopening with KeepReports 2: %v", ids)
	}
	if files := reportFiles(t, dir); !slices.Equal(files, []string{"r4.json", "r5.json"}) {
		t.Errorf("report files after reopening with KeepReports 2: %v", files)
	}
	closeDB(t, db)

	// The default keeps 50.
	db = open(t, dir, Options{})
	defer closeDB(t, db)
	for i := 6; i <= 60; i++ {
		record(t, db, fmt.Sprintf("r%d", i))
	}
	if ids := runIDs(t, db, 0); len(ids) != 50 || ids[0] != "r60" || ids[49] != "r11" {
		t.Errorf("default keeps %d runs: %v", len(ids), ids)
	}
	if files := reportFiles(t, dir); len(files) != 50 {
		t.Errorf("default keeps %d report files", len(files))
	}
}

func TestRecordRunAtomicity(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	defer closeDB(t, db)
	nothing := func(when string) {
		t.Helper()
		if ids := runIDs(t, db, 0); len(ids) != 0 {
			t.Errorf("%s: runs %v recorded", when, ids)
		}
		if files := reportFiles(t, dir); len(files) != 0 && !slices.Equal(files, []string{"blocked.json"}) {
			t.Errorf("%s: report files %v left", when, files)
		}
	}

	if err := db.RecordRun(Run{ID: "bad"}, []byte(`{"truncated":`)); err == nil {
		t.Error("RecordRun with a report that is not JSON: no error")
	}
	nothing("invalid report")

	// The report cannot be written: no run.
	if err := os.Mkdir(filepath.Join(dir, reportsDir, "blocked.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRun(Run{ID: "blocked"}, []byte(`{}`)); err == nil {
		t.Error("RecordRun whose report cannot be written: no error")
	}
	nothing("report write failed")
	if err := os.Remove(filepath.Join(dir, reportsDir, "blocked.json")); err != nil {
		t.Fatal(err)
	}

	// The report is complete on disk before the run commits; a failed
	// commit takes the report back.
	report := []byte(`{"big":"` + strings.Repeat("x", 1<<20) + `"}`)
	testHook = func(point, id string) error {
		if point != "before-commit" {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, reportsDir, id+".json"))
		if err != nil || string(b) != string(report) {
			t.Errorf("before the commit of %s the report is not complete: %d bytes, %v", id, len(b), err)
		}
		if id == "fails" {
			return errors.New("injected commit failure")
		}
		return nil
	}
	t.Cleanup(func() { testHook = nil })
	if err := db.RecordRun(Run{ID: "fails"}, report); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Errorf("RecordRun with a failing commit: %v", err)
	}
	nothing("commit failed")
	if err := db.RecordRun(Run{ID: "works"}, report); err != nil {
		t.Fatal(err)
	}
	testHook = nil

	// An id is recorded once; the refusal leaves the first report alone.
	if err := db.RecordRun(Run{ID: "works"}, []byte(`{"second":true}`)); err == nil || !strings.Contains(err.Error(), "already recorded") {
		t.Errorf("RecordRun of a recorded id: %v", err)
	}
	if b, err := db.Report("works"); err != nil || string(b) != string(report) {
		t.Errorf("Report after a refused duplicate: %d bytes, %v", len(b), err)
	}
	if ids := runIDs(t, db, 0); !slices.Equal(ids, []string{"works"}) {
		t.Errorf("runs: %v", ids)
	}
	if files := reportFiles(t, dir); !slices.Equal(files, []string{"works.json"}) {
		t.Errorf("report files: %v", files)
	}
}

func TestOpenRemovesStrayReports(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	record(t, db, "kept")
	closeDB(t, db)
	reports := filepath.Join(dir, reportsDir)
	for name, content := range map[string]string{
		".tmp-123456":  `{"half":`,        // an interrupted write
		"orphan.json":  `{"id":"orphan"}`, // written, its run never committed
		"notes.txt":    "someone else's",  // not ours: left alone
		".hidden.json": `{"not":"an id"}`, // not a valid id: left alone
	} {
		if err := os.WriteFile(filepath.Join(reports, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db = open(t, dir, Options{})
	defer closeDB(t, db)
	if files := reportFiles(t, dir); !slices.Equal(files, []string{".hidden.json", "kept.json", "notes.txt"}) {
		t.Errorf("report files after Open: %v", files)
	}
	if _, err := db.Report("orphan"); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("Report of an orphan: %v", err)
	}
}

func TestReportIDValidation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	db := open(t, dir, Options{})
	defer closeDB(t, db)
	for _, id := range []string{"../x", "..", ".", "", "a/b", "/etc/passwd", `a\b`, ".tmp-1", "x.json",
		"-rf", "a b", "a\x00", strings.Repeat("a", 129), "ü"} {
		if _, err := db.Report(id); err == nil || !strings.Contains(err.Error(), "invalid run id") {
			t.Errorf("Report(%q): %v", id, err)
		}
		if err := db.RecordRun(Run{ID: id}, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "invalid run id") {
			t.Errorf("RecordRun(%q): %v", id, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a report escaped the reports directory: %v", err)
	}
	if files := reportFiles(t, dir); len(files) != 0 {
		t.Errorf("report files: %v", files)
	}
	// The engine's ids (16 hex digits) and the like are fine.
	for _, id := range []string{"0123456789abcdef", "Run_2025-03-01", strings.Repeat("a", 128)} {
		record(t, db, id)
	}
	if _, err := db.Report("0123456789abcdee"); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("Report of an unknown id: %v", err)
	}
}

func TestLastGood(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	db := open(t, dir, Options{Now: func() time.Time { return now }})
	t1 := now.Add(-time.Hour)
	if err := db.SetLastGood(map[string]SourceCount{"a": {Users: 1, Groups: 2, At: t1}, "b": {Users: 3, At: t1}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetLastGood(map[string]SourceCount{"b": {Users: 30, Groups: 4}, "c": {Users: 5, At: t1}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetLastGood(map[string]SourceCount{"": {}}); err == nil {
		t.Error("SetLastGood with an empty source name: no error")
	}
	closeDB(t, db)
	db = open(t, dir, Options{})
	defer closeDB(t, db)
	got, err := db.LastGood()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]SourceCount{"a": {Users: 1, Groups: 2, At: t1}, "b": {Users: 30, Groups: 4, At: now}, "c": {Users: 5, At: t1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LastGood = %v, want %v", got, want)
	}
}

func TestUpdateMissing(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	clock := func() time.Time { return now }
	db := open(t, dir, Options{Now: clock})
	check := func(got map[string]time.Time, err error, want map[string]time.Time) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	}

	got, err := db.UpdateMissing([]string{"Ann@X.com", " bob@x.com ", "", "ann@x.com"})
	check(got, err, map[string]time.Time{"ann@x.com": t0, "bob@x.com": t0})

	now = t0.Add(time.Hour) // ann stays missing, bob came back, cy went missing
	got, err = db.UpdateMissing([]string{"ann@x.com", "CY@x.com"})
	want := map[string]time.Time{"ann@x.com": t0, "cy@x.com": now}
	check(got, err, want)
	got, err = db.Missing()
	check(got, err, want)
	closeDB(t, db)

	db = open(t, dir, Options{Now: clock})
	got, err = db.Missing()
	check(got, err, want)
	now = t0.Add(2 * time.Hour) // bob missing again: his clock starts over
	got, err = db.UpdateMissing([]string{"ann@x.com", "cy@x.com", "bob@x.com"})
	check(got, err, map[string]time.Time{"ann@x.com": t0, "cy@x.com": t0.Add(time.Hour), "bob@x.com": now})
	got, err = db.UpdateMissing(nil) // everyone is back
	check(got, err, map[string]time.Time{})
	closeDB(t, db)

	db = open(t, dir, Options{})
	defer closeDB(t, db)
	got, err = db.Missing()
	check(got, err, map[string]time.Time{})
}

func TestOwnedTeams(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	check := func(want map[string]bool, wantInit bool) {
		t.Helper()
		ids, init, err := db.OwnedTeams()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ids, want) || init != wantInit {
			t.Errorf("OwnedTeams = %v, %v; want %v, %v", ids, init, want, wantInit)
		}
	}
	if err := db.ForgetTeams("t0"); err != nil {
		t.Fatal(err)
	}
	check(map[string]bool{}, false)
	if err := db.OwnTeams(); err != nil {
		t.Fatal(err)
	}
	check(map[string]bool{}, true)
	closeDB(t, db)

	db = open(t, dir, Options{})
	check(map[string]bool{}, true)
	if err := db.OwnTeams("t1", "t2", "t3"); err != nil {
		t.Fatal(err)
	}
	if err := db.OwnTeams("t2"); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetTeams("t1", "nope"); err != nil {
		t.Fatal(err)
	}
	if err := db.OwnTeams(""); err == nil {
		t.Error("OwnTeams with an empty id: no error")
	}
	closeDB(t, db)

	db = open(t, dir, Options{})
	defer closeDB(t, db)
	check(map[string]bool{"t2": true, "t3": true}, true)
}

func TestClosed(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	closeDB(t, db)
	if _, err := db.Runs(0); err == nil {
		t.Error("Runs after Close: no error")
	}
	if err := db.RecordRun(Run{ID: "late"}, []byte(`{}`)); err == nil {
		t.Error("RecordRun after Close: no error")
	}
	if files := reportFiles(t, dir); len(files) != 0 {
		t.Errorf("RecordRun after Close left %v", files)
	}
	if _, err := db.UpdateMissing([]string{"a@x.com"}); err == nil {
		t.Error("UpdateMissing after Close: no error")
	}
}

func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{KeepReports: 5})
	defer closeDB(t, db)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 10 {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := db.RecordRun(Run{ID: id}, []byte(`{}`)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 30 {
			runs, err := db.Runs(0)
			if err != nil {
				t.Error(err)
			}
			for _, r := range runs {
				if _, err := db.Report(r.ID); err != nil && !errors.Is(err, ErrUnknownRun) {
					t.Error(err)
				}
			}
			if _, err := db.UpdateMissing([]string{"a@x.com"}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if ids := runIDs(t, db, 0); len(ids) != 5 {
		t.Errorf("runs: %v", ids)
	}
	if files := reportFiles(t, dir); len(files) != 5 {
		t.Errorf("report files: %v", files)
	}
}

func TestSecondProcessLock(t *testing.T) {
	dir := t.TempDir()
	cmd, out, stdin := helper(t, "lock", dir)
	if !out.Scan() || out.Text() != "locked" {
		t.Fatalf("helper did not lock: %q %v", out.Text(), out.Err())
	}

	const timeout = 200 * time.Millisecond
	start := time.Now()
	db, err := Open(dir, Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		closeDB(t, db)
		t.Fatal("Open while another process holds the state: no error")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "state directory is in use by another ptsync") ||
		!strings.Contains(err.Error(), dir) {
		t.Errorf("Open while locked: %v", err)
	}
	if elapsed < timeout/2 || elapsed > 10*timeout {
		t.Errorf("Open gave up after %v, want about %v", elapsed, timeout)
	}

	// Once the other process is done, Open works.
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	closeDB(t, open(t, dir, Options{LockTimeout: timeout}))
}

// checkAfterCrash opens dir after a crash and checks that it holds only
// complete runs, each with its complete report, the newest at least
// lastN of pid (the last run the helper said it recorded), and no other
// report files.
func checkAfterCrash(t *testing.T, dir string, pid, lastN int) []Run {
	t.Helper()
	db := open(t, dir, Options{KeepReports: crashKeep})
	defer closeDB(t, db)
	runs, err := db.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) > crashKeep {
		t.Fatalf("%d runs", len(runs))
	}
	if lastN >= 0 {
		newest := ""
		newestN := -1
		if len(runs) > 0 {
			newest = runs[0].ID
			newestN, _ = strconv.Atoi(newest[strings.Index(newest, "-")+1:])
		}
		if !strings.HasPrefix(newest, fmt.Sprintf("p%d-", pid)) || newestN < lastN {
			t.Errorf("newest run %q, but p%d-%d was recorded", newest, pid, lastN)
		}
	}
	var want []string
	for _, r := range runs {
		if r.Result != ResultOK || r.Sources["corp"].Users != r.Counts.Applied {
			t.Errorf("incomplete run %+v", r)
		}
		b, err := db.Report(r.ID)
		if err != nil {
			t.Error(err)
		} else if string(b) != string(crashReport(r.ID)) {
			t.Errorf("report of %s is not the one written (%d bytes)", r.ID, len(b))
		}
		want = append(want, r.ID+".json")
	}
	slices.Sort(want)
	if files := reportFiles(t, dir); !slices.Equal(files, want) {
		t.Errorf("report files %v, want %v", files, want)
	}
	if _, err := db.LastGood(); err != nil {
		t.Error(err)
	}
	if _, err := db.Missing(); err != nil {
		t.Error(err)
	}
	return runs
}

// TestCrashSafety SIGKILLs a process recording runs wherever it happens
// to be, several times on one directory.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	for round, after := range []int{1, 4, 9, 16, 25} {
		cmd, out, _ := helper(t, "crash", dir)
		var last string
		for range after {
			if !out.Scan() {
				t.Fatalf("round %d: helper stopped: %v", round, out.Err())
			}
			last = strings.TrimPrefix(out.Text(), "recorded ")
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		lastN, _ := strconv.Atoi(last[strings.Index(last, "-")+1:])
		if runs := checkAfterCrash(t, dir, cmd.Process.Pid, lastN); len(runs) == 0 {
			t.Errorf("round %d: no runs", round)
		}
	}
}

// TestCrashPoints SIGKILLs a process recording runs at each step of
// RecordRun: with the report half done (a temp file), with the report
// written but its run not committed, and with the run committed but the
// pruned runs' reports not yet removed.
func TestCrashPoints(t *testing.T) {
	const killAt = crashKeep + 2 // pruning is under way
	for _, tc := range []struct {
		point     string
		committed bool   // run killAt survives
		stray     string // what the reports dir holds beyond the runs' reports before Open
	}{
		{"temp-written", false, tempPrefix},
		{"before-commit", false, fmt.Sprintf("-%d.json", killAt)},
		{"committed", true, fmt.Sprintf("-%d.json", killAt-crashKeep)},
	} {
		t.Run(tc.point, func(t *testing.T) {
			dir := t.TempDir()
			cmd, out, _ := helper(t, "crash", dir, fmt.Sprintf("%s=%s:%d", helperKillEnv, tc.point, killAt))
			lines := 0
			for out.Scan() {
				lines++
			}
			err := cmd.Wait()
			if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != -1 {
				t.Fatalf("helper was not killed: %v", err)
			}
			if lines != killAt {
				t.Fatalf("helper recorded %d runs before its crash, want %d", lines, killAt)
			}
			files := reportFiles(t, dir)
			if !slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, tc.stray) }) {
				t.Errorf("before Open, the reports dir %v has no %q: the crash was not where meant", files, tc.stray)
			}
			runs := checkAfterCrash(t, dir, cmd.Process.Pid, killAt-1)
			want := fmt.Sprintf("p%d-%d", cmd.Process.Pid, killAt-1)
			if tc.committed {
				want = fmt.Sprintf("p%d-%d", cmd.Process.Pid, killAt)
			}
			if len(runs) != crashKeep || runs[0].ID != want {
				t.Errorf("after the crash: %d runs, newest %s; want %d, newest %s", len(runs), runs[0].ID, crashKeep, want)
			}
		})
	}
}

// TestOpenReadOnly: an existing state is read without a write, by two
// readers at once; a missing one is fs.ErrNotExist and is not created;
// writes are refused; a writer waits for the readers.
func TestOpenReadOnly(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	if _, err := OpenReadOnly(missing, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly of no state: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}

	dir := t.TempDir()
	db := open(t, dir, Options{})
	record(t, db, "r1")
	closeDB(t, db)
	before, err := os.ReadFile(filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenReadOnly(dir, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenReadOnly(dir, Options{LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if runs, err := b.Runs(0); err != nil || len(runs) != 1 || runs[0].ID != "r1" {
		t.Errorf("Runs = %v, %v", runs, err)
	}
	if report, err := a.Report("r1"); err != nil || string(report) != `{"id":"r1"}` {
		t.Errorf("Report = %s, %v", report, err)
	}
	if err := a.OwnTeams("t1"); err == nil {
		t.Error("a write through a read-only state went through")
	}
	if _, err := Open(dir, Options{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, ErrInUse) {
		t.Errorf("a writer while readers hold the state: %v, want ErrInUse", err)
	}
	closeDB(t, a)
	closeDB(t, b)
	after, err := os.ReadFile(filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("reading the state changed its file")
	}
}

// A version 1 database (no feeds bucket) is migrated on open and keeps
// what it held.
func TestMigrateFromVersion1(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	if err := db.OwnTeams("team-1"); err != nil {
		t.Fatal(err)
	}
	closeDB(t, db)
	bdb, err := bolt.Open(filepath.Join(dir, dbFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketFeeds); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyVersion, []byte("1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, dir, Options{})
	defer closeDB(t, db)
	if v := rawVersionOf(t, db); v != "2" {
		t.Errorf("schema version after migration %q, want 2", v)
	}
	owned, _, err := db.OwnedTeams()
	if err != nil || !owned["team-1"] {
		t.Errorf("owned teams after migration: %v, %v", owned, err)
	}
	if err := db.SetFeedCookie("corp", []byte("c1")); err != nil {
		t.Fatalf("SetFeedCookie after migration: %v", err)
	}
}

func TestFeedCookies(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, Options{})
	if got, err := db.FeedCookies(); err != nil || len(got) != 0 {
		t.Fatalf("FeedCookies of a new database: %v, %v", got, err)
	}
	for _, c := range []struct {
		source string
		cookie []byte
	}{{"corp", []byte("rid=000,csn=1")}, {"entra", []byte(`{"users":"u"}`)}, {"corp", []byte("rid=000,csn=2")}} {
		if err := db.SetFeedCookie(c.source, c.cookie); err != nil {
			t.Fatal(err)
		}
	}
	closeDB(t, db)
	db = open(t, dir, Options{})
	defer closeDB(t, db)
	got, err := db.FeedCookies()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"corp": []byte("rid=000,csn=2"), "entra": []byte(`{"users":"u"}`)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FeedCookies = %q, want %q", got, want)
	}
	if err := db.SetFeedCookie("corp", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.FeedCookies(); len(got) != 1 || got["corp"] != nil {
		t.Errorf("after forgetting corp: %q", got)
	}
}

// rawVersionOf reads the schema version key of an open database.
func rawVersionOf(t *testing.T, db *DB) string {
	t.Helper()
	var v string
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(bucketMeta).Get(keyVersion))
		return nil
	})
	return v
}
