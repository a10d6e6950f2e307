package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/journal"
	"github.com/redfed/federated/internal/redistest"
	"github.com/redfed/federated/metrics"
)

// groupsConfig writes a federation of two replica groups of two servers.
func groupsConfig(t *testing.T, servers []*redistest.Server) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`nodes:
  redis_1: {addresses: ["%s", "%s"]}
  redis_2: {addresses: ["%s", "%s"]}
options: {base_retry_interval: 50ms}
`, servers[0].Addr(), servers[1].Addr(), servers[2].Addr(), servers[3].Addr()))
}

func TestCheckAndRepair(t *testing.T) {
	servers := redistest.StartN(t, 4)
	cfg := groupsConfig(t, servers)
	ctx := context.Background()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{
		"redis_1": {Addresses: []string{servers[0].Addr(), servers[1].Addr()}},
		"redis_2": {Addresses: []string{servers[2].Addr(), servers[3].Addr()}},
	}})
	require.NoError(t, err)
	defer c.Close()
	now := time.Now()
	key, err := c.MetricKey(now, "web1", "cpu")
	require.NoError(t, err)
	m := func(i int) string { return fmt.Sprintf("%d:%d", now.Unix()+int64(i), i) }
	// Group 1 agrees; group 2 differs in one key.
	for _, addr := range []string{servers[0].Addr(), servers[1].Addr(), servers[2].Addr()} {
		_, err := merge(ctx, c, addr, []journal.KeyMembers{{Key: key, Members: []string{m(1), m(2)}}})
		require.NoError(t, err)
	}
	_, err = merge(ctx, c, servers[3].Addr(), []journal.KeyMembers{{Key: key, Members: []string{m(1), m(3)}}})
	require.NoError(t, err)

	code, out, errOut := runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "redis_2")
	assert.Contains(t, out, "1 key differs")
	assert.Contains(t, out, key)
	assert.Contains(t, errOut, "replicas differ")

	code, out, _ = runCLI(t, "", "check", "--config", cfg, "--json")
	assert.Equal(t, 1, code)
	reports := decodeJSONLines[checkJSON](t, out)
	require.Len(t, reports, 1, out)
	report := reports[0]
	assert.False(t, report.OK)
	assert.Equal(t, 2, report.Keys)
	assert.Equal(t, 1, report.Divergent)
	assert.Nil(t, report.Repaired, "check does not repair")
	require.Len(t, report.Groups, 2)
	assert.Equal(t, checkGroupJSON{Node: "redis_2", Servers: []string{servers[2].Addr(), servers[3].Addr()}, Keys: 1, Divergent: 1,
		Diffs: []keyDiffJSON{{Key: key, Cards: map[string]int64{servers[2].Addr(): 2, servers[3].Addr(): 2}}}}, report.Groups[1])

	code, out, errOut = runCLI(t, "", "repair", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "repaired 1 key, 2 members added\n")
	assert.Contains(t, out, "1 of 1 key repaired, 2 members added\n")

	code, out, errOut = runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "every replica group agrees")

	// A member that one server alone holds, repaired with --json.
	_, err = merge(ctx, c, servers[2].Addr(), []journal.KeyMembers{{Key: key, Members: []string{m(4)}}})
	require.NoError(t, err)
	code, out, errOut = runCLI(t, "", "repair", "--config", cfg, "--json")
	require.Equal(t, 0, code, errOut)
	reports = decodeJSONLines[checkJSON](t, out)
	require.Len(t, reports, 1, out)
	require.NotNil(t, reports[0].Repaired, out)
	require.NotNil(t, reports[0].Added, out)
	assert.Equal(t, 1, *reports[0].Repaired)
	assert.Equal(t, int64(1), *reports[0].Added)
	assert.Equal(t, 1, reports[0].Groups[1].Repaired)

	code, _, errOut = runCLI(t, "", "check", "--config", cfg, "--node", "nope")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `--node nope: federated: unknown node: "nope"`)

	// A server that cannot be read: whether its group agrees is not known.
	require.NoError(t, servers[1].Kill())
	code, _, errOut = runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 3, code, errOut)
	assert.Contains(t, errOut, servers[1].Addr())
	prefix := "federated: server " + servers[1].Addr() + ": "
	assert.NotContains(t, errOut, prefix+prefix, "the server is named once")
}

