package sync

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Marker is ptsync's ownership mark on a managed team: the source name and
// the stable id of the group the team mirrors. It lives on its own line in
// the team's description, for example
//
//	[managed by ptsync: source=corp group=5f0c2c1e-6a1d-4d5e-9a52-3f6b8d1c0e11]
//
// Both values are percent-escaped (as a URL path segment), so spaces,
// brackets and commas in a DN cannot break the line, while plain ids stay
// readable. Anything else in the description is left as people wrote it.
//
// On teams with admins (v4) the marker also records the admins ptsync put
// there, so it removes only those when they are no longer wanted and
// never an admin someone added by hand:
//
//	[managed by ptsync: source=corp group=5f0c... admins=lead@example.com,ops@example.com]
type Marker struct {
	Source  string
	GroupID string
	// Admins are the lower-cased emails of the admins ptsync added, sorted.
	Admins []string
}

// markerPattern accepts the marker anywhere in a description, in any case
// and with loose spacing, because people edit descriptions by hand.
var markerPattern = regexp.MustCompile(`(?i)\[\s*managed by ptsync:\s*source=([^\s\]]+)\s+group=([^\s\]]+)(?:\s+admins=([^\s\]]*))?\s*\]`)

// String is the marker line as written into a description.
func (m Marker) String() string {
	s := "[managed by ptsync: source=" + url.PathEscape(m.Source) + " group=" + url.PathEscape(m.GroupID)
	if len(m.Admins) > 0 {
		escaped := make([]string, len(m.Admins))
		for i, a := range m.Admins {
			escaped[i] = strings.ReplaceAll(url.PathEscape(a), ",", "%2C")
		}
		s += " admins=" + strings.Join(escaped, ",")
	}
	return s + "]"
}

// Key is the marker's match key: the escaped source and group id joined by
// a slash, unambiguous because neither escaped half contains one.
func (m Marker) Key() string {
	return url.PathEscape(m.Source) + "/" + url.PathEscape(m.GroupID)
}

// ParseMarker finds the marker in a team description. When there are
// several, the last one counts (it is the one ptsync appended). A marker
// whose values do not unescape is not a marker.
func ParseMarker(description string) (Marker, bool) {
	all := markerPattern.FindAllStringSubmatch(description, -1)
	if len(all) == 0 {
		return Marker{}, false
	}
	last := all[len(all)-1]
	source, err1 := url.PathUnescape(last[1])
	group, err2 := url.PathUnescape(last[2])
	if err1 != nil || err2 != nil || source == "" || group == "" {
		return Marker{}, false
	}
	m := Marker{Source: source, GroupID: group}
	if last[3] != "" {
		for _, a := range strings.Split(last[3], ",") {
			// An admin that does not unescape is dropped, not the marker:
			// ptsync then only forgets that it added that admin, and keeps it.
			if email, err := url.PathUnescape(a); err == nil && EmailKey(email) != "" {
				m.Admins = append(m.Admins, EmailKey(email))
			}
		}
		slices.Sort(m.Admins)
		m.Admins = slices.Compact(m.Admins)
	}
	return m, true
}

// WithMarker returns description with every existing marker removed and m
// appended as its final line, keeping whatever text people wrote.
func WithMarker(description string, m Marker) string {
	text := strings.TrimRight(markerPattern.ReplaceAllString(description, ""), " \t\r\n")
	if text == "" {
		return m.String()
	}
	return text + "\n" + m.String()
}
