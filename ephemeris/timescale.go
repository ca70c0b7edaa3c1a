package ephemeris

import (
	"fmt"
	"math"
	"time"
)

// Time is an instant carried in the two time scales astronomy needs:
// Terrestrial Time (for ephemerides) and UT1 (for Earth rotation), both as
// Julian dates. Construct it with FromUTC, FromTT or FromUT1. The zero
// value is not valid.
type Time struct {
	tt  float64
	ut1 float64
	utc float64 // NaN when the instant is before 1960 (UTC undefined)
}

// JDTT returns the Julian date in Terrestrial Time (TT ≈ TDB to 2 ms).
func (t Time) JDTT() float64 { return t.tt }

// JDUT1 returns the Julian date in UT1.
func (t Time) JDUT1() float64 { return t.ut1 }

// JDUTC returns the Julian date in UTC (quasi-JD: a day with a leap second
// is not stretched). Before 1960, where UTC is undefined, it equals UT1.
func (t Time) JDUTC() float64 {
	if math.IsNaN(t.utc) {
		return t.ut1
	}
	return t.utc
}

// MJDUTC returns the modified Julian date in UTC.
func (t Time) MJDUTC() float64 { return t.JDUTC() - 2400000.5 }

// DeltaT returns TT − UT1 in seconds.
func (t Time) DeltaT() float64 { return (t.tt - t.ut1) * 86400 }

// Add returns t shifted by d seconds in both scales.
func (t Time) Add(seconds float64) Time {
	d := seconds / 86400
	return Time{tt: t.tt + d, ut1: t.ut1 + d, utc: t.utc + d}
}

// UTC converts the instant back to a Go time.Time in UTC (rounded to the
// microsecond).
func (t Time) UTC() time.Time { return TimeFromJD(t.JDUTC()) }

// String formats the instant as its UTC (RFC 3339) and TT Julian date.
func (t Time) String() string {
	return fmt.Sprintf("%s (JD TT %.6f)", t.UTC().Format(time.RFC3339Nano), t.tt)
}

// unixEpochJD is the Julian date of 1970-01-01T00:00:00.
const unixEpochJD = 2440587.5

// JDFromTime returns the (UTC) Julian date of a Go time.
func JDFromTime(t time.Time) float64 {
	t = t.UTC()
	sec := t.Unix()
	days := math.Floor(float64(sec) / 86400)
	rem := float64(sec) - days*86400 + float64(t.Nanosecond())/1e9
	return unixEpochJD + days + rem/86400
}

// TimeFromJD converts a Julian date to a UTC time.Time rounded to the
// microsecond.
func TimeFromJD(jd float64) time.Time {
	d := jd - unixEpochJD
	days := math.Floor(d)
	us := math.Round((d - days) * 86400e6)
	return time.Unix(int64(days)*86400, 0).UTC().Add(time.Duration(us) * time.Microsecond)
}

// TimeConfig holds the optional Earth-orientation input for FromUTC. The
// zero value (or nil) means UT1 = UTC, the almanac convention (USNO and
// Meeus tabulate sidereal time and rise/set against UT taken as UTC).
type TimeConfig struct {
	// DUT1 is UT1 − UTC in seconds (|DUT1| < 0.9 s), when known.
	DUT1 *float64
	// UseIERS takes UT1 − UTC from the built-in IERS EOP 14 C04 series
	// (1962 to its last date, see EOPRange) when DUT1 is nil; outside the
	// series UT1 = UTC. JPL Horizons uses the measured UT1 this way.
	UseIERS bool
}

// EOPRange returns the UTC dates covered by the built-in UT1−UTC series
// (IERS EOP 14 C04).
func EOPRange() (first, last time.Time) {
	first = TimeFromJD(eopFirstMJD + 2400000.5)
	last = TimeFromJD(float64(eopFirstMJD+(len(eopDUT1)-1)*eopStepDays) + 2400000.5)
	return
}

