package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redfed/federated"
)

// configInit runs config init with --out and loads what it wrote.
func configInit(t *testing.T, args ...string) federated.Config {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fed.yaml")
	code, stdout, errOut := runCLI(t, "", append([]string{"config", "init", "--out", out}, args...)...)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, stdout)
	cfg, err := federated.LoadConfig(out)
	require.NoError(t, err)
	return cfg
}

func TestConfigInitEveryHost(t *testing.T) {
	cfg := configInit(t, "--hosts", "db1,db2", "--ports", "6379-6386")
	require.Len(t, cfg.Nodes, 8)
	for i := range 8 {
		port := 6379 + i
		node := cfg.Nodes[fmt.Sprintf("redis_%d", i+1)]
		assert.Empty(t, node.Address)
		assert.Equal(t, []string{fmt.Sprintf("db1:%d", port), fmt.Sprintf("db2:%d", port)}, node.Addresses, "redis_%d", i+1)
	}

	// Standard output by default, with a header saying how it was made.
	code, out, errOut := runCLI(t, "", "config", "init", "--hosts", " db1 , db2 ", "--ports", "6379-6380")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "# Written by: redfed config init --hosts db1,db2 --ports 6379-6380\n"+
		"nodes:\n"+
		`  redis_1: {addresses: ["db1:6379", "db2:6379"]}`+"\n"+
		`  redis_2: {addresses: ["db1:6380", "db2:6380"]}`+"\n", out)
	assert.Empty(t, errOut)
}

func TestConfigInitReplicasBalance(t *testing.T) {
	hosts := []string{"db1", "db2", "db3", "db4"}
	cfg := configInit(t, "--hosts", "db1,db2,db3,db4", "--ports", "6379-6386", "--replicas", "2")
	require.Len(t, cfg.Nodes, 8)
	groupsOf := make(map[string]int)
	for i := range 8 {
		name := fmt.Sprintf("redis_%d", i+1)
		addrs := cfg.Nodes[name].Addresses
		require.Len(t, addrs, 2, name)
		// The rule of --help: group i takes hosts (i*2 + j) mod 4.
		for j, addr := range addrs {
			host, port, err := net.SplitHostPort(addr)
			require.NoError(t, err)
			assert.Equal(t, hosts[(i*2+j)%4], host, "%s server %d", name, j)
			assert.Equal(t, fmt.Sprint(6379+i), port, "%s server %d", name, j)
			groupsOf[host]++
		}
	}
	for _, h := range hosts {
		assert.Equal(t, 4, groupsOf[h], "groups of %s", h)
	}
}

func TestReplicaGroupsBalance(t *testing.T) {
	// Whatever the counts, every host is in the same number of groups, or
	// one more or fewer, and no group holds a host twice.
	for hosts := 1; hosts <= 7; hosts++ {
		for ports := 1; ports <= 10; ports++ {
			for n := 1; n <= hosts; n++ {
				names := make([]string, hosts)
				for i := range names {
					names[i] = fmt.Sprintf("h%d", i)
				}
				portList := make([]int, ports)
				for i := range portList {
					portList[i] = 7000 + i
				}
				groups := replicaGroups(names, portList, n)
				require.Len(t, groups, ports)
				counts := hostCounts(groups)
				lo, hi := ports*n/hosts, (ports*n+hosts-1)/hosts
				for _, h := range names {
					assert.True(t, counts[h] == lo || counts[h] == hi,
						"%d hosts, %d ports, %d replicas: %s in %d groups, want %d or %d", hosts, ports, n, h, counts[h], lo, hi)
				}
				for _, g := range groups {
					assert.Len(t, slices.Compact(slices.Sorted(slices.Values(g))), n, "group %v", g)
				}
			}
		}
	}
}

func TestConfigInitOneHost(t *testing.T) {
	cfg := configInit(t, "--hosts", "localhost", "--ports", "7001-7003,7010")
	assert.Equal(t, map[string]federated.Node{
		"redis_1": {Address: "localhost:7001"},
		"redis_2": {Address: "localhost:7002"},
		"redis_3": {Address: "localhost:7003"},
		"redis_4": {Address: "localhost:7010"},
	}, cfg.Nodes)

	// --replicas 1 over several hosts: single servers, dealt in turn; an
	// IPv6 host is bracketed.
	cfg = configInit(t, "--hosts", "db1,::1", "--ports", "6379-6381", "--replicas", "1")
	assert.Equal(t, map[string]federated.Node{
		"redis_1": {Address: "db1:6379"},
		"redis_2": {Address: "[::1]:6380"},
		"redis_3": {Address: "db1:6381"},
	}, cfg.Nodes)
}

