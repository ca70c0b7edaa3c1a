package imaging

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Sentinel errors.
var (
	// ErrInput reports unusable visibilities (empty, NaN, mismatched
	// lengths, every visibility outside the grid).
	ErrInput = errors.New("imaging: invalid input")
	// ErrConfig reports impossible imaging parameters.
	ErrConfig = errors.New("imaging: invalid configuration")
)

const speedOfLight = 299792458.0

// arcsecRad is one arcsecond in radians.
const arcsecRad = math.Pi / (180 * 3600)

// Vis is the imager's input: rows of baselines (U, V in metres; W is
// ignored) and per-row channels at FreqHz.
type Vis struct {
	// U and V are baseline coordinates in metres, one per row.
	U, V []float64
	// FreqHz are the channel frequencies.
	FreqHz []float64
	// Data are visibilities in Jy, Data[row*len(FreqHz)+channel].
	Data []complex128
	// Weight is the natural weight 1/sigma^2 of each visibility (0 =
	// flagged); nil means all 1. The theoretical noise reported by the
	// imager assumes weights are 1/sigma^2.
	Weight []float64
}

func (v *Vis) validate() error {
	if v == nil {
		return fmt.Errorf("%w: visibilities are nil", ErrInput)
	}
	nrow, nch := len(v.U), len(v.FreqHz)
	if nrow == 0 {
		return fmt.Errorf("%w: no visibility rows (len(U) = 0)", ErrInput)
	}
	if len(v.V) != nrow {
		return fmt.Errorf("%w: len(V) = %d but len(U) = %d", ErrInput, len(v.V), nrow)
	}
	if nch == 0 {
		return fmt.Errorf("%w: no channels (len(FreqHz) = 0)", ErrInput)
	}
	if len(v.Data) != nrow*nch {
		return fmt.Errorf("%w: len(Data) = %d, want rows*channels = %d*%d = %d", ErrInput, len(v.Data), nrow, nch, nrow*nch)
	}
	if v.Weight != nil && len(v.Weight) != len(v.Data) {
		return fmt.Errorf("%w: len(Weight) = %d, want len(Data) = %d", ErrInput, len(v.Weight), len(v.Data))
	}
	for i, f := range v.FreqHz {
		if !(f > 0) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: FreqHz[%d] = %v: must be positive and finite", ErrInput, i, f)
		}
	}
	for i := range v.U {
		if !finite(v.U[i]) || !finite(v.V[i]) {
			return fmt.Errorf("%w: row %d has non-finite uv (%v, %v)", ErrInput, i, v.U[i], v.V[i])
		}
	}
	for i, d := range v.Data {
		if !finite(real(d)) || !finite(imag(d)) {
			return fmt.Errorf("%w: Data[%d] = %v: must be finite", ErrInput, i, d)
		}
	}
	for i, w := range v.Weight {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: Weight[%d] = %v: must be finite and >= 0", ErrInput, i, w)
		}
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// gridder holds the per-visibility grid coordinates and imaging weights of
// one imaging run.
type gridder struct {
	g       int // grid side (padded)
	n       int // image side
	kernel  *Kernel
	corr    []float64 // grid correction over the padded grid
	workers int
	gu, gv  []float64 // grid coordinates relative to the centre, cells
	iw      []float64 // imaging weight, 0 = not gridded
	rows    []bool    // grid rows touched by some visibility
	natural []float64 // natural weight
	dropped int
}

// newGridder computes grid coordinates (image x increases westward, so
// the u axis is reversed) and imaging weights.
func newGridder(vis *Vis, c Config, k *Kernel) (*gridder, error) {
	g := int(math.Ceil(float64(c.ImageSize)*c.Padding/2)) * 2
	gr := &gridder{g: g, n: c.ImageSize, kernel: k, corr: k.Correction(g), workers: c.Workers}
	du := 1 / (float64(g) * c.CellArcsec * arcsecRad) // wavelengths per cell
	nch := len(vis.FreqHz)
	nv := len(vis.Data)
	gr.gu = make([]float64, nv)
	gr.gv = make([]float64, nv)
	gr.iw = make([]float64, nv)
	gr.natural = make([]float64, nv)
	lim := float64(g/2) - float64(k.Width)/2 - 1
	used := 0
	for r := range vis.U {
		for ch, f := range vis.FreqHz {
			i := r*nch + ch
			s := f / speedOfLight / du
			u, v := -vis.U[r]*s, vis.V[r]*s
			w := 1.0
			if vis.Weight != nil {
				w = vis.Weight[i]
			}
			if w == 0 {
				continue
			}
			if math.Abs(u) > lim || math.Abs(v) > lim {
				gr.dropped++
				continue
			}
			gr.gu[i], gr.gv[i], gr.natural[i], gr.iw[i] = u, v, w, w
			used++
		}
	}
	if used == 0 {
		return nil, fmt.Errorf("%w: no visibility falls on the %d-cell grid (%d outside: cell_arcsec = %g too large for the longest baselines?)", ErrInput, g, gr.dropped, c.CellArcsec)
	}
	switch c.Weighting {
	case "natural":
	case "uniform", "briggs":
		dens := make([]float64, g*g)
		cell := func(u, v float64) int {
			return (int(math.Round(v))+g/2)*g + int(math.Round(u)) + g/2
		}
		sumW := 0.0
		for i, w := range gr.iw {
			if w == 0 {
				continue
			}
			dens[cell(gr.gu[i], gr.gv[i])] += w
			dens[cell(-gr.gu[i], -gr.gv[i])] += w
			sumW += 2 * w
		}
		f2 := 0.0
		if c.Weighting == "briggs" {
			sum2 := 0.0
			for _, d := range dens {
				sum2 += d * d
			}
			f := 5 * math.Pow(10, -c.Robust)
			f2 = f * f / (sum2 / sumW)
		}
		for i, w := range gr.iw {
			if w == 0 {
				continue
			}
			d := dens[cell(gr.gu[i], gr.gv[i])]
			if c.Weighting == "uniform" {
				gr.iw[i] = w / d
			} else {
				gr.iw[i] = w / (1 + d*f2)
			}
		}
	default:
		return nil, fmt.Errorf("%w: weighting = %q: must be natural, uniform or briggs", ErrConfig, c.Weighting)
	}
	gr.markRows()
	return gr, nil
}

