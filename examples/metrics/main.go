// Metrics records a few hosts' metrics through a Recorder of the metrics
// store and reads them back with Range and Latest.
//
//	go run ./examples/metrics -config fed.yaml   # or with $REDFED_CONFIG set
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
)

func main() {
	config := flag.String("config", os.Getenv("REDFED_CONFIG"), "federation file (YAML or JSON); default $REDFED_CONFIG")
	flag.Parse()
	if *config == "" {
		log.Fatal("usage: metrics -config FILE (or set $REDFED_CONFIG)")
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
	store, err := metrics.New(client)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := store.NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	hosts := []string{"web1.example", "web2.example", "db1.example"}
	names := []string{"cpu.user", "mem.used"}
	now := time.Now().Truncate(time.Second)
	from := now.Add(-5 * time.Minute)
	var samples []metrics.Sample
	for i, host := range hosts {
		for j, name := range names {
			for k := range 5 {
				at := from.Add(time.Duration(k+1) * time.Minute)
				value := float64(10*(i+1)+j) + float64(k)/4
				samples = append(samples, metrics.Sample{Host: host, Metric: name, Time: at, Value: value})
			}
		}
	}
	// Write returns once every point is acknowledged, or says which failed.
	if err := rec.Write(ctx, samples...); err != nil {
		log.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		log.Fatal(err)
	}

	for _, host := range hosts {
		for _, name := range names {
			series := metrics.Series{Host: host, Metric: name}
			res, err := store.Range(ctx, from, now, series)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("%s %s: %d points\n", host, name, len(res[0].Points))
			for _, p := range res[0].Points {
				fmt.Printf("  %s  %g\n", p.Time.Format(time.RFC3339), p.Value)
			}
			latest, err := store.Latest(ctx, series)
			switch {
			case errors.Is(err, metrics.ErrNoData):
				fmt.Println("  latest: none")
			case err != nil:
				log.Fatal(err)
			default:
				fmt.Printf("  latest: %s  %g\n", latest.Time.Format(time.RFC3339), latest.Value)
			}
		}
	}
}