func TestSyncCommand(t *testing.T) {
	servers := redistest.StartN(t, 4)
	cfg := groupsConfig(t, servers)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	var wg sync.WaitGroup
	code := -1
	wg.Add(1)
	go func() {
		defer wg.Done()
		code = run(ctx, []string{"sync", "--config", cfg, "--local", servers[1].Addr() + "," + servers[3].Addr(),
			"--metrics-listen", "127.0.0.1:0"}, strings.NewReader(""), &out, &errOut)
	}()

	now := time.Now()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{"a": {Address: servers[0].Addr()}}})
	require.NoError(t, err)
	defer c.Close()
	key, err := c.MetricKey(now, "web1", "cpu")
	require.NoError(t, err)
	require.NoError(t, c.Record(context.Background(), "web1", "cpu", now, 7))

	replica := redis.NewClient(&redis.Options{Addr: servers[1].Addr(), DisableIdentity: true})
	defer replica.Close()
	require.Eventually(t, func() bool {
		n, _ := replica.ZCard(context.Background(), key).Result()
		return n == 1
	}, 5*time.Second, 20*time.Millisecond, "the local server pulls its peer's point")
	cancel()
	wg.Wait()
	assert.Equal(t, 0, code, errOut.String())
	assert.Contains(t, errOut.String(), "serving Prometheus metrics")
	assert.Contains(t, errOut.String(), "syncer stopped")

	code, _, errOut2 := runCLI(t, "", "sync", "--config", cfg)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--local")
	code, _, errOut2 = runCLI(t, "", "sync", "--config", cfg, "--local", "127.0.0.1:1")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--local 127.0.0.1:1: not a server of the federation file")
	code, _, errOut2 = runCLI(t, "", "sync", "--config", cfg, "--local", servers[1].Addr()+","+servers[1].Addr())
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--local "+servers[1].Addr()+": named twice")
	code, _, errOut2 = runCLI(t, "", "sync", "--config", cfg, "--local", servers[1].Addr()+",")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--local: an empty address")
	code, _, errOut2 = runCLI(t, "", "sync", "--config", cfg, "--local", servers[1].Addr(), "--status-every", "0s")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--status-every 0s")
	code, _, errOut2 = runCLI(t, "", "sync", "--config", cfg, "--local", servers[1].Addr(), "--anti-entropy", "-1s")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut2, "--anti-entropy -1s: want 0 or more (0 means the default, 5m0s)")
}

// TestCheckTableCounts checks that the check and repair tables say "1 key"
// and "2 keys", never "1 keys".
func TestCheckTableCounts(t *testing.T) {
	group := func(keys, divergent, repaired int, added int64) metrics.GroupReport {
		return metrics.GroupReport{Node: "redis_1", Servers: []string{"a:1", "b:1"}, Keys: keys,
			Divergent: divergent, Repaired: repaired, Added: added}
	}
	for _, tc := range []struct {
		name   string
		report metrics.CheckReport
		repair bool
		want   []string
	}{
		{"one key differs", metrics.CheckReport{Keys: 1, Divergent: 1, Groups: []metrics.GroupReport{group(1, 1, 0, 0)}}, false,
			[]string{"1 key differs", "1 group, 1 key: 1 of 1 key differs\n"}},
		{"keys differ", metrics.CheckReport{Keys: 5, Divergent: 2, Groups: []metrics.GroupReport{group(5, 2, 0, 0)}}, false,
			[]string{"2 keys differ", "1 group, 5 keys: 2 of 5 keys differ"}},
		{"one repaired", metrics.CheckReport{Keys: 3, Divergent: 1, Repaired: 1, Added: 1, Groups: []metrics.GroupReport{group(3, 1, 1, 1)}}, true,
			[]string{"repaired 1 key, 1 member added", "1 of 1 key repaired, 1 member added"}},
		{"several repaired", metrics.CheckReport{Keys: 3, Divergent: 2, Repaired: 2, Added: 5, Groups: []metrics.GroupReport{group(3, 2, 2, 5)}}, true,
			[]string{"repaired 2 keys, 5 members added", "2 of 2 keys repaired, 5 members added"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			writeCheckTable(&out, tc.report, tc.repair)
			for _, want := range tc.want {
				assert.Contains(t, out.String(), want)
			}
			assert.NotContains(t, out.String(), "1 keys")
			assert.NotContains(t, out.String(), "1 members")
		})
	}
}

