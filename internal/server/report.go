package server

import (
	"bytes"
	"fmt"

	"github.com/ptsync/ptsync/sync"
)

// readReport reads one run's JSON report as sync wrote it (keys a newer
// ptsync added are ignored). It returns the plan too when the run got as
// far as one, nil otherwise.
func readReport(data []byte) (*sync.Report, *sync.Plan, error) {
	rep, err := sync.ReadReport(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("read the run's report: %w", err)
	}
	if !rep.Planned() {
		return &rep, nil, nil
	}
	return &rep, &rep.Plan, nil
}
