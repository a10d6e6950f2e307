package metrics

import "testing"

// SetDigestMembers bounds the members one digest call reads on a server
// until the test ends.
func SetDigestMembers(t testing.TB, n int64) {
	old := digestMembers
	digestMembers = n
	t.Cleanup(func() { digestMembers = old })
}

// DigestMembers returns the members one digest call reads at most.
func DigestMembers() int64 { return digestMembers }
