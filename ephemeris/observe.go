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

	// Apparent place of the target, recomputed daily (precession, nutation
	// and aberration change slowly).
	appDay := math.NaN()
	var app Equatorial
	sunCache := newDirCache(Sun, 6.0/24)
	moonCache := newDirCache(Moon, 1.0/24)
	score := func(jd float64) (float64, float64) {
		if math.Floor(jd) != appDay {
			appDay = math.Floor(jd)
			app, _ = ApparentFromICRS(raDeg, decDeg, fromJDUTC0(appDay+0.5))
		}
		t := fromJDUTC0(jd)
		_, alt, _, _ := HorizontalFromEquatorial(app.RA, app.Dec, t, s)
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
// axes) linearly between nodes spaced by step days.
type dirCache struct {
	b      Body
	step   float64
	n0, n1 float64
	v0, v1 vec3
}

func newDirCache(b Body, step float64) *dirCache {
	return &dirCache{b: b, step: step, n0: math.NaN()}
}

func (d *dirCache) at(jd float64) vec3 {
	n := math.Floor(jd/d.step) * d.step
	if n != d.n0 {
		d.n0, d.n1 = n, n+d.step
		d.v0 = d.dir(d.n0)
		d.v1 = d.dir(d.n1)
	}
	f := (jd - d.n0) / d.step
	return d.v0.scale(1 - f).add(d.v1.scale(f)).unit()
}

func (d *dirCache) dir(jd float64) vec3 {
	t := fromJDUTC0(jd)
	return compute(d.b, t, observer{}, newFrame(t.tt)).appGC
}
