package imaging

import (
	"context"
	"fmt"
	"math"
)

// clarkPatch chooses the Clark beam patch for an n-pixel image: a
// half-width of three restoring-beam major axes (at least 8 pixels, at
// most n/2), and returns it with the largest |PSF| outside the patch.
func clarkPatch(psf *Image, b Beam, n int) (half int, outside float64) {
	half = int(math.Ceil(3 * b.MajorArcsec / psf.CellArcsec))
	half = max(8, min(half, n/2))
	pn, c := psf.N, psf.N/2
	for y := max(0, c-n); y < min(pn, c+n); y++ {
		for x := max(0, c-n); x < min(pn, c+n); x++ {
			if abs(x-c) <= half && abs(y-c) <= half {
				continue
			}
			outside = math.Max(outside, math.Abs(psf.Pix[y*pn+x]))
		}
	}
	return half, outside
}

// Clark runs one Clark minor cycle (Clark 1980): the residual pixels with
// |value| >= cfg.Threshold form a list, and Högbom iterations run on the
// list only, subtracting the PSF patch of half-width patch pixels around
// each component from the listed pixels. The residual image itself is not
// updated (a major cycle recomputes it from the visibilities); model gets
// the components. It returns the iterations done.
func Clark(ctx context.Context, residual, psf, model *Image, cfg CleanConfig, patch int) (int, error) {
	if residual == nil || psf == nil || model == nil {
		return 0, fmt.Errorf("%w: Clark needs residual, psf and model images", ErrInput)
	}
	n, pn := residual.N, psf.N
	if (pn != n && pn != 2*n) || model.N != n || len(residual.Pix) != n*n || len(psf.Pix) != pn*pn || len(model.Pix) != n*n {
		return 0, fmt.Errorf("%w: Clark image sizes differ: residual %d, psf %d, model %d", ErrInput, residual.N, psf.N, model.N)
	}
	g := cfg.Gain
	if g == 0 {
		g = 0.1
	}
	if !(g > 0 && g <= 1) || cfg.Niter < 0 || !(cfg.Threshold > 0) || patch < 1 {
		return 0, fmt.Errorf("%w: Clark gain %v, niter %d, threshold %v, patch %d: want gain in (0,1], niter >= 0, threshold > 0, patch >= 1", ErrConfig, cfg.Gain, cfg.Niter, cfg.Threshold, patch)
	}
	var idx []int
	var val []float64
	for i, v := range residual.Pix {
		if math.Abs(v) >= cfg.Threshold {
			idx = append(idx, i)
			val = append(val, v)
		}
	}
	c := pn / 2
	it := 0
	for ; it < cfg.Niter; it++ {
		if it&255 == 0 {
			if err := ctx.Err(); err != nil {
				return it, err
			}
		}
		best, bestAbs := -1, 0.0
		for k, v := range val {
			if a := math.Abs(v); a > bestAbs {
				best, bestAbs = k, a
			}
		}
		if best < 0 || bestAbs < cfg.Threshold {
			break
		}
		comp := g * val[best]
		model.Pix[idx[best]] += comp
		px, py := idx[best]%n, idx[best]/n
		for k, i := range idx {
			dx, dy := i%n-px, i/n-py
			if abs(dx) > patch || abs(dy) > patch {
				continue
			}
			sx, sy := c+dx, c+dy
			if sx < 0 || sy < 0 || sx >= pn || sy >= pn {
				continue
			}
			val[k] -= comp * psf.Pix[sy*pn+sx]
		}
	}
	return it, nil
}
