package alphacal

import (
	"context"
	"fmt"
	"math"
)

// ThresholdLaw gives the threshold for a window of m samples from the
// single-sample threshold first (both in the data's units).
type ThresholdLaw func(m int, first float64) float64

// AOFlaggerLaw is the threshold law of AOFlagger's code
// (thresholdconfig.cpp): χ_M = χ₁ · 1.5^{log₂M} / M. It is the default.
func AOFlaggerLaw(m int, first float64) float64 {
	return first * math.Pow(1.5, math.Log2(float64(m))) / float64(m)
}

// GeometricLaw is the law some secondary sources state: χ_M = χ₁ /
// 1.5^{log₂M}. It falls more slowly with M than [AOFlaggerLaw], so it is
// less sensitive to long weak RFI.
func GeometricLaw(m int, first float64) float64 {
	return first / math.Pow(1.5, math.Log2(float64(m)))
}

// DefaultLengths are SumThreshold's window lengths: 1, 2, 4, …, 256.
var DefaultLengths = []int{1, 2, 4, 8, 16, 32, 64, 128, 256}

// DefaultFirstThreshold is χ₁ in units of the noise scale (AOFlagger's
// firstThreshold of 6.0).
const DefaultFirstThreshold = 6.0

// Direction selects the axes SumThreshold runs along.
type Direction int

// Directions.
const (
	// BothAxes runs each window length along time, then along frequency
	// (the default, AOFlagger's interleaving).
	BothAxes Direction = iota
	// TimeOnly runs along time (finds narrowband, long-lasting RFI).
	TimeOnly
	// FreqOnly runs along frequency (finds broadband, short RFI).
	FreqOnly
)

// SumThresholdConfig configures [SumThreshold]. Zero values mean the
// defaults; a nil config means all defaults.
type SumThresholdConfig struct {
	// FirstThreshold is χ₁ in units of the noise scale; default 6.
	FirstThreshold float64
	// Level multiplies every threshold (AOFlagger's sensitivity, the
	// strategy's threshold factor × base threshold); default 1.
	Level float64
	// NoiseScale is the noise scale in data units; 0 means the winsorized
	// standard deviation of the unflagged data ([WinsorizedMeanStd]).
	NoiseScale float64
	// Lengths are the window lengths; default [DefaultLengths]. Lengths
	// longer than an axis are skipped on that axis.
	Lengths []int
	// Law is the threshold law; default [AOFlaggerLaw].
	Law ThresholdLaw
	// Direction selects the axes; default both.
	Direction Direction
}

// SumThresholdStats reports what one SumThreshold run did.
type SumThresholdStats struct {
	// NoiseScale is the noise scale the thresholds were multiplied by.
	NoiseScale float64
	// Lengths are the window lengths run.
	Lengths []int
	// Thresholds[i] is the absolute threshold used for Lengths[i].
	Thresholds []float64
	// NewFlags[i] is the number of samples first flagged by windows of
	// Lengths[i] (time and frequency together).
	NewFlags []int
}

func (c *SumThresholdConfig) withDefaults() (SumThresholdConfig, error) {
	var o SumThresholdConfig
	if c != nil {
		o = *c
	}
	if o.FirstThreshold == 0 {
		o.FirstThreshold = DefaultFirstThreshold
	}
	if !(o.FirstThreshold > 0) || math.IsInf(o.FirstThreshold, 0) {
		return o, invalid("FirstThreshold", o.FirstThreshold, "must be a finite positive number")
	}
	if o.Level == 0 {
		o.Level = 1
	}
	if !(o.Level > 0) || math.IsInf(o.Level, 0) {
		return o, invalid("Level", o.Level, "must be a finite positive number")
	}
	if !(o.NoiseScale >= 0) || math.IsInf(o.NoiseScale, 0) {
		return o, invalid("NoiseScale", o.NoiseScale, "must be a finite number >= 0 (0 estimates it)")
	}
	if o.Lengths == nil {
		o.Lengths = DefaultLengths
	}
	if len(o.Lengths) == 0 {
		return o, invalid("Lengths", o.Lengths, "must not be empty")
	}
	for _, m := range o.Lengths {
		if m < 1 {
			return o, invalid("Lengths", o.Lengths, "window lengths must be >= 1")
		}
	}
	if o.Law == nil {
		o.Law = AOFlaggerLaw
	}
	if o.Direction < BothAxes || o.Direction > FreqOnly {
		return o, invalid("Direction", o.Direction, "must be BothAxes, TimeOnly or FreqOnly")
	}
	return o, nil
}