// A federation of single servers has nothing to compare or replicate, and
// check, repair and sync say so instead of reporting agreement.
func TestNoReplicaGroups(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: %q}\n", servers[0].Addr(), servers[1].Addr()))

	code, out, errOut := runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "no replica groups: every node has one server, nothing to compare\n", out)
	code, out, errOut = runCLI(t, "", "repair", "--config", cfg)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "no replica groups: every node has one server, nothing to repair\n", out)

	code, _, errOut = runCLI(t, "", "sync", "--config", cfg, "--local", servers[0].Addr())
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--local: no server has a peer to replicate with: each is alone in its node ("+
		servers[0].Addr()+" (node redis_1)); give the nodes several addresses (redfed config init --replicas 2), or pass --allow-no-peers to run anyway")

	// With the flag it runs, and says it waits.
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sync", "--config", cfg, "--local", servers[0].Addr(), "--allow-no-peers"},
			strings.NewReader(""), io.Discard, &stderr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "syncer running") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	assert.Equal(t, 0, <-done, stderr.String())
	assert.Contains(t, stderr.String(), "no local server has a peer: the syncer waits for a reload that gives one")
}

// A metric key that a server holds as another type (a plain SET under a
// metric-shaped name) is shown as such by check, and repair names the
// server and the key it cannot mend.
func TestCheckAndRepairWrongType(t *testing.T) {
	servers := redistest.StartN(t, 4)
	cfg := groupsConfig(t, servers)
	ctx := context.Background()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{
		"redis_1": {Addresses: []string{servers[0].Addr(), servers[1].Addr()}},
	}})
	require.NoError(t, err)
	defer c.Close()
	now := time.Now()
	key, err := c.MetricKey(now, "web1", "cpu")
	require.NoError(t, err)
	members := []string{fmt.Sprintf("%d:1", now.Unix()), fmt.Sprintf("%d:2", now.Unix()+1)}
	for _, s := range servers[:2] {
		_, err := merge(ctx, c, s.Addr(), []journal.KeyMembers{{Key: key, Members: members}})
		require.NoError(t, err)
	}
	plain := redis.NewClient(&redis.Options{Addr: servers[1].Addr(), DisableIdentity: true})
	defer plain.Close()
	require.NoError(t, plain.Set(ctx, key, "42", 0).Err())

	code, out, errOut := runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("    %s  %s=2 %s=(a string, not a sorted set)\n", key, servers[0].Addr(), servers[1].Addr()))
	assert.NotContains(t, out, "=-1")

	code, out, _ = runCLI(t, "", "check", "--config", cfg, "--json")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, fmt.Sprintf(`"types":{%q:"string"}`, servers[1].Addr()))

	wantErr := fmt.Sprintf("metrics: server %s: key %s holds a string, not a sorted set: not repaired there; "+
		"delete or rename it on that server, and repair again", servers[1].Addr(), key)
	code, _, errOut = runCLI(t, "", "repair", "--config", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "redfed repair: "+wantErr+"\n")
	_, err = storeOf(c).Repair(ctx, metrics.CheckOptions{})
	require.ErrorIs(t, err, federated.ErrWrongType)
	var wt *metrics.WrongTypeError
	require.ErrorAs(t, err, &wt)
	assert.Equal(t, metrics.WrongTypeError{Server: servers[1].Addr(), Key: key, Type: "string"}, *wt)
	v, err := plain.Get(ctx, key).Result()
	require.NoError(t, err)
	assert.Equal(t, "42", v, "the key of another type is left as it was")

	// Once it is gone, repair mends the key and check agrees.
	require.NoError(t, plain.Del(ctx, key).Err())
	code, _, errOut = runCLI(t, "", "repair", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	code, out, errOut = runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "every replica group agrees")
}

