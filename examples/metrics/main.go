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
	"io"
	"log"
	"os"
	"time"

	"github.com/redfed/federated"
	"github.com/redfed/federated/metrics"
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
	flags := flag.NewFlagSet("metrics", flag.ContinueOnError)
	config := flags.String("config", os.Getenv("REDFED_CONFIG"), "federation file (YAML or JSON); default $REDFED_CONFIG")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *config == "" {
		return fmt.Errorf("usage: metrics -config FILE (or set $REDFED_CONFIG)")
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
	store, err := metrics.New(client)
	if err != nil {
		return err
	}
	rec, err := store.NewRecorder(metrics.RecorderOptions{})
	if err != nil {
		return err
	}
	defer rec.Close() // closed below too, for its error; a second Close does nothing

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
		return err
	}
	if err := rec.Close(); err != nil {
		return err
	}

	for _, host := range hosts {
		for _, name := range names {
			series := metrics.Series{Host: host, Metric: name}
			res, err := store.Range(ctx, from, now, series)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s %s: %d points\n", host, name, len(res[0].Points))
			for _, p := range res[0].Points {
				fmt.Fprintf(out, "  %s  %g\n", p.Time.Format(time.RFC3339), p.Value)
			}
			latest, err := store.Latest(ctx, series)
			switch {
			case errors.Is(err, metrics.ErrNoData):
				fmt.Fprintln(out, "  latest: none")
			case err != nil:
				return err
			default:
				fmt.Fprintf(out, "  latest: %s  %g\n", latest.Time.Format(time.RFC3339), latest.Value)
			}
		}
	}
	return nil
}
