package remote_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/metrics"
	"github.com/redfed/federated/prometheus/remote"
)

func TestSeriesOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels labels.Labels
		want   metrics.Series
	}{
		{"name only", labels.FromStrings("__name__", "up"), metrics.Series{Host: "%", Metric: "up"}},
		{"instance with a port", labels.FromStrings("__name__", "up", "instance", "localhost:9090", "job", "prometheus"),
			metrics.Series{Host: "localhost%3A9090", Metric: `up{job="prometheus"}`}},
		{"sorted labels", labels.FromStrings("__name__", "http_requests_total", "instance", "web1", "method", "GET", "code", "200"),
			metrics.Series{Host: "web1", Metric: `http_requests_total{code="200",method="GET"}`}},
		{"escapes of the text format", labels.FromStrings("__name__", "x", "instance", "a", "path", "C:\\dir \"q\"\nnext"),
			metrics.Series{Host: "a", Metric: `x{path="C:\\dir \"q\"\nnext"}`}},
		{"other controls and invisible characters", labels.FromStrings("__name__", "x", "instance", "a", "v", "tab\there\u200b\U000e0001"),
			metrics.Series{Host: "a", Metric: `x{v="tab\u0009here\u200b\U000e0001"}`}},
		{"percent and controls in the host", labels.FromStrings("__name__", "x", "instance", "50%\tb\u00a0c é"),
			metrics.Series{Host: "50%25%09b%C2%A0c é", Metric: "x"}},
		{"UTF-8 names", labels.FromStrings("__name__", "my.metric", "instance", "h", "label.x", "v", "ok", "1"),
			metrics.Series{Host: "h", Metric: `{"my.metric","label.x"="v",ok="1"}`}},
		{"no name", labels.FromStrings("instance", "h", "job", "j"), metrics.Series{Host: "h", Metric: `{job="j"}`}},
		{"nothing but the host", labels.FromStrings("instance", "h"), metrics.Series{Host: "h", Metric: "{}"}},
		{"empty values are no label", labels.FromStrings("__name__", "up", "instance", "", "job", ""), metrics.Series{Host: "%", Metric: "up"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := remote.SeriesOf(tc.labels, "instance")
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			back, err := remote.LabelsOf(got, "instance")
			require.NoError(t, err)
			assert.Equal(t, withoutEmpty(tc.labels).String(), back.String(), "round trip")
		})
	}
}

// withoutEmpty drops the labels with an empty value, which Prometheus
// treats as absent.
func withoutEmpty(ls labels.Labels) labels.Labels {
	b := labels.NewBuilder(labels.EmptyLabels())
	ls.Range(func(l labels.Label) {
		if l.Value != "" {
			b.Set(l.Name, l.Value)
		}
	})
	return b.Labels()
}

func TestSeriesOfHostLabel(t *testing.T) {
	ls := labels.FromStrings("__name__", "up", "instance", "a:1", "host", "web1")
	got, err := remote.SeriesOf(ls, "host")
	require.NoError(t, err)
	assert.Equal(t, metrics.Series{Host: "web1", Metric: `up{instance="a:1"}`}, got)
	back, err := remote.LabelsOf(got, "host")
	require.NoError(t, err)
	assert.Equal(t, ls.String(), back.String())
}

func TestSeriesOfRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		labels labels.Labels
		want   string
	}{
		{"long host", labels.FromStrings("__name__", "up", "instance", strings.Repeat("a:", 100)), "longer than the limit of 256"},
		{"long metric", labels.FromStrings("__name__", "up", "v", strings.Repeat("x", 510)), "longer than the limit of 512"},
		{"invalid UTF-8", labels.FromStrings("__name__", "up", "v", "\xff"), "not valid UTF-8"},
		{"invalid UTF-8 host", labels.FromStrings("__name__", "up", "instance", "\xff"), "not valid UTF-8"},
		{"empty label name", labels.FromStrings("__name__", "up", "", "v"), "empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := remote.SeriesOf(tc.labels, "instance")
			require.ErrorIs(t, err, remote.ErrBadLabels)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// Names that remote write does not make have no labels: Perl writers'
// names, and other spellings of the same labels, so that one series has
// one name.
func TestLabelsOfRefuses(t *testing.T) {
	for _, tc := range []metrics.Series{
		{Host: "web1.sfo", Metric: "cpu.user"},                  // a Perl writer's
		{Host: "a%3a1", Metric: "up"},                           // lower-case hex
		{Host: "a%3", Metric: "up"},                             // cut short
		{Host: "a%41", Metric: "up"},                            // 'A' needs no escape
		{Host: "a", Metric: `up{b="1",a="2"}`},                  // not sorted
		{Host: "a", Metric: `up{a="1", b="2"}`},                 // a space
		{Host: "a", Metric: `up{}`},                             // empty braces
		{Host: "a", Metric: `up{a=""}`},                         // an empty value
		{Host: "a", Metric: `up{a="1",a="2"}`},                  // a label twice
		{Host: "a", Metric: `up{instance="x"}`},                 // the host label
		{Host: "a", Metric: `{"up"}`},                           // a classic name in quotes
		{Host: "a", Metric: `up{a="\t"}`},                       // an escape the text format lacks
		{Host: "a", Metric: `up{a="\u0041"}`},                   // an escape of what needs none
		{Host: "a", Metric: `up{a="x`},                          // no closing quote
		{Host: "a", Metric: `up{a="x"}y`},                       // more after the end
		{Host: "a", Metric: `{"a"="1","m"}`},                    // the name after a label
		{Host: "a", Metric: `up{a="\ud800"}`},                   // a surrogate
		{Host: "a", Metric: `up{"a"="1"}`},                      // a classic label name in quotes
		{Host: "a", Metric: "up{a=\"\x01\"}"},                   // a raw control
		{Host: "a", Metric: strings.Repeat("x", 300) + "{a=\""}, // nonsense
		{Host: "a", Metric: strings.Repeat("x", 513)},           // too long to be stored
	} {
		t.Run(tc.Host+" "+tc.Metric, func(t *testing.T) {
			_, err := remote.LabelsOf(tc, "instance")
			require.ErrorIs(t, err, remote.ErrNotEncoded)
		})
	}
}

// Every label set SeriesOf takes comes back from LabelsOf as it was, and a
// name LabelsOf takes is the one SeriesOf makes of its labels.
func FuzzSeriesRoundTrip(f *testing.F) {
	f.Add("up", "localhost:9090", "job", "prometheus", "le", "0.5")
	f.Add("my.metric", "", "a\"b", "c\\d\ne", "x", "\u200b\t%")
	f.Add("", "%", "__name__x", "}", "{", "=,")
	f.Fuzz(func(t *testing.T, name, instance, l1, v1, l2, v2 string) {
		b := labels.NewBuilder(labels.EmptyLabels())
		for _, l := range [][2]string{{"__name__", name}, {"instance", instance}, {l1, v1}, {l2, v2}} {
			if l[0] != "" && l[1] != "" {
				b.Set(l[0], l[1])
			}
		}
		ls := b.Labels()
		s, err := remote.SeriesOf(ls, "instance")
		if err != nil {
			require.ErrorIs(t, err, remote.ErrBadLabels)
			return
		}
		back, err := remote.LabelsOf(s, "instance")
		require.NoError(t, err, "series %+v of %s", s, ls)
		require.Equal(t, ls.String(), back.String())
	})
}

// A name that LabelsOf takes is one SeriesOf makes: one series, one name.
func FuzzLabelsOf(f *testing.F) {
	f.Add("localhost%3A9090", `up{job="prometheus"}`)
	f.Add("%", `{"my.metric","label.x"="v\n\u200b"}`)
	f.Add("a%25", `x{a="\\\""}`)
	f.Fuzz(func(t *testing.T, host, metricName string) {
		s := metrics.Series{Host: host, Metric: metricName}
		ls, err := remote.LabelsOf(s, "instance")
		if err != nil {
			require.ErrorIs(t, err, remote.ErrNotEncoded)
			return
		}
		require.True(t, utf8.ValidString(ls.String()))
		again, err := remote.SeriesOf(ls, "instance")
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}
