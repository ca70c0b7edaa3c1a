package imaging

import (
	"context"
	"math"
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
	sub := func(r []float64, b []float64, px, py int, amp float64) {
		for y := 0; y < n; y++ {
			sy := y - py + c
			if sy < 0 || sy >= pn {
				continue
			}
			row := r[y*n : (y+1)*n]
			prow := b[sy*pn : (sy+1)*pn]
			d := c - px
			for x := max(0, px-c); x < min(n, px+c); x++ {
				row[x] -= amp * prow[x+d]
			}
		}
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
		for res.Iterations+it < m.cfg.Niter {
			if it&15 == 0 {
				if err := ctx.Err(); err != nil {
					res.Iterations += it
					return err
				}
			}
			best, bi := -1.0, -1
			var ba0, ba1 float64
			for i := range R0 {
				a0 := i00*R0[i] + i01*R1[i]
				a1 := i01*R0[i] + i11*R1[i]
				if s := a0*R0[i] + a1*R1[i]; s > best {
					best, bi, ba0, ba1 = s, i, a0, a1
				}
			}
			if bi < 0 || peakAbs(R0) < cycle {
				break
			}
			c0, c1 := g*ba0, g*ba1
			model.Pix[bi] += c0
			model1.Pix[bi] += c1
			px, py := bi%n, bi/n
			sub(R0, B[0], px, py, c0)
			sub(R0, B[1], px, py, c1)
			sub(R1, B[1], px, py, c0)
			sub(R1, B[2], px, py, c1)
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
