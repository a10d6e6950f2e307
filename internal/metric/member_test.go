package metric

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAppendMemberCanonical(t *testing.T) {
	tests := []struct {
		ts, value float64
		want      string
	}{
		{1290000000, 0.5, "1290000000:0.5"},
		{1290000000, 12, "1290000000:12"},
		{1290000000.25, -3e-5, "1290000000.25:-3e-05"},
		{1764075600.123456, 1e21, "1764075600.123456:1e+21"},
		{1764075600, 123456789, "1764075600:1.23456789e+08"},
		{1764075600, 0.1, "1764075600:0.1"},
		{1764075600, 1.0 / 3, "1764075600:0.3333333333333333"},
		{0, 0, "0:0"},
		{math.Copysign(0, -1), math.Copysign(0, -1), "0:0"},
		{1e-7, math.MaxFloat64, "0.0000001:1.7976931348623157e+308"},
		{math.Nextafter(maxTimestamp, 0), -math.SmallestNonzeroFloat64, "253402300799.99997:-5e-324"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := string(AppendMember(nil, tt.ts, tt.value))
			assert.Equal(t, tt.want, got, "AppendMember(%v, %v): got %q, want %q", tt.ts, tt.value, got, tt.want)
			formatted, err := FormatMember(tt.ts, tt.value)
			require.NoError(t, err)
			assert.Equal(t, tt.want, formatted, "FormatMember")
			ts, value, err := ParseMember(got)
			require.NoError(t, err)
			assert.Equal(t, tt.ts, ts, "timestamp round trip: got %v, want %v", ts, tt.ts)
			assert.Equal(t, tt.value, value, "value round trip: got %v, want %v", value, tt.value)
		})
	}
}

func TestAppendMemberMatchesReference(t *testing.T) {
	// The whole-number shortcut must print exactly what AppendFloat would,
	// around every edge where it starts or stops applying.
	var edges []float64
	for _, e := range []float64{0, 1, 999_999, 1e6, 1<<53 - 1, 1 << 53, maxTimestamp, 1290000000} {
		for _, x := range []float64{e, -e, math.Nextafter(e, math.Inf(1)), math.Nextafter(e, math.Inf(-1)),
			-math.Nextafter(e, math.Inf(1)), e + 0.5, e - 0.5, e + 1, e - 1} {
			edges = append(edges, x)
		}
	}
	edges = append(edges, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300)
	for _, ts := range edges {
		for _, value := range edges {
			got, want := string(AppendMember(nil, ts, value)), referenceMember(ts, value)
			if got != want {
				t.Errorf("AppendMember(%v, %v) = %q, want %q", ts, value, got, want)
			}
		}
	}
}

func TestFormatMemberRejects(t *testing.T) {
	tests := []struct {
		ts, value float64
		want      error
		named     string
	}{
		{-1, 1, ErrBadTimestamp, "-1"},
		{math.NaN(), 1, ErrBadTimestamp, "NaN"},
		{maxTimestamp, 1, ErrBadTimestamp, "2.534023008e+11"},
		{1290000000, math.NaN(), ErrBadValue, "NaN"},
		{1290000000, math.Inf(1), ErrBadValue, "+Inf"},
		{1290000000, math.Inf(-1), ErrBadValue, "-Inf"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v:%v", tt.ts, tt.value), func(t *testing.T) {
			got, err := FormatMember(tt.ts, tt.value)
			require.ErrorIs(t, err, tt.want, "FormatMember(%v, %v): got %q, %v", tt.ts, tt.value, got, err)
			assert.Empty(t, got)
			assert.Contains(t, err.Error(), tt.named, "error should name the value")
		})
	}
}

func TestParseMemberPerl(t *testing.T) {
	// Members as the Perl writers put them: Perl prints numbers with %.15g
	// and sometimes a sign, an exponent or a bare fraction slips in.
	tests := []struct {
		in        string
		ts, value float64
	}{
		{"1290000000:0.5", 1290000000, 0.5},
		{"1290000000:12", 1290000000, 12},
		{"1290000000.25:-3e-5", 1290000000.25, -3e-5},
		{"1290000000.25:-3e-05", 1290000000.25, -3e-5},
		{"1290000000:+7", 1290000000, 7},
		{"1290000000:-0", 1290000000, 0},
		{"1290000000:0", 1290000000, 0},
		{"1290000000:1E+21", 1290000000, 1e21},
		{"1290000000:1.5e300", 1290000000, 1.5e300},
		{"1290000000:.5", 1290000000, 0.5},
		{"1290000000:5.", 1290000000, 5},
		{"1290000000:00012", 1290000000, 12},
		{"1290000000:0e-400", 1290000000, 0},
		{"1290000000:-0.000e5", 1290000000, 0},
		{"1290000000:5e-324", 1290000000, 5e-324},
		{"1290000000:1e-310", 1290000000, 1e-310},
		{"0.0:1", 0, 1},
		{"1290000000.:1", 1290000000, 1},
		{"1.29e9:1", 1290000000, 1},
		{"+1290000000:1", 1290000000, 1},
		{"-0:1", 0, 1},
		{"0:1", 0, 1},
		{"1290000000.123456789:3.14159265358979", 1290000000.123456789, 3.14159265358979},
		{"253402300799:1", 253402300799, 1},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ts, value, err := ParseMember(tt.in)
			require.NoError(t, err, "ParseMember(%q)", tt.in)
			assert.Equal(t, tt.ts, ts, "timestamp: got %v, want %v", ts, tt.ts)
			assert.Equal(t, tt.value, value, "value: got %v, want %v", value, tt.value)
		})
	}
}

