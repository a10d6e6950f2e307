// Command chaining shows the asynchronous API: queue commands with call
// chaining, send them all with one Poll, and read the answers in callbacks.
//
//	go run ./examples/chaining -config fed.yaml   # or with $REDFED_CONFIG set
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/redfed/federated"
)

func main() {
	log.SetFlags(0)
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run runs the example with the command line args, writing to out. The
// federation file is -config's, else $REDFED_CONFIG's.
func run(ctx context.Context, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("chaining", flag.ContinueOnError)
	config := flags.String("config", os.Getenv("REDFED_CONFIG"), "federation file (YAML or JSON); default $REDFED_CONFIG")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *config == "" {
		return fmt.Errorf("usage: chaining -config FILE (or set $REDFED_CONFIG)")
	}
	cfg, err := federated.LoadConfig(*config)
	if err != nil {
		return err
	}
	client, err := federated.New(cfg)
	if err != nil {
		return err
	}
	defer client.Close()

	// Plain keys, not metric-shaped: metric keys ("$period:$host:$metric")
	// are the metrics store's sorted sets, written through its Recorder
	// so that they are journalled and replicated (examples/metrics).
	p := client.Chain()
	for i := 1; i <= 20; i++ {
		p.Set(fmt.Sprintf("requests:web%d.example", i), i*100)
	}
	for i := 1; i <= 20; i++ {
		key := fmt.Sprintf("requests:web%d.example", i)
		p.Get(key, func(v string, err error) {
			if err != nil {
				fmt.Fprintf(out, "%s: %v\n", key, err)
				return
			}
			fmt.Fprintf(out, "%s = %s (node %s)\n", key, v, client.KeyToNode(key))
		})
	}
	return p.Poll(ctx)
}
