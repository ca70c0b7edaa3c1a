package imaging

import (
	"fmt"
	"math"
)

// Beam is an elliptical Gaussian restoring beam: FWHM of the major and
// minor axes in arcseconds and the position angle of the major axis in
// degrees east of north, in (-90, 90].
type Beam struct {
	MajorArcsec float64 `json:"bmaj_arcsec"`
	MinorArcsec float64 `json:"bmin_arcsec"`
	PADeg       float64 `json:"bpa_deg"`
}

const fwhmPerSigma = 2.3548200450309493 // 2 sqrt(2 ln 2)

// PSFCutoff is the fraction of the PSF peak above which main-lobe pixels
// are fitted (CASA's psfcutoff).
const PSFCutoff = 0.35

// quadForm returns (a, b, c) with beam(dx, dy) = exp(-(a dx^2 + 2 b dx dy
// + c dy^2)) for pixel offsets (dx westward... i.e. +x, +y north) at cell
// arcsec per pixel.
func (b Beam) quadForm(cell float64) (qa, qb, qc float64) {
	smaj := b.MajorArcsec / cell / fwhmPerSigma
	smin := b.MinorArcsec / cell / fwhmPerSigma
	s, c := math.Sincos(b.PADeg * math.Pi / 180)
	// Major axis in pixel coordinates: east is -x, north is +y.
	ex, ey := -s, c
	fx, fy := c, s // perpendicular
	ka, kb := 1/(2*smaj*smaj), 1/(2*smin*smin)
	return ka*ex*ex + kb*fx*fx, ka*ex*ey + kb*fx*fy, ka*ey*ey + kb*fy*fy
}

// beamFromQuad converts a quadratic form (pixel units) into a Beam.
func beamFromQuad(qa, qb, qc, cell float64) (Beam, error) {
	tr, det := qa+qc, qa*qc-qb*qb
	if !(det > 0) || !(tr > 0) {
		return Beam{}, fmt.Errorf("%w: PSF main lobe is not an ellipse (quadratic form %g, %g, %g)", ErrInput, qa, qb, qc)
	}
	disc := math.Sqrt(math.Max(tr*tr/4-det, 0))
	lsmall, lbig := tr/2-disc, tr/2+disc
	// Eigenvector of the small eigenvalue (major axis).
	var ex, ey float64
	if math.Abs(qb) > 1e-15*tr {
		ex, ey = qb, lsmall-qa
	} else if qa <= qc {
		ex, ey = 1, 0
	} else {
		ex, ey = 0, 1
	}
	pa := math.Atan2(-ex, ey) * 180 / math.Pi
	for pa <= -90 {
		pa += 180
	}
	for pa > 90 {
		pa -= 180
	}
	return Beam{
		MajorArcsec: fwhmPerSigma / math.Sqrt(2*lsmall) * cell,
		MinorArcsec: fwhmPerSigma / math.Sqrt(2*lbig) * cell,
		PADeg:       pa,
	}, nil
}

