package ephemeris

import "math"

// vsopSeries holds one coordinate of VSOP87: for each power α of τ a flat
// list of (A, B, C) triples, term = A cos(B + C τ), τ in Julian millennia
// of TDB from J2000.
type vsopSeries [][]float64

// vsopPlanet is the (L, B, R) series of one planet.
type vsopPlanet [3]vsopSeries

// eval returns the value and its derivative per millennium.
func (s vsopSeries) eval(tau float64) (v, dv float64) {
	tp := 1.0 // tau^alpha
	tpm := 0.0
	for alpha, terms := range s {
		var sum, dsum float64
		for i := 0; i+2 < len(terms); i += 3 {
			a, b, c := terms[i], terms[i+1], terms[i+2]
			sn, cs := math.Sincos(b + c*tau)
			sum += a * cs
			dsum -= a * c * sn
		}
		v += tp * sum
		dv += float64(alpha)*tpm*sum + tp*dsum
		tpm = tp
		tp *= tau
	}
	return
}

// vsopToEquatorial converts VSOP87 ecliptic-J2000 rectangular coordinates to
// the FK5 J2000 equator (Bretagnon & Francou 1988), taken as ICRS to ~25 mas.
var vsopToEquatorial = mat3{
	{1, 0.000000440360, -0.000000190919},
	{-0.000000479966, 0.917482137087, -0.397776982902},
	{0, 0.397776982902, 0.917482137087},
}

// helio returns the heliocentric position (AU) and velocity (AU/day) of a
// planet, equatorial ICRS axes, at a TDB Julian date.
func (p *vsopPlanet) helio(jd float64) (pos, vel vec3) {
	tau := (jd - j2000) / 365250
	l, dl := p[0].eval(tau)
	b, db := p[1].eval(tau)
	r, dr := p[2].eval(tau)
	sl, cl := math.Sincos(l)
	sb, cb := math.Sincos(b)
	ecl := vec3{r * cb * cl, r * cb * sl, r * sb}
	const perDay = 1.0 / 365250
	dl, db, dr = dl*perDay, db*perDay, dr*perDay
	eclV := vec3{
		dr*cb*cl - r*sb*db*cl - r*cb*sl*dl,
		dr*cb*sl - r*sb*db*sl + r*cb*cl*dl,
		dr*sb + r*cb*db,
	}
	return vsopToEquatorial.apply(ecl), vsopToEquatorial.apply(eclV)
}
