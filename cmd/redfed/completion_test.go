package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated/internal/redistest"
)

// complete asks the command line, in-process, what the shell would offer
// for the last of args, as redfed completion's scripts do through cobra's
// hidden __complete command, and returns the candidates and the directive.
func complete(t *testing.T, args ...string) (candidates []string, directive cobra.ShellCompDirective) {
	t.Helper()
	code, out, errOut := runCLI(t, "", append([]string{cobra.ShellCompRequestCmd}, args...)...)
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, ":"), "the directive ends the output: %q", out)
	d, err := strconv.Atoi(last[1:])
	require.NoError(t, err, out)
	return lines[:len(lines)-1], cobra.ShellCompDirective(d)
}

const noFiles = cobra.ShellCompDirectiveNoFileComp

func TestCompletionOfNames(t *testing.T) {
	sameDay(t, 30*time.Second) // the period a completion offers is today's
	cfg, client := startFederation(t, 2)
	for _, s := range [][2]string{
		{"web2.sfo", "cpu.user"}, {"web10.sfo", "cpu.user"}, {"web1.sfo", "mem.free"},
		{"web1.sfo", "cpu.user"}, {"db1.lax", "disk:sda:used"}, {"web1.sfo", "disk10.free"}, {"web1.sfo", "disk2.free"},
	} {
		require.NoError(t, client.Record(t.Context(), s[0], s[1], time.Now(), 1))
	}
	period, _, _ := strings.Cut(must(client.MetricKey(time.Now(), "h", "m")), ":")
	servers := client.Servers() // sorted
	node1, node2 := must(client.AllServers("redis_1"))[0], must(client.AllServers("redis_2"))[0]

	tests := []struct {
		name      string
		args      []string
		want      []string
		directive cobra.ShellCompDirective
	}{
		{"query hosts", []string{"query", "--config", cfg, ""}, []string{"db1.lax", "web1.sfo", "web2.sfo", "web10.sfo"}, noFiles},
		{"query hosts by prefix", []string{"query", "--config", cfg, "web1"}, []string{"web1.sfo", "web10.sfo"}, noFiles},
		{"query metrics of the host", []string{"query", "--config", cfg, "web1.sfo", ""},
			[]string{"cpu.user", "disk2.free", "disk10.free", "mem.free"}, noFiles},
		{"query metrics by prefix", []string{"query", "--config", cfg, "web1.sfo", "disk"}, []string{"disk2.free", "disk10.free"}, noFiles},
		{"query after both", []string{"query", "--config", cfg, "web1.sfo", "cpu.user", ""}, nil, noFiles},
		{"query with the config from the environment", []string{"query", "web2"}, []string{"web2.sfo"}, noFiles},
		{"record hosts", []string{"record", "--config", cfg, "d"}, []string{"db1.lax"}, noFiles},
		{"record metrics", []string{"record", "--config", cfg, "db1.lax", ""}, []string{"disk:sda:used"}, noFiles},
		{"metrics hosts", []string{"metrics", "--config", cfg, "web"}, []string{"web1.sfo", "web2.sfo", "web10.sfo"}, noFiles},
		{"metrics takes one host", []string{"metrics", "--config", cfg, "web1.sfo", ""}, nil, noFiles},
		{"route period", []string{"route", "--config", cfg, ""}, []string{period + ":"}, noFiles | cobra.ShellCompDirectiveNoSpace},
		{"route hosts", []string{"route", "--config", cfg, period + ":web1"},
			[]string{period + ":web1.sfo:", period + ":web10.sfo:"}, noFiles | cobra.ShellCompDirectiveNoSpace},
		{"route metrics", []string{"route", "--config", cfg, period + ":db1.lax:"}, []string{period + ":db1.lax:disk:sda:used"}, noFiles},
		{"route metric with a colon", []string{"route", "--config", cfg, period + ":db1.lax:disk:s"}, []string{period + ":db1.lax:disk:sda:used"}, noFiles},
		{"check nodes", []string{"check", "--config", cfg, "--node", ""},
			[]string{"redis_1\t" + node1, "redis_2\t" + node2}, noFiles},
		{"repair nodes by prefix", []string{"repair", "--config", cfg, "--node", "redis_2"}, []string{"redis_2\t" + node2}, noFiles},
		{"sync servers", []string{"sync", "--config", cfg, "--local", ""}, servers, noFiles},
		{"sync more servers", []string{"sync", "--config", cfg, "--local", servers[1] + ","}, []string{servers[1] + "," + servers[0]}, noFiles},
		{"time flag", []string{"query", "--config", cfg, "--from", ""},
			[]string{"now\tthe time of the command", "1h\tan hour ago", "6h\t6 hours ago", "1d\ta day ago", "7d\t7 days ago"},
			noFiles | cobra.ShellCompDirectiveKeepOrder},
		{"log format", []string{"hosts", "--log-format", ""}, []string{"text", "json"}, noFiles},
		{"federation files", []string{"query", "--config", ""}, []string{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt},
	}
	t.Setenv("REDFED_CONFIG", cfg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, directive := complete(t, tt.args...)
			if tt.want == nil {
				assert.Empty(t, got)
			} else {
				assert.Equal(t, tt.want, got)
			}
			assert.Equal(t, tt.directive, directive, "directive")
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCompletionWithServersDown: a server that refuses connections, then
// one that accepts them and never answers (stopped with SIGSTOP), cost at
// most the completion's timeout and the close of the client; the hosts of
// the server up are offered.
func TestCompletionWithServersDown(t *testing.T) {
	servers := redistest.StartN(t, 3)
	cfg := writeConfig(t, fmt.Sprintf("nodes:\n  redis_1: {address: %q}\n  redis_2: {address: %q}\n  redis_3: {address: %q}\noptions: {command_timeout: 10s}\n",
		servers[0].Addr(), servers[1].Addr(), servers[2].Addr()))
	var in strings.Builder
	for i := range 30 {
		fmt.Fprintf(&in, "web%d cpu %d 1\n", i, time.Now().Unix())
	}
	code, _, errOut := runCLI(t, in.String(), "record", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	all, _ := complete(t, "query", "--config", cfg, "")
	require.Len(t, all, 30)

	require.NoError(t, servers[1].Kill())
	require.NoError(t, servers[2].Pause())
	t.Cleanup(func() { _ = servers[2].Resume() })
	start := time.Now()
	got, directive := complete(t, "query", "--config", cfg, "")
	took := time.Since(start)
	assert.Less(t, took, completionTimeout*3/2+500*time.Millisecond, "a completion with servers down took %v", took)
	assert.NotEmpty(t, got, "the hosts of the server up")
	assert.Less(t, len(got), 30)
	assert.Subset(t, all, got)
	assert.Equal(t, noFiles, directive)
}

// TestCompletionWithoutFederation: no federation file, or a bad one, offers
// nothing, at once, and never files.
func TestCompletionWithoutFederation(t *testing.T) {
	t.Setenv("REDFED_CONFIG", "")
	bad := writeConfig(t, "nodes: [\n")
	for _, args := range [][]string{
		{"query", ""},
		{"query", "--config", bad, ""},
		{"check", "--config", bad, "--node", ""},
		{"sync", "--local", ""},
	} {
		got, directive := complete(t, args...)
		assert.Empty(t, got, "%v", args)
		assert.Equal(t, noFiles, directive, "%v", args)
	}
}
