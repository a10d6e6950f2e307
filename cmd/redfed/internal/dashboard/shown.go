package dashboard

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// shown returns a host or metric name as the page shows it as text: each
// character that shows nothing and that names may hold written as
// "⟨U+XXXX⟩", so that "web1" and "web1\u034f" are not two identical links.
// Those are Unicode's other default-ignorable characters (the combining
// grapheme joiner U+034F, the Hangul fillers U+115F, U+1160, U+3164 and
// U+FFA0...), the blank braille pattern U+2800, and a variation selector
// at the start, or after an ASCII character, another selector or one of
// those, where it changes nothing (after another character it may choose
// how an emoji is drawn). The other
// invisible characters, the format characters and spaces, names may not
// hold. dashboard.js's shown does the same for the text the script writes.
func shown(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return s
	}
	var b strings.Builder
	afterBase := false // after a character a variation selector may change
	for _, r := range s {
		selector := unicode.Is(unicode.Variation_Selector, r)
		if unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) || r == '\u2800' || selector && !afterBase {
			fmt.Fprintf(&b, "⟨U+%04X⟩", r)
			afterBase = false
			continue
		}
		b.WriteRune(r)
		afterBase = r >= utf8.RuneSelf && !selector
	}
	return b.String()
}
