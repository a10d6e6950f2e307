package syncer

import "testing"

// SetMaxFetchMembers bounds the members one fetch call asks for until the
// test ends. Set it before the test starts its syncers.
func SetMaxFetchMembers(t testing.TB, n int64) {
	old := maxFetchMembers
	maxFetchMembers = n
	t.Cleanup(func() { maxFetchMembers = old })
}

// FetchedMembers returns how many members a reply of the fetch script
// holds, or -1 for a reply it cannot read.
func FetchedMembers(v []any) int {
	joined, _ := v[1].(string)
	rd := fetchReader{v: v, at: 2, joined: joined}
	n := 0
	for rd.at < len(v) {
		r, err := rd.next()
		if err != nil {
			return -1
		}
		n += len(r.members)
	}
	return n
}
