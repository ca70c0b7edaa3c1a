// Command horizons-pipeline runs the AlphaCal → ImageReconstruction →
// AnomalyDetection pipeline (package agents/pipeline) on seeded synthetic
// VLASS-like data and prints a summary: stage timings, flag fraction,
// sources found against the truth, and the anomalies.
//
//	go run ./cmd/horizons-pipeline -out /tmp/field -seed 7 -size 256
//
// With -out the FITS images, PNG previews and JSON documents are written
// there; without it everything stays in memory. -json prints the summary
// document instead of the table. -bench N runs N seeds on one core and on
// all cores and prints the median stage times side by side with the
// speed-up.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "horizons-pipeline:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("horizons-pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output directory for FITS, PNG and JSON products (empty: keep in memory)")
	seed := fs.Int64("seed", 1, "seed of the synthetic data")
	size := fs.Int("size", 256, "image side in pixels (even, 64-2048)")
	cell := fs.Float64("cell", 1, "pixel size in arcseconds")
	times := fs.Int("times", 48, "integrations per epoch")
	chans := fs.Int("channels", 32, "channels over 2-4 GHz")
	ants := fs.Int("antennas", 27, "VLA antennas (2-27)")
	sources := fs.Int("sources", 6, "steady point sources")
	tsnr := fs.Float64("transient-snr", 30, "SNR of the transient that appears in epoch 2")
	flagger := fs.String("flagger", pipeline.FlaggerSumThreshold, "RFI flagger: sumthreshold, mad or none")
	deconv := fs.String("deconvolver", "auto", "deconvolver: auto, hogbom, cotton-schwab, clark, multiscale, mtmfs or none")
	niter := fs.Int("niter", 2000, "CLEAN iterations per epoch")
	asJSON := fs.Bool("json", false, "print the summary JSON document")
	quiet := fs.Bool("q", false, "do not print stage progress")
	bench := fs.Int("bench", 0, "benchmark: run N seeds on one core and on all cores, print median stage times side by side (no products written)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := &pipeline.Config{
		ImageSize: *size, CellArcsec: *cell, Times: *times, Channels: *chans, Antennas: *ants,
		Sources: *sources, TransientSNR: *tsnr, Flagger: *flagger, Deconvolver: *deconv, Niter: *niter, OutputDir: *out,
	}
	if *sources == 0 {
		cfg.NoSteady = true
	}
	if *bench > 0 {
		cfg.OutputDir = ""
		return runBench(ctx, stdout, *bench, *seed, cfg)
	}
	if !*quiet {
		cfg.Progress = func(pct float64, note string) {
			if _, status, _ := agents.ParseStage(note); status != "" {
				fmt.Fprintf(stderr, "%5.1f%% %s\n", pct, note)
			}
		}
	}
	res, err := pipeline.Run(ctx, *seed, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := fmt.Fprintf(stdout, "%s\n", res.Documents[pipeline.FileSummary])
		return err
	}
	printSummary(stdout, res)
	return nil
}

func printSummary(w io.Writer, res *pipeline.Result) {
	s := res.Summary
	fmt.Fprintf(w, "field        %d×%d at %g\", seed %d, %d visibilities per epoch\n", s.ImageSize, s.ImageSize, s.CellArcsec, s.Seed, s.Visibilities)
	fmt.Fprintln(w, "stage timings")
	for _, t := range s.Timings {
		fmt.Fprintf(w, "  %-10s %8.3f s\n", t.Stage, t.Seconds)
	}
	fmt.Fprintf(w, "  %-10s %8.3f s\n", "total", s.TotalSeconds)
	for e := 0; e < 2; e++ {
		fmt.Fprintf(w, "epoch %d      flagged %.2f%% (RFI %.2f%%): recall %.3f, FPR %.4f; rms %.1f µJy/beam (theory %.1f)\n",
			e+1, 100*s.FlagFraction[e], 100*s.RFIFraction[e], s.FlagRecall[e], s.FlagFPR[e], s.RMSJy[e]*1e6, s.TheoreticalJy[e]*1e6)
	}
	fmt.Fprintf(w, "imaging      %s, beam %.2f\" × %.2f\" PA %.0f°: %s\n", s.Deconvolver, s.BeamArcsec[0], s.BeamArcsec[1], s.BeamArcsec[2], s.Choice)
	fmt.Fprintf(w, "sources      %d found, %d of %d truth matched (completeness %.2f, reliability %.2f, median flux ratio %.3f)\n",
		s.SourcesFound, s.SourcesMatched, s.TruthSources, s.Completeness, s.Reliability, s.FluxRatio)
	var types []string
	for k, v := range s.AnomalyTypes {
		types = append(types, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(types)
	fmt.Fprintf(w, "anomalies    %d (%s); transient found: %v, variable found: %v\n", s.Anomalies, strings.Join(types, ", "), s.TransientFound, s.VariableFound)
	for _, a := range res.Comparison.Anomalies {
		fmt.Fprintf(w, "  %-11s %-8s %s\n", a.Type, a.Severity, a.Description)
	}
	if len(res.Artifacts) > 0 {
		fmt.Fprintf(w, "wrote        %s to %s\n", strings.Join(res.Artifacts, ", "), res.Config.OutputDir)
	}
}

// runBench runs the pipeline n times (seeds seed … seed+n-1) with
// GOMAXPROCS 1 (the baseline) and with every core, and prints each
// stage's median wall time side by side with the speed-up.
func runBench(ctx context.Context, w io.Writer, n int, seed int64, cfg *pipeline.Config) error {
	all := runtime.NumCPU()
	prev := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(prev)
	procs := []int{1, all}
	med := make([]map[string]float64, len(procs))
	for pi, p := range procs {
		runtime.GOMAXPROCS(p)
		times := map[string][]float64{}
		for i := 0; i < n; i++ {
			c := *cfg
			t0 := time.Now()
			res, err := pipeline.Run(ctx, seed+int64(i), &c)
			if err != nil {
				return err
			}
			for _, t := range res.Summary.Timings {
				times[t.Stage] = append(times[t.Stage], t.Seconds)
			}
			times["total"] = append(times["total"], time.Since(t0).Seconds())
		}
		med[pi] = map[string]float64{}
		for k, v := range times {
			sort.Float64s(v)
			med[pi][k] = v[len(v)/2]
		}
	}
	fmt.Fprintf(w, "pipeline %d×%d, %d runs each, median wall time per stage\n", cfg.ImageSize, cfg.ImageSize, n)
	fmt.Fprintf(w, "%-10s %12s %12s %9s\n", "stage", "1 core (s)", fmt.Sprintf("%d cores (s)", all), "speed-up")
	names := []string{}
	for _, s := range pipeline.Stages {
		names = append(names, s.Name)
	}
	for _, k := range append(names, "total") {
		a, b := med[0][k], med[1][k]
		r := 0.0
		if b > 0 {
			r = a / b
		}
		fmt.Fprintf(w, "%-10s %12.3f %12.3f %8.2f×\n", k, a, b, r)
	}
	return nil
}
