package state

import (
	"bytes"
	"time"

	"github.com/ptsync/ptsync/sync"
)

// Memory is the state database as what the engine remembers through
// (sync.Memory): sync imports no state package, the state keeps sync's
// run reports.
type Memory struct{ DB *DB }

var _ sync.Memory = Memory{}

func (m Memory) LastGood() (map[string]sync.SourceSize, error) {
	counts, err := m.DB.LastGood()
	if err != nil {
		return nil, err
	}
	out := make(map[string]sync.SourceSize, len(counts))
	for name, c := range counts {
		out[name] = sync.SourceSize{Users: c.Users, Groups: c.Groups, At: c.At}
	}
	return out, nil
}

func (m Memory) SetLastGood(sizes map[string]sync.SourceSize) error {
	counts := make(map[string]SourceCount, len(sizes))
	for name, s := range sizes {
		counts[name] = SourceCount{Users: s.Users, Groups: s.Groups, At: s.At}
	}
	return m.DB.SetLastGood(counts)
}

func (m Memory) Missing() (map[string]time.Time, error) { return m.DB.Missing() }

func (m Memory) UpdateMissing(emails []string) (map[string]time.Time, error) {
	return m.DB.UpdateMissing(emails)
}

func (m Memory) OwnedTeams() (map[string]bool, bool, error) { return m.DB.OwnedTeams() }
func (m Memory) OwnTeams(ids ...string) error               { return m.DB.OwnTeams(ids...) }
func (m Memory) ForgetTeams(ids ...string) error            { return m.DB.ForgetTeams(ids...) }

// RecordRun keeps the run's history row and its JSON report.
func (m Memory) RecordRun(rep sync.Report) error {
	var report bytes.Buffer
	if err := sync.WriteReport(&report, rep); err != nil {
		return err
	}
	c := rep.Result.Counts
	run := Run{
		ID: rep.RunID, Command: rep.Command, DryRun: rep.DryRun, Started: rep.Started, Ended: rep.Ended(),
		Result: rep.Status, Error: rep.Error,
		Counts: Counts{Applied: c.Applied, Failed: c.Failed, Withheld: c.Withheld, Cancelled: c.Cancelled, DryRun: c.DryRun},
	}
	if run.Error == "" && rep.StateError != "" {
		run.Error = "dir: " + rep.StateError
	}
	if len(rep.Sources) > 0 {
		run.Sources = make(map[string]SourceCount, len(rep.Sources))
		for _, s := range rep.Sources {
			run.Sources[s.Name] = SourceCount{Users: s.Users, Groups: s.Groups, At: rep.Started}
		}
	}
	return m.DB.RecordRun(run, report.Bytes())
}
