package ephemeris

import (
	"math"
	"time"
)

// Standard altitudes (degrees) of the centre of a body at rise and set.
const (
	// SunStandardAltitude is the USNO definition: upper limb on the horizon
	// with 34′ refraction and 16′ semidiameter.
	SunStandardAltitude = -0.8333
	// StarStandardAltitude applies to planets and fixed positions (34′
	// refraction).
	StarStandardAltitude = -0.5667
	// CivilTwilight, NauticalTwilight and AstronomicalTwilight are the Sun
	// centre altitudes that bound twilight.
	CivilTwilight        = -6.0
	NauticalTwilight     = -12.0
	AstronomicalTwilight = -18.0
)

// RiseSet holds the events of one UTC date. A nil time means the event
// does not occur that date.
type RiseSet struct {
	Rise, Transit, Set *time.Time
	// TransitAltDeg is the geometric (airless) altitude at upper transit
	// (NaN if no transit that date).
	TransitAltDeg float64
	// Circumpolar is true when the body stays above the standard altitude
	// all day; NeverRises when it stays below.
	Circumpolar, NeverRises bool
}

// RiseSetConfig holds the options of RiseTransitSet. nil means defaults.
type RiseSetConfig struct {
	// AltitudeDeg overrides the standard altitude of the body's centre; when
	// nil the standard for the body is used (Sun −0.8333°, Moon −34′ minus
	// its topocentric semidiameter, others −0.5667°).
	AltitudeDeg *float64
}

// altFunc returns the altitude difference to the event altitude and the
// hour angle in degrees at a UTC Julian date.
type altFunc func(jdUTC float64) (dAlt, ha, alt float64)

func bodyAltFunc(b Body, s Site, h0 *float64) altFunc {
	return func(jd float64) (float64, float64, float64) {
		t := fromJDUTC0(jd)
		f := newFrame(t.tt)
		obs, g := s.observerAt(t, f)
		pl := compute(b, t, obs, f)
		tp := horizontalOf(pl, s, g, TopoConfig{})
		ref := StarStandardAltitude
		switch {
		case h0 != nil:
			ref = *h0
		case b == Sun:
			ref = SunStandardAltitude
		case b == Moon:
			ref = -34.0/60 - SemidiameterDeg(Moon, pl.Distance)
		}
		return tp.AltDeg - ref, tp.HourAngleDeg, tp.AltDeg
	}
}

// RiseTransitSet finds rise, upper transit and set of a body at a site
// during the UTC date of day (its time of day is ignored). Altitudes are
// topocentric; rise/set use the standard altitudes above.
func RiseTransitSet(b Body, day time.Time, s Site, cfg *RiseSetConfig) (RiseSet, error) {
	if !b.valid() {
		return RiseSet{}, &FieldError{Field: "body", Value: int(b), Reason: "not a known body", Err: ErrUnknownBody}
	}
	if err := s.Validate(); err != nil {
		return RiseSet{}, err
	}
	var h0 *float64
	if cfg != nil {
		h0 = cfg.AltitudeDeg
	}
	d0 := time.Date(day.UTC().Year(), day.UTC().Month(), day.UTC().Day(), 0, 0, 0, 0, time.UTC)
	if d0.Year() < -2999 || d0.Year() > 7999 {
		return RiseSet{}, invalid("date", day.Format("2006-01-02"), "outside the years -3000..8000")
	}
	return findEvents(bodyAltFunc(b, s, h0), JDFromTime(d0)), nil
}

// Twilight returns dawn (morning) and dusk (evening) for a Sun-centre
// altitude (CivilTwilight, NauticalTwilight, AstronomicalTwilight or any
// other) on a UTC date; nil where the Sun does not cross it that date.
func Twilight(day time.Time, s Site, sunAltDeg float64) (dawn, dusk *time.Time, err error) {
	if math.IsNaN(sunAltDeg) || sunAltDeg < -90 || sunAltDeg > 90 {
		return nil, nil, invalid("altitude", sunAltDeg, "must be within -90..90")
	}
	r, err := RiseTransitSet(Sun, day, s, &RiseSetConfig{AltitudeDeg: &sunAltDeg})
	return r.Rise, r.Set, err
}

// FixedRiseTransitSet is RiseTransitSet for a fixed ICRS position
// (degrees), standard altitude −0.5667° unless cfg says otherwise.
func FixedRiseTransitSet(raDeg, decDeg float64, day time.Time, s Site, cfg *RiseSetConfig) (RiseSet, error) {
	if math.IsNaN(decDeg) || decDeg < -90 || decDeg > 90 {
		return RiseSet{}, invalid("dec", decDeg, "must be within -90..90")
	}
	if err := s.Validate(); err != nil {
		return RiseSet{}, err
	}
	h0 := StarStandardAltitude
	if cfg != nil && cfg.AltitudeDeg != nil {
		h0 = *cfg.AltitudeDeg
	}
	d0 := time.Date(day.UTC().Year(), day.UTC().Month(), day.UTC().Day(), 0, 0, 0, 0, time.UTC)
	jd0 := JDFromTime(d0)
	app, err := ApparentFromICRS(raDeg, decDeg, fromJDUTC0(jd0+0.5))
	if err != nil {
		return RiseSet{}, err
	}
	fn := func(jd float64) (float64, float64, float64) {
		t := fromJDUTC0(jd)
		_, alt, ha, _ := HorizontalFromEquatorial(app.RA, app.Dec, t, s)
		return alt - h0, ha, alt
	}
	return findEvents(fn, jd0), nil
}

func findEvents(fn altFunc, jd0 float64) RiseSet {
	const n = 144 // 10-minute steps
	res := RiseSet{TransitAltDeg: math.NaN()}
	var ts [n + 1]float64
	var alts, has [n + 1]float64
	above, below := true, true
	for i := 0; i <= n; i++ {
		ts[i] = jd0 + float64(i)/n
		alts[i], has[i], _ = fn(ts[i])
		if alts[i] < 0 {
			above = false
		} else {
			below = false
		}
	}
	at := func(jd float64) *time.Time {
		t := TimeFromJD(jd).Round(time.Second)
		return &t
	}
	for i := 0; i < n; i++ {
		a0, a1 := alts[i], alts[i+1]
		if res.Rise == nil && a0 < 0 && a1 >= 0 {
			res.Rise = at(bisect(fn, ts[i], ts[i+1], false))
		}
		if res.Set == nil && a0 >= 0 && a1 < 0 {
			res.Set = at(bisect(fn, ts[i], ts[i+1], false))
		}
		if res.Transit == nil && has[i] < 0 && has[i+1] >= 0 && has[i+1]-has[i] < 90 {
			jt := bisect(fn, ts[i], ts[i+1], true)
			res.Transit = at(jt)
			_, _, res.TransitAltDeg = fn(jt)
		}
	}
	if res.Rise == nil && res.Set == nil {
		res.Circumpolar = above
		res.NeverRises = below
	}
	return res
}

// bisect refines a sign change of the altitude (or, with ha, of the hour
// angle) to 0.05 s.
func bisect(fn altFunc, lo, hi float64, ha bool) float64 {
	val := func(x float64) float64 {
		a, h, _ := fn(x)
		if ha {
			return h
		}
		return a
	}
	vlo := val(lo)
	for hi-lo > 0.05/86400 {
		mid := (lo + hi) / 2
		vm := val(mid)
		if (vm < 0) == (vlo < 0) {
			lo, vlo = mid, vm
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}
