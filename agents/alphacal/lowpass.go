package alphacal

import (
	"math"
)

// LowPassConfig configures the Gaussian low-pass background estimate of
// the default strategy. Zero values mean AOFlagger's generic-strategy
// defaults; a nil config means all defaults.
type LowPassConfig struct {
	// Downsample is the block size averaged before filtering, on both
	// axes; default 3.
	Downsample int
	// KernelTime and KernelFreq are the kernel sizes (odd, in downsampled
	// samples); defaults 21 and 31.
	KernelTime, KernelFreq int
	// SigmaTime and SigmaFreq are the Gaussian sigmas in downsampled
	// samples; defaults 2.5 and 5.0.
	SigmaTime, SigmaFreq float64
}

func (c *LowPassConfig) withDefaults() (LowPassConfig, error) {
	var o LowPassConfig
	if c != nil {
		o = *c
	}
	if o.Downsample == 0 {
		o.Downsample = 3
	}
	if o.KernelTime == 0 {
		o.KernelTime = 21
	}
	if o.KernelFreq == 0 {
		o.KernelFreq = 31
	}
	if o.SigmaTime == 0 {
		o.SigmaTime = 2.5
	}
	if o.SigmaFreq == 0 {
		o.SigmaFreq = 5.0
	}
	if o.Downsample < 1 || o.Downsample > 64 {
		return o, invalid("LowPass.Downsample", o.Downsample, "must be in [1, 64]")
	}
	if o.KernelTime < 1 || o.KernelTime%2 == 0 || o.KernelTime > 1001 {
		return o, invalid("LowPass.KernelTime", o.KernelTime, "must be odd and in [1, 1001]")
	}
	if o.KernelFreq < 1 || o.KernelFreq%2 == 0 || o.KernelFreq > 1001 {
		return o, invalid("LowPass.KernelFreq", o.KernelFreq, "must be odd and in [1, 1001]")
	}
	if !(o.SigmaTime > 0) || math.IsInf(o.SigmaTime, 0) {
		return o, invalid("LowPass.SigmaTime", o.SigmaTime, "must be a finite positive number")
	}
	if !(o.SigmaFreq > 0) || math.IsInf(o.SigmaFreq, 0) {
		return o, invalid("LowPass.SigmaFreq", o.SigmaFreq, "must be a finite positive number")
	}
	return o, nil
}

// LowPass returns a smooth background of p that ignores flagged samples:
// the unflagged samples are averaged in Downsample × Downsample blocks,
// filtered by normalised convolution with a separable Gaussian (so edges
// and flagged gaps are handled by renormalising the weights), and
// interpolated bilinearly back to full resolution (AOFlagger's
// downsample, low_pass_filter and upsample steps).
func LowPass(p Plane, mask []bool, cfg *LowPassConfig) (Plane, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return Plane{}, err
	}
	if err := p.validate(); err != nil {
		return Plane{}, err
	}
	if mask != nil {
		if err := checkMask(mask, len(p.Values)); err != nil {
			return Plane{}, err
		}
	}
	out := lowPassPlanes([][]float64{p.Values}, mask, p.Times, p.Channels, c)
	return Plane{Times: p.Times, Channels: p.Channels, Values: out[0]}, nil
}

func gaussKernel(size int, sigma float64) []float64 {
	h := size / 2
	k := make([]float64, size)
	for i := range k {
		d := float64(i - h)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
	}
	return k
}

// convSeparable convolves a rows × cols array with kt along rows (the time
// axis, index r) and kf along columns, zero outside.
func convSeparable(a []float64, rows, cols int, kt, kf []float64) []float64 {
	tmp := make([]float64, len(a))
	hf := len(kf) / 2
	parallelFor(rows, cols*len(kf), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src := a[r*cols : (r+1)*cols]
			dst := tmp[r*cols : (r+1)*cols]
			for c := range cols {
				var s float64
				for k, w := range kf {
					j := c + k - hf
					if j >= 0 && j < cols {
						s += w * src[j]
					}
				}
				dst[c] = s
			}
		}
	})
	out := make([]float64, len(a))
	ht := len(kt) / 2
	parallelFor(rows, cols*len(kt), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dst := out[r*cols : (r+1)*cols]
			for k, w := range kt {
				j := r + k - ht
				if j < 0 || j >= rows {
					continue
				}
				src := tmp[j*cols : (j+1)*cols]
				for c := range dst {
					dst[c] += w * src[c]
				}
			}
		}
	})
	return out
}

// lowPassPlanes filters several planes sharing one mask (nil = none).
func lowPassPlanes(planes [][]float64, mask []bool, T, C int, c LowPassConfig) [][]float64 {
	ds := c.Downsample
	Td, Cd := (T+ds-1)/ds, (C+ds-1)/ds
	w := make([]float64, Td*Cd)
	sums := make([][]float64, len(planes))
	for i := range sums {
		sums[i] = make([]float64, Td*Cd)
	}
	var tot float64
	totals := make([]float64, len(planes))
	for t := range T {
		rd := (t / ds) * Cd
		for ch := range C {
			j := t*C + ch
			if mask != nil && mask[j] {
				continue
			}
			k := rd + ch/ds
			w[k]++
			tot++
			for i, pl := range planes {
				sums[i][k] += pl[j]
				totals[i] += pl[j]
			}
		}
	}
	kt, kf := gaussKernel(c.KernelTime, c.SigmaTime), gaussKernel(c.KernelFreq, c.SigmaFreq)
	den := convSeparable(w, Td, Cd, kt, kf)
	out := make([][]float64, len(planes))
	// Weights below this fraction of the kernel's peak response mean no
	// unflagged data nearby: use the global mean there.
	floor := 1e-6
	for i := range planes {
		num := convSeparable(sums[i], Td, Cd, kt, kf)
		fallback := 0.0
		if tot > 0 {
			fallback = totals[i] / tot
		}
		small := make([]float64, Td*Cd)
		for k := range small {
			if den[k] > floor {
				small[k] = num[k] / den[k]
			} else {
				small[k] = fallback
			}
		}
		out[i] = upsample(small, Td, Cd, T, C, ds)
	}
	return out
}

// upsample interpolates a Td × Cd grid of block means (block centres at
// i*ds + (ds-1)/2) bilinearly onto T × C samples.
func upsample(small []float64, Td, Cd, T, C, ds int) []float64 {
	if ds == 1 {
		return small
	}
	out := make([]float64, T*C)
	off := float64(ds-1) / 2
	ci0 := make([]int, C)
	cf := make([]float64, C)
	for ch := range C {
		u := (float64(ch) - off) / float64(ds)
		u = min(max(u, 0), float64(Cd-1))
		i0 := min(int(u), Cd-1)
		ci0[ch], cf[ch] = i0, u-float64(i0)
	}
	parallelFor(T, C*4, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			v := (float64(t) - off) / float64(ds)
			v = min(max(v, 0), float64(Td-1))
			r0 := min(int(v), Td-1)
			fr := v - float64(r0)
			r1 := min(r0+1, Td-1)
			a, b := small[r0*Cd:(r0+1)*Cd], small[r1*Cd:(r1+1)*Cd]
			dst := out[t*C : (t+1)*C]
			for ch := range dst {
				i0 := ci0[ch]
				i1 := min(i0+1, Cd-1)
				f := cf[ch]
				top := a[i0] + f*(a[i1]-a[i0])
				bot := b[i0] + f*(b[i1]-b[i0])
				dst[ch] = top + fr*(bot-top)
			}
		}
	})
	return out
}
