package alphacal

import (
	"encoding/json"
	"fmt"
	"math"
	"math/cmplx"
	"strings"
)

// Aggressiveness levels of the flagging strategy (the original platform's
// rfi_strategy values).
const (
	// AggressivenessLow raises the thresholds 1.5× and halves SIR's η: for
	// clean data, keeping every good sample.
	AggressivenessLow = "low"
	// AggressivenessMedium is AOFlagger's generic strategy unchanged.
	AggressivenessMedium = "medium"
	// AggressivenessHigh lowers the thresholds to 0.8× and raises η 1.5×:
	// for RFI-rich data, where the wings of strong RFI must go too.
	AggressivenessHigh = "high"
	// AggressivenessHighSensitivity lowers the thresholds to 0.7×: for weak,
	// long-lasting RFI that would otherwise leak into deep images.
	AggressivenessHighSensitivity = "high_sensitivity"
)

// AggressivenessFactors returns the multipliers an aggressiveness level
// applies to the base threshold and to SIR's η.
func AggressivenessFactors(level string) (threshold, eta float64, err error) {
	switch level {
	case AggressivenessLow:
		return 1.5, 0.5, nil
	case AggressivenessMedium, "":
		return 1, 1, nil
	case AggressivenessHigh:
		return 0.8, 1.5, nil
	case AggressivenessHighSensitivity:
		return 0.7, 1, nil
	}
	return 0, 0, invalid("rfi_strategy", level, "must be one of low, medium, high, high_sensitivity")
}

// CalibrationConfig configures [Calibrate]. Zero values mean the defaults;
// IntegrationS is required.
type CalibrationConfig struct {
	// IntegrationS is the sample time in seconds (required, > 0).
	IntegrationS float64
	// RequestedIntervalS is the solution interval asked for; 0 means none
	// (the SNR-limited interval is chosen).
	RequestedIntervalS float64
	// RequestedOrder is the bandpass order asked for; 0 means none. It is
	// kept unless the information criterion rejects it (ΔBIC > 2).
	RequestedOrder int
	// RequestedAggressiveness is the rfi_strategy the data were flagged
	// with; "" means medium.
	RequestedAggressiveness string
	// MinOrder and MaxOrder bound the polynomial order; defaults 3 and 7.
	MinOrder, MaxOrder int
	// TargetSNR is the signal-to-noise ratio a gain solution needs; default
	// 10 (phase error ≈ 0.1 rad).
	TargetSNR float64
	// MaxPhaseStep is the phase drift tolerated within one solution
	// interval in radians; default 0.5 (≈ 1 % decorrelation).
	MaxPhaseStep float64
	// MinChannels is the minimum number of usable channels; default 16.
	MinChannels int
}

// Occupancy classifies the flagged samples by the shape of the RFI.
type Occupancy struct {
	// Flagged is the flagged fraction of all samples.
	Flagged float64 `json:"flagged"`
	// Narrowband is the fraction of samples in channels flagged for at
	// least half of the time.
	Narrowband float64 `json:"narrowband"`
	// Broadband is the fraction in (other) timesteps flagged across at
	// least half of the band.
	Broadband float64 `json:"broadband"`
	// Impulsive is the fraction in remaining flagged groups of at most 4
	// connected samples.
	Impulsive float64 `json:"impulsive"`
	// Other is the rest (intermittent or extended features).
	Other float64 `json:"other"`
	// NarrowbandChannels, BroadbandTimesteps and Impulses count the
	// features.
	NarrowbandChannels int `json:"narrowband_channels"`
	BroadbandTimesteps int `json:"broadband_timesteps"`
	Impulses           int `json:"impulses"`
	// LongWindowFlags is the number of samples the final SumThreshold
	// found only with windows of 32 samples or more (weak, long-lasting
	// RFI), and LongWindowShare their share of all flags.
	LongWindowFlags int     `json:"long_window_flags"`
	LongWindowShare float64 `json:"long_window_share"`
	// WeakFlags counts flagged samples of weak, persistent RFI: those in
	// narrowband channels whose flagged samples exceed the background by
	// less than 2.2 noise scales on average (below what a per-sample
	// clipper can see), plus LongWindowFlags elsewhere; WeakShare is their
	// share of all flags.
	WeakFlags int     `json:"weak_flags"`
	WeakShare float64 `json:"weak_share"`
}

