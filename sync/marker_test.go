package sync

import "testing"

func TestMarkerRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		marker Marker
		line   string
	}{
		{"uuid", Marker{"corp", "5f0c2c1e-6a1d-4d5e-9a52-3f6b8d1c0e11"}, "[managed by ptsync: source=corp group=5f0c2c1e-6a1d-4d5e-9a52-3f6b8d1c0e11]"},
		{"dn with commas and spaces", Marker{"corp", "cn=on call,ou=groups"}, "[managed by ptsync: source=corp group=cn=on%20call%2Cou=groups]"},
		{"brackets, slash and percent", Marker{"my src", "a]b/c%d"}, "[managed by ptsync: source=my%20src group=a%5Db%2Fc%25d]"},
		{"unicode", Marker{"corp", "équipe"}, "[managed by ptsync: source=corp group=%C3%A9quipe]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.marker.String(); got != tc.line {
				t.Errorf("String: got %q, want %q", got, tc.line)
			}
			got, ok := ParseMarker("Our team.\n" + tc.line + "\n")
			if !ok || got != tc.marker {
				t.Errorf("ParseMarker: got %+v %t, want %+v", got, ok, tc.marker)
			}
		})
	}
	if a, b := (Marker{"a/b", "c"}).Key(), (Marker{"a", "b/c"}).Key(); a == b {
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
		{"alone", "[managed by ptsync: source=corp group=g1]", Marker{"corp", "g1"}, true},
		{"hand-edited case and spacing", "text [ Managed by PTSync:  source=corp   group=g1 ] more", Marker{"corp", "g1"}, true},
		{"the last of several counts", "[managed by ptsync: source=old group=g0]\n[managed by ptsync: source=corp group=g1]", Marker{"corp", "g1"}, true},
		{"bad escape is no marker", "[managed by ptsync: source=corp group=%zz]", Marker{}, false},
		{"missing group", "[managed by ptsync: source=corp]", Marker{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseMarker(tc.description)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %+v %t, want %+v %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestWithMarker(t *testing.T) {
	m := Marker{"corp", "g1"}
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
