package synth

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
)

// ErrSpectrumConfig reports an impossible dynamic-spectrum configuration.
// Errors returned by [NewDynamicSpectrum] wrap it.
var ErrSpectrumConfig = errors.New("synth: invalid dynamic-spectrum configuration")

// RFIKind is one kind of injected radio-frequency interference.
type RFIKind int

// The kinds of RFI a [DynamicSpectrum] can hold.
const (
	// RFINarrowband is a persistent transmitter in one channel over a long
	// time range (half the observation or more).
	RFINarrowband RFIKind = iota
	// RFIBroadband is a burst covering every channel for one or two
	// timesteps.
	RFIBroadband
	// RFIImpulsive is a single strong sample (10–50 sigma by default).
	RFIImpulsive
	// RFIWeakLine is a weak (about 2 sigma) line in one channel lasting
	// many samples: invisible to a per-sample clipper, the case
	// SumThreshold was designed for.
	RFIWeakLine
	// NumRFIKinds is the number of RFI kinds.
	NumRFIKinds
)

// String returns the kind's name ("narrowband", "broadband", "impulsive",
// "weak_line").
func (k RFIKind) String() string {
	switch k {
	case RFINarrowband:
		return "narrowband"
	case RFIBroadband:
		return "broadband"
	case RFIImpulsive:
		return "impulsive"
	case RFIWeakLine:
		return "weak_line"
	}
	return fmt.Sprintf("RFIKind(%d)", int(k))
}

// RFIConfig sets how much RFI of each kind is injected. Counts are taken
// literally (0 means none of that kind); zero amplitude ranges and lengths
// mean the documented defaults. Amplitudes are in units of the noise sigma
// per component.
type RFIConfig struct {
	// Narrowband is the number of persistent narrowband channels.
	Narrowband int
	// NarrowbandAmp is the amplitude range; default [3, 10].
	NarrowbandAmp [2]float64
	// Broadband is the number of broadband bursts (each 1 or 2 timesteps).
	Broadband int
	// BroadbandAmp is the amplitude range; default [3, 10].
	BroadbandAmp [2]float64
	// Impulsive is the number of single-sample spikes.
	Impulsive int
	// ImpulsiveAmp is the amplitude range; default [10, 50].
	ImpulsiveAmp [2]float64
	// WeakLines is the number of weak long lines (each in its own channel,
	// distinct from the narrowband channels).
	WeakLines int
	// WeakLineAmp is the weak lines' amplitude; default 2.
	WeakLineAmp float64
	// WeakLineLength is the weak lines' length in timesteps; default 128
	// (capped at the number of timesteps).
	WeakLineLength int
}

// DefaultRFI returns the RFI mix used when SpectrumConfig.RFI is nil: three
// narrowband channels, two broadband bursts, twenty impulses and one weak
// line, at the default amplitudes.
func DefaultRFI() RFIConfig {
	return RFIConfig{Narrowband: 3, Broadband: 2, Impulsive: 20, WeakLines: 1}
}

// SpectrumConfig describes a synthetic dynamic spectrum: complex
// visibilities of one baseline observing a calibrator through a smooth
// bandpass and a slowly drifting gain, with additive complex Gaussian noise
// and injected RFI. Zero values mean the documented defaults; a nil
// *SpectrumConfig means all defaults.
type SpectrumConfig struct {
	// Times is the number of timesteps; default 256.
	Times int
	// Channels is the number of frequency channels; default 256.
	Channels int
	// Sigma is the noise standard deviation per real/imaginary component;
	// default 1.
	Sigma float64
	// IntegrationS is the sample time in seconds; default 0.45 (VLASS).
	IntegrationS float64
	// StartHz is the first channel's frequency; default 2 GHz.
	StartHz float64
	// BandwidthHz is the total bandwidth; default 2 GHz (VLASS 2–4 GHz).
	BandwidthHz float64
	// CalibratorAmp is the calibrator's amplitude per visibility in units
	// of Sigma; default 5. Ignored when NoiseOnly is set.
	CalibratorAmp float64
	// NoiseOnly leaves out the calibrator signal (pure noise plus RFI).
	NoiseOnly bool
	// BandpassOrder is the degree of the complex Legendre series the true
	// bandpass is drawn from, 0–9; default 5 (use 0 for a flat bandpass
	// only together with FlatBandpass, since 0 means the default).
	BandpassOrder int
	// FlatBandpass makes the bandpass constant (order 0).
	FlatBandpass bool
	// BandpassRipple adds a sinusoidal ripple (fraction of the mean
	// bandpass, period 12 channels) that no low-order polynomial fits;
	// default 0.
	BandpassRipple float64
	// GainPhaseRate is the gain phase drift in rad/s; default 0.01.
	GainPhaseRate float64
	// RFI is the RFI mix; nil means DefaultRFI(), &RFIConfig{} means none.
	RFI *RFIConfig
}

