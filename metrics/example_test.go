package metrics_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

// Read a range of a series and its newest point.
func ExampleStore_Range() {
	client, err := federated.New(exampleConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := metrics.New(client)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	start := time.Date(2026, 11, 25, 23, 58, 0, 0, time.UTC)
	for i := range 4 {
		at := start.Add(time.Duration(i) * time.Minute) // crosses midnight
		if err := client.Record(ctx, "example1.sfo", "cpu.user", at, float64(i)/4); err != nil {
			log.Fatal(err)
		}
	}
	points, err := rangeOf(ctx, store, "example1.sfo", "cpu.user", start.Add(time.Minute), start.Add(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range points {
		fmt.Println(p.Time.Format(time.RFC3339), p.Value)
	}
	// Output:
	// 2026-11-25T23:59:00Z 0.25
	// 2026-11-26T00:00:00Z 0.5
	// 2026-11-26T00:01:00Z 0.75
}