// OrderScore is one candidate bandpass order.
type OrderScore struct {
	Order int `json:"order"`
	// Chi2 is the weighted residual sum of squares over σ̂².
	Chi2 float64 `json:"chi2"`
	// BIC is Chi2 + k ln n (k = 2(order+1) real parameters, n = 2 ×
	// channels).
	BIC float64 `json:"bic"`
}

// BandpassFit is the polynomial bandpass solution.
type BandpassFit struct {
	// Order is the chosen order.
	Order int `json:"order"`
	// BestOrder is the order with the lowest BIC.
	BestOrder int `json:"best_order"`
	// Scores lists every candidate.
	Scores []OrderScore `json:"scores"`
	// ReducedChi2 is χ²/dof at the chosen order (≈ 1 for a smooth
	// bandpass with no unflagged RFI).
	ReducedChi2 float64 `json:"reduced_chi2"`
	// Smooth reports whether a polynomial describes the bandpass
	// (ReducedChi2 < 1.5).
	Smooth bool `json:"smooth"`
	// Channels is the number of channels used.
	Channels int `json:"channels"`
	// Coeffs are the complex Legendre coefficients in x ∈ [−1, 1].
	Coeffs []complex128 `json:"-"`
	// Measured is the per-channel bandpass (NaN where fully flagged) and
	// Model the polynomial, both normalised to a mean amplitude of 1.
	Measured []complex128 `json:"-"`
	Model    []complex128 `json:"-"`
}

// GainStats describe the time behaviour of the gain.
type GainStats struct {
	// SNRPerSample is the median gain amplitude over its per-component
	// noise for one timestep (all unflagged channels combined).
	SNRPerSample float64 `json:"snr_per_sample"`
	// PhaseRate is the fitted phase drift in rad/s and PhaseRateErr its
	// standard error.
	PhaseRate    float64 `json:"phase_rate_rad_s"`
	PhaseRateErr float64 `json:"phase_rate_err_rad_s"`
	// PhaseScatter is the rms of block phases about the linear drift (rad).
	PhaseScatter float64 `json:"phase_scatter_rad"`
	// AmpVariation is the fractional rms of the gain amplitude.
	AmpVariation float64 `json:"amp_variation"`
	// Gains are the per-timestep gain estimates (NaN where flagged).
	Gains []complex128 `json:"-"`
}

// Decision is one choice with its reason.
type Decision struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Reason string `json:"reason"`
}

// Calibration is the strategy chosen from the data's statistics.
type Calibration struct {
	// Sigma is the noise per component estimated from the data.
	Sigma float64 `json:"sigma"`
	// Occupancy is the RFI occupancy by kind.
	Occupancy Occupancy `json:"occupancy"`
	// Bandpass is the bandpass solution.
	Bandpass BandpassFit `json:"bandpass"`
	// Gain describes the gain's stability.
	Gain GainStats `json:"gain"`
	// Aggressiveness is the recommended rfi_strategy.
	Aggressiveness string `json:"aggressiveness"`
	// BandpassOrder is the chosen polynomial order (3–7).
	BandpassOrder int `json:"bandpass_order"`
	// BandpassMode is "polynomial" or "per-channel" (when the bandpass is
	// not smooth).
	BandpassMode string `json:"bandpass_mode"`
	// SolutionIntervalS is the chosen gain solution interval;
	// MinIntervalS is the SNR limit and MaxIntervalS the phase-coherence
	// limit (+Inf when the drift is not significant; reported as -1 in
	// JSON).
	SolutionIntervalS float64 `json:"solution_interval_s"`
	MinIntervalS      float64 `json:"min_interval_s"`
	MaxIntervalS      float64 `json:"max_interval_s"`
	// Decisions explain each choice.
	Decisions []Decision `json:"decisions"`
}