// DUT1FromTable returns UT1 − UTC in seconds at a UTC Julian date from the
// built-in IERS C04 series, interpolating UT1 − TAI linearly between the
// samples (so leap seconds are handled); ok is false outside the series.
func DUT1FromTable(jdUTC float64) (dut1 float64, ok bool) {
	mjd := jdUTC - 2400000.5
	x := (mjd - eopFirstMJD) / eopStepDays
	if math.IsNaN(x) || x < 0 || x > float64(len(eopDUT1)-1) {
		return 0, false
	}
	i := int(x)
	if i == len(eopDUT1)-1 {
		i--
	}
	f := x - float64(i)
	n0 := float64(eopFirstMJD+i*eopStepDays) + 2400000.5
	n1 := n0 + eopStepDays
	a0 := float64(eopDUT1[i])*1e-7 - TAIMinusUTC(n0)
	a1 := float64(eopDUT1[i+1])*1e-7 - TAIMinusUTC(n1)
	return a0 + f*(a1-a0) + TAIMinusUTC(jdUTC), true
}

// FromUTC builds a Time from a UTC instant. From 1960 on, TAI − UTC comes
// from the leap-second table (with the 1961–1971 drift formulae) and
// UT1 = UTC + DUT1. Before 1960, when UTC did not exist, the instant is
// taken as UT1 (as JPL Horizons does) and TT = UT1 + ΔT from DeltaTModel.
// cfg may be nil.
func FromUTC(t time.Time, cfg *TimeConfig) (Time, error) {
	if y := t.UTC().Year(); y < -4000 || y > 8000 {
		return Time{}, invalid("time", t.Format(time.RFC3339), "year outside -4000..8000")
	}
	if cfg == nil || cfg.DUT1 == nil {
		if cfg != nil && cfg.UseIERS {
			return fromJDUTCAuto(JDFromTime(t)), nil
		}
		return fromJDUTC(JDFromTime(t), 0), nil
	}
	dut1 := *cfg.DUT1
	if math.IsNaN(dut1) || math.Abs(dut1) > 0.9 {
		return Time{}, invalid("dut1", dut1, "must be within ±0.9 s")
	}
	return fromJDUTC(JDFromTime(t), dut1), nil
}

// FromJDUTC is FromUTC for a UTC Julian date.
func FromJDUTC(jd float64, cfg *TimeConfig) (Time, error) {
	if math.IsNaN(jd) || math.IsInf(jd, 0) || jd < 0 || jd > 5e6 {
		return Time{}, invalid("jd", jd, "not a Julian date within 0..5e6")
	}
	if cfg == nil || cfg.DUT1 == nil {
		if cfg != nil && cfg.UseIERS {
			return fromJDUTCAuto(jd), nil
		}
		return fromJDUTC(jd, 0), nil
	}
	dut1 := *cfg.DUT1
	if math.IsNaN(dut1) || math.Abs(dut1) > 0.9 {
		return Time{}, invalid("dut1", dut1, "must be within ±0.9 s")
	}
	return fromJDUTC(jd, dut1), nil
}

// fromJDUTC0 is the default conversion (UT1 = UTC).
func fromJDUTC0(jd float64) Time { return fromJDUTC(jd, 0) }

// fromJDUTCAuto uses the built-in UT1−UTC series where it applies.
func fromJDUTCAuto(jd float64) Time {
	d, _ := DUT1FromTable(jd)
	return fromJDUTC(jd, d)
}

func fromJDUTC(jd, dut1 float64) Time {
	if jd < utcStartJD {
		dt := DeltaTModel(decimalYearFromJD(jd))
		return Time{ut1: jd, tt: jd + dt/86400, utc: math.NaN()}
	}
	tai := jd + TAIMinusUTC(jd)/86400
	return Time{utc: jd, ut1: jd + dut1/86400, tt: tai + 32.184/86400}
}

