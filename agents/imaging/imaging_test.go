package imaging

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/fits"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

func TestBesselI0(t *testing.T) {
	// Reference values (Abramowitz & Stegun table 9.8 / mpmath).
	for _, c := range []struct{ x, want float64 }{
		{0, 1}, {1, 1.2660658777520082}, {2.5, 3.2898391440501231}, {5, 27.239871823604442},
		{10, 2815.7166284662544}, {-3, 4.8807925858650249}, {20, 4.355828255955353e7},
		{40, 1.4894774793419899e16}, {100, 1.0737517071310738e42},
	} {
		got := BesselI0(c.x)
		if math.Abs(got/c.want-1) > 1e-12 {
			t.Errorf("I0(%v) = %.17g, want %.17g", c.x, got, c.want)
		}
	}
	if !math.IsInf(BesselI0(800), 1) || !math.IsNaN(BesselI0(math.NaN())) {
		t.Errorf("I0(800) = %v, I0(NaN) = %v", BesselI0(800), BesselI0(math.NaN()))
	}
}

func TestKaiserBesselBeta(t *testing.T) {
	// Beatty et al. 2005: W = 7, alpha = 2 -> beta = pi sqrt(12.25*2.25 - 0.8).
	k, err := NewKaiserBessel(7, 63, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Pi * math.Sqrt(12.25*2.25-0.8); math.Abs(k.Beta-want) > 1e-12 {
		t.Errorf("beta = %v, want %v", k.Beta, want)
	}
	if k.Value(3.6) != 0 || k.Value(0) != BesselI0(k.Beta) {
		t.Errorf("kernel support or centre wrong")
	}
	// The correction is the kernel's transform: positive, peaked at the centre.
	c := k.Correction(64)
	for x := range c {
		if c[x] <= 0 || c[x] > c[32] {
			t.Fatalf("correction[%d] = %v (centre %v)", x, c[x], c[32])
		}
	}
	for _, bad := range [][3]float64{{2, 63, 1}, {7, 0, 1}, {7, 63, 0.5}, {7, 63, math.NaN()}} {
		if _, err := NewKaiserBessel(int(bad[0]), int(bad[1]), bad[2]); !errors.Is(err, ErrConfig) {
			t.Errorf("NewKaiserBessel(%v) err = %v", bad, err)
		}
	}
}

func TestFFT2MatchesDFT(t *testing.T) {
	const n = 12
	rng := rand.New(rand.NewPCG(1, 2))
	a := make([]complex128, n*n)
	for i := range a {
		a[i] = complex(rng.NormFloat64(), rng.NormFloat64())
	}
	for _, inv := range []bool{false, true} {
		got := append([]complex128(nil), a...)
		if err := FFT2(got, n, inv, 2); err != nil {
			t.Fatal(err)
		}
		sign := -1.0
		if inv {
			sign = 1
		}
		for ky := 0; ky < n; ky++ {
			for kx := 0; kx < n; kx++ {
				var s complex128
				for y := 0; y < n; y++ {
					for x := 0; x < n; x++ {
						s += a[y*n+x] * cmplx.Exp(complex(0, sign*2*math.Pi*float64(kx*x+ky*y)/n))
					}
				}
				if cmplx.Abs(s-got[ky*n+kx]) > 1e-9 {
					t.Fatalf("inverse=%v: bin (%d,%d) = %v, DFT %v", inv, kx, ky, got[ky*n+kx], s)
				}
			}
		}
	}
	if err := FFT2(make([]complex128, 10), 3, false, 1); !errors.Is(err, ErrInput) {
		t.Errorf("bad size: %v", err)
	}
}

// TestDirtyImageMatchesDFT checks gridding + FFT + grid correction
// against the direct Fourier sum at every pixel.
func TestDirtyImageMatchesDFT(t *testing.T) {
	v, err := synth.NewVisibilities(&synth.VisConfig{Antennas: 12, DurationH: 0.2, IntegrationS: 120, Channels: 4,
		NoiseSigmaJy: 0.01, Sources: []synth.SkyComponent{{LArcsec: 10.3, MArcsec: -7.7, FluxJy: 1}}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{ImageSize: 64, CellArcsec: 1, Deconvolver: DeconvNone}
	res, err := Reconstruct(context.Background(), toVis(v), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := 64
	nch := len(v.FreqHz)
	worst := 0.0
	for y := 0; y < n; y += 3 {
		for x := 0; x < n; x += 3 {
			l := -float64(x-n/2) * arcsecRad
			m := float64(y-n/2) * arcsecRad
			s, sw := 0.0, 0.0
			for r := range v.U {
				for ch, f := range v.FreqHz {
					u, vv := v.U[r]*f/speedOfLight, v.V[r]*f/speedOfLight
					s += real(v.Data[r*nch+ch] * cmplx.Exp(complex(0, 2*math.Pi*(u*l+vv*m))))
					sw++
				}
			}
			worst = math.Max(worst, math.Abs(s/sw-res.Dirty.At(x, y)))
		}
	}
	t.Logf("max |gridded - DFT| = %.2g Jy/beam", worst)
	if worst > 2e-3 {
		t.Errorf("dirty image differs from the DFT by %.3g (> 2e-3 of a 1 Jy source)", worst)
	}
}

// TestDegridMatchesDFT checks the Cotton–Schwab prediction.
func TestDegridMatchesDFT(t *testing.T) {
	v, err := synth.NewVisibilities(&synth.VisConfig{Antennas: 10, Channels: 3, NoNoise: true, Sources: []synth.SkyComponent{}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := (&Config{ImageSize: 128, CellArcsec: 0.5}).withDefaults()
	k, _ := NewKaiserBessel(c.KernelWidth, c.KernelOversample, c.Padding)
	gr, err := newGridder(toVis(v), c, k)
	if err != nil {
		t.Fatal(err)
	}
	model := make([]float64, 128*128)
	pts := [][3]int{{64, 64, 1}, {40, 90, 2}, {100, 20, -1}}
	for _, p := range pts {
		model[p[1]*128+p[0]] = float64(p[2])
	}
	pred := make([]complex128, len(v.Data))
	gr.degrid(model, pred)
	nch := len(v.FreqHz)
	worst := 0.0
	for r := range v.U {
		for ch, f := range v.FreqHz {
			u, vv := v.U[r]*f/speedOfLight, v.V[r]*f/speedOfLight
			var want complex128
			for _, p := range pts {
				l := -float64(p[0]-64) * 0.5 * arcsecRad
				m := float64(p[1]-64) * 0.5 * arcsecRad
				want += complex(float64(p[2]), 0) * cmplx.Exp(complex(0, -2*math.Pi*(u*l+vv*m)))
			}
			worst = math.Max(worst, cmplx.Abs(want-pred[r*nch+ch]))
		}
	}
	t.Logf("max |degrid - DFT| = %.2g Jy (model total |flux| 4 Jy)", worst)
	if worst > 1e-3 {
		t.Errorf("degridding error %.3g Jy", worst)
	}
}

func TestBeamRoundTrip(t *testing.T) {
	for _, b := range []Beam{{3, 2, 30}, {5, 1.5, -60}, {2.5, 2.5, 0}, {4, 2, 89}} {
		qa, qb, qc := b.quadForm(0.5)
		got, err := beamFromQuad(qa, qb, qc, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.MajorArcsec-b.MajorArcsec) > 1e-9 || math.Abs(got.MinorArcsec-b.MinorArcsec) > 1e-9 ||
			(b.MajorArcsec != b.MinorArcsec && math.Abs(got.PADeg-b.PADeg) > 1e-6) {
			t.Errorf("beam %+v -> %+v", b, got)
		}
	}
	// A Gaussian PSF with a known beam is fitted back exactly.
	b := Beam{MajorArcsec: 4, MinorArcsec: 2.5, PADeg: 35}
	psf := NewImage(64, 0.5)
	qa, qb, qc := b.quadForm(0.5)
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			dx, dy := float64(x-32), float64(y-32)
			psf.Pix[y*64+x] = math.Exp(-(qa*dx*dx + 2*qb*dx*dy + qc*dy*dy))
		}
	}
	got, err := FitBeam(psf)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got.MajorArcsec-4) > 1e-6 || math.Abs(got.MinorArcsec-2.5) > 1e-6 || math.Abs(got.PADeg-35) > 1e-4 {
		t.Errorf("fitted %+v, want %+v", got, b)
	}
	// A coarsely sampled beam (VLASS QL: 1" cells, 2.5" beam).
	coarse := Beam{MajorArcsec: 2.6, MinorArcsec: 2.2, PADeg: -40}
	psf = NewImage(32, 1)
	qa, qb, qc = coarse.quadForm(1)
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			dx, dy := float64(x-16), float64(y-16)
			psf.Pix[y*32+x] = math.Exp(-(qa*dx*dx + 2*qb*dx*dy + qc*dy*dy))
		}
	}
	if got, err = FitBeam(psf); err != nil || math.Abs(got.MajorArcsec-2.6) > 1e-6 || math.Abs(got.MinorArcsec-2.2) > 1e-6 || math.Abs(got.PADeg+40) > 1e-4 {
		t.Errorf("coarse beam fitted %+v (%v), want %+v", got, err, coarse)
	}
	// PA sense: a beam elongated north-south has PA 0, east-west PA 90.
	ns := Beam{MajorArcsec: 4, MinorArcsec: 2}
	qa, _, qc = ns.quadForm(1)
	if !(qa > qc) {
		t.Errorf("PA 0 beam should be narrow in x: qa %v qc %v", qa, qc)
	}
}

func TestWeightingNoise(t *testing.T) {
	// The measured rms of a noise-only dirty image agrees with the
	// weights' prediction for every weighting, and uniform weighting gives
	// a narrower beam and more noise than natural.
	v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 0.5, IntegrationS: 60, Channels: 8, Sources: []synth.SkyComponent{}}, 9)
	if err != nil {
		t.Fatal(err)
	}
	beams := map[string]float64{}
	noise := map[string]float64{}
	for _, w := range []string{"natural", "briggs", "uniform"} {
		res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 128, CellArcsec: 0.6, Weighting: w, Robust: 0, Deconvolver: DeconvNone})
		if err != nil {
			t.Fatal(err)
		}
		rms := math.Sqrt(meanSq(res.Dirty.Pix))
		t.Logf("%s: rms %.4g theory %.4g beam %.2f\"", w, rms, res.TheoreticalNoise, res.Beam.MajorArcsec)
		if math.Abs(rms/res.TheoreticalNoise-1) > 0.1 {
			t.Errorf("%s: rms %.4g vs theoretical %.4g", w, rms, res.TheoreticalNoise)
		}
		beams[w], noise[w] = res.Beam.MajorArcsec, res.TheoreticalNoise
	}
	if !(beams["uniform"] < beams["briggs"] && beams["briggs"] < beams["natural"]) {
		t.Errorf("beam sizes not ordered uniform < briggs < natural: %v", beams)
	}
	if !(noise["uniform"] > noise["briggs"] && noise["briggs"] > noise["natural"]) {
		t.Errorf("noise not ordered uniform > briggs > natural: %v", noise)
	}
}