func (c *CalibrationConfig) withDefaults() (CalibrationConfig, error) {
	var o CalibrationConfig
	if c != nil {
		o = *c
	}
	if !(o.IntegrationS > 0) || math.IsInf(o.IntegrationS, 0) {
		return o, invalid("IntegrationS", o.IntegrationS, "must be a finite positive number of seconds")
	}
	if !(o.RequestedIntervalS >= 0) || math.IsInf(o.RequestedIntervalS, 0) {
		return o, invalid("RequestedIntervalS", o.RequestedIntervalS, "must be a finite number >= 0")
	}
	if o.MinOrder == 0 {
		o.MinOrder = 3
	}
	if o.MaxOrder == 0 {
		o.MaxOrder = 7
	}
	if o.MinOrder < 0 || o.MaxOrder < o.MinOrder || o.MaxOrder > 15 {
		return o, invalid("MinOrder/MaxOrder", fmt.Sprintf("%d/%d", o.MinOrder, o.MaxOrder), "must satisfy 0 <= min <= max <= 15")
	}
	if o.RequestedOrder != 0 && (o.RequestedOrder < o.MinOrder || o.RequestedOrder > o.MaxOrder) {
		return o, invalid("RequestedOrder", o.RequestedOrder, fmt.Sprintf("must be in [%d, %d]", o.MinOrder, o.MaxOrder))
	}
	if _, _, err := AggressivenessFactors(o.RequestedAggressiveness); err != nil {
		return o, err
	}
	if o.TargetSNR == 0 {
		o.TargetSNR = 10
	}
	if !(o.TargetSNR > 0) || math.IsInf(o.TargetSNR, 0) {
		return o, invalid("TargetSNR", o.TargetSNR, "must be a finite positive number")
	}
	if o.MaxPhaseStep == 0 {
		o.MaxPhaseStep = 0.5
	}
	if !(o.MaxPhaseStep > 0) || o.MaxPhaseStep > math.Pi {
		return o, invalid("MaxPhaseStep", o.MaxPhaseStep, "must be in (0, π]")
	}
	if o.MinChannels == 0 {
		o.MinChannels = 16
	}
	if o.MinChannels < o.MaxOrder+2 {
		o.MinChannels = o.MaxOrder + 2
	}
	return o, nil
}

// Calibrate derives a calibration strategy from s and its flags fr: the
// noise level, the RFI occupancy by kind, a rank-one gain × bandpass
// solution (alternating least squares over the unflagged samples), a
// complex Legendre bandpass polynomial whose order (MinOrder–MaxOrder) is
// chosen by the Bayesian information criterion, and the gain's SNR and
// phase drift, from which the solution interval follows. Each choice comes
// with its reason.
func Calibrate(s Spectrum, fr *FlagResult, cfg *CalibrationConfig) (*Calibration, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if fr == nil {
		return nil, invalid("flags", "nil", "a FlagResult is required")
	}
	if err := checkMask(fr.Mask, len(s.Data)); err != nil {
		return nil, err
	}
	if !(fr.Sigma > 0) {
		return nil, invalid("flags.Sigma", fr.Sigma, "the noise estimate must be positive (is the data constant?)")
	}
	T, C := s.Times, s.Channels
	mask := fr.Mask
	cal := &Calibration{Sigma: fr.Sigma, Occupancy: occupancy(mask, T, C, fr)}

	usable := 0
	for ch := range C {
		for t := range T {
			if !mask[t*C+ch] {
				usable++
				break
			}
		}
	}
	if usable < c.MinChannels {
		return nil, invalid("flags", fmt.Sprintf("%d usable channels", usable), fmt.Sprintf("need at least %d channels with unflagged data to fit a bandpass", c.MinChannels))
	}

	_, b, bw := rankOne(s, mask)
	if err := fitBandpass(cal, b, bw, fr.Sigma, c); err != nil {
		return nil, err
	}
	gainStats(cal, s, mask, fr.Sigma, c)
	decideAggressiveness(cal, c)
	decideOrder(cal, c)
	decideInterval(cal, T, c)
	return cal, nil
}

