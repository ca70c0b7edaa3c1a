package ephemeris

import (
	"math"
)

// Refraction selects an atmospheric refraction model for altitudes.
type Refraction int

const (
	// RefractionNone gives airless (geometric) altitudes.
	RefractionNone Refraction = iota
	// RefractionOptical uses Saemundsson's formula (Meeus 16.4) scaled for
	// pressure and temperature.
	RefractionOptical
	// RefractionRadio scales the optical formula by the ratio of radio to
	// optical refractivity (Smith-Weintraub, including water vapour).
	RefractionRadio
)

// ParseRefraction maps "", "none", "optical" or "radio" to a Refraction.
func ParseRefraction(s string) (Refraction, error) {
	switch s {
	case "", "none":
		return RefractionNone, nil
	case "optical":
		return RefractionOptical, nil
	case "radio":
		return RefractionRadio, nil
	}
	return 0, invalid("refraction", s, "want none, optical or radio")
}

// Atmosphere is the weather used by refraction. The zero value means the
// standard conditions of the published almanac formulae (Meeus, USNO, JPL
// Horizons): 1010 hPa, 10 °C, and 50 % relative humidity for the radio
// model. Set PressureHPa (for a high site such as the VLA, about 790 hPa)
// for the physically correct value at altitude.
type Atmosphere struct {
	// PressureHPa is the air pressure at the site (0 = 1010 hPa).
	PressureHPa float64
	// TemperatureC is the air temperature; it is used only when
	// SetTemperature is true (so that 0 °C can be given), else 10 °C.
	TemperatureC   float64
	SetTemperature bool
	// RelHumidity is 0..1 (0 = 0.5); used by the radio model.
	RelHumidity float64
}

// PressureAtHeight returns the standard-atmosphere pressure (hPa) at a
// height in metres, scaled from 1010 hPa at sea level (scale height 8.4 km).
func PressureAtHeight(heightM float64) float64 { return 1010 * math.Exp(-heightM/8435) }

func (a Atmosphere) resolved() (p, tc, rh float64) {
	p, tc, rh = a.PressureHPa, a.TemperatureC, a.RelHumidity
	if p <= 0 {
		p = 1010
	}
	if !a.SetTemperature {
		tc = 10
	}
	if rh <= 0 || rh > 1 {
		rh = 0.5
	}
	return
}

// Validate checks the weather values; the error names the field.
func (a Atmosphere) Validate() error {
	switch {
	case math.IsNaN(a.PressureHPa) || a.PressureHPa < 0 || a.PressureHPa > 1200:
		return invalid("pressure", a.PressureHPa, "must be within 0..1200 hPa")
	case math.IsNaN(a.TemperatureC) || a.TemperatureC < -90 || a.TemperatureC > 60:
		return invalid("temperature", a.TemperatureC, "must be within -90..60 °C")
	case math.IsNaN(a.RelHumidity) || a.RelHumidity < 0 || a.RelHumidity > 1:
		return invalid("humidity", a.RelHumidity, "must be within 0..1")
	}
	return nil
}

// RefractionBennett returns the refraction in arcminutes for an apparent
// (observed) altitude in degrees, Bennett (1982) with Meeus' 16.4 form,
// standard conditions 1010 hPa, 10 °C.
func RefractionBennett(apparentAltDeg float64) float64 {
	h := apparentAltDeg
	return 1 / math.Tan((h+7.31/(h+4.4))*deg2rad)
}

// RefractionSaemundsson returns the refraction in arcminutes for a true
// (airless) altitude in degrees, standard conditions 1010 hPa, 10 °C
// (Meeus 16.4).
func RefractionSaemundsson(trueAltDeg float64) float64 {
	h := trueAltDeg
	return 1.02 / math.Tan((h+10.3/(h+5.11))*deg2rad)
}

// RefractionDeg returns the refraction (degrees, to be added to the true
// altitude) for a model, a true altitude and the weather. Below −2° (well
// under the horizon) it returns the value at −2°.
func RefractionDeg(model Refraction, trueAltDeg float64, atm Atmosphere) float64 {
	if model == RefractionNone {
		return 0
	}
	h := math.Max(trueAltDeg, -2)
	p, tc, rh := atm.resolved()
	tk := tc + 273.15
	r := RefractionSaemundsson(h) / 60 * (p / 1010) * (283 / tk)
	if model == RefractionRadio {
		// Saturation vapour pressure (hPa), Magnus formula.
		es := 6.1094 * math.Exp(17.625*tc/(tc+243.04))
		e := rh * es
		nOpt := 77.6 * p / tk
		nRad := 77.6*p/tk + 3.73e5*e/(tk*tk)
		r *= nRad / nOpt
	}
	return r
}

