package metrics

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/redfed/federated/internal/journal"
)

// A key larger than digestMembers is compared and repaired a range of its
// scores at a time, so that no call reads more than about digestMembers
// members of a server, however large the key.

// scoreRange is a range of a key's scores: from lo ("-inf", or a score,
// included) up to hi ("+inf", included, or a score, not included), each
// spelt as Redis writes a score.
type scoreRange struct{ lo, hi string }

// rangeDigests digests a key larger than digestMembers a range of its
// scores at a time, on every server at once. The ranges are split at the
// score of every digestMembers-th member of every server, so that none
// holds more than digestMembers members of any server (but for members
// of one score, which a range never splits), however the servers' members
// are spread: a key of millions of members is compared in calls as short
// as those of smaller keys, and only the ranges that differ are read to
// repair it. It returns each server's digest of the whole key, made of
// those of its ranges, and the ranges whose digests differ.
func (st *Store) rangeDigests(ctx context.Context, servers []string, key string) (map[string]keyDigest, []scoreRange, error) {
	bounds, err := onEachServer(servers, "bounds of "+key, func(addr string) ([]string, error) {
		return st.runOn(ctx, addr, journal.BoundsScript, []any{key, digestMembers}).StringSlice()
	})
	if err != nil {
		return nil, nil, err
	}
	ranges, err := rangesBetween(key, bounds)
	if err != nil {
		return nil, nil, err
	}
	whole := make(map[string]*strings.Builder, len(servers))
	out := make(map[string]keyDigest, len(servers))
	for _, addr := range servers {
		whole[addr] = &strings.Builder{}
	}
	var differ []scoreRange
	for _, r := range ranges {
		part, err := onEachServer(servers, "digest of "+key, func(addr string) (keyDigest, error) {
			return st.rangeDigestOn(ctx, addr, key, r)
		})
		if err != nil {
			return nil, nil, err
		}
		if !sortedSetsAgree(part) {
			differ = append(differ, r)
		}
		for addr, d := range part {
			kd := out[addr]
			if kd.otherType() != "" {
				continue // of another type since an earlier range
			}
			if d.otherType() != "" {
				out[addr] = d
				continue
			}
			kd.card += d.card
			fmt.Fprintf(whole[addr], "%d:%s\n", d.card, d.digest)
			out[addr] = kd
		}
	}
	for addr, kd := range out {
		if kd.otherType() == "" {
			kd.digest = whole[addr].String()
			out[addr] = kd
		}
	}
	return out, differ, nil
}

// rangesBetween returns the ranges that the servers' bounds, together,
// split every score into: from -inf to the lowest, between each and the
// next, and from the highest to +inf. A score given more than once, by a
// server or by several, however spelt, bounds one range.
func rangesBetween(key string, bounds map[string][]string) ([]scoreRange, error) {
	type bound struct {
		score float64
		text  string // as the server wrote it, to be given back exactly
	}
	var all []bound
	for addr, bs := range bounds {
		for _, b := range bs {
			score, err := strconv.ParseFloat(b, 64)
			if err != nil {
				return nil, fmt.Errorf("metrics: server %s: key %s: bound %q is not a score", addr, key, b)
			}
			all = append(all, bound{score, b})
		}
	}
	slices.SortFunc(all, func(a, b bound) int { return cmp.Compare(a.score, b.score) })
	out := make([]scoreRange, 0, len(all)+1)
	lo, low := "-inf", math.Inf(-1)
	for _, b := range all {
		if b.score == low {
			continue
		}
		out = append(out, scoreRange{lo: lo, hi: b.text})
		lo, low = b.text, b.score
	}
	return append(out, scoreRange{lo: lo, hi: "+inf"}), nil
}

// sortedSetsAgree reports whether the servers that hold a key as a
// sorted set, or not at all, have the same digest of a range of it. A
// server that holds another type is left out: it is never written to,
// and would make every range differ, and be read, at every run.
func sortedSetsAgree(digests map[string]keyDigest) bool {
	var first *keyDigest
	for _, d := range digests {
		switch {
		case d.otherType() != "":
		case first == nil:
			first = &d
		case d != *first:
			return false
		}
	}
	return true
}

// rangeDigestOn returns one server's digest of a range of a key's scores.
func (st *Store) rangeDigestOn(ctx context.Context, addr, key string, r scoreRange) (keyDigest, error) {
	val, err := st.runOn(ctx, addr, journal.RangeDigestScript, []any{key, r.lo, r.hi}).Slice()
	if err != nil {
		return keyDigest{}, err
	}
	if len(val) != 2 {
		return keyDigest{}, fmt.Errorf("range digest script answered %d values, not 2", len(val))
	}
	card, _ := val[0].(int64)
	digest, _ := val[1].(string)
	return keyDigest{card: card, digest: digest}, nil
}

// rangeMembersOn returns the members of a range of a key's scores on one
// server, as the members of a batch of that key alone.
func (st *Store) rangeMembersOn(ctx context.Context, addr, key string, r scoreRange) ([][]string, error) {
	members, err := st.runOn(ctx, addr, journal.RangeMembersScript, []any{key, r.lo, r.hi}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("metrics: server %s: reading members of %s: %w", addr, key, err)
	}
	return [][]string{members}, nil
}
