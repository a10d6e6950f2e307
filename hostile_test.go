package federated_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// hostileKeys are keys of every byte value and of awkward UTF-8, by name.
func hostileKeys() map[string][]string {
	var single, prefixed []string
	all := make([]byte, 256)
	for b := range 256 {
		all[b] = byte(b)
		single = append(single, string([]byte{byte(b)}))
		prefixed = append(prefixed, "k"+string([]byte{byte(b)})+"k")
	}
	return map[string][]string{
		"every byte alone":      single,
		"every byte inside":     prefixed,
		"all 256 bytes in one":  {string(all), string(bytes.Repeat(all, 4))},
		"CRLF and RESP markers": {"a\r\nb", "\r\n", "*1\r\n$4\r\nPING\r\n", "$-1", "+OK", "-ERR x"},
		"UTF-8": {
			"ключ", "键", "🔑🔑", "e\u0301", "\u202eevil", "\ufeffbom", "\u0000nul",
			"\xef\xbf\xbd", "日本語:キー:{タグ}", strings.Repeat("ü", 1000),
		},
		"invalid UTF-8": {"\xff\xfe", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80"},
		"hash tags":     {"{", "}", "{}", "{}}", "{{}}", "{a}{b}", "x{}y{z}", "{user1}.a", "{user1}.b"},
		"empty":         {""},
	}
}

func TestHostileKeys(t *testing.T) {
	servers := redistest.StartN(t, 3)
	ctx := context.Background()
	direct := make(map[string]*redis.Client)
	for _, s := range servers {
		direct[s.Addr()] = directClient(t, s.Addr())
	}
	for _, hashTags := range []bool{false, true} {
		opts := testOptions()
		opts.HashTags = hashTags
		c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
		for name, keys := range hostileKeys() {
			t.Run(fmt.Sprintf("%s/hash tags %v", name, hashTags), func(t *testing.T) {
				// The blocking API: each key holds its own bytes, on the
				// server KeyToNode names.
				for i, k := range keys {
					value := fmt.Sprintf("%d:%q", i, k)
					require.NoError(t, c.Set(ctx, k, value, 0).Err(), "Set %q", k)
					got, err := c.Get(ctx, k).Result()
					require.NoError(t, err, "Get %q", k)
					require.Equal(t, value, got, "Get %q", k)
					onServer, err := direct[mustServer(t, c, k)].Get(ctx, k).Result()
					require.NoError(t, err, "key %q on its server", k)
					require.Equal(t, value, onServer)
				}

				// The pipeline: binary values under binary keys.
				p := c.Chain()
				for i, k := range keys {
					p.Set(k, k+string(rune(i)))
				}
				require.NoError(t, p.Poll(ctx))
				got := make([]string, len(keys))
				for i, k := range keys {
					p.Get(k, func(v string, err error) {
						require.NoError(t, err, "pipelined Get %q", k)
						got[i] = v
					})
				}
				require.NoError(t, p.Poll(ctx))
				for i, k := range keys {
					require.Equal(t, k+string(rune(i)), got[i], "pipelined Get %q", k)
				}

				// A key group keeps them on one node: MGet in one call.
				g := c.Group("\x00group\xff")
				for _, k := range keys {
					require.NoError(t, g.Set(ctx, k, k, 0).Err())
				}
				vals, err := g.MGet(ctx, keys...).Result()
				require.NoError(t, err)
				for i, k := range keys {
					require.Equal(t, k, vals[i], "MGet %q", k)
				}
				require.Equal(t, int64(len(distinct(keys))), g.Del(ctx, keys...).Val())
			})
		}
	}
}

func distinct(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func TestHostileLargeValues(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i * 7)
	}
	tests := []struct {
		name       string
		key, value string
	}{
		{"1 MiB binary value", "big", string(mib)},
		{"1 MiB of one byte", "zeros", string(make([]byte, 1<<20))},
		{"1 MiB key", string(mib[:1<<20]), "v"},
		{"1 MiB + 1 value", "big+1", string(mib) + "!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Set(ctx, tt.key, tt.value, 0).Err())
			got, err := c.Get(ctx, tt.key).Result()
			require.NoError(t, err)
			require.True(t, got == tt.value, "Get gave %d bytes, want %d", len(got), len(tt.value))

			var piped string
			require.NoError(t, c.Chain().Set(tt.key+"/p", tt.value).Get(tt.key+"/p", func(v string, err error) {
				require.NoError(t, err)
				piped = v
			}).Poll(ctx))
			require.True(t, piped == tt.value, "pipelined Get gave %d bytes, want %d", len(piped), len(tt.value))
		})
	}
}

