package proc_test

import (
	"testing"
	"time"

	"github.com/ptsync/ptsync/bench/internal/proc"
)

// TestCPU: this process's CPU time grows as it works, and a process that
// does not exist is an error.
func TestCPU(t *testing.T) {
	before, err := proc.CPU("self")
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	after, err := proc.CPU("self")
	if err != nil || after <= before {
		t.Errorf("CPU after 100 ms of work: %v (before %v), %v", after, before, err)
	}
	if _, err := proc.CPU("0"); err == nil {
		t.Error("CPU of pid 0: no error")
	}
}