// doubled returns a gridder for an image of twice the side at the same
// cell size (a uv grid twice as fine), with the same imaging weights: it
// images the full-size PSF that Högbom CLEAN needs to subtract a source
// anywhere in the image.
func (gr *gridder) doubled() *gridder {
	d := *gr
	d.g, d.n = 2*gr.g, 2*gr.n
	d.corr = gr.kernel.Correction(d.g)
	d.gu = make([]float64, len(gr.gu))
	d.gv = make([]float64, len(gr.gv))
	for i := range gr.gu {
		d.gu[i], d.gv[i] = 2*gr.gu[i], 2*gr.gv[i]
	}
	d.markRows()
	return &d
}

// psfPeak is the unnormalised PSF value at the image centre, where every
// Fourier phase is 1: 2 sum_k iw_k Sx_k Sy_k / c(g/2)^2 with S the sum of
// the kernel weights the visibility was gridded with.
func (gr *gridder) psfPeak() float64 {
	kx := make([]float64, gr.kernel.Width)
	ky := make([]float64, gr.kernel.Width)
	sum := 0.0
	for i, w := range gr.iw {
		if w == 0 {
			continue
		}
		gr.kernelWeights(gr.gu[i], kx, false)
		gr.kernelWeights(gr.gv[i], ky, false)
		sx, sy := 0.0, 0.0
		for j := range kx {
			sx += kx[j]
			sy += ky[j]
		}
		sum += w * sx * sy
	}
	c := gr.corr[gr.g/2]
	return 2 * sum / (c * c)
}

// theoreticalNoise is sqrt(sum iw^2 / natural) / sum iw: the rms of the
// normalised image when natural weights are 1/sigma^2.
func (gr *gridder) theoreticalNoise() float64 {
	s, s2 := 0.0, 0.0
	for i, w := range gr.iw {
		if w == 0 {
			continue
		}
		s += w
		s2 += w * w / gr.natural[i]
	}
	return math.Sqrt(s2) / s
}

// kernelWeights fills kx with the kernel at the W cells around coordinate
// u (relative to the grid centre) and returns the first cell index. With
// signed, cell c's weight is multiplied by (-1)^c: applied on both axes
// this is the checkerboard that puts the FFT's origin at the grid centre,
// folded into the kernel so the grid needs no extra pass.
func (gr *gridder) kernelWeights(u float64, kx []float64, signed bool) int {
	w := gr.kernel.Width
	j0 := int(math.Floor(u-float64(w)/2)) + 1
	c0 := j0 + gr.g/2
	for j := range kx {
		v := gr.kernel.lookup(float64(j0+j) - u)
		if signed && (c0+j)&1 == 1 {
			v = -v
		}
		kx[j] = v
	}
	return c0
}

// markRows records which grid rows any gridded visibility touches.
func (gr *gridder) markRows() {
	gr.rows = make([]bool, gr.g)
	kw := gr.kernel.Width
	for i, w := range gr.iw {
		if w == 0 {
			continue
		}
		y0 := int(math.Floor(gr.gv[i]-float64(kw)/2)) + 1 + gr.g/2
		for y := y0; y < y0+kw; y++ {
			gr.rows[y] = true
		}
	}
}

