// Package faultproxy is a TCP proxy for tests. It sits between a client (or
// a replication daemon) and a real server on 127.0.0.1 and injects network
// faults on command: latency, refused and reset connections, a blackhole and
// one-way partitions.
//
// New listens on 127.0.0.1:0 and forwards every accepted connection to the
// target over a connection of its own. Faults are switched on and off at
// run time and apply to open connections as well as new ones:
//
//   - SetLatency delays every chunk read from either side by the given
//     duration before it is written to the other side.
//   - DropNew accepts new connections and resets them at once (RST).
//   - CutAll resets every open connection, on both sides, once.
//   - Blackhole forwards nothing and never answers: no data, no FIN, no
//     RST. Bytes sent meanwhile are held, not lost (see below).
//   - CutDirection discards the bytes of one direction while the other
//     keeps flowing.
//   - Heal clears every fault.
//
// Blackhole holds traffic the way a partition that heals before TCP gives
// up does. A connection accepted during a blackhole is not connected to the
// target until the blackhole lifts; what the client sent meanwhile waits in
// the kernel's buffers. An open connection stops after the chunk it is
// reading, in each direction, and keeps that chunk. When Heal (or
// Blackhole(false)) lifts it, held bytes are forwarded in order and every
// connection, old or new, is usable again: a client that wrote a command
// during the blackhole then reads its reply. A client that gave up on such
// a connection should close it rather than reuse it, or it will read the
// stale reply. go-redis discards a connection after a timeout, so it is
// safe. Closing a held connection is forwarded to the target once the
// blackhole lifts.
//
// CutDirection discards data only: a FIN still travels in a cut direction,
// so a client that closes its end is seen closing by the target.
//
// Concurrency: a Proxy is safe for concurrent use. Each connection is served
// by two goroutines, one per direction, and the proxy has one accept loop.
// Close stops them all and waits for them, so goleak checks stay clean; it
// never hangs on a blocked read because it closes the sockets first.
//
// Failure behaviour: if the target cannot be reached, the client's
// connection is reset. A read or write error on one side resets the other
// side, so a reset by the server reaches the client as a reset. An orderly
// close (EOF) is forwarded as a half-close (FIN), and a connection is closed
// once both directions have ended: when the target closes, the client reads
// EOF, and the proxy keeps its end until the client closes too, as a
// direct connection would.
package faultproxy