// occupancy classifies the flags.
func occupancy(mask []bool, T, C int, fr *FlagResult) Occupancy {
	n := float64(T * C)
	var o Occupancy
	used := make([]bool, len(mask))
	chanFlag := make([]int, C)
	timeFlag := make([]int, T)
	for t := range T {
		for ch := range C {
			if mask[t*C+ch] {
				chanFlag[ch]++
				timeFlag[t]++
			}
		}
	}
	nb, bb, imp, all := 0, 0, 0, 0
	scale := fr.Sigma * math.Sqrt(2-math.Pi/2)
	for ch, k := range chanFlag {
		if 2*k >= T {
			o.NarrowbandChannels++
			var sum float64
			n := 0
			for t := range T {
				if i := t*C + ch; mask[i] && !used[i] {
					used[i] = true
					nb++
					if len(fr.Residual.Values) == len(mask) {
						sum += fr.Residual.Values[i]
						n++
					}
				}
			}
			if n > 0 && scale > 0 && sum/float64(n) < 2.2*scale {
				o.WeakFlags += n
			}
		}
	}
	for t, k := range timeFlag {
		if 2*k >= C {
			o.BroadbandTimesteps++
			for ch := range C {
				if i := t*C + ch; mask[i] && !used[i] {
					used[i] = true
					bb++
				}
			}
		}
	}
	// Connected groups (4-neighbour) of the remaining flags.
	stack := []int{}
	for i, f := range mask {
		if f {
			all++
		}
		if !f || used[i] {
			continue
		}
		size := 0
		group := stack[:0]
		group = append(group, i)
		used[i] = true
		members := []int{}
		for len(group) > 0 {
			j := group[len(group)-1]
			group = group[:len(group)-1]
			members = append(members, j)
			size++
			t, ch := j/C, j%C
			for _, nb := range [4][2]int{{t - 1, ch}, {t + 1, ch}, {t, ch - 1}, {t, ch + 1}} {
				if nb[0] < 0 || nb[0] >= T || nb[1] < 0 || nb[1] >= C {
					continue
				}
				k := nb[0]*C + nb[1]
				if mask[k] && !used[k] {
					used[k] = true
					group = append(group, k)
				}
			}
		}
		stack = group
		if size <= 4 {
			o.Impulses++
			imp += size
		}
	}
	o.Flagged = float64(all) / n
	o.Narrowband = float64(nb) / n
	o.Broadband = float64(bb) / n
	o.Impulsive = float64(imp) / n
	o.Other = max(0, o.Flagged-o.Narrowband-o.Broadband-o.Impulsive)
	for i, m := range fr.FinalLengths {
		if m >= 32 {
			o.LongWindowFlags += fr.FinalByLength[i]
		}
	}
	if all > 0 {
		o.LongWindowShare = float64(o.LongWindowFlags) / float64(all)
		o.WeakFlags += o.LongWindowFlags // may overlap a weak channel; capped below
		o.WeakFlags = min(o.WeakFlags, all)
		o.WeakShare = float64(o.WeakFlags) / float64(all)
	}
	return o
}

// rankOne solves V(t,c) ≈ g(t) b(c) over the unflagged samples by
// alternating least squares and returns g, b (normalised to mean |b| = 1)
// and the weight of each channel's b (Σ_t |g|² over unflagged samples;
// the variance of b(c) per component is σ²/weight).
func rankOne(s Spectrum, mask []bool) (g, b []complex128, w []float64) {
	T, C := s.Times, s.Channels
	g, b, w = make([]complex128, T), make([]complex128, C), make([]float64, C)
	// Start from the time average.
	for ch := range C {
		var sum complex128
		n := 0
		for t := range T {
			if i := t*C + ch; !mask[i] {
				sum += s.Data[i]
				n++
			}
		}
		if n > 0 {
			b[ch] = sum / complex(float64(n), 0)
		}
	}
	for range 4 {
		for t := range T {
			var num complex128
			var den float64
			for ch := range C {
				if i := t*C + ch; !mask[i] {
					num += s.Data[i] * cmplx.Conj(b[ch])
					den += real(b[ch])*real(b[ch]) + imag(b[ch])*imag(b[ch])
				}
			}
			g[t] = 0
			if den > 0 {
				g[t] = num / complex(den, 0)
			}
		}
		for ch := range C {
			var num complex128
			var den float64
			for t := range T {
				if i := t*C + ch; !mask[i] {
					num += s.Data[i] * cmplx.Conj(g[t])
					den += real(g[t])*real(g[t]) + imag(g[t])*imag(g[t])
				}
			}
			b[ch], w[ch] = 0, den
			if den > 0 {
				b[ch] = num / complex(den, 0)
			}
		}
	}
	// Normalise: mean |b| = 1 over channels with data, the scale moved
	// into g and w.
	var sum float64
	n := 0
	for ch := range C {
		if w[ch] > 0 {
			sum += cmplx.Abs(b[ch])
			n++
		}
	}
	if n > 0 && sum > 0 {
		k := sum / float64(n)
		for ch := range b {
			b[ch] /= complex(k, 0)
			w[ch] *= k * k
		}
		for t := range g {
			g[t] *= complex(k, 0)
		}
	}
	return g, b, w
}

