package ephemeris

import (
	"math"
	"strings"
)

// Body is a solar-system body the package computes.
type Body int

// The bodies known to the package.
const (
	Sun Body = iota + 1
	Moon
	Mercury
	Venus
	Mars
	Jupiter
	Saturn
	Uranus
	Neptune
)

var bodyNames = map[Body]string{
	Sun: "sun", Moon: "moon", Mercury: "mercury", Venus: "venus", Mars: "mars",
	Jupiter: "jupiter", Saturn: "saturn", Uranus: "uranus", Neptune: "neptune",
}

// Bodies lists every Body in order from the Sun outwards (Moon second).
var Bodies = []Body{Sun, Moon, Mercury, Venus, Mars, Jupiter, Saturn, Uranus, Neptune}

// String returns the lower-case name of the body.
func (b Body) String() string {
	if n, ok := bodyNames[b]; ok {
		return n
	}
	return "unknown"
}

// ParseBody maps a case-insensitive name ("sun", "Moon", "JUPITER") to a
// Body; the error wraps ErrUnknownBody and names the field "body".
func ParseBody(name string) (Body, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for b, s := range bodyNames {
		if s == n {
			return b, nil
		}
	}
	return 0, &FieldError{Field: "body", Value: name, Reason: "want sun, moon, mercury, venus, mars, jupiter, saturn, uranus or neptune", Err: ErrUnknownBody}
}

func (b Body) valid() bool { _, ok := bodyNames[b]; return ok }

func (b Body) series() *vsopPlanet {
	switch b {
	case Mercury:
		return &vsop87BMercury
	case Venus:
		return &vsop87BVenus
	case Mars:
		return &vsop87BMars
	case Jupiter:
		return &vsop87BJupiter
	case Saturn:
		return &vsop87BSaturn
	case Uranus:
		return &vsop87BUranus
	case Neptune:
		return &vsop87BNeptune
	}
	return nil
}

// Mean radii in km (IAU WGCCRE 2015; Moon 1737.4, Sun 696000) used for
// semidiameters.
var bodyRadiusKm = map[Body]float64{
	Sun: 696000, Moon: 1737.4, Mercury: 2439.7, Venus: 6051.8, Mars: 3389.5,
	Jupiter: 69911, Saturn: 58232, Uranus: 25362, Neptune: 24622,
}

// schwarzschild radius of the Sun in AU (2GM☉/c²).
const srsAU = 1.97412574336e-8

// Equatorial is a direction (degrees) with an optional distance (AU).
type Equatorial struct {
	RA, Dec  float64
	Distance float64
}

// Place is the position of a body at an instant.
type Place struct {
	Body Body
	Time Time
	// RA, Dec: apparent geocentric (or topocentric, see Topocentric) right
	// ascension and declination, true equator and equinox of date, degrees.
	RA, Dec float64
	// Distance is the light-time-corrected distance in AU.
	Distance float64
	// RAICRS, DecICRS: astrometric place (light time, no aberration or
	// deflection) on ICRS axes, degrees.
	RAICRS, DecICRS float64
	// EclLon, EclLat: apparent ecliptic longitude and latitude of date
	// (true obliquity), degrees.
	EclLon, EclLat float64
	// LightTime is the light time in days.
	LightTime float64
	// GeometricDistance is the geometric distance in AU at the instant
	// (no light time), from the geocentre or the site.
	GeometricDistance float64

	appTOD vec3 // unit vector, true of date
	appGC  vec3 // apparent unit vector on GCRS axes
	f      frame
}

// Apparent returns the apparent place of date.
func (p Place) Apparent() Equatorial { return Equatorial{p.RA, p.Dec, p.Distance} }

// Astrometric returns the astrometric ICRS place.
func (p Place) Astrometric() Equatorial { return Equatorial{p.RAICRS, p.DecICRS, p.Distance} }

// earthState returns the heliocentric ICRS position and velocity of the
// geocentre (AU, AU/day).
func earthState(jd float64) (vec3, vec3) { return vsop87BEarth.helio(jd) }

// observer is a point given relative to the geocentre on GCRS axes.
type observer struct {
	pos, vel vec3 // AU, AU/day
}

