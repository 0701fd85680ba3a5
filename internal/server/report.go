package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// This file is the one place that reads a run's JSON report (sync's
// WriteReport, kept by state.RecordRun). It decodes only the keys the page
// shows and ignores the rest, so a report written by a newer ptsync still
// renders; a key missing from an older one is its zero value.

// report is a run's JSON report, as far as the page shows it.
type report struct {
	RunID      string         `json:"run_id"`
	Command    string         `json:"command"`
	DryRun     bool           `json:"dry_run"`
	Started    time.Time      `json:"started"`
	Ended      time.Time      `json:"ended"`
	Result     string         `json:"result"`
	Error      string         `json:"error"`
	StateError string         `json:"state_error"`
	Sources    []reportSource `json:"sources"`
	Timings    reportTimings  `json:"timings"`
	// Plan is null when the run failed before it had one.
	Plan *reportPlan `json:"plan"`
	// Outcomes are the plan's changes, then its withheld ones, each with
	// what became of it.
	Outcomes []reportOutcome `json:"outcomes"`
	Counts   reportCounts    `json:"counts"`
}

type reportSource struct {
	Name    string         `json:"name"`
	Users   int            `json:"users"`
	Groups  int            `json:"groups"`
	Skipped map[string]int `json:"skipped"`
}

type reportTimings struct {
	Fetch float64 `json:"fetch_seconds"`
	Read  float64 `json:"read_seconds"`
	Plan  float64 `json:"plan_seconds"`
	Apply float64 `json:"apply_seconds"`
	Total float64 `json:"total_seconds"`
}

type reportPlan struct {
	Changes        []reportChange   `json:"changes"`
	Summary        reportSummary    `json:"summary"`
	Withheld       []reportChange   `json:"withheld"`
	Conflicts      []reportConflict `json:"conflicts"`
	Fingerprint    string           `json:"fingerprint"`
	PendingDeletes []pendingDelete  `json:"pending_deletes"`
	UnusablePhones []string         `json:"unusable_phones"`
	Invited        []string         `json:"invited"`
}

type reportSummary struct {
	Create int `json:"create"`
	Update int `json:"update"`
	Delete int `json:"delete"`
}

type reportChange struct {
	Op             string        `json:"op"`   // create, update, delete
	Kind           string        `json:"kind"` // user, team
	Name           string        `json:"name"`
	ID             string        `json:"id"`
	UserName       string        `json:"user_name"`
	UserPhone      string        `json:"user_phone"`
	MembersAdded   []string      `json:"members_added"`
	MembersRemoved []string      `json:"members_removed"`
	AdminsAdded    []string      `json:"admins_added"`
	AdminsRemoved  []string      `json:"admins_removed"`
	Fields         []fieldChange `json:"fields"`
	Destructive    int           `json:"destructive"`
	Reason         string        `json:"reason"`
	WithheldReason string        `json:"withheld_reason"`
}

type fieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

type reportOutcome struct {
	reportChange
	Outcome string `json:"outcome"` // applied, failed, skipped-dry-run, withheld, cancelled
	Error   string `json:"error"`
}

type reportConflict struct {
	Team   string `json:"team"`
	User   string `json:"user"`
	Reason string `json:"reason"`
}

// pendingDelete is a leaver users.delete_grace keeps for now.
type pendingDelete struct {
	Email string    `json:"email"`
	ID    string    `json:"id"`
	Since time.Time `json:"missing_since"`
	After time.Time `json:"delete_after"`
}

type reportCounts struct {
	Applied   int `json:"applied"`
	Failed    int `json:"failed"`
	DryRun    int `json:"skipped_dry_run"`
	Withheld  int `json:"withheld"`
	Cancelled int `json:"cancelled"`
}

// decodeReport reads one run's JSON report.
func decodeReport(data []byte) (*report, error) {
	var r report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("read the run's report: %w", err)
	}
	return &r, nil
}

// Outcomes of a change, as the report writes them.
const (
	outcomeApplied   = "applied"
	outcomeFailed    = "failed"
	outcomeDryRun    = "skipped-dry-run"
	outcomeWithheld  = "withheld"
	outcomeCancelled = "cancelled"
)

// details says what a change writes beyond its op, kind and name: a new
// user's name and phone, each field that changes, members and admins
// added (+) and removed (-).
func (c reportChange) details() string {
	var parts []string
	if c.Kind == "user" && c.Op == "create" {
		parts = appendNonEmpty(parts, strings.Join(appendNonEmpty(nil, c.UserName, c.UserPhone), ", "))
	}
	for _, f := range c.Fields {
		if f.Field == "description" {
			parts = append(parts, "description (ptsync's marker)")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %q → %q", f.Field, f.Old, f.New))
	}
	if ms := signed(c.MembersAdded, c.MembersRemoved); ms != "" {
		parts = append(parts, "members "+ms)
	}
	if as := signed(c.AdminsAdded, c.AdminsRemoved); as != "" {
		parts = append(parts, "admins "+as)
	}
	return strings.Join(parts, "; ")
}

// signed lists added as +a and removed as -r.
func signed(added, removed []string) string {
	var out []string
	for _, a := range added {
		out = append(out, "+"+a)
	}
	for _, r := range removed {
		out = append(out, "-"+r)
	}
	return strings.Join(out, " ")
}

func appendNonEmpty(list []string, values ...string) []string {
	for _, v := range values {
		if v != "" {
			list = append(list, v)
		}
	}
	return list
}

// Subject is what a conflict is about: its team, or the user's email.
func (c reportConflict) Subject() string {
	if c.User != "" {
		return "user " + c.User
	}
	return "team " + c.Team
}
