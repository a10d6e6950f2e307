// Package metrics is the metrics store of a federation of Redis servers:
// time series written, read, checked and dropped through a federated
// Client, in the schema of the Perl metrics system.
//
// # Schema
//
// A series is a metric of a host. Its points of one period (a UTC day by
// default, or an hour: MetricsOptions.Period) live in one sorted set, the
// key "$period:$host:$metric" (2026-11-25:web1.sfo:cpu.user), whose
// members are "$timestamp:$value" scored by the timestamp in Unix seconds.
// The key's node on the ring is the series' home. Every server keeps a
// journal beside its keys: a sorted set of the metric keys it holds, each
// scored with the server's own time of the key's last change. A write adds
// the members and journals the key in one atomic script call, only when
// something was added, so that a reader of the journal cannot miss a
// change and writers' clocks do not matter. Retention drops whole periods
// behind a horizon that is only ever raised: a dropped period never comes
// back, not even from a replica that missed the drop.
//
// # Writing
//
// A Recorder batches points by node and key and writes each node's share
// in script calls of up to 10,000 points; several flushes may run at once.
// Write waits for its own points and returns exactly their failures;
// Add buffers and Flush reports every failure once. A write is
// acknowledged by one server of the series' replica group, or by
// MetricsOptions.Copies of them, and fails over to the group's next server
// when its server is down, times out, or refuses it for a reason that
// passes (out of memory, read-only, loading, busy). The syncer (package
// syncer) then copies it to the rest of the group.
//
// # Reading
//
// Range, Summarize and Latest read every up server of each key's group and
// merge their copies, so that a point is seen as soon as any server
// acknowledged it. They read in pages of at most 1,000 members, so that no
// command holds a server for long, and a read that runs out of time fails
// without marking its server down for the writers. Members that are not
// "$timestamp:$value" scored by their timestamp are skipped and counted,
// never fatal. They leave out the periods dropped by the latest horizon of
// the servers they ask, so that a server that missed a DropBefore does not
// bring them back; a read that a DropBefore overtakes fails with
// federated.ErrPeriodDropped, naming the key it read a part of.
// LatestEach finds the newest points of many series in one read. Hosts,
// Metrics and Series list what the journals hold, less the periods
// dropped; Series lists every host's metrics in one read of the journals,
// for a caller that keeps it (a dashboard).
//
// # Checking
//
// Check compares every key of every replica group (or, with
// CheckOptions.ChangedSince, the keys changed since) by cardinality and
// content digest; Repair gives each server the members the others of its
// group hold. RELIABILITY.md in the repository lists every promise and the
// test that proves it.
//
// A Store and its Recorders are safe for concurrent use. A Recorder runs a
// goroutine until its Close, which waits for it; close the Recorders before
// the Client, whose Close stops them too.
package metrics