func legendreRow(x float64, p []float64) {
	p[0] = 1
	if len(p) > 1 {
		p[1] = x
	}
	for k := 2; k < len(p); k++ {
		p[k] = (float64(2*k-1)*x*p[k-1] - float64(k-1)*p[k-2]) / float64(k)
	}
}

// solve solves the p × p system a x = y (a is overwritten) by Gaussian
// elimination with partial pivoting; it reports a singular system.
func solve(a [][]float64, y []float64) ([]float64, bool) {
	n := len(y)
	for k := range n {
		piv := k
		for i := k + 1; i < n; i++ {
			if math.Abs(a[i][k]) > math.Abs(a[piv][k]) {
				piv = i
			}
		}
		if math.Abs(a[piv][k]) < 1e-300 {
			return nil, false
		}
		a[k], a[piv] = a[piv], a[k]
		y[k], y[piv] = y[piv], y[k]
		for i := k + 1; i < n; i++ {
			f := a[i][k] / a[k][k]
			for j := k; j < n; j++ {
				a[i][j] -= f * a[k][j]
			}
			y[i] -= f * y[k]
		}
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for j := i + 1; j < n; j++ {
			s -= a[i][j] * x[j]
		}
		x[i] = s / a[i][i]
	}
	return x, true
}

// fitPoly fits a complex Legendre series of the given order to b with
// weights w and returns the coefficients and the weighted residual sum of
// squares.
func fitPoly(xs []float64, b []complex128, w []float64, order int) ([]complex128, float64, bool) {
	p := order + 1
	ata := make([][]float64, p)
	for i := range ata {
		ata[i] = make([]float64, p)
	}
	atr, ati := make([]float64, p), make([]float64, p)
	row := make([]float64, p)
	for i, x := range xs {
		if w[i] <= 0 {
			continue
		}
		legendreRow(x, row)
		for j := range p {
			for k := range p {
				ata[j][k] += w[i] * row[j] * row[k]
			}
			atr[j] += w[i] * row[j] * real(b[i])
			ati[j] += w[i] * row[j] * imag(b[i])
		}
	}
	cp := make([][]float64, p)
	for i := range ata {
		cp[i] = append([]float64(nil), ata[i]...)
	}
	cr, ok1 := solve(ata, atr)
	ci, ok2 := solve(cp, ati)
	if !ok1 || !ok2 {
		return nil, 0, false
	}
	coef := make([]complex128, p)
	for k := range coef {
		coef[k] = complex(cr[k], ci[k])
	}
	var rss float64
	for i, x := range xs {
		if w[i] <= 0 {
			continue
		}
		d := b[i] - evalPoly(coef, x, row)
		rss += w[i] * (real(d)*real(d) + imag(d)*imag(d))
	}
	return coef, rss, true
}

func evalPoly(coef []complex128, x float64, row []float64) complex128 {
	legendreRow(x, row[:len(coef)])
	var v complex128
	for k, a := range coef {
		v += a * complex(row[k], 0)
	}
	return v
}

