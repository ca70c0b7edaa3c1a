package alphacal

import (
	"math"

	"github.com/cosmic-horizons/horizons/internal/robust"
)

// median returns the median of a (reordering it); NaN for an empty slice.
func median(a []float64) float64 {
	n := len(a)
	if n == 0 {
		return math.NaN()
	}
	m := robust.Select(a, n/2)
	if n%2 == 1 {
		return m
	}
	// The lower middle is the largest of a[:n/2].
	lo := a[0]
	for _, v := range a[1 : n/2] {
		lo = max(lo, v)
	}
	return (lo + m) / 2
}

// MADSigma is the factor turning a median absolute deviation into a
// Gaussian standard deviation (1/Φ⁻¹(3/4)), as in CASA's robust rms.
const MADSigma = 1.4826

// MedianMAD returns the median of the unflagged values (mask may be nil)
// and their robust sigma 1.4826 × MAD. It returns NaN for no values.
func MedianMAD(values []float64, mask []bool) (med, sigma float64) {
	buf := unflagged(values, mask)
	med = median(buf)
	for i, v := range buf {
		buf[i] = math.Abs(v - med)
	}
	return med, MADSigma * median(buf)
}

func unflagged(values []float64, mask []bool) []float64 {
	buf := make([]float64, 0, len(values))
	for i, v := range values {
		if mask == nil || !mask[i] {
			buf = append(buf, v)
		}
	}
	return buf
}

// winsorCorrection turns the standard deviation of 10 %-winsorized Gaussian
// data into the Gaussian sigma: the winsorized variance of a unit normal
// clipped at ±z₀.₉ = ±1.28155 is 0.8 − 2z₀.₉φ(z₀.₉) + 0.2z₀.₉² = 0.67865,
// so the factor is 1/√0.67865. (AOFlagger's code multiplies by 1.54, which
// over-estimates a Gaussian sigma by 27 %.)
const winsorCorrection = 1.2138929

// WinsorizedMeanStd returns the mean and the standard deviation of the
// unflagged values (mask may be nil) after replacing the lowest and highest
// 10 % by the 10th and 90th percentile values, the standard deviation
// multiplied by 1.2139 so that it estimates the sigma of Gaussian data
// (AOFlagger's noise scale for the Gaussian model). It returns NaN for no values.
func WinsorizedMeanStd(values []float64, mask []bool) (mean, std float64) {
	buf := unflagged(values, mask)
	n := len(buf)
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	li := int(math.Floor(0.1 * float64(n)))
	hi := int(math.Ceil(0.9*float64(n))) - 1
	if hi < li {
		hi = li
	}
	hv := robust.Select(buf, hi)
	lv := robust.Select(buf[:hi+1], li)
	var s float64
	for _, v := range buf {
		s += min(max(v, lv), hv)
	}
	mean = s / float64(n)
	var s2 float64
	for _, v := range buf {
		d := min(max(v, lv), hv) - mean
		s2 += d * d
	}
	return mean, math.Sqrt(s2/float64(n)) * winsorCorrection
}
