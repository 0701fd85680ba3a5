package sync

import (
	"reflect"
	"testing"
)

func TestMarkerRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		marker Marker
		line   string
	}{
		{"uuid", Marker{Source: "corp", GroupID: "5f0c2c1e-6a1d-4d5e-9a52-3f6b8d1c0e11"}, "[managed by ptsync: source=corp group=5f0c2c1e-6a1d-4d5e-9a52-3f6b8d1c0e11]"},
		{"dn with commas and spaces", Marker{Source: "corp", GroupID: "cn=on call,ou=groups"}, "[managed by ptsync: source=corp group=cn=on%20call%2Cou=groups]"},
		{"brackets, slash and percent", Marker{Source: "my src", GroupID: "a]b/c%d"}, "[managed by ptsync: source=my%20src group=a%5Db%2Fc%25d]"},
		{"unicode", Marker{Source: "corp", GroupID: "équipe"}, "[managed by ptsync: source=corp group=%C3%A9quipe]"},
		{"admins ptsync added", Marker{Source: "corp", GroupID: "g1", Admins: []string{"a,b@example.com", "lead@example.com"}},
			"[managed by ptsync: source=corp group=g1 admins=a%2Cb@example.com,lead@example.com]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.marker.String(); got != tc.line {
				t.Errorf("String: got %q, want %q", got, tc.line)
			}
			got, ok := ParseMarker("Our team.\n" + tc.line + "\n")
			if !ok || !reflect.DeepEqual(got, tc.marker) {
				t.Errorf("ParseMarker: got %+v %t, want %+v", got, ok, tc.marker)
			}
		})
	}
	if a, b := (Marker{Source: "a/b", GroupID: "c"}).Key(), (Marker{Source: "a", GroupID: "b/c"}).Key(); a == b {
		t.Errorf("keys of different markers collide: %q", a)
	}
}

func TestParseMarker(t *testing.T) {
	tests := []struct {
		name, description string
		want              Marker
		ok                bool
	}{
		{"absent", "Payments on-call", Marker{}, false},
		{"empty", "", Marker{}, false},
		{"alone", "[managed by ptsync: source=corp group=g1]", Marker{Source: "corp", GroupID: "g1"}, true},
		{"hand-edited case and spacing", "text [ Managed by PTSync:  source=corp   group=g1 ] more", Marker{Source: "corp", GroupID: "g1"}, true},
		{"the last of several counts", "[managed by ptsync: source=old group=g0]\n[managed by ptsync: source=corp group=g1]", Marker{Source: "corp", GroupID: "g1"}, true},
		{"bad escape is no marker", "[managed by ptsync: source=corp group=%zz]", Marker{}, false},
		{"missing group", "[managed by ptsync: source=corp]", Marker{}, false},
		{"admins lower-cased and sorted", "[managed by ptsync: source=corp group=g1 admins=Zed@x.test,amy@x.test]",
			Marker{Source: "corp", GroupID: "g1", Admins: []string{"amy@x.test", "zed@x.test"}}, true},
		{"an admin that does not unescape is forgotten, not the marker", "[managed by ptsync: source=corp group=g1 admins=%zz,amy@x.test]",
			Marker{Source: "corp", GroupID: "g1", Admins: []string{"amy@x.test"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseMarker(tc.description)
			if !reflect.DeepEqual(got, tc.want) || ok != tc.ok {
				t.Errorf("got %+v %t, want %+v %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestWithMarker(t *testing.T) {
	m := Marker{Source: "corp", GroupID: "g1"}
	tests := []struct{ name, description, want string }{
		{"empty description", "", "[managed by ptsync: source=corp group=g1]"},
		{"text kept, marker appended", "Payments on-call\n", "Payments on-call\n[managed by ptsync: source=corp group=g1]"},
		{"old marker replaced", "Payments\n[managed by ptsync: source=old group=g0]", "Payments\n[managed by ptsync: source=corp group=g1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := WithMarker(tc.description, m); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
