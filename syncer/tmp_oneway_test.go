package syncer_test

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/syncer"
)

var oneway = flag.Bool("tmp.oneway", false, "")

func BenchmarkTmpLag(b *testing.B) {
	servers, cfg := fourGroups(b)
	c, _ := federated.New(cfg)
	defer c.Close()
	opts := syncer.Options{AntiEntropyInterval: -1}
	var locals []string
	for _, s := range servers {
		locals = append(locals, s.Addr())
	}
	if *oneway {
		opts.Links = map[string][]string{}
		locals = nil
		for i := range 4 {
			cur, _ := c.NodeToServer(fmt.Sprintf("redis_%d", i+1))
			other := servers[i].Addr()
			if other == cur {
				other = servers[i+4].Addr()
			}
			opts.Links[other] = []string{cur}
			locals = append(locals, other)
		}
	}
	s, err := syncer.NewFromClient(c, locals, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	r, _ := c.NewRecorder(federated.RecorderOptions{})
	b.ResetTimer()
	pace(b, r, b.N, *lagRate)
	r.Close(context.Background())
	b.StopTimer()
	time.Sleep(time.Second)
	cancel()
	<-done
	var p50, p99 []time.Duration
	for _, p := range s.Stats().Peers {
		if p.Added > 0 {
			p50 = append(p50, p.LagP50)
			p99 = append(p99, p.LagP99)
		}
	}
	b.ReportMetric(float64(slices.Max(p50).Milliseconds()), "lag-p50-ms")
	b.ReportMetric(float64(slices.Max(p99).Milliseconds()), "lag-p99-ms")
}
