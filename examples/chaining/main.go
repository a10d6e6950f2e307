// Command chaining shows the asynchronous API: queue commands with call
// chaining, send them all with one Poll, and read the answers in callbacks.
//
//	go run ./examples/chaining -config fed.yaml   # or with $REDFED_CONFIG set
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/redfed/federated"
)

func main() {
	config := flag.String("config", os.Getenv("REDFED_CONFIG"), "federation file (YAML or JSON); default $REDFED_CONFIG")
	flag.Parse()
	if *config == "" {
		log.Fatal("usage: chaining -config FILE (or set $REDFED_CONFIG)")
	}
	cfg, err := federated.LoadConfig(*config)
	if err != nil {
		log.Fatal(err)
	}
	client, err := federated.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	// Plain keys: metric keys ("$period:$host:$metric") are the metrics
	// store's, written through its Recorder so that they are journalled
	// and replicated.
	p := client.Chain()
	for i := 1; i <= 20; i++ {
		p.Set(fmt.Sprintf("requests:web%d.example", i), i*100)
	}
	for i := 1; i <= 20; i++ {
		key := fmt.Sprintf("requests:web%d.example", i)
		p.Get(key, func(v string, err error) {
			if err != nil {
				fmt.Printf("%s: %v\n", key, err)
				return
			}
			fmt.Printf("%s = %s (node %s)\n", key, v, client.KeyToNode(key))
		})
	}
	if err := p.Poll(context.Background()); err != nil {
		log.Fatal(err)
	}
}
