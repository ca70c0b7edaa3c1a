package imaging

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

func toVis(v *synth.Visibilities) *Vis {
	return &Vis{U: v.U, V: v.V, FreqHz: v.FreqHz, Data: v.Data, Weight: v.Weight}
}

// pointField is a short VLA B track with isolated point sources spanning
// SNR 10..300 (relative to the theoretical image noise).
func pointField(t testing.TB, seed int64) *synth.Visibilities {
	t.Helper()
	cfg := &synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05}
	probe, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05, Sources: []synth.SkyComponent{}}, seed)
	if err != nil {
		t.Fatal(err)
	}
	sigma := probe.ImageNoiseJy()
	snrs := []float64{10, 15, 25, 50, 100, 300}
	pos := [][2]float64{{-40, 30}, {35, 40}, {-30, -45}, {45, -25}, {5, -5}, {-10, 50}}
	for i, s := range snrs {
		cfg.Sources = append(cfg.Sources, synth.SkyComponent{LArcsec: pos[i][0] + 0.37*float64(i), MArcsec: pos[i][1] - 0.23*float64(i), FluxJy: s * sigma})
	}
	v, err := synth.NewVisibilities(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPointSourceAccuracy(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"hogbom-natural", Config{ImageSize: 256, CellArcsec: 0.6, Deconvolver: DeconvHogbom, Niter: 5000}},
		{"hogbom-vlassql-1arcsec", Config{ImageSize: 256, CellArcsec: 1, Deconvolver: DeconvHogbom, Niter: 5000, Weighting: "briggs", Robust: 1}},
		{"clark-natural", Config{ImageSize: 256, CellArcsec: 0.6, Deconvolver: DeconvClark, Niter: 5000}},
		{"cottonschwab-briggs", Config{ImageSize: 256, CellArcsec: 0.6, Deconvolver: DeconvCottonSchwab, Weighting: "briggs", Robust: 0.5, Niter: 5000}},
	} {
		for _, seed := range []int64{11, 12, 13} {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				v := pointField(t, seed)
				res, err := Reconstruct(context.Background(), toVis(v), &tc.cfg)
				if err != nil {
					t.Fatal(err)
				}
				sigma := res.TheoreticalNoise
				t.Logf("beam %+v sidelobe %.3f iters %d majors %d rms %.3g theory %.3g ratio %.3f dropped %d",
					res.Beam, res.MaxSidelobe, res.Iterations, res.MajorCycles, res.RMS, sigma, res.RMS/sigma, res.Dropped)
				if res.RMS > 1.2*sigma {
					t.Errorf("residual rms %.4g > 1.2 x theoretical %.4g", res.RMS, sigma)
				}
				rmax := 0.0
				for _, p := range res.Residual.Pix {
					rmax = math.Max(rmax, math.Abs(p))
				}
				t.Logf("max |residual| = %.2f sigma", rmax/sigma)
				if rmax > 5*sigma {
					t.Errorf("residual reaches %.2f sigma (> 5)", rmax/sigma)
				}
				if res.RMS < 0.7*sigma {
					t.Errorf("residual rms %.4g implausibly below theoretical %.4g", res.RMS, sigma)
				}
				for _, s := range v.Truth {
					snr := s.FluxJy / sigma
					tx, ty := res.Restored.Pixel(s.LArcsec, s.MArcsec)
					x, y, peak := FitPeak(res.Restored, int(math.Round(tx)), int(math.Round(ty)))
					dpos := math.Hypot(x-tx, y-ty)
					ferr := math.Abs(peak/s.FluxJy - 1)
					tol := math.Max(0.05, 3/snr)
					t.Logf("SNR %6.1f: position error %.3f px, flux ratio %.4f (tolerance %.3f)", snr, dpos, peak/s.FluxJy, tol)
					if dpos > 1 {
						t.Errorf("source %d (SNR %.0f): position off by %.2f px", s.ID, snr, dpos)
					}
					if ferr > tol {
						t.Errorf("source %d (SNR %.0f): flux %.4g vs %.4g, error %.3f > %.3f", s.ID, snr, peak, s.FluxJy, ferr, tol)
					}
				}
			})
		}
	}
}

func TestNoiseOnlyField(t *testing.T) {
	for _, seed := range []int64{5, 6, 7} {
		v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05, Sources: []synth.SkyComponent{}}, seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{DeconvHogbom, DeconvCottonSchwab} {
			res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 256, CellArcsec: 0.6, Deconvolver: d})
			if err != nil {
				t.Fatal(err)
			}
			sigma := res.TheoreticalNoise
			// Sum components within one beam of each other: no group may reach 5 sigma.
			rad := res.Beam.MajorArcsec / res.Config.CellArcsec
			worst := 0.0
			for _, a := range res.Components {
				sum := 0.0
				for _, b := range res.Components {
					if math.Hypot(float64(a.X-b.X), float64(a.Y-b.Y)) <= rad {
						sum += b.Flux
					}
				}
				worst = math.Max(worst, math.Abs(sum))
			}
			peak := 0.0
			for _, p := range res.Restored.Pix {
				peak = math.Max(peak, math.Abs(p))
			}
			t.Logf("%s: %d components, largest beam-summed %.2f sigma, restored |peak| %.2f sigma", d, len(res.Components), worst/sigma, peak/sigma)
			if worst >= 5*sigma || peak >= 5*sigma {
				t.Errorf("%s: noise-only field produced %.2f sigma components / %.2f sigma peak", d, worst/sigma, peak/sigma)
			}
		}
	}
}
