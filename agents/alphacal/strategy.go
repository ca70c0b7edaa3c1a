package alphacal

import (
	"context"
	"fmt"
	"math"
)

// StrategyConfig configures the default flagging strategy [Flag] (after
// AOFlagger's generic-minimal.lua). Zero values mean the defaults; a nil
// config means all defaults.
type StrategyConfig struct {
	// BaseThreshold is the final SumThreshold level; default 1.0.
	BaseThreshold float64
	// Iterations is the number of passes, the last at BaseThreshold and
	// the ones before at BaseThreshold × FactorStep^(Iterations−i);
	// default 3 (factors 4, 2, 1).
	Iterations int
	// FactorStep is the threshold factor between passes; default 2.
	FactorStep float64
	// SIREta is the SIR operator's η on both axes; default 0.2. Set NoSIR
	// to skip the operator.
	SIREta float64
	// NoSIR skips the SIR operator.
	NoSIR bool
	// TimestepThreshold is the early passes' timestep threshold
	// ([ThresholdTimesteps]) in sigmas; default 3.5.
	TimestepThreshold float64
	// ChannelThreshold is the early passes' channel threshold
	// ([ThresholdChannels]) in sigmas, times the pass's threshold factor;
	// default 3.0.
	ChannelThreshold float64
	// FinalTimestepThreshold is the timestep threshold after SIR in
	// sigmas; default 4.0.
	FinalTimestepThreshold float64
	// FirstThreshold is SumThreshold's χ₁ in noise scales; default 6.
	FirstThreshold float64
	// Law is SumThreshold's threshold law; default [AOFlaggerLaw].
	Law ThresholdLaw
	// Lengths are SumThreshold's window lengths; default 1…256.
	Lengths []int
	// LowPass configures the background estimate; nil means the defaults.
	LowPass *LowPassConfig
	// InitialMask, when not nil, holds flags to start from (it is copied).
	InitialMask []bool
	// Progress, when not nil, is called after each step with the step
	// number, the total number of steps and a note.
	Progress func(step, total int, note string)
}

func (c *StrategyConfig) withDefaults() (StrategyConfig, error) {
	var o StrategyConfig
	if c != nil {
		o = *c
	}
	def := func(v *float64, d float64, name string, lo, hi float64) error {
		if *v == 0 {
			*v = d
		}
		if !(*v >= lo && *v <= hi) {
			return invalid(name, *v, fmt.Sprintf("must be in [%v, %v]", lo, hi))
		}
		return nil
	}
	if o.Iterations == 0 {
		o.Iterations = 3
	}
	if o.Iterations < 1 || o.Iterations > 20 {
		return o, invalid("Iterations", o.Iterations, "must be in [1, 20]")
	}
	for _, e := range []error{
		def(&o.BaseThreshold, 1, "BaseThreshold", 1e-3, 1e3),
		def(&o.FactorStep, 2, "FactorStep", 1, 100),
		def(&o.SIREta, DefaultSIREta, "SIREta", 0, 1),
		def(&o.TimestepThreshold, 3.5, "TimestepThreshold", 0.1, 1e3),
		def(&o.ChannelThreshold, 3.0, "ChannelThreshold", 0.1, 1e3),
		def(&o.FinalTimestepThreshold, 4.0, "FinalTimestepThreshold", 0.1, 1e3),
		def(&o.FirstThreshold, DefaultFirstThreshold, "FirstThreshold", 1e-3, 1e3),
	} {
		if e != nil {
			return o, e
		}
	}
	if _, err := o.LowPass.withDefaults(); err != nil {
		return o, err
	}
	return o, nil
}

// Step records what one step of a strategy flagged.
type Step struct {
	Name string `json:"name"`
	// Level is the SumThreshold level or the RMS threshold in sigmas.
	Level float64 `json:"level"`
	// NewFlags is the number of samples the step flagged.
	NewFlags int `json:"new_flags"`
}

