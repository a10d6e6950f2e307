package journal

import "testing"

func TestDropped(t *testing.T) {
	for _, tt := range []struct {
		period, horizon string
		want            bool
	}{
		{"2026-12-06", "", false},
		{"2026-12-06", "2026-12-07", true},
		{"2026-12-07", "2026-12-07", false},
		{"2026-12-08", "2026-12-07", false},
		{"2026-12-07T02", "2026-12-07T03", true},
		{"2026-12-07T03", "2026-12-07T03", false},
		// A day against an hour: dropped once it ended by the hour.
		{"2026-12-07", "2026-12-07T03", false},
		{"2026-12-07", "2026-12-07T00", false},
		{"2026-12-06", "2026-12-07T00", true},
		// An hour against a day: dropped when its day is before the day.
		{"2026-12-06T23", "2026-12-07", true},
		{"2026-12-07T00", "2026-12-07", false},
		{"2026-12-08T05", "2026-12-07", false},
		// What is not a period is never before one.
		{"user", "2026-12-07", false},
	} {
		if got := Dropped(tt.period, tt.horizon); got != tt.want {
			t.Errorf("Dropped(%q, %q) = %v, want %v", tt.period, tt.horizon, got, tt.want)
		}
	}
}
