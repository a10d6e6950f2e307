package syncer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
)

// Echoes. When B merges a change from A, B journals the key, and A's
// syncer, reading B's journal, would fetch the key back from B and merge
// it into A, adding nothing: a read of every key replicated, in the other
// direction. The write script marks a key merged from A in B's origin hash
// (federated.Client.OriginKey) when B then holds nothing of it that A
// lacks, with the key's cardinality then, and A's syncer skips the keys so
// marked for it while their cardinality is still the marked one: a member
// added by a writer that does not keep the hash (a plain ZADD, the Perl
// module) makes the entry a change again. The mark names A's data set since
// it last started (journal.OriginField): once A restarts, empty or from a
// snapshot that may lack points B holds, the marks of its old data set no
// longer match, and A fetches what they named.

// journalEntry is one entry of a server's journal: a metric key and the
// server's time of its last change, in Unix seconds.
type journalEntry struct {
	Key  string
	Time float64
}

// change is a journal entry of the peer, the key's cardinality on the peer
// when it was read, and whether it is an echo of the local server's own
// change.
type change struct {
	journalEntry
	card int64
	echo bool
}

// changes reads up to limit entries of the peer's journal scored at or
// after since (after it, with after) into buf's array, and returns them
// with the peer's origin token. With echoes false the peer is not asked
// which entries are echoes: a read of the overlap, whose entries but a few
// were merged before, saves the peer that work.
func (l *link) changes(ctx context.Context, since float64, after bool, limit int, echoes bool, buf []change) ([]change, string, error) {
	tag := ""
	if l.origin != "" && echoes {
		tag = l.local + "@" + l.origin
	}
	out, origin, now, run, err := l.servers.changes(ctx, since, after, limit, tag, buf)
	if err != nil {
		return nil, "", err
	}
	if l.peerTime == 0 {
		l.peerTime = now
	}
	if run != l.peerRun {
		// The peer started again, maybe from a snapshot that lacks what it
		// took since: the checkpoints read before say nothing now.
		l.peerRun = run
		l.peerGen++
	}
	return out, origin, nil
}

// parseChanges reads the reply of journal.ChangesScript: the entries (into
// buf's array), the peer's origin token, the peer's time and the peer's
// run. The entries' keys share the reply's string of keys: what keeps a
// key beyond the page (a new mark) keeps a copy.
func parseChanges(val []any, buf []change) ([]change, string, float64, string, error) {
	if len(val) != 9 {
		return nil, "", 0, "", fmt.Errorf("unexpected reply of %d parts", len(val))
	}
	origin, _ := val[0].(string)
	joined, ok := val[1].(string)
	runs, _ := val[2].([]any)
	rest, _ := val[3].([]any)
	echo, _ := val[4].([]any)
	cards, _ := val[6].([]any)
	run, _ := val[7].(string)
	lens, _ := val[8].([]any)
	n := len(lens)
	if !ok || len(runs)%2 != 0 || (len(echo) != 0 && len(echo) != n) || len(cards) != n {
		return nil, "", 0, "", fmt.Errorf("unexpected reply: keys %T, %d key lengths, %d run fields, %d echo flags, %d cardinalities", val[1], n, len(runs), len(echo), len(cards))
	}
	now, err := parseTime(val[5])
	if err != nil {
		return nil, "", 0, "", err
	}
	out := slices.Grow(buf[:0], n)[:n]
	at := 0
	for i := range out {
		size, ok := lens[i].(int64)
		if !ok || size < 0 || size > int64(len(joined)-at) {
			return nil, "", 0, "", fmt.Errorf("unexpected reply: key %d of length %v, with %d bytes of keys left", i, lens[i], len(joined)-at)
		}
		card, _ := cards[i].(int64)
		out[i] = change{journalEntry: journalEntry{Key: joined[at : at+int(size)]}, card: card}
		at += int(size)
		if len(echo) > 0 {
			flag, _ := echo[i].(int64)
			out[i].echo = flag == 1
		}
	}
	if at != len(joined) {
		return nil, "", 0, "", fmt.Errorf("unexpected reply: %d bytes of keys beyond the %d keys' lengths", len(joined)-at, n)
	}
	// The scores: runs of entries of one score, then one for each entry.
	i := 0
	for j := 0; j < len(runs); j += 2 {
		count, _ := runs[j+1].(int64)
		if count < 1 || count > int64(n-i) {
			return nil, "", 0, "", fmt.Errorf("unexpected reply: a run of %v entries at entry %d of %d", runs[j+1], i, n)
		}
		t, err := parseScore(out[i].Key, runs[j])
		if err != nil {
			return nil, "", 0, "", err
		}
		for range count {
			out[i].Time = t
			i++
		}
	}
	if len(rest) != n-i {
		return nil, "", 0, "", fmt.Errorf("unexpected reply: %d more scores for %d entries", len(rest), n-i)
	}
	for _, score := range rest {
		if out[i].Time, err = parseScore(out[i].Key, score); err != nil {
			return nil, "", 0, "", err
		}
		i++
	}
	return out, origin, now, run, nil
}

// parseScore reads the journal score of key.
func parseScore(key string, v any) (float64, error) {
	score, _ := v.(string)
	t, err := strconv.ParseFloat(score, 64)
	if err != nil {
		return 0, fmt.Errorf("journal entry %q: score %v: %w", key, v, err)
	}
	return t, nil
}

// parseTime reads a TIME reply, {seconds, microseconds}, as Unix seconds.
func parseTime(v any) (float64, error) {
	parts, _ := v.([]any)
	if len(parts) == 2 {
		sec, err1 := strconv.ParseInt(fmt.Sprint(parts[0]), 10, 64)
		usec, err2 := strconv.ParseInt(fmt.Sprint(parts[1]), 10, 64)
		if err1 == nil && err2 == nil {
			return float64(sec) + float64(usec)/1e6, nil
		}
	}
	return 0, fmt.Errorf("unexpected server time %v", v)
}
