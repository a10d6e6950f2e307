package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/redfed/federated"
)

func newRouteCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "route [KEY...]",
		Short: "Print the node and server that own each key",
		Long: `Print KEY<TAB>NODE<TAB>SERVER for each key: where the key lives. A key
with a character that does not print (a tab, a control character), or
that begins with a double quote, is printed quoted, as Go quotes it.
Keys come from the arguments or, when there are none, from standard input,
one per line (blank lines are skipped). For a replica group SERVER lists
every server of the group, comma-separated, in configuration order: the
key lives on all of them. No server is contacted.

With --json it prints one object a line (JSON Lines), as the keys come:

  {"key": "...", "node": "redis_7", "servers": ["db1:6385", "db2:6385"]}`,
		Example: `  redfed route --config fed.yaml 2026-11-25:web1.sfo:cpu.user
  cut -f1 keys.tsv | redfed route --config fed.yaml
  redfed route --json 2026-11-25:web1.sfo:cpu.user | jq -r .node`,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := newClient(cmd)
			if err != nil {
				return err
			}
			defer client.Close()
			return routeKeys(cmd.Context(), client, args, cmd.InOrStdin(), cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"key", "node", "servers": [...]} a line`)
	return cmd
}

// routeJSON is a line of route's --json output.
type routeJSON struct {
	Key     string   `json:"key"`
	Node    string   `json:"node"`
	Servers []string `json:"servers"` // in configuration order
}

// routeKeys prints where each of keys lives or, with none, each key read
// from in, until in ends or ctx does; asJSON, as JSON Lines.
func routeKeys(ctx context.Context, client *federated.Client, keys []string, in io.Reader, out io.Writer, asJSON bool) error {
	w := bufio.NewWriter(out)
	defer w.Flush()
	enc := json.NewEncoder(w)
	emit := func(key string) error {
		node := client.KeyToNode(key)
		servers, err := client.AllServers(node)
		if err != nil {
			return err
		}
		if asJSON {
			if !utf8.ValidString(key) {
				return errors.New("not UTF-8, which JSON cannot hold: route it without --json")
			}
			return enc.Encode(routeJSON{Key: key, Node: node, Servers: servers})
		}
		_, err = fmt.Fprintf(w, "%s\t%s\t%s\n", printable(key), node, strings.Join(servers, ","))
		return err
	}
	if len(keys) > 0 {
		for i, k := range keys {
			if err := emit(k); err != nil {
				return fmt.Errorf("key %d of the arguments: %w", i+1, err)
			}
		}
		return nil
	}
	in, stop := interruptible(ctx, in)
	defer stop()
	r := bufio.NewReaderSize(in, 64<<10)
	for lineNo := 1; ; lineNo++ {
		key, err := readLine(r, maxKeyLineLen)
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errLineTooLong):
			return fmt.Errorf("line %d of standard input: longer than %d bytes", lineNo, maxKeyLineLen)
		case err != nil && errors.Is(err, ctx.Err()): // the reader returns ctx's own error
			return fmt.Errorf("interrupted at line %d of standard input: %w", lineNo, err)
		case err != nil:
			return fmt.Errorf("reading line %d of standard input: %w", lineNo, err)
		}
		if key != "" {
			if err := emit(key); err != nil {
				return fmt.Errorf("line %d of standard input: %w", lineNo, err)
			}
		}
		// A line each as the keys come, not a page: before a read that
		// may wait, what is printed goes out.
		if next, _ := r.Peek(r.Buffered()); bytes.IndexByte(next, '\n') < 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// maxKeyLineLen bounds a line of route's input: a key.
const maxKeyLineLen = 16 << 20
