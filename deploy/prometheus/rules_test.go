// Package prometheus holds ptsync's alerting rules; this test checks them
// with promtool and runs their unit tests.
package prometheus

import (
	"os/exec"
	"testing"

	"github.com/ptsync/ptsync/internal/testenv"
)

func TestAlertRules(t *testing.T) {
	promtool := testenv.Need(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yaml"},
		{"test", "rules", "alerts_test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
