package syncer_test

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

var largeKey = flag.Int("syncer.largekey", 2_500_000, "members of the key BenchmarkLargeKeyCopy copies")

// BenchmarkLargeKeyCopy times a syncer that copies one key of
// -syncer.largekey members (40 a second of a day) to an empty server of
// its group, under a command timeout of 1 s: the key is fetched in pages
// of 100,000 members, each call a fraction of the timeout. One op is one
// copy of the key, to a server emptied before it.
func BenchmarkLargeKeyCopy(b *testing.B) {
	servers := redistest.StartN(b, 2)
	a, dst := servers[0].Addr(), servers[1].Addr()
	cfg := groupConfig(servers)
	cfg.Options.CommandTimeout = time.Second
	c := newClient(b, cfg)
	ctx := context.Background()
	now := time.Now()
	key, err := metricKey(now, "big", "m")
	if err != nil {
		b.Fatal(err)
	}
	base := now.Add(-20 * time.Hour).Unix()
	for start := 0; start < *largeKey; start += 100_000 {
		u := journal.KeyMembers{Key: key}
		for i := start; i < min(start+100_000, *largeKey); i++ {
			u.Members = append(u.Members, fmt.Sprintf("%d.%02d:%d", base+int64(i/40), i%40, i))
		}
		if _, err := merge(ctx, c, a, []journal.KeyMembers{u}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := direct(b, dst).FlushAll(ctx).Err(); err != nil {
			b.Fatal(err)
		}
		s, err := syncer.NewFromClient(c, []string{dst}, syncer.Options{NoAntiEntropy: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()
		for direct(b, dst).ZCard(ctx, key).Val() < int64(*largeKey) {
			time.Sleep(10 * time.Millisecond)
		}
		b.StopTimer()
		cancel()
		<-done
		if errs := linkStats(b, s, dst, a).Errors; errs > 0 {
			b.Fatalf("%d passes failed", errs)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(*largeKey)*float64(b.N)/b.Elapsed().Seconds(), "members/s")
}
