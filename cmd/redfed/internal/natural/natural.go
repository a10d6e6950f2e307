// Package natural orders strings as people read them: the digits in a
// name compare as numbers, so cache3 comes before cache27.
package natural

import "strings"

// Compare returns -1, 0 or +1 as a sorts before, equal to or after b.
// Runs of ASCII digits compare by their value (ignoring leading zeros,
// then the shorter run first, so that "a01" and "a1" still differ), and
// everything else byte by byte. It is a total order fit for
// slices.SortFunc.
func Compare(a, b string) int {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, ra := digits(a)
			db, rb := digits(b)
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := compareInt(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			if c := compareInt(len(da), len(db)); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return compareInt(int(a[0]), int(b[0]))
		}
		a, b = a[1:], b[1:]
	}
	return compareInt(len(a), len(b))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits splits s after its leading run of digits.
func digits(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func compareInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
