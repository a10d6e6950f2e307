// Package journal defines the protocol that redfed's writers, syncer,
// retention and check share on every Redis server: the keys beside the
// journal, and every Lua script that reads or writes them.
//
// A metric key ("$period:$host:$metric") is a sorted set of
// "$timestamp:$value" members scored by timestamp. Every write of one
// (WriteScript) adds members and, only when something was added, scores
// the key in the server's journal with the server's own clock, in one
// atomic call, so that a reader of the journal cannot miss a change and
// writers' clocks do not matter. Members are only ever added; retention
// drops whole periods (DropScript) behind a horizon that is only ever
// raised, and writes of a dropped period are refused.
//
// A syncer reads a peer's journal from a cursor (ChangesScript), fetches
// the changed keys' new members (FetchScript) and merges them with
// WriteScript, naming the peer as the origin: a key that then holds
// nothing the origin lacks is marked so in the origin hash, and the
// origin's syncer does not fetch it back. Its cursors live in the server
// merged into (CursorScripts), saved by compare-and-set against the
// server's epoch, so that a server that comes back empty is pulled in full;
// the marks name the origin's data set since it last started
// (OriginField), so that a server restored from a snapshot fetches back
// what it lost.
//
// The scripts are safe to run from many clients at once: each is one
// atomic call. Nothing here holds state.
package journal
