package anomaly

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/cosmic-horizons/horizons/internal/robust"
)

// MADToSigma converts a median absolute deviation into a Gaussian sigma
// (1/Φ⁻¹(3/4); CASA's robust rms uses the same constant).
const MADToSigma = 1.4826

// BackgroundConfig configures the background and rms maps. Zero values
// take the documented defaults.
type BackgroundConfig struct {
	// Box is the side of the square box, in pixels, over which each node's
	// median and MAD are computed (default 32; at least 4; clipped to the
	// image).
	Box int
	// Step is the spacing of the nodes, in pixels (default Box/2); the maps
	// are bilinearly interpolated between nodes.
	Step int
	// ClipSigma rejects pixels further than this many robust sigmas from
	// the median before the final estimate, so sources do not inflate the
	// rms (default 3; negative disables clipping).
	ClipSigma float64
	// ClipIterations is the number of clipping passes (default 3).
	ClipIterations int
	// Stride samples every Stride-th row and column inside a box (default
	// 2 for boxes of 16 pixels or more, else 1): noise correlated on the
	// beam scale makes neighbouring pixels nearly redundant, so this
	// quarters the work at little cost in accuracy.
	Stride int
}

func (c *BackgroundConfig) withDefaults() (BackgroundConfig, error) {
	var o BackgroundConfig
	if c != nil {
		o = *c
	}
	if o.Box == 0 {
		o.Box = 32
	}
	if o.Box < 4 {
		return o, fmt.Errorf("%w: Box = %d: must be >= 4 pixels", ErrBadConfig, o.Box)
	}
	if o.Step == 0 {
		o.Step = max(o.Box/2, 1)
	}
	if o.Step < 1 {
		return o, fmt.Errorf("%w: Step = %d: must be >= 1 pixel", ErrBadConfig, o.Step)
	}
	if o.ClipSigma == 0 {
		o.ClipSigma = 3
	}
	if math.IsNaN(o.ClipSigma) || (o.ClipSigma > 0 && o.ClipSigma < 1.5) {
		return o, fmt.Errorf("%w: ClipSigma = %v: must be >= 1.5, or negative to disable", ErrBadConfig, o.ClipSigma)
	}
	if o.ClipIterations == 0 {
		o.ClipIterations = 3
	}
	if o.ClipIterations < 0 || o.ClipIterations > 50 {
		return o, fmt.Errorf("%w: ClipIterations = %d: must be within 1..50", ErrBadConfig, o.ClipIterations)
	}
	if o.Stride == 0 {
		o.Stride = 1
		if o.Box >= 16 {
			o.Stride = 2
		}
	}
	if o.Stride < 1 || o.Stride > o.Box/4 && o.Stride > 1 {
		return o, fmt.Errorf("%w: Stride = %d: must be within 1..Box/4 (%d)", ErrBadConfig, o.Stride, o.Box/4)
	}
	return o, nil
}

// Maps holds the background and rms maps of an image, pixel for pixel.
type Maps struct {
	Width, Height int
	// Background is the robust local level in Jy/beam.
	Background []float64
	// RMS is the robust local noise, 1.4826·MAD, in Jy/beam.
	RMS []float64
}

// MedianRMS returns the median of the rms map.
func (m *Maps) MedianRMS() float64 {
	return median(slices.Clone(m.RMS))
}