func (c *SpectrumConfig) withDefaults() (SpectrumConfig, error) {
	var o SpectrumConfig
	if c != nil {
		o = *c
	}
	bad := func(field string, v any, msg string) (SpectrumConfig, error) {
		return SpectrumConfig{}, fmt.Errorf("%w: %s = %v: %s", ErrSpectrumConfig, field, v, msg)
	}
	if o.Times == 0 {
		o.Times = 256
	}
	if o.Channels == 0 {
		o.Channels = 256
	}
	if o.Times < 4 || o.Times > 1<<14 {
		return bad("Times", o.Times, "must be in [4, 16384]")
	}
	if o.Channels < 4 || o.Channels > 1<<14 {
		return bad("Channels", o.Channels, "must be in [4, 16384]")
	}
	if o.Sigma == 0 {
		o.Sigma = 1
	}
	if !(o.Sigma > 0) || math.IsInf(o.Sigma, 0) {
		return bad("Sigma", o.Sigma, "must be a finite positive number")
	}
	if o.IntegrationS == 0 {
		o.IntegrationS = 0.45
	}
	if !(o.IntegrationS > 0) || math.IsInf(o.IntegrationS, 0) {
		return bad("IntegrationS", o.IntegrationS, "must be a finite positive number")
	}
	if o.StartHz == 0 {
		o.StartHz = 2e9
	}
	if o.BandwidthHz == 0 {
		o.BandwidthHz = 2e9
	}
	if !(o.StartHz > 0) || !(o.BandwidthHz > 0) || math.IsInf(o.StartHz+o.BandwidthHz, 0) {
		return bad("StartHz/BandwidthHz", [2]float64{o.StartHz, o.BandwidthHz}, "must be finite positive numbers")
	}
	if o.CalibratorAmp == 0 {
		o.CalibratorAmp = 5
	}
	if !(o.CalibratorAmp > 0) || math.IsInf(o.CalibratorAmp, 0) {
		return bad("CalibratorAmp", o.CalibratorAmp, "must be a finite positive number")
	}
	if o.BandpassOrder == 0 {
		o.BandpassOrder = 5
	}
	if o.BandpassOrder < 0 || o.BandpassOrder > 9 {
		return bad("BandpassOrder", o.BandpassOrder, "must be in [0, 9]")
	}
	if o.FlatBandpass {
		o.BandpassOrder = 0
	}
	if !(o.BandpassRipple >= 0) || o.BandpassRipple > 0.5 {
		return bad("BandpassRipple", o.BandpassRipple, "must be in [0, 0.5]")
	}
	if o.GainPhaseRate == 0 {
		o.GainPhaseRate = 0.01
	}
	if math.IsNaN(o.GainPhaseRate) || math.Abs(o.GainPhaseRate) > 10 {
		return bad("GainPhaseRate", o.GainPhaseRate, "must be in [-10, 10] rad/s")
	}
	r := DefaultRFI()
	if o.RFI != nil {
		r = *o.RFI
	}
	for _, x := range []struct {
		name string
		n    int
	}{{"RFI.Narrowband", r.Narrowband}, {"RFI.Broadband", r.Broadband}, {"RFI.Impulsive", r.Impulsive}, {"RFI.WeakLines", r.WeakLines}} {
		if x.n < 0 {
			return bad(x.name, x.n, "must be >= 0")
		}
	}
	for _, x := range []struct {
		name string
		r    *[2]float64
		def  [2]float64
	}{{"RFI.NarrowbandAmp", &r.NarrowbandAmp, [2]float64{3, 10}}, {"RFI.BroadbandAmp", &r.BroadbandAmp, [2]float64{3, 10}}, {"RFI.ImpulsiveAmp", &r.ImpulsiveAmp, [2]float64{10, 50}}} {
		if *x.r == ([2]float64{}) {
			*x.r = x.def
		}
		if !(x.r[0] > 0) || !(x.r[1] >= x.r[0]) || math.IsInf(x.r[1], 0) {
			return bad(x.name, *x.r, "must be a finite range 0 < lo <= hi")
		}
	}
	if r.WeakLineAmp == 0 {
		r.WeakLineAmp = 2
	}
	if !(r.WeakLineAmp > 0) || math.IsInf(r.WeakLineAmp, 0) {
		return bad("RFI.WeakLineAmp", r.WeakLineAmp, "must be a finite positive number")
	}
	if r.WeakLineLength == 0 {
		r.WeakLineLength = min(128, o.Times)
	}
	if r.WeakLineLength < 1 || r.WeakLineLength > o.Times {
		return bad("RFI.WeakLineLength", r.WeakLineLength, fmt.Sprintf("must be in [1, Times=%d]", o.Times))
	}
	if r.Narrowband+r.WeakLines > o.Channels/2 {
		return bad("RFI.Narrowband+RFI.WeakLines", r.Narrowband+r.WeakLines, fmt.Sprintf("must be <= Channels/2 = %d", o.Channels/2))
	}
	if 2*r.Broadband > o.Times/2 {
		return bad("RFI.Broadband", r.Broadband, fmt.Sprintf("must be <= Times/4 = %d", o.Times/4))
	}
	if r.Impulsive > o.Times*o.Channels/10 {
		return bad("RFI.Impulsive", r.Impulsive, fmt.Sprintf("must be <= a tenth of the samples (%d)", o.Times*o.Channels/10))
	}
	o.RFI = &r
	return o, nil
}

