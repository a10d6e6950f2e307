package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The curves: how the Recorder's throughput follows the number of servers,
// its batch size and the key universe; what the syncer costs as the group
// and the key count grow; and how much memory queued points hold. `go run .
// curves` measures them and plots them into -out.

// curvesConfig holds the curves' command line, validated.
type curvesConfig struct {
	out        string // directory of the plots; "" for none
	rounds     int
	points     int64         // points per Recorder run, at least twice the universe
	maxRun     time.Duration // a Recorder run stops adding after this long
	writers    int
	servers    []int // server counts of the servers curve
	batches    []int // Recorder batch sizes
	universes  []int // key universes
	groupSizes []int // syncer group sizes
	syncKeys   []int // syncer key counts
	syncPoints int64 // points the syncer replicates per run
	memPoints  int64 // points queued for the memory figure
	only       map[string]bool
	json       bool
}

// curveNames are the curves, as -only names them.
var curveNames = []string{"servers", "batch", "universe", "memory", "syncer"}

// runs reports whether the run measures the named curve.
func (c curvesConfig) runs(name string) bool { return len(c.only) == 0 || c.only[name] }

func parseCurvesFlags(args []string, usageOut io.Writer) (curvesConfig, error) {
	var cfg curvesConfig
	var servers, batches, universes, groupSizes, syncKeys, only string
	fs := flag.NewFlagSet("bench curves", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		fmt.Fprint(usageOut, `Usage: go run . curves [flags]

Measures the scaling curves: Recorder points/s against the number of servers,
the batch size and the key universe; the syncer's catch-up rate and CPU cost
against the group size and the key count; memory held per queued point. The
settings of a curve alternate round by round; each run starts on freshly
flushed servers. Plots are written as PNG files into -out.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.out, "out", filepath.Join("..", "docs"), `directory for the PNG plots ("" for none)`)
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds; the median of each setting is plotted")
	fs.Int64Var(&cfg.points, "points", 500000, "points per Recorder run (at least twice the universe is used)")
	fs.DurationVar(&cfg.maxRun, "max-run", 30*time.Second, "a Recorder run stops adding points after this long")
	fs.IntVar(&cfg.writers, "writers", 16, "concurrent writers of the Recorder runs")
	fs.StringVar(&servers, "servers", "1,2,4,8,16", "server counts of the servers curve")
	fs.StringVar(&batches, "batches", "10,100,1000,10000", "Recorder batch sizes (RecorderOptions.BatchSize), on 8 servers")
	fs.StringVar(&universes, "universes", "1000,10000,100000,1000000", "key universes, on 8 servers")
	fs.StringVar(&groupSizes, "group-sizes", "2,3,4", "syncer group sizes")
	fs.StringVar(&syncKeys, "sync-keys", "1000,10000,100000", "keys the syncer replicates")
	fs.Int64Var(&cfg.syncPoints, "sync-points", 200000, "points the syncer replicates per run")
	fs.Int64Var(&cfg.memPoints, "mem-points", 1000000, "points queued for the memory figure")
	fs.StringVar(&only, "only", "", "measure only these curves ("+strings.Join(curveNames, ",")+"); the plots of the others are left alone")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object instead of the table")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if only != "" {
		cfg.only = make(map[string]bool)
		for name := range strings.SplitSeq(only, ",") {
			if name = strings.TrimSpace(name); !slices.Contains(curveNames, name) {
				return cfg, fmt.Errorf("-only %q: %q is not one of %s", only, name, strings.Join(curveNames, ", "))
			}
			cfg.only[name] = true
		}
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, l := range []struct {
		name string
		s    string
		dst  *[]int
	}{
		{"servers", servers, &cfg.servers}, {"batches", batches, &cfg.batches},
		{"universes", universes, &cfg.universes}, {"group-sizes", groupSizes, &cfg.groupSizes},
		{"sync-keys", syncKeys, &cfg.syncKeys},
	} {
		var err error
		if *l.dst, err = parseCounts(l.name, l.s); err != nil {
			return cfg, err
		}
	}
	switch {
	case cfg.rounds < 1:
		return cfg, fmt.Errorf("-rounds %d: want at least 1", cfg.rounds)
	case cfg.points < 1 || cfg.syncPoints < 1 || cfg.memPoints < 1:
		return cfg, errors.New("-points, -sync-points and -mem-points: want at least 1")
	case cfg.writers < 1:
		return cfg, fmt.Errorf("-writers %d: want at least 1", cfg.writers)
	case cfg.maxRun <= 0:
		return cfg, fmt.Errorf("-max-run %v: want more than 0", cfg.maxRun)
	case slices.Min(cfg.groupSizes) < 2:
		return cfg, fmt.Errorf("-group-sizes %v: a group has at least 2 servers", cfg.groupSizes)
	}
	return cfg, nil
}

// curvePoint is one setting of a curve: its x and the median y over the
// rounds, with the rounds' range.
type curvePoint struct {
	X      float64   `json:"x"`
	Y      float64   `json:"y"`
	YMin   float64   `json:"y_min"`
	YMax   float64   `json:"y_max"`
	Rounds []float64 `json:"rounds"`
	// CutShort says that a round stopped at -max-run, short of its points.
	CutShort bool `json:"cut_short,omitempty"`
	// Extra figures of the setting, medians over the rounds.
	AllocsPerPoint float64 `json:"allocs_per_point,omitempty"`
	CPUMicros      float64 `json:"cpu_us_per_point,omitempty"`
	IdleCPU        float64 `json:"idle_cpu_percent,omitempty"`
}

// curve is one line of a plot.
type curve struct {
	Name   string       `json:"name"`
	Points []curvePoint `json:"points"`
}

// curvesReport is the whole result, as -json prints it.
type curvesReport struct {
	Environment environment `json:"environment"`
	Rounds      int         `json:"rounds"`
	Writers     int         `json:"writers"`
	Servers     curve       `json:"recorder_by_servers"`
	Batches     curve       `json:"recorder_by_batch_size"`
	Universes   curve       `json:"recorder_by_universe"`
	Syncer      []curve     `json:"syncer_by_group_size"` // one per key count
	Memory      curve       `json:"memory_by_universe"`
	Plots       []string    `json:"plots,omitempty"`
}

// runCurves measures every curve and writes the report and the plots.
func runCurves(ctx context.Context, cfg curvesConfig, out, progress io.Writer) error {
	n := max(slices.Max(cfg.servers), 8, slices.Max(cfg.groupSizes))
	fmt.Fprintf(progress, "starting %d redis-server processes\n", n)
	f, err := startFleet(ctx, n)
	if err != nil {
		return err
	}
	defer f.stop()
	env, err := newEnvironment(ctx, f)
	if err != nil {
		return err
	}
	rep := curvesReport{Environment: env, Rounds: cfg.rounds, Writers: cfg.writers}
	rr := newRecorderRunner(f, cfg, progress)
	defer rr.close()
	for _, m := range []struct {
		name string
		run  func() error
	}{
		{"servers", func() (err error) { rep.Servers, err = rr.byServers(ctx); return err }},
		{"batch", func() (err error) { rep.Batches, err = rr.byBatch(ctx); return err }},
		{"universe", func() (err error) { rep.Universes, err = rr.byUniverse(ctx); return err }},
		{"memory", func() (err error) { rep.Memory, err = rr.memory(ctx); return err }},
		{"syncer", func() (err error) { rep.Syncer, err = syncerCurves(ctx, f, cfg, progress); return err }},
	} {
		if cfg.runs(m.name) {
			if err := m.run(); err != nil {
				return err
			}
		}
	}
	if cfg.out != "" {
		if rep.Plots, err = writePlots(cfg.out, cfg, rep); err != nil {
			return err
		}
		for _, p := range rep.Plots {
			fmt.Fprintln(progress, "wrote", p)
		}
	}
	if cfg.json {
		return writeJSON(out, rep)
	}
	return writeCurvesTable(out, rep)
}

// median returns the median of vs, and its min and max.
func median(vs []float64) (med, lo, hi float64) {
	s := slices.Sorted(slices.Values(vs))
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2, s[0], s[len(s)-1]
}

// tableSection is one curve in the table: a title, the names of x and y,
// and what else to print of each point.
type tableSection struct {
	title, x, y string
	c           curve
	extra       func(curvePoint) string
}

// writeCurvesTable prints the curves for people.
func writeCurvesTable(w io.Writer, rep curvesReport) error {
	env := rep.Environment
	fmt.Fprintf(w, "%d redis-server %s · %s %s/%s · %d CPUs · %d rounds, median (min–max)\n",
		env.Servers, env.RedisVersion, env.GoVersion, env.OS, env.Arch, env.CPUs, rep.Rounds)
	allocs := func(p curvePoint) string {
		if p.CutShort {
			return fmt.Sprintf("%.2f allocs/point (cut short at -max-run)", p.AllocsPerPoint)
		}
		return fmt.Sprintf("%.2f allocs/point", p.AllocsPerPoint)
	}
	sections := []tableSection{
		{fmt.Sprintf("Recorder, %d writers, by servers", rep.Writers), "servers", "points/s", rep.Servers, allocs},
		{"Recorder on 8 servers, by batch size", "batch", "points/s", rep.Batches, allocs},
		{"Recorder on 8 servers, by key universe", "keys", "points/s", rep.Universes, allocs},
	}
	for _, c := range rep.Syncer {
		sections = append(sections, tableSection{"Syncer catch-up, " + c.Name, "servers", "points/s", c,
			func(p curvePoint) string {
				return fmt.Sprintf("%.1f CPU-µs/point, idle %.1f%% CPU", p.CPUMicros, p.IdleCPU)
			}})
	}
	sections = append(sections, tableSection{"Memory held by queued points, by key universe", "keys", "B/point",
		rep.Memory, func(curvePoint) string { return "" }})
	for _, sc := range sections {
		fmt.Fprintf(w, "\n%s\n", sc.title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\t%s\tmin–max\t\n", sc.x, sc.y)
		for _, p := range sc.c.Points {
			fmt.Fprintf(tw, "  %s\t%s\t%s–%s\t%s\n", humanRate(p.X), humanRate(p.Y),
				humanRate(p.YMin), humanRate(p.YMax), sc.extra(p))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// checkDir makes sure dir exists.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	return nil
}
