package sync

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// reportDocument is the JSON form of a run's report, as the state
// database keeps it beside the run's history row: the run, what each
// source returned, the plan (null when the run failed before it had one)
// and the outcome of every change.
type reportDocument struct {
	RunID   string    `json:"run_id"`
	Command string    `json:"command"`
	DryRun  bool      `json:"dry_run"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Status  string    `json:"result"`
	Error   string    `json:"error,omitempty"`
	// StateError is what the run could not write to state.dir.
	StateError string          `json:"state_error,omitempty"`
	Sources    []SourceReport  `json:"sources"`
	Timings    timingsDocument `json:"timings"`
	Plan       *planDocument   `json:"plan"`
	// Outcomes are every change of the plan, in plan order, then every
	// withheld one, each with its outcome (applied, failed with its error,
	// withheld with the reason, skipped-dry-run, cancelled).
	Outcomes []ChangeResult `json:"outcomes"`
	Counts   Counts         `json:"counts"`
}

// timingsDocument is Timings in seconds.
type timingsDocument struct {
	Fetch float64 `json:"fetch_seconds"`
	Read  float64 `json:"read_seconds"`
	Plan  float64 `json:"plan_seconds"`
	Apply float64 `json:"apply_seconds"`
	Total float64 `json:"total_seconds"`
}

// Ended is when the run ended, by the clock it started on.
func (r Report) Ended() time.Time { return r.Started.Add(r.Timings.Total) }

// Planned reports whether the run got as far as a plan.
func (r Report) Planned() bool { return r.Plan.Fingerprint != "" }

// WriteReport writes a finished run's report as one JSON object.
func WriteReport(w io.Writer, r Report) error {
	doc := reportDocument{
		RunID: r.RunID, Command: r.Command, DryRun: r.DryRun, Started: r.Started, Ended: r.Ended(),
		Status: r.Status, Error: r.Error, StateError: r.StateError, Sources: orEmpty(r.Sources),
		Timings: timingsDocument{
			Fetch: r.Timings.Fetch.Seconds(), Read: r.Timings.Read.Seconds(), Plan: r.Timings.Plan.Seconds(),
			Apply: r.Timings.Apply.Seconds(), Total: r.Timings.Total.Seconds(),
		},
		Outcomes: orEmpty(r.Result.Changes), Counts: r.Result.Counts,
	}
	if r.Planned() {
		plan := toDocument(r.Plan)
		doc.Plan = &plan
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write run report: %w", err)
	}
	return nil
}

// ReadReport loads a report WriteReport wrote. Keys it does not know are
// ignored: a report written by a newer ptsync still reads.
func ReadReport(r io.Reader) (Report, error) {
	var doc reportDocument
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return Report{}, fmt.Errorf("read run report: %w", err)
	}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	rep := Report{
		RunID: doc.RunID, Command: doc.Command, DryRun: doc.DryRun, Started: doc.Started,
		Status: doc.Status, Error: doc.Error, StateError: doc.StateError, Sources: nilIfEmpty(doc.Sources),
		Timings: Timings{Fetch: seconds(doc.Timings.Fetch), Read: seconds(doc.Timings.Read), Plan: seconds(doc.Timings.Plan),
			Apply: seconds(doc.Timings.Apply), Total: doc.Ended.Sub(doc.Started)},
		Result: Result{DryRun: doc.DryRun, Changes: nilIfEmpty(doc.Outcomes), Counts: doc.Counts},
	}
	if doc.Plan != nil {
		rep.Plan = fromDocument(*doc.Plan)
	}
	return rep, nil
}

// RenderReport writes a run's report as text: a header (the run, its
// command, when, how long, its result and error, what each source
// returned), then its plan as plan's text output has it, each change's
// comment saying what became of it, and the run's result line.
func RenderReport(w io.Writer, r Report) error {
	b := bufio.NewWriter(w)
	kind := "Run"
	if r.DryRun {
		kind = "Dry run"
	}
	fmt.Fprintf(b, "%s %s: %s\n", kind, SafeText(r.RunID), SafeText(r.Command))
	fmt.Fprintf(b, "Started %s, took %s; result: %s\n", stamp(r.Started), r.Timings.Total.Round(time.Millisecond), SafeText(r.Status))
	if r.Error != "" {
		fmt.Fprintf(b, "Error: %s\n", SafeText(r.Error))
	}
	if r.StateError != "" {
		fmt.Fprintf(b, "State not written: %s\n", SafeText(r.StateError))
	}
	for _, s := range r.Sources {
		fmt.Fprintf(b, "Source %s: %d users, %d groups\n", SafeText(s.Name), s.Users, s.Groups)
	}
	if r.Planned() {
		t := r.Timings
		fmt.Fprintf(b, "Timings: fetch %s, read PagerTree %s, plan %s, apply %s\n",
			t.Fetch.Round(time.Millisecond), t.Read.Round(time.Millisecond), t.Plan.Round(time.Millisecond), t.Apply.Round(time.Millisecond))
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write run report: %w", err)
	}
	if !r.Planned() {
		return nil
	}
	fmt.Fprintln(w)
	var changes, withheld []textLine
	if len(r.Result.Changes) == 0 {
		// The run failed after planning (a saved plan refused, say): its
		// changes were not applied.
		for _, c := range r.Plan.Changes {
			changes = append(changes, textLine{c, "not applied; " + c.Reason})
		}
		for _, c := range r.Plan.Withheld {
			withheld = append(withheld, textLine{c, c.WithheldReason})
		}
	}
	for _, c := range r.Result.Changes {
		if c.Outcome == OutcomeWithheld {
			withheld = append(withheld, textLine{c.Change, c.WithheldReason})
			continue
		}
		changes = append(changes, textLine{c.Change, outcomeNote(c)})
	}
	last := ResultLine(r.Result)
	if len(r.Result.Changes) == 0 && r.Status != StatusOK {
		last = "Nothing applied: the run failed."
	}
	if err := renderText(w, changes, withheld, r.Plan, last); err != nil {
		return fmt.Errorf("write run report: %w", err)
	}
	return nil
}

// outcomeNote is a change line's comment in a report: its outcome, then
// the error of one that failed or the reason of one that was applied.
func outcomeNote(c ChangeResult) string {
	switch c.Outcome {
	case OutcomeFailed, OutcomeCancelled:
		return strings.ToUpper(string(c.Outcome)) + ": " + c.Error
	case OutcomeDryRun:
		return "dry run, not applied; " + c.Reason
	}
	return string(c.Outcome) + "; " + c.Reason
}
