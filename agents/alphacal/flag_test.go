package alphacal

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

func TestAOFlaggerLawTable(t *testing.T) {
	// Normalised thresholds of AOFlagger's code law (research table).
	want := map[int]float64{1: 1, 2: 0.75, 4: 0.5625, 8: 0.4219, 16: 0.3164, 32: 0.2373, 64: 0.1780, 128: 0.1335, 256: 0.1001}
	for m, w := range want {
		if got := AOFlaggerLaw(m, 1); math.Abs(got-w) > 5e-5 {
			t.Errorf("AOFlaggerLaw(%d) = %.5f, want %.4f", m, got, w)
		}
	}
	geo := map[int]float64{1: 1, 2: 0.667, 4: 0.444, 8: 0.296, 16: 0.198, 32: 0.132, 64: 0.088, 128: 0.059, 256: 0.039}
	for m, w := range geo {
		if got := GeometricLaw(m, 1); math.Abs(got-w) > 5e-4 {
			t.Errorf("GeometricLaw(%d) = %.4f, want %.3f", m, got, w)
		}
	}
	if got := AOFlaggerLaw(64, 6); math.Abs(got-1.068) > 1e-3 {
		t.Errorf("chi_64 for chi_1 = 6: %.4f, want 1.068", got)
	}
}

func parseFlags(s string) []bool {
	f := make([]bool, len(s))
	for i, c := range s {
		f[i] = c == 'x'
	}
	return f
}

