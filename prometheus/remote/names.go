package remote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"

	"github.com/redfed/federated/internal/metric"
	"github.com/redfed/federated/metrics"
)

// DefaultHostLabel is the default of Options.HostLabel.
const DefaultHostLabel = "instance"

// NoHost is the host of the series that have no host label.
const NoHost = "%"

// ErrBadLabels reports a series whose labels cannot be a redfed series:
// its host or metric name is too long once encoded, a label name or value
// is not valid UTF-8, or a label name is empty or repeated.
var ErrBadLabels = errors.New("remote: labels cannot be stored")

// ErrNotEncoded reports a host or metric name that SeriesOf does not make,
// so that it has no labels: one written by another writer, or not in the
// canonical form.
var ErrNotEncoded = errors.New("remote: not a name remote write makes")

const upperHex = "0123456789ABCDEF"

// EncodeHost returns the host of a series whose host label has the value
// v; "" (no label) gives NoHost. The error wraps ErrBadLabels.
func EncodeHost(v string) (string, error) {
	if v == "" {
		return NoHost, nil
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("%w: host label value %s is not valid UTF-8", ErrBadLabels, shortQuote(v))
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		size := 1
		escape := false
		if c := v[i]; c < utf8.RuneSelf {
			escape = c == '%' || c == ':' || c < 0x20 || c == 0x7f
		} else {
			_, size = utf8.DecodeRuneInString(v[i:])
			escape = metric.Unreadable(v[i:i+size]) != ""
		}
		for _, c := range []byte(v[i : i+size]) {
			if escape {
				b.WriteByte('%')
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
		i += size
	}
	h := b.String()
	if err := metric.ValidateHost(h); err != nil {
		return "", fmt.Errorf("%w: host label value: %w", ErrBadLabels, err)
	}
	return h, nil
}

// DecodeHost returns the value of the host label of the series under host
// h, "" for NoHost. A host that EncodeHost does not make is an error that
// wraps ErrNotEncoded.
func DecodeHost(h string) (string, error) {
	if h == NoHost {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(h); i++ {
		if h[i] != '%' {
			b.WriteByte(h[i])
			continue
		}
		hi, lo := -1, -1
		if i+2 < len(h) {
			hi, lo = strings.IndexByte(upperHex, h[i+1]), strings.IndexByte(upperHex, h[i+2])
		}
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("%w: host %q: '%%' at byte %d is not followed by two upper-case hex digits", ErrNotEncoded, h, i)
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	v := b.String()
	if again, err := EncodeHost(v); err != nil || again != h {
		return "", fmt.Errorf("%w: host %q is not the canonical encoding of %q", ErrNotEncoded, h, v)
	}
	return v, nil
}

// FormatMetric returns the metric name of a series with the labels ls,
// which must not hold the host label. It does not check the result's
// length; SeriesOf does.
func FormatMetric(ls labels.Labels) string {
	var b strings.Builder
	name := ls.Get(model.MetricNameLabel)
	open, first := false, true // open: '{' written; first: nothing in it yet
	if name != "" && model.IsValidLegacyMetricName(name) {
		b.WriteString(name)
	} else {
		b.WriteByte('{')
		open = true
		if name != "" {
			writeQuoted(&b, name)
			first = false
		}
	}
	ls.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel || l.Value == "" {
			return
		}
		if !open {
			b.WriteByte('{')
			open = true
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		if model.LabelName(l.Name).IsValidLegacy() {
			b.WriteString(l.Name)
		} else {
			writeQuoted(&b, l.Name)
		}
		b.WriteByte('=')
		writeQuoted(&b, l.Value)
	})
	if open {
		b.WriteByte('}')
	}
	return b.String()
}

// writeQuoted writes s in double quotes, escaped as FormatMetric says.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f || (r >= utf8.RuneSelf && metric.Unreadable(s[i:i+size]) != ""):
			if r > 0xffff {
				fmt.Fprintf(b, `\U%08x`, r)
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

// ParseMetric returns the labels of a metric name FormatMetric made, within
// redfed's limits on metric names. Any other name is an error that wraps
// ErrNotEncoded and says where it went wrong.
func ParseMetric(m string) (labels.Labels, error) {
	p := metricParser{s: m}
	ls, err := p.parse()
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("%w: metric %q: %s", ErrNotEncoded, m, err)
	}
	if again := FormatMetric(ls); again != m {
		return labels.EmptyLabels(), fmt.Errorf("%w: metric %q is not in canonical form (%q)", ErrNotEncoded, m, again)
	}
	if err := metric.ValidateMetric(m); err != nil {
		return labels.EmptyLabels(), fmt.Errorf("%w: %w", ErrNotEncoded, err)
	}
	return ls, nil
}

// metricParser reads a metric name in the form FormatMetric writes.
type metricParser struct {
	s   string
	pos int
	b   labels.ScratchBuilder
}

func (p *metricParser) parse() (labels.Labels, error) {
	if p.s == "" {
		return labels.EmptyLabels(), errors.New("empty")
	}
	if p.s[0] != '{' {
		end := strings.IndexByte(p.s, '{')
		if end < 0 {
			end = len(p.s)
		}
		p.b.Add(model.MetricNameLabel, p.s[:end])
		p.pos = end
		if p.pos == len(p.s) {
			return p.b.Labels(), nil
		}
	}
	p.pos++ // '{'
	for first := true; ; first = false {
		if first && p.peek() == '}' {
			break
		}
		name, quoted, err := p.name()
		if err != nil {
			return labels.EmptyLabels(), err
		}
		if p.peek() == '=' {
			p.pos++
			if p.peek() != '"' {
				return labels.EmptyLabels(), fmt.Errorf("want '\"' at byte %d", p.pos)
			}
			value, err := p.quoted()
			if err != nil {
				return labels.EmptyLabels(), err
			}
			p.b.Add(name, value)
		} else if first && quoted && p.s[0] == '{' {
			p.b.Add(model.MetricNameLabel, name)
		} else {
			return labels.EmptyLabels(), fmt.Errorf("want '=' at byte %d", p.pos)
		}
		if p.peek() != ',' {
			break
		}
		p.pos++
	}
	if p.peek() != '}' || p.pos != len(p.s)-1 {
		return labels.EmptyLabels(), fmt.Errorf("want '}' at the end, at byte %d", p.pos)
	}
	p.b.Sort()
	ls := p.b.Labels()
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return labels.EmptyLabels(), fmt.Errorf("label %q appears twice", name)
	}
	return ls, nil
}

// peek returns the byte at the position, or 0 at the end.
func (p *metricParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

// name reads a label name, or the metric name in quotes.
func (p *metricParser) name() (name string, quoted bool, err error) {
	if p.peek() == '"' {
		name, err = p.quoted()
		return name, true, err
	}
	start := p.pos
	for p.pos < len(p.s) && strings.IndexByte("=,{}\"", p.s[p.pos]) < 0 {
		p.pos++
	}
	if p.pos == start {
		return "", false, fmt.Errorf("want a label name at byte %d", start)
	}
	return p.s[start:p.pos], false, nil
}

// quoted reads a string in double quotes and undoes its escapes.
func (p *metricParser) quoted() (string, error) {
	start := p.pos
	p.pos++ // '"'
	var b strings.Builder
	for {
		if p.pos >= len(p.s) {
			return "", fmt.Errorf("string at byte %d has no closing quote", start)
		}
		c := p.s[p.pos]
		switch c {
		case '"':
			p.pos++
			return b.String(), nil
		case '\\':
			r, n, err := unescape(p.s[p.pos:])
			if err != nil {
				return "", fmt.Errorf("%s at byte %d", err, p.pos)
			}
			b.WriteRune(r)
			p.pos += n
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// unescape reads the escape sequence at the start of s and returns its
// character and its length.
func unescape(s string) (rune, int, error) {
	if len(s) < 2 {
		return 0, 0, errors.New("'\\' at the end")
	}
	switch s[1] {
	case '\\', '"':
		return rune(s[1]), 2, nil
	case 'n':
		return '\n', 2, nil
	case 'u', 'U':
		n := 4
		if s[1] == 'U' {
			n = 8
		}
		if len(s) < 2+n {
			return 0, 0, fmt.Errorf("\\%c wants %d hex digits", s[1], n)
		}
		var r rune
		for _, c := range []byte(s[2 : 2+n]) {
			d := strings.IndexByte("0123456789abcdef", c)
			if d < 0 {
				return 0, 0, fmt.Errorf("\\%c wants %d lower-case hex digits", s[1], n)
			}
			r = r<<4 | rune(d)
		}
		if !utf8.ValidRune(r) {
			return 0, 0, fmt.Errorf("\\%c%s is not a character", s[1], s[2:2+n])
		}
		return r, 2 + n, nil
	}
	return 0, 0, fmt.Errorf("unknown escape \\%c", s[1])
}

// labelsFit refuses, before anything is made of them, the labels of a
// series that cannot fit a redfed series: a host label value longer than
// a host may be, or other labels whose names and values alone are longer
// than a metric name may be. (Prometheus's labels refuse a value over
// 16 MiB with a panic, and an error that quoted such a value whole would
// cost many times its size.)
func labelsFit(ls []prompb.Label, hostLabel string) error {
	metricLen := 0
	for _, l := range ls {
		switch {
		case len(l.Name) > metric.MaxMetricLen:
			// Also with no value: Prometheus's labels take the name all
			// the same.
			return fmt.Errorf("%w: label name %s is more than %d bytes, the longest a metric name may be",
				ErrBadLabels, shortQuote(l.Name), metric.MaxMetricLen)
		case l.Name == hostLabel:
			if len(l.Value) > metric.MaxHostLen {
				return fmt.Errorf("%w: host label %s has a value of %d bytes, more than a host may be (%d)",
					ErrBadLabels, shortQuote(l.Name), len(l.Value), metric.MaxHostLen)
			}
			continue
		case l.Value == "":
			continue // no label
		case l.Name != model.MetricNameLabel:
			metricLen += len(l.Name)
		}
		metricLen += len(l.Value)
		if metricLen > metric.MaxMetricLen {
			return fmt.Errorf("%w: the labels up to %s hold more than %d bytes, the longest a metric name may be",
				ErrBadLabels, shortQuote(l.Name), metric.MaxMetricLen)
		}
	}
	return nil
}

// shortQuote quotes s for an error, cut to its first 64 bytes (at a
// character's start) when longer, with its length.
func shortQuote(s string) string {
	const most = 64
	if len(s) <= most {
		return strconv.Quote(s)
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:cut]), len(s))
}

// SeriesOf returns the redfed series of a Prometheus series with the
// labels ls, its host from the label hostLabel. The error wraps
// ErrBadLabels and says what is wrong.
func SeriesOf(ls labels.Labels, hostLabel string) (metrics.Series, error) {
	var err error
	ls.Range(func(l labels.Label) {
		switch {
		case err != nil:
		case l.Name == "":
			err = fmt.Errorf("%w: a label has an empty name", ErrBadLabels)
		case !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value):
			err = fmt.Errorf("%w: label %s=%s is not valid UTF-8", ErrBadLabels, shortQuote(l.Name), shortQuote(l.Value))
		}
	})
	if err != nil {
		return metrics.Series{}, err
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return metrics.Series{}, fmt.Errorf("%w: label %s appears twice", ErrBadLabels, shortQuote(name))
	}
	host, err := EncodeHost(ls.Get(hostLabel))
	if err != nil {
		return metrics.Series{}, err
	}
	m := FormatMetric(labels.NewBuilder(ls).Del(hostLabel).Labels())
	if err := metric.ValidateMetric(m); err != nil {
		return metrics.Series{}, fmt.Errorf("%w: %w", ErrBadLabels, err)
	}
	return metrics.Series{Host: host, Metric: m}, nil
}

// LabelsOf returns the labels of the Prometheus series that SeriesOf
// stores as s. A series that SeriesOf does not make is an error that wraps
// ErrNotEncoded.
func LabelsOf(s metrics.Series, hostLabel string) (labels.Labels, error) {
	v, err := DecodeHost(s.Host)
	if err != nil {
		return labels.EmptyLabels(), err
	}
	ls, err := ParseMetric(s.Metric)
	if err != nil {
		return labels.EmptyLabels(), err
	}
	if ls.Has(hostLabel) {
		return labels.EmptyLabels(), fmt.Errorf("%w: metric %q holds the host label %q", ErrNotEncoded, s.Metric, hostLabel)
	}
	if v == "" {
		return ls, nil
	}
	return labels.NewBuilder(ls).Set(hostLabel, v).Labels(), nil
}
