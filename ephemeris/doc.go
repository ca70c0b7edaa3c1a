// Package ephemeris computes observation-planning astronomy offline at
// arcsecond accuracy: time scales (UTC, TAI, TT, UT1, leap seconds, ΔT),
// Julian dates and calendars, Earth rotation angle and sidereal time
// (IAU 2006/2000), precession (IAU 2006), nutation (IAU 2000B), frame bias,
// ICRS / mean / true equator of date / ecliptic / galactic / horizontal
// frames, catalogue precession with proper motion, apparent and astrometric
// places of the Sun, the Moon and the planets Mercury to Neptune,
// topocentric places, refraction, rise/transit/set, twilight, Moon phases
// and illumination, angular separation, parallactic angle, airmass,
// observability windows and a small target resolver that knows the bodies
// and the standard VLA flux/polarisation calibrators.
//
// Models:
//
//   - Planets and the Earth: VSOP87B (Bretagnon & Francou 1988), terms below
//     5e-10 dropped; generated into vsop87_data.go by internal/gen.
//
//   - Moon: ELP/MPP02 fitted to DE405 (Chapront & Francou 2003), generated
//     into elpmpp02_data.go.
//
//   - Precession: IAU 2006 (Fukushima-Williams angles); nutation IAU 2000B
//     (77 luni-solar terms, McCarthy & Luzum 2003) plus the two leading
//     complementary terms of the equation of the equinoxes.
//
//   - Apparent places: light time, gravitational deflection by the Sun,
//     relativistic-order stellar aberration, frame bias, precession and
//     nutation, in the manner of SOFA/ERFA and NOVAS.
//
//   - Earth rotation: UT1 = UTC by default (the almanac convention), an
//     explicit DUT1, or the built-in IERS EOP 14 C04 UT1−UTC series
//     (1962–2022, TimeConfig.UseIERS), generated into eop_data.go.
//
// Measured accuracy (go test -v ./ephemeris, lines starting MEASURED):
// Sun and planets agree with JPL Horizons and Meeus' complete-VSOP87
// values to 0.05″, the Moon with Horizons (DE431) to 0.3″, topocentric
// azimuth/elevation to 0.3″ with IERS UT1, GMST/GAST to 0.1 ms of the IAU
// 2006 definition, rise/set to a few seconds of USNO and Meeus.
//
// Conventions: angles in the public API are in degrees (right ascension too,
// unless a name says Hours); azimuth is measured from north through east;
// longitudes are east-positive; distances of bodies are in astronomical
// units. Times are carried by [Time], which records TT and UT1 Julian dates;
// construct it with [FromUTC] (leap-second table, optional DUT1) or
// [FromTT] / [FromUT1].
//
// Every function validates its input and returns an error wrapping
// [ErrInvalidArgument] or [ErrUnknownBody] that names the offending field;
// nothing panics on bad input. The package depends only on the standard
// library; the REST handler lives in subpackage ephemhttp.
package ephemeris
