package synth_test

import (
	"fmt"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

func ExampleNewVisibilities() {
	vis, err := synth.NewVisibilities(&synth.VisConfig{
		DurationH: 0.25, IntegrationS: 30, Channels: 16,
		Sources: []synth.SkyComponent{{LArcsec: 12, MArcsec: -8, FluxJy: 0.01}},
	}, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d antennas, %d rows × %d channels = %d visibilities\n", len(vis.Antennas), vis.Rows(), len(vis.FreqHz), len(vis.Data))
	fmt.Printf("band %.1f–%.1f GHz, fractional bandwidth %.2f\n", vis.FreqHz[0]/1e9, vis.FreqHz[len(vis.FreqHz)-1]/1e9, vis.FractionalBandwidth())
	fmt.Printf("truth: %.0f mJy at l=%.0f\" m=%.0f\"\n", vis.Truth[0].FluxJy*1e3, vis.Truth[0].LArcsec, vis.Truth[0].MArcsec)
	// Output:
	// 27 antennas, 10881 rows × 16 channels = 174096 visibilities
	// band 2.1–3.9 GHz, fractional bandwidth 0.67
	// truth: 10 mJy at l=12" m=-8"
}
