package graphite

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/redfed/federated/internal/metric"
)

// DefaultTemplate maps collectd's write_graphite names with Prefix
// "collectd.": collectd.HOST.plugin-instance.type-instance becomes host
// HOST and metric plugin-instance.type-instance.
const DefaultTemplate = "collectd.host.metric*"

// ErrBadTemplate reports a template that Parse refuses.
var ErrBadTemplate = errors.New("graphite: bad template")

// segmentKind is what a template's segment does with the path's segment
// at its place.
type segmentKind int

const (
	literal    segmentKind = iota // must be this word
	anyWord                       // "*": any word, dropped
	hostPart                      // "host": a part of the host
	metricPart                    // "metric": a part of the metric name
	metricRest                    // "metric*", last: this and every later word, parts of the metric name
)

type segment struct {
	kind segmentKind
	word string // the word a literal must be
}

// Template maps a Graphite path, words separated by dots, to a host and a
// metric name. It is itself words separated by dots, one for each word of
// the path, in order:
//
//   - host: the path's word is part of the host;
//   - metric: the path's word is part of the metric name;
//   - metric*: last only: this word and all that follow, one at least, are
//     part of the metric name;
//   - *: any word, left out;
//   - any other word: the path's word must be exactly this one.
//
// The parts of the host, and those of the metric name, are joined with
// dots in their order. A path with another number of words (fewer than the
// template's with metric*), an empty word, a literal word that differs, or
// a host or metric name that redfed refuses (a host with ':', for one) is
// not mapped. The zero Template is not usable: build one with Parse.
type Template struct {
	text     string
	segments []segment
	rest     bool // the last segment is metric*
}

// Parse returns the template that text spells, or an error wrapping
// ErrBadTemplate that says what is wrong with it: it needs at least one
// host word and one metric or metric* word, metric* only last, and no
// empty word, white space, ':' or ';', nor '*' but in "*" and "metric*".
func Parse(text string) (*Template, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrBadTemplate, text, fmt.Sprintf(format, args...))
	}
	if text == "" {
		return nil, bad("empty; want words separated by dots, such as %q", DefaultTemplate)
	}
	words := strings.Split(text, ".")
	t := &Template{text: text, segments: make([]segment, len(words))}
	var hosts, metrics int
	for i, w := range words {
		switch {
		case w == "":
			return nil, bad("word %d is empty", i+1)
		case w == "host":
			t.segments[i].kind = hostPart
			hosts++
		case w == "metric":
			t.segments[i].kind = metricPart
			metrics++
		case w == "metric*" && i != len(words)-1:
			return nil, bad("metric* is word %d; it must be the last", i+1)
		case w == "metric*":
			t.segments[i].kind = metricRest
			t.rest = true
			metrics++
		case w == "*":
			t.segments[i].kind = anyWord
		case strings.Contains(w, "*"):
			return nil, bad("word %d %q: '*' stands alone or in metric*", i+1, w)
		case strings.ContainsAny(w, ":;") || strings.ContainsFunc(w, unicode.IsSpace):
			return nil, bad("word %d %q holds white space, ':' or ';'", i+1, w)
		default:
			t.segments[i] = segment{kind: literal, word: w}
		}
	}
	switch {
	case hosts == 0:
		return nil, bad("no host word: which word of a path is the host?")
	case metrics == 0:
		return nil, bad("no metric or metric* word: which words of a path are the metric name?")
	}
	return t, nil
}

// String returns the text the template was parsed from.
func (t *Template) String() string { return t.text }

// Map returns the host and metric name of path, or an error wrapping
// ErrUnmapped that says why there are none.
func (t *Template) Map(path string) (host, metricName string, err error) {
	unmapped := func(format string, args ...any) error {
		return fmt.Errorf("%w: path %s: %s", ErrUnmapped, quote(path), fmt.Sprintf(format, args...))
	}
	if strings.Contains(path, ";") {
		return "", "", unmapped("tagged paths (name;tag=value) are not supported")
	}
	words := strings.Split(path, ".")
	switch n := len(t.segments); {
	case t.rest && len(words) < n:
		return "", "", unmapped("%d words, want %d or more for template %q", len(words), n, t.text)
	case !t.rest && len(words) != n:
		return "", "", unmapped("%d words, want %d for template %q", len(words), n, t.text)
	}
	var hostWords, metricWords []string
	for i, w := range words {
		if w == "" {
			return "", "", unmapped("word %d is empty", i+1)
		}
		seg := t.segments[min(i, len(t.segments)-1)]
		switch seg.kind {
		case literal:
			if w != seg.word {
				return "", "", unmapped("word %d is %q, want %q (template %q)", i+1, w, seg.word, t.text)
			}
		case hostPart:
			hostWords = append(hostWords, w)
		case metricPart, metricRest:
			metricWords = append(metricWords, w)
		}
	}
	// Cloned: a single word would be a slice of the line, and the
	// Recorder keeps the names as long as it buffers their series.
	host, metricName = strings.Clone(strings.Join(hostWords, ".")), strings.Clone(strings.Join(metricWords, "."))
	if err := metric.ValidateHost(host); err != nil {
		return "", "", fmt.Errorf("%w: path %s: %w", ErrUnmapped, quote(path), err)
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return "", "", fmt.Errorf("%w: path %s: %w", ErrUnmapped, quote(path), err)
	}
	return host, metricName, nil
}
