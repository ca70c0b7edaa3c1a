package imaging

import (
	"context"
	"math"
	"sync"
	"time"
)

// DeconvMTMFS is multi-term multi-frequency synthesis CLEAN with two Taylor
// terms (Rau & Cornwell 2011, nterms = 2) inside Cotton–Schwab major
// cycles: it models each component's flux and spectral slope, so the
// spectral index is recovered over a wide band such as VLASS's 2–4 GHz.
const DeconvMTMFS = "mtmfs"

// taylorX returns (ν - ν0)/ν0 per channel, ν0 the centre of the band.
func taylorX(freqs []float64) (x []float64, ref float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range freqs {
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	ref = (lo + hi) / 2
	x = make([]float64, len(freqs))
	for i, f := range freqs {
		x[i] = (f - ref) / ref
	}
	return x, ref
}

// mtmfs runs two-term MT-MFS: Taylor-weighted residuals R0 and R1, PSFs
// B0, B1, B2 (weights x^0, x^1, x^2 with x = (ν-ν0)/ν0), and in each
// minor-cycle iteration the pixel whose 2×2 Hessian solution a = H⁻¹R
// reduces χ² most (a·R largest) gets components gain·a in the two model
// terms, with both residuals updated through the PSF terms. Major cycles
// predict model0 + x·model1 per channel.
func (m *imager) mtmfs(ctx context.Context, residual, psf0, model *Image, res *Result) error {
	n := residual.N
	nch := len(m.vis.FreqHz)
	xc, ref := taylorX(m.vis.FreqHz)
	res.RefFreqHz = ref
	xv := make([]complex128, len(m.vis.Data)) // x per visibility
	for i := range xv {
		xv[i] = complex(xc[i%nch], 0)
	}
	// PSF terms at psf0's size.
	pm := m
	if psf0.N != n {
		pm = &imager{cfg: m.cfg, gr: m.gr.doubled(), vis: m.vis, tm: m.tm}
	}
	pn := psf0.N
	psfTerm := func(pow int) *Image {
		d := make([]complex128, len(m.vis.Data))
		for i := range d {
			d[i] = complex(math.Pow(xc[i%nch], float64(pow)), 0)
		}
		im := NewImage(pn, residual.CellArcsec)
		pm.image(d, im.Pix)
		return im
	}
	// The PSF term images share psf0's normalisation (its centre was 1
	// before rounding): normalise by the unnormalised x^0 PSF's peak.
	b0raw := NewImage(pn, residual.CellArcsec)
	pm.image(nil, b0raw.Pix)
	pnorm := b0raw.Pix[(pn/2)*pn+pn/2]
	b1, b2 := psfTerm(1), psfTerm(2)
	for i := range b1.Pix {
		b1.Pix[i] /= pnorm
		b2.Pix[i] /= pnorm
	}
	B := [3][]float64{psf0.Pix, b1.Pix, b2.Pix}
	c := pn / 2
	h00, h01, h11 := 1.0, b1.Pix[c*pn+c], b2.Pix[c*pn+c]
	det := h00*h11 - h01*h01
	if !(det > 1e-12) {
		// No spectral leverage (one channel, or x ≈ 0): plain Cotton–Schwab.
		return m.majorCycles(ctx, residual, psf0, model, res, false)
	}
	i00, i01, i11 := h11/det, -h01/det, h00/det

	model1 := NewImage(n, residual.CellArcsec)
	r1 := NewImage(n, residual.CellArcsec)
	data1 := make([]complex128, len(m.vis.Data))
	for i, d := range m.vis.Data {
		data1[i] = d * xv[i]
	}
	m.image(data1, r1.Pix)
	for i := range r1.Pix {
		r1.Pix[i] /= m.norm
	}
	R0, R1 := residual.Pix, r1.Pix
	resid := make([]complex128, len(m.vis.Data))
	p0 := make([]complex128, len(m.vis.Data))
	p1 := make([]complex128, len(m.vis.Data))
	g := m.cfg.Gain
	peakAbs := func(a []float64) float64 {
		p := 0.0
		for _, v := range a {
			p = math.Max(p, math.Abs(v))
		}
		return p
	}
	// scan subtracts the component (c0, c1) at (px, py) from rows [y0, y1)
	// of both residuals (when c0 or c1 is not 0) and returns, for those
	// rows, the pixel with the largest chi-square drop a·R, its Hessian
	// solution and the peak |R0|.
	type best struct {
		idx      int
		score    float64
		a0, a1   float64
		peakAbs0 float64
	}
	scan := func(y0, y1, px, py int, c0, c1 float64) best {
		b := best{idx: -1, score: -1}
		d := c - px
		xa, xb := max(0, px-c), min(n, px+c)
		for y := y0; y < y1; y++ {
			r0, r1 := R0[y*n:(y+1)*n], R1[y*n:(y+1)*n]
			if c0 != 0 || c1 != 0 {
				if sy := y - py + c; sy >= 0 && sy < pn {
					q0, q1, q2 := B[0][sy*pn:(sy+1)*pn], B[1][sy*pn:(sy+1)*pn], B[2][sy*pn:(sy+1)*pn]
					for x := xa; x < xb; x++ {
						r0[x] -= c0*q0[x+d] + c1*q1[x+d]
						r1[x] -= c0*q1[x+d] + c1*q2[x+d]
					}
				}
			}
			for x, v0 := range r0 {
				v1 := r1[x]
				a0 := i00*v0 + i01*v1
				a1 := i01*v0 + i11*v1
				if sc := a0*v0 + a1*v1; sc > b.score {
					b = best{y*n + x, sc, a0, a1, b.peakAbs0}
				}
				if av := math.Abs(v0); av > b.peakAbs0 {
					b.peakAbs0 = av
				}
			}
		}
		return b
	}
	workers := m.cfg.Workers
	if workers < 1 || n < 256 {
		workers = 1
	}
	step := func(px, py int, c0, c1 float64) best {
		if workers == 1 {
			return scan(0, n, px, py, c0, c1)
		}
		parts := make([]best, workers)
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				parts[w] = scan(w*n/workers, (w+1)*n/workers, px, py, c0, c1)
			}(w)
		}
		wg.Wait()
		out := parts[0]
		for _, q := range parts[1:] {
			if q.score > out.score {
				out.idx, out.score, out.a0, out.a1 = q.idx, q.score, q.a0, q.a1
			}
			out.peakAbs0 = math.Max(out.peakAbs0, q.peakAbs0)
		}
		return out
	}
	for major := 0; major < m.cfg.MaxMajorCycles && res.Iterations < m.cfg.Niter; major++ {
		thr := m.threshold(residual)
		res.Threshold = thr
		peak := peakAbs(R0)
		if peak < thr || peak == 0 {
			break
		}
		cycle := math.Max(thr, (1-m.cfg.MGain)*peak)
		it := 0
		cur := step(0, 0, 0, 0)
		for res.Iterations+it < m.cfg.Niter && cur.idx >= 0 && cur.peakAbs0 >= cycle {
			if it&15 == 0 {
				if err := ctx.Err(); err != nil {
					res.Iterations += it
					return err
				}
			}
			c0, c1 := g*cur.a0, g*cur.a1
			model.Pix[cur.idx] += c0
			model1.Pix[cur.idx] += c1
			cur = step(cur.idx%n, cur.idx/n, c0, c1)
			it++
		}
		res.Iterations += it
		if it == 0 {
			break
		}
		td := time.Now()
		m.gr.degrid(model.Pix, p0)
		m.gr.degrid(model1.Pix, p1)
		for i, d := range m.vis.Data {
			resid[i] = d - p0[i] - xv[i]*p1[i]
		}
		m.tm.Degrid += time.Since(td)
		m.image(resid, R0)
		for i := range resid {
			resid[i] *= xv[i]
		}
		m.image(resid, R1)
		for i := range R0 {
			R0[i] /= m.norm
			R1[i] /= m.norm
		}
		res.MajorCycles++
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	res.Model1, res.Residual1 = model1, r1
	return nil
}

// SpectralIndex returns the MT-MFS spectral index map α = I1/I0 of the
// Taylor-term images restored with beam, where the term-0 restored image
// exceeds minI0 (NaN elsewhere); nil when res has no second Taylor term.
func (res *Result) SpectralIndex(minI0 float64) (*Image, error) {
	if res.Model1 == nil || res.Residual1 == nil {
		return nil, nil
	}
	i1, err := Restore(res.Model1, res.Residual1, res.Beam)
	if err != nil {
		return nil, err
	}
	out := NewImage(res.Restored.N, res.Restored.CellArcsec)
	for i, v := range res.Restored.Pix {
		out.Pix[i] = math.NaN()
		if v > minI0 {
			out.Pix[i] = i1.Pix[i] / v
		}
	}
	return out, nil
}
