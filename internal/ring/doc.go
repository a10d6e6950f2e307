// Package ring maps a key to the name of the node that owns it.
//
// Two rings implement the Ring interface. Consistent, the default, is a
// consistent-hash ring with bounded loads over xxhash that places keys
// exactly as github.com/buraksezer/consistent does: adding a node moves
// keys only to the new node, removing one moves only its keys, and no node
// owns more than about 1.25 times the mean share of the keys. Perl
// reproduces the placement of the Perl module AnyEvent::Redis::Federated
// 0.08 (Set::ConsistentHash 0.92) bit for bit, so a Go service can share a
// fleet with Perl writers.
//
// Both rings are immutable once built and safe for concurrent Locate calls
// without locking. A client that adds or removes a node builds a new ring
// and swaps it in atomically. Node names are compared as given; the order
// in which they are passed never changes the mapping.
//
// Constructors validate their input and return an error (ErrNoNodes,
// ErrEmptyNodeName, ErrDuplicateNode, ErrUnbalanced) instead of panicking.
// Locate never fails: every key has an owner.
package ring