// More replicas than hosts: each group takes consecutive ports of every
// host, so one machine can try replication.
func TestConfigInitReplicasOnOneHost(t *testing.T) {
	code, out, errOut := runCLI(t, "", "config", "init", "--hosts", "127.0.0.1", "--ports", "7001-7004", "--replicas", "2")
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, errOut)
	assert.Equal(t, "# Written by: redfed config init --hosts 127.0.0.1 --ports 7001-7004 --replicas 2\n"+
		"nodes:\n"+
		`  redis_1: {addresses: ["127.0.0.1:7001", "127.0.0.1:7002"]}`+"\n"+
		`  redis_2: {addresses: ["127.0.0.1:7003", "127.0.0.1:7004"]}`+"\n", out)

	cfg := configInit(t, "--hosts", "db1,db2", "--ports", "7001-7004", "--replicas", "4")
	assert.Equal(t, map[string]federated.Node{
		"redis_1": {Addresses: []string{"db1:7001", "db1:7002", "db2:7001", "db2:7002"}},
		"redis_2": {Addresses: []string{"db1:7003", "db1:7004", "db2:7003", "db2:7004"}},
	}, cfg.Nodes)
}

func TestConfigInitUnbalancedNote(t *testing.T) {
	code, _, errOut := runCLI(t, "", "config", "init", "--hosts", "a,b,c", "--ports", "1-8", "--replicas", "2")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "note: 8 groups of 2 cannot be shared equally by 3 hosts: a 6, b 5, c 5\n", errOut)
}

func TestConfigInitErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no hosts", []string{"--ports", "6379"}, "--hosts: no hosts given"},
		{"no ports", []string{"--hosts", "a"}, "--ports: no ports given"},
		{"empty host", []string{"--hosts", "a,,b", "--ports", "6379"}, `host 2 of "a,,b" is empty`},
		{"duplicate host", []string{"--hosts", "a,b,a", "--ports", "6379"}, `host "a" is given twice`},
		{"host with port", []string{"--hosts", "a:6379", "--ports", "6379"}, `host "a:6379" contains ':'`},
		{"host with space", []string{"--hosts", "a b", "--ports", "6379"}, "space or control character"},
		{"port range syntax", []string{"--hosts", "a", "--ports", "6379..6386"}, `"6379..6386" is not a port or a range`},
		{"open range", []string{"--hosts", "a", "--ports", "6379-"}, `"6379-" is not a port or a range`},
		{"reversed range", []string{"--hosts", "a", "--ports", "6386-6379"}, `range "6386-6379" ends before it starts`},
		{"port 0", []string{"--hosts", "a", "--ports", "0-3"}, `port 0 in "0-3" is not from 1 to 65535`},
		{"port too high", []string{"--hosts", "a", "--ports", "65535-65536"}, "port 65536"},
		{"duplicate port", []string{"--hosts", "a", "--ports", "1-3,3"}, "port 3 is given twice"},
		{"replicas 0", []string{"--hosts", "a,b", "--ports", "1", "--replicas", "0"}, "--replicas 0: want 1 or more"},
		{"replicas above hosts", []string{"--hosts", "a,b", "--ports", "1", "--replicas", "3"},
			"--replicas 3: want 1 to 2, the number of hosts, or a multiple of it (more replicas than hosts puts several ports of each host in a group)"},
		{"ports left over", []string{"--hosts", "127.0.0.1", "--ports", "7001-7003", "--replicas", "2"},
			"--replicas 2 on 1 host: each group takes 2 ports of each host, and 3 ports do not divide into groups of 2"},
		{"replicas not a number", []string{"--hosts", "a", "--ports", "1", "--replicas", "x"}, `invalid argument "x"`},
		{"argument", []string{"--hosts", "a", "--ports", "1", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", append([]string{"config", "init"}, tt.args...)...)
			assert.Equal(t, 2, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tt.want)
		})
	}
}

func TestConfigInitOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fed.yaml")
	require.NoError(t, os.WriteFile(out, []byte("keep me\n"), 0o600))

	code, _, errOut := runCLI(t, "", "config", "init", "--hosts", "a", "--ports", "1", "--out", out)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "exists; pass --force")
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "keep me\n", string(data))

	code, _, errOut = runCLI(t, "", "config", "init", "--hosts", "a", "--ports", "1", "--out", out, "--force")
	require.Equal(t, 0, code, errOut)
	_, err = federated.LoadConfig(out)
	require.NoError(t, err)
	entries, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	for _, bad := range []string{filepath.Join(out, "sub", "x.yaml"), filepath.Join(t.TempDir(), "missing", "x.yaml")} {
		code, _, errOut = runCLI(t, "", "config", "init", "--hosts", "a", "--ports", "1", "--out", bad)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "--out "+bad+": ")
		assert.NotContains(t, errOut, ".x.yaml.", "the temporary file is not named")
	}

	// --force replaces a file, not a directory, a named pipe or a link.
	dir := t.TempDir()
	fifo := filepath.Join(t.TempDir(), "fifo.yaml")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(t.TempDir(), "link.yaml")
	require.NoError(t, os.Symlink(out, link))
	for notFile, kind := range map[string]string{dir: "a directory", fifo: "a named pipe", link: "a symbolic link"} {
		code, _, errOut = runCLI(t, "", "config", "init", "--hosts", "a", "--ports", "1", "--out", notFile, "--force")
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, "--out "+notFile+" is not a regular file ("+kind+")")
	}
	fi, err := os.Lstat(fifo)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeNamedPipe, fi.Mode().Type(), "the pipe is left as it was")
}
