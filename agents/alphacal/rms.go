package alphacal

import (
	"github.com/cosmic-horizons/horizons/internal/robust"

	"math"
)

// ThresholdTimesteps flags whole timesteps whose level — the winsorized
// mean of the unflagged values across channels (clipped to their 10th and
// 90th percentiles, so that a few bright channels of narrowband RFI do not
// raise a whole timestep, while a broadband burst, which raises every
// channel, does) — exceeds the mean of the timestep levels by more than k
// of their winsorized standard deviations. It plays the part of
// AOFlagger's threshold_timestep_rms on a zero-mean amplitude-excess
// representation, where the mean rather than the RMS is used so that a
// timestep whose background was over-estimated (next to a strong burst)
// is not flagged. It returns the number of timesteps flagged.
func ThresholdTimesteps(p Plane, mask []bool, k float64) (int, error) {
	return thresholdLines(p, mask, k, true, false)
}

// ThresholdChannels flags whole channels whose level (as in
// [ThresholdTimesteps], across time) lies more than k winsorized standard
// deviations above the mean of the channel levels, or also below it with
// lowOutliers (AOFlagger's threshold_channel_rms). It returns the number
// of channels flagged.
func ThresholdChannels(p Plane, mask []bool, k float64, lowOutliers bool) (int, error) {
	return thresholdLines(p, mask, k, false, lowOutliers)
}

func thresholdLines(p Plane, mask []bool, k float64, alongTime, low bool) (int, error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	if err := checkMask(mask, len(p.Values)); err != nil {
		return 0, err
	}
	if !(k > 0) || math.IsInf(k, 0) {
		return 0, invalid("k", k, "must be a finite positive number of sigmas")
	}
	T, C := p.Times, p.Channels
	lines, n := C, T
	if alongTime { // one RMS per timestep
		lines, n = T, C
	}
	at := func(line, i int) int {
		if alongTime {
			return line*C + i
		}
		return i*C + line
	}
	rms := make([]float64, lines)
	has := make([]bool, lines)
	minCount := max(3, n/10)
	parallelFor(lines, n*3, func(lo, hi int) {
		buf := make([]float64, 0, n)
		for l := lo; l < hi; l++ {
			buf = buf[:0]
			for i := range n {
				if j := at(l, i); !mask[j] {
					buf = append(buf, p.Values[j])
				}
			}
			if len(buf) >= minCount {
				rms[l] = winsorizedMean(buf)
				has[l] = true
			}
		}
	})
	vals := make([]float64, 0, lines)
	for l, h := range has {
		if h {
			vals = append(vals, rms[l])
		}
	}
	if len(vals) < 3 {
		return 0, nil
	}
	mean, std := WinsorizedMeanStd(vals, nil)
	if !(std > 0) {
		return 0, nil
	}
	flagged := 0
	for l := range lines {
		if !has[l] {
			continue
		}
		d := rms[l] - mean
		if d > k*std || (low && -d > k*std) {
			flagged++
			for i := range n {
				mask[at(l, i)] = true
			}
		}
	}
	return flagged, nil
}

// MADFlag flags the unflagged samples of p whose distance from the median
// exceeds k × 1.4826 × MAD (robust sigma clipping, the baseline flagger).
// It returns the number of new flags.
func MADFlag(p Plane, mask []bool, k float64) (int, error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	if err := checkMask(mask, len(p.Values)); err != nil {
		return 0, err
	}
	if !(k > 0) || math.IsInf(k, 0) {
		return 0, invalid("k", k, "must be a finite positive number of sigmas")
	}
	med, sig := MedianMAD(p.Values, mask)
	if math.IsNaN(med) || !(sig > 0) {
		return 0, nil
	}
	n := 0
	for i, v := range p.Values {
		if !mask[i] && math.Abs(v-med) > k*sig {
			mask[i] = true
			n++
		}
	}
	return n, nil
}

// winsorizedMean returns the mean of a after clipping its values to their
// 10th and 90th percentiles (a is reordered).
func winsorizedMean(a []float64) float64 {
	n := len(a)
	li := int(math.Floor(0.1 * float64(n)))
	hi := max(int(math.Ceil(0.9*float64(n)))-1, li)
	hv := robust.Select(a, hi)
	lv := robust.Select(a[:hi+1], li)
	var s float64
	for _, v := range a {
		s += min(max(v, lv), hv)
	}
	return s / float64(n)
}
