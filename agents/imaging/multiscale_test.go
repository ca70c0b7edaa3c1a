package imaging

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

// extendedField is a short VLA B track of one bright extended Gaussian
// (FWHM 10″ × 7″, about 4 beams) and a point source, SNR in the hundreds.
func extendedField(t testing.TB, seed int64) *synth.Visibilities {
	t.Helper()
	cfg := &synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05, Sources: []synth.SkyComponent{
		{LArcsec: 12, MArcsec: -8, FluxJy: 0.2, MajorArcsec: 10, MinorArcsec: 7, PADeg: 30},
		{LArcsec: -40, MArcsec: 35, FluxJy: 0.05},
	}}
	v, err := synth.NewVisibilities(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Multiscale CLEAN recovers the total flux of extended emission (the sum
// of its components against the synth truth) better than Högbom with the
// same iteration budget and stopping rule, and puts most of the extended
// source's flux in the larger scales.
func TestMultiscaleRecoversExtendedFlux(t *testing.T) {
	for _, seed := range []int64{21} {
		v := extendedField(t, seed)
		truth := 0.0
		for _, s := range v.Truth {
			truth += s.FluxJy
		}
		run := func(deconv string) *Result {
			res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 256, CellArcsec: 1, Deconvolver: deconv, Niter: 600})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		flux := func(r *Result) float64 {
			f := 0.0
			for _, c := range r.Components {
				f += c.Flux
			}
			return f
		}
		ms, hb := run(DeconvMultiscale), run(DeconvHogbom)
		errMS, errHB := math.Abs(flux(ms)-truth)/truth, math.Abs(flux(hb)-truth)/truth
		t.Logf("seed %d: truth %.4f Jy; multiscale %.4f (err %.1f%%, %d iters, %d majors, rms %.3g, scales %+v); hogbom %.4f (err %.1f%%, %d iters, rms %.3g)",
			seed, truth, flux(ms), 100*errMS, ms.Iterations, ms.MajorCycles, ms.RMS, ms.Scales, flux(hb), 100*errHB, hb.Iterations, hb.RMS)
		if errMS > 0.06 {
			t.Errorf("seed %d: multiscale model flux %.4f Jy is %.1f%% from the truth %.4f (want <= 6%%)", seed, flux(ms), 100*errMS, truth)
		}
		if !(errMS < 0.75*errHB) {
			t.Errorf("seed %d: multiscale flux error %.1f%% not below 0.75 × Högbom's %.1f%%", seed, 100*errMS, 100*errHB)
		}
		if ms.Deconvolver != DeconvMultiscale || len(ms.Scales) != 3 || ms.Scales[1].FluxJy+ms.Scales[2].FluxJy < 0.1 {
			t.Errorf("seed %d: deconvolver %s, scales %+v: want most of the 0.2 Jy Gaussian at nonzero scales", seed, ms.Deconvolver, ms.Scales)
		}
		if ms.RMS > hb.RMS {
			t.Errorf("seed %d: multiscale residual rms %.3g above Högbom's %.3g", seed, ms.RMS, hb.RMS)
		}
	}
}

func TestMultiscaleBadInput(t *testing.T) {
	im := NewImage(32, 1)
	psf := NewImage(64, 1)
	psf.Pix[32*64+32] = 1
	model := NewImage(32, 1)
	ctx := context.Background()
	for name, cfg := range map[string]MultiscaleConfig{
		"gain":      {Gain: 2, BeamPixels: 2},
		"niter":     {Niter: -1, BeamPixels: 2},
		"threshold": {Threshold: math.NaN(), BeamPixels: 2},
		"bias":      {SmallScaleBias: 1.5, BeamPixels: 2},
		"beam":      {},
		"scale":     {Scales: []float64{0, -3}},
		"scaleNaN":  {Scales: []float64{math.NaN()}},
	} {
		if _, _, _, err := MultiscaleClean(ctx, im, psf, model, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
	if _, _, _, err := MultiscaleClean(ctx, im, NewImage(48, 1), model, MultiscaleConfig{BeamPixels: 2}); !errors.Is(err, ErrInput) {
		t.Errorf("mismatched PSF: %v", err)
	}
	bad := NewImage(32, 1)
	bad.Pix[5] = math.Inf(1)
	if _, _, _, err := MultiscaleClean(ctx, bad, psf, model, MultiscaleConfig{BeamPixels: 2, Niter: 10}); !errors.Is(err, ErrInput) {
		t.Errorf("Inf residual: %v", err)
	}
	// A point source at the centre is cleaned with delta components only
	// when the scale bias is strong.
	im.Pix[16*32+16] = 1
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			dx, dy := float64(x-32), float64(y-32)
			psf.Pix[y*64+x] = math.Exp(-(dx*dx + dy*dy) / (2 * 1.2 * 1.2))
		}
	}
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			dx, dy := float64(x-16), float64(y-16)
			im.Pix[y*32+x] = math.Exp(-(dx*dx + dy*dy) / (2 * 1.2 * 1.2))
		}
	}
	it, peak, st, err := MultiscaleClean(ctx, im, psf, model, MultiscaleConfig{BeamPixels: 2.8, Niter: 500, Threshold: 0.01})
	if err != nil || it == 0 || peak >= 0.01 {
		t.Fatalf("point source: %d iterations, peak %v, %v", it, peak, err)
	}
	total := 0.0
	for _, v := range model.Pix {
		total += v
	}
	if math.Abs(total-1) > 0.02 || st[0].FluxJy < 0.9 {
		t.Errorf("point source model flux %.4f (want 1 ± 0.02), per scale %+v", total, st)
	}
}
