package imaging

import (
	"context"
	"math"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

// MT-MFS (nterms 2) recovers the spectral index of point sources over
// 2–4 GHz from the synth truth, and the term-0 flux at the band centre.
func TestMTMFSSpectralIndex(t *testing.T) {
	srcs := []synth.SkyComponent{
		{LArcsec: 20, MArcsec: -15, FluxJy: 0.05, SpectralIndex: -0.7},
		{LArcsec: -30, MArcsec: 25, FluxJy: 0.03, SpectralIndex: 0.5},
		{LArcsec: 5, MArcsec: 40, FluxJy: 0.04, SpectralIndex: 0},
	}
	v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 16, NoiseSigmaJy: 0.05, Sources: srcs}, 31)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 256, CellArcsec: 1, Deconvolver: DeconvMTMFS, Niter: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Model1 == nil || math.Abs(res.RefFreqHz-3e9) > 1e6 {
		t.Fatalf("no second Taylor term (ref %v Hz)", res.RefFreqHz)
	}
	alpha, err := res.SpectralIndex(10 * res.RMS)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rms %.3g theory %.3g, %d iterations, %d majors", res.RMS, res.TheoreticalNoise, res.Iterations, res.MajorCycles)
	for _, s := range v.Truth {
		x, y := res.Restored.Pixel(s.LArcsec, s.MArcsec)
		xi, yi := int(math.Round(x)), int(math.Round(y))
		// Model sums in a 5×5 box: term 0 is the flux at 3 GHz, term 1
		// over term 0 the spectral index.
		m0, m1 := 0.0, 0.0
		for dy := -2; dy <= 2; dy++ {
			for dx := -2; dx <= 2; dx++ {
				m0 += res.Model.Pix[(yi+dy)*res.Model.N+xi+dx]
				m1 += res.Model1.Pix[(yi+dy)*res.Model.N+xi+dx]
			}
		}
		a := alpha.Pix[yi*alpha.N+xi]
		t.Logf("source %d: alpha true %.2f, model %.3f, map %.3f; flux %.4f (true %.4f)", s.ID, s.SpectralIndex, m1/m0, a, m0, s.FluxJy)
		if math.Abs(m1/m0-s.SpectralIndex) > 0.1 || math.Abs(a-s.SpectralIndex) > 0.15 {
			t.Errorf("source %d: spectral index %.3f (model) / %.3f (map), want %.2f ± 0.1", s.ID, m1/m0, a, s.SpectralIndex)
		}
		if math.Abs(m0/s.FluxJy-1) > 0.05 {
			t.Errorf("source %d: term-0 flux %.4f, want %.4f ± 5%%", s.ID, m0, s.FluxJy)
		}
	}
	if res.RMS > 1.2*res.TheoreticalNoise {
		t.Errorf("residual rms %.3g > 1.2 × theoretical %.3g", res.RMS, res.TheoreticalNoise)
	}
}
