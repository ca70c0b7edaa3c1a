package anomaly

import (
	"math"
)

// gauss is one elliptical Gaussian component in pixel units: amplitude,
// centre, sigmas along the major and minor axes, and the major axis PA in
// radians east of north (the major axis points along (-sin th, cos th)).
type gauss struct {
	A, X, Y, Sa, Sb, Th float64
}

// fitData holds the pixels of one fit region.
type fitData struct {
	x, y, v, wt []float64
}

const minSigmaPix = 0.2

// eval returns the model value of gs at (x, y).
func evalGauss(g gauss, x, y float64) float64 {
	s, c := math.Sincos(g.Th)
	dx, dy := x-g.X, y-g.Y
	u := -dx*s + dy*c
	v := dx*c + dy*s
	return g.A * math.Exp(-0.5*(u*u/(g.Sa*g.Sa)+v*v/(g.Sb*g.Sb)))
}

// lmFit fits len(init) Gaussians to d by Levenberg–Marquardt with the
// analytic Jacobian. With fixShape only amplitudes and centres vary. It
// returns the fit, its chi-squared and whether it converged to finite
// values.
func lmFit(d fitData, init []gauss, fixShape bool, maxShift float64) ([]gauss, float64, bool) {
	np := 6
	if fixShape {
		np = 3
	}
	n := np * len(init)
	pack := func(gs []gauss) []float64 {
		p := make([]float64, 0, n)
		for _, g := range gs {
			p = append(p, g.A, g.X, g.Y)
			if !fixShape {
				p = append(p, g.Sa, g.Sb, g.Th)
			}
		}
		return p
	}
	unpack := func(p []float64) []gauss {
		gs := make([]gauss, len(init))
		for k := range init {
			q := p[k*np:]
			g := init[k]
			g.A, g.X, g.Y = q[0], q[1], q[2]
			if !fixShape {
				g.Sa, g.Sb, g.Th = q[3], q[4], q[5]
			}
			gs[k] = g
		}
		return gs
	}
	constrain := func(p []float64) {
		for k := range init {
			q := p[k*np:]
			q[1] = math.Max(init[k].X-maxShift, math.Min(init[k].X+maxShift, q[1]))
			q[2] = math.Max(init[k].Y-maxShift, math.Min(init[k].Y+maxShift, q[2]))
			if !fixShape {
				q[3] = math.Max(minSigmaPix, math.Min(q[3], 50*init[k].Sa))
				q[4] = math.Max(minSigmaPix, math.Min(q[4], 50*init[k].Sa))
			}
		}
	}
	chi2 := func(p []float64) float64 {
		gs := unpack(p)
		var s float64
		for i := range d.v {
			var m float64
			for _, g := range gs {
				m += evalGauss(g, d.x[i], d.y[i])
			}
			r := d.v[i] - m
			s += d.wt[i] * r * r
		}
		return s
	}
	p := pack(init)
	cur := chi2(p)
	if math.IsNaN(cur) || math.IsInf(cur, 0) {
		return init, cur, false
	}
	A := make([]float64, n*n)
	g := make([]float64, n)
	jrow := make([]float64, n)
	aa := make([]float64, n*n)
	delta := make([]float64, n)
	trial := make([]float64, n)
	lambda := 1e-3
	for iter := 0; iter < 200; iter++ {
		clear(A)
		clear(g)
		gs := unpack(p)
		for i := range d.v {
			var m float64
			for k, gk := range gs {
				s, c := math.Sincos(gk.Th)
				dx, dy := d.x[i]-gk.X, d.y[i]-gk.Y
				u := -dx*s + dy*c
				v := dx*c + dy*s
				ia, ib := 1/(gk.Sa*gk.Sa), 1/(gk.Sb*gk.Sb)
				e := math.Exp(-0.5 * (u*u*ia + v*v*ib))
				mk := gk.A * e
				m += mk
				j := jrow[k*np:]
				j[0] = e
				j[1] = mk * (-u*s*ia + v*c*ib)
				j[2] = mk * (u*c*ia + v*s*ib)
				if !fixShape {
					j[3] = mk * u * u * ia / gk.Sa
					j[4] = mk * v * v * ib / gk.Sb
					j[5] = mk * u * v * (ia - ib)
				}
			}
			r := d.v[i] - m
			wt := d.wt[i]
			for a := 0; a < n; a++ {
				ja := jrow[a] * wt
				if ja == 0 {
					continue
				}
				g[a] += ja * r
				row := A[a*n:]
				for b := a; b < n; b++ {
					row[b] += ja * jrow[b]
				}
			}
		}
		for a := 0; a < n; a++ {
			for b := 0; b < a; b++ {
				A[a*n+b] = A[b*n+a]
			}
		}
		maxDiag := 0.0
		for a := 0; a < n; a++ {
			maxDiag = math.Max(maxDiag, A[a*n+a])
		}
		improved := false
		for lambda < 1e12 {
			copy(aa, A)
			for a := 0; a < n; a++ {
				aa[a*n+a] += lambda * math.Max(A[a*n+a], 1e-9*maxDiag+1e-300)
			}
			if !cholSolve(aa, g, delta, n) {
				lambda *= 10
				continue
			}
			for a := range p {
				trial[a] = p[a] + delta[a]
			}
			constrain(trial)
			c2 := chi2(trial)
			if c2 < cur && !math.IsNaN(c2) {
				rel := (cur - c2) / math.Max(cur, 1e-300)
				copy(p, trial)
				cur = c2
				lambda = math.Max(lambda/10, 1e-9)
				improved = true
				if rel < 1e-10 {
					return unpack(p), cur, finiteGauss(unpack(p))
				}
				break
			}
			lambda *= 10
		}
		if !improved {
			break
		}
	}
	out := unpack(p)
	return out, cur, finiteGauss(out)
}

