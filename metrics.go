package federated

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/metric"
)

// Metrics are time series stored in plain sorted sets, the schema of the
// Perl metrics system: key "$period:$host:$metric" (period the UTC start of
// a day, or an hour), member "$timestamp:$value", score the timestamp in
// Unix seconds. Every server also keeps a journal, a sorted set whose
// members are the metric keys it holds and whose scores are the server's
// own time of each key's last change; data and journal are written together
// by one script call. Old data goes by dropping whole periods.

// topologyRounds is how many times Record writes its point again when the
// topology changes while it writes.
const topologyRounds = 3

// Defaults of MetricsOptions.
const (
	DefaultPeriod  = "day"
	DefaultJournal = journal.DefaultJournal
	DefaultCopies  = 1
)

// MetricsOptions configure the metric schema. The zero value of every field
// means its default.
type MetricsOptions struct {
	// Period is the length of a key's period: "day" (default) or "hour".
	Period string `yaml:"period" json:"period"`
	// Journal is the key of each server's journal. Default "journal". The
	// key Journal+":horizon" holds the oldest period still kept, and
	// Journal+":origin" where each key's last change came from (which
	// syncers read). It may not be "syncer:cursors" nor "syncer:marks",
	// the syncer's hashes on every server, nor begin with a period as a
	// metric key does ("2026-11-25:"), which would make these keys look
	// like metric data, nor hold control or invisible characters.
	Journal string `yaml:"journal" json:"journal"`
	// Retention is how many periods KeepPeriods keeps, the current one
	// included. Default 0: keep everything.
	Retention int `yaml:"retention" json:"retention"`
	// Copies is how many servers of its node's group must have applied a
	// metric write (Client.Record, a Recorder's flush) before it is
	// acknowledged. Default 1: the node's current server alone, from which
	// the syncer copies it within a pass; should that server die before
	// then, the points it acknowledged are lost. With 2 or more, the write
	// then goes, in turn, to the next up servers of the group, and fails
	// while fewer than Copies of them can take it, with an error that names
	// the node and each server that could not (matching ErrServerDown where
	// one was down): the caller sends it again. Config.Validate refuses a
	// node with fewer servers than Copies.
	Copies int `yaml:"copies" json:"copies"`
}

// MaxRetention bounds the periods kept, so that the cutoff, periods back
// from now, is a time a Duration can hold (about 290 years).
const MaxRetention = 100_000

func (m MetricsOptions) withDefaults() MetricsOptions {
	if m.Period == "" {
		m.Period = DefaultPeriod
	}
	if m.Journal == "" {
		m.Journal = DefaultJournal
	}
	if m.Copies == 0 {
		m.Copies = DefaultCopies
	}
	return m
}

// period returns the client's period; Options validation guarantees the
// name parses.
func (c *Client) period() metric.Period {
	p, _ := metric.ParsePeriod(c.opts.Metrics.Period)
	return p
}

// Errors of bad metric input. They wrap into errors that quote the value and
// say what is wrong with it.
var (
	ErrBadHost      = metric.ErrBadHost      // empty, too long, ':' or control or invisible characters
	ErrBadMetric    = metric.ErrBadMetric    // empty, too long or control or invisible characters
	ErrBadValue     = metric.ErrBadValue     // NaN or ±Inf
	ErrBadTimestamp = metric.ErrBadTimestamp // before 1970, after 9999, NaN or ±Inf
	ErrBadKey       = metric.ErrBadKey       // not "$period:$host:$metric"
	ErrBadMember    = metric.ErrBadMember    // not "$timestamp:$value"
)

// MetricKey returns the key of a host's metric for the period, of the
// client's configured length, that holds t.
func (c *Client) MetricKey(t time.Time, host, metricName string) (string, error) {
	return metric.Key(c.period(), t, host, metricName)
}

// ParseMetricKey splits a metric key, of daily or hourly periods, into the
// start of its period, the host and the metric name.
func ParseMetricKey(key string) (period time.Time, host, metricName string, err error) {
	p := metric.Day
	if prefix, _, _ := strings.Cut(key, ":"); len(prefix) == len("2006-01-02T15") {
		p = metric.Hour
	}
	return metric.ParseKey(p, key)
}

// FormatMember returns the sorted-set member of a point: "$timestamp:$value"
// with the timestamp in Unix seconds.
func FormatMember(t time.Time, value float64) (string, error) {
	return metric.FormatMember(metric.Seconds(t), value)
}

// ParseMember parses a sorted-set member "$timestamp:$value", as written by
// this package or by the Perl system.
func ParseMember(member string) (time.Time, float64, error) {
	ts, v, err := metric.ParseMember(member)
	if err != nil {
		return time.Time{}, 0, err
	}
	return metric.Time(ts), v, nil
}

// checkPoint validates one point and returns its timestamp in seconds.
func checkPoint(host, metricName string, t time.Time, value float64) (float64, error) {
	if err := metric.ValidateHost(host); err != nil {
		return 0, err
	}
	if err := metric.ValidateMetric(metricName); err != nil {
		return 0, err
	}
	ts := metric.Seconds(t)
	if err := metric.ValidateTimestamp(ts); err != nil {
		return 0, err
	}
	return ts, metric.ValidateValue(value)
}

// Record writes one point and waits for Redis to acknowledge it: the member,
// and the key's journal entry scored with the server's clock, in one script
// call on each of MetricsOptions.Copies servers of the key's group. For
// many points use a Recorder of package metrics.
//
// When the topology changes while it writes (AddNode, RemoveNode,
// ReplaceNode, SetNodes), it writes the point again on its key's node of now: a
// point is acknowledged where reads look for it.
func (c *Client) Record(ctx context.Context, host, metricName string, t time.Time, value float64) error {
	ts, err := checkPoint(host, metricName, t, value)
	if err != nil {
		return err
	}
	p := c.period()
	key := string(metric.AppendKey(nil, p, p.Start(t), host, metricName))
	var b journal.Batch
	b.Add(key, metric.AppendMember(nil, ts, value))
	var (
		n       *node
		replies []ScriptReply
	)
	for round := 0; ; round++ {
		version := c.topo.Load().version
		if n, err = c.route("", key); err != nil {
			return err
		}
		replies, err = c.runOnNode(ctx, n, &ScriptCall{
			Script: journal.WriteScript, Keys: c.keys.Write, Args: b.Args(), Idempotent: true, Copies: c.opts.Metrics.Copies})
		if c.topo.Load().version == version || round == topologyRounds || ctx.Err() != nil || errors.Is(err, ErrClosed) {
			break
		}
	}
	if err != nil {
		return err
	}
	servers, vals := splitReplies(replies)
	if err := b.ParseReplies(servers, vals, func(server string, err error) error {
		return &ServerError{Node: n.name, Server: server, Err: err}
	}); err != nil {
		return err
	}
	return b.Failed[0]
}

// splitReplies returns the servers and the values of script replies.
func splitReplies(replies []ScriptReply) (servers []string, vals []any) {
	servers, vals = make([]string, len(replies)), make([]any, len(replies))
	for i, r := range replies {
		servers[i], vals[i] = r.Server, r.Val
	}
	return servers, vals
}