func TestHostileMetricNames(t *testing.T) {
	servers := redistest.StartN(t, 3)
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	at := anHourAgo()
	tests := []struct {
		name         string
		host, metric string
	}{
		{"colons in the metric", "web1.sfo", "disk:/var:used"},
		{"a trailing colon", "web1.sfo", "cpu:"},
		{"braces", "{web1}", "{cpu}.user"},
		{"hash tag look-alike", "web1.sfo", "{}"},
		{"spaces", "web 1", " cpu user "},
		{"HTML", "<b>web1</b>", `<script>alert("x")</script>&amp;`},
		{"quotes and backslashes", `we"b'1\`, `m"\n\"`},
		{"printf verbs", "%s%d", "%v%!%n"},
		{"Lua patterns", "%d+.*", "^[^:]*$%"},
		{"glob", "*", "[a-z]?*"},
		{"UTF-8", "hôte-日本", "température°C 🔥"},
		{"period look-alike", "2026-11-25", "2026-11-25:x"},
		{"long", strings.Repeat("h", 256), strings.Repeat("m:", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Record(ctx, tt.host, tt.metric, at, 1.5))
			r := newRecorder(t, c, metrics.RecorderOptions{})
			require.NoError(t, r.Add(context.Background(), tt.host, tt.metric, at.Add(time.Second), 2.5))
			require.NoError(t, r.Close())

			points, err := rangeOf(ctx, newStore(t, c), tt.host, tt.metric, at, at.Add(time.Minute))
			require.NoError(t, err)
			require.Equal(t, []metrics.Point{{Time: at, Value: 1.5}, {Time: at.Add(time.Second), Value: 2.5}}, points)
			latest, err := newStore(t, c).Latest(ctx, metrics.Series{Host: tt.host, Metric: tt.metric})
			require.NoError(t, err)
			require.Equal(t, 2.5, latest.Value)

			hosts, err := newStore(t, c).Hosts(ctx, time.Time{})
			require.NoError(t, err)
			require.Contains(t, hosts, tt.host)
			metrics, err := newStore(t, c).Metrics(ctx, tt.host, time.Time{})
			require.NoError(t, err)
			require.Contains(t, metrics, tt.metric)

			key, err := c.MetricKey(at, tt.host, tt.metric)
			require.NoError(t, err)
			_, host, metric, err := federated.ParseMetricKey(key)
			require.NoError(t, err)
			require.Equal(t, []string{tt.host, tt.metric}, []string{host, metric}, "the key %q parses back", key)
		})
	}

	// Names that cannot be stored are refused before anything is sent.
	counter := &commandCounter{}
	opts := testOptions()
	opts.Hooks = []redis.Hook{counter}
	checked := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	bad := []struct {
		name         string
		host, metric string
		want         error
	}{
		{"empty host", "", "cpu", federated.ErrBadHost},
		{"colon in the host", "web1:sfo", "cpu", federated.ErrBadHost},
		{"newline in the host", "web1\n", "cpu", federated.ErrBadHost},
		{"NUL in the metric", "web1", "cpu\x00", federated.ErrBadMetric},
		{"invalid UTF-8", "web1", "cpu\xff", federated.ErrBadMetric},
		{"DEL in the metric", "web1", "cpu\x7f", federated.ErrBadMetric},
		{"too long", strings.Repeat("h", 257), "cpu", federated.ErrBadHost},
		{"empty metric", "web1", "", federated.ErrBadMetric},
	}
	for _, tt := range bad {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			require.ErrorIs(t, checked.Record(ctx, tt.host, tt.metric, at, 1), tt.want)
			_, err := rangeOf(ctx, newStore(t, checked), tt.host, tt.metric, at, at)
			require.ErrorIs(t, err, tt.want)
			r := newRecorder(t, checked, metrics.RecorderOptions{})
			require.ErrorIs(t, r.Add(context.Background(), tt.host, tt.metric, at, 1), tt.want)
			require.NoError(t, r.Close())
			require.Zero(t, counter.Count(), "commands sent for a refused name")
		})
	}
}

