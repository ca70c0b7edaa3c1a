package alphacal

import "math"

// DefaultSIREta is the SIR operator's default aggressiveness η (AOFlagger's
// generic strategy uses 0.2 along both axes).
const DefaultSIREta = 0.2

// sirTolerance absorbs rounding in the prefix sums, so that windows whose
// sum is exactly zero in exact arithmetic (η = 0.25 with 3 flags and one
// gap) count as flagged.
const sirTolerance = 1e-9

// SIR1D applies the scale-invariant rank operator to one line of flags in
// place: sample y becomes flagged when some contiguous window containing y
// has at most a fraction η of unflagged samples, that is when
// Σ_window (η − w) ≥ 0 with w = 1 for unflagged and 0 for flagged samples
// (Offringa, van de Gronde & Roerdink 2012). It runs in O(N) with prefix
// sums, a running minimum from the left and a running maximum from the
// right.
func SIR1D(flags []bool, eta float64) error {
	if !(eta >= 0 && eta <= 1) {
		return invalid("eta", eta, "must be in [0, 1]")
	}
	sir1D(flags, eta, make([]float64, len(flags)+1), make([]float64, len(flags)+1))
	return nil
}

// sir1D does the work with scratch space w and mx of length len(flags)+1.
func sir1D(flags []bool, eta float64, w, mx []float64) {
	n := len(flags)
	if n == 0 || eta == 0 {
		return
	}
	w[0] = 0
	for i, f := range flags {
		v := eta - 1
		if f {
			v = eta
		}
		w[i+1] = w[i] + v
	}
	// mx[j] = max of w[j..n].
	mx[n] = w[n]
	for j := n - 1; j >= 0; j-- {
		mx[j] = math.Max(w[j], mx[j+1])
	}
	minLeft := math.Inf(1)
	for y := range n {
		minLeft = math.Min(minLeft, w[y]) // windows [i, j) with i <= y < j
		if mx[y+1]-minLeft >= -sirTolerance {
			flags[y] = true
		}
	}
}

// SIR applies the scale-invariant rank operator to a times × channels mask
// in place: along time with etaTime, then along frequency with etaFreq
// (each in [0, 1]; 0 leaves that axis alone).
func SIR(mask []bool, times, chans int, etaTime, etaFreq float64) error {
	if err := checkShape(times, chans, len(mask)); err != nil {
		return err
	}
	if !(etaTime >= 0 && etaTime <= 1) {
		return invalid("etaTime", etaTime, "must be in [0, 1]")
	}
	if !(etaFreq >= 0 && etaFreq <= 1) {
		return invalid("etaFreq", etaFreq, "must be in [0, 1]")
	}
	if etaTime > 0 {
		parallelFor(chans, times*4, func(lo, hi int) {
			line := make([]bool, times)
			w, mx := make([]float64, times+1), make([]float64, times+1)
			for c := lo; c < hi; c++ {
				for t := range times {
					line[t] = mask[t*chans+c]
				}
				sir1D(line, etaTime, w, mx)
				for t := range times {
					mask[t*chans+c] = line[t]
				}
			}
		})
	}
	if etaFreq > 0 {
		parallelFor(times, chans*4, func(lo, hi int) {
			w, mx := make([]float64, chans+1), make([]float64, chans+1)
			for t := lo; t < hi; t++ {
				sir1D(mask[t*chans:(t+1)*chans], etaFreq, w, mx)
			}
		})
	}
	return nil
}
