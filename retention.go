package federated

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated/internal/metric"
)

// Retention drops whole periods, server by server, with a script that scans
// the keyspace in steps: each call looks at a few thousand keys, so a server
// is never held for long, and every server of the federation is worked on at
// once.

// dropScanCount is the COUNT of each SCAN of the drop script: a call takes a
// few milliseconds of a server's time.
const dropScanCount = 2000

// Lua patterns of a period string, by period length.
const (
	dayPattern  = `^%d%d%d%d%-%d%d%-%d%d$`
	hourPattern = `^%d%d%d%d%-%d%d%-%d%dT%d%d$`
)

// dropScript raises the horizon and removes one SCAN step's worth of the
// keys of dropped periods, with their journal entries.
//
// KEYS[1] is the journal, KEYS[2] the horizon key, KEYS[3] the origin hash
// (whose fields of the keys removed go with them). ARGV[1] is the SCAN
// cursor, ARGV[2] the COUNT, ARGV[3] the cutoff (the period string of the
// oldest period kept) and ARGV[4] the Lua pattern of a period string of the
// configured length.
//
// The horizon is raised on every call, before the scan: from the first call
// on, the write script refuses the periods being dropped, so no key can come
// back behind the cursor. It is only ever raised: a horizon, of either period
// length, at or after the cutoff stays. Periods compare by their digits, so
// the server's collation locale does not matter.
//
// A key is dropped when the text before its first ':' matches the pattern
// and comes before the cutoff; the journal, the horizon and keys of any
// other shape are never touched. The reply is {next cursor, keys removed}.
var dropScript = redis.NewScript(`
local function rank(p)
  if string.match(p, '^%d%d%d%d%-%d%d%-%d%d$') then
    return tonumber((string.gsub(p, '%D', ''))) * 100
  elseif string.match(p, '^%d%d%d%d%-%d%d%-%d%dT%d%d$') then
    return tonumber((string.gsub(p, '%D', '')))
  end
  return nil
end
local cutoff = ARGV[3]
local horizon = redis.call('GET', KEYS[2])
local kept = horizon and rank(horizon)
if not kept or kept < rank(cutoff) then
  redis.call('SET', KEYS[2], cutoff)
end
local limit = tonumber((string.gsub(cutoff, '%D', '')))
local r = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local batch, n, removed = {}, 0, 0
local function flush()
  removed = removed + redis.call('UNLINK', unpack(batch, 1, n))
  redis.call('ZREM', KEYS[1], unpack(batch, 1, n))
  redis.call('HDEL', KEYS[3], unpack(batch, 1, n))
  n = 0
end
for _, key in ipairs(r[2]) do
  local p = string.match(key, '^([^:]*):')
  if p and key ~= KEYS[1] and key ~= KEYS[2] and key ~= KEYS[3] and string.match(p, ARGV[4])
      and tonumber((string.gsub(p, '%D', ''))) < limit then
    n = n + 1
    batch[n] = key
    if n >= 1000 then flush() end
  end
end
if n > 0 then flush() end
return {r[1], removed}
`)

// DropReport says what DropBefore removed.
type DropReport struct {
	// Cutoff is the start of the oldest period kept: every period before it
	// was dropped.
	Cutoff time.Time
	// Horizon is Cutoff as a period string, the value the horizon key of
	// every server that was reached now holds, or a later one it held
	// already.
	Horizon string
	// Removed is the number of keys removed, by server address. A server
	// that failed has the keys it removed before failing.
	Removed map[string]int64
	// Total is the number of keys removed on all servers.
	Total int64
	// Duration is how long the drop took.
	Duration time.Duration
}

// DropBefore drops every period that ended at or before t: all its metric
// keys on every server of the federation (all servers of every replica
// group, not only the current ones) and their journal entries. It first
// raises each server's horizon key to the oldest period kept, so that the
// write script refuses the dropped periods from then on and a dropped period
// never comes back. Keys of other shapes (the journal, the horizon, the
// origin hash, a syncer's cursors, anything not "$period:...") are never
// touched, nor are keys whose period string has the other length ("hour"
// keys under "day").
//
// A server that comes back empty, or a node added later, holds no horizon
// until the next DropBefore: in a replica group the syncer gives it the
// group's at once, but a node of one server accepts points of dropped
// periods until then. KeepPeriods, run in the background, closes that gap
// within its interval.
//
// A server marked down is not asked, and a server that fails stops being
// worked on: each gives an error that names it, all of them joined, and the
// report counts what was removed. Dropping again later finishes the job.
//
// DropBefore refuses a t that would drop the period in progress (by the
// client's clock).
func (c *Client) DropBefore(ctx context.Context, t time.Time) (DropReport, error) {
	began := time.Now()
	p := c.period()
	if err := metric.ValidateTimestamp(metric.Seconds(t)); err != nil {
		return DropReport{}, err
	}
	// The period that holds t has not ended at t: it is the oldest kept.
	cutoff := p.Start(t)
	if current := p.Start(time.Now()); cutoff.After(current) {
		return DropReport{}, fmt.Errorf("federated: DropBefore %s would drop the current period %s",
			t.UTC().Format(time.RFC3339), p.Format(current))
	}
	report := DropReport{Cutoff: cutoff, Horizon: p.Format(cutoff), Removed: make(map[string]int64)}
	pattern := c.periodPattern()
	var mu sync.Mutex
	err := c.ForEachServer(ctx, func(ctx context.Context, addr string, rc *redis.Client) error {
		if err := c.downError(addr); err != nil {
			return err
		}
		removed, err := c.dropOnServer(ctx, rc, report.Horizon, pattern)
		mu.Lock()
		report.Removed[addr] = removed
		report.Total += removed
		mu.Unlock()
		return err
	})
	report.Duration = time.Since(began)
	return report, err
}