func TestHostileConfigs(t *testing.T) {
	docs := []struct {
		name, doc string
		want      string
	}{
		{"empty file", "", "empty document"},
		{"blank", " \n \n", "empty document"},
		{"a tab", "\t\n", "cannot start any token"},
		{"comment only", "# nothing\n", "empty document"},
		{"document marker", "---\n", "no nodes"},
		{"null", "null\n", "no nodes"},
		{"empty map", "{}\n", "no nodes"},
		{"empty nodes", "nodes: {}\n", "no nodes"},
		{"a list", "[1, 2]\n", "cannot unmarshal"},
		{"a scalar", "hello\n", "cannot unmarshal"},
		{"empty node", "nodes: {a: {}}\n", "neither address nor addresses"},
		{"empty group", "nodes: {a: {addresses: []}}\n", "neither address nor addresses"},
		{"same server twice", "nodes: {a: {address: \"h:1\"}, b: {address: \"h:1\"}}\n", "already in node a"},
		{"twice in a group", "nodes: {a: {addresses: [\"h:1\", \"h:1\"]}}\n", "listed twice"},
		{"spelt twice", "nodes: {a: {addresses: [\"H:1\", \"h:01\"]}}\n", "listed twice in node a (as H:1)"},
		{"duplicate node", "nodes: {a: {address: \"h:1\"}, a: {address: \"h:2\"}}\n", "already defined"},
		{"NUL in address", "nodes: {a: {address: \"h\\0:1\"}}\n", "control character"},
		{"space in address", "nodes: {a: {address: \" h:1\"}}\n", "space"},
		{"huge port", "nodes: {a: {address: \"h:99999999999999999999\"}}\n", "port"},
		{"huge seconds", "nodes: {a: {address: \"h:1\"}}\noptions: {command_timeout: 1e30}\n", "options.command_timeout: 1e30 seconds is out of range"},
		{"NaN multiplier", "nodes: {a: {address: \"h:1\"}}\noptions: {retry_interval_mult: .nan}\n", "options.retry_interval_mult: NaN"},
		{"infinite multiplier", "nodes: {a: {address: \"h:1\"}}\noptions: {retry_interval_mult: .inf}\n", "options.retry_interval_mult: +Inf"},
		{"huge retention", "nodes: {a: {address: \"h:1\"}}\noptions: {metrics: {retention: 1000000}}\n", "options.metrics.retention: 1000000 periods, want 0 (keep everything) to 100000"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", ""},
	}
	for _, tt := range docs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := federated.ParseConfig([]byte(tt.doc))
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	for name, cfg := range map[string]federated.Config{
		"zero Config":     {},
		"empty node name": {Nodes: map[string]federated.Node{" ": {Address: "h:1"}}},
		"same server":     {Nodes: map[string]federated.Node{"a": {Address: "h:1"}, "b": {Addresses: []string{"h:2", "h:1"}}}},
		"nil hook":        {Nodes: map[string]federated.Node{"a": {Address: "h:1"}}, Options: federated.Options{Hooks: []redis.Hook{nil}}},
	} {
		t.Run("New/"+name, func(t *testing.T) {
			c, err := federated.New(cfg)
			require.ErrorIs(t, err, federated.ErrInvalidConfig)
			require.Nil(t, c)
		})
	}
}

// assertAnswerError checks the error of a command a server refused: it says
// why, and the server was not taken for down.
func assertAnswerError(t *testing.T, c *federated.Client, err error, want ...string) {
	t.Helper()
	require.Error(t, err)
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
	assert.NotErrorIs(t, err, federated.ErrServerDown)
	for _, st := range c.Status() {
		assert.False(t, st.Down, "server %s marked down after an error reply: %v", st.Address, st.LastError)
	}
}

// anHourAgo is a point time an hour ago, to the second, with the minute
// after it in the same UTC day: the points a test writes from it on share
// one day's keys whenever it runs.
func anHourAgo() time.Time {
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if at.Add(time.Minute).Day() != at.Day() {
		at = at.Add(-time.Minute)
	}
	return at
}

func TestHostileWrongType(t *testing.T) {
	servers := redistest.StartN(t, 1) // one node: every key in one script call
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	direct := directClient(t, servers[0].Addr())
	at := anHourAgo()
	key, err := c.MetricKey(at, "web1", "broken")
	require.NoError(t, err)
	require.NoError(t, direct.Set(ctx, key, "someone's string", 0).Err())

	// Record fails for that key, says which and why, and writes nothing.
	err = c.Record(ctx, "web1", "broken", at, 1)
	assertAnswerError(t, c, err, key, "WRONGTYPE")
	assert.ErrorIs(t, err, federated.ErrWrongType)
	assert.NotErrorIs(t, err, federated.ErrTemporary)

	// A Recorder batch: the bad key fails, the others are written.
	var onError []error
	r := newRecorder(t, c, metrics.RecorderOptions{FlushInterval: time.Hour, OnError: func(err error, points int) {
		onError = append(onError, err)
		assert.Equal(t, 3, points)
	}})
	for i := range 3 {
		ts := at.Add(time.Duration(i) * time.Second)
		require.NoError(t, r.Add(context.Background(), "web1", "good", ts, float64(i)))
		require.NoError(t, r.Add(context.Background(), "web1", "broken", ts, float64(i)))
		require.NoError(t, r.Add(context.Background(), "web2", "good", ts, float64(i)))
	}
	err = r.Flush(ctx)
	assertAnswerError(t, c, err, key, "WRONGTYPE")
	assert.ErrorIs(t, err, federated.ErrWrongType)
	require.Len(t, onError, 1)
	st := r.Stats()
	assert.Equal(t, metrics.RecorderStats{Added: 9, Written: 6, Failed: 3, Flushes: 1}, st)
	for _, host := range []string{"web1", "web2"} {
		points, err := rangeOf(ctx, newStore(t, c), host, "good", at, at.Add(time.Minute))
		require.NoError(t, err)
		assert.Len(t, points, 3, "%s's good series", host)
	}

	// Nothing half-written: the key still holds the string and the journal
	// knows only the keys that were written.
	assert.Equal(t, "someone's string", direct.Get(ctx, key).Val())
	journal, err := direct.ZRange(ctx, "journal", 0, -1).Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{mustKey(t, c, at, "web1", "good"), mustKey(t, c, at, "web2", "good")}, journal)

	// Reads: the bad key's error names it; the other reads succeed.
	_, err = rangeOf(ctx, newStore(t, c), "web1", "broken", at, at.Add(time.Minute))
	assertAnswerError(t, c, err, key, "WRONGTYPE")
	var good []string
	err = c.Chain().
		ZRangeByScore(key, &redis.ZRangeBy{Min: "-inf", Max: "+inf"}, nil).
		ZRangeByScore(mustKey(t, c, at, "web1", "good"), &redis.ZRangeBy{Min: "-inf", Max: "+inf"}, func(m []string, err error) {
			require.NoError(t, err)
			good = m
		}).Poll(ctx)
	assertAnswerError(t, c, err, "zrangebyscore "+key, "WRONGTYPE")
	assert.Len(t, good, 3)
}

