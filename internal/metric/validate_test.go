package metric

import (
	"math"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateNamesAccept(t *testing.T) {
	tests := []struct {
		name   string
		host   string
		metric string
	}{
		{"plain", "web1.sfo", "cpu.user"},
		{"one byte", "a", "b"},
		{"space and punctuation", "web 1_(a)-b/c", "req latency{p99}=\"x\""},
		{"colons in metric", "web1", "redis:cmd:get:calls"},
		{"metric is a colon", "web1", ":"},
		{"UTF-8", "hôte-é", "température.°C.日本"},
		{"right-to-left script", "שרת-1", "טמפרטורה"},
		{"combining mark and emoji", "he\u0301te", "mood.😀\ufe0f"},
		{"replacement character", "h\ufffd", "m\ufffd"},
		{"at the limits", strings.Repeat("h", MaxHostLen), strings.Repeat("m", MaxMetricLen)},
		{"multibyte at the limits", strings.Repeat("é", MaxHostLen/2), strings.Repeat("日", MaxMetricLen/3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, ValidateHost(tt.host), "ValidateHost(%q)", tt.host)
			assert.NoError(t, ValidateMetric(tt.metric), "ValidateMetric(%q)", tt.metric)
		})
	}
}

// nameRejects are names neither a host nor a metric may have; why is a
// piece of the message that says what is wrong and where.
var nameRejects = []struct {
	name string
	in   string
	why  string
}{
	{"NUL", "web\x001", "control character U+0000 at byte 3"},
	{"newline", "web1\n", "control character U+000A at byte 4"},
	{"tab", "\tweb1", "control character U+0009 at byte 0"},
	{"CR", "a\rb", "control character U+000D at byte 1"},
	{"escape", "a\x1b[31m", "control character U+001B at byte 1"},
	{"DEL", "web\x7f", "control character U+007F at byte 3"},
	{"invalid UTF-8", "h\xc3", "invalid UTF-8 at byte 1"},
	{"lone continuation byte", "ab\x80cd", "invalid UTF-8 at byte 2"},
	{"overlong encoding", "a\xc0\xafb", "invalid UTF-8 at byte 1"},
	{"surrogate", "a\xed\xa0\x80", "invalid UTF-8 at byte 1"},
	{"bad byte after valid multibyte", "é\xff", "invalid UTF-8 at byte 2"},
	{"C1 control NEL", "web\u00851", "control character U+0085 at byte 3"},
	{"soft hyphen", "web\u00ad1", "invisible format character U+00AD at byte 3"},
	{"zero-width space", "web\u200b1", "invisible format character U+200B at byte 3"},
	{"zero-width joiner", "web\u200d1", "invisible format character U+200D at byte 3"},
	{"left-to-right mark", "web1\u200e", "invisible format character U+200E at byte 4"},
	{"right-to-left mark", "\u200fweb1", "invisible format character U+200F at byte 0"},
	{"right-to-left override", "web\u202e1bew", "invisible format character U+202E at byte 3"},
	{"left-to-right embedding", "é\u202aweb", "invisible format character U+202A at byte 2"},
	{"pop directional formatting", "web\u202c", "invisible format character U+202C at byte 3"},
	{"first strong isolate", "web\u2068", "invisible format character U+2068 at byte 3"},
	{"pop directional isolate", "web\u2069", "invisible format character U+2069 at byte 3"},
	{"word joiner", "web\u20601", "invisible format character U+2060 at byte 3"},
	{"byte order mark", "\ufeffweb1", "invisible format character U+FEFF at byte 0"},
	{"tag character", "web1\U000E0041", "invisible format character U+E0041 at byte 4"},
	{"line separator", "web\u20281", "line or paragraph separator U+2028 at byte 3"},
	{"paragraph separator", "web\u20291", "line or paragraph separator U+2029 at byte 3"},
	{"no-break space", "web\u00a01", "non-ASCII space U+00A0 at byte 3"},
	{"en quad", "web\u20001", "non-ASCII space U+2000 at byte 3"},
	{"narrow no-break space", "web\u202f1", "non-ASCII space U+202F at byte 3"},
	{"ideographic space", "web\u30001", "non-ASCII space U+3000 at byte 3"},
	{"first of two", "a\u200b\u00a0", "invisible format character U+200B at byte 1"},
}

func TestValidateHostRejects(t *testing.T) {
	tests := append([]struct {
		name string
		in   string
		why  string
	}{
		{"colon", "web1:6379", "contains ':' at byte 4"},
		{"leading colon", ":web1", "contains ':' at byte 0"},
		{"too long", strings.Repeat("h", MaxHostLen+1), "257 bytes, longer than the limit of 256"},
	}, nameRejects...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateHost(tt.in)
			require.ErrorIs(t, err, ErrBadHost, "ValidateHost(%q): got %v, want ErrBadHost", tt.in, err)
			assert.Contains(t, err.Error(), quote(tt.in), "error should quote the host")
			assert.Contains(t, err.Error(), tt.why, "error should say what and where")
			assert.NotErrorIs(t, err, ErrBadMetric)
		})
	}
	err := ValidateHost("")
	require.ErrorIs(t, err, ErrBadHost)
	assert.EqualError(t, err, "federated: bad host: empty host")
}

