package imaging

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// DeconvMultiscale is multiscale CLEAN (Cornwell 2008) inside
// Cotton–Schwab major cycles.
const DeconvMultiscale = "multiscale"

// MultiscaleConfig controls one run of the multiscale minor cycle
// ([MultiscaleClean]).
type MultiscaleConfig struct {
	// Scales are the component widths (Gaussian FWHM) in pixels; 0 is a
	// point (delta) component and is always included. nil means the
	// default: 0, 2 and 4 beam widths (BeamPixels).
	Scales []float64
	// BeamPixels is the restoring beam FWHM in pixels, used for the
	// default Scales; must be positive when Scales is nil.
	BeamPixels float64
	// SmallScaleBias b weights the peak of scale s by 1 - b·s/s_max
	// (Cornwell 2008), favouring small scales; 0 means 0.6, use a negative
	// value for no bias (b = 0). At most 1.
	SmallScaleBias float64
	// Gain is the loop gain (0, 1]; 0 means 0.1.
	Gain float64
	// Threshold stops cleaning when the (unsmoothed) residual peak |value|
	// is below it (Jy/beam); 0 means clean until Niter.
	Threshold float64
	// Niter is the maximum number of iterations; must be >= 0.
	Niter int
	// Workers parallelises the FFTs; <= 0 means 1.
	Workers int
}

// ScaleStats counts the components and flux a multiscale run put at each
// scale.
type ScaleStats struct {
	Scale      float64 `json:"scale_pixels"`
	Components int     `json:"components"`
	FluxJy     float64 `json:"flux_jy"`
}

const gaussFWHM = 2.3548200450309493

func (c *MultiscaleConfig) scales() ([]float64, error) {
	s := c.Scales
	if s == nil {
		if !(c.BeamPixels > 0) || math.IsInf(c.BeamPixels, 0) {
			return nil, fmt.Errorf("%w: multiscale BeamPixels = %v: must be positive when Scales is nil", ErrConfig, c.BeamPixels)
		}
		s = []float64{0, 2 * c.BeamPixels, 4 * c.BeamPixels}
	}
	out := []float64{0}
	for i, v := range s {
		if !(v >= 0) || math.IsInf(v, 0) || v > 1000 {
			return nil, fmt.Errorf("%w: multiscale Scales[%d] = %v: must be in [0, 1000] pixels", ErrConfig, i, v)
		}
		if v > 0 {
			out = append(out, v)
		}
	}
	sort.Float64s(out)
	uniq := out[:1]
	for _, v := range out[1:] {
		if v != uniq[len(uniq)-1] {
			uniq = append(uniq, v)
		}
	}
	return uniq, nil
}

// smoothFFT convolves the m×m image in with unit-sum Gaussians of the
// given sigmas (pixels, 0 = identity) by multiplying its transform with
// the Gaussian transfer function exp(-2π²σ²f²); the convolution is
// circular, so callers pad.
func smoothFFT(in []float64, m int, sigmas []float64, workers int) ([][]float64, error) {
	ft := make([]complex128, m*m)
	for i, v := range in {
		ft[i] = complex(v, 0)
	}
	if err := FFT2(ft, m, false, workers); err != nil {
		return nil, err
	}
	f2 := make([]float64, m) // squared frequency per index, cycles/pixel
	for k := range f2 {
		f := float64(k)
		if k > m/2 {
			f -= float64(m)
		}
		f /= float64(m)
		f2[k] = f * f
	}
	out := make([][]float64, len(sigmas))
	buf := make([]complex128, m*m)
	for si, s := range sigmas {
		a := -2 * math.Pi * math.Pi * s * s
		ex := make([]float64, m)
		for k := range ex {
			ex[k] = math.Exp(a * f2[k])
		}
		for y := 0; y < m; y++ {
			for x := 0; x < m; x++ {
				buf[y*m+x] = ft[y*m+x] * complex(ex[x]*ex[y]/float64(m*m), 0)
			}
		}
		if err := FFT2(buf, m, true, workers); err != nil {
			return nil, err
		}
		o := make([]float64, m*m)
		for i, v := range buf {
			o[i] = real(v)
		}
		out[si] = o
	}
	return out, nil
}

