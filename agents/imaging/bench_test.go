package imaging

import (
	"context"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

// benchVis is a 30-minute VLA B track, 60 s integrations, 16 channels over
// 2–4 GHz: 31 × 351 × 16 = 174 096 visibilities, 10 sources.
func benchVis(b *testing.B) *Vis {
	b.Helper()
	v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 16, NoiseSigmaJy: 0.05,
		NumSources: 10, FluxMinJy: 0.002, FluxMaxJy: 0.05, FieldRadiusArcsec: 200}, 1)
	if err != nil {
		b.Fatal(err)
	}
	return toVis(v)
}

func benchReconstruct(b *testing.B, deconv string, workers int) {
	benchReconstructSize(b, deconv, workers, 1024, 0.6)
}

func benchReconstructSize(b *testing.B, deconv string, workers, size int, cell float64) {
	vis := benchVis(b)
	cfg := &Config{ImageSize: size, CellArcsec: cell, Deconvolver: deconv, Niter: 1000, Weighting: "briggs", Robust: 1, Workers: workers}
	b.ReportAllocs()
	b.ResetTimer()
	var res *Result
	for i := 0; i < b.N; i++ {
		var err error
		res, err = Reconstruct(context.Background(), vis, cfg)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	tm := res.Timings
	b.ReportMetric(float64(len(vis.Data)), "vis")
	b.ReportMetric(tm.Weighting.Seconds()*1e3, "weight-ms")
	b.ReportMetric(tm.Gridding.Seconds()*1e3, "grid-ms")
	b.ReportMetric(tm.FFT.Seconds()*1e3, "fft-ms")
	b.ReportMetric(tm.Clean.Seconds()*1e3, "clean-ms")
	b.ReportMetric(tm.Degrid.Seconds()*1e3, "degrid-ms")
	b.ReportMetric(tm.Restore.Seconds()*1e3, "restore-ms")
	b.ReportMetric(float64(res.Iterations), "iters")
}

// BenchmarkReconstruct1024Hogbom grids 174 096 visibilities, images the
// PSF (2048², for a full-coverage PSF) and the 1024² dirty image, and
// runs up to 1000 Högbom iterations.
func BenchmarkReconstruct1024Hogbom(b *testing.B) { benchReconstruct(b, DeconvHogbom, 0) }

// BenchmarkReconstruct1024Hogbom1Worker is the same on one goroutine, for
// the parallel speed-up.
func BenchmarkReconstruct1024Hogbom1Worker(b *testing.B) { benchReconstruct(b, DeconvHogbom, 1) }

// BenchmarkReconstruct1024CottonSchwab is the same with major cycles.
func BenchmarkReconstruct1024CottonSchwab(b *testing.B) {
	benchReconstruct(b, DeconvCottonSchwab, 0)
}

// BenchmarkReconstruct1024Clark uses Clark minor cycles in the major cycles.
func BenchmarkReconstruct1024Clark(b *testing.B) { benchReconstruct(b, DeconvClark, 0) }

// BenchmarkReconstruct256 compares the deconvolvers on the same 174 096
// visibilities imaged at 256² with 2.4″ cells (up to 1000 iterations).
func BenchmarkReconstruct256(b *testing.B) {
	for _, d := range []string{DeconvHogbom, DeconvCottonSchwab, DeconvMultiscale, DeconvMTMFS} {
		b.Run(d, func(b *testing.B) { benchReconstructSize(b, d, 0, 256, 2.4) })
	}
}

// BenchmarkGrid is gridding alone (174 096 visibilities onto a 1280² grid).
func BenchmarkGrid(b *testing.B) {
	vis := benchVis(b)
	c, _ := (&Config{ImageSize: 1024, CellArcsec: 0.6}).withDefaults()
	k, _ := NewKaiserBessel(c.KernelWidth, c.KernelOversample, c.Padding)
	gr, err := newGridder(vis, c, k)
	if err != nil {
		b.Fatal(err)
	}
	grid := make([]complex128, gr.g*gr.g)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(grid)
		gr.grid(vis.Data, grid)
	}
}

// BenchmarkFFT2 is one 1280² complex 2-D FFT (the padded 1024² grid).
func BenchmarkFFT2(b *testing.B) {
	const n = 1280
	a := make([]complex128, n*n)
	for i := range a {
		a[i] = complex(float64(i%7), 0)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := FFT2(a, n, i%2 == 1, 0); err != nil {
			b.Fatal(err)
		}
	}
}
