package synth

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestImageNoiseAndDeterminism(t *testing.T) {
	f, err := NewImage(&ImageConfig{Sources: -1, Sigma: 2e-4}, 11)
	if err != nil {
		t.Fatal(err)
	}
	var s, s2 float64
	for _, v := range f.Image.Pix {
		s += v
		s2 += v * v
	}
	n := float64(len(f.Image.Pix))
	mean, sd := s/n, math.Sqrt(s2/n-(s/n)*(s/n))
	// Correlated noise: ~35k independent beams, so the sample sigma is good
	// to well under 2 %.
	if math.Abs(sd/2e-4-1) > 0.03 || math.Abs(mean) > 0.05*2e-4 {
		t.Errorf("noise mean %.3g sd %.4g, want 0 and 2e-4", mean, sd)
	}
	g, err := NewImage(&ImageConfig{Sources: -1, Sigma: 2e-4}, 11)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.Image.Pix {
		if g.Image.Pix[i] != f.Image.Pix[i] {
			t.Fatalf("pixel %d differs between two runs with the same seed", i)
		}
	}
	h, _ := NewImage(&ImageConfig{Sources: -1, Sigma: 2e-4}, 12)
	if h.Image.Pix[1000] == f.Image.Pix[1000] {
		t.Error("different seeds gave the same pixel")
	}
}