// FlagResult is the outcome of a flagging strategy.
type FlagResult struct {
	// Mask marks flagged samples (t*Channels + c).
	Mask []bool
	// Residual is the final flagging representation: the amplitude of
	// the complex residual after background subtraction, minus its own
	// smooth level (zero-mean noise away from RFI).
	Residual Plane
	// NoiseScale is the final SumThreshold noise scale (the pure-noise
	// standard deviation of Residual), 0 for the MAD baseline.
	NoiseScale float64
	// Sigma is the noise per real/imaginary component estimated from the
	// unflagged complex residual (1.4826 × MAD).
	Sigma float64
	// FlaggedFraction is the fraction of samples flagged.
	FlaggedFraction float64
	// FinalByLength are the new flags per window length in the final
	// SumThreshold (with FinalLengths).
	FinalByLength []int
	// FinalLengths are the window lengths of FinalByLength.
	FinalLengths []int
	// Steps lists every step in order.
	Steps []Step
}

// resid is the flagging representation with the noise estimates that
// come with it.
type resid struct {
	Plane
	sigma float64 // per-component sigma of the complex residual
}

// residual returns the flagging representation of s under mask and the
// noise scale of that representation for pure noise; the representation's
// unexported sigma field holds the per-component noise sigma.
func residual(s Spectrum, mask []bool, lp LowPassConfig) (resid, float64) {
	n := len(s.Data)
	re, im := make([]float64, n), make([]float64, n)
	complexData := false
	for i, v := range s.Data {
		re[i], im[i] = real(v), imag(v)
		if im[i] != 0 {
			complexData = true
		}
	}
	planes := [][]float64{re}
	if complexData {
		planes = append(planes, im)
	}
	bg := lowPassPlanes(planes, mask, s.Times, s.Channels, lp)
	amp := make([]float64, n)
	parallelFor(n, 8, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			re[i] -= bg[0][i]
			if complexData {
				im[i] -= bg[1][i]
			}
			amp[i] = math.Hypot(re[i], im[i])
		}
	})
	// Robust per-component sigma from the unflagged residual, on a
	// sample of at most ~2^17 samples for speed.
	stride := max(1, n/(1<<17))
	comp := make([]float64, 0, 2*(n/stride+1))
	for i := 0; i < n; i += stride {
		if mask == nil || !mask[i] {
			comp = append(comp, re[i])
			if complexData {
				comp = append(comp, im[i])
			}
		}
	}
	_, sig := MedianMAD(comp, nil)
	if math.IsNaN(sig) {
		sig = 0
	}
	factor := math.Sqrt(2 - math.Pi/2) // std of a Rayleigh amplitude per sigma
	if !complexData {
		factor = math.Sqrt(1 - 2/math.Pi) // half-normal
	}
	abg := lowPassPlanes([][]float64{amp}, mask, s.Times, s.Channels, lp)[0]
	for i := range amp {
		amp[i] -= abg[i]
	}
	return resid{Plane: Plane{Times: s.Times, Channels: s.Channels, Values: amp}, sigma: sig}, factor * sig
}

