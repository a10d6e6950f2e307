package journal

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redfed/federated/internal/metric"
)

// dropScanCount is the COUNT of each SCAN of DropScript: a call takes a few
// milliseconds of a server's time.
const dropScanCount = 2000

// Lua patterns of a period string, by period length.
const (
	dayPattern  = `^%d%d%d%d%-%d%d%-%d%d$`
	hourPattern = `^%d%d%d%d%-%d%d%-%d%dT%d%d$`
)

// Drop raises a server's horizon to h, a period string of p, unless it
// keeps a later one, and removes the keys of the periods before it with
// their journal entries, DropScript call by call until its scan is done. It
// returns the number of keys removed. From the first call on, the server
// refuses writes of the periods dropped.
func Drop(ctx context.Context, run Runner, addr string, keys Keys, p metric.Period, h string) (int64, error) {
	pattern := dayPattern
	if p == metric.Hour {
		pattern = hourPattern
	}
	cursor, removed := "0", int64(0)
	for {
		val, err := run.RunOnServer(ctx, addr, DropScript, keys.Write, cursor, dropScanCount, h, pattern).Slice()
		if err != nil {
			return removed, err
		}
		next, n, err := parseDropReply(val)
		if err != nil {
			return removed, fmt.Errorf("server %s: %w", addr, err)
		}
		removed += n
		if next == "0" {
			return removed, nil
		}
		cursor = next
	}
}

// parseDropReply reads DropScript's reply: {next cursor, keys removed}.
func parseDropReply(val []any) (string, int64, error) {
	if len(val) == 2 {
		cursor, isString := val[0].(string)
		removed, isInt := val[1].(int64)
		if _, err := strconv.ParseUint(cursor, 10, 64); isString && isInt && err == nil {
			return cursor, removed, nil
		}
	}
	return "", 0, fmt.Errorf("unexpected reply %v from the drop script", val)
}

// CheckHorizon refuses a horizon h that is not a period string of p (a
// peer configured with another period), or that is after the next period
// by this host's clock (a horizon set by mistake, or a clock far ahead):
// raising a server to it would wipe the server.
func CheckHorizon(p metric.Period, h string) error {
	start, err := p.Parse(h)
	if err != nil {
		return err
	}
	if next := p.Next(p.Start(time.Now())); start.After(next) {
		return fmt.Errorf("horizon %s is after the next period %s", h, p.Format(next))
	}
	return nil
}

// ReadableHorizon returns h, a horizon as a server holds it, or "" where a
// reader is not to go by it: a value that is no period string of either
// length (an operator's mistake), or one after the next period by this
// host's clock (see CheckHorizon), which would hide every period.
func ReadableHorizon(h string) string {
	if CheckHorizon(metric.Day, h) == nil || CheckHorizon(metric.Hour, h) == nil {
		return h
	}
	return ""
}
