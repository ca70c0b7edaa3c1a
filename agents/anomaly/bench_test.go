package anomaly

import (
	"context"
	"sync"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

var (
	benchOnce  sync.Once
	benchField *synth.ImageField
	benchPair  *synth.EpochPair
)

// benchData synthesises a 2048² field with 2000 sources and a 2048² epoch
// pair once per benchmark binary.
func benchData(b *testing.B) {
	benchOnce.Do(func() {
		var err error
		benchField, err = synth.NewImage(&synth.ImageConfig{Width: 2048, Height: 2048, Sources: 2000}, 1)
		if err != nil {
			b.Fatal(err)
		}
		benchPair, err = synth.NewEpochPair(&synth.PairConfig{Image: synth.ImageConfig{Width: 2048, Height: 2048, Sources: 2000}, Transients: 50, Disappeared: 20, Variables: 50}, 1)
		if err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkFind2048 is source finding (background/rms maps, islands,
// Gaussian fits) on a 2048² image with 2000 sources.
func BenchmarkFind2048(b *testing.B) {
	benchData(b)
	im := FromSynth(benchField.Image)
	b.ResetTimer()
	var n int
	for b.Loop() {
		cat, err := Find(context.Background(), im, nil)
		if err != nil {
			b.Fatal(err)
		}
		n = len(cat.Components)
	}
	b.ReportMetric(float64(n), "components")
	b.ReportMetric(float64(im.Width*im.Height)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpix/s")
}

// BenchmarkBackgroundRMS2048 is the background and rms maps alone.
func BenchmarkBackgroundRMS2048(b *testing.B) {
	benchData(b)
	im := FromSynth(benchField.Image)
	b.ResetTimer()
	for b.Loop() {
		if _, err := BackgroundRMS(context.Background(), im, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompare2048 is a full two-epoch comparison of 2048² images.
func BenchmarkCompare2048(b *testing.B) {
	benchData(b)
	e1, e2 := FromSynth(benchPair.Epoch1), FromSynth(benchPair.Epoch2)
	b.ResetTimer()
	var n int
	for b.Loop() {
		cmp, err := Compare(context.Background(), e1, e2, nil)
		if err != nil {
			b.Fatal(err)
		}
		n = len(cmp.Anomalies)
	}
	b.ReportMetric(float64(n), "anomalies")
}