// RFIInjection describes one injected RFI feature: it covers timesteps
// [TimeStart, TimeEnd) and channels [ChanStart, ChanEnd) with amplitude Amp
// (in units of the noise sigma) and a random phase per sample.
type RFIInjection struct {
	Kind      RFIKind `json:"kind"`
	TimeStart int     `json:"time_start"`
	TimeEnd   int     `json:"time_end"`
	ChanStart int     `json:"chan_start"`
	ChanEnd   int     `json:"chan_end"`
	Amp       float64 `json:"amp_sigma"`
}

// DynamicSpectrum is a time × frequency block of complex visibilities with
// its ground truth. Sample (t, c) is at index t*Channels + c.
type DynamicSpectrum struct {
	// Times and Channels are the dimensions.
	Times, Channels int
	// Data holds the visibilities: calibrator × gain × bandpass + noise +
	// RFI.
	Data []complex128
	// Sigma is the true noise standard deviation per component.
	Sigma float64
	// IntegrationS is the sample time in seconds.
	IntegrationS float64
	// FreqHz is each channel's centre frequency.
	FreqHz []float64
	// Bandpass is the true complex bandpass per channel (mean 1 at order 0)
	// times the calibrator amplitude; zero when NoiseOnly.
	Bandpass []complex128
	// Gain is the true complex gain per timestep.
	Gain []complex128
	// BandpassOrder is the true polynomial degree of the bandpass.
	BandpassOrder int
	// Truth marks the samples that hold RFI of any kind.
	Truth []bool
	// KindMask holds, per sample, bit 1<<kind for every RFI kind present.
	KindMask []uint8
	// Injections lists the injected features.
	Injections []RFIInjection
	// Config is the configuration with defaults applied.
	Config SpectrumConfig
}

// TruthOf returns the truth mask of one RFI kind.
func (d *DynamicSpectrum) TruthOf(k RFIKind) []bool {
	out := make([]bool, len(d.KindMask))
	for i, m := range d.KindMask {
		out[i] = m&(1<<uint(k)) != 0
	}
	return out
}

// Amplitude returns |Data| as a new slice.
func (d *DynamicSpectrum) Amplitude() []float64 {
	out := make([]float64, len(d.Data))
	for i, v := range d.Data {
		out[i] = cmplx.Abs(v)
	}
	return out
}

// legendre evaluates P_0..P_n at x into p.
func rfiLegendre(x float64, p []float64) {
	p[0] = 1
	if len(p) > 1 {
		p[1] = x
	}
	for k := 2; k < len(p); k++ {
		p[k] = (float64(2*k-1)*x*p[k-1] - float64(k-1)*p[k-2]) / float64(k)
	}
}

