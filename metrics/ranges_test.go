package metrics

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The servers' bounds, together, split every score once, each score
// bounding one range however often, by whom and however spelt it comes.
func TestRangesBetween(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bounds map[string][]string
		want   []scoreRange
	}{
		{"none", nil, []scoreRange{{"-inf", "+inf"}}},
		{"one server", map[string][]string{"a": {"10", "20"}},
			[]scoreRange{{"-inf", "10"}, {"10", "20"}, {"20", "+inf"}}},
		{"a score given twice", map[string][]string{"a": {"10", "10", "20"}},
			[]scoreRange{{"-inf", "10"}, {"10", "20"}, {"20", "+inf"}}},
		{"two servers, interleaved", map[string][]string{"a": {"10", "30"}, "b": {"5", "20", "30"}},
			[]scoreRange{{"-inf", "5"}, {"5", "10"}, {"10", "20"}, {"20", "30"}, {"30", "+inf"}}},
		{"one score in two spellings", map[string][]string{"a": {"1e+20"}, "b": {"100000000000000000000"}},
			[]scoreRange{{"-inf", "1e+20"}, {"1e+20", "+inf"}}},
		{"zero and negative zero", map[string][]string{"a": {"0"}, "b": {"-0"}},
			[]scoreRange{{"-inf", "0"}, {"0", "+inf"}}},
		{"fractions and negatives", map[string][]string{"a": {"-1.5", "0.25"}},
			[]scoreRange{{"-inf", "-1.5"}, {"-1.5", "0.25"}, {"0.25", "+inf"}}},
		{"-inf bounds nothing new", map[string][]string{"a": {"-inf", "3"}},
			[]scoreRange{{"-inf", "3"}, {"3", "+inf"}}},
		{"inf bounds the members at +inf", map[string][]string{"a": {"3", "inf"}},
			[]scoreRange{{"-inf", "3"}, {"3", "inf"}, {"inf", "+inf"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rangesBetween("k", tc.bounds)
			require.NoError(t, err)
			// By value: either spelling of one score bounds its range.
			assert.Equal(t, values(t, tc.want), values(t, got))
			for i := 1; i < len(got); i++ {
				assert.Equal(t, got[i-1].hi, got[i].lo, "range %d begins where the one before ends", i)
			}
		})
	}
}

// values returns the bounds of ranges as numbers.
func values(t *testing.T, ranges []scoreRange) [][2]float64 {
	t.Helper()
	out := make([][2]float64, len(ranges))
	for i, r := range ranges {
		for j, b := range []string{r.lo, r.hi} {
			v, err := strconv.ParseFloat(b, 64)
			require.NoError(t, err)
			out[i][j] = v
		}
	}
	return out
}

// A bound that does not read as a score is an error that names it, its
// server and the key.
func TestRangesBetweenRefusesWhatIsNotAScore(t *testing.T) {
	_, err := rangesBetween("2026-12-06:web1:cpu", map[string][]string{"127.0.0.1:6379": {"10", "ten"}})
	require.Error(t, err)
	for _, want := range []string{"127.0.0.1:6379", "2026-12-06:web1:cpu", `"ten"`} {
		assert.Contains(t, err.Error(), want)
	}
}