func finiteGauss(gs []gauss) bool {
	for _, g := range gs {
		for _, v := range []float64{g.A, g.X, g.Y, g.Sa, g.Sb, g.Th} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// cholSolve solves the symmetric positive definite system a·x = b (a is
// overwritten by its Cholesky factor). It reports false if a is not
// positive definite.
func cholSolve(a, b, x []float64, n int) bool {
	for j := 0; j < n; j++ {
		s := a[j*n+j]
		for k := 0; k < j; k++ {
			s -= a[j*n+k] * a[j*n+k]
		}
		if !(s > 0) {
			return false
		}
		ljj := math.Sqrt(s)
		a[j*n+j] = ljj
		for i := j + 1; i < n; i++ {
			t := a[i*n+j]
			for k := 0; k < j; k++ {
				t -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = t / ljj
		}
	}
	for i := 0; i < n; i++ {
		t := b[i]
		for k := 0; k < i; k++ {
			t -= a[i*n+k] * x[k]
		}
		x[i] = t / a[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		t := x[i]
		for k := i + 1; k < n; k++ {
			t -= a[k*n+i] * x[k]
		}
		x[i] = t / a[i*n+i]
	}
	return true
}

// normalise returns g with Sa >= Sb and Th in [0, π).
func normalise(g gauss) gauss {
	if g.Sb > g.Sa {
		g.Sa, g.Sb = g.Sb, g.Sa
		g.Th += math.Pi / 2
	}
	g.Th = math.Mod(g.Th, math.Pi)
	if g.Th < 0 {
		g.Th += math.Pi
	}
	return g
}

// beamFWHMAlong returns the FWHM of the beam (FWHM axes bmaj, bmin, PA
// bpa in radians) along the direction at position angle th.
func beamFWHMAlong(bmaj, bmin, bpa, th float64) float64 {
	d := th - bpa
	c, s := math.Cos(d), math.Sin(d)
	return math.Sqrt(bmaj*bmaj*c*c + bmin*bmin*s*s)
}

// condonErrors returns the 1-sigma errors of a fitted Gaussian following
// Condon (1997, PASP 109, 166) for noise correlated on the scale of the
// beam: amplitude, position along x and y (pixels), FWHM major and minor
// (pixels) and PA (radians). Condon's circular noise-correlation width θN
// is generalised to an elliptical beam by taking the beam's FWHM along the
// component's major (nM) and minor (nm) axes, which makes a point source
// in beam-correlated noise come out with the exact matched-filter errors
// (σ_A = rms, σ_pos = beam σ along each axis / SNR).
func condonErrors(g gauss, rms, nM, nm float64) (eA, eX, eY, eMaj, eMin, ePA float64) {
	tM, tm := g.Sa*fwhm, g.Sb*fwhm
	snr := g.A / rms
	rho := func(aM, am float64) float64 {
		r2 := tM * tm / (4 * nM * nm) * math.Pow(1+nM*nM/(tM*tM), aM) * math.Pow(1+nm*nm/(tm*tm), am) * snr * snr
		return math.Sqrt(r2)
	}
	rA, rM, rm := rho(1.5, 1.5), rho(2.5, 0.5), rho(0.5, 2.5)
	eA = math.Abs(g.A) * math.Sqrt2 / rA
	eM := math.Sqrt2 * g.Sa / rM // along the major axis
	em := math.Sqrt2 * g.Sb / rm // along the minor axis
	s, c := math.Sincos(g.Th)
	eX = math.Sqrt(eM*eM*s*s + em*em*c*c)
	eY = math.Sqrt(eM*eM*c*c + em*em*s*s)
	eMaj = tM * math.Sqrt2 / rM
	eMin = tm * math.Sqrt2 / rm
	if d := tM*tM - tm*tm; d > 0 {
		ePA = math.Min(math.Sqrt2/rm*2*tM*tm/d, math.Pi/2)
	} else {
		ePA = math.Pi / 2
	}
	return
}

// gaussCov returns the covariance (xx, xy, yy) in pixel axes of a Gaussian
// with FWHM axes maj, mn and PA pa (radians east of north; the major axis
// points along (-sin pa, cos pa)).
func gaussCov(maj, mn, pa float64) (xx, xy, yy float64) {
	sm, sn := maj/fwhm, mn/fwhm
	s, c := math.Sincos(pa)
	xx = sm*sm*s*s + sn*sn*c*c
	xy = -sm*sm*s*c + sn*sn*c*s
	yy = sm*sm*c*c + sn*sn*s*s
	return
}

// deconvolve removes the beam (bmaj, bmin FWHM, bpa radians) from a fitted
// Gaussian (maj, mn FWHM, pa radians) and returns the intrinsic FWHM axes
// and PA. A component no larger than the beam in some direction comes out
// with a zero axis; ok is false when it is not larger in any direction
// (unresolved).
func deconvolve(maj, mn, pa, bmaj, bmin, bpa float64) (dmaj, dmin, dpa float64, ok bool) {
	a1, b1, c1 := gaussCov(maj, mn, pa)
	a2, b2, c2 := gaussCov(bmaj, bmin, bpa)
	xx, xy, yy := a1-a2, b1-b2, c1-c2
	tr := xx + yy
	det := xx*yy - xy*xy
	disc := math.Sqrt(math.Max(tr*tr/4-det, 0))
	l1, l2 := tr/2+disc, tr/2-disc
	if l1 <= 0 {
		return 0, 0, 0, false
	}
	vx, vy := xy, l1-xx
	if math.Abs(vx)+math.Abs(vy) < 1e-300 {
		vx, vy = l1-yy, xy
		if math.Abs(vx)+math.Abs(vy) < 1e-300 {
			vx, vy = 0, 1
		}
	}
	dpa = math.Mod(math.Atan2(-vx, vy)+2*math.Pi, math.Pi)
	return math.Sqrt(l1) * fwhm, math.Sqrt(math.Max(l2, 0)) * fwhm, dpa, true
}
