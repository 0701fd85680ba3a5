package sync

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names, emails and descriptions come from the directory and from
// PagerTree, and both may be hostile: a group named "x\n\nNo changes." or a
// display name carrying an ANSI escape must not print a line ptsync did not
// write, nor reorder what a reviewer reads. Renderers pass such values
// through SafeText; the log core through EscapeControls.

// controlRune reports whether r can change how the text around it is shown:
// C0 and C1 controls (newline, carriage return, ESC that starts an ANSI
// sequence, DEL, CSI), the Unicode line and paragraph separators, and the
// bidirectional marks, embeddings, overrides and isolates.
func controlRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r == '\u2028', r == '\u2029': // line and paragraph separators
		return true
	case r == '\u061c', r == '\u200e', r == '\u200f': // bidi marks
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069': // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

// HasControl reports whether s holds a control character (see controlRune)
// or is not valid UTF-8.
func HasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, controlRune)
}

// SafeText is s as it is when it holds no control character, else s quoted
// and escaped like a Go string literal ("a\nb"), so that it prints as one
// visibly delimited value. Ordinary names print unchanged.
func SafeText(s string) string {
	if !HasControl(s) {
		return s
	}
	return strconv.Quote(s)
}

// EscapeControls replaces each control character of s (and each byte that
// is not UTF-8) by its Go escape (\n, \x1b, \u202e), leaving the rest as it
// is: for values that land inside quotes already, as log fields do.
func EscapeControls(s string) string {
	if !HasControl(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[0])|0x100, 16)[1:])
		case controlRune(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}