// HorizontalFromHADec converts hour angle and declination (degrees) to
// azimuth (from north through east) and elevation for a latitude, all in
// degrees (SOFA hd2ae).
func HorizontalFromHADec(haDeg, decDeg, latDeg float64) (azDeg, altDeg float64) {
	az, el := hd2ae(haDeg*deg2rad, decDeg*deg2rad, latDeg*deg2rad)
	return az * rad2deg, el * rad2deg
}

func hd2ae(ha, dec, phi float64) (az, el float64) {
	sh, ch := math.Sincos(ha)
	sd, cd := math.Sincos(dec)
	sp, cp := math.Sincos(phi)
	x := -ch*cd*sp + sd*cp
	y := -sh * cd
	z := ch*cd*cp + sd*sp
	r := math.Hypot(x, y)
	if r != 0 {
		az = math.Atan2(y, x)
	}
	if az < 0 {
		az += twoPi
	}
	el = math.Atan2(z, r)
	return
}

// ParallacticAngle returns the parallactic angle in degrees for hour angle,
// declination and latitude in degrees (SOFA hd2pa; positive west of the
// meridian).
func ParallacticAngle(haDeg, decDeg, latDeg float64) float64 {
	ha, dec, phi := haDeg*deg2rad, decDeg*deg2rad, latDeg*deg2rad
	cp := math.Cos(phi)
	sqsz := cp * math.Sin(ha)
	cqsz := math.Sin(phi)*math.Cos(dec) - cp*math.Sin(dec)*math.Cos(ha)
	if sqsz == 0 && cqsz == 0 {
		return 0
	}
	return math.Atan2(sqsz, cqsz) * rad2deg
}

// Airmass returns the relative air mass for an apparent elevation in
// degrees (Pickering 2002), or +Inf at or below the horizon.
func Airmass(elevationDeg float64) float64 {
	if elevationDeg <= 0 {
		return math.Inf(1)
	}
	h := elevationDeg
	return 1 / math.Sin((h+244/(165+47*math.Pow(h, 1.1)))*deg2rad)
}

// Topo is a body's topocentric place at a site.
type Topo struct {
	Place
	// AltDeg and AzDeg are elevation and azimuth (north through east) of the
	// topocentric apparent place, refraction added when asked for.
	AltDeg, AzDeg float64
	// HourAngleDeg is the local apparent hour angle (−180..180).
	HourAngleDeg float64
	// RefractionDeg is the refraction included in AltDeg.
	RefractionDeg float64
	// ParallacticDeg is the parallactic angle.
	ParallacticDeg float64
}

// TopoConfig holds the options of Topocentric. nil means no refraction.
type TopoConfig struct {
	Refraction Refraction
	Atmosphere Atmosphere
}

// Topocentric returns the topocentric apparent place (RA/Dec of date as
// seen from the site, including diurnal aberration and parallax) and the
// horizontal coordinates of a body at a site.
func Topocentric(b Body, t Time, s Site, cfg *TopoConfig) (Topo, error) {
	if !b.valid() {
		return Topo{}, &FieldError{Field: "body", Value: int(b), Reason: "not a known body", Err: ErrUnknownBody}
	}
	if err := t.check(); err != nil {
		return Topo{}, err
	}
	if err := s.Validate(); err != nil {
		return Topo{}, err
	}
	var c TopoConfig
	if cfg != nil {
		c = *cfg
	}
	if err := c.Atmosphere.Validate(); err != nil {
		return Topo{}, err
	}
	f := newFrame(t.tt)
	obs, g := s.observerAt(t, f)
	pl := compute(b, t, obs, f)
	return horizontalOf(pl, s, g, c), nil
}

func horizontalOf(pl Place, s Site, g float64, c TopoConfig) Topo {
	itrs := rotZ(g).apply(pl.appTOD)
	e, n, u := s.enu()
	alt := math.Asin(math.Max(-1, math.Min(1, u.dot(itrs)))) * rad2deg
	az := math.Atan2(e.dot(itrs), n.dot(itrs)) * rad2deg
	ha := wrap180(g*rad2deg + s.LonDeg - pl.RA)
	tp := Topo{Place: pl, AzDeg: normDeg(az), HourAngleDeg: ha}
	tp.RefractionDeg = RefractionDeg(c.Refraction, alt, c.Atmosphere)
	tp.AltDeg = alt + tp.RefractionDeg
	tp.ParallacticDeg = ParallacticAngle(ha, pl.Dec, s.LatDeg)
	return tp
}

// HorizontalFromEquatorial converts an apparent RA/Dec of date (degrees) to
// azimuth (from north through east) and altitude at a site and instant,
// using apparent sidereal time; no refraction.
func HorizontalFromEquatorial(raDeg, decDeg float64, t Time, s Site) (azDeg, altDeg, haDeg float64, err error) {
	if err = s.Validate(); err != nil {
		return
	}
	f := newFrame(t.tt)
	haDeg = wrap180(gast(t, f)*rad2deg + s.LonDeg - raDeg)
	azDeg, altDeg = HorizontalFromHADec(haDeg, decDeg, s.LatDeg)
	return
}