// A check or repair interrupted (Ctrl-C, SIGTERM) says so, with exit 1:
// not exit 3 and each server named as one that could not be read.
func TestCheckInterruptedSaysSo(t *testing.T) {
	servers := redistest.StartN(t, 2)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {addresses: [%q, %q]}\n", servers[0].Addr(), servers[1].Addr()))
	for _, command := range []string{"check", "repair"} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out, errOut bytes.Buffer
		code := run(ctx, []string{command, "--config", cfg}, strings.NewReader(""), &out, &errOut)
		assert.Equal(t, 1, code, errOut.String())
		assert.Contains(t, errOut.String(), command+" interrupted before it was done: context canceled")
		assert.NotContains(t, errOut.String(), servers[0].Addr(), "no server blamed")
	}
}

// check names a server that missed a retention drop, and repair raises
// it to its group's horizon: check said every group agreed while the
// server held the dropped period.
func TestCheckAndRepairAServerBehindItsGroupsHorizon(t *testing.T) {
	servers := redistest.StartN(t, 4)
	cfg := groupsConfig(t, servers)
	ctx := context.Background()
	c, err := federated.New(federated.Config{Nodes: map[string]federated.Node{
		"redis_1": {Addresses: []string{servers[0].Addr(), servers[1].Addr()}},
		"redis_2": {Addresses: []string{servers[2].Addr(), servers[3].Addr()}},
	}, Options: federated.Options{CommandTimeout: 500 * time.Millisecond}})
	require.NoError(t, err)
	defer c.Close()
	old := time.Now().Add(-72 * time.Hour)
	key, err := c.MetricKey(old, "web1", "cpu")
	require.NoError(t, err)
	for _, s := range servers[:2] {
		_, err := merge(ctx, c, s.Addr(), []journal.KeyMembers{{Key: key, Members: []string{fmt.Sprintf("%d:1", old.Unix())}}})
		require.NoError(t, err)
	}
	require.NoError(t, servers[1].Pause())
	st, err := metrics.New(c)
	require.NoError(t, err)
	_, err = st.DropBefore(ctx, time.Now().Add(-24*time.Hour))
	require.ErrorContains(t, err, servers[1].Addr())
	require.NoError(t, servers[1].Resume())

	code, out, errOut := runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, "    "+servers[1].Addr()+" missed a retention drop: its horizon is none, the group's later; it keeps dropped periods\n")
	assert.Contains(t, out, ": a server is behind its group's retention horizon\n")
	code, out, _ = runCLI(t, "", "check", "--config", cfg, "--json")
	assert.Equal(t, 1, code)
	reports := decodeJSONLines[checkJSON](t, out)
	require.Len(t, reports, 1, out)
	assert.Equal(t, map[string]string{servers[1].Addr(): ""}, reports[0].Groups[0].Behind)

	code, out, errOut = runCLI(t, "", "repair", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "    raised to the group's horizon, 1 key of dropped periods removed\n")
	code, out, errOut = runCLI(t, "", "check", "--config", cfg)
	assert.Equal(t, 0, code, "%s%s", out, errOut)
}
