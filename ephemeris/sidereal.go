package ephemeris

import "math"

// EarthRotationAngle returns the Earth rotation angle in degrees at a UT1
// Julian date (IAU 2000).
func EarthRotationAngle(jdUT1 float64) float64 {
	return era(jdUT1) * rad2deg
}

func era(jdUT1 float64) float64 {
	d := jdUT1 - j2000
	f := math.Mod(jdUT1, 1.0) // fraction of the day (J2000.0 is at noon, an integer JD)
	return normRad(twoPi * (f + 0.7790572732640 + 0.00273781191135448*d))
}

// gmst06 returns GMST (radians), IAU 2006: ERA plus the precession in RA
// polynomial in TT.
func gmst06(jdUT1, jdTT float64) float64 {
	t := (jdTT - j2000) / 36525
	return normRad(era(jdUT1) + (0.014506+(4612.156534+(1.3915817+(-0.00000044+(-0.000029956-0.0000000368*t)*t)*t)*t)*t)*as2rad)
}

// Sidereal holds Greenwich and local sidereal times.
type Sidereal struct {
	// GMSTHours and GASTHours are Greenwich mean and apparent sidereal time
	// in hours [0, 24).
	GMSTHours, GASTHours float64
	// ERADeg is the Earth rotation angle in degrees [0, 360).
	ERADeg float64
	// LMSTHours and LASTHours are local mean and apparent sidereal time for
	// the longitude given (east-positive).
	LMSTHours, LASTHours float64
}

// SiderealTime returns GMST and GAST (IAU 2006/2000B) and the local values
// for an east longitude in degrees.
func SiderealTime(t Time, lonDeg float64) (Sidereal, error) {
	if math.IsNaN(lonDeg) || lonDeg < -180 || lonDeg > 360 {
		return Sidereal{}, invalid("lon", lonDeg, "must be within -180..360 degrees")
	}
	f := newFrame(t.tt)
	gm := gmst06(t.ut1, t.tt)
	ga := normRad(gm + f.eqEquinoxes())
	toH := 12 / math.Pi
	return Sidereal{
		GMSTHours: gm * toH,
		GASTHours: ga * toH,
		ERADeg:    era(t.ut1) * rad2deg,
		LMSTHours: normRad(gm+lonDeg*deg2rad) * toH,
		LASTHours: normRad(ga+lonDeg*deg2rad) * toH,
	}, nil
}

// gast returns GAST in radians for a Time and its frame.
func gast(t Time, f frame) float64 {
	return normRad(gmst06(t.ut1, t.tt) + f.eqEquinoxes())
}

// GMST1982Hours returns Greenwich mean sidereal time in hours from the
// IAU 1982 expression (Aoki et al.; Meeus eq. 12.4) at a UT1 Julian date.
// It differs from the IAU 2006 GMST used elsewhere by the precession-rate
// correction: about +3.3 ms in 1987, 1 ms at 2000 (GMST06 − GMST82).
func GMST1982Hours(jdUT1 float64) float64 {
	d := jdUT1 - j2000
	t := d / 36525
	g := 280.46061837 + 360.98564736629*d + (0.000387933-t/38710000)*t*t
	return normDeg(g) / 15
}

// GAST1982Hours returns apparent sidereal time in the IAU 1982/1994 manner
// (GMST82 plus Δψ cos ε); with IAU 2000B nutation it reproduces the IAU
// 1980 values to well under a millisecond.
func GAST1982Hours(t Time) float64 {
	f := newFrame(t.tt)
	return math.Mod(GMST1982Hours(t.ut1)+f.dpsi*math.Cos(f.epsA)*rad2deg/15+24, 24)
}