func TestValidateMetricRejects(t *testing.T) {
	tests := append([]struct {
		name string
		in   string
		why  string
	}{
		{"too long", strings.Repeat("m", MaxMetricLen+1), "513 bytes, longer than the limit of 512"},
		{"control after colon", "a:\x01", "control character U+0001 at byte 2"},
	}, nameRejects...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateMetric(tt.in)
			require.ErrorIs(t, err, ErrBadMetric, "ValidateMetric(%q): got %v, want ErrBadMetric", tt.in, err)
			assert.Contains(t, err.Error(), quote(tt.in), "error should quote the metric")
			assert.Contains(t, err.Error(), tt.why, "error should say what and where")
			assert.NotErrorIs(t, err, ErrBadHost)
		})
	}
	err := ValidateMetric("")
	require.ErrorIs(t, err, ErrBadMetric)
	assert.EqualError(t, err, "federated: bad metric name: empty metric name")
}

// Unreadable holds other names to the rule of host and metric names.
func TestUnreadable(t *testing.T) {
	for _, tt := range nameRejects {
		t.Run(tt.name, func(t *testing.T) {
			got := Unreadable(tt.in)
			assert.Contains(t, got, tt.why, "Unreadable(%q): got %q, want it to say %q", tt.in, got, tt.why)
		})
	}
	for _, s := range []string{"", "redis_1", "a:b", "journal:horizon", "web 1", "hôte", "שרת"} {
		assert.Empty(t, Unreadable(s), "Unreadable(%q): got a problem, want none", s)
	}
}

// Every character of the categories the rule names is refused, every other
// one of the first 64K code points allowed, so the rule is exactly the one
// ValidateHost documents.
func TestValidateHostRuleIsTheCategories(t *testing.T) {
	for r := rune(0); r <= 0xffff; r++ {
		if r == ':' || (r >= 0xd800 && r <= 0xdfff) { // ':' is a host's own rule; surrogates are not UTF-8
			continue
		}
		want := unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) || (unicode.Is(unicode.Zs, r) && r != ' ')
		err := ValidateHost("h" + string(r))
		if got := err != nil; got != want {
			t.Errorf("ValidateHost(\"h\" + U+%04X): refused %v, want %v (%v)", r, got, want, err)
		}
	}
}

func TestQuoteCutsLongValues(t *testing.T) {
	long := strings.Repeat("x", 5000)
	err := ValidateMetric(long)
	require.ErrorIs(t, err, ErrBadMetric)
	assert.Less(t, len(err.Error()), 1200, "a huge name should not make a huge message")
	assert.Contains(t, err.Error(), "(5000 bytes)", "got %q, want the full length noted", err)
}

func TestValidateValue(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -3e-5, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64} {
		assert.NoError(t, ValidateValue(v), "ValidateValue(%v)", v)
	}
	tests := []struct {
		in   float64
		want string
	}{
		{math.NaN(), "federated: bad value NaN: not a finite number"},
		{math.Inf(1), "federated: bad value +Inf: not a finite number"},
		{math.Inf(-1), "federated: bad value -Inf: not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := ValidateValue(tt.in)
			require.ErrorIs(t, err, ErrBadValue)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestValidateTimestamp(t *testing.T) {
	accept := []float64{0, math.Copysign(0, -1), 1e-9, 1290000000, 1290000000.25, 1764075600.123456, maxTimestamp - 1, math.Nextafter(maxTimestamp, 0)}
	for _, ts := range accept {
		assert.NoError(t, ValidateTimestamp(ts), "ValidateTimestamp(%v)", ts)
	}
	tests := []struct {
		in   float64
		want string
	}{
		{-1, "federated: bad timestamp -1: negative, before 1970-01-01"},
		{-1e-300, "federated: bad timestamp -1e-300: negative, before 1970-01-01"},
		{maxTimestamp, "federated: bad timestamp 2.534023008e+11: in year 10000 or later"},
		{1e300, "federated: bad timestamp 1e+300: in year 10000 or later"},
		{math.NaN(), "federated: bad timestamp NaN: not a finite number"},
		{math.Inf(1), "federated: bad timestamp +Inf: not a finite number"},
		{math.Inf(-1), "federated: bad timestamp -Inf: not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			err := ValidateTimestamp(tt.in)
			require.ErrorIs(t, err, ErrBadTimestamp)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestMaxTimestampIsYear10000(t *testing.T) {
	got := Time(maxTimestamp)
	assert.Equal(t, date(10000, 1, 1, 0), got, "maxTimestamp: got %v, want 10000-01-01", got)
	assert.Equal(t, "9999-12-31T23", Hour.Format(Time(math.Nextafter(maxTimestamp, 0))))
}

func TestValidateAllocs(t *testing.T) {
	host, metric := "web123.sfo", "req.latency.p99:GET"
	allocs := testing.AllocsPerRun(100, func() {
		_ = ValidateHost(host)
		_ = ValidateMetric(metric)
		_ = ValidateValue(0.5)
		_ = ValidateTimestamp(1290000000)
	})
	assert.Zero(t, allocs, "validating good input: got %v allocations, want 0", allocs)
}

func BenchmarkValidateHost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateHost("web123.sfo.example.com"); err != nil {
			b.Fatal(err)
		}
	}
}
