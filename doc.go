// Package federated runs fast-moving data, metrics first of all, on a fleet
// of plain Redis processes. It is a Go port of the Perl module
// AnyEvent::Redis::Federated and of the metrics system built on it.
//
// A consistent-hash ring maps every key, or the key group it names, to a
// node; a node is one server or a replica group of servers holding copies
// of the same data. The ring hashes node names, never addresses, so a node
// can move to another host without moving keys, and two clients with the
// same configuration route every key the same way whatever order the nodes
// are listed in. The default ring is bounded-load consistent hashing over
// xxhash; the "perl" ring places keys exactly as the Perl module does.
//
// # Layers
//
// This package is the client: the ring, routing, failover, pipelines, the
// blocking API, query-all and the shared clients by tag; and, in
// metrics.go, the metric key schema ("$period:$host:$metric", members
// "$timestamp:$value") with Record, the write of one point and its journal
// entry to its node. Package metrics is the metrics store above it
// (Recorder, range reads, listings, retention, check and repair), and
// package syncer replicates the servers of each replica group. What they
// need from the client is open to users' own scripts too: RunOnNode runs
// a Lua script on a node with an explicit rule for sending it again
// elsewhere (idempotent or not), RunOnServer on one server, and
// TopologyVersion and Done tell a layer when to route again and when to
// stop.
//
// # Concurrency
//
// A Client is safe for concurrent use by many goroutines, including while
// nodes are added or removed. Its background goroutines (the checks of
// down servers, and from the first pipeline sent to several servers a few
// goroutines that send them) belong to it: Close waits for every one of
// them; calls after Close fail with ErrClosed (a PubSub, which go-redis
// reads, with go-redis's redis.ErrClosed: see Subscribe).
//
// # Failures
//
// A server is marked down when a connection to it fails or when it does
// not answer within the command timeout (Options.CommandTimeout, 1s by
// default, applied when the caller's context has no earlier deadline).
// Commands for a replica group then go to the group's next up server,
// which stays current (sticky) until it fails in turn. A command whose
// connection failed is sent again to the next server of the group (a
// pipeline, all of it: at least once, as with go-redis's own retries); a
// command that timed out is not, since the server may still run it. A
// background check probes each down server, first at BaseRetryInterval and
// then at intervals growing by RetryIntervalMult up to MaxRetryInterval, and
// marks it up on the first answer to its PING (a PONG, or the NOPERM of a
// user whose ACL denies PING). A command for a node with no up server fails
// at once with an error that matches ErrServerDown and names the node and
// its servers: nothing hangs and no write is dropped without an error. A
// server that refuses a metric write for a reason that passes (out of
// memory, read-only, loading, busy: ErrTemporary) is left for the group's
// next server without being marked down.
package federated
