package server

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ptsync/ptsync/internal/state"
	"github.com/ptsync/ptsync/sync"
)

// templateFuncs are the pages' helpers. Each returns plain text:
// html/template escapes it where it lands.
var templateFuncs = template.FuncMap{
	"stamp":       stamp,
	"iso":         func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ago":         ago,
	"dur":         shortDur,
	"rough":       roughDur,
	"plural":      plural,
	"pct":         pct,
	"rate":        rate,
	"resultClass": resultClass,
	"resultText":  resultText,
	"outcomeClass": func(o string) string {
		switch sync.Outcome(o) {
		case sync.OutcomeApplied:
			return "ok"
		case sync.OutcomeFailed:
			return "bad"
		case sync.OutcomeWithheld:
			return "warn"
		}
		return "muted"
	},
	"opSign": func(op string) string {
		switch op {
		case "create":
			return "+"
		case "delete":
			return "−"
		}
		return "~"
	},
	"counts": countsText,
}

// stamp writes a time in UTC to the second; "" for a zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

// ago writes how long before now t was: 5s ago, 3m ago, 2h ago, 4d ago.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + roughDur(-d)
	}
	return roughDur(d) + " ago"
}

// roughDur is d to its largest unit or two: 45s, 3m, 2h 5m, 4d 3h.
func roughDur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

// shortDur writes a run's length: 850ms, 12.4s, 3m 20s.
func shortDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return strconv.Itoa(int(d.Milliseconds())) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return roughDur(d) + " " + strconv.Itoa(int(d.Seconds())%60) + "s"
	}
	return roughDur(d)
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// pct writes a change in percent with its sign: +2%, −35.5%, ±0%.
func pct(p float64) string {
	s := strings.TrimSuffix(strconv.FormatFloat(math.Abs(p), 'f', 1, 64), ".0") + "%"
	switch {
	case p > 0:
		return "+" + s
	case p < 0:
		return "−" + s
	}
	return "±0%"
}

// rate writes a per-minute rate: 0, 0.25, 12, 1,200.
func rate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(r, 'f', 2, 64), "0"), ".")
	}
	return strconv.FormatFloat(math.Round(r), 'f', 0, 64)
}

// resultClass is the CSS class of a run's result.
func resultClass(result string) string {
	switch result {
	case state.ResultOK:
		return "ok"
	case state.ResultWithheld:
		return "warn"
	case state.ResultChangesFailed, state.ResultError:
		return "bad"
	}
	return "muted"
}

// resultText is a run's result in words.
func resultText(result string) string {
	switch result {
	case state.ResultOK:
		return "ok"
	case state.ResultWithheld:
		return "withheld"
	case state.ResultChangesFailed:
		return "changes failed"
	case state.ResultError:
		return "error"
	case state.ResultCancelled:
		return "cancelled"
	case "":
		return "unknown"
	}
	return result
}

// countsText is a run's counts, the zero ones left out.
func countsText(c state.Counts) string {
	var parts []string
	for _, n := range []struct {
		n    int
		what string
	}{{c.Applied, "applied"}, {c.Failed, "failed"}, {c.Withheld, "withheld"}, {c.Cancelled, "cancelled"}, {c.DryRun, "dry run"}} {
		if n.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n.n, n.what))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, ", ")
}
