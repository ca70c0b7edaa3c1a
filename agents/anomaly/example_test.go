package anomaly_test

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Two epochs of a synthetic VLASS-like field: the brightest changes are
// reported first.
func ExampleCompare() {
	pair, err := synth.NewEpochPair(&synth.PairConfig{Transients: 3, Disappeared: 2, Variables: 2, Glitches: 1}, 7)
	if err != nil {
		panic(err)
	}
	cmp, err := anomaly.Compare(context.Background(), anomaly.FromSynth(pair.Epoch1), anomaly.FromSynth(pair.Epoch2), nil)
	if err != nil {
		panic(err)
	}
	for _, a := range cmp.Anomalies {
		fmt.Printf("%-11s %-8s %5.1f sigma  %s\n", a.Type, a.Severity, a.Significance, a.Name)
	}
	fmt.Println(cmp.Anomalies[1].Description)
	// Output:
	// artefact    low       33.3 sigma  J120005.96+200055.9
	// new_source  critical  32.2 sigma  J115952.22+200104.0
	// new_source  critical  23.5 sigma  J115956.33+195908.9
	// variable    high      20.5 sigma  J115954.38+200103.4
	// variable    medium    18.2 sigma  J120010.24+200330.1
	// new_source  high      16.4 sigma  J120001.13+200246.6
	// disappeared high      15.8 sigma  J115947.94+200117.7
	// disappeared high      11.4 sigma  J115951.81+200326.4
	// new source J115952.22+200104.0: 5.26 mJy/beam in epoch 2, 0.0692 ± 0.115 mJy/beam at that position in epoch 1 (Vs 32.2)
}

// The two-epoch variability statistics of the VAST pipeline.
func ExampleVsM() {
	vs, m := anomaly.VsM(2.0e-3, 0.12e-3, 4.1e-3, 0.13e-3)
	fmt.Printf("Vs = %.1f, m = %.2f\n", vs, m)
	// Output:
	// Vs = 11.9, m = 0.69
}
