package alphacal_test

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Flag a synthetic dynamic spectrum with the default strategy and compare
// with the MAD baseline on the weak line SumThreshold was made for.
func ExampleFlag() {
	d, _ := synth.NewDynamicSpectrum(&synth.SpectrumConfig{
		RFI: &synth.RFIConfig{Narrowband: 2, Broadband: 1, Impulsive: 10, WeakLines: 1},
	}, 42)
	s := alphacal.Spectrum{Times: d.Times, Channels: d.Channels, Data: d.Data}
	ctx := context.Background()
	st, _ := alphacal.Flag(ctx, s, nil)
	mad, _ := alphacal.FlagMAD(ctx, s, 5)
	sc, _ := alphacal.Score(st.Mask, d.Truth)
	weak := d.TruthOf(synth.RFIWeakLine)
	fmt.Printf("SumThreshold: recall %.2f, FPR below 1%%: %v\n", sc.Recall, sc.FPR < 0.01)
	fmt.Printf("weak line found: SumThreshold %v, MAD %v\n",
		alphacal.RecallOn(st.Mask, weak) > 0.9, alphacal.RecallOn(mad.Mask, weak) > 0.9)
	// Output:
	// SumThreshold: recall 1.00, FPR below 1%: true
	// weak line found: SumThreshold true, MAD false
}

// The scale-invariant rank operator widens flagged regions in proportion
// to their size.
func ExampleSIR1D() {
	flags := make([]bool, 10)
	flags[5] = true
	_ = alphacal.SIR1D(flags, 0.5)
	for _, f := range flags {
		if f {
			fmt.Print("x")
		} else {
			fmt.Print(".")
		}
	}
	fmt.Println()
	// Output: ....xxx...
}

// Choose the calibration strategy of a flagged spectrum.
func ExampleCalibrate() {
	d, _ := synth.NewDynamicSpectrum(&synth.SpectrumConfig{BandpassOrder: 4, CalibratorAmp: 8, GainPhaseRate: 0.05}, 7)
	s := alphacal.Spectrum{Times: d.Times, Channels: d.Channels, Data: d.Data}
	fr, _ := alphacal.Flag(context.Background(), s, nil)
	cal, _ := alphacal.Calibrate(s, fr, &alphacal.CalibrationConfig{IntegrationS: d.IntegrationS, RequestedIntervalS: 60})
	fmt.Println("bandpass order:", cal.BandpassOrder, cal.BandpassMode)
	fmt.Printf("solution interval: %.0f s\n", cal.SolutionIntervalS)
	// Output:
	// bandpass order: 4 polynomial
	// solution interval: 10 s
}
