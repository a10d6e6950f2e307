package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A point goes to the span it lies in, the later one on the boundary of
// two, exactly: in floating point, a point 6,156 s into a range of 10,800 s
// cut in 5,000 spans (2,850 of 2.16 s) went to the span before.
func TestBucketOf(t *testing.T) {
	from := time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC)
	s := newSummarizer(from, from.Add(3*time.Hour), 10_000, 1)
	s.buckets = make([]bucket, 5_000)
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{
		{-time.Hour, 0},
		{0, 0},
		{2160*time.Millisecond - time.Nanosecond, 0},
		{2160 * time.Millisecond, 1},
		{6156 * time.Second, 2850},
		{6156*time.Second - time.Nanosecond, 2849},
		{3*time.Hour - time.Nanosecond, 4999},
		{3 * time.Hour, 4999},
		{4 * time.Hour, 4999},
	} {
		assert.Equal(t, tc.want, s.bucketOf(from.Add(tc.at)), "%v into the range", tc.at)
	}
}
