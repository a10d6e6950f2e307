package journal

import "strings"

// DefaultJournal is the journal's key when the configuration names none.
const DefaultJournal = "journal"

// Keys are the keys of the protocol beside a journal, on every server.
type Keys struct {
	// Journal is the sorted set of metric keys, each scored with the
	// server's time of its last change.
	Journal string
	// Horizon holds the oldest period the server keeps (see DropScript):
	// writes of older periods are refused.
	Horizon string
	// Origin is the hash that says, for each metric key, that its last
	// change was a merge from a server (its address and the token of its
	// data set, OriginField) that left the key holding nothing that server
	// lacked, and the key's cardinality then: "address@token#card" (see
	// WriteScript).
	Origin string
	// Write is Journal, Horizon and Origin, the KEYS of WriteScript.
	Write []string
}

// KeysOf returns the keys beside a journal.
func KeysOf(journal string) Keys {
	k := Keys{Journal: journal, Horizon: journal + ":horizon", Origin: journal + ":origin"}
	k.Write = []string{k.Journal, k.Horizon, k.Origin}
	return k
}

// CursorKey is the hash, on each server a syncer merges into, that holds
// the syncer's cursor for every peer (the field is the peer's address):
// the peer's journal time up to which its changes are merged; and, in the
// field of the address plus SeqSuffix, the number of the link's last save,
// which changes at every merge that adds members even when the cursor
// stays, so that a server restored from a snapshot taken before such a
// merge is told from one that holds it; and in the field of the address
// plus OverlapSuffix and PageSuffix, what they say.
const CursorKey = "syncer:cursors"

// MarksKey is the hash, on each server a syncer merges into, that holds
// for every peer (the field is the peer's address) what the syncer's link
// knew of the peer's keys when it last saved it: a syncer that starts
// again takes it in, where it still holds, instead of fetching every key
// changed since its cursor whole. Its value is the syncer's own encoding,
// which names the server's epoch and origin token and the peer's run it
// was read under.
const MarksKey = "syncer:marks"

// SeqSuffix ends the field of CursorKey that numbers a peer's cursor saves.
const SeqSuffix = "#seq"

// OverlapSuffix ends the field of CursorKey that holds the peer's time
// when the link's last complete read of the overlap began: a syncer that
// starts again reads the overlap from there, as the one before it would
// have.
const OverlapSuffix = "#overlap"

// PageSuffix ends the field of CursorKey that holds a token the link
// writes after each page of a large key it merged: a server that holds
// it holds the page (a snapshot is a prefix of what the server applied),
// and one restored from before it does not.
const PageSuffix = "#page"

// EpochField is the field of CursorKey that names the server's data set: a
// random token written by the first load after the server came up empty.
// It is not an address, so no peer's cursor can take its place.
const EpochField = "@epoch"

// OriginField is the field of CursorKey that names the server's data set
// as its peers mark the keys they merged from it (see Keys.Origin): a
// random token, written again by the first load of a cursor after each
// start of the server (a new run_id, kept in RunField). A server restored
// from a snapshot keeps its epoch, and its cursors say what it merged,
// but it may have lost writers' points that its peers hold and marked as
// its own: the new token makes those marks no longer its, and its syncer
// fetches the keys back.
const OriginField = "@origin"

// RunField is the field of CursorKey that holds the server's run_id when
// OriginField was written (see RunLua).
const RunField = "@run"

// Dropped reports whether the period string p lies wholly before the
// horizon h, "" for none. A day and an hour compare by the day: the hours
// of a day after its first are not before the day, and a day is before an
// hour only when it ended by the hour's start, so that a server whose
// horizon was set under one period length takes the other's keys as it
// should (a fleet that moved from hours to days, or back).
func Dropped(p, h string) bool {
	n := min(len(p), len(h))
	return h != "" && p[:n] < h[:n]
}

// PeriodOf returns the period string of a metric key, the text before its
// first ':'. Period strings of one length sort in time order.
func PeriodOf(key string) string {
	p, _, _ := strings.Cut(key, ":")
	return p
}