func fitBandpass(cal *Calibration, b []complex128, w []float64, sigma float64, c CalibrationConfig) error {
	C := len(b)
	xs := make([]float64, C)
	n := 0
	for ch := range C {
		xs[ch] = -1 + 2*(float64(ch)+0.5)/float64(C)
		if w[ch] > 0 {
			n++
		}
	}
	bp := &cal.Bandpass
	bp.Channels = n
	bp.Measured = make([]complex128, C)
	for ch := range C {
		bp.Measured[ch] = b[ch]
		if w[ch] <= 0 {
			bp.Measured[ch] = complex(math.NaN(), math.NaN())
		}
	}
	bestBIC := math.Inf(1)
	coefs := map[int][]complex128{}
	s2 := sigma * sigma
	for order := c.MinOrder; order <= c.MaxOrder; order++ {
		coef, rss, ok := fitPoly(xs, b, w, order)
		if !ok {
			return invalid("bandpass", fmt.Sprintf("order %d", order), "the least-squares system is singular (too few distinct channels)")
		}
		k := 2 * (order + 1)
		chi2 := rss / s2
		bic := chi2 + float64(k)*math.Log(float64(2*n))
		bp.Scores = append(bp.Scores, OrderScore{Order: order, Chi2: chi2, BIC: bic})
		coefs[order] = coef
		if bic < bestBIC {
			bestBIC, bp.BestOrder = bic, order
		}
	}
	bp.Order = bp.BestOrder
	if c.RequestedOrder != 0 {
		for _, sc := range bp.Scores {
			if sc.Order == c.RequestedOrder && sc.BIC-bestBIC <= 2 {
				bp.Order = c.RequestedOrder
			}
		}
	}
	for _, sc := range bp.Scores {
		if sc.Order == bp.Order {
			bp.ReducedChi2 = sc.Chi2 / float64(2*n-2*(sc.Order+1))
		}
	}
	bp.Smooth = bp.ReducedChi2 < 1.5
	bp.Coeffs = coefs[bp.Order]
	bp.Model = make([]complex128, C)
	row := make([]float64, bp.Order+1)
	for ch, x := range xs {
		bp.Model[ch] = evalPoly(bp.Coeffs, x, row)
	}
	return nil
}

func gainStats(cal *Calibration, s Spectrum, mask []bool, sigma float64, c CalibrationConfig) {
	T, C := s.Times, s.Channels
	model := cal.Bandpass.Model
	gs := &cal.Gain
	gs.Gains = make([]complex128, T)
	var snr2 float64
	nsnr := 0
	amps := make([]float64, 0, T)
	for t := range T {
		// Per-timestep gain against the smooth bandpass model (less noisy
		// than the per-channel solution).
		var num complex128
		var den float64
		for ch := range C {
			if i := t*C + ch; !mask[i] {
				num += s.Data[i] * cmplx.Conj(model[ch])
				den += real(model[ch])*real(model[ch]) + imag(model[ch])*imag(model[ch])
			}
		}
		if den <= 0 {
			gs.Gains[t] = complex(math.NaN(), math.NaN())
			continue
		}
		g := num / complex(den, 0)
		gs.Gains[t] = g
		// |g|²/σ_g² with σ_g = σ/√den per component.
		a := cmplx.Abs(g)
		snr2 += a * a * den / (sigma * sigma)
		nsnr++
		amps = append(amps, a)
	}
	if nsnr == 0 {
		return
	}
	// E|ĝ|²/σ_g² = SNR² + 2: remove the noise's contribution.
	gs.SNRPerSample = math.Sqrt(math.Max(snr2/float64(nsnr)-2, 0))
	var m, m2 float64
	for _, a := range amps {
		m += a
	}
	m /= float64(len(amps))
	for _, a := range amps {
		m2 += (a - m) * (a - m)
	}
	if m > 0 {
		gs.AmpVariation = math.Sqrt(m2/float64(len(amps))) / m
	}
	// Samples per solution for the target SNR.
	nSNR := T
	if gs.SNRPerSample > 0 {
		nSNR = int(math.Min(math.Ceil(math.Pow(c.TargetSNR/gs.SNRPerSample, 2)), float64(T)))
	}
	cal.MinIntervalS = float64(max(nSNR, 1)) * c.IntegrationS
	// Phase drift: block averages of nSNR (at least 2) samples, unwrapped,
	// fitted by a line.
	blk := max(nSNR, 2)
	var ts, ph []float64
	for t0 := 0; t0+blk <= T; t0 += blk {
		var sum complex128
		n := 0
		var tm float64
		for t := t0; t < t0+blk; t++ {
			if v := gs.Gains[t]; !cmplx.IsNaN(v) {
				sum += v
				tm += float64(t)
				n++
			}
		}
		if n == 0 || sum == 0 {
			continue
		}
		p := cmplx.Phase(sum)
		if len(ph) > 0 {
			prev := ph[len(ph)-1]
			p = prev + math.Remainder(p-prev, 2*math.Pi)
		}
		ts = append(ts, tm/float64(n)*c.IntegrationS)
		ph = append(ph, p)
	}
	cal.MaxIntervalS = math.Inf(1)
	if len(ts) >= 3 {
		var mt, mp float64
		for i := range ts {
			mt += ts[i]
			mp += ph[i]
		}
		mt /= float64(len(ts))
		mp /= float64(len(ts))
		var stt, stp float64
		for i := range ts {
			stt += (ts[i] - mt) * (ts[i] - mt)
			stp += (ts[i] - mt) * (ph[i] - mp)
		}
		if stt > 0 {
			rate := stp / stt
			var rss float64
			for i := range ts {
				d := ph[i] - mp - rate*(ts[i]-mt)
				rss += d * d
			}
			gs.PhaseRate = rate
			gs.PhaseScatter = math.Sqrt(rss / float64(len(ts)))
			if len(ts) > 2 {
				gs.PhaseRateErr = math.Sqrt(rss / float64(len(ts)-2) / stt)
			}
			if math.Abs(rate) > 3*gs.PhaseRateErr && rate != 0 {
				cal.MaxIntervalS = c.MaxPhaseStep / math.Abs(rate)
			}
		}
	}
}

