package alphacal

import (
	"context"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

func benchSpectrum(b *testing.B) (*synth.DynamicSpectrum, Spectrum) {
	b.Helper()
	d, err := synth.NewDynamicSpectrum(&synth.SpectrumConfig{Times: 1024, Channels: 1024,
		RFI: &synth.RFIConfig{Narrowband: 12, Broadband: 8, Impulsive: 200, WeakLines: 4}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	return d, Spectrum{Times: d.Times, Channels: d.Channels, Data: d.Data}
}

// BenchmarkFlag1024 flags a 1024 × 1024 dynamic spectrum with the default
// strategy (3 passes, SumThreshold 1…256 both axes, SIR).
func BenchmarkFlag1024(b *testing.B) {
	d, s := benchSpectrum(b)
	b.ResetTimer()
	var r *FlagResult
	for b.Loop() {
		var err error
		if r, err = Flag(context.Background(), s, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sc, _ := Score(r.Mask, d.Truth)
	b.ReportMetric(sc.Recall, "recall")
	b.ReportMetric(sc.FPR, "fpr")
	b.ReportMetric(float64(len(s.Data))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Msamples/s")
}

// BenchmarkFlagMAD1024 is the baseline on the same data.
func BenchmarkFlagMAD1024(b *testing.B) {
	_, s := benchSpectrum(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := FlagMAD(context.Background(), s, 5); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSumThreshold1024 is one SumThreshold run (9 lengths × 2 axes).
func BenchmarkSumThreshold1024(b *testing.B) {
	_, s := benchSpectrum(b)
	lp, _ := (*LowPassConfig)(nil).withDefaults()
	x, scale := residual(s, make([]bool, len(s.Data)), lp)
	mask := make([]bool, len(s.Data))
	b.ResetTimer()
	for b.Loop() {
		clear(mask)
		if _, err := SumThreshold(context.Background(), x.Plane, mask, &SumThresholdConfig{NoiseScale: scale}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSIR1024 is the SIR operator on a 1024 × 1024 mask.
func BenchmarkSIR1024(b *testing.B) {
	mask := make([]bool, 1024*1024)
	for i := range mask {
		mask[i] = i%97 == 0 || i%1031 < 3
	}
	work := make([]bool, len(mask))
	b.ResetTimer()
	for b.Loop() {
		copy(work, mask)
		if err := SIR(work, 1024, 1024, 0.2, 0.2); err != nil {
			b.Fatal(err)
		}
	}
}
