package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
	"github.com/redfed/federated/internal/fedtest"
	"github.com/redfed/federated/internal/redistest"
)

// The README's tour on one machine, on real servers: a replicated
// federation from config init, a point recorded and queried, the syncer
// copying it, check agreeing; then a replica made to diverge by hand,
// check finding it, repair mending it, check agreeing again.
func TestReadmeTour(t *testing.T) {
	servers := redistest.StartN(t, 4)
	ports := make([]string, len(servers))
	local := make([]string, len(servers))
	for i, s := range servers {
		ports[i] = fmt.Sprint(s.Port())
		local[i] = s.Addr()
	}
	cfg := filepath.Join(t.TempDir(), "fed.yaml")
	code, _, errOut := runCLI(t, "", "config", "init", "--hosts", "127.0.0.1", "--ports", strings.Join(ports, ","),
		"--replicas", "2", "--out", cfg)
	require.Equal(t, 0, code, errOut)
	t.Setenv("REDFED_CONFIG", cfg)
	fed, err := federated.LoadConfig(cfg)
	require.NoError(t, err)
	require.Equal(t, map[string]federated.Node{
		"redis_1": {Addresses: local[:2]},
		"redis_2": {Addresses: local[2:]},
	}, fed.Nodes)

	// Replicate: one syncer for the four local servers.
	ctx, stopSync := context.WithCancel(t.Context())
	synced := make(chan int, 1)
	var syncLog syncBuffer
	go func() {
		synced <- run(ctx, []string{"sync", "--local", strings.Join(local, ","), "--poll", "20ms", "--no-anti-entropy"},
			strings.NewReader(""), io.Discard, &syncLog)
	}()

	now := time.Now()
	code, _, errOut = runCLI(t, "", "record", "web1", "cpu.user", "42", "--time", fmt.Sprint(now.Unix()))
	require.Equal(t, 0, code, errOut)
	code, out, errOut := runCLI(t, "", "query", "web1", "cpu.user", "--from", "-1h")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^\S+\s+42$`, out)

	// The syncer copies the point to the other server of its group.
	require.Eventually(t, func() bool {
		code, _, _ := runCLI(t, "", "check")
		return code == 0
	}, 10*time.Second, 50*time.Millisecond, "check agrees once the syncer copied the point: %s", syncLog.String())
	code, out, _ = runCLI(t, "", "check")
	require.Equal(t, 0, code)
	assert.Contains(t, out, "2 groups, 1 key: every replica group agrees\n")
	stopSync()
	require.Equal(t, 0, <-synced, syncLog.String())

	// A replica diverges: a member written straight to one server, with
	// no journal entry, which no syncer pass sees.
	key := now.UTC().Format(time.DateOnly) + ":web1:cpu.user"
	code, out, errOut = runCLI(t, "", "route", key)
	require.Equal(t, 0, code, errOut)
	fields := strings.Split(strings.TrimSuffix(out, "\n"), "\t")
	require.Len(t, fields, 3, out)
	group := strings.Split(fields[2], ",")
	require.Len(t, group, 2, out)
	at := now.Unix() // the key's period, even at midnight
	require.NoError(t, fedtest.DirectClient(t, group[1]).ZAdd(t.Context(), key,
		redis.Z{Score: float64(at), Member: fmt.Sprintf("%d:7", at)}).Err())

	code, out, errOut = runCLI(t, "", "check")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, out, fmt.Sprintf("    %s  %s=1 %s=2\n", key, group[0], group[1]))
	assert.Contains(t, errOut, "replicas differ: 1 of 1 key\n")

	code, out, errOut = runCLI(t, "", "repair")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "1 of 1 key repaired, 1 member added\n")

	code, out, errOut = runCLI(t, "", "check")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "2 groups, 1 key: every replica group agrees\n")
	code, out, errOut = runCLI(t, "", "query", "web1", "cpu.user", "--from", "-1h")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `(?m)^\S+\s+42$`, out)
	assert.Regexp(t, `(?m)^\S+\s+7$`, out)
}
