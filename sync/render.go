package sync

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// planDocument is the JSON form of a plan (SPEC.md: changes, summary,
// withheld), plus what `ptsync apply PLAN.json` needs to load it back.
type planDocument struct {
	Changes     []Change   `json:"changes"`
	Summary     Summary    `json:"summary"`
	Withheld    []Change   `json:"withheld"`
	Conflicts   []Conflict `json:"conflicts"`
	Fingerprint string     `json:"fingerprint"`
	Base        int        `json:"base"`
	Destructive int        `json:"destructive"`
	Origin      PlanOrigin `json:"origin"`
	// Skipped is per source, then per reason.
	Skipped map[string]map[string]int `json:"skipped"`
	Invited []string                  `json:"invited,omitempty"`
	// UnusablePhones are "email (phone)" entries, phones left out.
	UnusablePhones []string `json:"unusable_phones,omitempty"`
	// PendingDeletes are leavers users.delete_grace keeps for now.
	PendingDeletes []PendingDelete `json:"pending_deletes,omitempty"`
}

// RenderJSON writes the plan as one indented JSON object. Empty lists are
// written as [], never null, and "skipped" as {}, so scripts can index them
// unguarded.
func RenderJSON(w io.Writer, p Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(toDocument(p)); err != nil {
		return fmt.Errorf("write plan as JSON: %w", err)
	}
	return nil
}

// toDocument is the JSON form of p.
func toDocument(p Plan) planDocument {
	doc := planDocument{
		Changes: orEmpty(p.Changes), Summary: p.Summary, Withheld: orEmpty(p.Withheld),
		Conflicts: orEmpty(p.Conflicts), Fingerprint: p.Fingerprint, Base: p.Base, Destructive: p.Destructive,
		Origin: p.Origin, Skipped: p.Skipped, Invited: p.Invited, UnusablePhones: p.UnusablePhones,
		PendingDeletes: p.PendingDeletes,
	}
	if doc.Skipped == nil {
		doc.Skipped = map[string]map[string]int{}
	}
	return doc
}

// ReadPlan loads a plan RenderJSON wrote (ptsync plan --out). It rejects
// unknown keys and a plan without a fingerprint: applying it could not
// check that PagerTree is still the state it was made from.
func ReadPlan(r io.Reader) (Plan, error) {
	var doc planDocument
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Plan{}, fmt.Errorf("read plan: %w", err)
	}
	if doc.Fingerprint == "" {
		return Plan{}, fmt.Errorf("read plan: no fingerprint; save plans with ptsync plan --out")
	}
	for _, c := range doc.Changes {
		if err := validChange(c); err != nil {
			return Plan{}, fmt.Errorf("read plan: %w", err)
		}
	}
	p := fromDocument(doc)
	if got := summarize(p.Changes); got != p.Summary {
		return Plan{}, fmt.Errorf("read plan: summary %+v does not match its changes %+v; the file was edited", p.Summary, got)
	}
	return p, nil
}

// fromDocument is the plan doc holds, in the shape MakePlan gives.
func fromDocument(doc planDocument) Plan {
	p := Plan{
		Changes: nilIfEmpty(doc.Changes), Withheld: nilIfEmpty(doc.Withheld),
		Conflicts: nilIfEmpty(doc.Conflicts), Fingerprint: doc.Fingerprint, Summary: doc.Summary,
		Base: doc.Base, Destructive: doc.Destructive, Origin: doc.Origin, Invited: nilIfEmpty(doc.Invited),
		UnusablePhones: nilIfEmpty(doc.UnusablePhones), PendingDeletes: nilIfEmpty(doc.PendingDeletes),
	}
	if len(doc.Skipped) > 0 {
		p.Skipped = doc.Skipped
	}
	normalizeChanges(p.Changes)
	normalizeChanges(p.Withheld)
	return p
}

