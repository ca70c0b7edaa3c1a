package anomaly

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

// TestFinderQuality scores the finder against the synthetic truth of four
// 512² fields (150 sources each, a quarter of them extended).
func TestFinderQuality(t *testing.T) {
	ctx := context.Background()
	var hit8, n8, det, matched int
	var ratios []float64
	var lowHit, lowN int
	for seed := int64(1); seed <= 4; seed++ {
		f, err := synth.NewImage(&synth.ImageConfig{Sources: 150}, seed)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := Find(ctx, FromSynth(f.Image), nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Evaluate(References(f.Sources, 1), cat.Components, f.Config.Beam.MajArcsec)
		if err != nil {
			t.Fatal(err)
		}
		c8, n := ev.Completeness(8)
		hit8 += int(math.Round(c8 * float64(n)))
		n8 += n
		det += len(ev.Detections)
		matched += len(ev.Pairs)
		ratios = append(ratios, ev.FluxRatios(20)...)
		for i, r := range ev.Truth {
			if r.SNR >= 3 && r.SNR < 4 {
				lowN++
				for _, p := range ev.Pairs {
					if p.A == i {
						lowHit++
					}
				}
			}
		}
	}
	comp := float64(hit8) / float64(n8)
	rel := float64(matched) / float64(det)
	mfr := median(slices.Clone(ratios))
	t.Logf("completeness(SNR>=8) = %.4f (%d/%d), reliability = %.4f (%d/%d), median flux ratio(SNR>=20) = %.4f over %d, completeness(3<=SNR<4) = %d/%d",
		comp, hit8, n8, rel, matched, det, mfr, len(ratios), lowHit, lowN)
	if comp < 0.95 {
		t.Errorf("completeness at SNR >= 8 = %.4f, want >= 0.95", comp)
	}
	if rel < 0.99 {
		t.Errorf("reliability = %.4f, want >= 0.99", rel)
	}
	if math.Abs(mfr-1) > 0.05 {
		t.Errorf("median flux ratio at SNR >= 20 = %.4f, want 1 ± 0.05", mfr)
	}
	if len(ratios) < 50 {
		t.Errorf("only %d sources at SNR >= 20; the test needs more", len(ratios))
	}
	// Shape check: below the 5σ seed most sources must be missed.
	if lowN > 0 && float64(lowHit)/float64(lowN) > 0.5 {
		t.Errorf("completeness at 3 <= SNR < 4 = %d/%d: a 5σ seed should miss most of them", lowHit, lowN)
	}
}

// TestFinderNoiseOnly: a pure-noise field must give (almost) nothing at 5σ.
// The expected number of 5σ peaks (Euler characteristic) of a Gaussian
// field whose autocorrelation is the 3"x2.2" beam, over 512² 1" pixels, is
// A·u·exp(-u²/2)/((2π)^1.5·σmaj·σmin) ≈ 0.26.
func TestFinderNoiseOnly(t *testing.T) {
	total := 0
	for seed := int64(1); seed <= 3; seed++ {
		f, err := synth.NewImage(&synth.ImageConfig{Sources: -1}, seed)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := Find(context.Background(), FromSynth(f.Image), nil)
		if err != nil {
			t.Fatal(err)
		}
		total += len(cat.Components)
		if r := cat.MedianRMS / f.Config.Sigma; math.Abs(r-1) > 0.05 {
			t.Errorf("seed %d: median rms / true sigma = %.4f, want 1 ± 0.05", seed, r)
		}
	}
	if total > 1 {
		t.Errorf("%d detections on three noise-only fields, want <= 1", total)
	}
}

// TestBackgroundRMSMaps checks the maps against a known background slope
// and a noise level rising by 60 % towards the corners.
func TestBackgroundRMSMaps(t *testing.T) {
	cfg := &synth.ImageConfig{RMSGradient: 0.6, Background: 2e-4, BackgroundSlope: 1e-6, Sources: 100}
	f, err := synth.NewImage(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	m, err := BackgroundRMS(context.Background(), FromSynth(f.Image), &BackgroundConfig{Box: 64})
	if err != nil {
		t.Fatal(err)
	}
	var relErr, bkgErr []float64
	for y := 16; y < m.Height; y += 32 {
		for x := 16; x < m.Width; x += 32 {
			s := f.Config.SigmaAt(float64(x), float64(y))
			relErr = append(relErr, math.Abs(m.RMS[y*m.Width+x]/s-1))
			bkgErr = append(bkgErr, math.Abs(m.Background[y*m.Width+x]-f.Config.BackgroundAt(float64(x), float64(y)))/s)
		}
	}
	mr, mb := median(relErr), median(bkgErr)
	t.Logf("median |rms/true - 1| = %.4f, median |bkg - true|/sigma = %.4f", mr, mb)
	if mr > 0.06 {
		t.Errorf("rms map median relative error = %.4f, want <= 0.06", mr)
	}
	if mb > 0.15 {
		t.Errorf("background map median error = %.4f sigma, want <= 0.15", mb)
	}
}

// TestFitRecoversGaussian fits a noiseless elliptical Gaussian whose
// parameters are known.
func TestFitRecoversGaussian(t *testing.T) {
	truth := gauss{A: 3, X: 20.3, Y: 18.7, Sa: 2.5, Sb: 1.4, Th: 1.1}
	var d fitData
	for y := 5; y < 35; y++ {
		for x := 5; x < 35; x++ {
			d.x = append(d.x, float64(x))
			d.y = append(d.y, float64(y))
			d.v = append(d.v, evalGauss(truth, float64(x), float64(y)))
			d.wt = append(d.wt, 1)
		}
	}
	init := []gauss{{A: 2, X: 20, Y: 19, Sa: 1.8, Sb: 1.8, Th: 0.3}}
	fit, _, ok := lmFit(d, init, false, 3)
	if !ok {
		t.Fatal("fit did not converge")
	}
	g := normalise(fit[0])
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"A", g.A, 3}, {"X", g.X, 20.3}, {"Y", g.Y, 18.7}, {"Sa", g.Sa, 2.5}, {"Sb", g.Sb, 1.4}, {"Th", g.Th, 1.1}} {
		if math.Abs(c.got-c.want) > 1e-5 {
			t.Errorf("%s = %.8f, want %.8f", c.name, c.got, c.want)
		}
	}
}