// A journal, horizon or origin hash of another type (an operator's SET or
// HSET by mistake) fails every metric write of its server before anything
// is written, naming the key. The write script checked them after its
// ZADDs: a string journal left the member stored with no journal entry,
// which no syncer copies, and a string origin hash the member and its
// entry written while Record said it failed.
func TestHostileWrongTypeJournal(t *testing.T) {
	for _, tc := range []struct {
		key  string
		set  func(r *redis.Client, key string) error
		what string
	}{
		{"journal", func(r *redis.Client, key string) error { return r.Set(context.Background(), key, "x", 0).Err() }, "holds a string, not a zset"},
		{"journal:horizon", func(r *redis.Client, key string) error { return r.HSet(context.Background(), key, "f", "v").Err() }, "holds a hash, not a string"},
		{"journal:origin", func(r *redis.Client, key string) error { return r.Set(context.Background(), key, "x", 0).Err() }, "holds a string, not a hash"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			servers := redistest.StartN(t, 1)
			c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
			ctx := context.Background()
			direct := directClient(t, servers[0].Addr())
			require.NoError(t, tc.set(direct, tc.key))
			at := anHourAgo()
			err := c.Record(ctx, "web1", "cpu", at, 1)
			assertAnswerError(t, c, err, "WRONGTYPE "+tc.key+" "+tc.what)
			assert.Zero(t, direct.Exists(ctx, mustKey(t, c, at, "web1", "cpu")).Val(), "nothing written")
			if tc.key != "journal" {
				assert.Zero(t, direct.Exists(ctx, "journal").Val(), "nothing journalled")
			}

			require.NoError(t, direct.Del(ctx, tc.key).Err())
			require.NoError(t, c.Record(ctx, "web1", "cpu", at, 1))
		})
	}
}

func TestHostileOutOfMemory(t *testing.T) {
	servers := redistest.StartN(t, 1, redistest.Options{Args: []string{"--maxmemory", "1mb", "--maxmemory-policy", "noeviction"}})
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: testOptions()})
	ctx := context.Background()
	direct := directClient(t, servers[0].Addr())
	at := anHourAgo()
	// 1 MiB is little more than an empty server uses: loading the write
	// script may be what fills it.
	require.NoError(t, c.Set(ctx, "before", "v", 0).Err(), "a server with room takes writes")
	require.NoError(t, c.Record(ctx, "web1", "before", at, 1))

	// Fill it.
	filler := strings.Repeat("x", 16<<10)
	var fillErr error
	for i := 0; fillErr == nil && i < 1000; i++ {
		fillErr = direct.Set(ctx, fmt.Sprint("filler-", i), filler, 0).Err()
	}
	require.ErrorContains(t, fillErr, "OOM", "the server is full")

	err := c.Record(ctx, "web1", "cpu", at, 1)
	assertAnswerError(t, c, err, "OOM", mustKey(t, c, at, "web1", "cpu"))
	assert.ErrorIs(t, err, federated.ErrTemporary, "a full server may take it later")
	assert.NotErrorIs(t, err, federated.ErrWrongType)
	r := newRecorder(t, c, metrics.RecorderOptions{})
	for i := range 10 {
		require.NoError(t, r.Add(context.Background(), fmt.Sprint("web", i), "cpu", at, 1))
	}
	err = r.Flush(ctx)
	assertAnswerError(t, c, err, "OOM")
	assert.Equal(t, int64(10), r.Stats().Failed)
	assertAnswerError(t, c, c.Set(ctx, "k", "v", 0).Err(), "OOM")
	assertAnswerError(t, c, c.Chain().Set("k", "v").Poll(ctx), "OOM", "set k")

	// Nothing half-written; reads still work.
	journal, err := direct.ZRange(ctx, "journal", 0, -1).Result()
	require.NoError(t, err)
	assert.Equal(t, []string{mustKey(t, c, at, "web1", "before")}, journal)
	assert.Zero(t, direct.Exists(ctx, mustKey(t, c, at, "web1", "cpu"), "k").Val())
	points, err := rangeOf(ctx, newStore(t, c), "web1", "before", at, at)
	require.NoError(t, err)
	assert.Len(t, points, 1)
	assert.Equal(t, "v", c.Get(ctx, "before").Val(), "a read of a full server")

	// Given room, it takes writes again: nothing was marked down.
	require.NoError(t, direct.ConfigSet(ctx, "maxmemory", "0").Err())
	require.NoError(t, c.Record(ctx, "web1", "cpu", at, 1))
}

