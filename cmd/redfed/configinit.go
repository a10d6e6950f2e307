package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Short:   "Write federation files",
		Example: "  redfed config init --hosts db1,db2 --ports 6379-6386 --out fed.yaml",
	}
	groupCommand(cmd)
	cmd.AddCommand(newConfigInitCmd())
	return cmd
}

func newConfigInitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init --hosts H1,H2,... --ports FIRST-LAST",
		Short: "Write the federation file of a fleet of hosts that each run the same ports",
		Long: `Write a federation file for a fleet where every host runs one redis-server
per port of --ports. There is one node per port, named redis_1, redis_2, ...
in port order, and node redis_i is a replica group of the i-th port on
several hosts: process i on one host pairs with process i on the others.

With --replicas N (default: every host), each group has N servers. When N
is at most the number H of hosts, group i, counting from 0, takes hosts
(i*N + j) mod H for j = 0 ... N-1, in --hosts order: the groups deal the
hosts out in turn, each starting where the one before stopped. Every host is then in P*N/H of the
P groups (4 hosts, 8 ports, --replicas 2: 4 each); when that is not a whole
number, the counts of two hosts differ by at most one, and a note on
standard error gives them. A group of one host is written as "address:", a
larger one as "addresses:".

To try replication on one machine, give more replicas than hosts: N a
multiple of the H hosts, each group then takes N/H consecutive ports of
every host. --hosts 127.0.0.1 --ports 7001-7004 --replicas 2 makes
redis_1 of ports 7001 and 7002, redis_2 of 7003 and 7004: start a
redis-server on each port, and check, repair and sync (--local every
one of them) have replicas to compare and copy.

--ports takes ports and ranges, comma-separated: 6379-6386, or 6379,6380.
The file goes to standard output, or to --out, which is not overwritten
unless --force is given. It is checked to load before it is written.`,
		Example: `  redfed config init --hosts db1,db2 --ports 6379-6386 --out fed.yaml
  redfed config init --hosts db1,db2,db3,db4 --ports 6379-6386 --replicas 2
  redfed config init --hosts localhost --ports 7001-7004
  redfed config init --hosts 127.0.0.1 --ports 7001-7004 --replicas 2   # replicas on one machine`,
		Args: usageArgs(cobra.NoArgs),
	}
	hosts := cmd.Flags().String("hosts", "", "hosts of the fleet, comma-separated (required)")
	ports := cmd.Flags().String("ports", "", "ports every host runs: ports and FIRST-LAST ranges, comma-separated (required)")
	replicas := cmd.Flags().Int("replicas", 0, "hosts in each replica group (default every host)")
	out := cmd.Flags().String("out", "", "write the file here instead of to standard output")
	force := cmd.Flags().Bool("force", false, "overwrite the --out file if it exists")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		hostList, err := parseHosts(*hosts)
		if err != nil {
			return usagef("--hosts: %w", err)
		}
		portList, err := parsePorts(*ports)
		if err != nil {
			return usagef("--ports: %w", err)
		}
		n := *replicas
		if !cmd.Flags().Changed("replicas") {
			n = len(hostList)
		}
		if err := checkReplicas(n, len(hostList), len(portList)); err != nil {
			return err
		}
		groups := replicaGroups(hostList, portList, n)
		data := renderFederation(groups, configInitCommandLine(hostList, portList, *replicas, cmd.Flags().Changed("replicas")))
		if _, err := federated.ParseConfig(data); err != nil {
			return err
		}
		if counts := hostCounts(groups); !balanced(counts) {
			consoleOf(cmd.ErrOrStderr()).Printf("note: %d groups of %d cannot be shared equally by %d hosts: %s\n",
				len(groups), n, len(hostList), formatCounts(hostList, counts))
		}
		if *out == "" {
			_, err := cmd.OutOrStdout().Write(data)
			return err
		}
		return writeNewFile(*out, data, *force)
	}
	return cmd
}

// parseHosts splits a comma-separated list of host names or IP addresses.
func parseHosts(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no hosts given; want a comma-separated list like db1,db2")
	}
	var hosts []string
	seen := make(map[string]bool)
	for i, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return nil, fmt.Errorf("host %d of %q is empty", i+1, s)
		case strings.ContainsFunc(h, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			return nil, fmt.Errorf("host %q contains a space or control character", h)
		case strings.Contains(h, ":") && net.ParseIP(h) == nil:
			return nil, fmt.Errorf("host %q contains ':' but is not an IPv6 address; give hosts without ports", h)
		case seen[h]:
			return nil, fmt.Errorf("host %q is given twice", h)
		}
		seen[h] = true
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// parsePorts reads a comma-separated list of ports and FIRST-LAST ranges,
// in the order given.
func parsePorts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("no ports given; want a range like 6379-6386")
	}
	var ports []int
	seen := make(map[int]bool)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		firstText, lastText, isRange := strings.Cut(item, "-")
		first, err := parsePort(firstText, item)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parsePort(lastText, item); err != nil {
				return nil, err
			}
			if last < first {
				return nil, fmt.Errorf("range %q ends before it starts", item)
			}
		}
		for p := first; p <= last; p++ {
			if seen[p] {
				return nil, fmt.Errorf("port %d is given twice", p)
			}
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// parsePort reads one port of the --ports item item.
func parsePort(s, item string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a port or a range like 6379-6386", item)
	}
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d in %q is not from 1 to 65535", p, item)
	}
	return p, nil
}

