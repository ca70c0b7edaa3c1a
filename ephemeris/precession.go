package ephemeris

import "math"

// pfw06 returns the IAU 2006 Fukushima-Williams precession angles (radians)
// for TT Julian centuries t since J2000 (Hilton et al. 2006, as in SOFA
// pfw06).
func pfw06(t float64) (gamb, phib, psib, epsa float64) {
	gamb = (-0.052928 + (10.556378+(0.4932044+(-0.00031238+(-0.000002788+0.0000000260*t)*t)*t)*t)*t) * as2rad
	phib = (84381.412819 + (-46.811016+(0.0511268+(0.00053289+(-0.000000440-0.0000000176*t)*t)*t)*t)*t) * as2rad
	psib = (-0.041775 + (5038.481484+(1.5584175+(-0.00018522+(-0.000026452-0.0000000148*t)*t)*t)*t)*t) * as2rad
	epsa = obl06(t)
	return
}

// fw2m builds Rx(−eps)·Rz(−psi)·Rx(phi)·Rz(gamma).
func fw2m(gamb, phib, psi, eps float64) mat3 {
	return rotX(-eps).mul(rotZ(-psi)).mul(rotX(phib)).mul(rotZ(gamb))
}

// frame is the orientation of the true (or mean) equator and equinox of
// date relative to the GCRS at one TT instant.
type frame struct {
	t          float64 // TT centuries since J2000
	dpsi, deps float64 // nutation, radians
	epsA       float64 // mean obliquity, radians
	om         float64 // Moon's node, radians
	pb         mat3    // GCRS -> mean of date (bias + precession)
	npb        mat3    // GCRS -> true of date (bias + precession + nutation)
}

func newFrame(jdTT float64) frame {
	t := (jdTT - j2000) / 36525
	gamb, phib, psib, epsa := pfw06(t)
	dpsi, deps, om := nutation(t)
	return frame{
		t: t, dpsi: dpsi, deps: deps, epsA: epsa, om: om,
		pb:  fw2m(gamb, phib, psib, epsa),
		npb: fw2m(gamb, phib, psib+dpsi, epsa+deps),
	}
}

// eqEquinoxes returns the equation of the equinoxes (radians): Δψ cos εA
// plus the two leading complementary terms of IAU 2000 (IERS 2003,
// Table 5.2e; the remaining terms are below 12 µas).
func (f frame) eqEquinoxes() float64 {
	ct := (2640.96e-6*math.Sin(f.om) + 63.52e-6*math.Sin(2*f.om) - 0.87e-6*f.t*math.Sin(f.om)) * as2rad
	return f.dpsi*math.Cos(f.epsA) + ct
}

// frameBias is the IAU 2006 frame-bias matrix (ICRS -> mean J2000).
var frameBias = fw2mBias()

func fw2mBias() mat3 {
	gamb, phib, psib, epsa := pfw06(0)
	// At t=0 the FW matrix is the bias alone.
	return fw2m(gamb, phib, psib, epsa)
}

// PrecessionMatrix returns the rotation (row-major) from ICRS/GCRS to the
// mean equator and equinox of the TT Julian date (IAU 2006, frame bias
// included).
func PrecessionMatrix(jdTT float64) [3][3]float64 { return newFrame(jdTT).pb }

// NutationPrecessionMatrix returns the rotation from ICRS/GCRS to the true
// equator and equinox of date (IAU 2006/2000B).
func NutationPrecessionMatrix(jdTT float64) [3][3]float64 { return newFrame(jdTT).npb }