// validChange checks what Apply relies on in a change read from a file.
func validChange(c Change) error {
	switch {
	case c.Op != OpCreate && c.Op != OpUpdate && c.Op != OpDelete:
		return fmt.Errorf("change %q: unknown op %q", c.Name, c.Op)
	case c.Kind != KindUser && c.Kind != KindTeam:
		return fmt.Errorf("change %q: unknown kind %q", c.Name, c.Kind)
	case c.Name == "":
		return fmt.Errorf("a %s %s change has no name", c.Op, c.Kind)
	case c.Op != OpCreate && c.ID == "":
		return fmt.Errorf("%s %s %q has no id", c.Op, c.Kind, c.Name)
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// symbol is the change's terraform-style sign.
func symbol(op Op) string {
	switch op {
	case OpCreate:
		return "+"
	case OpDelete:
		return "-"
	default:
		return "~"
	}
}

// Details describes what a change does, without its sign, kind and name,
// as the plan's text and markdown and the status page show it.
func (c Change) Details() string {
	var parts []string
	if c.Kind == KindUser && c.Op == OpCreate {
		parts = append(parts, strings.Join(nonEmpty(SafeText(c.UserName), SafeText(c.UserPhone)), ", "))
	}
	for _, f := range c.Fields {
		if f.Field == "description" {
			// A marker rewritten only to record the admins ptsync added
			// is bookkeeping: the admins part below shows the change.
			if old, ok := ParseMarker(f.Old); !ok || old.Key() != markerKey(f.New) {
				parts = append(parts, "take over (ptsync marker added to the description)")
			}
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %q -> %q", SafeText(f.Field), f.Old, f.New))
	}
	if len(c.MembersAdded)+len(c.MembersRemoved) > 0 {
		var ms []string
		for _, m := range c.MembersAdded {
			ms = append(ms, "+"+SafeText(m))
		}
		for _, m := range c.MembersRemoved {
			ms = append(ms, "-"+SafeText(m))
		}
		parts = append(parts, "members "+strings.Join(ms, " "))
	}
	if len(c.AdminsAdded)+len(c.AdminsRemoved) > 0 {
		var as []string
		for _, a := range c.AdminsAdded {
			as = append(as, "+"+SafeText(a))
		}
		for _, a := range c.AdminsRemoved {
			as = append(as, "-"+SafeText(a))
		}
		parts = append(parts, "admins "+strings.Join(as, " "))
	}
	return strings.Join(nonEmpty(parts...), "; ")
}

// markerKey is the key of the marker in description, or "".
func markerKey(description string) string {
	if m, ok := ParseMarker(description); ok {
		return m.Key()
	}
	return ""
}

// noteLines are the plan's notes beside what sources skipped: the wanted
// users who have not accepted PagerTree's invitation yet, and the phones
// left out because they are not in E.164.
func noteLines(p Plan) []string {
	list := func(items []string) string {
		safe := make([]string, len(items))
		for i, e := range items {
			safe[i] = SafeText(e)
		}
		return strings.Join(safe, ", ")
	}
	var lines []string
	if len(p.Invited) > 0 {
		lines = append(lines, fmt.Sprintf("Invited, not accepted yet (%d; they exist and are not created again): %s", len(p.Invited), list(p.Invited)))
	}
	if len(p.UnusablePhones) > 0 {
		lines = append(lines, fmt.Sprintf("Phones left out, not in E.164 as PagerTree requires (%d; set users.phone_region for numbers without +country): %s",
			len(p.UnusablePhones), list(p.UnusablePhones)))
	}
	return lines
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// SummaryLine is the plan's one-line total, as text output ends with it.
func SummaryLine(p Plan) string {
	pending := ""
	if n := len(p.PendingDeletes); n > 0 {
		pending = fmt.Sprintf("; %d pending delete", n)
		if n > 1 {
			pending += "s"
		}
	}
	if p.InSync() {
		switch {
		case len(p.Conflicts) > 0:
			return fmt.Sprintf("No changes; %d conflicts left alone%s.", len(p.Conflicts), pending)
		case pending != "":
			return "No changes" + pending + "."
		}
		return "No changes. PagerTree is in sync."
	}
	line := fmt.Sprintf("Plan: %d to create, %d to update, %d to delete", p.Summary.Create, p.Summary.Update, p.Summary.Delete)
	if len(p.Withheld) > 0 {
		line += fmt.Sprintf("; %d withheld", len(p.Withheld))
	}
	return line + pending + "."
}

// writeChange writes one change as a text line: sign, kind, name, details
// and note as a # comment. Every value from the directory or PagerTree goes
// through SafeText, so none can start a line of its own.
func writeChange(w io.Writer, indent string, c Change, note string) {
	fmt.Fprintf(w, "%s%s %s %s", indent, symbol(c.Op), SafeText(string(c.Kind)), SafeText(c.Name))
	switch d := c.Details(); {
	case d == "":
	case c.Kind == KindUser && c.Op == OpCreate:
		fmt.Fprintf(w, " (%s)", d)
	default:
		fmt.Fprintf(w, ": %s", d)
	}
	if note != "" {
		fmt.Fprintf(w, "  # %s", SafeText(note))
	}
	fmt.Fprintln(w)
}

// RenderText writes the plan the way terraform plan reads: one +, ~ or -
// line per change with its reason as a # comment, then what the safety
// limits withheld, the deletes users.delete_grace keeps pending,
// conflicts, a line per source that skipped entries and the summary line.
func RenderText(w io.Writer, p Plan) error {
	changes := make([]textLine, len(p.Changes))
	for i, c := range p.Changes {
		changes[i] = textLine{c, c.Reason}
	}
	withheld := make([]textLine, len(p.Withheld))
	for i, c := range p.Withheld {
		withheld[i] = textLine{c, c.WithheldReason}
	}
	if err := renderText(w, changes, withheld, p, SummaryLine(p)); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// textLine is one change line of the text output and its # comment.
type textLine struct {
	c    Change
	note string
}

// renderText writes the change lines, the withheld ones, and p's pending
// deletes, conflicts and notes, then last, the summary line.
func renderText(w io.Writer, changes, withheld []textLine, p Plan, last string) error {
	b := bufio.NewWriter(w)
	for _, l := range changes {
		writeChange(b, "", l.c, l.note)
	}
	if len(withheld) > 0 {
		fmt.Fprintf(b, "\nWithheld by the safety limits (rerun with --allow-destructive to apply them):\n")
		for _, l := range withheld {
			writeChange(b, "", l.c, l.note)
		}
	}
	if len(p.PendingDeletes) > 0 {
		fmt.Fprintf(b, "\nPending deletes (users.delete_grace: not changes of this run):\n")
		for _, d := range p.PendingDeletes {
			writeChange(b, "", Change{Op: OpDelete, Kind: KindUser, Name: d.Email}, pendingNote(d))
		}
	}
	if len(p.Conflicts) > 0 {
		fmt.Fprintf(b, "\nConflicts (left alone):\n")
		for _, c := range p.Conflicts {
			fmt.Fprintf(b, "! %s: %s\n", SafeText(c.Subject()), SafeText(c.Reason))
		}
	}
	skipped := append(SkippedLines(p.Skipped), noteLines(p)...)
	sections := len(changes) + len(withheld) + len(p.PendingDeletes) + len(p.Conflicts)
	if len(skipped) > 0 {
		if sections > 0 {
			b.WriteByte('\n')
		}
		for _, line := range skipped {
			fmt.Fprintln(b, line)
		}
	}
	if sections+len(skipped) > 0 {
		b.WriteByte('\n')
	}
	fmt.Fprintln(b, last)
	return b.Flush()
}

// pendingNote is the comment of a pending delete's line.
func pendingNote(d PendingDelete) string {
	return fmt.Sprintf("missing since %s, deleted after %s", stamp(d.Since), stamp(d.After))
}

// RenderMarkdown writes the plan for a pull-request comment or a report:
// the summary and what each source skipped, then a table per section.
func RenderMarkdown(w io.Writer, p Plan) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "### ptsync plan\n\n**%s**\n", SummaryLine(p))
	skipped := append(SkippedLines(p.Skipped), noteLines(p)...)
	if len(skipped) > 0 {
		fmt.Fprintf(b, "\n")
		for _, line := range skipped {
			fmt.Fprintf(b, "- %s\n", mdCell(line))
		}
	}
	table := func(title string, cs []Change, why func(Change) string) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(b, "\n#### %s\n\n| | kind | name | details | why |\n|---|---|---|---|---|\n", title)
		for _, c := range cs {
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", symbol(c.Op), c.Kind, mdCell(c.Name), mdCell(c.Details()), mdCell(why(c)))
		}
	}
	table("Changes", p.Changes, func(c Change) string { return c.Reason })
	table("Withheld by the safety limits", p.Withheld, func(c Change) string { return c.WithheldReason })
	if len(p.PendingDeletes) > 0 {
		fmt.Fprintf(b, "\n#### Pending deletes (users.delete_grace)\n\n| | kind | name | missing since | deleted after |\n|---|---|---|---|---|\n")
		for _, d := range p.PendingDeletes {
			fmt.Fprintf(b, "| `-` | user | %s | %s | %s |\n", mdCell(d.Email), stamp(d.Since), stamp(d.After))
		}
	}
	if len(p.Conflicts) > 0 {
		fmt.Fprintf(b, "\n#### Conflicts (left alone)\n\n")
		for _, c := range p.Conflicts {
			fmt.Fprintf(b, "- **%s**: %s\n", mdCell(c.Subject()), mdCell(c.Reason))
		}
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write plan as markdown: %w", err)
	}
	return nil
}

// mdCell makes text safe inside a markdown table cell: control characters
// escaped (SafeText), backslashes and pipes escaped.
func mdCell(s string) string {
	s = SafeText(s)
	s = strings.ReplaceAll(s, "\\", "\\\\")
	return strings.ReplaceAll(s, "|", "\\|")
}
