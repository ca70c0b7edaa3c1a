package alphacal

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents/synth"
)

func flagAndCalibrate(t *testing.T, cfg synth.SpectrumConfig, seed int64, cc CalibrationConfig) (*synth.DynamicSpectrum, *Calibration) {
	t.Helper()
	d, err := synth.NewDynamicSpectrum(&cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Flag(context.Background(), spectrumOf(d), nil)
	if err != nil {
		t.Fatal(err)
	}
	cc.IntegrationS = d.IntegrationS
	cal, err := Calibrate(spectrumOf(d), r, &cc)
	if err != nil {
		t.Fatal(err)
	}
	return d, cal
}

func TestCalibrateBandpassOrder(t *testing.T) {
	for i, order := range []int{3, 4, 5, 6, 7} {
		_, cal := flagAndCalibrate(t, synth.SpectrumConfig{BandpassOrder: order, CalibratorAmp: 8}, int64(30+i), CalibrationConfig{})
		if cal.Bandpass.BestOrder != order || cal.BandpassOrder != order {
			t.Errorf("true order %d: BIC chose %d (scores %+v)", order, cal.BandpassOrder, cal.Bandpass.Scores)
		}
		if !cal.Bandpass.Smooth || cal.BandpassMode != "polynomial" || math.Abs(cal.Bandpass.ReducedChi2-1) > 0.3 {
			t.Errorf("true order %d: reduced chi2 %.2f, mode %s", order, cal.Bandpass.ReducedChi2, cal.BandpassMode)
		}
	}
	// A requested order is kept when the data do not reject it, and
	// rejected with the reason when they do.
	_, cal := flagAndCalibrate(t, synth.SpectrumConfig{BandpassOrder: 6, CalibratorAmp: 8}, 40, CalibrationConfig{RequestedOrder: 3})
	if cal.BandpassOrder != 6 || !strings.Contains(cal.Decisions[1].Reason, "requested order 3 is rejected") {
		t.Errorf("requested 3 on an order-6 bandpass: chose %d, reason %q", cal.BandpassOrder, cal.Decisions[1].Reason)
	}
	_, cal = flagAndCalibrate(t, synth.SpectrumConfig{BandpassOrder: 6, CalibratorAmp: 8}, 40, CalibrationConfig{RequestedOrder: 6})
	if cal.BandpassOrder != 6 {
		t.Errorf("requested the true order 6: chose %d", cal.BandpassOrder)
	}
	// A ripple no polynomial follows switches to per-channel solutions.
	_, cal = flagAndCalibrate(t, synth.SpectrumConfig{BandpassOrder: 4, BandpassRipple: 0.05}, 41, CalibrationConfig{})
	if cal.Bandpass.Smooth || cal.BandpassMode != "per-channel" {
		t.Errorf("rippled bandpass: reduced chi2 %.2f, mode %s", cal.Bandpass.ReducedChi2, cal.BandpassMode)
	}
}

func TestCalibrateSolutionInterval(t *testing.T) {
	// Fast phase drift: 0.05 rad/s with a 0.5 rad budget allows 10 s.
	_, cal := flagAndCalibrate(t, synth.SpectrumConfig{GainPhaseRate: 0.05}, 50, CalibrationConfig{RequestedIntervalS: 60})
	if math.Abs(cal.Gain.PhaseRate-0.05) > 0.005 {
		t.Errorf("phase rate %.4f, want 0.05", cal.Gain.PhaseRate)
	}
	if math.Abs(cal.SolutionIntervalS-10) > 1 || !strings.Contains(cal.Decisions[3].Reason, "too long") {
		t.Errorf("interval %.2f s (%q), want about 10 s", cal.SolutionIntervalS, cal.Decisions[3].Reason)
	}
	// A requested interval inside the limits is kept.
	_, cal = flagAndCalibrate(t, synth.SpectrumConfig{GainPhaseRate: 0.002}, 51, CalibrationConfig{RequestedIntervalS: 30})
	if math.Abs(cal.SolutionIntervalS-30) > 0.45 {
		t.Errorf("interval %.2f s, want the requested 30 s (limits %.2f-%.2f)", cal.SolutionIntervalS, cal.MinIntervalS, cal.MaxIntervalS)
	}
	// A faint calibrator needs longer intervals for SNR 10.
	_, cal = flagAndCalibrate(t, synth.SpectrumConfig{CalibratorAmp: 0.1, GainPhaseRate: 0.001, RFI: &synth.RFIConfig{}}, 52, CalibrationConfig{RequestedIntervalS: 0.45})
	// SNR per sample ≈ 0.1 × 16 = 1.6, so about (10/1.6)² ≈ 39 samples.
	if cal.MinIntervalS < 10 || cal.MinIntervalS > 30 || cal.SolutionIntervalS < cal.MinIntervalS-1e-9 {
		t.Errorf("faint calibrator: SNR %.2f per sample, min interval %.1f s, chosen %.1f s", cal.Gain.SNRPerSample, cal.MinIntervalS, cal.SolutionIntervalS)
	}
	b, err := json.Marshal(cal)
	if err != nil {
		t.Fatalf("calibration does not encode: %v", err)
	}
	if !strings.Contains(string(b), `"solution_interval_s"`) {
		t.Errorf("JSON lacks the interval: %s", b)
	}
}

func TestCalibrateAggressiveness(t *testing.T) {
	cases := []struct {
		name string
		cfg  synth.SpectrumConfig
		want string
	}{
		{"clean", synth.SpectrumConfig{RFI: &synth.RFIConfig{Impulsive: 3}}, AggressivenessLow},
		{"heavy", synth.SpectrumConfig{RFI: &synth.RFIConfig{Narrowband: 40, Broadband: 8, Impulsive: 50}}, AggressivenessHigh},
		{"weak lines", synth.SpectrumConfig{RFI: &synth.RFIConfig{WeakLines: 2, Impulsive: 10}}, AggressivenessHighSensitivity},
		{"moderate", synth.SpectrumConfig{RFI: &synth.RFIConfig{Narrowband: 3, Impulsive: 20}}, AggressivenessMedium},
	}
	for i, c := range cases {
		_, cal := flagAndCalibrate(t, c.cfg, int64(60+i), CalibrationConfig{})
		if cal.Aggressiveness != c.want {
			t.Errorf("%s: recommended %s, want %s (occupancy %+v)", c.name, cal.Aggressiveness, c.want, cal.Occupancy)
		}
	}
	_, cal := flagAndCalibrate(t, synth.SpectrumConfig{RFI: &synth.RFIConfig{Narrowband: 4, Broadband: 2, Impulsive: 30}}, 70, CalibrationConfig{})
	o := cal.Occupancy
	if o.NarrowbandChannels != 4 || o.BroadbandTimesteps < 2 || o.BroadbandTimesteps > 4 || o.Impulses < 25 {
		t.Errorf("occupancy %+v, want 4 narrowband channels, 2-4 broadband timesteps, ~30 impulses", o)
	}
}

func TestCalibrateErrors(t *testing.T) {
	s := Spectrum{Times: 8, Channels: 32, Data: make([]complex128, 256)}
	for i := range s.Data {
		s.Data[i] = complex(float64(i%7), float64(i%5))
	}
	fr, err := Flag(context.Background(), s, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		fr  *FlagResult
		cfg *CalibrationConfig
	}{
		"IntegrationS":   {fr, &CalibrationConfig{}},
		"RequestedOrder": {fr, &CalibrationConfig{IntegrationS: 1, RequestedOrder: 9}},
		"rfi_strategy":   {fr, &CalibrationConfig{IntegrationS: 1, RequestedAggressiveness: "extreme"}},
		"flags":          {nil, &CalibrationConfig{IntegrationS: 1}},
		"usable channels": {&FlagResult{Mask: func() []bool {
			m := make([]bool, 256)
			for i := range m {
				m[i] = true
			}
			return m
		}(), Sigma: 1}, &CalibrationConfig{IntegrationS: 1}},
	}
	for want, c := range cases {
		_, err := Calibrate(s, c.fr, c.cfg)
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v", want, err)
		}
	}
}