func showFlags(f []bool) string {
	var b strings.Builder
	for _, v := range f {
		if v {
			b.WriteByte('x')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

func TestSIRVectors(t *testing.T) {
	// AOFlagger's SIR unit-test vectors, applied cumulatively.
	f := parseFlags("     x    ")
	for _, c := range []struct {
		eta  float64
		want string
	}{
		{0, "     x    "}, {0.4, "     x    "}, {0.5, "    xxx   "}, {0.25, "   xxxxx  "},
		{0.16, "   xxxxx  "}, {0.17, "  xxxxxxx "}, {0.6, "xxxxxxxxxx"},
	} {
		if err := SIR1D(f, c.eta); err != nil {
			t.Fatal(err)
		}
		if got := showFlags(f); got != c.want {
			t.Errorf("eta %.2f: %q, want %q", c.eta, got, c.want)
		}
	}
	g := parseFlags("      x   x  x xx xxx    ")
	if err := SIR1D(g, 0.5); err != nil {
		t.Fatal(err)
	}
	if got, want := showFlags(g), "     xxxxxxxxxxxxxxxxxxxx"; got != want {
		t.Errorf("25-sample vector: %q, want %q", got, want)
	}
}

// sirBrute is the definition: y is flagged if some window [i, j) with
// i <= y < j has sum(eta - w) >= 0.
func sirBrute(f []bool, eta float64) []bool {
	out := make([]bool, len(f))
	for y := range f {
		for i := 0; i <= y && !out[y]; i++ {
			for j := y + 1; j <= len(f); j++ {
				s := 0.0
				for k := i; k < j; k++ {
					if f[k] {
						s += eta
					} else {
						s += eta - 1
					}
				}
				if s >= -1e-9 {
					out[y] = true
					break
				}
			}
		}
	}
	return out
}

func TestSIRMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rng.IntN(40)
		f := make([]bool, n)
		for i := range f {
			f[i] = rng.Float64() < 0.3
		}
		eta := []float64{0.1, 0.2, 0.3, 0.45, 0.7}[trial%5]
		want := sirBrute(f, eta)
		got := append([]bool(nil), f...)
		if err := SIR1D(got, eta); err != nil {
			t.Fatal(err)
		}
		if showFlags(got) != showFlags(want) {
			t.Fatalf("eta %.2f on %q: %q, definition gives %q", eta, showFlags(f), showFlags(got), showFlags(want))
		}
	}
	// 2-D: time then frequency.
	T, C := 7, 9
	m := make([]bool, T*C)
	for i := range m {
		m[i] = rng.Float64() < 0.25
	}
	want := append([]bool(nil), m...)
	for c := range C {
		col := make([]bool, T)
		for tt := range T {
			col[tt] = want[tt*C+c]
		}
		col = sirBrute(col, 0.3)
		for tt := range T {
			want[tt*C+c] = col[tt]
		}
	}
	for tt := range T {
		copy(want[tt*C:(tt+1)*C], sirBrute(want[tt*C:(tt+1)*C], 0.2))
	}
	if err := SIR(m, T, C, 0.3, 0.2); err != nil {
		t.Fatal(err)
	}
	if showFlags(m) != showFlags(want) {
		t.Errorf("2-D SIR differs from the definition:\n%q\n%q", showFlags(m), showFlags(want))
	}
}

// sumThresholdBrute re-implements SumThreshold directly from its
// definition, window by window.
func sumThresholdBrute(p Plane, mask []bool, lengths []int, first, scale float64, law ThresholdLaw) {
	T, C := p.Times, p.Channels
	for _, m := range lengths {
		thr := law(m, first) * scale
		for _, alongTime := range []bool{true, false} {
			orig := append([]bool(nil), mask...)
			lines, n := C, T
			if !alongTime {
				lines, n = T, C
			}
			idx := func(l, i int) int {
				if alongTime {
					return i*C + l
				}
				return l*C + i
			}
			if m > n {
				continue
			}
			for l := range lines {
				for s := 0; s+m <= n; s++ {
					sum, cnt := 0.0, 0
					for i := s; i < s+m; i++ {
						if !orig[idx(l, i)] {
							sum += p.Values[idx(l, i)]
							cnt++
						}
					}
					if cnt > 0 && math.Abs(sum/float64(cnt)) > thr {
						for i := s; i < s+m; i++ {
							mask[idx(l, i)] = true
						}
					}
				}
			}
		}
	}
}

func TestSumThresholdMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 20 {
		T, C := 8+rng.IntN(40), 8+rng.IntN(40)
		p := Plane{Times: T, Channels: C, Values: make([]float64, T*C)}
		for i := range p.Values {
			p.Values[i] = rng.NormFloat64()
		}
		// A weak line, a burst and a few spikes.
		for tt := T / 4; tt < T; tt++ {
			p.Values[tt*C+C/3] += 1.2
		}
		for c := range C {
			p.Values[(T/2)*C+c] += 2.5
		}
		p.Values[rng.IntN(T*C)] += 9
		mask := make([]bool, T*C)
		for i := range mask {
			mask[i] = rng.Float64() < 0.02
		}
		want := append([]bool(nil), mask...)
		lengths := []int{1, 2, 4, 8, 16, 32}
		sumThresholdBrute(p, want, lengths, 4, 1, AOFlaggerLaw)
		st, err := SumThreshold(context.Background(), p, mask, &SumThresholdConfig{FirstThreshold: 4, NoiseScale: 1, Lengths: lengths})
		if err != nil {
			t.Fatal(err)
		}
		if showFlags(mask) != showFlags(want) {
			t.Fatalf("trial %d (%dx%d): SumThreshold differs from its definition", trial, T, C)
		}
		if st.Thresholds[0] != 4 || math.Abs(st.Thresholds[3]-4*0.421875) > 1e-12 {
			t.Errorf("thresholds %v", st.Thresholds)
		}
	}
}

func TestSumThresholdPluggableLaw(t *testing.T) {
	// A weak long line that only long windows see: a law that disables
	// every window but M = 1 must miss it, the default must find it.
	T, C := 256, 64
	rng := rand.New(rand.NewPCG(5, 6))
	p := Plane{Times: T, Channels: C, Values: make([]float64, T*C)}
	for i := range p.Values {
		p.Values[i] = rng.NormFloat64()
	}
	truth := make([]bool, T*C)
	for tt := 64; tt < 192; tt++ {
		p.Values[tt*C+20] += 1.5
		truth[tt*C+20] = true
	}
	onlyOne := func(m int, first float64) float64 {
		if m == 1 {
			return first
		}
		return math.Inf(1)
	}
	for _, c := range []struct {
		name string
		law  ThresholdLaw
		lo   float64
		hi   float64
	}{{"aoflagger", AOFlaggerLaw, 0.95, 1}, {"m=1 only", onlyOne, 0, 0.05}} {
		mask := make([]bool, T*C)
		if _, err := SumThreshold(context.Background(), p, mask, &SumThresholdConfig{NoiseScale: 1, Law: c.law}); err != nil {
			t.Fatal(err)
		}
		if r := RecallOn(mask, truth); r < c.lo || r > c.hi {
			t.Errorf("%s law: line recall %.3f, want in [%.2f, %.2f]", c.name, r, c.lo, c.hi)
		}
	}
}