// TestCondonPointSource: for a point source in beam-correlated noise the
// amplitude error is the rms and the position error is
// θ/(√(8 ln 2)·SNR) (Condon 1997, eq. 21 with θ = θN).
func TestCondonPointSource(t *testing.T) {
	theta := 3.0
	g := gauss{A: 20, Sa: theta / fwhm, Sb: theta / fwhm}
	eA, eX, eY, _, _, _ := condonErrors(g, 1, theta, theta)
	if math.Abs(eA-1) > 1e-12 {
		t.Errorf("amplitude error = %v, want 1 (the rms)", eA)
	}
	want := theta / fwhm / 20
	if math.Abs(eX-want) > 1e-12 || math.Abs(eY-want) > 1e-12 {
		t.Errorf("position errors = %v, %v, want %v", eX, eY, want)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	good := func() *Image {
		f, err := synth.NewImage(&synth.ImageConfig{Width: 64, Height: 64, Sources: 2}, 1)
		if err != nil {
			t.Fatal(err)
		}
		im := FromSynth(f.Image)
		im.Pix = slices.Clone(im.Pix)
		return im
	}
	nan := good()
	nan.Pix[5*64+7] = math.NaN()
	short := good()
	short.Pix = short.Pix[:100]
	beam := good()
	beam.Beam.MajArcsec = 0
	other := good()
	other.Width, other.Height = 32, 128
	cases := []struct {
		name string
		run  func() error
		want error
		msg  string
	}{
		{"nil image", func() error { _, err := Find(ctx, nil, nil); return err }, ErrBadImage, "nil"},
		{"empty", func() error { _, err := Find(ctx, &Image{}, nil); return err }, ErrBadImage, "0x0"},
		{"NaN pixel", func() error { _, err := Find(ctx, nan, nil); return err }, ErrBadImage, "pixel (7, 5) = NaN"},
		{"pixel count", func() error { _, err := Find(ctx, short, nil); return err }, ErrBadImage, "100 pixels"},
		{"beam", func() error { _, err := Find(ctx, beam, nil); return err }, ErrBadImage, "beam"},
		{"flood above seed", func() error { _, err := Find(ctx, good(), &FinderConfig{SeedSigma: 5, FloodSigma: 6}); return err }, ErrBadConfig, "FloodSigma = 6"},
		{"tiny box", func() error {
			_, err := Find(ctx, good(), &FinderConfig{Background: BackgroundConfig{Box: 2}})
			return err
		}, ErrBadConfig, "Box = 2"},
		{"shape mismatch", func() error { _, err := Compare(ctx, good(), other, nil); return err }, ErrMismatch, "64x64"},
		{"epoch NaN", func() error { _, err := Compare(ctx, good(), nan, nil); return err }, ErrBadImage, "epoch 2"},
		{"constant image", func() error {
			im := good()
			clear(im.Pix)
			_, err := Find(ctx, im, nil)
			return err
		}, ErrBadImage, "zero robust rms"},
		{"match radius", func() error { _, err := Match(nil, nil, 0); return err }, ErrBadConfig, "radius"},
		{"maps mismatch", func() error {
			_, err := FindWithMaps(ctx, good(), &Maps{Width: 32, Height: 32, RMS: make([]float64, 1024), Background: make([]float64, 1024)}, nil)
			return err
		}, ErrMismatch, "64x64"},
		{"zero rms map", func() error {
			_, err := FindWithMaps(ctx, good(), &Maps{Width: 64, Height: 64, RMS: make([]float64, 4096), Background: make([]float64, 4096)}, nil)
			return err
		}, ErrBadImage, "rms map at pixel (0, 0) = 0"},
		{"bad diff config", func() error { _, err := Compare(ctx, good(), good(), &DiffConfig{MinM: 3}); return err }, ErrBadConfig, "MinM = 3"},
	}
	for _, c := range cases {
		err := c.run()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %q, want it to mention %q", c.name, err, c.msg)
		}
	}
	// A beam mismatch between epochs is refused too.
	a, b := good(), good()
	b.Beam.MajArcsec *= 1.5
	if _, err := Compare(ctx, a, b, nil); !errors.Is(err, ErrMismatch) {
		t.Errorf("beam mismatch: err = %v, want ErrMismatch", err)
	}
}

