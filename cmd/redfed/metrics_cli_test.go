package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// startFederation starts n redis-servers, one node each, and returns the
// path of their federation file and a client of it for checking what the
// commands wrote.
func startFederation(t *testing.T, n int) (cfgPath string, client *federated.Client) {
	t.Helper()
	servers := redistest.StartN(t, n)
	var doc strings.Builder
	doc.WriteString("nodes:\n")
	for i, s := range servers {
		fmt.Fprintf(&doc, "  redis_%d: {address: %q}\n", i+1, s.Addr())
	}
	doc.WriteString("options: {command_timeout: 2s}\n")
	cfgPath = writeConfig(t, doc.String())
	cfg, err := federated.LoadConfig(cfgPath)
	require.NoError(t, err)
	client, err = federated.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	return cfgPath, client
}

// day is the UTC day the tests write points in.
var day = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func rangeOf(t *testing.T, c *federated.Client, host, metricName string) []metrics.Point {
	t.Helper()
	points, err := readRange(t.Context(), storeOf(c), host, metricName, day, day.Add(24*time.Hour))
	require.NoError(t, err)
	return points
}

func TestRecordOneByArguments(t *testing.T) {
	cfg, client := startFederation(t, 2)

	code, out, errOut := runCLI(t, "", "record", "--config", cfg, "web1.sfo", "cpu.user", "42.5",
		"--time", "2026-11-25T10:00:00.25Z")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)
	assert.Empty(t, errOut, "quiet on success")

	code, _, errOut = runCLI(t, "", "record", "--config", cfg, "--time", "1795604400", "--", "web1.sfo", "cpu.user", "-3")
	require.Equal(t, 0, code, errOut)

	want := []metrics.Point{
		{Time: day.Add(10*time.Hour + 250*time.Millisecond), Value: 42.5},
		{Time: day.Add(11 * time.Hour), Value: -3},
	}
	assert.Equal(t, want, rangeOf(t, client, "web1.sfo", "cpu.user"))

	// Without --time the point is now, which the default range of query,
	// the last hour, finds.
	code, _, errOut = runCLI(t, "", "record", "--config", cfg, "web2.sfo", "load", "7")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = runCLI(t, "", "query", "--config", cfg, "web2.sfo", "load")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^TIME +VALUE\n\d{4}-\d\d-\d\dT[0-9:.]+Z +7\n$`, out)
}

func TestRecordOneErrors(t *testing.T) {
	cfg, client := startFederation(t, 1)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"two arguments", []string{"web1", "cpu"}, "got 2 arguments"},
		{"bad value", []string{"web1", "cpu", "abc"}, `value "abc" is not a number`},
		{"NaN", []string{"web1", "cpu", "NaN"}, "bad value NaN"},
		{"bad host", []string{"web:1", "cpu", "1"}, "bad host"},
		{"bad time", []string{"web1", "cpu", "1", "--time", "yesterday"}, `--time "yesterday": want`},
		{"time before 1970", []string{"web1", "cpu", "1", "--time", "-5"}, "bad timestamp -5"},
		// --time "$T" with T unset: not now, which would write the point
		// at another time than the one meant.
		{"empty time", []string{"web1", "cpu", "1", "--time", ""}, "--time: empty: give a time"},
		{"strict with arguments", []string{"web1", "cpu", "1", "--strict"}, "--strict applies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", append([]string{"record", "--config", cfg}, tt.args...)...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}

	code, _, errOut := runCLI(t, "", "record", "--config", cfg, "--time", "now")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--time applies to a point given by arguments")
	for _, addr := range client.Servers() {
		n, err := fedtest.DirectClient(t, addr).DBSize(t.Context()).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "bad input writes nothing")
	}
	for _, verb := range []string{"hosts", "metrics"} {
		args := []string{verb, "--config", cfg, "--since", ""}
		if verb == "metrics" {
			args = append(args, "web1")
		}
		code, _, errOut := runCLI(t, "", args...)
		assert.Equal(t, 2, code, verb)
		assert.Contains(t, errOut, "--since: empty: give a time", verb)
	}
}

func TestRecordStdin(t *testing.T) {
	cfg, client := startFederation(t, 3)
	input := `# host metric timestamp value
web1.sfo cpu.user 1795600800 1
web1.sfo	cpu.user	1795600860.5	2.5

web1.sfo cpu.user 2026-11-25T10:02:00Z -3
web1.sfo cpu.user 1795600980
web2.sfo mem.free 1795600800 NaN
web:3 cpu.user 1795600800 1
web2.sfo mem.free 1795600800 1e6
web2.sfo mem.free yesterday 5
   # an indented comment
