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

// All sends a command, name first, to every server of its keys' node group
// (the Perl module's query_all) and returns one result per server, in
// configuration order, with the errors joined. A server already known to
// be down is not asked: its result carries its ErrServerDown. Use it for
// sanity checks that compare replicas.
func (c *Client) All(ctx context.Context, args ...any) ([]ServerResult, error) {
	return c.all(ctx, routing{}, args...)
}

// all is All with a routing.
func (c *Client) all(ctx context.Context, r routing, args ...any) ([]ServerResult, error) {
	var results []ServerResult
	p := c.Chain()
	p.r = r
	p.DoAll(func(server string, cmd *redis.Cmd) {
		val, err := cmd.Result()
		results = append(results, ServerResult{Server: server, Val: val, Err: err})
	}, args...)
	err := p.Poll(ctx)
	if len(results) == 0 && err == nil {
		err = fmt.Errorf("federated: All: no server answered")
	}
	return results, err
}

// SetQueryAll turns query-all on or off at run time (Options.QueryAll, the
// Perl module's query_all): with it on, every command of a Chain, and
// every command of the typed API, Pipelined's included, goes to every
// server of its node's group; the typed API answers with the first
// server's reply and fails when any server fails. A transaction
// (TxPipelined, Watch) is one server's: it goes to the node's current
// server only.
func (c *Client) SetQueryAll(on bool) { c.queryAll.Store(on) }

// ForEachServer calls fn for every server of the federation, each on its own
// goroutine, with the server's go-redis client, and waits for all of them.
// It returns every error, joined, each a *ServerError that names its node
// and server, and matches ErrServerDown when the server is marked down
// (as a failure of fn may just have done). Servers marked down are visited
// too: fn decides what to do with them.
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
				var se *ServerError
				if !errors.As(err, &se) || se.Server != addr {
					// down as the failure may just have marked it.
					err = &ServerError{Node: s.node, Server: addr, Err: err, down: s.down.Load()}
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