func meanSq(p []float64) float64 {
	s := 0.0
	for _, v := range p {
		s += v * v
	}
	return s / float64(len(p))
}

func TestBadInput(t *testing.T) {
	good, err := synth.NewVisibilities(&synth.VisConfig{Antennas: 5, Channels: 2}, 1)
	if err != nil {
		t.Fatal(err)
	}
	gv := toVis(good)
	nan := *gv
	nan.Data = append([]complex128(nil), gv.Data...)
	nan.Data[3] = complex(math.NaN(), 0)
	short := *gv
	short.V = gv.V[:2]
	negw := *gv
	negw.Weight = append([]float64(nil), gv.Weight...)
	negw.Weight[0] = -1
	zero := *gv
	zero.Weight = make([]float64, len(gv.Data))
	cases := []struct {
		name string
		vis  *Vis
		cfg  *Config
		want error
		msg  string
	}{
		{"nil", nil, nil, ErrInput, "nil"},
		{"empty", &Vis{}, nil, ErrInput, "len(U) = 0"},
		{"nan", &nan, nil, ErrInput, "Data[3]"},
		{"shapes", &short, nil, ErrInput, "len(V)"},
		{"negative weight", &negw, nil, ErrInput, "Weight[0]"},
		{"all flagged", &zero, nil, ErrInput, "no visibility"},
		{"odd size", gv, &Config{ImageSize: 33}, ErrConfig, "image_size"},
		{"huge size", gv, &Config{ImageSize: 16384}, ErrConfig, "16384"},
		{"cell", gv, &Config{CellArcsec: -1}, ErrConfig, "cell_arcsec"},
		{"gain", gv, &Config{Gain: 2}, ErrConfig, "gain"},
		{"mgain", gv, &Config{MGain: 1}, ErrConfig, "mgain"},
		{"weighting", gv, &Config{Weighting: "super"}, ErrConfig, "super"},
		{"deconvolver", gv, &Config{Deconvolver: "mem"}, ErrConfig, "mem"},
		{"cell too large", gv, &Config{CellArcsec: 60, ImageSize: 32}, ErrInput, "cell_arcsec"},
	}
	for _, c := range cases {
		_, err := Reconstruct(context.Background(), c.vis, c.cfg)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
	}
	if _, _, err := Hogbom(context.Background(), NewImage(8, 1), NewImage(4, 1), NewImage(8, 1), CleanConfig{}); !errors.Is(err, ErrInput) {
		t.Errorf("Hogbom mismatched PSF: %v", err)
	}
	if _, err := Clark(context.Background(), NewImage(8, 1), NewImage(16, 1), NewImage(8, 1), CleanConfig{Threshold: 0}, 3); !errors.Is(err, ErrConfig) {
		t.Errorf("Clark with zero threshold: %v", err)
	}
	if _, err := Clark(context.Background(), NewImage(8, 1), NewImage(12, 1), NewImage(8, 1), CleanConfig{Threshold: 1}, 3); !errors.Is(err, ErrInput) {
		t.Errorf("Clark mismatched PSF: %v", err)
	}
	if _, err := FitBeam(NewImage(16, 1)); !errors.Is(err, ErrInput) {
		t.Errorf("FitBeam of a zero PSF: %v", err)
	}
}

