package federated_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/redfed/federated"
)

// exampleServers are the addresses of the redis-server processes that
// TestMain starts for the examples.
var exampleServers []string

// exampleConfig is a federation of the example servers, one node each. In a
// program it would come from federated.LoadConfig.
func exampleConfig() federated.Config {
	nodes := make(map[string]federated.Node)
	for i, addr := range exampleServers {
		nodes[fmt.Sprintf("redis_%d", i+1)] = federated.Node{Address: addr}
	}
	return federated.Config{Nodes: nodes, Options: federated.Options{Logger: slog.New(slog.DiscardHandler)}}
}

// Queue commands with call chaining, then send them all with Poll: one round
// trip per server, all servers at once. The keys are plain ones: a metric
// key ("$period:$host:$metric") is the metrics store's sorted set, written
// through its Recorder or Client.Record so that it is journalled and
// replicated, never a string.
func ExamplePipeline() {
	client, err := federated.New(exampleConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	p := client.Chain()
	p.Set("owner:web1.sfo", "alice").
		Set("owner:web2.sfo", "bob").
		Get("owner:web1.sfo", func(v string, err error) {
			fmt.Println("web1:", v, err)
		}).
		Get("owner:web3.sfo", func(v string, err error) {
			fmt.Println("web3 missing:", err == redis.Nil)
		})
	if err := p.Poll(context.Background()); err != nil {
		log.Fatal(err)
	}
	// Output:
	// web1: alice <nil>
	// web3 missing: true
}

// Ask every server of a replica group, for a sanity check that compares
// the replicas.
func ExampleClient_All() {
	cfg := exampleConfig()
	cfg.Nodes = map[string]federated.Node{"replicas": {Addresses: exampleServers}}
	client, err := federated.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	if _, err := client.All(ctx, "SET", "greeting", "hello"); err != nil {
		log.Fatal(err)
	}
	results, err := client.All(ctx, "GET", "greeting")
	if err != nil {
		log.Fatal(err)
	}
	agree := 0
	for _, r := range results {
		if r.Err == nil && r.Val == "hello" {
			agree++
		}
	}
	fmt.Printf("%d of %d replicas agree\n", agree, len(results))
	// Output: 3 of 3 replicas agree
}

// Modules of one program that know nothing of each other share one client
// by tag.
func ExampleShared() {
	limiter, err := federated.Shared("rate-limiter", exampleConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer limiter.Close()

	elsewhere, err := federated.Shared("rate-limiter", exampleConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer elsewhere.Close()

	fmt.Println("same client:", limiter == elsewhere)
	// Output: same client: true
}
