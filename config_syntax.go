package federated

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlErrorLine matches the "yaml: line N: " that begins the YAML parser's
// errors, which it may leave out.
var yamlErrorLine = regexp.MustCompile(`^yaml: (?:line \d+: )?`)

// syntaxError words the YAML parser's refusal of data at the line of the
// problem. The parser names the line where the construct it was reading
// began (the top mapping, for a key indented one space too few twenty
// lines down), so the line is found again: it is the shortest run of
// first lines that the parser refuses with the same problem.
func syntaxError(data []byte, err error) error {
	problem := yamlErrorLine.ReplaceAllString(err.Error(), "")
	ends := lineEnds(data)
	same := func(n int) bool {
		_, err := firstDocument(data[:ends[n-1]])
		return err != nil && yamlErrorLine.ReplaceAllString(err.Error(), "") == problem
	}
	// The whole document fails; find the fewest lines that do alike.
	lo, hi := 1, len(ends)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if same(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	start := 0
	if lo > 1 {
		start = ends[lo-2]
	}
	line := data[start:ends[lo-1]]
	return fmt.Errorf("%w: not YAML: %s%s (line %d)", ErrInvalidConfig, unnamedAnchor(problem), syntaxHint(problem, line), lo)
}

// yamlAnchorNamed matches the anchor the YAML parser names in its refusal
// of an alias to no anchor.
var yamlAnchorNamed = regexp.MustCompile(`unknown anchor '.*' referenced`)

// unnamedAnchor leaves out of problem the name of an alias's anchor: an
// unquoted password that begins with '*' is an alias to YAML, its name the
// rest of the password.
func unnamedAnchor(problem string) string {
	return yamlAnchorNamed.ReplaceAllString(problem,
		"an alias (*name) to no anchor; a value that begins with '*' is an alias unless quoted")
}

// lineEnds returns the offset just past each line of data, its newline
// included; a last line without one ends at len(data).
func lineEnds(data []byte) []int {
	var ends []int
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] < len(data) {
		ends = append(ends, len(data))
	}
	return ends
}

// syntaxHint says what usually causes problem on line.
func syntaxHint(problem string, line []byte) string {
	indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
	switch {
	case bytes.IndexByte(indent, '\t') >= 0:
		return ": a tab indents this line; YAML indents with spaces"
	case strings.Contains(problem, "did not find expected key"),
		strings.Contains(problem, "mapping values are not allowed"),
		strings.Contains(problem, "did not find expected '-' indicator"):
		return ": is this line indented as the keys beside it?"
	}
	return ""
}

// firstDocument parses the first YAML document of data.
func firstDocument(data []byte) (*yaml.Node, error) {
	var root yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root)
	if errors.Is(err, io.EOF) {
		return nil, err
	}
	return &root, err
}

// suggestFields returns the fields of a mapping that a key written as name
// may have meant: those that differ from it by at most two letters, or
// that hold it whole ("timeout" for command_timeout), sorted.
func suggestFields(name string, fields []string) []string {
	var out []string
	for _, f := range fields {
		if f != name && (len(name) >= 4 && strings.Contains(f, name) || editDistance(f, name) <= 2) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
