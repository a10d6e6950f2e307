package federated

import (
	"context"
	"sync"
)

// A flight sends each server's share of its commands from a goroutine of
// its own. New goroutines start with small stacks, and the path of a
// pipeline through go-redis grows them, which costs a copy on every flight:
// with batches of a few commands a server, that was about a tenth of the
// client's time. Senders are goroutines kept for the purpose, whose stacks
// have grown once; a share that finds none idle gets a new goroutine.

// sendTask is one server's share of a flight, handed to a sender. It lives
// only while it is handed over.
type sendTask struct {
	ctx context.Context
	f   *Flight
	g   *sendGroup
}

// senderPool holds the Client's senders. They start with the first flight
// and stop when the Client closes.
type senderPool struct {
	once  sync.Once
	tasks chan sendTask // unbuffered: a task is taken by an idle sender or by none
}

// sendersPerServer is how many senders the pool keeps per server of the
// federation when it starts, at least minSenders.
const (
	sendersPerServer = 2
	minSenders       = 8
)

// dispatch hands t to an idle sender, or to a new goroutine.
func (c *Client) dispatch(t sendTask) {
	p := &c.senders
	p.once.Do(func() {
		p.tasks = make(chan sendTask)
		for range max(minSenders, sendersPerServer*len(c.topo.Load().servers)) {
			if !c.addLoop() {
				return
			}
			go c.sender()
		}
	})
	select {
	case p.tasks <- t:
	default:
		go t.f.send(t.ctx, t.g)
	}
}

// sender runs the tasks it is handed until the Client closes.
func (c *Client) sender() {
	defer c.wg.Done()
	for {
		select {
		case t := <-c.senders.tasks:
			t.f.send(t.ctx, t.g)
		case <-c.done:
			return
		}
	}
}