func TestRobustStatistics(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	v := make([]float64, 20000)
	for i := range v {
		v[i] = 3 + 2*rng.NormFloat64()
	}
	// Outliers the robust estimators must ignore.
	for i := 0; i < 400; i++ {
		v[i] = 1e4
	}
	m, s := WinsorizedMeanStd(v, nil)
	if math.Abs(m-3) > 0.1 || math.Abs(s-2)/2 > 0.05 {
		t.Errorf("winsorized mean %.3f std %.3f, want 3 and 2", m, s)
	}
	med, sig := MedianMAD(v, nil)
	if math.Abs(med-3) > 0.1 || math.Abs(sig-2)/2 > 0.05 {
		t.Errorf("median %.3f, 1.4826 MAD %.3f, want 3 and 2", med, sig)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", got)
	}
	mask := make([]bool, len(v))
	for i := range 400 {
		mask[i] = true
	}
	if _, s2 := WinsorizedMeanStd(v, mask); math.Abs(s2-2)/2 > 0.05 {
		t.Errorf("masked winsorized std %.3f", s2)
	}
}

func TestScore(t *testing.T) {
	pred := parseFlags("xxx   x   ")
	truth := parseFlags("xx x      ")
	s, err := Score(pred, truth)
	if err != nil {
		t.Fatal(err)
	}
	// TP 2, FP 2, FN 1, TN 5.
	if s.TP != 2 || s.FP != 2 || s.FN != 1 || s.TN != 5 {
		t.Fatalf("confusion %+v", s)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	if !near(s.Recall, 2.0/3) || !near(s.FPR, 2.0/7) || !near(s.Precision, 0.5) || !near(s.F1, 4.0/7) {
		t.Errorf("scores %+v", s)
	}
	if want := (2.0*5 - 2*1) / math.Sqrt(4*3*7*6); !near(s.MCC, want) {
		t.Errorf("MCC %.6f, want %.6f", s.MCC, want)
	}
	if _, err := Score(pred, truth[:3]); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("mismatched lengths: %v", err)
	}
	if _, err := Score(nil, nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("empty: %v", err)
	}
}