web2.sfo mem.free 1795600801 0x10
`
	code, out, errOut := runCLI(t, input, "record", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	for _, want := range []string{
		"line 6: 3 fields, want 4",
		"line 7: federated: bad value NaN",
		`line 8: federated: bad host "web:3"`,
		`line 10: timestamp "yesterday": want Unix seconds or an RFC 3339 time`,
		`line 12: value "0x10" is not a decimal number`,
		"4 points written, 0 failed",
		"redfed record: 5 lines skipped",
	} {
		assert.Contains(t, errOut, want)
	}
	assert.Regexp(t, `in [0-9.]+ s, [0-9]+ points/s`, errOut)

	at := func(sec float64) time.Time { return time.Unix(0, int64(sec*1e9)).UTC() }
	assert.Equal(t, []metrics.Point{
		{Time: at(1795600800), Value: 1},
		{Time: at(1795600860.5), Value: 2.5},
		{Time: at(1795600920), Value: -3},
	}, rangeOf(t, client, "web1.sfo", "cpu.user"))
	assert.Equal(t, []metrics.Point{{Time: at(1795600800), Value: 1e6}},
		rangeOf(t, client, "web2.sfo", "mem.free"))

	code, _, errOut = runCLI(t, "web3.sfo disk.used 1795600800 10\n", "record", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "1 points written, 0 failed")
	assert.NotContains(t, errOut, "skipped")
}

func TestRecordStrict(t *testing.T) {
	cfg, client := startFederation(t, 2)
	bad := "web1.sfo cpu.user 1795600800 1\n" +
		"web1.sfo cpu.user 1795600860 two\n" +
		"web1.sfo cpu.user 1795600920 3\n" +
		"web1.sfo cpu.user -1 4\n"
	code, _, errOut := runCLI(t, bad, "record", "--config", cfg, "--strict")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, `line 2: value "two" is not a number`)
	assert.Contains(t, errOut, "line 4: federated: bad timestamp -1")
	assert.Contains(t, errOut, "2 bad lines; nothing written")
	assert.NotContains(t, errOut, "points written")
	assert.Empty(t, rangeOf(t, client, "web1.sfo", "cpu.user"), "a strict run with a bad line writes nothing")
	hosts, err := storeOf(client).Hosts(t.Context(), time.Time{})
	require.NoError(t, err)
	assert.Empty(t, hosts)

	good := "web1.sfo cpu.user 1795600800 1\nweb1.sfo cpu.user 1795600860 2\n"
	code, _, errOut = runCLI(t, good, "record", "--config", cfg, "--strict")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "2 points written, 0 failed")
	assert.Len(t, rangeOf(t, client, "web1.sfo", "cpu.user"), 2)
}

func TestRecordManyLines(t *testing.T) {
	cfg, client := startFederation(t, 3)
	const hosts, points = 5, 2000
	var in strings.Builder
	for i := range points {
		fmt.Fprintf(&in, "web%d.sfo req.count %d %d\n", i%hosts, day.Unix()+int64(i), i)
	}
	code, _, errOut := runCLI(t, in.String(), "record", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, fmt.Sprintf("%d points written, 0 failed", points))
	for h := range hosts {
		assert.Len(t, rangeOf(t, client, fmt.Sprintf("web%d.sfo", h), "req.count"), points/hosts)
	}
}

func TestRecordServerDown(t *testing.T) {
	servers := redistest.StartN(t, 1)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\noptions: {command_timeout: 2s}\n", servers[0].Addr()))
	require.NoError(t, servers[0].Kill())

	code, _, errOut := runCLI(t, "web1 cpu 1795600800 1\nweb1 cpu 1795600801 2\n", "record", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "write failed, 2 points lost")
	assert.Contains(t, errOut, "0 points written, 2 failed")
	assert.Contains(t, errOut, "2 points failed to write")

	code, _, errOut = runCLI(t, "", "record", "--config", cfg, "web1", "cpu", "1")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, servers[0].Addr())
}

func TestQueryTableAndJSON(t *testing.T) {
	cfg, client := startFederation(t, 2)
	points := []metrics.Point{
		{Time: day.Add(23 * time.Hour), Value: 0.5},
		{Time: day.Add(24*time.Hour + 30*time.Minute + 250*time.Millisecond), Value: 1234567},
		{Time: day.Add(26 * time.Hour), Value: -2},
	}
	for _, p := range points {
		require.NoError(t, client.Record(t.Context(), "web1.sfo", "cpu.user", p.Time, p.Value))
	}
	args := []string{"query", "--config", cfg, "web1.sfo", "cpu.user",
		"--from", "2026-11-25T22:00:00Z", "--to", "1795660200"} // 2026-11-26T02:30:00Z

	code, out, errOut := runCLI(t, "", args...)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "TIME                     VALUE\n"+
		"2026-11-25T23:00:00Z     0.5\n"+
		"2026-11-26T00:30:00.25Z  1234567\n"+
		"2026-11-26T02:00:00Z     -2\n", out)

	code, out, errOut = runCLI(t, "", append(args, "--json")...)
	require.Equal(t, 0, code, errOut)
	var got queryJSON
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.Equal(t, "web1.sfo", got.Host)
	assert.Equal(t, "cpu.user", got.Metric)
	assert.Equal(t, day.Add(22*time.Hour), got.From)
	assert.Equal(t, day.Add(26*time.Hour+30*time.Minute), got.To)
	assert.Zero(t, got.Malformed)
	require.Len(t, got.Points, len(points))
	for i, p := range points {
		assert.True(t, p.Time.Equal(got.Points[i].Time), "point %d: got %v, want %v", i, got.Points[i].Time, p.Time)
		assert.Equal(t, p.Value, got.Points[i].Value)
	}

	// A range with no points: the header, or an empty list, not null.
	empty := []string{"query", "--config", cfg, "web1.sfo", "cpu.user", "--from", "1795500000", "--to", "1795503600"}
	code, out, _ = runCLI(t, "", empty...)
	require.Equal(t, 0, code)
	assert.Equal(t, "TIME  VALUE\n", out)
	code, out, _ = runCLI(t, "", append(empty, "--json")...)
	require.Equal(t, 0, code)
	assert.Contains(t, out, `"points":[]`)
}

// As the tour does it, on a replica group with no syncer running: record,
// then query at once. Each command starts on a server of the group chosen
// at random, so the query is as likely as not on a server the point has not
// reached; it reads every server of the group, and finds it every time.
func TestQueryRightAfterRecordOnAReplicaGroup(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  group: {addresses: [%q, %q]}\noptions: {command_timeout: 2s}\n",
		servers[0].Addr(), servers[1].Addr()))
	const tries = 12 // each would fail half the time if query read one server
	for i := range tries {
		metricName := fmt.Sprintf("m%d", i)
		code, _, errOut := runCLI(t, "", "record", "--config", cfg, "web1.sfo", metricName, strconv.Itoa(i))
		require.Equal(t, 0, code, errOut)
		code, out, errOut := runCLI(t, "", "query", "--config", cfg, "web1.sfo", metricName)
		require.Equal(t, 0, code, errOut)
		assert.Regexp(t, fmt.Sprintf(`(?m)^TIME +VALUE\n\S+ +%d\n$`, i), out, "try %d: the point just recorded", i)
	}
}

func TestQueryErrors(t *testing.T) {
	cfg, _ := startFederation(t, 1)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one argument", []string{"web1"}, "accepts 2 arg(s), received 1"},
		{"bad host", []string{"web:1", "cpu"}, "bad host"},
		{"bad from", []string{"web1", "cpu", "--from", "1.2.3"}, `--from "1.2.3" is not a number`},
		{"from after to", []string{"web1", "cpu", "--from", "-1h", "--to", "-2h"}, "is after --to"},
		{"empty from", []string{"web1", "cpu", "--from", ""}, "--from: empty: give a time"},
		{"empty to", []string{"web1", "cpu", "--to="}, "--to: empty: give a time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", append([]string{"query", "--config", cfg}, tt.args...)...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestHostsAndMetrics(t *testing.T) {
	cfg, client := startFederation(t, 3)
	for _, s := range []metrics.Series{
		{Host: "web2.sfo", Metric: "cpu.user"}, {Host: "web1.sfo", Metric: "mem.free"},
		{Host: "web1.sfo", Metric: "cpu.user"}, {Host: "db1.lax", Metric: "disk:sda:used"},
		// Numbers in names sort as numbers: web2 before web10, disk2 before disk10.
		{Host: "web10.sfo", Metric: "cpu.user"}, {Host: "web1.sfo", Metric: "disk10.free"}, {Host: "web1.sfo", Metric: "disk2.free"},
	} {
		// The journals record when a key changed, by the servers' clocks,
		// whatever the time of the point.
		require.NoError(t, client.Record(t.Context(), s.Host, s.Metric, day, 1))
	}

	code, out, errOut := runCLI(t, "", "hosts", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "db1.lax\nweb1.sfo\nweb2.sfo\nweb10.sfo\n", out)

	code, out, errOut = runCLI(t, "", "hosts", "--config", cfg, "--json", "--since", "1h")
	require.Equal(t, 0, code, errOut)
	var hosts struct {
		Since time.Time
		Hosts []string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &hosts), out)
	assert.Equal(t, []string{"db1.lax", "web1.sfo", "web2.sfo", "web10.sfo"}, hosts.Hosts)
	assert.WithinDuration(t, time.Now().Add(-time.Hour), hosts.Since, time.Minute)

	code, out, errOut = runCLI(t, "", "metrics", "--config", cfg, "web1.sfo")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "cpu.user\ndisk2.free\ndisk10.free\nmem.free\n", out)

	code, out, errOut = runCLI(t, "", "metrics", "--config", cfg, "db1.lax", "--json")
	require.Equal(t, 0, code, errOut)
	var metrics struct {
		Host    string
		Metrics []string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &metrics), out)
	assert.Equal(t, "db1.lax", metrics.Host)
	assert.Equal(t, []string{"disk:sda:used"}, metrics.Metrics)

	// Nothing changed in the future: empty lists.
	code, out, errOut = runCLI(t, "", "hosts", "--config", cfg, "--since", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, out)
	// A host with no metrics, a typo most often, is an error that names it.
	code, out, errOut = runCLI(t, "", "metrics", "--config", cfg, "nohost", "--json")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, `"metrics":[]`)
	assert.Contains(t, errOut, "redfed metrics: host nohost: no metric written since ")
	code, out, errOut = runCLI(t, "", "metrics", "--config", cfg, "web1.sfo", "--since", fmt.Sprint(time.Now().Add(time.Hour).Unix()))
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "host web1.sfo: no metric written since ")

	code, _, errOut = runCLI(t, "", "metrics", "--config", cfg, "bad:host")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "bad host")
	code, _, errOut = runCLI(t, "", "hosts", "--config", cfg, "extra")
	assert.Equal(t, 2, code)
	assert.Regexp(t, regexp.MustCompile(`unknown command "extra"`), errOut)
}

func TestListingWithServerDown(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: %q}\noptions: {command_timeout: 2s}\n",
		servers[0].Addr(), servers[1].Addr()))
	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, "web%d cpu 1795600800 1\n", i)
	}
	code, _, errOut := runCLI(t, in.String(), "record", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	require.NoError(t, servers[1].Kill())

	code, out, errOut := runCLI(t, "", "hosts", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	hosts := strings.Fields(out)
	assert.NotEmpty(t, hosts, "the hosts of the server still up are listed")
	assert.Less(t, len(hosts), 20)
	assert.Contains(t, errOut, "redfed hosts: federated: node redis_2, server "+servers[1].Addr())
	assert.Contains(t, errOut, `level=WARN msg="federated: server down"`, "the client's warnings go to standard error")
}

func TestRecordInterrupted(t *testing.T) {
	cfg, client := startFederation(t, 1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"record", "--config", cfg}, strings.NewReader("web1 cpu 1795600800 1\n"), &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "0 points written, 0 failed")
	assert.Contains(t, errOut.String(), "interrupted at line 1")
	assert.Empty(t, rangeOf(t, client, "web1", "cpu"))
}

// TestRecordInterruptedWhileReading interrupts record while standard input
// is open and sends nothing more (a terminal, or a pipe whose writer
// waits): the first interrupt stops it, what was read is written and summed
// up, and a line cut by the interrupt is not written.
func TestRecordInterruptedWhileReading(t *testing.T) {
	cfg, client := startFederation(t, 1)
	// The Recorder flushes every 100 ms: the line is read once it is stored.
	stored := func() bool { return len(rangeOf(t, client, "web1", "cpu")) == 1 }
	code, _, errOut := runInterrupted(t, []string{"web1 cpu 1795600800 1\n", "web1 cpu 1795600801 1", "2"},
		stored, "record", "--config", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "1 points written, 0 failed")
	assert.Contains(t, errOut, "interrupted at line 2")
	assert.Len(t, rangeOf(t, client, "web1", "cpu"), 1, "the cut line is not written")
}

// A line too long for a point is reported and skipped; the lines around it
// are written.
func TestRecordSkipsTooLongLine(t *testing.T) {
	cfg, client := startFederation(t, 1)
	in := "web1 cpu 1795600800 1\nweb1 cpu 1795600801 " + strings.Repeat("9", 70000) + "\nweb1 cpu 1795600802 3\n"
	code, _, errOut := runCLI(t, in, "record", "--config", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "line 2: longer than 65536 bytes")
	assert.Contains(t, errOut, "2 points written, 0 failed")
	assert.Len(t, rangeOf(t, client, "web1", "cpu"), 2)
}
