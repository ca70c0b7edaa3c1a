package ephemeris

import "math"

const (
	deg2rad = math.Pi / 180
	rad2deg = 180 / math.Pi
	as2rad  = math.Pi / (180 * 3600)
	twoPi   = 2 * math.Pi
	// j2000 is the Julian date of the epoch J2000.0 (TT).
	j2000 = 2451545.0
	// AUkm is the astronomical unit in kilometres (IAU 2012).
	AUkm = 149597870.700
	// cAUPerDay is the speed of light in AU per day.
	cAUPerDay = 299792.458 * 86400 / AUkm
)

type vec3 [3]float64
type mat3 [3][3]float64

func (a vec3) add(b vec3) vec3      { return vec3{a[0] + b[0], a[1] + b[1], a[2] + b[2]} }
func (a vec3) sub(b vec3) vec3      { return vec3{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func (a vec3) scale(s float64) vec3 { return vec3{a[0] * s, a[1] * s, a[2] * s} }
func (a vec3) dot(b vec3) float64   { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func (a vec3) norm() float64        { return math.Sqrt(a.dot(a)) }
func (a vec3) unit() vec3 {
	n := a.norm()
	if n == 0 {
		return a
	}
	return a.scale(1 / n)
}
func (a vec3) cross(b vec3) vec3 {
	return vec3{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}

func (m mat3) apply(v vec3) vec3 {
	return vec3{
		m[0][0]*v[0] + m[0][1]*v[1] + m[0][2]*v[2],
		m[1][0]*v[0] + m[1][1]*v[1] + m[1][2]*v[2],
		m[2][0]*v[0] + m[2][1]*v[1] + m[2][2]*v[2],
	}
}

func (m mat3) transpose() mat3 {
	var t mat3
	for i := range 3 {
		for j := range 3 {
			t[i][j] = m[j][i]
		}
	}
	return t
}

func (m mat3) mul(n mat3) mat3 {
	var r mat3
	for i := range 3 {
		for j := range 3 {
			r[i][j] = m[i][0]*n[0][j] + m[i][1]*n[1][j] + m[i][2]*n[2][j]
		}
	}
	return r
}

func identity() mat3 { return mat3{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}} }

// rotX, rotY, rotZ are frame rotations in the SOFA sense (rotating the
// coordinate axes by angle a, radians).
func rotX(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{1, 0, 0}, {0, c, s}, {0, -s, c}}
}

func rotY(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{c, 0, -s}, {0, 1, 0}, {s, 0, c}}
}

func rotZ(a float64) mat3 {
	s, c := math.Sincos(a)
	return mat3{{c, s, 0}, {-s, c, 0}, {0, 0, 1}}
}

// spherical returns longitude in [0, 2π) and latitude of v.
func spherical(v vec3) (lon, lat float64) {
	lon = math.Atan2(v[1], v[0])
	if lon < 0 {
		lon += twoPi
	}
	lat = math.Atan2(v[2], math.Hypot(v[0], v[1]))
	return
}

func fromSpherical(lon, lat, r float64) vec3 {
	sl, cl := math.Sincos(lon)
	sb, cb := math.Sincos(lat)
	return vec3{r * cb * cl, r * cb * sl, r * sb}
}

// normDeg wraps degrees into [0, 360).
func normDeg(a float64) float64 {
	a = math.Mod(a, 360)
	if a < 0 {
		a += 360
	}
	return a
}

// wrap180 wraps degrees into (-180, 180].
func wrap180(a float64) float64 {
	a = normDeg(a)
	if a > 180 {
		a -= 360
	}
	return a
}

func normRad(a float64) float64 {
	a = math.Mod(a, twoPi)
	if a < 0 {
		a += twoPi
	}
	return a
}

// sepRad is the angle between two vectors, robust at small and large angles.
func sepRad(a, b vec3) float64 {
	return math.Atan2(a.cross(b).norm(), a.dot(b))
}