// NewDynamicSpectrum synthesises a dynamic spectrum from cfg (nil means all
// defaults) and seed. The same cfg and seed always give the same data.
//
// The bandpass is a complex Legendre series of degree BandpassOrder in the
// normalised frequency x ∈ [−1, 1] with constant term 1 and higher terms of
// magnitude 0.04–0.1 and random phase; the gain has amplitude 1 ± 3 % and a
// linear phase drift at GainPhaseRate. RFI adds amplitude × e^{iθ} with a
// random phase θ per sample.
func NewDynamicSpectrum(cfg *SpectrumConfig, seed int64) (*DynamicSpectrum, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7266692d7370656b))
	T, C := c.Times, c.Channels
	d := &DynamicSpectrum{
		Times: T, Channels: C, Sigma: c.Sigma, IntegrationS: c.IntegrationS,
		Data: make([]complex128, T*C), FreqHz: make([]float64, C),
		Bandpass: make([]complex128, C), Gain: make([]complex128, T),
		BandpassOrder: c.BandpassOrder, Truth: make([]bool, T*C), KindMask: make([]uint8, T*C),
		Config: c,
	}
	chw := c.BandwidthHz / float64(C)
	for i := range d.FreqHz {
		d.FreqHz[i] = c.StartHz + (float64(i)+0.5)*chw
	}
	// Bandpass.
	coef := make([]complex128, c.BandpassOrder+1)
	coef[0] = 1
	for k := 1; k < len(coef); k++ {
		coef[k] = cmplx.Rect(0.04+0.06*rng.Float64(), 2*math.Pi*rng.Float64())
	}
	p := make([]float64, len(coef))
	amp := c.CalibratorAmp * c.Sigma
	if c.NoiseOnly {
		amp = 0
	}
	for ch := range C {
		x := -1 + 2*(float64(ch)+0.5)/float64(C)
		rfiLegendre(x, p)
		var b complex128
		for k, a := range coef {
			b += a * complex(p[k], 0)
		}
		if c.BandpassRipple > 0 {
			b *= complex(1+c.BandpassRipple*math.Sin(2*math.Pi*float64(ch)/12), 0)
		}
		d.Bandpass[ch] = b * complex(amp, 0)
	}
	// Gain.
	ph0 := 2 * math.Pi * rng.Float64()
	ap := 2 * math.Pi * rng.Float64()
	for t := range T {
		ts := float64(t) * c.IntegrationS
		a := 1 + 0.03*math.Sin(2*math.Pi*float64(t)/float64(T)+ap)
		d.Gain[t] = cmplx.Rect(a, ph0+c.GainPhaseRate*ts)
	}
	// Signal and noise.
	for t := range T {
		row := d.Data[t*C : (t+1)*C]
		g := d.Gain[t]
		for ch := range row {
			row[ch] = g*d.Bandpass[ch] + complex(c.Sigma*rng.NormFloat64(), c.Sigma*rng.NormFloat64())
		}
	}
	// RFI.
	r := c.RFI
	uni := func(rg [2]float64) float64 { return rg[0] + (rg[1]-rg[0])*rng.Float64() }
	inject := func(in RFIInjection) {
		d.Injections = append(d.Injections, in)
		a := in.Amp * c.Sigma
		for t := in.TimeStart; t < in.TimeEnd; t++ {
			for ch := in.ChanStart; ch < in.ChanEnd; ch++ {
				i := t*C + ch
				d.Data[i] += cmplx.Rect(a, 2*math.Pi*rng.Float64())
				d.Truth[i] = true
				d.KindMask[i] |= 1 << uint(in.Kind)
			}
		}
	}
	// Distinct channels for the narrowband and weak-line features.
	perm := rng.Perm(C)
	next := 0
	for range r.Narrowband {
		ch := perm[next]
		next++
		n := T/2 + rng.IntN(T-T/2+1)
		t0 := rng.IntN(T - n + 1)
		inject(RFIInjection{Kind: RFINarrowband, TimeStart: t0, TimeEnd: t0 + n, ChanStart: ch, ChanEnd: ch + 1, Amp: uni(r.NarrowbandAmp)})
	}
	for range r.WeakLines {
		ch := perm[next]
		next++
		t0 := rng.IntN(T - r.WeakLineLength + 1)
		inject(RFIInjection{Kind: RFIWeakLine, TimeStart: t0, TimeEnd: t0 + r.WeakLineLength, ChanStart: ch, ChanEnd: ch + 1, Amp: r.WeakLineAmp})
	}
	for range r.Broadband {
		n := 1 + rng.IntN(2)
		t0 := rng.IntN(T - n + 1)
		inject(RFIInjection{Kind: RFIBroadband, TimeStart: t0, TimeEnd: t0 + n, ChanStart: 0, ChanEnd: C, Amp: uni(r.BroadbandAmp)})
	}
	for range r.Impulsive {
		t0, ch := rng.IntN(T), rng.IntN(C)
		inject(RFIInjection{Kind: RFIImpulsive, TimeStart: t0, TimeEnd: t0 + 1, ChanStart: ch, ChanEnd: ch + 1, Amp: uni(r.ImpulsiveAmp)})
	}
	return d, nil
}