func TestHostileReadOnlyReplica(t *testing.T) {
	primary := redistest.StartT(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := redistest.StartT(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", fmt.Sprint(primary.Port())}})
	ctx := context.Background()
	at := anHourAgo()
	opts := testOptions()
	writer := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: primary.Addr()}}, Options: opts})
	require.NoError(t, writer.Set(ctx, "k", "v", 0).Err())
	require.NoError(t, writer.Record(ctx, "web1", "cpu", at, 1))
	rdirect := directClient(t, replica.Addr())
	require.Eventually(t, func() bool { return rdirect.Get(ctx, "k").Val() == "v" }, 10*time.Second, 10*time.Millisecond,
		"the replica catches up")
	require.Eventually(t, func() bool { return rdirect.Exists(ctx, mustKey(t, writer, at, "web1", "cpu")).Val() == 1 },
		10*time.Second, 10*time.Millisecond)

	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: replica.Addr()}}, Options: opts})
	writes := []struct {
		name string
		run  func() error
		want []string
	}{
		{"Set", func() error { return c.Set(ctx, "k", "w", 0).Err() }, []string{"READONLY"}},
		{"pipelined Set", func() error { return c.Chain().Set("k", "w").Poll(ctx) }, []string{"READONLY", "set k"}},
		{"Record", func() error { return c.Record(ctx, "web1", "cpu", at.Add(time.Second), 2) }, []string{"READONLY", mustKey(t, c, at, "web1", "cpu")}},
		{"Recorder", func() error {
			r, err := newStore(t, c).NewRecorder(metrics.RecorderOptions{})
			require.NoError(t, err)
			require.NoError(t, r.Add(context.Background(), "web1", "cpu", at.Add(time.Second), 2))
			return r.Close()
		}, []string{"READONLY", mustKey(t, c, at, "web1", "cpu")}},
	}
	for _, tt := range writes {
		t.Run(tt.name, func(t *testing.T) {
			assertAnswerError(t, c, tt.run(), tt.want...)
		})
	}

	// Reads work, and nothing of the refused writes is there.
	assert.Equal(t, "v", c.Get(ctx, "k").Val())
	points, err := rangeOf(ctx, newStore(t, c), "web1", "cpu", at, at.Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, []metrics.Point{{Time: at, Value: 1}}, points)
	hosts, err := newStore(t, c).Hosts(ctx, time.Time{})
	require.NoError(t, err)
	assert.Equal(t, []string{"web1"}, hosts)
	assert.False(t, c.IsServerDown(replica.Addr()))
	var reply redis.Error
	assert.True(t, errors.As(c.Set(ctx, "k", "w", 0).Err(), &reply), "READONLY is Redis's answer")
}

func TestHostileRetryMultiplier(t *testing.T) {
	servers := redistest.StartN(t, 1)
	logs := &recordHandler{}
	opts := testOptions()
	opts.Logger = slog.New(logs)
	opts.BaseRetryInterval = 20 * time.Millisecond
	opts.MaxRetryInterval = 60 * time.Millisecond
	opts.MaxHostRetries = 1
	opts.RetryIntervalMult = 1e300 // the next interval overflows a Duration
	c := newClient(t, federated.Config{Nodes: singleNodes(servers), Options: opts})
	require.NoError(t, servers[0].Kill())
	require.NoError(t, c.MarkServerDown(servers[0].Addr()))
	require.Eventually(t, func() bool { return len(logs.Values("federated: server still down", "next_check")) >= 4 },
		5*time.Second, 10*time.Millisecond)
	got := logs.Values("federated: server still down", "next_check")[:4]
	want := []any{60 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond}
	assert.Equal(t, want, got, "a huge multiplier jumps to the cap, never past it")
}

// hostileServer is a fake Redis server on a loopback port, for replies no
// real server sends: it answers HELLO with hello and every other command,
// PING included, with reply. The first split bytes of an answer are written
// one at a time, a millisecond apart, so that they reach the client in
// reads of their own.
type hostileServer struct {
	ln           net.Listener
	hello, reply []byte
	split        int
	commands     atomic.Int64 // commands read, HELLO included

	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

// startHostileServer starts a hostileServer, speaking TLS when tlsConfig is
// set, and stops it when the test ends.
func startHostileServer(t *testing.T, tlsConfig *tls.Config, hello, reply string, split int) *hostileServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	h := &hostileServer{ln: ln, hello: []byte(hello), reply: []byte(reply), split: split}
	h.wg.Go(h.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		h.mu.Lock()
		h.closed = true
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		h.wg.Wait()
	})
	return h
}

