package ephemeris

import (
	"math"
)

// ObliquityJ2000Deg is the obliquity of the J2000 ecliptic used by
// EquatorialToEcliptic's J2000 frame: 84381.448″ (IAU 1976, as in FK5 and
// Meeus).
const ObliquityJ2000Deg = 84381.448 / 3600

// EquatorialToEcliptic rotates RA/Dec (degrees) to ecliptic longitude and
// latitude for an obliquity in degrees.
func EquatorialToEcliptic(raDeg, decDeg, oblDeg float64) (lonDeg, latDeg float64) {
	v := rotX(oblDeg * deg2rad).apply(fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1))
	l, b := spherical(v)
	return l * rad2deg, b * rad2deg
}

// EclipticToEquatorial is the inverse of EquatorialToEcliptic.
func EclipticToEquatorial(lonDeg, latDeg, oblDeg float64) (raDeg, decDeg float64) {
	v := rotX(-oblDeg * deg2rad).apply(fromSpherical(lonDeg*deg2rad, latDeg*deg2rad, 1))
	a, d := spherical(v)
	return a * rad2deg, d * rad2deg
}

// icrsToGal is the ICRS to IAU galactic rotation (Hipparcos Catalogue
// Vol. 1 §1.5.3, as in SOFA icrs2g).
var icrsToGal = mat3{
	{-0.054875560416215368492398900454, -0.873437090234885048760383168409, -0.483835015548713226831774175116},
	{+0.494109427875583673525222371358, -0.444829629960011178146614061616, +0.746982244497218890527388004556},
	{-0.867666149019004701181616534570, -0.198076373431201528180486091412, +0.455983776175066922272100478348},
}

// ICRSToGalactic converts ICRS RA/Dec to galactic l, b (degrees).
func ICRSToGalactic(raDeg, decDeg float64) (lDeg, bDeg float64) {
	l, b := spherical(icrsToGal.apply(fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1)))
	return l * rad2deg, b * rad2deg
}

// GalacticToICRS converts galactic l, b to ICRS RA/Dec (degrees).
func GalacticToICRS(lDeg, bDeg float64) (raDeg, decDeg float64) {
	a, d := spherical(icrsToGal.transpose().apply(fromSpherical(lDeg*deg2rad, bDeg*deg2rad, 1)))
	return a * rad2deg, d * rad2deg
}

// B1950ToGalactic converts a B1950 (FK4) RA/Dec to galactic coordinates
// with the IAU 1958 definition (pole RA 192.25°, Dec 27.4°, node 33°),
// Meeus ch. 13 — for B1950 catalogue positions only.
func B1950ToGalactic(raDeg, decDeg float64) (lDeg, bDeg float64) {
	a := (192.25 - raDeg) * deg2rad
	d := decDeg * deg2rad
	d0 := 27.4 * deg2rad
	x := math.Atan2(math.Sin(a), math.Cos(a)*math.Sin(d0)-math.Tan(d)*math.Cos(d0))
	lDeg = normDeg(303 - x*rad2deg)
	bDeg = math.Asin(math.Sin(d)*math.Sin(d0)+math.Cos(d)*math.Cos(d0)*math.Cos(a)) * rad2deg
	return
}

// fk5ToICRS rotates FK5 J2000 to ICRS (Hipparcos): orientation of FK5
// relative to Hipparcos εx = −19.9, εy = −9.1, εz = +22.9 mas (Mignard &
// Froeschlé 2000, as in SOFA fk5hip).
var fk5ToICRS = func() mat3 {
	ex, ey, ez := -19.9e-3*as2rad, -9.1e-3*as2rad, 22.9e-3*as2rad
	// Small-angle rotation r_icrs = r_fk5 − ε × r_fk5.
	return mat3{{1, ez, -ey}, {-ez, 1, ex}, {ey, -ex, 1}}
}()

// FK5ToICRS converts FK5 J2000 RA/Dec to ICRS (degrees).
func FK5ToICRS(raDeg, decDeg float64) (float64, float64) {
	a, d := spherical(fk5ToICRS.apply(fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1)))
	return a * rad2deg, d * rad2deg
}

// ICRSToFK5 converts ICRS RA/Dec to FK5 J2000 (degrees).
func ICRSToFK5(raDeg, decDeg float64) (float64, float64) {
	a, d := spherical(fk5ToICRS.transpose().apply(fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1)))
	return a * rad2deg, d * rad2deg
}

// Separation returns the angular distance between two directions in
// degrees (Vincenty-style, accurate at all angles).
func Separation(ra1, dec1, ra2, dec2 float64) float64 {
	return sepRad(fromSpherical(ra1*deg2rad, dec1*deg2rad, 1), fromSpherical(ra2*deg2rad, dec2*deg2rad, 1)) * rad2deg
}

