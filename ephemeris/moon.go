package ephemeris

import (
	"math"
	"time"
)

// Illumination describes the Moon's (or a planet's) phase.
type Illumination struct {
	// Fraction is the illuminated fraction of the disk, 0..1.
	Fraction float64
	// PhaseAngleDeg is the Sun–body–observer angle.
	PhaseAngleDeg float64
	// ElongationDeg is the geocentric Sun–observer–body angle.
	ElongationDeg float64
	// BrightLimbDeg is the position angle of the bright limb's midpoint,
	// from north through east.
	BrightLimbDeg float64
}

// IlluminationFrom computes the illumination from the apparent places of
// the Sun and the body, both with distances in the same unit (Meeus
// ch. 48).
func IlluminationFrom(sun, body Equatorial) (Illumination, error) {
	if sun.Distance <= 0 || body.Distance <= 0 {
		return Illumination{}, invalid("distance", body.Distance, "sun and body distances must be positive")
	}
	s := fromSpherical(sun.RA*deg2rad, sun.Dec*deg2rad, 1)
	m := fromSpherical(body.RA*deg2rad, body.Dec*deg2rad, 1)
	psi := sepRad(s, m)
	i := math.Atan2(sun.Distance*math.Sin(psi), body.Distance-sun.Distance*math.Cos(psi))
	a0, d0 := sun.RA*deg2rad, sun.Dec*deg2rad
	a, d := body.RA*deg2rad, body.Dec*deg2rad
	chi := math.Atan2(math.Cos(d0)*math.Sin(a0-a), math.Sin(d0)*math.Cos(d)-math.Cos(d0)*math.Sin(d)*math.Cos(a0-a))
	return Illumination{
		Fraction:      (1 + math.Cos(i)) / 2,
		PhaseAngleDeg: i * rad2deg,
		ElongationDeg: psi * rad2deg,
		BrightLimbDeg: normDeg(chi * rad2deg),
	}, nil
}

// MoonIllumination returns the geocentric illumination of the Moon.
func MoonIllumination(t Time) (Illumination, error) {
	s, err := Position(Sun, t)
	if err != nil {
		return Illumination{}, err
	}
	m, _ := Position(Moon, t)
	return IlluminationFrom(s.Apparent(), m.Apparent())
}

// Phase is a principal Moon phase.
type Phase int

// The four principal phases, in order.
const (
	NewMoon Phase = iota
	FirstQuarter
	FullMoon
	LastQuarter
)

// String returns "new", "first_quarter", "full" or "last_quarter".
func (p Phase) String() string {
	return [...]string{"new", "first_quarter", "full", "last_quarter"}[p&3]
}

// ParsePhase is the inverse of Phase.String.
func ParsePhase(s string) (Phase, error) {
	for p := NewMoon; p <= LastQuarter; p++ {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, invalid("phase", s, "want new, first_quarter, full or last_quarter")
}

// PhaseEvent is one principal phase at an instant.
type PhaseEvent struct {
	Phase Phase
	Time  Time
}

// elongLon returns the apparent geocentric ecliptic longitude of the Moon
// minus that of the Sun, degrees in [0, 360).
func elongLon(jdTT float64) float64 {
	t := FromTT(jdTT)
	f := newFrame(jdTT)
	s := compute(Sun, t, observer{}, f)
	m := compute(Moon, t, observer{}, f)
	return normDeg(m.EclLon - s.EclLon)
}

// MaxPhaseRange is the longest interval Phases and Observability accept.
const MaxPhaseRange = 366 * 24 * time.Hour

// Phases returns the principal Moon phases (instants when the apparent
// geocentric ecliptic longitudes of Moon and Sun differ by 0°, 90°, 180°,
// 270°) in [from, to), in time order. The range may not exceed 366 days.
func Phases(from, to time.Time) ([]PhaseEvent, error) {
	if !to.After(from) {
		return nil, invalid("to", to.Format(time.RFC3339), "must be after from")
	}
	if to.Sub(from) > MaxPhaseRange {
		return nil, invalid("to", to.Format(time.RFC3339), "range longer than 366 days")
	}
	t0, err := FromUTC(from, nil)
	if err != nil {
		return nil, invalid("from", from.Format(time.RFC3339), err.Error())
	}
	t1, err := FromUTC(to, nil)
	if err != nil {
		return nil, invalid("to", to.Format(time.RFC3339), err.Error())
	}
	return phasesTT(t0.tt, t1.tt), nil
}

// PhaseNear returns the instant of the given phase nearest to a TT Julian
// date (within ±15 days).
func PhaseNear(p Phase, jdTT float64) (Time, error) {
	if math.IsNaN(jdTT) || jdTT < 625673.5 || jdTT > 4642999.5 {
		return Time{}, invalid("jd", jdTT, "outside the years -3000..8000")
	}
	ev := phasesTT(jdTT-16, jdTT+16)
	best, bestD := Time{}, math.Inf(1)
	for _, e := range ev {
		if e.Phase == p && math.Abs(e.Time.tt-jdTT) < bestD {
			best, bestD = e.Time, math.Abs(e.Time.tt-jdTT)
		}
	}
	if bestD > 16 {
		return Time{}, invalid("jd", jdTT, "no such phase found nearby")
	}
	return best, nil
}

func phasesTT(a, b float64) []PhaseEvent {
	const step = 1.0 // day; elongation advances ~12.2°/day
	var out []PhaseEvent
	prevT := a
	prev := elongLon(a)
	for x := a; x < b; {
		nx := math.Min(x+step, b)
		cur := elongLon(nx)
		for k := range 4 {
			target := float64(k) * 90
			d0 := wrap180(prev - target)
			d1 := wrap180(cur - target)
			if d0 < 0 && d1 >= 0 && d1-d0 < 90 {
				lo, hi := prevT, nx
				for hi-lo > 0.1/86400 {
					mid := (lo + hi) / 2
					if wrap180(elongLon(mid)-target) < 0 {
						lo = mid
					} else {
						hi = mid
					}
				}
				tt := (lo + hi) / 2
				if tt >= a && tt < b {
					out = append(out, PhaseEvent{Phase: Phase(k), Time: FromTT(tt)})
				}
			}
		}
		prev, prevT, x = cur, nx, nx
	}
	return out
}
