package demo

import (
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"

	"github.com/redfed/federated/internal/redistest"
)

// fleet is the demo's set of servers: real redis-server processes, or
// in-process Redis-compatible servers when redis-server is not installed.
type fleet interface {
	Mode() string
	Addrs() []string
	Kill(i int) error    // the server stops at once, losing its data
	Restart(i int) error // the server starts again, empty, on the same address
	Close() error
}

// startFleet starts n servers: redis-server processes unless inProcess is
// set or redis-server is not on PATH.
func startFleet(n int, inProcess bool) (fleet, error) {
	if inProcess {
		return startMiniFleet(n, "as asked")
	}
	f, err := startRedisFleet(n)
	if err == nil || !errors.Is(err, redistest.ErrNotInstalled) {
		return f, err
	}
	return startMiniFleet(n, "redis-server is not installed")
}

type redisFleet struct{ servers []*redistest.Server }

func startRedisFleet(n int) (*redisFleet, error) {
	f := &redisFleet{}
	for range n {
		s, err := redistest.Start(redistest.Options{})
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		f.servers = append(f.servers, s)
	}
	return f, nil
}

func (f *redisFleet) Mode() string { return "redis-server processes" }

func (f *redisFleet) Addrs() []string { return redistest.Addrs(f.servers) }

func (f *redisFleet) Kill(i int) error { return f.servers[i].Kill() }

func (f *redisFleet) Restart(i int) error { return f.servers[i].Restart() }

func (f *redisFleet) Close() error {
	var errs []error
	for _, s := range f.servers {
		errs = append(errs, s.Stop())
	}
	return errors.Join(errs...)
}

type miniFleet struct {
	servers []*miniredis.Miniredis
	addrs   []string
	reason  string // why not redis-server processes
}

func startMiniFleet(n int, reason string) (*miniFleet, error) {
	f := &miniFleet{reason: reason}
	for range n {
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("demo: starting an in-process server: %w", err)
		}
		f.servers = append(f.servers, m)
		f.addrs = append(f.addrs, m.Addr())
	}
	return f, nil
}

func (f *miniFleet) Mode() string {
	return "in-process Redis-compatible servers (" + f.reason + ")"
}

func (f *miniFleet) Addrs() []string { return f.addrs }

func (f *miniFleet) Kill(i int) error {
	f.servers[i].Close()
	return nil
}

func (f *miniFleet) Restart(i int) error {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(f.addrs[i]); err != nil {
		return fmt.Errorf("demo: restarting %s: %w", f.addrs[i], err)
	}
	f.servers[i] = m
	return nil
}

func (f *miniFleet) Close() error {
	for _, m := range f.servers {
		m.Close()
	}
	return nil
}