func TestParseMemberRejects(t *testing.T) {
	tests := []struct {
		in   string
		also error  // a second sentinel the error wraps, if any
		why  string // piece of the message saying what is wrong
	}{
		{"", nil, "no ':'"},
		{"1290000000", nil, "no ':'"},
		{"1290000000 0.5", nil, "no ':'"},
		{":0.5", nil, "empty timestamp"},
		{"1290000000:", nil, "empty value"},
		{":", nil, "empty timestamp"},
		{"1290000000:0.5:1", nil, "second ':' at byte 14"},
		{"1290000000::0.5", nil, "second ':' at byte 11"},
		{"1290000000:NaN", nil, `value has 'N' at byte 11`},
		{"1290000000:nan", nil, `value has 'n' at byte 11`},
		{"1290000000:-nan", nil, `value has 'n' at byte 12`},
		{"1290000000:inf", nil, `value has 'i' at byte 11`},
		{"1290000000:+Inf", nil, `value has 'I' at byte 12`},
		{"1290000000:-Infinity", nil, `value has 'I' at byte 12`},
		{"1290000000:infinity", nil, `value has 'i' at byte 11`},
		{"NaN:1", nil, `timestamp has 'N' at byte 0`},
		{"Inf:1", nil, `timestamp has 'I' at byte 0`},
		{"1290000000:0x1p3", nil, `value has 'x' at byte 12`},
		{"0x4CE3CE80:1", nil, `timestamp has 'x' at byte 1`},
		{"1290000000:1_000", nil, `value has '_' at byte 12`},
		{"1_290_000_000:1", nil, `timestamp has '_' at byte 1`},
		{" 1290000000:1", nil, `timestamp has ' ' at byte 0`},
		{"1290000000 :1", nil, `timestamp has ' ' at byte 10`},
		{"1290000000: 1", nil, `value has ' ' at byte 11`},
		{"1290000000:1 ", nil, `value has ' ' at byte 12`},
		{"1290000000:1\n", nil, `value has '\n' at byte 12`},
		{"1290000000\t:1", nil, `timestamp has '\t' at byte 10`},
		{"1290000000:1\x00", nil, `value has '\x00' at byte 12`},
		{"1290000000:１", nil, `value has '１' at byte 11`},
		{"1290000000:\xff", nil, `value has '�' at byte 11`},
		{"1290000000:1,5", nil, `value has ',' at byte 12`},
		{"1290000000:e5", nil, "value e5 is not a decimal number"},
		{"1290000000:1e", nil, "value 1e is not a decimal number"},
		{"1290000000:--1", nil, "value --1 is not a decimal number"},
		{"1290000000:1-", nil, "value 1- is not a decimal number"},
		{"1290000000:.", nil, "value . is not a decimal number"},
		{"1290000000:+", nil, "value + is not a decimal number"},
		{"1290000000:1.2.3", nil, "value 1.2.3 is not a decimal number"},
		{"1.2.3:1", nil, "timestamp 1.2.3 is not a decimal number"},
		{"1290000000:1e999", nil, "value 1e999 is out of float64 range"},
		{"1290000000:-1e309", nil, "value -1e309 is out of float64 range"},
		{"1e999:1", nil, "timestamp 1e999 is out of float64 range"},
		{"1290000000:1e-400", nil, "value 1e-400 is out of float64 range: too small, it is not 0 but would be read as 0"},
		{"1290000000:-1e-400", nil, "value -1e-400 is out of float64 range: too small"},
		{"1290000000:2e-324", nil, "value 2e-324 is out of float64 range: too small"},
		{"1290000000:0." + strings.Repeat("0", 400) + "1", nil, "is out of float64 range: too small"},
		{"1e-400:1", nil, "timestamp 1e-400 is out of float64 range: too small"},
		{"-1e-400:1", nil, "timestamp -1e-400 is out of float64 range: too small"},
		{"-1:1", ErrBadTimestamp, "timestamp -1: negative"},
		{"-1e-300:1", ErrBadTimestamp, "timestamp -1e-300: negative"},
		{"253402300800:1", ErrBadTimestamp, "timestamp 253402300800: in year 10000 or later"},
		{"1e300:1", ErrBadTimestamp, "timestamp 1e300: in year 10000 or later"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ts, value, err := ParseMember(tt.in)
			require.ErrorIs(t, err, ErrBadMember, "ParseMember(%q): got %v, %v, %v; want ErrBadMember", tt.in, ts, value, err)
			if tt.also != nil {
				assert.ErrorIs(t, err, tt.also, "ParseMember(%q) error should also wrap %v", tt.in, tt.also)
			}
			assert.Zero(t, ts, "a failed ParseMember should return 0")
			assert.Zero(t, value, "a failed ParseMember should return 0")
			assert.Contains(t, err.Error(), quote(tt.in), "error should quote the member")
			assert.Contains(t, err.Error(), tt.why, "error should say what is wrong")
		})
	}
}

