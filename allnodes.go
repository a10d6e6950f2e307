package federated

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ServerResult is one server's answer to a command sent to every server of a
// group.
type ServerResult struct {
	Server string // host:port
	Val    any    // the reply, when Err is nil
	Err    error  // the server's error, or the reason it could not be asked
}

// All sends a command to every server of the key's node group (the Perl
// module's query_all) and returns one result per server, in configuration
// order, with the errors joined. A server already known to be down is not
// asked: its result carries its ErrServerDown. Use it for sanity checks
// that compare replicas.
func (c Commands) All(ctx context.Context, key string, args ...any) ([]ServerResult, error) {
	var results []ServerResult
	p := c.client.Pipeline().Group(c.group)
	p.DoAll(func(server string, cmd *redis.Cmd) {
		val, err := cmd.Result()
		results = append(results, ServerResult{Server: server, Val: val, Err: err})
	}, key, args...)
	if err := p.Poll(ctx); err != nil {
		return results, err
	}
	return results, nil
}

// ForEachServer calls fn for every server of the federation, each on its own
// goroutine, with the server's go-redis client, and waits for all of them.
// It returns every error, joined, each naming its server. Servers marked
// down are visited too: fn decides what to do with them.
func (c *Client) ForEachServer(ctx context.Context, fn func(ctx context.Context, addr string, rc *redis.Client) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	t := c.topo.Load()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for addr, s := range t.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, addr, s.client.Load()); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("federated: server %s: %w", addr, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
