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

// BenchmarkPipelineSet100 sends batches of 100 SETs over 8 servers through a
// redfed pipeline, and through raw go-redis pipelines (one per server, all
// in flight at once) with the same keys sharded by hand, on the same
// servers in the same run. One op is one batch.
func BenchmarkPipelineSet100(b *testing.B) {
	const batch = 100
	servers := redistest.StartN(b, 8)
	c := newClient(b, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()

	// 100 batches of keys, and the same keys grouped by server for the raw
	// pipelines.
	keys := make([][]string, 100)
	byServer := make([]map[string][]string, len(keys))
	for i := range keys {
		byServer[i] = make(map[string][]string)
		for j := range batch {
			k := fmt.Sprintf("2026-11-25:web%d.sfo:m%d", i, j)
			keys[i] = append(keys[i], k)
			addr, err := c.NodeToServer(c.KeyToNode(k))
			if err != nil {
				b.Fatal(err)
			}
			byServer[i][addr] = append(byServer[i][addr], k)
		}
	}

	// Write every key once, so that neither contender pays for creating them.
	warm := c.Pipeline()
	for _, ks := range keys {
		for _, k := range ks {
			warm.Set(k, "0")
		}
	}
	if err := warm.Poll(ctx); err != nil {
		b.Fatal(err)
	}

	b.Run("impl=redfed", func(b *testing.B) {
		b.ReportAllocs()
		p := c.Pipeline()
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

	b.Run("impl=go-redis-raw", func(b *testing.B) {
		raw := make(map[string]*redis.Client)
		for _, s := range servers {
			rc := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
			defer rc.Close()
			raw[s.Addr()] = rc
		}
		b.ReportAllocs()
		var wg sync.WaitGroup
		for i := 0; b.Loop(); i++ {
			for addr, ks := range byServer[i%len(byServer)] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pipe := raw[addr].Pipeline()
					for _, k := range ks {
						pipe.Set(ctx, k, "1", 0)
					}
					if _, err := pipe.Exec(ctx); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "cmds/s")
	})
}
