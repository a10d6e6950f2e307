package metrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Series whose hashes collide share a chain of the Recorder's table: each
// is found by its id, and evicting idle ones keeps the chain of the rest.
func TestSeriesTableChainsCollisions(t *testing.T) {
	r := &Recorder{series: make(map[uint64]*series), flushNo: 100}
	ids := []seriesID{{"web1", "cpu", 0}, {"web2", "cpu", 0}, {"web1", "mem", 0}, {"web1", "cpu", 86400}}
	for i, id := range ids {
		s := &series{id: id, next: r.series[7], lastFlush: 100}
		if i%2 == 1 {
			s.lastFlush = 10 // idle for 90 flushes
		}
		r.series[7] = s
	}
	for _, id := range ids {
		s := r.lookupLocked(id, 7)
		require.NotNil(t, s, "%v", id)
		assert.Equal(t, id, s.id)
	}
	assert.Nil(t, r.lookupLocked(seriesID{"web3", "cpu", 0}, 7))
	assert.Nil(t, r.lookupLocked(ids[0], 8), "another hash")

	r.evictLocked()
	for i, id := range ids {
		if i%2 == 1 {
			assert.Nil(t, r.lookupLocked(id, 7), "evicted: %v", id)
		} else {
			assert.NotNil(t, r.lookupLocked(id, 7), "kept: %v", id)
		}
	}
	r.flushNo = 1000
	r.evictLocked()
	assert.Empty(t, r.series, "a chain evicted whole leaves no entry")
}