func TestWCSRoundTrip(t *testing.T) {
	w := WCS{RefRA: 359.99, RefDec: -35, RefX: 100, RefY: 120, CellDeg: 1.0 / 3600}
	for _, p := range [][2]float64{{0, 0}, {100, 120}, {250.5, 3.25}, {1000, -400}} {
		ra, dec := w.PixToWorld(p[0], p[1])
		x, y := w.WorldToPix(ra, dec)
		if math.Abs(x-p[0]) > 1e-6 || math.Abs(y-p[1]) > 1e-6 {
			t.Errorf("(%v, %v) -> (%v, %v) -> (%v, %v)", p[0], p[1], ra, dec, x, y)
		}
	}
	// One pixel east (towards -x) is +1 arcsec of sky: ΔRA·cos(Dec).
	ra, dec := w.PixToWorld(99, 120)
	if s := SeparationArcsec(Coord{359.99, -35}, Coord{ra, dec}); math.Abs(s-1) > 1e-6 {
		t.Errorf("one pixel = %v arcsec, want 1", s)
	}
	if ra < 359.99 && ra > 1 {
		t.Errorf("moving east decreased RA to %v", ra)
	}
}

func TestMatch(t *testing.T) {
	a := []Coord{{10, 10}, {10, 10.001}, {20, 0}}
	b := []Coord{{10, 10.0009}, {10.0001, 10}, {30, 0}}
	pairs, err := Match(a, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	// a0-b1 is 0.355" apart, a1-b0 is 0.36", so both pair; a2 and b2 do not.
	want := []Pair{{A: 0, B: 1}, {A: 1, B: 0}}
	if len(pairs) != len(want) {
		t.Fatalf("pairs = %+v, want %+v", pairs, want)
	}
	for i := range want {
		if pairs[i].A != want[i].A || pairs[i].B != want[i].B {
			t.Errorf("pair %d = %+v, want %+v", i, pairs[i], want[i])
		}
	}
	if s := pairs[0].SepArcsec; math.Abs(s-0.0001*math.Cos(10*math.Pi/180)*3600) > 1e-6 {
		t.Errorf("separation = %v", s)
	}
}

func TestVsMAndName(t *testing.T) {
	vs, m := VsM(1.0, 0.1, 2.0, 0.1)
	if math.Abs(vs-1/math.Sqrt(0.02)) > 1e-12 || math.Abs(m-2.0/3) > 1e-12 {
		t.Errorf("VsM = %v, %v; want 7.0711, 0.6667", vs, m)
	}
	if got := IAUName(180, 20); got != "J120000.00+200000.0" {
		t.Errorf("IAUName(180, 20) = %q", got)
	}
	if got := IAUName(15.5, -1.25); got != "J010200.00-011500.0" {
		t.Errorf("IAUName(15.5, -1.25) = %q", got)
	}
}

// TestFitShapesAndErrors checks the fitted sizes and position angles of
// bright extended sources against the beam-convolved truth, and that the
// Condon errors describe the actual scatter of positions and peaks.
func TestFitShapesAndErrors(t *testing.T) {
	ctx := context.Background()
	var majRel, deconv, paErr, zx, zy, zp []float64
	for seed := int64(1); seed <= 4; seed++ {
		f, err := synth.NewImage(&synth.ImageConfig{Sources: 150, ExtendedFraction: 0.5}, seed)
		if err != nil {
			t.Fatal(err)
		}
		cat, err := Find(ctx, FromSynth(f.Image), nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := Evaluate(References(f.Sources, 1), cat.Components, f.Config.Beam.MajArcsec)
		if err != nil {
			t.Fatal(err)
		}
		b := f.Config.Beam
		for _, p := range ev.Pairs {
			s := f.Sources[p.A]
			k := cat.Components[p.B]
			if s.SNR1 >= 10 && k.Fit == FitGaussian {
				x, y := f.Image.WCS.WorldToPix(s.RA, s.Dec)
				zx = append(zx, (k.X-x)/k.ErrX)
				zy = append(zy, (k.Y-y)/k.ErrY)
				zp = append(zp, (k.Peak-s.Peak1)/k.ErrPeak)
			}
			if s.SNR1 < 50 || s.IntrinsicMaj == 0 {
				continue
			}
			maj, mn, pa := synth.ConvolveGaussians(b.MajArcsec, b.MinArcsec, b.PADeg, s.IntrinsicMaj, s.IntrinsicMin, s.IntrinsicPA)
			majRel = append(majRel, k.MajArcsec/maj-1)
			deconv = append(deconv, k.DeconvMajArcsec/s.IntrinsicMaj-1)
			if maj/mn > 1.3 {
				d := math.Mod(math.Abs(k.PADeg-pa), 180)
				paErr = append(paErr, math.Min(d, 180-d))
			}
		}
	}
	rms := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x * x
		}
		return math.Sqrt(s / float64(len(v)))
	}
	abs := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = math.Abs(x)
		}
		return out
	}
	mMaj, mPA := median(abs(majRel)), median(slices.Clone(paErr))
	t.Logf("bright extended: median |maj/true-1| = %.4f over %d, median |PA error| = %.2f deg over %d; normalised residual rms x %.2f y %.2f peak %.2f over %d",
		mMaj, len(majRel), mPA, len(paErr), rms(zx), rms(zy), rms(zp), len(zx))
	if len(majRel) < 10 || mMaj > 0.03 {
		t.Errorf("fitted major axes off by a median %.4f over %d sources, want <= 3%% over >= 10", mMaj, len(majRel))
	}
	if md := median(abs(deconv)); md > 0.1 {
		t.Errorf("deconvolved major axes off by a median %.4f, want <= 10%%", md)
	} else {
		t.Logf("deconvolved major axis: median |maj/intrinsic-1| = %.4f", md)
	}
	if len(paErr) < 5 || mPA > 5 {
		t.Errorf("position angles off by a median %.2f deg over %d sources, want <= 5", mPA, len(paErr))
	}
	for name, v := range map[string][]float64{"x": zx, "y": zy, "peak": zp} {
		if r := rms(v); r < 0.6 || r > 1.6 {
			t.Errorf("%s residuals / Condon errors have rms %.2f, want about 1 (0.6..1.6)", name, r)
		}
	}
}