func TestHogbomSinglePoint(t *testing.T) {
	// With a delta PSF each iteration removes gain of the residual: after
	// N iterations (1-g)^N is left, and the model holds the rest.
	n := 32
	psf := NewImage(2*n, 1)
	psf.Pix[n*2*n+n] = 1
	res := NewImage(n, 1)
	res.Pix[10*n+7] = 2
	model := NewImage(n, 1)
	it, peak, err := Hogbom(context.Background(), res, psf, model, CleanConfig{Gain: 0.25, Niter: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := 2 * math.Pow(0.75, 10)
	if it != 10 || math.Abs(peak-want) > 1e-12 || math.Abs(model.Pix[10*n+7]-(2-want)) > 1e-12 {
		t.Errorf("it %d peak %v model %v; want 10, %v, %v", it, peak, model.Pix[10*n+7], want, 2-want)
	}
	// Threshold stops it early: log(0.5/2)/log(0.75) = 4.8 -> 5 iterations.
	res.Pix[10*n+7], model.Pix[10*n+7] = 2, 0
	it, _, _ = Hogbom(context.Background(), res, psf, model, CleanConfig{Gain: 0.25, Niter: 100, Threshold: 0.5})
	if it != 5 {
		t.Errorf("threshold stop after %d iterations, want 5", it)
	}
}

func TestChooseRules(t *testing.T) {
	cases := []struct {
		f    Features
		want string
		rec  string
	}{
		{Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.1, LargestIslandBeams: 1.1, ImageSize: 256}, DeconvHogbom, DeconvHogbom},
		{Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.3, LargestIslandBeams: 1.1, ImageSize: 256}, DeconvCottonSchwab, DeconvCottonSchwab},
		{Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.1, LargestIslandBeams: 6, ImageSize: 256}, DeconvMultiscale, DeconvMultiscale},
		{Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.1, LargestIslandBeams: 6, ImageSize: 2048}, DeconvCottonSchwab, DeconvMultiscale},
		{Features{FractionalBandwidth: 0.67, MaxSidelobe: 0.1, LargestIslandBeams: 1, ImageSize: 256}, DeconvMTMFS, DeconvMTMFS},
		{Features{FractionalBandwidth: 0.67, MaxSidelobe: 0.1, LargestIslandBeams: 1, ImageSize: 2048}, DeconvCottonSchwab, DeconvMTMFS},
		{Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.1, LargestIslandBeams: 1, ImageSize: 4096}, DeconvClark, DeconvClark},
	}
	for _, c := range cases {
		ch := Choose(c.f)
		if ch.Deconvolver != c.want || ch.Recommended != c.rec || ch.Reason == "" {
			t.Errorf("%+v -> %+v, want %s (recommended %s)", c.f, ch, c.want, c.rec)
		}
	}
}