func (h *hostileServer) addr() string { return h.ln.Addr().String() }

func (h *hostileServer) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = c.Close()
			return
		}
		h.conns = append(h.conns, c)
		h.mu.Unlock()
		h.wg.Go(func() { h.serve(c) })
	}
}

func (h *hostileServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		h.commands.Add(1)
		answer := h.reply
		if strings.EqualFold(args[0], "HELLO") {
			answer = h.hello
		}
		for i := 0; i < h.split && len(answer) > 0; i++ {
			if _, err := c.Write(answer[:1]); err != nil {
				return
			}
			answer = answer[1:]
			time.Sleep(time.Millisecond)
		}
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}

// readCommand reads one command as a client sends it: an array of bulk
// strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	n, err := readLength(r, '*')
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("a command of %d arguments", n)
	}
	args := make([]string, n)
	for i := range args {
		size, err := readLength(r, '$')
		if err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

func readLength(r *bufio.Reader, kind byte) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 4 || line[0] != kind {
		return 0, fmt.Errorf("want a %c header, got %q", kind, line)
	}
	return strconv.Atoi(line[1 : len(line)-2])
}

// totalAlloc is the bytes the process has allocated since it started.
func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// helloReplies are answers to go-redis's HELLO 3: a Redis before 6 refuses
// it and go-redis stays on RESP2; Redis 7 answers with a map and RESP3
// starts.
const (
	helloRefused = "-ERR unknown command 'HELLO'\r\n"
	helloRESP3   = "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n" +
		"$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
)

