package metric

import (
	"errors"
	"math"
	"strconv"
	"testing"
)

// The fuzz targets check properties that hold for any input: nothing
// panics, whatever parses formats back to itself (keys) or to a canonical
// form that parses to the same numbers (members), and every rejection wraps
// the right sentinel. Interesting inputs found by fuzzing live in
// testdata/fuzz/<FuzzName>/ and run with every go test.

func FuzzParseKey(f *testing.F) {
	for _, seed := range []string{
		"2026-11-25:web1.sfo:cpu.user",
		"2026-11-25T13:web1.sfo:cpu.user",
		"2026-11-25:db1:disk:/var:used",
		"2026-11-25:web1::",
		"2028-02-29:hôte:température",
		"2026-02-30:web1:cpu",
		"1969-12-31:web1:cpu",
		"9999-12-31T23:h:m",
		"2026-11-25T24:h:m",
		"2026-11-25::cpu",
		"2026-11-25:web1",
		"2026-11-25:we\x00b:cpu",
		"2026-11-25:web1:cpu\xff",
		"",
		":::",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, key string, hourly bool) {
		p := Day
		if hourly {
			p = Hour
		}
		start, host, metric, err := ParseKey(p, key)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("ParseKey(%v, %q): error %v does not wrap ErrBadKey", p, key, err)
			}
			return
		}
		if got := string(AppendKey(nil, p, start, host, metric)); got != key {
			t.Fatalf("ParseKey(%v, %q) = %v, %q, %q; AppendKey gives %q, want the key back",
				p, key, start, host, metric, got)
		}
		rebuilt, err := Key(p, start, host, metric)
		if err != nil || rebuilt != key {
			t.Fatalf("Key(%v, %v, %q, %q) = %q, %v; want %q, nil", p, start, host, metric, rebuilt, err, key)
		}
		if !p.Start(start).Equal(start) {
			t.Fatalf("ParseKey(%v, %q): start %v is not the start of a period", p, key, start)
		}
	})
}

func FuzzParseMember(f *testing.F) {
	for _, seed := range []string{
		"1290000000:0.5",
		"1290000000:12",
		"1290000000.25:-3e-5",
		"1290000000:+7",
		"1.29e9:.5",
		"0:-0",
		"1290000000:1e-400",
		"1290000000:1e999",
		"1290000000:NaN",
		"1290000000:-Infinity",
		"1290000000:0x1p3",
		"1290000000:1_0",
		"1290000000: 1",
		"-1:1",
		"253402300800:1",
		"1290000000:1:2",
		":",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, member string) {
		ts, value, err := ParseMember(member)
		if err != nil {
			if !errors.Is(err, ErrBadMember) {
				t.Fatalf("ParseMember(%q): error %v does not wrap ErrBadMember", member, err)
			}
			if ts != 0 || value != 0 {
				t.Fatalf("ParseMember(%q) failed but returned %v, %v", member, ts, value)
			}
			return
		}
		if err := ValidateTimestamp(ts); err != nil {
			t.Fatalf("ParseMember(%q) accepted timestamp %v: %v", member, ts, err)
		}
		if err := ValidateValue(value); err != nil {
			t.Fatalf("ParseMember(%q) accepted value %v: %v", member, value, err)
		}
		canonical, err := FormatMember(ts, value)
		if err != nil {
			t.Fatalf("FormatMember(%v, %v) of parsed %q: %v", ts, value, member, err)
		}
		ts2, value2, err := ParseMember(canonical)
		if err != nil || ts2 != ts || value2 != value {
			t.Fatalf("ParseMember(%q) = %v, %v; canonical %q parses to %v, %v, %v",
				member, ts, value, canonical, ts2, value2, err)
		}
		if again := string(AppendMember(nil, ts2, value2)); again != canonical {
			t.Fatalf("canonical form of %q is not stable: %q then %q", member, canonical, again)
		}
	})
}

func FuzzMemberRoundTrip(f *testing.F) {
	f.Add(1290000000.0, 0.5)
	f.Add(1290000000.25, -3e-5)
	f.Add(1764075600.123456, 1e21)
	f.Add(0.0, math.Copysign(0, -1))
	f.Add(1e-300, math.SmallestNonzeroFloat64)
	f.Add(math.Nextafter(maxTimestamp, 0), math.MaxFloat64)
	f.Add(-1.0, 1.0)
	f.Add(float64(maxTimestamp), 1.0)
	f.Add(math.NaN(), 1.0)
	f.Add(1290000000.0, math.Inf(-1))
	f.Fuzz(func(t *testing.T, ts, value float64) {
		checkMemberRoundTrip(t, ts, value)
		// Most random float64s are out of the timestamp range; fold ts
		// into it so the round trip of valid members gets fuzzed too.
		if folded := math.Mod(math.Abs(ts), maxTimestamp); !math.IsNaN(folded) {
			checkMemberRoundTrip(t, folded, value)
		}
	})
}

// checkMemberRoundTrip checks FormatMember and ParseMember on one sample.
func checkMemberRoundTrip(t *testing.T, ts, value float64) {
	t.Helper()
	if got, want := string(AppendMember(nil, ts, value)), referenceMember(ts, value); got != want {
		t.Fatalf("AppendMember(%v, %v) = %q, want %q", ts, value, got, want)
	}
	member, err := FormatMember(ts, value)
	switch {
	case ValidateTimestamp(ts) != nil:
		if !errors.Is(err, ErrBadTimestamp) {
			t.Fatalf("FormatMember(%v, %v) = %q, %v; want ErrBadTimestamp", ts, value, member, err)
		}
		return
	case ValidateValue(value) != nil:
		if !errors.Is(err, ErrBadValue) {
			t.Fatalf("FormatMember(%v, %v) = %q, %v; want ErrBadValue", ts, value, member, err)
		}
		return
	case err != nil:
		t.Fatalf("FormatMember(%v, %v): %v", ts, value, err)
	}
	gotTS, gotValue, err := ParseMember(member)
	if err != nil {
		t.Fatalf("ParseMember(FormatMember(%v, %v) = %q): %v", ts, value, member, err)
	}
	// == rather than bits: -0 formats as "0" on purpose.
	if gotTS != ts || gotValue != value {
		t.Fatalf("ParseMember(%q) = %v, %v; want %v, %v", member, gotTS, gotValue, ts, value)
	}
	// The period of a point follows from its whole second.
	whole := math.Floor(ts)
	if got, want := Day.Format(Time(ts)), Day.Format(Time(whole)); got != want {
		t.Fatalf("Time(%v) is in day %s, Time(%v) in %s", ts, got, whole, want)
	}
}

// referenceMember is the member schema's definition of the canonical form,
// without AppendMember's shortcuts.
func referenceMember(ts, value float64) string {
	if ts == 0 {
		ts = 0 // turns -0 into 0
	}
	if value == 0 {
		value = 0
	}
	return strconv.FormatFloat(ts, 'f', -1, 64) + ":" + strconv.FormatFloat(value, 'g', -1, 64)
}