// RaiseHorizon gives one server the horizon h, a period string as Horizon
// returns it, unless it keeps a later one, and drops the keys of older
// periods on it, as DropBefore does on every server. The syncer uses it to
// carry a group's horizon to a server that missed a DropBefore or came back
// empty, so that a dropped period cannot come back through that server. It
// returns the number of keys removed, and refuses an h that is not a period
// string of the configured period, or that is after the next period by the
// client's clock (DropBefore can set the current period as the horizon, and
// the clock of the host that set it may be ahead of this one).
func (c *Client) RaiseHorizon(ctx context.Context, addr, h string) (int64, error) {
	p := c.period()
	start, err := p.Parse(h)
	if err != nil {
		return 0, fmt.Errorf("federated: RaiseHorizon on %s: %w", addr, err)
	}
	if next := p.Next(p.Start(time.Now())); start.After(next) {
		return 0, fmt.Errorf("federated: RaiseHorizon on %s: horizon %s is after the next period %s",
			addr, h, p.Format(next))
	}
	rc, err := c.serverClient(addr)
	if err != nil {
		return 0, err
	}
	removed, err := c.dropOnServer(ctx, rc, h, c.periodPattern())
	if err != nil {
		return removed, fmt.Errorf("federated: server %s: raising the horizon to %s: %w", addr, h, err)
	}
	return removed, nil
}

// periodPattern returns the Lua pattern of a period string of the configured
// length, for the drop script.
func (c *Client) periodPattern() string {
	if c.period() == metric.Hour {
		return hourPattern
	}
	return dayPattern
}

// dropOnServer runs the drop script on one server until its scan is done,
// and returns how many keys it removed.
func (c *Client) dropOnServer(ctx context.Context, rc *redis.Client, horizon, pattern string) (int64, error) {
	keys := []string{c.opts.Metrics.Journal, c.horizonKey(), c.OriginKey()}
	cursor, removed := "0", int64(0)
	for {
		cctx, cancel := c.withTimeout(ctx)
		val, err := dropScript.Run(cctx, rc, keys, cursor, dropScanCount, horizon, pattern).Slice()
		cancel()
		if err != nil {
			return removed, err
		}
		next, n, err := parseDropReply(val)
		if err != nil {
			return removed, err
		}
		removed += n
		if next == "0" {
			return removed, nil
		}
		cursor = next
	}
}

// parseDropReply reads the drop script's reply: {next cursor, keys removed}.
func parseDropReply(val []any) (string, int64, error) {
	if len(val) == 2 {
		cursor, isString := val[0].(string)
		removed, isInt := val[1].(int64)
		if _, err := strconv.ParseUint(cursor, 10, 64); isString && isInt && err == nil {
			return cursor, removed, nil
		}
	}
	return "", 0, fmt.Errorf("federated: unexpected reply %v from the drop script", val)
}

// KeepPeriods keeps the n most recent periods, the current one included,
// and drops older ones: it calls DropBefore at once and then every every,
// with the start of the (n-1)th period before the current one, until ctx
// ends, and returns ctx.Err(); or ErrClosed when the client closes. n zero
// means Options.Metrics.Retention. Run it in a goroutine of your own. Each
// drop is logged to Options.Logger: at Info when keys were removed, at Debug
// when there was nothing to remove, and its failures at Warn; a failed drop
// is tried again on the next tick.
func (c *Client) KeepPeriods(ctx context.Context, n int, every time.Duration) error {
	if n == 0 {
		n = c.opts.Metrics.Retention
	}
	if n < 1 || n > maxRetention {
		return fmt.Errorf("federated: KeepPeriods: keep %d periods, want 1 to %d (n, or else Options.Metrics.Retention)", n, maxRetention)
	}
	if every <= 0 {
		return fmt.Errorf("federated: KeepPeriods: interval %v, want more than 0", every)
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	p := c.period()
	for {
		cutoff := p.Start(time.Now()).Add(-time.Duration(n-1) * p.Duration())
		report, err := c.DropBefore(ctx, cutoff)
		switch {
		case errors.Is(err, ErrClosed):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			c.opts.Logger.Warn("federated: dropping old periods failed", "before", report.Horizon,
				"removed", report.Total, "took", report.Duration, "err", err)
		case report.Total > 0:
			c.opts.Logger.Info("federated: dropped old periods", "before", report.Horizon,
				"removed", report.Total, "servers", len(report.Removed), "took", report.Duration)
		default:
			c.opts.Logger.Debug("federated: no old periods to drop", "before", report.Horizon)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrClosed
		case <-ticker.C:
		}
	}
}
