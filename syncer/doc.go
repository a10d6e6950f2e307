// Package syncer is the engine of the replication daemon: multi-master
// replication inside each replica group of a federation.
//
// A client writes a metric key to one server of its group (the current
// one). Every write journals the key on that server, scored with the
// server's clock. A Syncer runs, for each local server, one loop per peer
// of the server's group, as the client's nodes have it while Run runs (a
// server that joins the group is pulled from then, one that leaves no
// longer): a pass reads the peer's journal from a cursor,
// fetches the changed keys' new members from the peer, and merges them into
// the local server with the same script writers use, so that a key is
// journalled locally only when something was added. That makes changes
// travel through intermediaries (A to B to C) and stops them from bouncing
// back: a merge that adds nothing writes nothing. Nor are they read back: a
// merge marks the keys it leaves holding nothing the origin lacks
// (federated.Client.OriginKey), and the origin's syncer skips those entries
// of the journal instead of fetching every key it gave. The cursor is saved
// in the local server after each merge, never before, so a restarted syncer
// resumes where it stopped; and what a link knows of each key is saved
// beside it now and then (see marks.go), so that a restarted syncer
// fetches the keys changed since from where the last left them, not whole. It is saved by compare-and-set against what the
// pass loaded, so a server that comes back empty, even in the middle of a
// pass, is pulled in full. While the local server merges a page, the link
// reads and fetches the next one from the peer, so that both servers work
// at once; pages are still merged, marked and saved in turn.
//
// Which members of a changed key are fetched does not depend on the
// timestamps inside the data: writers' clocks differ and step back, and
// backfills are normal. A link keeps, for each key, how many members the
// peer held below a few boundaries when it last fetched it, and fetches
// from the nearest boundary whose count still holds, in one atomic script
// call, or, for a key of more than 100,000 members, in pages by score
// whose counts tell a backfill below them (see fetch.go). Writers that journal with their own clock (the Perl
// module, redis-cli) are read too: every OverlapInterval (5s) a pass reads
// the journal again from a little before where the last such read began
// (Overlap; stored beside the cursor, for a syncer that starts again), and
// a key whose cardinality changed since it was merged is
// fetched again, also when its journal score did not move. PeerStats.Lag and
// PeerStats.SyncedTo say how far the local server is behind.
//
// Anti-entropy is the safety net, not the path any write depends on: every
// few minutes it compares the cardinality and digest of each key changed
// since its last full run across the group, every hour each key, and
// gives the local servers the members they lack.
//
// Keys of periods older than a server's retention horizon are skipped and
// never written back, and a server whose horizon is older than its peer's
// (it missed a drop, or came back empty) is given the peer's, with the keys
// of the periods dropped removed. Run stops when its context ends, leaving
// no goroutine behind.
package syncer