// grid convolves imaging-weighted data (nil = unit visibilities, for the
// PSF) onto out (g*g, zeroed by the caller). Workers own bands of grid
// rows chosen to share the visibilities evenly; each scans every
// visibility and adds only the kernel rows inside its band, so no private
// grids are needed and every cell sums in visibility order (the result is
// bit-identical for any number of workers).
func (gr *gridder) grid(data []complex128, out []complex128) {
	g, kw := gr.g, gr.kernel.Width
	nw := gr.workers
	if len(gr.iw) < 20000 || nw < 1 {
		nw = 1
	}
	// Row bands with about equal numbers of visibilities.
	bounds := make([]int, nw+1)
	bounds[nw] = g
	if nw > 1 {
		hist := make([]int, g)
		total := 0
		for i, w := range gr.iw {
			if w != 0 {
				hist[int(math.Floor(gr.gv[i]))+g/2]++
				total++
			}
		}
		acc, b := 0, 1
		for y := 0; y < g && b < nw; y++ {
			acc += hist[y]
			if acc*nw >= b*total {
				bounds[b] = y + 1
				b++
			}
		}
		for ; b < nw; b++ {
			bounds[b] = g
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < nw; w++ {
		wg.Add(1)
		go func(ya, yb int) {
			defer wg.Done()
			kx := make([]float64, kw)
			ky := make([]float64, kw)
			for i, wt := range gr.iw {
				if wt == 0 {
					continue
				}
				y0 := int(math.Floor(gr.gv[i]-float64(kw)/2)) + 1 + g/2
				if y0+kw <= ya || y0 >= yb {
					continue
				}
				val := complex(wt, 0)
				if data != nil {
					val = data[i] * complex(wt, 0)
				}
				x0 := gr.kernelWeights(gr.gu[i], kx, true)
				gr.kernelWeights(gr.gv[i], ky, true)
				for jy, vy := range ky {
					y := y0 + jy
					if y < ya || y >= yb {
						continue
					}
					row := out[y*g+x0 : y*g+x0+kw]
					vr, vi := real(val)*vy, imag(val)*vy
					for jx, vx := range kx {
						row[jx] += complex(vr*vx, vi*vx)
					}
				}
			}
		}(bounds[w], bounds[w+1])
	}
	wg.Wait()
}

// toImage turns a uv grid into the (unnormalised) grid-corrected image:
// centre, inverse FFT, centre, crop to n×n, take 2 Re (the Hermitian
// half of the visibilities is implicit), divide by the correction.
func (gr *gridder) toImage(grid []complex128, out []float64) {
	g, n := gr.g, gr.n
	off := (g - n) / 2
	// The grid is already multiplied by the checkerboard (see
	// kernelWeights). Pruned 2-D FFT: transform the non-empty rows, transpose, and
	// transform only the rows (original columns) inside the crop; the
	// result is read transposed.
	fftRows(grid, g, true, gr.workers, 0, g, gr.rows)
	transpose(grid, g, gr.workers)
	fftRows(grid, g, true, gr.workers, off, off+n, nil)
	parallelRange(n, gr.workers, func(x0, x1 int) {
		for x := x0; x < x1; x++ {
			cx := gr.corr[x+off]
			col := grid[(x+off)*g+off : (x+off)*g+off+n] // column x, rows y
			for y, c := range col {
				v := real(c)
				if (x+y)&1 == 1 { // (-1)^((x+off)+(y+off)) = (-1)^(x+y)
					v = -v
				}
				out[y*n+x] = 2 * v / (cx * gr.corr[y+off])
			}
		}
	})
}

// degrid predicts the visibilities of model (Jy per pixel, n×n) at every
// gridded visibility: pre-correct, centre, forward FFT, centre, and
// interpolate with the kernel. Visibilities not gridded get 0.
func (gr *gridder) degrid(model []float64, out []complex128) {
	g, n := gr.g, gr.n
	off := (g - n) / 2
	buf := make([]complex128, g*g)
	used := make([]bool, g)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			m := model[y*n+x]
			if m == 0 {
				continue
			}
			v := m / (gr.corr[y+off] * gr.corr[x+off])
			if (x+y)&1 == 1 { // checkerboard (-1)^((x+off)+(y+off))
				v = -v
			}
			buf[(y+off)*g+x+off] = complex(v, 0)
			used[y+off] = true
		}
	}
	// 2-D forward FFT skipping empty model rows; the output checkerboard
	// is folded into the interpolation weights below.
	fftRows(buf, g, false, gr.workers, 0, g, used)
	transpose(buf, g, gr.workers)
	fftRows(buf, g, false, gr.workers, 0, g, nil)
	transpose(buf, g, gr.workers)
	parallelRange(len(out), gr.workers, func(a, b int) {
		kw := gr.kernel.Width
		kx := make([]float64, kw)
		ky := make([]float64, kw)
		for i := a; i < b; i++ {
			if gr.iw[i] == 0 {
				out[i] = 0
				continue
			}
			x0 := gr.kernelWeights(gr.gu[i], kx, true)
			y0 := gr.kernelWeights(gr.gv[i], ky, true)
			var acc complex128
			for jy, vy := range ky {
				row := buf[(y0+jy)*g+x0 : (y0+jy)*g+x0+kw]
				var racc complex128
				for jx, vx := range kx {
					racc += row[jx] * complex(vx, 0)
				}
				acc += racc * complex(vy, 0)
			}
			out[i] = acc
		}
	})
}

// parallelRange splits [0, n) into workers contiguous parts.
func parallelRange(n, workers int, f func(a, b int)) {
	if workers <= 1 || n < 64 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			f(w*n/workers, (w+1)*n/workers)
		}(w)
	}
	wg.Wait()
}