func decideAggressiveness(cal *Calibration, c CalibrationConfig) {
	o := cal.Occupancy
	var level, why string
	switch {
	case o.Flagged > 0.15 || o.Broadband > 0.05:
		level = AggressivenessHigh
		why = fmt.Sprintf("heavy RFI (%.1f%% flagged, %.1f%% in broadband bursts): lower thresholds and a stronger SIR also take the weak wings of strong RFI", 100*o.Flagged, 100*o.Broadband)
	case o.WeakShare > 0.05:
		level = AggressivenessHighSensitivity
		why = fmt.Sprintf("%d flagged samples (%.0f%% of the flags) are weak persistent RFI (below 2.2 noise scales per sample, %d found only by windows of >= 32 samples): more may hide just below the thresholds, so search deeper", o.WeakFlags, 100*o.WeakShare, o.LongWindowFlags)
	case o.Flagged < 0.005:
		level = AggressivenessLow
		why = fmt.Sprintf("clean data (%.2f%% flagged, no weak long features): higher thresholds keep every good sample", 100*o.Flagged)
	default:
		level = AggressivenessMedium
		why = fmt.Sprintf("moderate RFI (%.1f%% flagged: %d narrowband channels, %d broadband timesteps, %d impulses): AOFlagger's default strategy fits", 100*o.Flagged, o.NarrowbandChannels, o.BroadbandTimesteps, o.Impulses)
	}
	req := c.RequestedAggressiveness
	if req == "" {
		req = AggressivenessMedium
	}
	if req != level {
		why += fmt.Sprintf(" (flagged with %q; re-flag with %q)", req, level)
	}
	cal.Aggressiveness = level
	cal.Decisions = append(cal.Decisions, Decision{Name: "rfi_strategy", Value: level, Reason: why})
}

func decideOrder(cal *Calibration, c CalibrationConfig) {
	bp := cal.Bandpass
	cal.BandpassOrder = bp.Order
	var best, chosen OrderScore
	for _, s := range bp.Scores {
		if s.Order == bp.BestOrder {
			best = s
		}
		if s.Order == bp.Order {
			chosen = s
		}
	}
	var parts []string
	for _, s := range bp.Scores {
		parts = append(parts, fmt.Sprintf("%d:%.1f", s.Order, s.BIC-best.BIC))
	}
	why := fmt.Sprintf("BIC over orders %d-%d is lowest at %d (ΔBIC %s)", c.MinOrder, c.MaxOrder, bp.BestOrder, strings.Join(parts, " "))
	if bp.Order != bp.BestOrder {
		why += fmt.Sprintf("; the requested order %d is within ΔBIC %.1f <= 2 of it, so it is kept", bp.Order, chosen.BIC-best.BIC)
	} else if c.RequestedOrder != 0 && c.RequestedOrder != bp.Order {
		for _, s := range bp.Scores {
			if s.Order == c.RequestedOrder {
				why += fmt.Sprintf("; the requested order %d is rejected (ΔBIC %.1f > 2)", c.RequestedOrder, s.BIC-best.BIC)
			}
		}
	}
	cal.BandpassMode = "polynomial"
	if bp.Smooth {
		why += fmt.Sprintf("; χ²/dof = %.2f: the polynomial describes the bandpass to the noise", bp.ReducedChi2)
	} else {
		cal.BandpassMode = "per-channel"
		why += fmt.Sprintf("; but χ²/dof = %.2f: structure on scales no order-%d polynomial follows (ripple or residual RFI), so solve the bandpass per channel (B-type) and smooth afterwards", bp.ReducedChi2, c.MaxOrder)
	}
	cal.Decisions = append(cal.Decisions, Decision{Name: "bandpass_order", Value: bp.Order, Reason: why})
	cal.Decisions = append(cal.Decisions, Decision{Name: "bandpass_mode", Value: cal.BandpassMode, Reason: fmt.Sprintf("reduced χ² %.2f at order %d", bp.ReducedChi2, bp.Order)})
}

