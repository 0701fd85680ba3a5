package sync

import (
	"bytes"
	"testing"
)

func TestExplain(t *testing.T) {
	snaps, cur, pol := richScenario()
	want := mustDesired(t, pol, snaps...)
	p := MakePlan(cur, want, pol)
	tests := []struct {
		query  string
		kind   Kind
		wanted bool
	}{
		{" Alice@Example.com", KindUser, true}, // key normalised; name update
		{"carol@example.com", KindUser, true},  // merged from two sources
		{"bob@example.com", KindUser, false},   // leaver: removals and delete withheld
		{"erin@example.com", KindUser, false},  // in the directory, in no synced group
		{"owner@example.com", KindUser, false}, // admin and protected
		{"nobody@example.com", KindUser, false},
		{"Database", KindTeam, true},       // renamed from Db
		{"oncall-vendors", KindTeam, true}, // looked up by group name; adopted
		{"Web", KindTeam, true},            // conflict with an unmanaged team
		{"Legacy", KindTeam, false},        // group gone, delete withheld
		{"staff", KindTeam, false},         // a group no rule matches
		{"Nothing", KindTeam, false},
	}
	var out bytes.Buffer
	for _, tc := range tests {
		e := Explain(tc.query, snaps, want, cur, p, pol)
		if e.Kind != tc.kind || e.Wanted != tc.wanted {
			t.Errorf("%q: kind %q wanted %t, want kind %q wanted %t", tc.query, e.Kind, e.Wanted, tc.kind, tc.wanted)
		}
		if err := e.Render(&out); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
	}
	golden(t, "explain.golden", out.Bytes())
}