// FitBeam fits an elliptical Gaussian to the PSF main lobe: the pixels
// above PSFCutoff of the peak connected to the centre within a 41×41 box,
// by weighted linear least squares on ln(psf) (weights psf^2). The PSF must
// peak at 1 at (N/2, N/2).
func FitBeam(psf *Image) (Beam, error) {
	if psf == nil || psf.N < 8 || len(psf.Pix) != psf.N*psf.N {
		return Beam{}, fmt.Errorf("%w: FitBeam needs a square PSF image of side >= 8", ErrInput)
	}
	n, c := psf.N, psf.N/2
	if p0 := psf.Pix[c*n+c]; math.Abs(p0-1) > 1e-6 {
		return Beam{}, fmt.Errorf("%w: PSF peak at centre is %v, want 1", ErrInput, p0)
	}
	const half = 20
	seen := map[int]bool{c*n + c: true}
	stack := []int{c*n + c}
	var s [3][3]float64
	var r [3]float64
	pts := 0
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		x, y := i%n, i/n
		dx, dy := float64(x-c), float64(y-c)
		v := psf.Pix[i]
		if i != c*n+c {
			f := [3]float64{dx * dx, 2 * dx * dy, dy * dy}
			w := v * v
			t := -math.Log(v)
			for a := 0; a < 3; a++ {
				for b := 0; b < 3; b++ {
					s[a][b] += w * f[a] * f[b]
				}
				r[a] += w * f[a] * t
			}
			pts++
		}
		for _, d := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
			nx, ny := x+d[0], y+d[1]
			if nx < 0 || ny < 0 || nx >= n || ny >= n || abs(nx-c) > half || abs(ny-c) > half {
				continue
			}
			j := ny*n + nx
			if !seen[j] && psf.Pix[j] > PSFCutoff {
				seen[j] = true
				stack = append(stack, j)
			}
		}
	}
	q, ok := solve3(s, r)
	if pts < 8 || !ok {
		// A coarsely sampled beam (e.g. 1" cells for a 2.5" beam) has too
		// few pixels above the cutoff to fix the ellipse's orientation: fit
		// the positive pixels of the 5×5 box around the peak instead.
		s, r, pts = [3][3]float64{}, [3]float64{}, 0
		for dy := -2; dy <= 2; dy++ {
			for dx := -2; dx <= 2; dx++ {
				v := psf.Pix[(c+dy)*n+c+dx]
				if (dx == 0 && dy == 0) || !(v > 0.02) {
					continue
				}
				f := [3]float64{float64(dx * dx), float64(2 * dx * dy), float64(dy * dy)}
				w, t := v*v, -math.Log(v)
				for a := 0; a < 3; a++ {
					for b := 0; b < 3; b++ {
						s[a][b] += w * f[a] * f[b]
					}
					r[a] += w * f[a] * t
				}
				pts++
			}
		}
		if q, ok = solve3(s, r); !ok {
			return Beam{}, fmt.Errorf("%w: PSF main lobe cannot be fitted (%d usable pixels): cell_arcsec = %g is too large to sample the beam", ErrInput, pts, psf.CellArcsec)
		}
	}
	return beamFromQuad(q[0], q[1], q[2], psf.CellArcsec)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// solve3 solves the 3×3 system a x = b by Cramer's rule.
func solve3(a [3][3]float64, b [3]float64) ([3]float64, bool) {
	det := func(m [3][3]float64) float64 {
		return m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) -
			m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) +
			m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
	}
	d := det(a)
	scale := math.Abs(a[0][0]*a[1][1]*a[2][2]) + 1e-300
	if math.Abs(d) < 1e-12*scale {
		return [3]float64{}, false
	}
	var x [3]float64
	for k := 0; k < 3; k++ {
		m := a
		for i := 0; i < 3; i++ {
			m[i][k] = b[i]
		}
		x[k] = det(m) / d
	}
	return x, true
}

// Restore convolves the model (Jy per pixel) with the beam (peak 1, so the
// result is in Jy/beam) and adds residual, returning a new image.
func Restore(model, residual *Image, beam Beam) (*Image, error) {
	if model == nil || residual == nil || model.N != residual.N || len(model.Pix) != len(residual.Pix) {
		return nil, fmt.Errorf("%w: Restore needs model and residual of equal size", ErrInput)
	}
	if !(beam.MajorArcsec > 0 && beam.MinorArcsec > 0 && beam.MinorArcsec <= beam.MajorArcsec*(1+1e-9)) {
		return nil, fmt.Errorf("%w: beam %+v: axes must be positive with minor <= major", ErrInput, beam)
	}
	n := model.N
	out := &Image{N: n, CellArcsec: residual.CellArcsec, Pix: append([]float64(nil), residual.Pix...)}
	qa, qb, qc := beam.quadForm(model.CellArcsec)
	rad := int(math.Ceil(3 * beam.MajorArcsec / model.CellArcsec))
	for i, f := range model.Pix {
		if f == 0 {
			continue
		}
		x0, y0 := i%n, i/n
		for y := max(0, y0-rad); y < min(n, y0+rad+1); y++ {
			dy := float64(y - y0)
			for x := max(0, x0-rad); x < min(n, x0+rad+1); x++ {
				dx := float64(x - x0)
				out.Pix[y*n+x] += f * math.Exp(-(qa*dx*dx + 2*qb*dx*dy + qc*dy*dy))
			}
		}
	}
	return out, nil
}
