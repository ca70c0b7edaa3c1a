package ephemeris

import (
	"math"
	"time"
)

// Window is an interval during which a target is observable.
type Window struct {
	Start, End time.Time
	// MaxAltDeg is the highest (airless, topocentric) altitude in the window.
	MaxAltDeg float64
}

// ObservabilityConfig holds the options of Observability.
type ObservabilityConfig struct {
	// MinAltDeg is the minimum elevation (default 0 when nil).
	MinAltDeg *float64
	// SunAvoidDeg and MoonAvoidDeg exclude times when the target is closer
	// than this to the Sun or the Moon (0 = no avoidance).
	SunAvoidDeg, MoonAvoidDeg float64
	// StepMinutes is the sampling step (default 5); edges are refined to a
	// second.
	StepMinutes float64
}

// Observability returns the windows in [from, to] when a fixed ICRS
// position (degrees) is above the minimum elevation at a site, optionally
// outside Sun and Moon avoidance angles. The range may not exceed 366 days.
func Observability(raDeg, decDeg float64, from, to time.Time, s Site, cfg *ObservabilityConfig) ([]Window, error) {
	var c ObservabilityConfig
	if cfg != nil {
		c = *cfg
	}
	minAlt := 0.0
	if c.MinAltDeg != nil {
		minAlt = *c.MinAltDeg
	}
	switch {
	case math.IsNaN(raDeg) || raDeg < 0 || raDeg >= 360:
		return nil, invalid("ra", raDeg, "must be within [0, 360) degrees")
	case math.IsNaN(decDeg) || decDeg < -90 || decDeg > 90:
		return nil, invalid("dec", decDeg, "must be within -90..90 degrees")
	case math.IsNaN(minAlt) || minAlt < -90 || minAlt > 90:
		return nil, invalid("min_alt", minAlt, "must be within -90..90 degrees")
	case !to.After(from):
		return nil, invalid("to", to.Format(time.RFC3339), "must be after from")
	case to.Sub(from) > MaxPhaseRange:
		return nil, invalid("to", to.Format(time.RFC3339), "range longer than 366 days")
	case c.SunAvoidDeg < 0 || c.SunAvoidDeg > 180 || math.IsNaN(c.SunAvoidDeg):
		return nil, invalid("sun_avoid", c.SunAvoidDeg, "must be within 0..180 degrees")
	case c.MoonAvoidDeg < 0 || c.MoonAvoidDeg > 180 || math.IsNaN(c.MoonAvoidDeg):
		return nil, invalid("moon_avoid", c.MoonAvoidDeg, "must be within 0..180 degrees")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := FromUTC(from, nil); err != nil {
		return nil, invalid("from", from.Format(time.RFC3339), err.Error())
	}
	step := c.StepMinutes
	if step <= 0 {
		step = 5
	}
	jd0, jd1 := JDFromTime(from), JDFromTime(to)
	target := fromSpherical(raDeg*deg2rad, decDeg*deg2rad, 1)

	// Apparent place of the target and the equation of the equinoxes,
	// recomputed daily (precession, nutation and aberration change slowly);
	// per sample only the Earth rotation angle changes.
	appDay := math.NaN()
	var sinDec, cosDec, raRad, ee float64
	sinLat, cosLat := math.Sincos(s.LatDeg * deg2rad)
	lon := s.LonDeg * deg2rad
	sunCache := newDirCache(Sun, 6.0/24)
	moonCache := newDirCache(Moon, 4.0/24)
	score := func(jd float64) (float64, float64) {
		if d := math.Floor(jd); d != appDay {
			appDay = d
			tn := fromJDUTC0(d + 0.5)
			app, _ := ApparentFromICRS(raDeg, decDeg, tn)
			raRad = app.RA * deg2rad
			sinDec, cosDec = math.Sincos(app.Dec * deg2rad)
			ee = newFrame(tn.tt).eqEquinoxes()
		}
		t := fromJDUTC0(jd)
		ha := gmst06(t.ut1, t.tt) + ee + lon - raRad
		alt := math.Asin(math.Max(-1, math.Min(1, sinLat*sinDec+cosLat*cosDec*math.Cos(ha)))) * rad2deg
		v := alt - minAlt
		if c.SunAvoidDeg > 0 {
			v = math.Min(v, sepRad(target, sunCache.at(jd))*rad2deg-c.SunAvoidDeg)
		}
		if c.MoonAvoidDeg > 0 {
			v = math.Min(v, sepRad(target, moonCache.at(jd))*rad2deg-c.MoonAvoidDeg)
		}
		return v, alt
	}
	dstep := step / 1440
	var out []Window
	var cur *Window
	prevJD := jd0
	prevV, prevAlt := score(jd0)
	if prevV >= 0 {
		cur = &Window{Start: TimeFromJD(jd0).Round(time.Second), MaxAltDeg: prevAlt}
	}
	edge := func(lo, hi float64) float64 {
		vlo, _ := score(lo)
		for hi-lo > 0.5/86400 {
			mid := (lo + hi) / 2
			vm, _ := score(mid)
			if (vm >= 0) == (vlo >= 0) {
				lo, vlo = mid, vm
			} else {
				hi = mid
			}
		}
		return (lo + hi) / 2
	}
	for jd := jd0; jd < jd1; {
		next := math.Min(jd+dstep, jd1)
		v, alt := score(next)
		switch {
		case prevV < 0 && v >= 0:
			cur = &Window{Start: TimeFromJD(edge(prevJD, next)).Round(time.Second), MaxAltDeg: alt}
		case prevV >= 0 && v < 0 && cur != nil:
			cur.End = TimeFromJD(edge(prevJD, next)).Round(time.Second)
			out = append(out, *cur)
			cur = nil
		case v >= 0 && cur != nil:
			cur.MaxAltDeg = math.Max(cur.MaxAltDeg, alt)
		}
		prevJD, prevV = next, v
		jd = next
	}
	if cur != nil {
		cur.End = TimeFromJD(jd1).Round(time.Second)
		out = append(out, *cur)
	}
	// Refine the culmination inside each window: the altitude maximum may
	// fall between samples.
	for i := range out {
		a, b := JDFromTime(out[i].Start), JDFromTime(out[i].End)
		for range 40 {
			m1, m2 := a+(b-a)/3, b-(b-a)/3
			_, h1 := score(m1)
			_, h2 := score(m2)
			if h1 < h2 {
				a = m1
			} else {
				b = m2
			}
		}
		if _, h := score((a + b) / 2); h > out[i].MaxAltDeg {
			out[i].MaxAltDeg = h
		}
	}
	return out, nil
}

// dirCache interpolates a body's apparent geocentric direction (GCRS
// axes) linearly between nodes spaced by step days, memoising the nodes.
type dirCache struct {
	b     Body
	step  float64
	nodes map[int64]vec3
}

func newDirCache(b Body, step float64) *dirCache {
	return &dirCache{b: b, step: step, nodes: make(map[int64]vec3)}
}

func (d *dirCache) node(k int64) vec3 {
	if v, ok := d.nodes[k]; ok {
		return v
	}
	t := fromJDUTC0(float64(k) * d.step)
	v := compute(d.b, t, observer{}, newFrame(t.tt)).appGC
	d.nodes[k] = v
	return v
}

func (d *dirCache) at(jd float64) vec3 {
	x := jd / d.step
	k := int64(math.Floor(x))
	f := x - float64(k)
	return d.node(k).scale(1 - f).add(d.node(k + 1).scale(f)).unit()
}