// The noise autocorrelation is the beam, as in an interferometric image:
// pixels d apart correlate as exp(-d²/(2σ²)) for a circular beam of
// width σ.
func TestImageNoiseCorrelation(t *testing.T) {
	f, err := NewImage(&ImageConfig{Sources: -1, Beam: RestoringBeam{MajArcsec: 3, MinArcsec: 3}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	im := f.Image
	var c0, c1 float64
	for y := 0; y < im.Height; y++ {
		for x := 0; x+1 < im.Width; x++ {
			v := im.At(x, y)
			c0 += v * v
			c1 += v * im.At(x+1, y)
		}
	}
	sigma := 3 / imgFWHMPerSigma
	want := math.Exp(-1 / (2 * sigma * sigma))
	if got := c1 / c0; math.Abs(got-want) > 0.02 {
		t.Errorf("lag-1 correlation %.4f, want %.4f", got, want)
	}
}

// Integrated flux = sum of pixels / beam area in pixels, for point and
// extended sources alike.
func TestImageInjectedFlux(t *testing.T) {
	c := ImageConfig{Width: 128, Height: 128, Sources: 1, ExtendedFraction: 1, MinSNR: 100, MaxSNR: 101}
	cc, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []TruthSource{
		{X: 64.3, Y: 60.8, Flux1: 0.01},
		{X: 64.3, Y: 60.8, Flux1: 0.01, IntrinsicMaj: 4, IntrinsicMin: 2, IntrinsicPA: 70},
	} {
		im := &Image{Width: 128, Height: 128, Pix: make([]float64, 128*128)}
		peak := s.Flux1 * cc.peakPerFlux(s)
		cc.render(im, s, peak)
		var sum float64
		for _, v := range im.Pix {
			sum += v
		}
		beamArea := 2 * math.Pi * (3.0 / imgFWHMPerSigma) * (2.2 / imgFWHMPerSigma)
		if got := sum / beamArea; math.Abs(got/s.Flux1-1) > 1e-3 {
			t.Errorf("intrinsic %v\": integrated %.6g Jy, want %.6g", s.IntrinsicMaj, got, s.Flux1)
		}
	}
}

func TestImageConvolveGaussians(t *testing.T) {
	// Circular Gaussians add in quadrature.
	maj, mn, _ := ConvolveGaussians(3, 3, 0, 4, 4, 0)
	if math.Abs(maj-5) > 1e-9 || math.Abs(mn-5) > 1e-9 {
		t.Errorf("3 (*) 4 = %v x %v, want 5 x 5", maj, mn)
	}
	// Aligned ellipses add axis by axis; PA is kept.
	maj, mn, pa := ConvolveGaussians(3, 2, 40, 4, 1, 40)
	if math.Abs(maj-5) > 1e-9 || math.Abs(mn-math.Sqrt(5)) > 1e-9 || math.Abs(pa-40) > 1e-9 {
		t.Errorf("aligned = %v x %v @ %v, want 5 x 2.236 @ 40", maj, mn, pa)
	}
	// Perpendicular: north gets 3² + 2², east-west 1² + 3².
	maj, mn, pa = ConvolveGaussians(3, 1, 0, 3, 2, 90)
	if math.Abs(maj-math.Sqrt(13)) > 1e-9 || math.Abs(mn-math.Sqrt(10)) > 1e-9 || math.Abs(pa-0) > 1e-9 && math.Abs(pa-180) > 1e-9 {
		t.Errorf("perpendicular = %v x %v @ %v, want 3.606 x 3.162 @ 0", maj, mn, pa)
	}
}

func TestImageWCSRoundTrip(t *testing.T) {
	w := WCS{RefRA: 0.001, RefDec: 45, RefX: 256, RefY: 256, CellDeg: 1.0 / 3600}
	for _, p := range [][2]float64{{0, 0}, {511, 511}, {256, 256}, {700, -30}} {
		ra, dec := w.PixToWorld(p[0], p[1])
		x, y := w.WorldToPix(ra, dec)
		if math.Abs(x-p[0]) > 1e-6 || math.Abs(y-p[1]) > 1e-6 || ra < 0 || ra >= 360 {
			t.Errorf("(%v,%v) -> (%v,%v) -> (%v,%v)", p[0], p[1], ra, dec, x, y)
		}
	}
	// Up is north: one pixel up is +1 arcsec of Dec at the reference.
	_, dec := w.PixToWorld(256, 257)
	if math.Abs((dec-45)*3600-1) > 1e-6 {
		t.Errorf("one pixel north = %v arcsec", (dec-45)*3600)
	}
}

func TestImageEpochPairTruth(t *testing.T) {
	p, err := NewEpochPair(&PairConfig{Transients: 6, Disappeared: 4, Variables: 5, Glitches: 2}, 9)
	if err != nil {
		t.Fatal(err)
	}
	count := map[TruthKind]int{}
	for _, s := range p.Sources {
		count[s.Kind]++
		switch s.Kind {
		case KindTransient:
			if s.Peak1 != 0 || s.SNR2 < 5 || s.SNR2 > 50 {
				t.Errorf("transient %+v", s)
			}
		case KindDisappeared:
			if s.Peak2 != 0 || s.SNR1 < 5 || s.SNR1 > 50 {
				t.Errorf("disappeared %+v", s)
			}
		case KindVariable:
			f := s.Flux2 / s.Flux1
			if f < 1 {
				f = 1 / f
			}
			if f < 1.6-1e-9 || f > 2.5+1e-9 || math.Abs(s.Flux2/s.Flux1-s.Factor) > 1e-12 || s.SNR1 < 10 {
				t.Errorf("variable %+v", s)
			}
		case KindSteady:
			if s.Peak1 != s.Peak2 {
				t.Errorf("steady source changed: %+v", s)
			}
		case KindGlitch:
			// A glitch is one pixel: its value stands out from its
			// neighbours by far more than the noise.
			x, y := int(s.X), int(s.Y)
			d := p.Epoch2.At(x, y) - (p.Epoch2.At(x+1, y)+p.Epoch2.At(x-1, y))/2
			if d < 0.8*s.Peak2 {
				t.Errorf("glitch at (%d,%d): excess %.3g, want ~%.3g", x, y, d, s.Peak2)
			}
		}
	}
	want := map[TruthKind]int{KindSteady: 145, KindVariable: 5, KindTransient: 6, KindDisappeared: 4, KindGlitch: 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s entries, want %d", count[k], k, n)
		}
	}
	// The epochs share the grid but not the noise.
	if p.Epoch1.WCS != p.Epoch2.WCS || p.Epoch1.Pix[0] == p.Epoch2.Pix[0] {
		t.Error("epochs should share the WCS and differ in noise")
	}
}

func TestImageConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  ImageConfig
		want string
	}{
		{ImageConfig{Width: 8}, "Width x Height"},
		{ImageConfig{CellArcsec: -1}, "CellArcsec"},
		{ImageConfig{Beam: RestoringBeam{MajArcsec: 1, MinArcsec: 2}}, "Beam"},
		{ImageConfig{CellArcsec: 2}, "Beam.MinArcsec"},
		{ImageConfig{Sigma: math.NaN()}, "Sigma"},
		{ImageConfig{MinSNR: 10, MaxSNR: 5}, "MinSNR..MaxSNR"},
		{ImageConfig{CountSlope: 1}, "CountSlope"},
		{ImageConfig{Dec: 95}, "Dec"},
		{ImageConfig{Width: 64, Height: 64, Sources: 500}, "cannot place"},
	} {
		_, err := NewImage(&c.cfg, 1)
		if !errors.Is(err, ErrImageConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want ErrImageConfig mentioning %q", c.cfg, err, c.want)
		}
	}
	if _, err := NewEpochPair(&PairConfig{Variables: 200}, 1); !errors.Is(err, ErrImageConfig) {
		t.Errorf("200 variables of 150 sources: err = %v", err)
	}
	if _, err := NewEpochPair(&PairConfig{VariableMinFactor: 0.5}, 1); !errors.Is(err, ErrImageConfig) {
		t.Errorf("factor 0.5: err = %v", err)
	}
}