func TestMeasureFeaturesExtended(t *testing.T) {
	mk := func(src synth.SkyComponent) Features {
		v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 1, IntegrationS: 120, Channels: 4, FreqStartHz: 2.9e9, FreqStopHz: 3.1e9,
			NoiseSigmaJy: 0.01, Sources: []synth.SkyComponent{src}}, 2)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 128, CellArcsec: 0.6, Deconvolver: DeconvNone})
		if err != nil {
			t.Fatal(err)
		}
		f, err := MeasureFeatures(res.Dirty, res.PSF, res.Beam, v.FractionalBandwidth())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	point := mk(synth.SkyComponent{LArcsec: 3, MArcsec: 2, FluxJy: 0.05})
	ext := mk(synth.SkyComponent{LArcsec: 3, MArcsec: 2, FluxJy: 0.2, MajorArcsec: 8, MinorArcsec: 5, PADeg: 30})
	t.Logf("point %+v; extended %+v", point, ext)
	if point.LargestIslandBeams > ExtendedIslandBeams || ext.LargestIslandBeams <= ExtendedIslandBeams {
		t.Errorf("island sizes: point %.2f, extended %.2f beams", point.LargestIslandBeams, ext.LargestIslandBeams)
	}
	if Choose(ext).Recommended != "multiscale" || Choose(point).Deconvolver == "" {
		t.Errorf("choices: %+v / %+v", Choose(ext), Choose(point))
	}
	if math.Abs(point.FractionalBandwidth-0.2/3) > 1e-9 {
		t.Errorf("fractional bandwidth %v", point.FractionalBandwidth)
	}
}

