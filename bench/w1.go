package main

import (
	"context"
	"time"
)

// runW1 is one run of W1, the Perl module's own test: one writer sends ops
// SETs over the key universe in batches of batch, waiting for each batch's
// answers before it queues the next. A batch's latency runs from queueing
// its first command to its last answer.
func runW1(ctx context.Context, f *fleet, ct contender, keys []string, batch, ops int) (sample, error) {
	b := ct.newBatcher()
	latencies := make([]time.Duration, 0, ops/batch+1)
	s, err := measure(ctx, f, func() (int64, error) {
		sent := 0
		for sent < ops {
			if err := ctx.Err(); err != nil {
				return int64(sent), err
			}
			n := min(batch, ops-sent)
			start := time.Now()
			for j := range n {
				b.set(keys[(sent+j)%len(keys)], w1Value)
			}
			if err := b.exec(ctx); err != nil {
				return int64(sent), err
			}
			latencies = append(latencies, time.Since(start))
			sent += n
		}
		return int64(sent), nil
	})
	s.latencies = latencies
	return s, err
}

// checkW1 verifies that a W1 run left every key it set on the servers.
func checkW1(ctx context.Context, f *fleet, ops int) error {
	return checkKeys(ctx, f, min(int64(ops), universe), 0, "")
}
