// Metrics records a few hosts' metrics with Client.Record and reads them
// back with Range and Latest.
//
//	go run ./examples/metrics -config fed.yaml
package main

import (
	"context"
	"errors"
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
		log.Fatal("usage: metrics -config FILE")
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

	ctx := context.Background()
	hosts := []string{"web1.example", "web2.example", "db1.example"}
	names := []string{"cpu.user", "mem.used"}
	now := time.Now().Truncate(time.Second)
	from := now.Add(-5 * time.Minute)
	for i, host := range hosts {
		for j, name := range names {
			for k := range 5 {
				at := from.Add(time.Duration(k+1) * time.Minute)
				value := float64(10*(i+1)+j) + float64(k)/4
				if err := client.Record(ctx, host, name, at, value); err != nil {
					log.Fatal(err)
				}
			}
		}
	}

	for _, host := range hosts {
		for _, name := range names {
			points, err := client.Range(ctx, host, name, from, now)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s %s: %d points\n", host, name, len(points))
			for _, p := range points {
				fmt.Printf("  %s  %g\n", p.Time.Format(time.RFC3339), p.Value)
			}
			latest, err := client.Latest(ctx, host, name)
			switch {
			case errors.Is(err, federated.ErrNoData):
				fmt.Println("  latest: none")
			case err != nil:
				log.Fatal(err)
			default:
				fmt.Printf("  latest: %s  %g\n", latest.Time.Format(time.RFC3339), latest.Value)
			}
		}
	}
}
