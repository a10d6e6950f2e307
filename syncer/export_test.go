package syncer

import "testing"

// SetMaxFetchMembers bounds the members one fetch call asks for until the
// test ends. Set it before the test starts its syncers.
func SetMaxFetchMembers(t testing.TB, n int64) {
	old := maxFetchMembers
	maxFetchMembers = n
	t.Cleanup(func() { maxFetchMembers = old })
}
