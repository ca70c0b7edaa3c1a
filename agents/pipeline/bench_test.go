package pipeline_test

import (
	"context"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/pipeline"
)

func benchPipeline(b *testing.B, cfg pipeline.Config) {
	b.ReportAllocs()
	var res *pipeline.Result
	for i := 0; i < b.N; i++ {
		var err error
		c := cfg
		if res, err = pipeline.Run(context.Background(), int64(i+1), &c); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, t := range res.Summary.Timings {
		b.ReportMetric(t.Seconds*1e3, t.Stage+"-ms")
	}
	b.ReportMetric(float64(res.Summary.Visibilities), "vis/epoch")
}

// BenchmarkPipeline256 runs the default pipeline: two epochs of 539 136
// visibilities (27 antennas, 48 × 32), flagged, imaged at 256² and
// compared; the per-stage milliseconds are those of the last run.
func BenchmarkPipeline256(b *testing.B) { benchPipeline(b, pipeline.Config{}) }

// BenchmarkPipeline512 is the same field imaged at 512² with 0.5″ cells.
func BenchmarkPipeline512(b *testing.B) {
	benchPipeline(b, pipeline.Config{ImageSize: 512, CellArcsec: 0.5})
}

// BenchmarkPipelineSmall is the tests' field: 128², 18 antennas.
func BenchmarkPipelineSmall(b *testing.B) {
	benchPipeline(b, pipeline.Config{ImageSize: 128, Antennas: 18})
}