// hostileReplyTests are replies that declare more than a client should
// allocate, or are not RESP at all, with what the error must say.
var hostileReplyTests = []struct {
	name         string
	hello, reply string
	split        int // bytes of the reply written one at a time
	run          func(context.Context, *federated.Client) error
	want         error
	msg          string
	allocated    uint64 // the most the process may allocate meanwhile; 0 means 64 MiB
	answer       bool   // a value Redis itself may send: the command's failure, not the server's
}{
	{name: "array", hello: helloRefused, reply: "*2000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "*2000000000" declares 2000000000 elements, over the limit of 16777216 elements`},
	{name: "array byte by byte", hello: helloRefused, reply: "*2000000000\r\n", split: 13, want: federated.ErrReplyTooLarge,
		msg: `header "*2000000000" declares 2000000000 elements`},
	{name: "array to ZRANGEBYSCORE", hello: helloRefused, reply: "*2000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "*2000000000" declares 2000000000 elements`,
		run: func(ctx context.Context, c *federated.Client) error {
			return c.ZRangeByScore(ctx, "k", &redis.ZRangeBy{Min: "-inf", Max: "+inf"}).Err()
		}},
	{name: "array to a pipeline", hello: helloRefused, reply: "*2000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "*2000000000" declares 2000000000 elements`,
		run: func(ctx context.Context, c *federated.Client) error {
			return c.Chain().ZRangeByScore("k", &redis.ZRangeBy{Min: "-inf", Max: "+inf"}, nil).Poll(ctx)
		}},
	{name: "bulk", hello: helloRefused, reply: "$2000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "$2000000000" declares a string of 2000000000 bytes, over the limit of 536870912`},
	{name: "RESP3 map", hello: helloRESP3, reply: "%1000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "%1000000000" declares 1000000000 pairs, over the limit of 2796202 pairs`},
	{name: "RESP3 map byte by byte", hello: helloRESP3, reply: "%1000000000\r\n", split: 13, want: federated.ErrReplyTooLarge,
		msg: `header "%1000000000" declares 1000000000 pairs`},
	{name: "RESP3 map to HGETALL", hello: helloRESP3, reply: "%1000000000\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "%1000000000" declares 1000000000 pairs`,
		run: func(ctx context.Context, c *federated.Client) error { return c.HGetAll(ctx, "k").Err() }},
	// As many elements as the limit allows an array, which go-redis would
	// make a Go map of: 641 MiB. go-redis reads a map in RESP2 too.
	{name: "map as large as the largest array", hello: helloRefused, reply: "%8388608\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "%8388608" declares 8388608 pairs, over the limit of 2796202 pairs`},
	{name: "RESP3 map as large as the largest array", hello: helloRESP3, reply: "%8388608\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "%8388608" declares 8388608 pairs, over the limit of 2796202 pairs`},
	// Each header is within the limit, and go-redis allocates the first
	// array's 256 MiB of slots; nested, they would take 1 GiB.
	{name: "nested arrays", hello: helloRefused, reply: strings.Repeat("*16777216\r\n", 4), want: federated.ErrReplyTooLarge,
		msg:       `header "*16777216" inside 1 open aggregates brings the slots declared and not yet filled to 33554431, over the limit of 16777216`,
		allocated: 320 << 20},
	{name: "deep nesting", hello: helloRefused, reply: strings.Repeat("*1\r\n", 1<<20), want: federated.ErrReplyTooLarge,
		msg: `header "*1" opens an aggregate inside 512 others, over the limit of 512 levels`},
	{name: "endless line", hello: helloRefused, reply: "+" + strings.Repeat("x", 1<<20), want: federated.ErrReplyTooLarge,
		msg: `a '+' line longer than 65536 bytes`},
	{name: "hostile HELLO answer", hello: "*2000000000\r\n", reply: "+OK\r\n", want: federated.ErrReplyTooLarge,
		msg: `header "*2000000000" declares 2000000000 elements`},
	{name: "not Redis", hello: "HTTP/1.1 400 Bad Request\r\n\r\n", reply: "HTTP/1.1 400 Bad Request\r\n\r\n", want: federated.ErrMalformedReply,
		msg: `malformed reply: type byte 'H'`},
	// Values within the framing that go-redis cannot parse: it failed the
	// command with a bare parse error that named no server. Redis itself
	// sends some (a script's answer), so they fail the command alone: the
	// server is not taken for down, nor the command sent to another.
	{name: "integer not a number", hello: helloRefused, reply: ":abc\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `a ':' line "abc" is not a 64-bit integer`},
	{name: "double out of range", hello: helloRESP3, reply: ",1e400\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `a ',' line "1e400" is not a double`},
	{name: "boolean not t or f", hello: helloRESP3, reply: "#x\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `a '#' line "x" is not t or f`},
	{name: "verbatim without format", hello: helloRESP3, reply: "=3\r\nabc\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `header "=3" declares a verbatim string of 3 bytes, too short for its format`},
	{name: "array as a map key", hello: helloRESP3, reply: "%1\r\n*1\r\n:1\r\n:2\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `an aggregate ('*') as a map key`},
	{name: "null as a map key to HGETALL", hello: helloRESP3, reply: "%1\r\n_\r\n$1\r\nv\r\n", want: federated.ErrMalformedReply, answer: true,
		msg: `an error or null ('_') as a map key`,
		run: func(ctx context.Context, c *federated.Client) error { return c.HGetAll(ctx, "k").Err() }},
	// Redis pushes only to a client that switched to RESP3. go-redis
	// skipped the push and waited for a reply until the command timeout.
	{name: "push to a RESP2 connection", hello: helloRefused, reply: ">1\r\n+x\r\n", want: federated.ErrMalformedReply,
		msg: `a push ('>') before the connection switched to RESP3`},
}

// TestHostileReplies sends replies that declare billions of elements or
// bytes: the client gets a clear error at once, well within the command
// timeout, takes the server for down, and the process allocates little,
// while the command and the background re-checks meet the reply.
func TestHostileReplies(t *testing.T) {
	for _, tt := range hostileReplyTests {
		t.Run(tt.name, func(t *testing.T) {
			h := startHostileServer(t, nil, tt.hello, tt.reply, tt.split)
			checkHostileReply(t, h, nil, tt.run, tt.want, tt.msg, tt.allocated, !tt.answer)
		})
	}
}

// TestHostileAttributeChain sends twenty million empty attributes (80 MB)
// before a reply. Each is closed before the next, so the chain is never
// more than one level deep, but go-redis's reader recurses once for every
// attribute before a value: the chain took it past the 1 GB stack limit, a
// fatal error that no recover catches, in about 2.5 s. The guard refuses
// more attributes in a row than it allows levels of nesting.
func TestHostileAttributeChain(t *testing.T) {
	reply := strings.Repeat("|0\r\n", 20_000_000) + "+OK\r\n"
	h := startHostileServer(t, nil, helloRefused, reply, 0)
	checkHostileReply(t, h, nil, nil, federated.ErrMalformedReply,
		`header "|0" makes 513 attributes in a row before one value, over the limit of 512`, 0, true)
}

// TestHostileMapWithinTheLimit sends the largest map header the guard
// passes, which go-redis makes a Go map of before the pairs arrive: the
// allocation stays within the 256 MiB the limit allows an array's slots.
// The pairs never come, so the command times out.
func TestHostileMapWithinTheLimit(t *testing.T) {
	h := startHostileServer(t, nil, helloRefused, "%2796202\r\n", 0)
	opts := testOptions()
	opts.CommandTimeout = time.Second
	opts.NoHealthCheck = true // a PING would meet the map
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: h.addr()}}, Options: opts})
	before := totalAlloc()
	err := c.Do(context.Background(), "GET", "k").Err()
	grown := totalAlloc() - before
	require.Error(t, err)
	assert.NotErrorIs(t, err, federated.ErrReplyTooLarge, "the header is within the limit")
	assert.Greater(t, grown, uint64(128<<20), "go-redis made the map: %d MiB", grown>>20)
	assert.LessOrEqual(t, grown, uint64(256<<20), "bytes allocated for the map: %d MiB", grown>>20)
}

// checkHostileReply runs a command (a GET by Do when run is nil) against
// h, over TLS when tlsConfig is set, and checks that it fails with want and
// msg, within the command timeout, that the server is taken for down or,
// unless down, stays up, and that the process allocates at most allocated
// bytes (64 MiB when 0) while the command and two background checks of the
// server meet the reply.
func checkHostileReply(t *testing.T, h *hostileServer, tlsConfig *tls.Config,
	run func(context.Context, *federated.Client) error, want error, msg string, allocated uint64, down bool) {
	t.Helper()
	if run == nil {
		run = func(ctx context.Context, c *federated.Client) error { return c.Do(ctx, "GET", "k").Err() }
	}
	if allocated == 0 {
		allocated = 64 << 20
	}
	// The timeout is far above the time the guard takes (milliseconds, and
	// about a second for the nested arrays' 256 MiB on a busy 2-core
	// machine), so a reply the guard missed shows as a timeout, never as a
	// slow machine.
	opts := testOptions()
	opts.CommandTimeout = 5 * time.Second
	opts.TLSConfig = tlsConfig
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: h.addr()}}, Options: opts})

	before := totalAlloc()
	start := time.Now()
	err := run(context.Background(), c)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, want)
	assert.Contains(t, err.Error(), msg)
	assert.Contains(t, err.Error(), h.addr(), "the error names the server")
	assert.Less(t, elapsed, opts.CommandTimeout, "the error comes before the command timeout")
	if down {
		assert.ErrorIs(t, err, federated.ErrServerDown, "a server that sends such a reply is taken for down")
	} else {
		assert.NotErrorIs(t, err, federated.ErrServerDown, "such a reply fails its command alone")
	}
	assert.Equal(t, down, c.IsServerDown(h.addr()))

	// The background checks meet the same reply, and are refused the same
	// way: the server stays down and the process whole.
	commands := h.commands.Load()
	require.Eventually(t, func() bool { return h.commands.Load() >= commands+2 }, 5*time.Second, 5*time.Millisecond,
		"the server is checked again")
	assert.Equal(t, down, c.IsServerDown(h.addr()))
	grown := totalAlloc() - before
	assert.Less(t, grown, allocated, "bytes allocated by the command and the checks: %d MiB", grown>>20)
}

// A server that answers every page of a range read with the same page
// would have the read go round without end, its memory growing (143 MiB
// within 5 s): each page must end after the one before, in the order of
// the range, and the read fails at once, naming the server.
func TestHostileRangePageSentAgain(t *testing.T) {
	var page strings.Builder
	fmt.Fprintf(&page, "*%d\r\n", 2000)
	for i := range 1000 {
		score := strconv.Itoa(1_700_000_000 + i)
		member := score + ":1"
		fmt.Fprintf(&page, "$%d\r\n%s\r\n$%d\r\n%s\r\n", len(member), member, len(score), score)
	}
	h := startHostileServer(t, nil, helloRefused, page.String(), 0)
	opts := testOptions()
	opts.NoHealthCheck = true // a PING would meet the page
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"a": {Address: h.addr()}}, Options: opts})
	st := newStore(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := time.Unix(1_700_000_000, 0)
	_, err := rangeOf(ctx, st, "web1", "cpu", at, at.Add(time.Hour))
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the read ended on its own")
	assert.Contains(t, err.Error(), "a page that does not move on")
	assert.Contains(t, err.Error(), h.addr(), "the error names the server")
}

