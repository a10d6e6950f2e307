package main

import (
	"fmt"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plotSpec is one PNG: its file, titles, axes and lines.
type plotSpec struct {
	curve             string // as -only names it
	file, title, x, y string
	logX              bool
	curves            []curve
	scale             float64 // y values are divided by it (1000 for "k")
}

// writePlots draws every curve of the report into dir and returns the
// files written.
func writePlots(dir string, cfg curvesConfig, rep curvesReport) ([]string, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	sub := fmt.Sprintf("%d writers, %s, %d CPUs", rep.Writers, rep.Environment.RedisVersion, rep.Environment.CPUs)
	all := []plotSpec{
		{curve: "servers", file: "curve-recorder-servers.png", title: "Recorder by servers (" + sub + ")",
			x: "redis-server processes", y: "thousand points/s", logX: true, curves: []curve{rep.Servers}, scale: 1e3},
		{curve: "batch", file: "curve-recorder-batch.png", title: "Recorder by batch size (8 servers, " + sub + ")",
			x: "RecorderOptions.BatchSize (points)", y: "thousand points/s", logX: true, curves: []curve{rep.Batches}, scale: 1e3},
		{curve: "universe", file: "curve-recorder-universe.png", title: "Recorder by key universe (8 servers, " + sub + ")",
			x: "keys written to", y: "thousand points/s", logX: true, curves: []curve{rep.Universes}, scale: 1e3},
		{curve: "syncer", file: "curve-syncer.png", title: "Syncer catch-up by group size",
			x: "servers in the group", y: "thousand replicated points/s", curves: rep.Syncer, scale: 1e3},
		{curve: "memory", file: "curve-memory.png", title: "Memory held by queued points",
			x: "keys the points go to", y: "bytes per queued point", logX: true, curves: []curve{rep.Memory}, scale: 1},
	}
	var specs []plotSpec
	for _, sp := range all {
		if cfg.runs(sp.curve) {
			specs = append(specs, sp)
		}
	}
	var files []string
	for _, sp := range specs {
		path := filepath.Join(dir, sp.file)
		if err := drawPlot(path, sp); err != nil {
			return files, fmt.Errorf("plotting %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}

// drawPlot draws one plot: a line through each curve's medians, with error
// bars from the rounds' minimum to maximum.
func drawPlot(path string, sp plotSpec) error {
	p := plot.New()
	p.Title.Text = sp.title
	p.X.Label.Text = sp.x
	p.Y.Label.Text = sp.y
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	if sp.logX {
		p.X.Scale = plot.LogScale{}
	}
	var ticks plot.ConstantTicks // at the settings measured
	for _, pt := range sp.curves[0].Points {
		ticks = append(ticks, plot.Tick{Value: pt.X, Label: humanRate(pt.X)})
	}
	p.X.Tick.Marker = ticks
	for i, c := range sp.curves {
		xys := make(plotter.XYs, len(c.Points))
		bars := make(errorPoints, len(c.Points))
		for j, pt := range c.Points {
			xys[j] = plotter.XY{X: pt.X, Y: pt.Y / sp.scale}
			bars[j] = errorPoint{x: pt.X, y: pt.Y / sp.scale, lo: (pt.Y - pt.YMin) / sp.scale, hi: (pt.YMax - pt.Y) / sp.scale}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		color := plotutil.Color(i)
		line.Color, points.Color = color, color
		points.Shape = plotutil.Shape(i)
		eb, err := plotter.NewYErrorBars(bars)
		if err != nil {
			return err
		}
		eb.Color = color
		p.Add(line, points, eb)
		if len(sp.curves) > 1 {
			p.Legend.Add(c.Name, line, points)
		}
	}
	p.Legend.Top = true
	return p.Save(7*vg.Inch, 4*vg.Inch, path)
}

// errorPoint is a median with its distance to the rounds' min and max.
type errorPoint struct{ x, y, lo, hi float64 }

// errorPoints feeds plotter.NewYErrorBars.
type errorPoints []errorPoint

func (e errorPoints) Len() int                        { return len(e) }
func (e errorPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errorPoints) YError(i int) (float64, float64) { return e[i].lo, e[i].hi }
