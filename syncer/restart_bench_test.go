package syncer_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/syncer"
)

// BenchmarkSyncerRestart measures what a syncer's restart (a deploy)
// costs a pair of servers: the peer holds 1,000 keys of 1,000 members
// each (points 10 s apart, the last a few seconds ago), all replicated to
// the local server; the syncer stops, each key gets one new point on the
// peer, and a new syncer starts. One op is one such restart, timed until
// the local server holds every new point. It reports the servers' CPU
// time and the bytes the peer sent, per key changed: a syncer that fetches
// the keys whole again after a restart (copy=none: no saved marks) pays
// for every member, one that knows where the last left them (copy=kept)
// pays for one.
func BenchmarkSyncerRestart(b *testing.B) {
	const keys, points = 1000, 1000
	ctx := context.Background()
	servers := redistest.StartN(b, 2)
	peer, local := servers[0], servers[1]
	c, err := federated.New(federated.Config{
		Nodes:   map[string]federated.Node{"group": {Addresses: redistest.Addrs(servers)}},
		Options: quiet(),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	jk := journal.KeysOf(journal.DefaultJournal)
	now := time.Now()
	names := make([]string, keys)
	for i := range names {
		if names[i], err = metricKey(now, fmt.Sprintf("web%d", i/10), fmt.Sprintf("m%d", i%10)); err != nil {
			b.Fatal(err)
		}
	}
	// write adds one member stamped at to every key on the peer, as a
	// writer would.
	write := func(at time.Time, value string) {
		member := strconv.FormatInt(at.Unix(), 10) + ":" + value
		updates := make([]journal.KeyMembers, len(names))
		for i, k := range names {
			updates[i] = journal.KeyMembers{Key: k, Members: []string{member}}
		}
		if _, err := journal.Merge(ctx, c, peer.Addr(), jk, journal.Origin{}, updates); err != nil {
			b.Fatal(err)
		}
	}
	for p := range points {
		write(now.Add(-time.Duration(points-p)*10*time.Second), strconv.Itoa(p))
	}
	// run starts a syncer of the local server and waits until it holds
	// want members; it returns the syncer's stop.
	run := func(want int64) func() {
		s, err := syncer.NewFromClient(c, []string{local.Addr()}, syncer.Options{NoAntiEntropy: true})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Run(runCtx) }()
		for countAll(b, local.Addr()) < want {
			time.Sleep(5 * time.Millisecond)
		}
		return func() { cancel(); <-done }
	}
	total := int64(keys * points)
	run(total)()

	// copy=kept restarts as a deploy does; copy=none removes the copy of
	// the marks first, as a syncer without one (or before there was one)
	// starts.
	writes := 0 // each write's own value: the testing package runs b.N from 0 more than once
	for _, kept := range []bool{true, false} {
		b.Run(fmt.Sprintf("copy=%s", map[bool]string{true: "kept", false: "none"}[kept]), func(b *testing.B) {
			var cpu time.Duration
			var bytes int64
			for range b.N {
				b.StopTimer()
				writes++
				write(time.Now(), "new"+strconv.Itoa(writes))
				total += keys
				if !kept {
					if err := direct(b, local.Addr()).Del(ctx, journal.MarksKey).Err(); err != nil {
						b.Fatal(err)
					}
				}
				cpu0, out0 := serversCPU(b, servers), netOutput(b, peer.Addr())
				b.StartTimer()
				stop := run(total)
				b.StopTimer()
				cpu += serversCPU(b, servers) - cpu0
				bytes += netOutput(b, peer.Addr()) - out0
				stop()
			}
			b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N*keys), "server-µs/key")
			b.ReportMetric(float64(bytes)/float64(b.N*keys), "peer-B/key")
		})
	}
}

// netOutput returns the bytes a server has sent its clients so far.
func netOutput(b testing.TB, addr string) int64 {
	info, err := direct(b, addr).Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_net_output_bytes:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("no total_net_output_bytes in INFO stats")
	return 0
}