func TestLowPassIgnoresFlags(t *testing.T) {
	T, C := 60, 90
	p := Plane{Times: T, Channels: C, Values: make([]float64, T*C)}
	mask := make([]bool, T*C)
	for tt := range T {
		for c := range C {
			p.Values[tt*C+c] = 2 + math.Sin(float64(c)/40) + 0.01*float64(tt)
		}
	}
	for tt := range T {
		p.Values[tt*C+45] = 1000 // flagged RFI channel
		mask[tt*C+45] = true
	}
	bg, err := LowPass(p, mask, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Away from the edges (where a zeroth-order normalised convolution is
	// biased by the slope) the smooth plane comes back.
	var worst float64
	for tt := 15; tt < T-15; tt++ {
		for c := 20; c < C-20; c++ {
			if i := tt*C + c; !mask[i] {
				worst = max(worst, math.Abs(bg.Values[i]-p.Values[i]))
			}
		}
	}
	if worst > 0.08 {
		t.Errorf("smooth background recovered to %.4f at worst in the interior, want < 0.08", worst)
	}
	// The flagged channel does not leak; unflagged it would.
	clean := Plane{Times: T, Channels: C, Values: append([]float64(nil), p.Values...)}
	for tt := range T {
		clean.Values[tt*C+45] = 2 + math.Sin(45.0/40) + 0.01*float64(tt)
	}
	ref, _ := LowPass(clean, nil, nil)
	leak, _ := LowPass(p, nil, nil)
	var dm, dl float64
	for i := range ref.Values {
		dm = max(dm, math.Abs(bg.Values[i]-ref.Values[i]))
		dl = max(dl, math.Abs(leak.Values[i]-ref.Values[i]))
	}
	if dm > 0.02 || dl < 5 {
		t.Errorf("masked spike changes the background by %.4f (want < 0.02); unmasked by %.1f (want > 5)", dm, dl)
	}
}

func spectrumOf(d *synth.DynamicSpectrum) Spectrum {
	return Spectrum{Times: d.Times, Channels: d.Channels, Data: d.Data}
}

func TestFlagPureNoiseFPR(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		for _, cfg := range []synth.SpectrumConfig{
			{NoiseOnly: true, RFI: &synth.RFIConfig{}},
			{RFI: &synth.RFIConfig{}, BandpassOrder: 7},
		} {
			d, err := synth.NewDynamicSpectrum(&cfg, seed)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Flag(context.Background(), spectrumOf(d), nil)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := Score(r.Mask, d.Truth)
			if s.FPR > 0.01 {
				t.Errorf("seed %d noise-only=%v: false-positive rate %.4f > 1%%", seed, cfg.NoiseOnly, s.FPR)
			}
			if math.Abs(r.Sigma-1) > 0.03 {
				t.Errorf("seed %d: noise sigma estimated %.3f, want 1", seed, r.Sigma)
			}
			m, _ := FlagMAD(context.Background(), spectrumOf(d), 5)
			if ms, _ := Score(m.Mask, d.Truth); ms.FPR > 0.01 {
				t.Errorf("seed %d: MAD false-positive rate %.4f", seed, ms.FPR)
			}
		}
	}
}

func TestFlagRecallPerKind(t *testing.T) {
	cfg := synth.SpectrumConfig{RFI: &synth.RFIConfig{Narrowband: 4, Broadband: 3, Impulsive: 40}}
	hits := map[synth.RFIKind][2]int{}
	var fp, clean int
	for seed := int64(10); seed < 13; seed++ {
		d, err := synth.NewDynamicSpectrum(&cfg, seed)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Flag(context.Background(), spectrumOf(d), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []synth.RFIKind{synth.RFINarrowband, synth.RFIBroadband, synth.RFIImpulsive} {
			h := hits[k]
			for i, v := range d.TruthOf(k) {
				if v {
					h[1]++
					if r.Mask[i] {
						h[0]++
					}
				}
			}
			hits[k] = h
		}
		s, _ := Score(r.Mask, d.Truth)
		fp += s.FP
		clean += s.FP + s.TN
	}
	for k, h := range hits {
		rec := float64(h[0]) / float64(h[1])
		t.Logf("%s recall %.4f (%d samples)", k, rec, h[1])
		if rec < 0.95 {
			t.Errorf("%s recall %.4f < 0.95", k, rec)
		}
	}
	if fpr := float64(fp) / float64(clean); fpr > 0.01 {
		t.Errorf("false-positive rate with RFI %.4f > 1%%", fpr)
	}
}

func TestWeakLineSumThresholdBeatsMAD(t *testing.T) {
	for _, length := range []int{128, 64} {
		cfg := synth.SpectrumConfig{RFI: &synth.RFIConfig{WeakLines: 3, WeakLineLength: length}}
		var st, mad [2]int
		for seed := int64(20); seed < 23; seed++ {
			d, err := synth.NewDynamicSpectrum(&cfg, seed)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Flag(context.Background(), spectrumOf(d), nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := FlagMAD(context.Background(), spectrumOf(d), 5)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range d.Truth {
				if v {
					st[1]++
					mad[1]++
					if r.Mask[i] {
						st[0]++
					}
					if m.Mask[i] {
						mad[0]++
					}
				}
			}
		}
		rs, rm := float64(st[0])/float64(st[1]), float64(mad[0])/float64(mad[1])
		t.Logf("2-sigma line of %d samples: SumThreshold recall %.3f, MAD recall %.3f", length, rs, rm)
		want := 0.95
		if length == 64 {
			want = 0.8
		}
		if rs < want || rm > 0.1 {
			t.Errorf("line of %d: SumThreshold recall %.3f (want >= %.2f), MAD %.3f (want <= 0.1)", length, rs, want, rm)
		}
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	good := Spectrum{Times: 4, Channels: 4, Data: make([]complex128, 16)}
	nan := Spectrum{Times: 4, Channels: 4, Data: make([]complex128, 16)}
	nan.Data[5] = complex(math.NaN(), 0)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"empty", func() error { _, e := Flag(ctx, Spectrum{}, nil); return e }(), "shape"},
		{"nan", func() error { _, e := Flag(ctx, nan, nil); return e }(), "data[t=1, c=1]"},
		{"shape", func() error {
			_, e := Flag(ctx, Spectrum{Times: 3, Channels: 4, Data: make([]complex128, 16)}, nil)
			return e
		}(), "data length"},
		{"iterations", func() error { _, e := Flag(ctx, good, &StrategyConfig{Iterations: -1}); return e }(), "Iterations"},
		{"eta", func() error { _, e := Flag(ctx, good, &StrategyConfig{SIREta: 2}); return e }(), "SIREta"},
		{"mask", func() error { _, e := Flag(ctx, good, &StrategyConfig{InitialMask: make([]bool, 3)}); return e }(), "mask length"},
		{"mad k", func() error { _, e := FlagMAD(ctx, good, 0); return e }(), "k"},
		{"sir eta", SIR1D(make([]bool, 3), -0.1), "eta"},
		{"sumthreshold lengths", func() error {
			_, e := SumThreshold(ctx, Plane{Times: 2, Channels: 2, Values: make([]float64, 4)}, make([]bool, 4), &SumThresholdConfig{Lengths: []int{0}})
			return e
		}(), "Lengths"},
		{"sumthreshold inf", func() error {
			_, e := SumThreshold(ctx, Plane{Times: 1, Channels: 2, Values: []float64{1, math.Inf(1)}}, make([]bool, 2), nil)
			return e
		}(), "must be finite"},
		{"lowpass kernel", func() error {
			_, e := LowPass(Plane{Times: 2, Channels: 2, Values: make([]float64, 4)}, nil, &LowPassConfig{KernelTime: 4})
			return e
		}(), "KernelTime"},
	}
	for _, c := range cases {
		if !errors.Is(c.err, ErrInvalidInput) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want ErrInvalidInput naming %q", c.name, c.err, c.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Flag(cctx, good, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestSmallShapesNoPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, sh := range [][2]int{{1, 1}, {1, 5}, {5, 1}, {2, 2}, {3, 300}, {300, 3}} {
		s := Spectrum{Times: sh[0], Channels: sh[1], Data: make([]complex128, sh[0]*sh[1])}
		for i := range s.Data {
			s.Data[i] = complex(rng.NormFloat64(), rng.NormFloat64())
		}
		r, err := Flag(context.Background(), s, nil)
		if err != nil {
			t.Fatalf("%v: %v", sh, err)
		}
		if len(r.Mask) != len(s.Data) || r.FlaggedFraction > 0.5 {
			t.Errorf("%v: mask %d, flagged %.2f", sh, len(r.Mask), r.FlaggedFraction)
		}
		if _, err := FlagMAD(context.Background(), s, 5); err != nil {
			t.Errorf("%v: MAD: %v", sh, err)
		}
		_, err = Calibrate(s, r, &CalibrationConfig{IntegrationS: 1})
		if sh[1] < 16 && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%v: calibrating %d channels: %v, want an error", sh, sh[1], err)
		}
	}
	// Constant data: nothing to flag, and calibration refuses a zero noise.
	s := Spectrum{Times: 32, Channels: 32, Data: make([]complex128, 1024)}
	r, err := Flag(context.Background(), s, nil)
	if err != nil || r.FlaggedFraction != 0 {
		t.Fatalf("constant data: %v, flagged %v", err, r.FlaggedFraction)
	}
	if _, err := Calibrate(s, r, &CalibrationConfig{IntegrationS: 1}); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "Sigma") {
		t.Errorf("constant data calibration: %v", err)
	}
}