// A value go-redis cannot parse that Redis itself sends, a script's big
// number that is not a number or a map keyed by a table, fails its command
// alone: it marked the server down and sent the command to the next of its
// group, so a script that wrote first ran on both servers and left both
// down. A reply refused for its size is not sent again either: the command
// ran.
func TestScriptAnswerGoRedisCannotReadFailsItsCommandAlone(t *testing.T) {
	servers := redistest.StartN(t, 2)
	c := newClient(t, federated.Config{Nodes: map[string]federated.Node{"g": {Addresses: redistest.Addrs(servers)}}, Options: testOptions()})
	ctx := context.Background()
	current, err := c.NodeToServer("g")
	require.NoError(t, err)
	for i, answer := range []string{"{big_number='abc'}", "{map={[false]=1}}", "{map={[{1}]=1}}"} {
		script := "redis.call('INCR', KEYS[1]) return " + answer
		err := c.Eval(ctx, script, []string{"n"}).Err()
		require.ErrorIs(t, err, federated.ErrMalformedReply, answer)
		for _, st := range c.Status() {
			require.False(t, st.Down, "%s: %s marked down", answer, st.Address)
		}
		n, err := directClient(t, current).Get(ctx, "n").Int()
		require.NoError(t, err)
		assert.Equal(t, i+1, n, "%s: ran once", answer)
		assert.Zero(t, directClient(t, otherServer(servers, current).Addr()).Exists(ctx, "n").Val(), answer)
	}
}