// SumThreshold flags RFI in p by the SumThreshold method, adding flags to
// mask (which must have one entry per sample; existing flags are kept and
// their samples excluded from the sums). For each window length M in turn,
// along time and then along frequency, every window position whose
// unflagged samples have a mean of absolute value above
// Law(M, FirstThreshold) × Level × NoiseScale has all its M samples
// flagged; the sums of one pass use the mask as it was before that pass,
// and masks accumulate across lengths.
func SumThreshold(ctx context.Context, p Plane, mask []bool, cfg *SumThresholdConfig) (SumThresholdStats, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return SumThresholdStats{}, err
	}
	if err := p.validate(); err != nil {
		return SumThresholdStats{}, err
	}
	if err := checkMask(mask, len(p.Values)); err != nil {
		return SumThresholdStats{}, err
	}
	scale := c.NoiseScale
	if scale == 0 {
		_, scale = WinsorizedMeanStd(p.Values, mask)
		if math.IsNaN(scale) { // everything already flagged
			scale = 0
		}
	}
	st := SumThresholdStats{NoiseScale: scale, Lengths: c.Lengths}
	for _, m := range c.Lengths {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		thr := c.Law(m, c.FirstThreshold) * c.Level * scale
		if math.IsNaN(thr) || thr < 0 {
			return st, invalid("Law", fmt.Sprintf("threshold %v for M=%d", thr, m), "the threshold law must return a number >= 0")
		}
		st.Thresholds = append(st.Thresholds, thr)
		n := 0
		if c.Direction != FreqOnly && m <= p.Times {
			n += sumThresholdAxis(p, mask, m, thr, true)
		}
		if c.Direction != TimeOnly && m <= p.Channels {
			n += sumThresholdAxis(p, mask, m, thr, false)
		}
		st.NewFlags = append(st.NewFlags, n)
	}
	return st, nil
}

// sumThresholdAxis runs one window length along time (alongTime) or
// frequency over every line, in parallel, and returns the number of new
// flags. Along time the rows are swept in order with running sums per
// channel, so that memory is read contiguously.
func sumThresholdAxis(p Plane, mask []bool, m int, thr float64, alongTime bool) int {
	T, C := p.Times, p.Channels
	counts := make(chan int, 64)
	total := 0
	done := make(chan struct{})
	go func() {
		for c := range counts {
			total += c
		}
		close(done)
	}()
	if alongTime {
		orig := append([]bool(nil), mask...)
		parallelFor(C, T*4, func(lo, hi int) {
			w := hi - lo
			sum := make([]float64, w)
			cnt := make([]int, w)
			flaggedTo := make([]int, w)
			newf := 0
			for t := range T {
				row := p.Values[t*C+lo : t*C+hi]
				om := orig[t*C+lo : t*C+hi]
				for k, v := range row {
					if !om[k] {
						sum[k] += v
						cnt[k]++
					}
				}
				if t >= m {
					old := p.Values[(t-m)*C+lo : (t-m)*C+hi]
					oo := orig[(t-m)*C+lo : (t-m)*C+hi]
					for k, v := range old {
						if !oo[k] {
							sum[k] -= v
							cnt[k]--
							if cnt[k] == 0 {
								sum[k] = 0
							}
						}
					}
				}
				if t < m-1 {
					continue
				}
				s0 := t - m + 1
				for k := range w {
					if cnt[k] > 0 && math.Abs(sum[k]/float64(cnt[k])) > thr {
						for j := max(s0, flaggedTo[k]); j <= t; j++ {
							if i := j*C + lo + k; !mask[i] {
								mask[i] = true
								newf++
							}
						}
						flaggedTo[k] = t + 1
					}
				}
			}
			counts <- newf
		})
	} else {
		parallelFor(T, C*4, func(lo, hi int) {
			orig := make([]bool, C)
			newf := 0
			for t := lo; t < hi; t++ {
				copy(orig, mask[t*C:(t+1)*C])
				newf += sumThreshold1D(p.Values[t*C:(t+1)*C], orig, mask[t*C:(t+1)*C], 0, 1, m, thr)
			}
			counts <- newf
		})
	}
	close(counts)
	<-done
	return total
}

// sumThreshold1D slides a window of m samples over vals (flags orig),
// flagging out[base+i*stride] for every sample of a window over threshold.
func sumThreshold1D(vals []float64, orig []bool, out []bool, base, stride, m int, thr float64) int {
	n := len(vals)
	var sum float64
	cnt := 0
	for i := range m {
		if !orig[i] {
			sum += vals[i]
			cnt++
		}
	}
	flaggedTo, newf := 0, 0
	for s := 0; ; s++ {
		if cnt > 0 && math.Abs(sum/float64(cnt)) > thr {
			for j := max(s, flaggedTo); j < s+m; j++ {
				k := base + j*stride
				if !out[k] {
					out[k] = true
					newf++
				}
			}
			flaggedTo = s + m
		}
		if s+m >= n {
			break
		}
		if !orig[s] {
			sum -= vals[s]
			cnt--
		}
		if !orig[s+m] {
			sum += vals[s+m]
			cnt++
		}
		if cnt == 0 {
			sum = 0 // drop accumulated rounding
		}
	}
	return newf
}