// BackgroundRMS computes the background and rms maps of im: on a grid of
// nodes Step pixels apart, the sigma-clipped median and 1.4826·MAD of the
// Box×Box pixels around each node, bilinearly interpolated to every pixel.
// Nodes are computed on all cores.
func BackgroundRMS(ctx context.Context, im *Image, cfg *BackgroundConfig) (*Maps, error) {
	if err := im.Validate("image"); err != nil {
		return nil, err
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	w, h := im.Width, im.Height
	xs, ys := nodes(w, c.Step), nodes(h, c.Step)
	nb := make([]float64, len(xs)*len(ys))
	nr := make([]float64, len(xs)*len(ys))
	half := c.Box / 2
	var firstErr error
	var mu sync.Mutex
	parallel(len(ys), func(j0, j1 int) {
		buf := make([]float64, 0, c.Box*c.Box)
		for j := j0; j < j1; j++ {
			if ctx.Err() != nil {
				return
			}
			y0, y1 := clampBox(ys[j], half, c.Box, h)
			for i, x := range xs {
				x0, x1 := clampBox(x, half, c.Box, w)
				buf = buf[:0]
				for y := y0; y < y1; y += c.Stride {
					row := im.Pix[y*w+x0 : y*w+x1]
					if c.Stride == 1 {
						buf = append(buf, row...)
						continue
					}
					for i := 0; i < len(row); i += c.Stride {
						buf = append(buf, row[i])
					}
				}
				b, r := robustStats(buf, c.ClipSigma, c.ClipIterations)
				if !(r > 0) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%w: box around pixel (%d, %d) has zero robust rms (constant or blanked data)", ErrBadImage, x, ys[j])
					}
					mu.Unlock()
				}
				nb[j*len(xs)+i], nr[j*len(xs)+i] = b, r
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	m := &Maps{Width: w, Height: h, Background: make([]float64, w*h), RMS: make([]float64, w*h)}
	parallel(h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			j, fy := locate(ys, y)
			for x := 0; x < w; x++ {
				i, fx := locate(xs, x)
				m.Background[y*w+x] = bilinear(nb, len(xs), i, j, fx, fy)
				m.RMS[y*w+x] = bilinear(nr, len(xs), i, j, fx, fy)
			}
		}
	})
	return m, nil
}

// nodes returns node positions 0, step, 2·step, ... and always n-1.
func nodes(n, step int) []int {
	var out []int
	for p := 0; p < n-1; p += step {
		out = append(out, p)
	}
	return append(out, n-1)
}

// clampBox returns [lo, hi) of a box of side box centred on p inside [0, n).
func clampBox(p, half, box, n int) (int, int) {
	if box >= n {
		return 0, n
	}
	lo := p - half
	lo = max(0, min(lo, n-box))
	return lo, lo + box
}

// locate returns the node interval containing p and the fraction along it.
func locate(ns []int, p int) (int, float64) {
	if len(ns) == 1 {
		return 0, 0
	}
	i, _ := slices.BinarySearch(ns, p)
	if i < len(ns) && ns[i] == p {
		if i == len(ns)-1 {
			return i - 1, 1
		}
		return i, 0
	}
	i--
	return i, float64(p-ns[i]) / float64(ns[i+1]-ns[i])
}

func bilinear(g []float64, nx, i, j int, fx, fy float64) float64 {
	i1, j1 := i, j
	if fx > 0 || i+1 < nx {
		i1 = min(i+1, nx-1)
	}
	ny := len(g) / nx
	if fy > 0 || j+1 < ny {
		j1 = min(j+1, ny-1)
	}
	a := g[j*nx+i]*(1-fx) + g[j*nx+i1]*fx
	b := g[j1*nx+i]*(1-fx) + g[j1*nx+i1]*fx
	return a*(1-fy) + b*fy
}

// robustStats returns the sigma-clipped median and 1.4826·MAD of v (which
// it reorders). Clipping at k sigma truncates a Gaussian, which shrinks the
// MAD slightly; the rms is corrected for that.
func robustStats(v []float64, k float64, iters int) (med, rms float64) {
	work := v
	dev := make([]float64, len(v))
	med = median(work)
	rms = MADToSigma * mad(work, med, dev)
	if k <= 0 {
		return med, rms
	}
	for it := 0; it < iters && rms > 0; it++ {
		kept := work[:0]
		lo, hi := med-k*rms, med+k*rms
		for _, x := range work {
			if x >= lo && x <= hi {
				kept = append(kept, x)
			}
		}
		if len(kept) == 0 {
			break
		}
		n := len(work)
		work = kept
		med = median(work)
		rms = MADToSigma * mad(work, med, dev) * clipCorrection(k)
		if len(kept) == n {
			break
		}
	}
	return med, rms
}

// clipCorrection is the factor restoring the Gaussian sigma from the MAD of
// a Gaussian truncated at ±k sigma: the MAD of the truncated distribution
// is q with 2Φ(q)-1 = (2Φ(k)-1)/2, against 0.6745 untruncated.
func clipCorrection(k float64) float64 {
	p := math.Erf(k/math.Sqrt2) / 2 // P(|x| < q) for the truncated half
	q := math.Sqrt2 * math.Erfinv(p)
	return 0.6744897501960817 / q
}

func mad(v []float64, med float64, dev []float64) float64 {
	d := dev[:len(v)]
	for i, x := range v {
		d[i] = math.Abs(x - med)
	}
	return median(d)
}

// median returns the median of v, reordering it (quickselect).
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return math.NaN()
	}
	k := n / 2
	hi := robust.Select(v, k)
	if n%2 == 1 {
		return hi
	}
	lo := v[0]
	for _, x := range v[:k] {
		lo = max(lo, x)
	}
	return (lo + hi) / 2
}

// parallel splits [0, n) into contiguous chunks run on all cores.
func parallel(n int, f func(i0, i1 int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for i := 0; i < n; i += chunk {
		wg.Add(1)
		go func(i0, i1 int) {
			defer wg.Done()
			f(i0, i1)
		}(i, min(i+chunk, n))
	}
	wg.Wait()
}
