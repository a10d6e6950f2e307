// Command chaining shows the asynchronous API: queue commands with call
// chaining, send them all with one Poll, and read the answers in callbacks.
//
//	go run ./examples/chaining -config fed.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/redfed/federated"
)

func main() {
	config := flag.String("config", "", "federation file (YAML or JSON)")
	flag.Parse()
	if *config == "" {
		log.Fatal("usage: chaining -config FILE")
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

	day := time.Now().UTC().Format("2006-01-02")
	p := client.Pipeline()
	for i := 1; i <= 20; i++ {
		p.Set(fmt.Sprintf("%s:web%d.example:requests", day, i), i*100)
	}
	for i := 1; i <= 20; i++ {
		key := fmt.Sprintf("%s:web%d.example:requests", day, i)
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
