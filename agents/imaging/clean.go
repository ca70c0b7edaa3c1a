package imaging

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/cosmic-horizons/horizons/internal/robust"
)

// CleanConfig controls one run of the Högbom minor cycle.
type CleanConfig struct {
	// Gain is the loop gain (0, 1]; 0 means 0.1.
	Gain float64
	// Threshold stops cleaning when the residual peak |value| is below it
	// (Jy/beam); 0 means clean until Niter.
	Threshold float64
	// Niter is the maximum number of iterations; must be >= 0.
	Niter int
	// Workers splits each iteration's PSF subtraction and peak search over
	// rows; <= 0 means 1.
	Workers int
}

// Hogbom runs Högbom CLEAN on residual in place, adding components to
// model (Jy per pixel): repeatedly find the peak |residual|, add gain·peak
// to the model there and subtract gain·peak times the PSF centred on it
// (the PSF is n×n or 2n×2n with its peak at its centre; a 2n PSF covers
// every shift, with an n PSF the part of the shifted PSF outside it is
// ignored). It returns the iterations done and the
// final peak |residual|. ctx is checked every 64 iterations.
func Hogbom(ctx context.Context, residual, psf, model *Image, cfg CleanConfig) (int, float64, error) {
	if residual == nil || psf == nil || model == nil {
		return 0, 0, fmt.Errorf("%w: Hogbom needs residual, psf and model images", ErrInput)
	}
	n := residual.N
	pn := psf.N
	if (pn != n && pn != 2*n) || model.N != n || len(residual.Pix) != n*n || len(psf.Pix) != pn*pn || len(model.Pix) != n*n {
		return 0, 0, fmt.Errorf("%w: Hogbom image sizes differ: residual %d, psf %d, model %d", ErrInput, residual.N, psf.N, model.N)
	}
	g := cfg.Gain
	if g == 0 {
		g = 0.1
	}
	if !(g > 0 && g <= 1) {
		return 0, 0, fmt.Errorf("%w: gain = %v: must be in (0, 1]", ErrConfig, cfg.Gain)
	}
	if cfg.Niter < 0 {
		return 0, 0, fmt.Errorf("%w: niter = %d: must be >= 0", ErrConfig, cfg.Niter)
	}
	if !(cfg.Threshold >= 0) {
		return 0, 0, fmt.Errorf("%w: threshold = %v: must be >= 0", ErrConfig, cfg.Threshold)
	}
	workers := cfg.Workers
	if workers < 1 || n < 256 {
		workers = 1
	}
	res, p := residual.Pix, psf.Pix
	type peak struct {
		idx int
		abs float64
	}
	// scan subtracts comp·psf shifted to (px, py) over rows [y0, y1) (comp
	// may be 0 for a pure search) and returns the peak of those rows.
	scan := func(y0, y1, px, py int, comp float64) peak {
		bestIdx, bestAbs := -1, 0.0
		for y := y0; y < y1; y++ {
			row := res[y*n : (y+1)*n]
			if comp != 0 {
				sy := y - py + pn/2
				if sy >= 0 && sy < pn {
					xa, xb := max(0, px-pn/2), min(n, px+pn/2)
					prow := p[sy*pn : (sy+1)*pn]
					d := pn/2 - px
					for x := xa; x < xb; x++ {
						row[x] -= comp * prow[x+d]
					}
				}
			}
			for x, v := range row {
				if a := math.Abs(v); a > bestAbs {
					bestAbs, bestIdx = a, y*n+x
				}
			}
		}
		return peak{bestIdx, bestAbs}
	}
	step := func(px, py int, comp float64) peak {
		if workers == 1 {
			return scan(0, n, px, py, comp)
		}
		parts := make([]peak, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				parts[w] = scan(w*n/workers, (w+1)*n/workers, px, py, comp)
			}(w)
		}
		wg.Wait()
		best := parts[0]
		for _, q := range parts[1:] {
			if q.abs > best.abs {
				best = q
			}
		}
		return best
	}
	cur := step(0, 0, 0)
	it := 0
	for ; it < cfg.Niter && cur.idx >= 0 && cur.abs >= cfg.Threshold && cur.abs > 0; it++ {
		if it&63 == 0 {
			if err := ctx.Err(); err != nil {
				return it, cur.abs, err
			}
		}
		comp := g * res[cur.idx]
		model.Pix[cur.idx] += comp
		cur = step(cur.idx%n, cur.idx/n, comp)
	}
	return it, cur.abs, nil
}

// RobustRMS returns 1.4826 times the median absolute deviation from the
// median of pix (the robust sigma CASA's nsigma uses); 0 for an empty
// slice. Above 2^18 values it uses an evenly strided sample of at least
// 2^18 of them (a relative error of about 0.3 %).
func RobustRMS(pix []float64) float64 {
	if len(pix) == 0 {
		return 0
	}
	stride := max(1, len(pix)>>18)
	buf := make([]float64, 0, len(pix)/stride+1)
	for i := 0; i < len(pix); i += stride {
		buf = append(buf, pix[i])
	}
	med := robust.Select(buf, len(buf)/2)
	for i := range buf {
		buf[i] = math.Abs(pix[i*stride] - med)
	}
	return 1.4826 * robust.Select(buf, len(buf)/2)
}
