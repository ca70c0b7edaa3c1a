package ephemeris

import "math"

// elpSeries holds, per power of T (Julian centuries TDB from J2000), a flat
// list of 6-number terms A, φ0, φ1, φ2, φ3, φ4: A sin(φ0 + φ1 T + ... + φ4 T⁴).
type elpSeries [][]float64

func (s elpSeries) eval(t float64) float64 {
	v, tp := 0.0, 1.0
	for _, terms := range s {
		sum := 0.0
		for i := 0; i+5 < len(terms); i += 6 {
			phi := terms[i+1] + t*(terms[i+2]+t*(terms[i+3]+t*(terms[i+4]+t*terms[i+5])))
			sum += terms[i] * math.Sin(phi)
		}
		v += tp * sum
		tp *= t
	}
	return v
}

// moonGeo returns the geocentric position of the Moon in AU on ICRS axes
// at a TDB Julian date (ELP/MPP02, DE405 fit), following the ELP/MPP02
// reference implementation: spherical coordinates on the mean ecliptic of
// date, Laskar's P, Q to the inertial ecliptic of J2000, then the VSOP87
// ecliptic-to-equator rotation.
func moonGeo(jd float64) vec3 {
	t := (jd - j2000) / 36525
	w := elpW1
	l := w[0] + t*(w[1]+t*(w[2]+t*(w[3]+t*w[4]))) + elpL.eval(t)*as2rad
	b := elpB.eval(t) * as2rad
	r := elpR.eval(t) / AUkm
	sl, cl := math.Sincos(l)
	sb, cb := math.Sincos(b)
	x, y, z := r*cb*cl, r*cb*sl, r*sb
	p := t * (0.10180391e-4 + t*(0.47020439e-6+t*(-0.5417367e-9+t*(-0.2507948e-11+t*0.463486e-14))))
	q := t * (-0.113469002e-3 + t*(0.12372674e-6+t*(0.12654170e-8+t*(-0.1371808e-11+t*-0.320334e-14))))
	sq := math.Sqrt(1 - p*p - q*q)
	ecl := vec3{
		(1-2*p*p)*x + 2*p*q*y + 2*p*sq*z,
		2*p*q*x + (1-2*q*q)*y - 2*q*sq*z,
		-2*p*sq*x + 2*q*sq*y + (1-2*p*p-2*q*q)*z,
	}
	return vsopToEquatorial.apply(ecl)
}

// moonDistance returns the geocentric distance of the Moon in AU.
func moonDistance(jd float64) float64 {
	return elpR.eval((jd-j2000)/36525) / AUkm
}
