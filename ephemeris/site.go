package ephemeris

import (
	"fmt"
	"math"
	"strings"
)

// Site is an observer on the Earth: geodetic WGS84 latitude and longitude
// in degrees (east-positive) and height above the ellipsoid in metres.
type Site struct {
	Name    string
	LatDeg  float64
	LonDeg  float64
	HeightM float64
}

// VLA is the Karl G. Jansky Very Large Array centre as published by NRAO:
// 34°04′43.497″ N, 107°37′03.819″ W, 2124 m (WGS84 assumed).
var VLA = Site{
	Name:    "vla",
	LatDeg:  34 + 4.0/60 + 43.497/3600,
	LonDeg:  -(107 + 37.0/60 + 3.819/3600),
	HeightM: 2124,
}

// Sites are the named sites SiteByName knows.
var Sites = map[string]Site{"vla": VLA}

// SiteByName returns a named site (case-insensitive), e.g. "vla".
func SiteByName(name string) (Site, error) {
	s, ok := Sites[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Site{}, invalid("site", name, "unknown site; known: vla")
	}
	return s, nil
}

// Validate checks the site's coordinates; the error names the field.
func (s Site) Validate() error {
	switch {
	case math.IsNaN(s.LatDeg) || s.LatDeg < -90 || s.LatDeg > 90:
		return invalid("lat", s.LatDeg, "latitude must be within -90..90 degrees")
	case math.IsNaN(s.LonDeg) || s.LonDeg < -180 || s.LonDeg > 360:
		return invalid("lon", s.LonDeg, "longitude must be within -180..360 degrees")
	case math.IsNaN(s.HeightM) || s.HeightM < -12000 || s.HeightM > 100000:
		return invalid("height", s.HeightM, "height must be within -12 km..100 km")
	}
	return nil
}

// String describes the site.
func (s Site) String() string {
	return fmt.Sprintf("%s (lat %.6f, lon %.6f, %.0f m)", s.Name, s.LatDeg, s.LonDeg, s.HeightM)
}

// itrs returns the geocentric ITRS position in AU (WGS84).
func (s Site) itrs() vec3 {
	const a = 6378.137 // km
	const f = 1 / 298.257223563
	e2 := f * (2 - f)
	phi, lam := s.LatDeg*deg2rad, s.LonDeg*deg2rad
	sp, cp := math.Sincos(phi)
	sl, cl := math.Sincos(lam)
	n := a / math.Sqrt(1-e2*sp*sp)
	h := s.HeightM / 1000
	return vec3{(n + h) * cp * cl, (n + h) * cp * sl, (n*(1-e2) + h) * sp}.scale(1 / AUkm)
}

// enu returns the local east, north and up unit vectors in ITRS.
func (s Site) enu() (e, n, u vec3) {
	sp, cp := math.Sincos(s.LatDeg * deg2rad)
	sl, cl := math.Sincos(s.LonDeg * deg2rad)
	return vec3{-sl, cl, 0}, vec3{-sp * cl, -sp * sl, cp}, vec3{cp * cl, cp * sl, sp}
}

// earthRotRate is the Earth's rotation in radians per UT1 day.
const earthRotRate = twoPi * 1.00273781191135448

// observerAt returns the site's GCRS position and velocity.
func (s Site) observerAt(t Time, f frame) (observer, float64) {
	g := gast(t, f)
	r := rotZ(-g).apply(s.itrs()) // true of date
	v := vec3{-earthRotRate * r[1], earthRotRate * r[0], 0}
	nt := f.npb.transpose()
	return observer{pos: nt.apply(r), vel: nt.apply(v)}, g
}
