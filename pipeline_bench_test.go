package federated_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
)

// BenchmarkPipelineSet sends batches of 20 and of 100 SETs over 8 servers
// through a redfed pipeline, and through raw go-redis pipelines with the
// same keys sharded by hand, on the same servers in the same run: one
// pipeline per server, reused from batch to batch, all in flight at once,
// the last from the calling goroutine (the best a caller can do with
// go-redis alone). One op is one batch.
func BenchmarkPipelineSet(b *testing.B) {
	servers := redistest.StartN(b, 8)
	c := newClient(b, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	raw := make([]*redis.Client, len(servers))
	index := make(map[string]int)
	for i, s := range servers {
		raw[i] = redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
		b.Cleanup(func() { _ = raw[i].Close() })
		index[s.Addr()] = i
	}

	for _, batch := range []int{20, 100} {
		// 100 batches of keys, and the same keys grouped by server for the
		// raw pipelines.
		keys := make([][]string, 100)
		byServer := make([][][]string, len(keys))
		for i := range keys {
			byServer[i] = make([][]string, len(servers))
			for j := range batch {
				k := fmt.Sprintf("2026-11-25:web%d.sfo:m%d", i, j)
				keys[i] = append(keys[i], k)
				addr, err := c.NodeToServer(c.KeyToNode(k))
				if err != nil {
					b.Fatal(err)
				}
				byServer[i][index[addr]] = append(byServer[i][index[addr]], k)
			}
		}
		// Write every key once, so that neither contender pays for
		// creating them.
		warm := c.Chain()
		for _, ks := range keys {
			for _, k := range ks {
				warm.Set(k, "0")
			}
		}
		if err := warm.Poll(ctx); err != nil {
			b.Fatal(err)
		}

		b.Run(fmt.Sprintf("batch=%d/impl=redfed", batch), func(b *testing.B) {
			b.ReportAllocs()
			p := c.Chain()
			for i := 0; b.Loop(); i++ {
				for _, k := range keys[i%len(keys)] {
					p.Set(k, "1")
				}
				if err := p.Poll(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "cmds/s")
		})

		b.Run(fmt.Sprintf("batch=%d/impl=go-redis-raw", batch), func(b *testing.B) {
			pipes := make([]redis.Pipeliner, len(raw))
			for i, rc := range raw {
				pipes[i] = rc.Pipeline()
			}
			exec := func(i int) {
				if _, err := pipes[i].Exec(ctx); err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			var wg sync.WaitGroup
			for i := 0; b.Loop(); i++ {
				inline := -1
				for s, ks := range byServer[i%len(byServer)] {
					if len(ks) == 0 {
						continue
					}
					for _, k := range ks {
						pipes[s].Set(ctx, k, "1", 0)
					}
					if busy := inline; busy >= 0 {
						wg.Go(func() { exec(busy) })
					}
					inline = s
				}
				exec(inline)
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}