// MultiscaleClean runs multiscale CLEAN (Cornwell 2008, IEEE JSTSP 2, 793)
// on residual in place, adding components to model (Jy per pixel). The
// residual is smoothed with each scale's unit-sum Gaussian and the PSF
// with every pair of scales. Each iteration finds, for every scale, the
// peak |smoothed residual| R_s divided by sqrt(B_ss(0)) (the drop in the
// residual's squared norm a component there would give) times the scale
// bias 1 - b·s/s_max, takes the best scale s and position p, adds a Gaussian of scale s and total flux
// gain · R_s(p) / B_ss(0) at p to the model, and subtracts that
// component's response (the PSF smoothed by s and t) from every smoothed
// residual t. It stops at Niter or when the unsmoothed residual peak is
// below Threshold, and returns the iterations done, the final peak
// |residual| and per-scale statistics. The PSF is n×n or 2n×2n with its
// peak at the centre, as for [Hogbom]. ctx is checked every 16 iterations.
func MultiscaleClean(ctx context.Context, residual, psf, model *Image, cfg MultiscaleConfig) (int, float64, []ScaleStats, error) {
	if residual == nil || psf == nil || model == nil {
		return 0, 0, nil, fmt.Errorf("%w: MultiscaleClean needs residual, psf and model images", ErrInput)
	}
	n, pn := residual.N, psf.N
	if (pn != n && pn != 2*n) || model.N != n || len(residual.Pix) != n*n || len(psf.Pix) != pn*pn || len(model.Pix) != n*n || n < 2 {
		return 0, 0, nil, fmt.Errorf("%w: MultiscaleClean image sizes differ: residual %d, psf %d, model %d", ErrInput, residual.N, psf.N, model.N)
	}
	g := cfg.Gain
	if g == 0 {
		g = 0.1
	}
	if !(g > 0 && g <= 1) {
		return 0, 0, nil, fmt.Errorf("%w: gain = %v: must be in (0, 1]", ErrConfig, cfg.Gain)
	}
	if cfg.Niter < 0 {
		return 0, 0, nil, fmt.Errorf("%w: niter = %d: must be >= 0", ErrConfig, cfg.Niter)
	}
	if !(cfg.Threshold >= 0) || math.IsInf(cfg.Threshold, 0) {
		return 0, 0, nil, fmt.Errorf("%w: threshold = %v: must be >= 0 and finite", ErrConfig, cfg.Threshold)
	}
	bias := cfg.SmallScaleBias
	switch {
	case bias == 0:
		bias = 0.6
	case bias < 0:
		bias = 0
	}
	if bias > 1 || math.IsNaN(bias) {
		return 0, 0, nil, fmt.Errorf("%w: SmallScaleBias = %v: must be at most 1", ErrConfig, cfg.SmallScaleBias)
	}
	scales, err := cfg.scales()
	if err != nil {
		return 0, 0, nil, err
	}
	for _, v := range residual.Pix {
		if !finite(v) {
			return 0, 0, nil, fmt.Errorf("%w: residual has a non-finite pixel %v", ErrInput, v)
		}
	}
	ns := len(scales)
	sig := make([]float64, ns)
	for i, s := range scales {
		sig[i] = s / gaussFWHM
	}
	smax := scales[ns-1]
	weight := make([]float64, ns)
	for i, s := range scales {
		weight[i] = 1
		if smax > 0 {
			weight[i] = 1 - bias*s/smax
		}
	}
	// Smoothed residuals R_t (the residual padded to 2n to keep the
	// circular convolution from wrapping).
	m := 2 * n
	pad := make([]float64, m*m)
	off := n / 2
	for y := 0; y < n; y++ {
		copy(pad[(y+off)*m+off:(y+off)*m+off+n], residual.Pix[y*n:(y+1)*n])
	}
	rp, err := smoothFFT(pad, m, sig, cfg.Workers)
	if err != nil {
		return 0, 0, nil, err
	}
	R := make([][]float64, ns)
	R[0] = residual.Pix
	for t := 1; t < ns; t++ {
		R[t] = make([]float64, n*n)
		for y := 0; y < n; y++ {
			copy(R[t][y*n:(y+1)*n], rp[t][(y+off)*m+off:(y+off)*m+off+n])
		}
	}
	// PSFs smoothed by scale pairs: Gaussians compose, so B_st is the PSF
	// smoothed with sqrt(σs² + σt²).
	pairSig := make([]float64, 0, ns*(ns+1)/2)
	pairIdx := make([][]int, ns)
	for s := range ns {
		pairIdx[s] = make([]int, ns)
	}
	for s := 0; s < ns; s++ {
		for t := s; t < ns; t++ {
			pairIdx[s][t], pairIdx[t][s] = len(pairSig), len(pairSig)
			pairSig = append(pairSig, math.Hypot(sig[s], sig[t]))
		}
	}
	B, err := smoothFFT(psf.Pix, pn, pairSig, cfg.Workers)
	if err != nil {
		return 0, 0, nil, err
	}
	B[0] = psf.Pix // exact delta-delta PSF
	c := pn / 2
	// A component of scale s at the peak of R_s reduces the residual's
	// squared norm by about R_s² / B_ss(0): scales compete on
	// |R_s| / sqrt(B_ss(0)), times the small-scale bias.
	norm := make([]float64, ns)
	for s := range ns {
		bss := B[pairIdx[s][s]][c*pn+c]
		if !(bss > 0) {
			return 0, 0, nil, fmt.Errorf("%w: PSF smoothed at scale %v has peak %v", ErrInput, scales[s], bss)
		}
		norm[s] = weight[s] / math.Sqrt(bss)
	}
	// Model kernels (unit sum), truncated at 4σ.
	type kern struct {
		half int
		w    []float64
	}
	kerns := make([]kern, ns)
	for s := range ns {
		if sig[s] == 0 {
			kerns[s] = kern{0, []float64{1}}
			continue
		}
		h := int(math.Ceil(4 * sig[s]))
		w := make([]float64, (2*h+1)*(2*h+1))
		sum := 0.0
		for y := -h; y <= h; y++ {
			for x := -h; x <= h; x++ {
				v := math.Exp(-float64(x*x+y*y) / (2 * sig[s] * sig[s]))
				w[(y+h)*(2*h+1)+x+h] = v
				sum += v
			}
		}
		for i := range w {
			w[i] /= sum
		}
		kerns[s] = kern{h, w}
	}
	stats := make([]ScaleStats, ns)
	for s := range ns {
		stats[s].Scale = scales[s]
	}
	peakOf := func(a []float64) (int, float64) {
		bi, bv := -1, 0.0
		for i, v := range a {
			if av := math.Abs(v); av > bv {
				bi, bv = i, av
			}
		}
		return bi, bv
	}
	it := 0
	_, peak0 := peakOf(R[0])
	for ; it < cfg.Niter && peak0 > 0 && peak0 >= cfg.Threshold; it++ {
		if it&15 == 0 {
			if err := ctx.Err(); err != nil {
				return it, peak0, stats, err
			}
		}
		bs, bp, best := -1, -1, 0.0
		for s := range ns {
			i, v := peakOf(R[s])
			if i >= 0 && v*norm[s] > best {
				bs, bp, best = s, i, v*norm[s]
			}
		}
		if bs < 0 {
			break
		}
		alpha := g * R[bs][bp] / B[pairIdx[bs][bs]][c*pn+c]
		px, py := bp%n, bp/n
		k := kerns[bs]
		kw := 2*k.half + 1
		for y := max(0, py-k.half); y < min(n, py+k.half+1); y++ {
			for x := max(0, px-k.half); x < min(n, px+k.half+1); x++ {
				model.Pix[y*n+x] += alpha * k.w[(y-py+k.half)*kw+x-px+k.half]
			}
		}
		stats[bs].Components++
		stats[bs].FluxJy += alpha
		for t := range ns {
			bst := B[pairIdx[bs][t]]
			rt := R[t]
			for y := 0; y < n; y++ {
				sy := y - py + c
				if sy < 0 || sy >= pn {
					continue
				}
				row := rt[y*n : (y+1)*n]
				prow := bst[sy*pn : (sy+1)*pn]
				d := c - px
				for x := max(0, px-c); x < min(n, px+c); x++ {
					row[x] -= alpha * prow[x+d]
				}
			}
		}
		_, peak0 = peakOf(R[0])
	}
	return it, peak0, stats, nil
}
