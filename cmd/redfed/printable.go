package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable returns s as it is when every rune of it prints, and else in
// Go's quoted syntax: what a server holds or answers (a key, an error)
// reaches a terminal, whose control sequences it must not play. A text
// that begins with a double quote is quoted too, so that it is not taken
// for another quoted: the key "a\n", quotes and all, is not a and a
// newline.
func printable(s string) string {
	if !strings.HasPrefix(s, `"`) && prints(s) {
		return s
	}
	return strconv.Quote(s)
}

// printableLine is printable for a line of a message: escaped the same
// way where a rune does not print, without the quotes around it.
func printableLine(s string) string {
	if prints(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// prints reports whether every rune of s prints. A byte that is not
// UTF-8 does not: it would reach the terminal as itself, or as the same
// replacement character as any other such byte.
func prints(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}