// compute is the common apparent-place pipeline (SOFA/NOVAS style).
func compute(b Body, t Time, obs observer, f frame) Place {
	jd := t.tt
	e, ev := earthState(jd)
	oh := e.add(obs.pos)  // observer, heliocentric
	ov := ev.add(obs.vel) // observer velocity, heliocentric ≈ barycentric
	var d vec3            // astrometric vector observer -> body
	var tau float64
	var geo vec3 // geometric vector observer -> body at t
	switch b {
	case Sun:
		d = oh.scale(-1)
		geo = d
		tau = d.norm() / cAUPerDay
	case Moon:
		// Light time from the distance series alone (cheap), then one full
		// evaluation at t - tau; the geocentre at t - tau is -ev*tau from
		// its place at t.
		tau = moonDistance(jd) / cAUPerDay
		m := moonGeo(jd - tau)
		d = m.sub(ev.scale(tau)).sub(obs.pos)
		geo = m.sub(obs.pos) // the Moon moves ~1.3 km in the light time
		tau = d.norm() / cAUPerDay
	default:
		// Two evaluations: geometric at t (with velocity), then at the
		// light-time-retarded instant, with a first-order correction for
		// the final light-time change.
		s := b.series()
		p, _ := s.helio(jd)
		geo = p.sub(oh)
		tau = geo.norm() / cAUPerDay
		p, v := s.helio(jd - tau)
		d = p.sub(oh)
		tau2 := d.norm() / cAUPerDay
		d = d.sub(v.scale(tau2 - tau))
		tau = d.norm() / cAUPerDay
	}
	dist := d.norm()
	p := d.scale(1 / dist)
	em := oh.norm()
	eu := oh.scale(1 / em)
	// Light deflection by the Sun (not for the Sun itself; negligible and
	// ill-defined for the Moon).
	if b != Sun && b != Moon {
		q := d.add(oh).unit()
		qpe := q.add(eu)
		qdqpe := math.Max(q.dot(qpe), 1e-6)
		w := srsAU / em / qdqpe
		p = p.add(p.cross(eu.cross(q)).scale(w)).unit()
	}
	// Aberration (SOFA ab).
	v := ov.scale(1 / cAUPerDay)
	bm1 := math.Sqrt(1 - v.dot(v))
	pdv := p.dot(v)
	w1 := 1 + pdv/(1+bm1)
	w2 := srsAU / em
	var pa vec3
	for i := range 3 {
		pa[i] = p[i]*bm1 + w1*v[i] + w2*(v[i]-pdv*p[i])
	}
	pa = pa.unit()
	tod := f.npb.apply(pa)
	pl := Place{Body: b, Time: t, Distance: dist, LightTime: tau, appTOD: tod, appGC: pa, f: f}
	pl.GeometricDistance = geo.norm()
	ra, dec := spherical(tod)
	pl.RA, pl.Dec = ra*rad2deg, dec*rad2deg
	ra, dec = spherical(d)
	pl.RAICRS, pl.DecICRS = ra*rad2deg, dec*rad2deg
	ecl := rotX(f.epsA + f.deps).apply(tod)
	lon, lat := spherical(ecl)
	pl.EclLon, pl.EclLat = lon*rad2deg, lat*rad2deg
	return pl
}

// Position returns the geocentric apparent and astrometric place of a body.
func Position(b Body, t Time) (Place, error) {
	if !b.valid() {
		return Place{}, &FieldError{Field: "body", Value: int(b), Reason: "not a known body", Err: ErrUnknownBody}
	}
	if err := t.check(); err != nil {
		return Place{}, err
	}
	return compute(b, t, observer{}, newFrame(t.tt)), nil
}

func (t Time) check() error {
	if t.tt == 0 || math.IsNaN(t.tt) || math.IsNaN(t.ut1) {
		return invalid("time", t.tt, "zero or invalid Time; build one with FromUTC/FromTT")
	}
	// VSOP87 and ELP/MPP02 are fitted over a few millennia.
	if t.tt < 625673.5 || t.tt > 4642999.5 { // -3000 .. 8000
		return invalid("time", t.tt, "outside the years -3000..8000 the theories cover")
	}
	return nil
}

// SemidiameterDeg returns the apparent angular semidiameter (degrees) of a
// body at a distance in AU.
func SemidiameterDeg(b Body, distanceAU float64) float64 {
	r := bodyRadiusKm[b]
	if distanceAU <= 0 {
		return 0
	}
	return math.Asin(math.Min(1, r/(distanceAU*AUkm))) * rad2deg
}