func TestAgentRun(t *testing.T) {
	a := NewAgent()
	params, err := a.ValidateParams(json.RawMessage(`{"image_size":128,"cell_arcsec":0.8,"niter":2000}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var last float64
	var notes []string
	out, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS2.1.ql.T10t02.J005000-023000", Params: params, WorkDir: dir, Seed: 7},
		func(p float64, note string) {
			if p < last {
				t.Errorf("progress went back from %v to %v", last, p)
			}
			last = p
			notes = append(notes, note)
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out.Summary)
	if last != 100 || len(notes) < 4 {
		t.Errorf("progress ended at %v after %d reports", last, len(notes))
	}
	var rr RunResult
	if err := json.Unmarshal(out.Result, &rr); err != nil {
		t.Fatal(err)
	}
	m := out.Metrics
	if m["rms_jy"] <= 0 || m["rms_jy"] > 1.5*m["theoretical_noise_jy"] || m["beam_major_arcsec"] < 1.5 || m["beam_major_arcsec"] > 3.5 {
		t.Errorf("metrics: %v", m)
	}
	if len(rr.Truth) == 0 || rr.TruthRecoveredN < len(rr.Truth)-1 || rr.Choice.Reason == "" {
		t.Errorf("recovered %d of %d truth sources; choice %+v", rr.TruthRecoveredN, len(rr.Truth), rr.Choice)
	}
	if len(out.Artifacts) != 5 {
		t.Errorf("artifacts %v", out.Artifacts)
	}
	f, err := fits.ReadFile(filepath.Join(dir, "image.restored.fits"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Width != 128 || math.Abs(f.BMaj*3600-m["beam_major_arcsec"]) > 1e-6 || f.WCS.DeltaX >= 0 || f.BUnit != "Jy/beam" {
		t.Errorf("FITS header: %d, BMAJ %v, CDELT1 %v, %q", f.Width, f.BMaj*3600, f.WCS.DeltaX, f.BUnit)
	}
	if st, err := os.Stat(filepath.Join(dir, "image.restored.png")); err != nil || st.Size() == 0 {
		t.Errorf("png: %v", err)
	}
	// Deterministic: the same input gives the same result.
	out2, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS2.1.ql.T10t02.J005000-023000", Params: params, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out2.Metrics["rms_jy"] != m["rms_jy"] || out2.Metrics["components"] != m["components"] {
		t.Errorf("not deterministic: %v vs %v", out2.Metrics, m)
	}
	// Impossible parameters that pass the descriptor's bounds fail clearly.
	big, _ := a.ValidateParams(json.RawMessage(`{"image_size":16384}`))
	if _, err := a.Run(context.Background(), agents.Input{DatasetID: "x", Params: big}, nil); err == nil || !strings.Contains(err.Error(), "image_size") {
		t.Errorf("image_size 16384: %v", err)
	}
	if _, err := a.Run(context.Background(), agents.Input{Params: params}, nil); err == nil {
		t.Errorf("empty dataset id accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Run(ctx, agents.Input{DatasetID: "x", Params: params}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func TestAutoDeconvolverAndDirtyOnly(t *testing.T) {
	a := NewAgent()
	for _, c := range []struct {
		params string
		want   string
	}{
		{`{"image_size":64,"cell_arcsec":1}`, ""}, // auto: any implemented deconvolver with a reason
		{`{"image_size":64,"cell_arcsec":1,"niter":0}`, DeconvNone},
		{`{"image_size":64,"cell_arcsec":1,"deconvolver":"multiscale"}`, DeconvMultiscale},
		{`{"image_size":64,"cell_arcsec":1,"deconvolver":"clark"}`, DeconvClark},
		{`{"image_size":64,"cell_arcsec":1,"deconvolver":"mtmfs"}`, DeconvMTMFS},
		{`{"image_size":64,"cell_arcsec":1,"deconvolver":"hogbom"}`, DeconvHogbom},
	} {
		p, err := a.ValidateParams(json.RawMessage(c.params))
		if err != nil {
			t.Fatal(err)
		}
		out, err := a.Run(context.Background(), agents.Input{DatasetID: "d1", Params: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var rr RunResult
		if err := json.Unmarshal(out.Result, &rr); err != nil {
			t.Fatal(err)
		}
		if rr.Choice.Reason == "" || (c.want != "" && rr.Choice.Deconvolver != c.want) ||
			(c.want == "" && rr.Choice.Deconvolver != DeconvHogbom && rr.Choice.Deconvolver != DeconvCottonSchwab && rr.Choice.Deconvolver != DeconvMTMFS && rr.Choice.Deconvolver != DeconvMultiscale) {
			t.Errorf("%s: choice %+v, want %q", c.params, rr.Choice, c.want)
		}
		if c.want == DeconvNone && out.Metrics["components"] != 0 {
			t.Errorf("niter 0 cleaned %v components", out.Metrics["components"])
		}
	}
	if fb := FractionalBandwidth([]float64{2.0625e9, 2.1875e9, 3.9375e9}); math.Abs(fb-(1.875e9+0.9375e9)/3e9) > 1e-12 {
		t.Errorf("FractionalBandwidth = %v", fb)
	}
}

func TestParallelMatchesSerial(t *testing.T) {
	v := pointField(t, 21)
	var results [2]*Result
	for i, w := range []int{1, 2} {
		res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 256, CellArcsec: 0.6, Workers: w, Deconvolver: DeconvCottonSchwab})
		if err != nil {
			t.Fatal(err)
		}
		results[i] = res
	}
	a, b := results[0], results[1]
	if a.Iterations != b.Iterations || len(a.Components) != len(b.Components) {
		t.Fatalf("iterations %d vs %d, components %d vs %d", a.Iterations, b.Iterations, len(a.Components), len(b.Components))
	}
	for i := range a.Restored.Pix {
		if d := math.Abs(a.Restored.Pix[i] - b.Restored.Pix[i]); d > 1e-12 {
			t.Fatalf("pixel %d differs by %g between 1 and 2 workers", i, d)
		}
	}
}

func TestExtendedSourceFlux(t *testing.T) {
	// Cotton–Schwab recovers the integrated flux of a Gaussian 3 beams
	// wide to within 10 % (model components within 3 FWHM of it).
	src := synth.SkyComponent{LArcsec: 5, MArcsec: -4, FluxJy: 0.05, MajorArcsec: 7, MinorArcsec: 5, PADeg: 40}
	v, err := synth.NewVisibilities(&synth.VisConfig{DurationH: 1, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05, Sources: []synth.SkyComponent{src}}, 8)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Reconstruct(context.Background(), toVis(v), &Config{ImageSize: 128, CellArcsec: 0.6, Deconvolver: DeconvCottonSchwab, Niter: 20000, NSigma: 2})
	if err != nil {
		t.Fatal(err)
	}
	tx, ty := res.Model.Pixel(src.LArcsec, src.MArcsec)
	sum := 0.0
	for _, c := range res.Components {
		if math.Hypot(float64(c.X)-tx, float64(c.Y)-ty) <= 3*7/0.6 {
			sum += c.Flux
		}
	}
	t.Logf("extended: model flux %.4g of %.4g Jy, %d iterations, %d major cycles, rms/theory %.2f", sum, src.FluxJy, res.Iterations, res.MajorCycles, res.RMS/res.TheoreticalNoise)
	if math.Abs(sum/src.FluxJy-1) > 0.1 {
		t.Errorf("extended flux %.4g, want %.4g ± 10%%", sum, src.FluxJy)
	}
}

func TestReconstructCancelled(t *testing.T) {
	v := pointField(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Reconstruct(ctx, toVis(v), &Config{ImageSize: 64}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestRobustRMS(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1001, 1 << 20} {
		p := make([]float64, n)
		for i := range p {
			p[i] = 2.5*rng.NormFloat64() + 7
		}
		// 1 % outliers move it by about 1 % only.
		for i := 0; i < n/100; i++ {
			p[rng.IntN(n)] = 1e6
		}
		got := RobustRMS(p)
		tol := 0.08
		if n > 1<<18 {
			tol = 0.025
		}
		if math.Abs(got/2.5-1) > tol {
			t.Errorf("n=%d: robust rms %.4f, want 2.5", n, got)
		}
	}
	if RobustRMS(nil) != 0 {
		t.Errorf("empty slice")
	}
}
