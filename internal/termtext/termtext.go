// Package termtext makes text that came from a file name or a server safe to print on
// a terminal.
package termtext

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s on one line and safe for a terminal: control characters (newlines,
// ESC, which starts the sequences that retitle, recolour or clear a terminal),
// bidirectional overrides, which reorder what is shown, and bytes that are not UTF-8
// are written as Go escapes (\n, \a, \x1b, \u202e, \xff). Other text is returned as
// it is.
func Clean(s string) string {
	bad := func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }
	if utf8.ValidString(s) && strings.IndexFunc(s, bad) < 0 {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch _, size := utf8.DecodeRuneInString(s[i:]); {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case bad(r):
			q := strconv.QuoteRuneToASCII(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