func TestUnderflows(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"1e-400", true},
		{"-1e-400", true},
		{"+1E-400", true},
		{"2e-324", true},
		{".1e-330", true},
		{"0." + strings.Repeat("0", 400) + "1", true},
		{"0x1p-2000", true},
		{"0x_1p-2000", true},
		{"3e-324", false}, // rounds up to the smallest subnormal, 5e-324
		{"5e-324", false},
		{"1e-310", false},
		{"0", false},
		{"-0", false},
		{"0.000", false},
		{"00e-400", false},
		{"-0.0e+5", false},
		{"0x0p3", false},
		{"0x_0p-2000", false},
		{"1", false},
		{"1e400", false}, // overflow: ParseFloat's error says so
		{"NaN", false},
		{"abc", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got := Underflows(tt.text)
			assert.Equal(t, tt.want, got, "Underflows(%q): got %v, want %v", tt.text, got, tt.want)
		})
	}
}

func TestParseMembers(t *testing.T) {
	members := []string{"1290000000:0.5", "garbage", "1290000001:12", "1290000002:nan", "1290000003.25:-3e-5"}
	want := []Point{{1290000000, 0.5}, {1290000001, 12}, {1290000003.25, -3e-5}}

	got, malformed := ParseMembers(members, nil)
	assert.Equal(t, want, got, "points: got %v, want %v", got, want)
	assert.Equal(t, 2, malformed, "malformed: got %d, want 2", malformed)

	buf := make([]Point, 1, 16)
	buf[0] = Point{1, 1}
	got, _ = ParseMembers(members, buf)
	assert.Equal(t, append([]Point{{1, 1}}, want...), got, "ParseMembers appends to dst")

	got, malformed = ParseMembers(nil, buf[:0])
	assert.Empty(t, got)
	assert.Zero(t, malformed)

	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = ParseMembers(members[:1], buf[:0])
	})
	assert.Zero(t, allocs, "ParseMembers of good members into a slice with room: got %v allocations, want 0", allocs)
}

func TestMemberAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = AppendMember(buf[:0], 1764075600.123456, -3.25e-5)
	})
	assert.Zero(t, allocs, "AppendMember into a buffer with room: got %v allocations, want 0", allocs)

	for _, m := range []string{"1290000000:0.5", "1290000000.25:-3e-5", "1764075600.123456:1.7976931348623157e+308"} {
		allocs = testing.AllocsPerRun(1000, func() {
			_, _, _ = ParseMember(m)
		})
		assert.Zero(t, allocs, "ParseMember(%q): got %v allocations, want 0", m, allocs)
	}
}

// BenchmarkAppendMember compares AppendMember with fmt.
func BenchmarkAppendMember(b *testing.B) {
	buf := make([]byte, 0, 64)
	for _, c := range []struct {
		name      string
		ts, value float64
	}{
		{"whole", 1764075600, 12},
		{"fractions", 1764075600.123456, -3.25e-5},
	} {
		b.Run("AppendMember/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendMember(buf[:0], c.ts, c.value)
			}
		})
		b.Run("fmt.Appendf/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = fmt.Appendf(buf[:0], "%v:%v", c.ts, c.value)
			}
		})
	}
}

// BenchmarkParseMember compares ParseMember with a bare strings.Cut and two
// strconv.ParseFloat calls, which is what the checks cost on top of.
func BenchmarkParseMember(b *testing.B) {
	for _, m := range []string{"1290000000:12", "1764075600.123456:-3.25e-05"} {
		b.Run("ParseMember/"+m, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParseMember(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Cut+ParseFloat/"+m, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tsText, valueText, _ := strings.Cut(m, ":")
				if _, err := strconv.ParseFloat(tsText, 64); err != nil {
					b.Fatal(err)
				}
				if _, err := strconv.ParseFloat(valueText, 64); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