// CatalogEntry is a star position at a catalogue epoch with proper motion.
type CatalogEntry struct {
	RA, Dec float64 // degrees, mean equator and equinox of EpochJD
	// PMRA is the proper motion in RA in arcsec of RA per Julian year
	// (dα/dt, not multiplied by cos δ); PMDec in arcsec per year.
	PMRA, PMDec float64
	// EpochJD is the catalogue epoch as a TT Julian date (2451545.0 = J2000).
	EpochJD float64
}

// MeanPlace returns the mean place (mean equator and equinox of the TT
// Julian date jdTT, IAU 2006 precession) of a catalogue entry given at the
// mean equator and equinox of its epoch (EpochJD; zero means J2000, where
// the mean frame is taken as FK5 ≈ ICRS). Proper motion is applied
// linearly in RA and Dec over the interval, as in Meeus ch. 21. B1950/FK4
// catalogues need their own (FK4→FK5) conversion first.
func MeanPlace(c CatalogEntry, jdTT float64) (Equatorial, error) {
	if math.IsNaN(c.RA) || math.IsInf(c.RA, 0) {
		return Equatorial{}, invalid("ra", c.RA, "not a number")
	}
	if math.IsNaN(c.Dec) || c.Dec < -90 || c.Dec > 90 {
		return Equatorial{}, invalid("dec", c.Dec, "must be within -90..90")
	}
	if c.EpochJD == 0 {
		c.EpochJD = j2000
	}
	if math.IsNaN(c.EpochJD) || c.EpochJD < 625673.5 || c.EpochJD > 4642999.5 {
		return Equatorial{}, invalid("epoch", c.EpochJD, "outside the years -3000..8000")
	}
	if math.IsNaN(jdTT) || jdTT < 625673.5 || jdTT > 4642999.5 {
		return Equatorial{}, invalid("jd", jdTT, "outside the years -3000..8000")
	}
	yrs := (jdTT - c.EpochJD) / 365.25
	ra := c.RA + c.PMRA*yrs/3600
	dec := c.Dec + c.PMDec*yrs/3600
	// meanOf(E) rotates mean J2000 (dynamical, FK5 ≈) to the mean of E.
	meanOf := func(jd float64) mat3 { return newFrame(jd).pb.mul(frameBias.transpose()) }
	v := fromSpherical(ra*deg2rad, dec*deg2rad, 1)
	v = meanOf(jdTT).mul(meanOf(c.EpochJD).transpose()).apply(v)
	a, d := spherical(v)
	return Equatorial{RA: a * rad2deg, Dec: d * rad2deg}, nil
}

// ApparentPlace returns the apparent place (true equator and equinox of
// date) of a J2000 catalogue entry (EpochJD is ignored): proper motion,
// annual aberration, precession and nutation (parallax and light
// deflection neglected).
func ApparentPlace(c CatalogEntry, t Time) (Equatorial, error) {
	if err := t.check(); err != nil {
		return Equatorial{}, err
	}
	if math.IsNaN(c.RA) || math.IsNaN(c.Dec) || c.Dec < -90 || c.Dec > 90 {
		return Equatorial{}, invalid("dec", c.Dec, "must be within -90..90")
	}
	yrs := (t.tt - j2000) / 365.25
	ra := c.RA + c.PMRA*yrs/3600
	dec := c.Dec + c.PMDec*yrs/3600
	p := fromSpherical(ra*deg2rad, dec*deg2rad, 1)
	f := newFrame(t.tt)
	pa := aberrate(p, t.tt, observer{})
	v := f.npb.apply(pa)
	a, d := spherical(v)
	return Equatorial{RA: a * rad2deg, Dec: d * rad2deg}, nil
}

// aberrate applies annual (and, with an observer, diurnal) aberration to a
// unit direction on GCRS axes.
func aberrate(p vec3, jd float64, obs observer) vec3 {
	e, ev := earthState(jd)
	oh := e.add(obs.pos)
	v := ev.add(obs.vel).scale(1 / cAUPerDay)
	em := oh.norm()
	bm1 := math.Sqrt(1 - v.dot(v))
	pdv := p.dot(v)
	w1 := 1 + pdv/(1+bm1)
	w2 := srsAU / em
	var pa vec3
	for i := range 3 {
		pa[i] = p[i]*bm1 + w1*v[i] + w2*(v[i]-pdv*p[i])
	}
	return pa.unit()
}

// ApparentFromICRS returns the apparent geocentric RA/Dec of date of a
// fixed ICRS direction (annual aberration, precession, nutation).
func ApparentFromICRS(raDeg, decDeg float64, t Time) (Equatorial, error) {
	if err := t.check(); err != nil {
		return Equatorial{}, err
	}
	if math.IsNaN(decDeg) || decDeg < -90 || decDeg > 90 {
		return Equatorial{}, invalid("dec", decDeg, "must be within -90..90")
	}
	f := newFrame(t.tt)
	pa := aberrate(fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1), t.tt, observer{})
	a, d := spherical(f.npb.apply(pa))
	return Equatorial{RA: a * rad2deg, Dec: d * rad2deg}, nil
}