// checkReplicas refuses a --replicas of n that cannot lay out the ports of
// a fleet of the given numbers of hosts and ports.
func checkReplicas(n, hosts, ports int) error {
	switch {
	case n < 1:
		return usagef("--replicas %d: want 1 or more", n)
	case n <= hosts:
		return nil
	case n%hosts != 0:
		return usagef("--replicas %d: want 1 to %d, the number of hosts, or a multiple of it "+
			"(more replicas than hosts puts several ports of each host in a group)", n, hosts)
	case ports%(n/hosts) != 0:
		return usagef("--replicas %d on %s: each group takes %d ports of each host, and %d ports do not divide into groups of %d",
			n, counted(hosts, "host"), n/hosts, ports, n/hosts)
	}
	return nil
}

// replicaGroups lays out the fleet: group i holds ports[i] on n hosts,
// hosts (i*n + j) mod len(hosts) for j = 0 ... n-1, so that the groups deal
// the hosts out in turn. Each group is a list of host:port addresses. With
// more replicas than hosts (checkReplicas: a multiple of them), group i
// holds the k = n/len(hosts) ports ports[i*k] ... ports[i*k+k-1] of every
// host, host by host: one host can try replication.
func replicaGroups(hosts []string, ports []int, n int) [][]string {
	if k := n / len(hosts); n > len(hosts) {
		groups := make([][]string, len(ports)/k)
		for i := range groups {
			for _, host := range hosts {
				for _, port := range ports[i*k : i*k+k] {
					groups[i] = append(groups[i], net.JoinHostPort(host, strconv.Itoa(port)))
				}
			}
		}
		return groups
	}
	groups := make([][]string, len(ports))
	for i, port := range ports {
		group := make([]string, n)
		for j := range n {
			host := hosts[(i*n+j)%len(hosts)]
			group[j] = net.JoinHostPort(host, strconv.Itoa(port))
		}
		groups[i] = group
	}
	return groups
}

// hostCounts returns how many groups each host is in, by host.
func hostCounts(groups [][]string) map[string]int {
	counts := make(map[string]int)
	for _, g := range groups {
		for _, addr := range g {
			host, _, _ := net.SplitHostPort(addr)
			counts[host]++
		}
	}
	return counts
}

func balanced(counts map[string]int) bool {
	lo, hi := -1, -1
	for _, c := range counts {
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return lo == hi
}

func formatCounts(hosts []string, counts map[string]int) string {
	parts := make([]string, len(hosts))
	for i, h := range hosts {
		parts[i] = fmt.Sprintf("%s %d", h, counts[h])
	}
	return strings.Join(parts, ", ")
}

// nodeName names the node of the i-th port, counting from 0.
func nodeName(i int) string { return "redis_" + strconv.Itoa(i+1) }

// renderFederation writes the federation file of the groups, nodes in port
// order, one line each, after a comment that says how it was made.
func renderFederation(groups [][]string, commandLine string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by: %s\n", commandLine)
	b.WriteString("nodes:\n")
	for i, g := range groups {
		if len(g) == 1 {
			fmt.Fprintf(&b, "  %s: {address: %s}\n", nodeName(i), yamlString(g[0]))
			continue
		}
		quoted := make([]string, len(g))
		for j, addr := range g {
			quoted[j] = yamlString(addr)
		}
		fmt.Fprintf(&b, "  %s: {addresses: [%s]}\n", nodeName(i), strings.Join(quoted, ", "))
	}
	return b.Bytes()
}

// yamlString quotes s as a YAML double-quoted scalar, whose escapes are a
// superset of JSON's.
func yamlString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// configInitCommandLine rebuilds, from the parsed flags, the command line
// that wrote a file, for its header comment.
func configInitCommandLine(hosts []string, ports []int, replicas int, replicasSet bool) string {
	s := fmt.Sprintf("redfed config init --hosts %s --ports %s", strings.Join(hosts, ","), formatPorts(ports))
	if replicasSet {
		s += fmt.Sprintf(" --replicas %d", replicas)
	}
	return s
}

// formatPorts writes ports as parsePorts reads them, runs of consecutive
// ports as ranges.
func formatPorts(ports []int) string {
	var parts []string
	for i := 0; i < len(ports); {
		j := i
		for j+1 < len(ports) && ports[j+1] == ports[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ports[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ports[i], ports[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// writeNewFile writes data to path through a temporary file renamed into
// place, so that a reader never sees half a file. An existing file is
// replaced only when force is set.
func writeNewFile(path string, data []byte, force bool) error {
	switch fi, err := os.Lstat(path); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("--out %s: %w", path, bareError(err))
	case !force:
		return usagef("--out %s exists; pass --force to replace it", path)
	case !fi.Mode().IsRegular():
		return usagef("--out %s is not a regular file (%s); it is not replaced", path, fileKind(fi.Mode()))
	}
	if err := writeThroughTemp(path, data); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}

// fileKind names the kind of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// writeThroughTemp writes data to a temporary file beside path and renames
// it to path. Its errors name the file's directory, not the temporary
// file.
func writeThroughTemp(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", dir, bareError(err))
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing a file in %s: %w", dir, bareError(err))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return bareError(err)
	}
	return nil
}

// bareError returns the cause of a file system error without the path or
// paths it names, which the caller names itself.
func bareError(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
