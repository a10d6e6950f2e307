package metrics

import (
	"testing"
	"time"
)

// SetDigestMembers bounds the members one digest call reads on a server
// until the test ends.
func SetDigestMembers(t testing.TB, n int64) {
	old := digestMembers
	digestMembers = n
	t.Cleanup(func() { digestMembers = old })
}

// DigestMembers returns the members one digest call reads at most.
func DigestMembers() int64 { return digestMembers }

// SetLatestAhead sets how far ahead of the reader's clock a point may be
// for Latest until the test ends.
func SetLatestAhead(t testing.TB, d time.Duration) {
	old := latestAhead
	latestAhead = d
	t.Cleanup(func() { latestAhead = old })
}