func TestDeconvolve(t *testing.T) {
	// Circular: quadrature subtraction, 5 (-) 3 = 4.
	maj, mn, _, ok := deconvolve(5, 5, 0, 3, 3, 0)
	if !ok || math.Abs(maj-4) > 1e-9 || math.Abs(mn-4) > 1e-9 {
		t.Errorf("5 (-) 3 = %v x %v (%v), want 4 x 4", maj, mn, ok)
	}
	// Aligned ellipse at PA 40°: per-axis subtraction, PA kept.
	maj, mn, pa, ok := deconvolve(5, math.Sqrt(13), 40*math.Pi/180, 3, 2, 40*math.Pi/180)
	if !ok || math.Abs(maj-4) > 1e-9 || math.Abs(mn-3) > 1e-9 || math.Abs(pa*180/math.Pi-40) > 1e-6 {
		t.Errorf("aligned = %v x %v @ %v, want 4 x 3 @ 40", maj, mn, pa*180/math.Pi)
	}
	if _, _, _, ok := deconvolve(2.9, 2.1, 0, 3, 2.2, 0); ok {
		t.Error("a component smaller than the beam deconvolved")
	}
}

// A flood threshold near the noise percolates into huge islands; they are
// reported unfitted rather than fitted at great cost.
func TestHugeIslandsAreBounded(t *testing.T) {
	f, err := synth.NewImage(&synth.ImageConfig{Width: 256, Height: 256, Sources: 20}, 3)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := Find(context.Background(), FromSynth(f.Image), &FinderConfig{SeedSigma: 3, FloodSigma: 0.01, MaxIslandPixels: 5000})
	if err != nil {
		t.Fatal(err)
	}
	big := 0
	for _, isl := range cat.Islands {
		if len(isl.Pixels) > 5000 {
			big++
			for _, k := range cat.Components {
				if k.Island == isl.ID && k.Fit != FitPeak {
					t.Errorf("component %d of a %d-pixel island was fitted (%s)", k.ID, len(isl.Pixels), k.Fit)
				}
			}
		}
	}
	if big == 0 {
		t.Error("no island above 5000 pixels: the test does not exercise the bound")
	}
}
