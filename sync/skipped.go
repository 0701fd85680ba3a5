package sync

import (
	"fmt"
	"strings"

	"github.com/ptsync/ptsync/sources"
)

// SkippedBySource is Plan.Skipped for the snapshots: per source, the
// entries it left out by reason (no_email, duplicate_email, ...). Sources
// that skipped nothing are left out, so a clean directory's plan reads as
// before.
func SkippedBySource(snaps []*sources.Snapshot) map[string]map[string]int {
	var out map[string]map[string]int
	for _, s := range snaps {
		for reason, n := range s.Skipped {
			if n <= 0 {
				continue
			}
			if out == nil {
				out = map[string]map[string]int{}
			}
			if out[s.Source] == nil {
				out[s.Source] = map[string]int{}
			}
			out[s.Source][reason] += n
		}
	}
	return out
}

// SkippedLines is one line per source of what it skipped, sorted by source
// and reason: `Source corp skipped 3 entries: invalid_email 1, no_email 2.`
// A source that skipped nothing has no line.
func SkippedLines(skipped map[string]map[string]int) []string {
	lines := make([]string, 0, len(skipped))
	for _, source := range sortedKeys(skipped) {
		total := 0
		var parts []string
		for _, reason := range sortedKeys(skipped[source]) {
			n := skipped[source][reason]
			total += n
			parts = append(parts, fmt.Sprintf("%s %d", SafeText(reason), n))
		}
		if total == 0 {
			continue
		}
		entries := "entries"
		if total == 1 {
			entries = "entry"
		}
		lines = append(lines, fmt.Sprintf("Source %s skipped %d %s: %s.", SafeText(source), total, entries, strings.Join(parts, ", ")))
	}
	return lines
}
