package syncer

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
)

// BenchmarkSyncerCosts measures what each step of replicating a key costs
// the server that runs it, on two servers of one group with nothing else
// running: a peer holding 25,000 keys of 10 members each, journalled, and
// the local server. One op is one key, in calls of 1,000 keys as a pass
// makes them; server-µs/key is the server's CPU time per key.
//
//   - changes: the peer reads journal entries with their cardinality and
//     echo flags;
//   - fetch-near: the peer checks a key's nearest checkpoint and returns
//     the 2 members above it, its newest score and a fresh count;
//   - fetch-whole: the peer returns a key's 10 members (a key new to the
//     link);
//   - merge: the local server adds 1 member to a key and marks it with its
//     origin;
//   - write: a server adds 1 member to a key for a writer (a Recorder's
//     call): the cost of the point itself, for comparison.
func BenchmarkSyncerCosts(b *testing.B) {
	ctx := context.Background()
	servers := redistest.StartN(b, 2)
	peer, local := servers[0], servers[1]
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"n": {Addresses: redistest.Addrs(servers)}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	jk := journal.KeysOf(c.Options().Metrics.Journal)
	const nk, call = 25000, 1000
	names := make([]string, nk)
	for i := range names {
		names[i] = fmt.Sprintf("2026-12-05:web%d:m%d", i/100, i%100)
	}
	base := time.Now().Unix() - 60
	for n := range 10 {
		if _, err := journal.Merge(ctx, c, peer.Addr(), jk, journal.Origin{}, oneMemberEach(names, base+5*int64(n), "p")); err != nil {
			b.Fatal(err)
		}
	}
	cs := &clientServers{run: c, local: local.Addr(), peer: peer.Addr(), keys: jk}
	tag := local.Addr() + "@" + "token"

	// run calls f with the keys of each call of 1,000, b.N keys in all, and
	// reports the server's CPU time per key.
	run := func(b *testing.B, s *redistest.Server, f func(b *testing.B, n int, keys []string)) {
		cpu0, err := s.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for done := 0; done < b.N; {
			first := done % nk
			batch := names[first:min(first+call, nk, first+b.N-done)]
			f(b, done, batch)
			done += len(batch)
		}
		b.StopTimer()
		cpu, err := s.CPUTime()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu-cpu0)/float64(time.Microsecond)/float64(b.N), "server-µs/key")
	}
	fetch := func(b *testing.B, keys []string, req func(key string) fetchRequest) {
		reqs := make([]fetchRequest, len(keys))
		for i, k := range keys {
			reqs[i] = req(k)
		}
		if _, _, err := cs.fetch(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}

	b.Run("step=changes", func(b *testing.B) {
		// The journal holds every key once; read it page by page, again
		// from the start when it ends.
		since, after := 0.0, false
		run(b, peer, func(b *testing.B, _ int, keys []string) {
			out, _, _, _, err := cs.changes(ctx, since, after, len(keys), tag, nil)
			if err != nil {
				b.Fatal(err)
			}
			since, after = 0, false
			if len(out) == len(keys) {
				since, after = out[len(out)-1].Time, true
			}
		})
	})
	b.Run("step=fetch-near", func(b *testing.B) {
		near := checkpoint{below: float64(base + 40), count: 8} // 2 members above
		run(b, peer, func(b *testing.B, _ int, keys []string) {
			fetch(b, keys, func(k string) fetchRequest {
				return fetchRequest{key: k, mode: fetchNear, recount: 1, checks: []checkpoint{near}}
			})
		})
	})
	b.Run("step=fetch-whole", func(b *testing.B) {
		run(b, peer, func(b *testing.B, _ int, keys []string) {
			fetch(b, keys, func(k string) fetchRequest { return fetchRequest{key: k, mode: fetchFar, recount: 1} })
		})
	})
	b.Run("step=merge", func(b *testing.B) {
		from := journal.Origin{Server: peer.Addr(), Token: "token"}
		run(b, local, func(b *testing.B, n int, keys []string) {
			if _, err := journal.Merge(ctx, c, local.Addr(), jk, from, oneMemberEach(keys, base+100, "m"+strconv.Itoa(n))); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("step=write", func(b *testing.B) {
		run(b, local, func(b *testing.B, n int, keys []string) {
			if _, err := journal.Merge(ctx, c, local.Addr(), jk, journal.Origin{}, oneMemberEach(keys, base+100, "w"+strconv.Itoa(n))); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// oneMemberEach returns an update of one member for each key: "ts:value".
func oneMemberEach(keys []string, ts int64, value string) []journal.KeyMembers {
	member := strconv.FormatInt(ts, 10) + ":" + value
	out := make([]journal.KeyMembers, len(keys))
	for i, k := range keys {
		out[i] = journal.KeyMembers{Key: k, Members: []string{member}}
	}
	return out
}
