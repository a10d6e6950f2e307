package main

import (
	"strconv"
	"strings"
	"unicode"
)

// printable returns s as it is when every rune of it prints, and else in
// Go's quoted syntax: what a server holds or answers (a key, an error)
// reaches a terminal, whose control sequences it must not play.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	return strconv.Quote(s)
}

// printableLine is printable for a line of a message: escaped the same
// way, without the quotes around it.
func printableLine(s string) string {
	if q := printable(s); q != s {
		return q[1 : len(q)-1]
	}
	return s
}