// FromTT builds a Time from a TT Julian date; UT1 follows from ΔT
// (leap-second table and UT1 = UTC from 1960, DeltaTModel before).
func FromTT(jdTT float64) Time {
	// Iterate: UTC depends on itself only through the step function.
	ut1 := jdTT - DeltaTModel(decimalYearFromJD(jdTT))/86400
	if ut1 < utcStartJD {
		return Time{tt: jdTT, ut1: ut1, utc: math.NaN()}
	}
	utc := jdTT - (32.184+TAIMinusUTC(jdTT))/86400
	utc = jdTT - (32.184+TAIMinusUTC(utc))/86400
	return Time{tt: jdTT, ut1: utc, utc: utc}
}

// FromTTWithDeltaT builds a Time from a TT Julian date and an explicit
// ΔT = TT − UT1 in seconds (for example ΔT = 0 as in some NOVAS tests).
func FromTTWithDeltaT(jdTT, deltaT float64) Time {
	ut1 := jdTT - deltaT/86400
	return Time{tt: jdTT, ut1: ut1, utc: ut1}
}

// FromUT1 builds a Time from a UT1 Julian date, with TT from the
// leap-second table (UTC ≈ UT1) from 1960 on and from DeltaTModel before.
func FromUT1(jdUT1 float64) Time {
	t := fromJDUTC(jdUT1, 0)
	t.ut1 = jdUT1
	return t
}

// utcStartJD is 1960-01-01T00:00 UTC, the start of the TAI−UTC table.
const utcStartJD = 2436934.5

// leap is one row of the TAI−UTC table: from MJD start on,
// TAI−UTC = offset + (MJD − mjdRef) × rate seconds.
type leap struct {
	start          float64 // MJD (UTC)
	offset, mjdRef float64
	rate           float64
}

// leapTable is TAI − UTC from IERS Bulletin C / USNO tai-utc.dat. The last
// entry (2017-01-01, 37 s) holds through the latest Bulletin C known when this
// table was written (no leap second announced after it).
var leapTable = []leap{
	{36934, 1.4178180, 37300, 0.001296},
	{37300, 1.4228180, 37300, 0.001296},
	{37512, 1.3728180, 37300, 0.001296},
	{37665, 1.8458580, 37665, 0.0011232},
	{38334, 1.9458580, 37665, 0.0011232},
	{38395, 3.2401300, 38761, 0.001296},
	{38486, 3.3401300, 38761, 0.001296},
	{38639, 3.4401300, 38761, 0.001296},
	{38761, 3.5401300, 38761, 0.001296},
	{38820, 3.6401300, 38761, 0.001296},
	{38942, 3.7401300, 38761, 0.001296},
	{39004, 3.8401300, 38761, 0.001296},
	{39126, 4.3131700, 39126, 0.002592},
	{39887, 4.2131700, 39126, 0.002592},
	{41317, 10, 0, 0},
	{41499, 11, 0, 0},
	{41683, 12, 0, 0},
	{42048, 13, 0, 0},
	{42413, 14, 0, 0},
	{42778, 15, 0, 0},
	{43144, 16, 0, 0},
	{43509, 17, 0, 0},
	{43874, 18, 0, 0},
	{44239, 19, 0, 0},
	{44786, 20, 0, 0},
	{45151, 21, 0, 0},
	{45516, 22, 0, 0},
	{46247, 23, 0, 0},
	{47161, 24, 0, 0},
	{47892, 25, 0, 0},
	{48257, 26, 0, 0},
	{48804, 27, 0, 0},
	{49169, 28, 0, 0},
	{49534, 29, 0, 0},
	{50083, 30, 0, 0},
	{50630, 31, 0, 0},
	{51179, 32, 0, 0},
	{53736, 33, 0, 0},
	{54832, 34, 0, 0},
	{56109, 35, 0, 0},
	{57204, 36, 0, 0},
	{57754, 37, 0, 0},
}

