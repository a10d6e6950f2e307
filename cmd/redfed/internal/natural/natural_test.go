package natural

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"cache3", "cache27", -1},
		{"cache27", "cache3", 1},
		{"cache3", "cache3", 0},
		{"cache3.sfo", "cache3.lax", 1},
		{"web9", "web10.sfo", -1},
		{"a01", "a1", 1},
		{"a1", "a01", -1},
		{"a001", "a01", 1},
		{"a1b2", "a1b10", -1},
		{"", "a", -1},
		{"a", "a1", -1},
		{"99999999999999999999999", "100000000000000000000000", -1},
		{"b", "a10", 1},
	} {
		if got := Compare(tc.a, tc.b); got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSort(t *testing.T) {
	want := []string{"cache1", "cache2", "cache3", "cache10", "cache27", "cache100.lax", "cache100.sfo", "web1"}
	got := slices.Clone(want)
	rand.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
	slices.SortFunc(got, Compare)
	if !slices.Equal(got, want) {
		t.Errorf("sorted: got %q, want %q", got, want)
	}
}

// FuzzCompare checks that Compare is antisymmetric and agrees with string
// equality, as a sort needs.
func FuzzCompare(f *testing.F) {
	f.Add("cache3", "cache27")
	f.Add("a01", "a1")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if (ab == 0) != (a == b) {
			t.Fatalf("Compare(%q, %q) = %d for strings that are equal: %v", a, b, ab, a == b)
		}
	})
}