func countTrue(m []bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// Flag runs the default strategy on s (after AOFlagger's
// generic-minimal): for each early pass with threshold factor f
// (FactorStep^(Iterations−i), i.e. 4 then 2 by default), SumThreshold at
// level f × BaseThreshold, timestep (TimestepThreshold σ) and channel
// (ChannelThreshold × f σ, upward only) thresholding, and a new background
// estimate that excludes the flags; then SumThreshold at BaseThreshold,
// the SIR operator and timestep thresholding at FinalTimestepThreshold σ.
//
// The representation flagged is the amplitude of s minus a Gaussian
// low-pass complex background, minus that amplitude's own low-pass level.
// SumThreshold's noise scale is the standard deviation that representation
// has for pure noise: √(2 − π/2) σ̂ (Rayleigh) for complex data, or
// √(1 − 2/π) σ̂ (half-normal) when every imaginary part is zero, with σ̂ =
// 1.4826 × MAD of the residual's components.
func Flag(ctx context.Context, s Spectrum, cfg *StrategyConfig) (*FlagResult, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	lp, _ := c.LowPass.withDefaults()
	n := len(s.Data)
	mask := make([]bool, n)
	if c.InitialMask != nil {
		if err := checkMask(c.InitialMask, n); err != nil {
			return nil, fmt.Errorf("InitialMask: %w", err)
		}
		copy(mask, c.InitialMask)
	}
	res := &FlagResult{}
	total := 3*(c.Iterations-1) + 3
	step := 0
	record := func(name string, level float64, before int) int {
		after := countTrue(mask)
		res.Steps = append(res.Steps, Step{Name: name, Level: level, NewFlags: after - before})
		step++
		if c.Progress != nil {
			c.Progress(step, total, name)
		}
		return after
	}
	flagged := countTrue(mask)
	for i := 1; i < c.Iterations; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		factor := math.Pow(c.FactorStep, float64(c.Iterations-i))
		x, scale := residual(s, mask, lp)
		level := factor * c.BaseThreshold
		if _, err := SumThreshold(ctx, x.Plane, mask, &SumThresholdConfig{FirstThreshold: c.FirstThreshold, Level: level, Law: c.Law, Lengths: c.Lengths, NoiseScale: scale}); err != nil {
			return nil, err
		}
		flagged = record(fmt.Sprintf("pass %d: sumthreshold", i), level, flagged)
		chMask := append([]bool(nil), mask...)
		if _, err := ThresholdTimesteps(x.Plane, mask, c.TimestepThreshold); err != nil {
			return nil, err
		}
		flagged = record(fmt.Sprintf("pass %d: timesteps", i), c.TimestepThreshold, flagged)
		if _, err := ThresholdChannels(x.Plane, chMask, c.ChannelThreshold*factor, false); err != nil {
			return nil, err
		}
		for j, f := range chMask {
			mask[j] = mask[j] || f
		}
		flagged = record(fmt.Sprintf("pass %d: channels", i), c.ChannelThreshold*factor, flagged)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x, scale := residual(s, mask, lp)
	st, err := SumThreshold(ctx, x.Plane, mask, &SumThresholdConfig{FirstThreshold: c.FirstThreshold, Level: c.BaseThreshold, Law: c.Law, Lengths: c.Lengths, NoiseScale: scale})
	if err != nil {
		return nil, err
	}
	res.NoiseScale, res.FinalByLength, res.FinalLengths = st.NoiseScale, st.NewFlags, st.Lengths
	flagged = record("final: sumthreshold", c.BaseThreshold, flagged)
	if !c.NoSIR {
		if err := SIR(mask, s.Times, s.Channels, c.SIREta, c.SIREta); err != nil {
			return nil, err
		}
	}
	flagged = record("final: sir", c.SIREta, flagged)
	if _, err := ThresholdTimesteps(x.Plane, mask, c.FinalTimestepThreshold); err != nil {
		return nil, err
	}
	record("final: timesteps", c.FinalTimestepThreshold, flagged)
	// Final representation and noise under the final mask.
	fin, _ := residual(s, mask, lp)
	res.Residual, res.Sigma = fin.Plane, fin.sigma
	res.Mask = mask
	res.FlaggedFraction = float64(countTrue(mask)) / float64(n)
	return res, nil
}

// FlagMAD is the baseline flagger: the same background subtraction and
// representation as [Flag], clipped at k × 1.4826 × MAD from the median,
// twice (the second time with the background re-estimated without the
// first flags). k must be positive (5 is typical; 3.5 is aggressive).
func FlagMAD(ctx context.Context, s Spectrum, k float64) (*FlagResult, error) {
	if !(k > 0) || math.IsInf(k, 0) {
		return nil, invalid("k", k, "must be a finite positive number of sigmas")
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	lp, _ := (*LowPassConfig)(nil).withDefaults()
	mask := make([]bool, len(s.Data))
	res := &FlagResult{}
	for pass := 1; pass <= 2; pass++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, _ := residual(s, mask, lp)
		nf, err := MADFlag(x.Plane, mask, k)
		if err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, Step{Name: fmt.Sprintf("pass %d: mad clip", pass), Level: k, NewFlags: nf})
	}
	x, _ := residual(s, mask, lp)
	res.Residual, res.Sigma = x.Plane, x.sigma
	res.Mask = mask
	res.FlaggedFraction = float64(countTrue(mask)) / float64(len(mask))
	return res, nil
}