// TAIMinusUTC returns TAI − UTC in seconds at a UTC Julian date. Before
// 1960 it returns 0 (UTC undefined); after the last table entry the last
// value holds.
func TAIMinusUTC(jdUTC float64) float64 {
	mjd := jdUTC - 2400000.5
	if mjd < leapTable[0].start {
		return 0
	}
	i := len(leapTable) - 1
	for i > 0 && mjd < leapTable[i].start {
		i--
	}
	l := leapTable[i]
	return l.offset + (mjd-l.mjdRef)*l.rate
}

// decimalYearFromJD converts a Julian date to a decimal year (Julian years
// from J2000, good enough for ΔT).
func decimalYearFromJD(jd float64) float64 { return 2000 + (jd-j2000)/365.25 }

// DeltaTModel returns ΔT = TT − UT1 in seconds for a decimal year from the
// polynomial expressions of Espenak & Meeus (NASA Five Millennium Canon,
// 2006), with the Morrison & Stephenson (2004) parabola outside −500..2150.
// It is used before 1960 and to convert a TT date to UT1 when no UTC is at
// hand; from 1960 on FromUTC uses the leap-second table instead.
func DeltaTModel(y float64) float64 {
	switch {
	case y < -500:
		u := (y - 1820) / 100
		return -20 + 32*u*u
	case y < 500:
		u := y / 100
		return poly(u, 10583.6, -1014.41, 33.78311, -5.952053, -0.1798452, 0.022174192, 0.0090316521)
	case y < 1600:
		u := (y - 1000) / 100
		return poly(u, 1574.2, -556.01, 71.23472, 0.319781, -0.8503463, -0.005050998, 0.0083572073)
	case y < 1700:
		t := y - 1600
		return poly(t, 120, -0.9808, -0.01532, 1.0/7129)
	case y < 1800:
		t := y - 1700
		return poly(t, 8.83, 0.1603, -0.0059285, 0.00013336, -1.0/1174000)
	case y < 1860:
		t := y - 1800
		return poly(t, 13.72, -0.332447, 0.0068612, 0.0041116, -0.00037436, 0.0000121272, -0.0000001699, 0.000000000875)
	case y < 1900:
		t := y - 1860
		return poly(t, 7.62, 0.5737, -0.251754, 0.01680668, -0.0004473624, 1.0/233174)
	case y < 1920:
		t := y - 1900
		return poly(t, -2.79, 1.494119, -0.0598939, 0.0061966, -0.000197)
	case y < 1941:
		t := y - 1920
		return poly(t, 21.20, 0.84493, -0.076100, 0.0020936)
	case y < 1961:
		t := y - 1950
		return poly(t, 29.07, 0.407, -1.0/233, 1.0/2547)
	case y < 1986:
		t := y - 1975
		return poly(t, 45.45, 1.067, -1.0/260, -1.0/718)
	case y < 2005:
		t := y - 2000
		return poly(t, 63.86, 0.3345, -0.060374, 0.0017275, 0.000651814, 0.00002373599)
	case y < 2050:
		// The polynomial to 2015; then the observed plateau near 69.2 s
		// (IERS) to 2025, blended linearly into the long-term parabola
		// below so that the model stays continuous at 2050.
		switch {
		case y < 2015:
			t := y - 2000
			return poly(t, 62.92, 0.32217, 0.005589)
		case y < 2025:
			return 69.184
		default:
			u := (2050.0 - 1820) / 100
			at2050 := -20 + 32*u*u - 0.5628*(2150-2050)
			return 69.184 + (y-2025)*(at2050-69.184)/25
		}
	case y < 2150:
		u := (y - 1820) / 100
		return -20 + 32*u*u - 0.5628*(2150-y)
	default:
		u := (y - 1820) / 100
		return -20 + 32*u*u
	}
}

// poly evaluates c0 + c1 x + c2 x² + ...
func poly(x float64, c ...float64) float64 {
	y := 0.0
	for i := len(c) - 1; i >= 0; i-- {
		y = y*x + c[i]
	}
	return y
}
