package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

func newRouteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "route [KEY...]",
		Short: "Print the node and server that own each key",
		Long: `Print KEY<TAB>NODE<TAB>SERVER for each key: where the key lives.
Keys come from the arguments or, when there are none, from standard input,
one per line. For a replica group SERVER lists every server of the group,
comma-separated, in configuration order: the key lives on all of them. No
server is contacted.`,
		Example: `  redfed route --config fed.yaml 2026-11-25:web1.sfo:cpu.user
  cut -f1 keys.tsv | redfed route --config fed.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer client.Close()
			return routeKeys(cmd.Context(), client, args, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}

// routeKeys prints where each of keys lives or, with none, each key read
// from in, until in ends or ctx does.
func routeKeys(ctx context.Context, client *federated.Client, keys []string, in io.Reader, out io.Writer) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	emit := func(key string) error {
		node := client.KeyToNode(key)
		servers, err := client.AllServers(node)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\t%s\t%s\n", key, node, strings.Join(servers, ","))
		return err
	}
	if len(keys) > 0 {
		for _, k := range keys {
			if err := emit(k); err != nil {
				return err
			}
		}
		return nil
	}
	in, stop := interruptible(ctx, in)
	defer stop()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if err := emit(sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}