func decideInterval(cal *Calibration, T int, c CalibrationConfig) {
	dt := c.IntegrationS
	total := float64(T) * dt
	lo, hi := cal.MinIntervalS, cal.MaxIntervalS
	round := func(v float64) float64 { return math.Max(1, math.Round(v/dt)) * dt }
	g := cal.Gain
	snrWhy := fmt.Sprintf("SNR %.1f per %.2f s sample needs %.1f s for SNR %.0f", g.SNRPerSample, dt, lo, c.TargetSNR)
	cohWhy := "no significant phase drift"
	if !math.IsInf(hi, 1) {
		cohWhy = fmt.Sprintf("phase drifts %.4f ± %.4f rad/s, %.2f rad in %.1f s", g.PhaseRate, g.PhaseRateErr, c.MaxPhaseStep, hi)
	}
	var v float64
	var why string
	req := c.RequestedIntervalS
	switch {
	case lo > hi:
		v = round(lo)
		why = fmt.Sprintf("conflict: %s but %s; solving at the SNR limit and combining spectral windows (or a phase-only pre-calibration) is advised", snrWhy, cohWhy)
	case req == 0:
		v = round(math.Min(math.Max(lo, math.Min(hi, total)), total))
		why = fmt.Sprintf("%s; %s; no interval requested, so the longest coherent one is used", snrWhy, cohWhy)
		if math.IsInf(hi, 1) {
			why = fmt.Sprintf("%s; %s; one solution per scan", snrWhy, cohWhy)
		}
	case req < lo:
		v = round(lo)
		why = fmt.Sprintf("requested %.1f s is too short: %s", req, snrWhy)
	case req > hi:
		v = round(hi)
		why = fmt.Sprintf("requested %.1f s is too long: %s", req, cohWhy)
	default:
		v = round(req)
		why = fmt.Sprintf("requested %.1f s is within [%.1f s (SNR), %s]: %s; %s", req, lo, fmtLimit(hi), snrWhy, cohWhy)
	}
	if v > total {
		v = round(total)
		why += fmt.Sprintf("; capped at the scan length %.1f s", total)
	}
	if g.SNRPerSample*math.Sqrt(float64(T)) < c.TargetSNR {
		why = fmt.Sprintf("the calibrator is too faint (SNR %.2f per sample) to reach SNR %.0f even over the whole %.1f s scan: solve once per scan and combine spectral windows or scans", g.SNRPerSample, c.TargetSNR, total)
	}
	cal.SolutionIntervalS = v
	cal.Decisions = append(cal.Decisions, Decision{Name: "solution_interval_s", Value: v, Reason: why})
}

func fmtLimit(v float64) string {
	if math.IsInf(v, 1) {
		return "∞ (coherence)"
	}
	return fmt.Sprintf("%.1f s (coherence)", v)
}

// MarshalJSON encodes c with an infinite MaxIntervalS (no significant
// phase drift) as -1, since JSON has no infinity.
func (c Calibration) MarshalJSON() ([]byte, error) {
	type plain Calibration
	p := plain(c)
	if math.IsInf(p.MaxIntervalS, 0) || math.IsNaN(p.MaxIntervalS) {
		p.MaxIntervalS = -1
	}
	return json.Marshal(p)
}
