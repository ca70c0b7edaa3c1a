package imaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/imaging"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Example images a synthetic VLA B-configuration track with two point
// sources and recovers their positions and fluxes (noise 0.17 mJy/beam).
func Example() {
	vis, err := synth.NewVisibilities(&synth.VisConfig{
		DurationH: 0.5, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.05,
		Sources: []synth.SkyComponent{
			{LArcsec: 20, MArcsec: 10, FluxJy: 0.010},
			{LArcsec: -30, MArcsec: -25, FluxJy: 0.004},
		},
	}, 1)
	if err != nil {
		panic(err)
	}
	res, err := imaging.Reconstruct(context.Background(),
		&imaging.Vis{U: vis.U, V: vis.V, FreqHz: vis.FreqHz, Data: vis.Data, Weight: vis.Weight},
		&imaging.Config{ImageSize: 256, CellArcsec: 0.6, Deconvolver: imaging.DeconvHogbom})
	if err != nil {
		panic(err)
	}
	fmt.Printf("beam %.1f\" x %.1f\", rms/theory %.1f\n", res.Beam.MajorArcsec, res.Beam.MinorArcsec, res.RMS/res.TheoreticalNoise)
	for _, s := range vis.Truth {
		tx, ty := res.Restored.Pixel(s.LArcsec, s.MArcsec)
		x, y, peak := imaging.FitPeak(res.Restored, int(math.Round(tx)), int(math.Round(ty)))
		fmt.Printf("source %d: offset %.1f px, flux %.1f mJy (true %.1f)\n", s.ID, math.Hypot(x-tx, y-ty), peak*1e3, s.FluxJy*1e3)
	}
	// Output:
	// beam 2.3" x 2.3", rms/theory 1.0
	// source 0: offset 0.0 px, flux 10.1 mJy (true 10.0)
	// source 1: offset 0.1 px, flux 3.8 mJy (true 4.0)
}

// ExampleChoose shows the selection rules on VLASS-like features.
func ExampleChoose() {
	c := imaging.Choose(imaging.Features{FractionalBandwidth: 0.67, MaxSidelobe: 0.15, LargestIslandBeams: 1.1, ImageSize: 1024})
	fmt.Println(c.Deconvolver, "/", c.Recommended)
	c = imaging.Choose(imaging.Features{FractionalBandwidth: 0.05, MaxSidelobe: 0.1, LargestIslandBeams: 1, ImageSize: 512})
	fmt.Println(c.Deconvolver, "/", c.Recommended)
	// Output:
	// mtmfs / mtmfs
	// hogbom / hogbom
}

// ExampleNewAgent runs the ImageReconstruction agent on the synthetic
// dataset derived from a VLASS-style dataset id.
func ExampleNewAgent() {
	a := imaging.NewAgent()
	params, err := a.ValidateParams(json.RawMessage(`{"image_size":128,"cell_arcsec":0.8}`))
	if err != nil {
		panic(err)
	}
	out, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS2.1.ql.T10t02.J005000-023000", Params: params, Seed: 7}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Name(), "recovered", out.Metrics["truth_recovered"], "of", out.Metrics["truth_sources"], "sources")
	// Output: image-reconstruction recovered 8 of 8 sources
}
