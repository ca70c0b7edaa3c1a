package ephemeris

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestLeapSecondTable(t *testing.T) {
	cases := []struct {
		when time.Time
		want float64
	}{
		{time.Date(1968, 2, 1, 0, 0, 0, 0, time.UTC), 6.1856820}, // tai-utc.dat drift row
		{time.Date(1972, 1, 1, 0, 0, 0, 0, time.UTC), 10},
		{time.Date(1972, 6, 30, 23, 59, 59, 0, time.UTC), 10},
		{time.Date(1972, 7, 1, 0, 0, 0, 0, time.UTC), 11},
		{time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), 32},
		{time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC), 36},
		{time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), 37},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 37},
	}
	for _, c := range cases {
		if got := TAIMinusUTC(JDFromTime(c.when)); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("TAI-UTC at %s = %.7f, want %.7f", c.when, got, c.want)
		}
	}
	tm, err := FromUTC(time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), &TimeConfig{DUT1: ptr(0.4)})
	if err != nil {
		t.Fatal(err)
	}
	if dt := (tm.JDTT() - tm.JDUTC()) * 86400; math.Abs(dt-69.184) > 1e-4 {
		t.Errorf("TT-UTC = %v", dt)
	}
	if d := (tm.JDUT1() - tm.JDUTC()) * 86400; math.Abs(d-0.4) > 1e-4 {
		t.Errorf("UT1-UTC = %v", d)
	}
}

func TestDeltaTBefore1960(t *testing.T) {
	// Morrison & Stephenson / Espenak-Meeus tabulated ΔT: 1900 −2.8 s,
	// 1800 +13.7 s, 1700 +8.8 s, 1950 +29.1 s.
	for _, c := range []struct{ y, want, tol float64 }{{1900, -2.8, 0.2}, {1800, 13.7, 0.3}, {1700, 8.8, 0.3}, {1950, 29.1, 0.3}} {
		if got := DeltaTModel(c.y); math.Abs(got-c.want) > c.tol {
			t.Errorf("ΔT(%v) = %v want %v", c.y, got, c.want)
		}
	}
	// Continuity across the model's pieces (no jump above 2 s per year).
	for y := -1999.0; y < 3000; y += 0.25 {
		if d := math.Abs(DeltaTModel(y+0.25) - DeltaTModel(y)); d > 2 && y > 1600 {
			t.Errorf("ΔT jumps by %v s between %v and %v", d, y, y+0.25)
		}
	}
	tm, err := FromUTC(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := tm.DeltaT(); math.Abs(d-DeltaTModel(1900)) > 0.01 {
		t.Errorf("ΔT from FromUTC(1900) = %v", d)
	}
}

func TestCalendarMeeusTable(t *testing.T) {
	// Meeus, Astronomical Algorithms, examples in ch. 7.
	cases := []struct {
		y, m int
		d    float64
		jd   float64
	}{
		{2000, 1, 1.5, 2451545.0}, {1999, 1, 1, 2451179.5}, {1987, 1, 27, 2446822.5},
		{1987, 6, 19.5, 2446966.0}, {1988, 1, 27, 2447187.5}, {1900, 1, 1, 2415020.5},
		{1600, 1, 1, 2305447.5}, {1600, 12, 31, 2305812.5}, {837, 4, 10.3, 2026871.8},
		{-123, 12, 31, 1676496.5}, {-122, 1, 1, 1676497.5}, {-1000, 7, 12.5, 1356001.0},
		{-1000, 2, 29, 1355866.5}, {-1001, 8, 17.9, 1355671.4}, {-4712, 1, 1.5, 0.0},
	}
	for _, c := range cases {
		jd, err := JDFromCalendar(c.y, c.m, c.d, CalendarAuto)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(jd-c.jd) > 1e-6 {
			t.Errorf("JD(%d-%d-%v) = %v want %v", c.y, c.m, c.d, jd, c.jd)
		}
		back, err := CalendarFromJD(c.jd, CalendarAuto)
		if err != nil {
			t.Fatal(err)
		}
		if back.Year != c.y || back.Month != c.m || math.Abs(back.Day-c.d) > 1e-6 {
			t.Errorf("calendar(%v) = %v, want %d-%d-%v", c.jd, back, c.y, c.m, c.d)
		}
	}
	// The Gregorian reform: 1582-10-04 (Julian) is followed by 1582-10-15.
	a, _ := JDFromCalendar(1582, 10, 4, CalendarAuto)
	b, _ := JDFromCalendar(1582, 10, 15, CalendarAuto)
	if b-a != 1 {
		t.Errorf("reform gap: %v", b-a)
	}
}

func TestCalendarRoundTrip(t *testing.T) {
	for jd := 0.25; jd < 3e6; jd += 9973.37 {
		for _, cal := range []Calendar{CalendarGregorian, CalendarJulian} {
			d, err := CalendarFromJD(jd, cal)
			if err != nil {
				t.Fatal(err)
			}
			back, err := JDFromCalendar(d.Year, d.Month, d.Day, cal)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(back-jd) > 1e-6 {
				t.Fatalf("%v %v -> %v -> %v", cal, jd, d, back)
			}
		}
	}
}

func TestErrorsNameTheField(t *testing.T) {
	var fe *FieldError
	_, err := JDFromCalendar(2000, 13, 1, CalendarGregorian)
	if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &fe) || fe.Field != "month" {
		t.Errorf("month 13: %v", err)
	}
	_, err = ParseBody("pluto")
	if !errors.Is(err, ErrUnknownBody) || !errors.As(err, &fe) || fe.Field != "body" {
		t.Errorf("pluto: %v", err)
	}
	err = Site{LatDeg: 91}.Validate()
	if !errors.As(err, &fe) || fe.Field != "lat" || fe.Value != 91.0 {
		t.Errorf("lat 91: %v", err)
	}
	_, err = FromUTC(time.Now(), &TimeConfig{DUT1: ptr(1.5)})
	if !errors.As(err, &fe) || fe.Field != "dut1" {
		t.Errorf("dut1: %v", err)
	}
	if _, err := Position(Sun, Time{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("zero time: %v", err)
	}
	if _, err := Position(Body(99), FromTT(j2000)); !errors.Is(err, ErrUnknownBody) {
		t.Errorf("body 99: %v", err)
	}
	if _, err := Phases(time.Now(), time.Now().Add(-time.Hour)); !errors.As(err, &fe) || fe.Field != "to" {
		t.Errorf("phases reversed: %v", err)
	}
	if _, err := Observability(10, 95, time.Now(), time.Now().Add(time.Hour), VLA, nil); !errors.As(err, &fe) || fe.Field != "dec" {
		t.Errorf("dec 95: %v", err)
	}
}

func TestGalacticFrame(t *testing.T) {
	// IAU definition via Hipparcos: north galactic pole at ICRS
	// 192.85948, +27.12825; galactic centre at 266.40499, −28.93617.
	_, b := ICRSToGalactic(192.85948, 27.12825)
	if math.Abs(b-90) > 1e-4 {
		t.Errorf("NGP b = %v", b)
	}
	l, b := ICRSToGalactic(266.40499, -28.93617)
	if math.Abs(wrap180(l)) > 2e-4 || math.Abs(b) > 2e-4 {
		t.Errorf("GC l,b = %v, %v", l, b)
	}
	for ra := 0.5; ra < 360; ra += 37 {
		for dec := -85.0; dec <= 85; dec += 17 {
			l, b := ICRSToGalactic(ra, dec)
			r, d := GalacticToICRS(l, b)
			if Separation(ra, dec, r, d) > 1e-9 {
				t.Fatalf("round trip %v %v", ra, dec)
			}
			r5, d5 := ICRSToFK5(ra, dec)
			if r, d := FK5ToICRS(r5, d5); Separation(r, d, ra, dec) > 1e-9 {
				t.Fatalf("FK5 round trip %v %v", ra, dec)
			}
			if s := Separation(ra, dec, r5, d5) * 3600; s > 0.035 || s < 0.005 {
				t.Fatalf("FK5-ICRS offset %v arcsec at %v %v", s, ra, dec)
			}
		}
	}
}

func TestSeparationExtremes(t *testing.T) {
	if s := Separation(10, 20, 10, 20); s != 0 {
		t.Errorf("same point: %v", s)
	}
	if s := Separation(10, 20, 190, -20); math.Abs(s-180) > 1e-9 {
		t.Errorf("antipode: %v", s)
	}
	if s := Separation(0, 0, 1e-7, 0); math.Abs(s-1e-7) > 1e-15 {
		t.Errorf("tiny: %v", s)
	}
}

func TestRefractionAirmassParallactic(t *testing.T) {
	opt := RefractionDeg(RefractionOptical, 10, Atmosphere{})
	rad := RefractionDeg(RefractionRadio, 10, Atmosphere{})
	// Optical refraction at 10° is about 5.3′ (Meeus/Saemundsson); radio
	// with water vapour is larger.
	if math.Abs(opt*60-5.3) > 0.2 || rad <= opt || rad > 1.5*opt {
		t.Errorf("refraction optical %v′ radio %v′", opt*60, rad*60)
	}
	if RefractionDeg(RefractionNone, 10, Atmosphere{}) != 0 {
		t.Error("none is not zero")
	}
	if high := RefractionDeg(RefractionOptical, 10, Atmosphere{PressureHPa: PressureAtHeight(2124)}); math.Abs(high/opt-0.777) > 0.01 {
		t.Errorf("refraction at 2124 m is %v of sea level", high/opt)
	}
	cold := RefractionDeg(RefractionOptical, 10, Atmosphere{SetTemperature: true})
	if math.Abs(cold/opt-283.15/273.15) > 0.002 {
		t.Errorf("0 °C scaling %v", cold/opt)
	}
	if err := (Atmosphere{RelHumidity: 2}).Validate(); err == nil {
		t.Error("humidity 2 accepted")
	}
	if a := Airmass(90); math.Abs(a-1) > 1e-3 {
		t.Errorf("airmass zenith %v", a)
	}
	if a := Airmass(30); math.Abs(a-1.995) > 0.01 {
		t.Errorf("airmass 30° %v", a)
	}
	if !math.IsInf(Airmass(-1), 1) {
		t.Error("airmass below horizon")
	}
	if q := ParallacticAngle(0, 10, 34); math.Abs(q) > 1e-9 {
		t.Errorf("meridian south: %v", q)
	}
	if q := ParallacticAngle(0, 60, 34); math.Abs(math.Abs(q)-180) > 1e-9 {
		t.Errorf("meridian north of zenith: %v", q)
	}
	if q := ParallacticAngle(30, 10, 34); q <= 0 {
		t.Errorf("west of meridian should be positive: %v", q)
	}
}

func TestResolve(t *testing.T) {
	for _, n := range []string{"3C 286", "3c286", "J1331+3030", "1331+305", " 3C_286 "} {
		tg, err := Resolve(n)
		if err != nil || tg.Name != "3C 286" || tg.Kind != "calibrator" {
			t.Errorf("%q: %v %v", n, tg, err)
		}
	}
	tg, err := Resolve("Jupiter")
	if err != nil || tg.Kind != "body" || tg.Body != Jupiter {
		t.Errorf("jupiter: %v %v", tg, err)
	}
	tg, err = Resolve("13:31:08.2881 +30:30:32.959")
	if err != nil || tg.Kind != "coordinates" || math.Abs(tg.RA-202.784534) > 1e-5 || math.Abs(tg.Dec-30.509155) > 1e-5 {
		t.Errorf("coords: %v %v", tg, err)
	}
	if _, err := Resolve("M 31"); !errors.Is(err, ErrUnknownBody) {
		t.Errorf("M31: %v", err)
	}
}

func TestRiseSetSpecialCases(t *testing.T) {
	june := time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC)
	r, err := RiseTransitSet(Sun, june, Site{LatDeg: -78, LonDeg: 166}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !r.NeverRises || r.Rise != nil || r.Set != nil {
		t.Errorf("polar night: %+v", r)
	}
	r, _ = FixedRiseTransitSet(10, 80, june, VLA, nil)
	if !r.Circumpolar || r.Transit == nil {
		t.Errorf("dec +80 at VLA: %+v", r)
	}
	// Upper transit altitude of a dec +80 star: 90 − (80 − 34.08) = 44.08.
	if math.Abs(r.TransitAltDeg-44.08) > 0.5 {
		t.Errorf("transit alt %v", r.TransitAltDeg)
	}
	r, _ = FixedRiseTransitSet(10, -70, june, VLA, nil)
	if !r.NeverRises {
		t.Errorf("dec −70 at VLA: %+v", r)
	}
}

func TestMoonRiseAltitudeConsistent(t *testing.T) {
	day := time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	r, err := RiseTransitSet(Moon, day, VLA, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []*time.Time{r.Rise, r.Set} {
		if ev == nil {
			continue
		}
		tm, _ := FromUTC(*ev, nil)
		tp, _ := Topocentric(Moon, tm, VLA, nil)
		want := -34.0/60 - SemidiameterDeg(Moon, tp.Distance)
		// The Moon's altitude changes ~0.004°/s near the horizon; times are
		// rounded to the second.
		if math.Abs(tp.AltDeg-want) > 0.01 {
			t.Errorf("Moon altitude at event %v = %v, want %v", ev, tp.AltDeg, want)
		}
	}
	if r.Rise == nil && r.Set == nil {
		t.Error("no moonrise or moonset found")
	}
}

func TestTopocentricMoonParallax(t *testing.T) {
	tm, _ := FromUTC(time.Date(2025, 3, 3, 12, 0, 0, 0, time.UTC), nil)
	geo, _ := Position(Moon, tm)
	topo, _ := Topocentric(Moon, tm, VLA, nil)
	sep := Separation(geo.RA, geo.Dec, topo.RA, topo.Dec)
	hp := math.Asin(6378.137/(geo.Distance*AUkm)) * rad2deg
	// Parallax in altitude = HP·cos(alt) (within the flattening and height).
	want := hp * math.Cos(topo.AltDeg*deg2rad)
	if math.Abs(sep-want) > 0.02*hp {
		t.Errorf("parallax %v°, want ≈ %v°", sep, want)
	}
}

func TestPhasesCycle(t *testing.T) {
	ev, err := Phases(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) < 48 || len(ev) > 50 {
		t.Fatalf("%d phases in 2024", len(ev))
	}
	var lastNew float64
	for i := 1; i < len(ev); i++ {
		if ev[i].Phase != (ev[i-1].Phase+1)%4 {
			t.Errorf("phase order at %d: %v after %v", i, ev[i].Phase, ev[i-1].Phase)
		}
		if ev[i].Phase == NewMoon {
			if lastNew != 0 {
				// The synodic month varies between about 29.27 and 29.83 d.
				if d := ev[i].Time.JDTT() - lastNew; d < 29.2 || d > 29.9 {
					t.Errorf("lunation %v d", d)
				}
			}
			lastNew = ev[i].Time.JDTT()
		}
	}
	// Full Moon: illuminated fraction near 1.
	for _, e := range ev {
		if e.Phase == FullMoon {
			il, _ := MoonIllumination(e.Time)
			if il.Fraction < 0.99 {
				t.Errorf("full moon %v fraction %v", e.Time, il.Fraction)
			}
		}
	}
}

func TestObservabilitySunAvoidance(t *testing.T) {
	from := time.Date(2025, 6, 21, 0, 0, 0, 0, time.UTC)
	to := from.Add(48 * time.Hour)
	tm, _ := FromUTC(from.Add(24*time.Hour), nil)
	sun, _ := Position(Sun, tm)
	min := 10.0
	ws, err := Observability(sun.RAICRS, sun.DecICRS, from, to, VLA, &ObservabilityConfig{MinAltDeg: &min})
	if err != nil || len(ws) < 2 {
		t.Fatalf("no avoidance: %v %v", ws, err)
	}
	ws, err = Observability(sun.RAICRS, sun.DecICRS, from, to, VLA, &ObservabilityConfig{MinAltDeg: &min, SunAvoidDeg: 20})
	if err != nil || len(ws) != 0 {
		t.Errorf("target at the Sun with 20° avoidance: %v %v", ws, err)
	}
}

func TestFK5AgainstERFA(t *testing.T) {
	// ERFA h2fk5 test case (t_erfa_c): Hipparcos (ICRS) 1.767794352,
	// −0.2917512594 rad -> FK5 1.767794455700065506, −0.2917513626469638890
	// (its proper-motion inputs do not affect the J2000 position).
	r, d := ICRSToFK5(1.767794352*rad2deg, -0.2917512594*rad2deg)
	if e := Separation(r, d, 1.767794455700065506*rad2deg, -0.2917513626469638890*rad2deg) * 3600e3; e > 0.5 {
		t.Errorf("ICRS->FK5 differs from ERFA by %.3f mas", e)
	}
}

func ptr(v float64) *float64 { return &v }

func TestDUT1Table(t *testing.T) {
	// IERS C04 values: 2017-01-01 0h UTC, just after the leap second,
	// UT1-UTC = +0.5925 s (it was −0.4075 s before it); 1990-01-01: +0.3274 s.
	for _, c := range []struct {
		when time.Time
		want float64
	}{
		{time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), 0.5925},
		{time.Date(2016, 12, 31, 12, 0, 0, 0, time.UTC), -0.4075},
		{time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), 0.3274},
	} {
		d, ok := DUT1FromTable(JDFromTime(c.when))
		if !ok || math.Abs(d-c.want) > 0.003 {
			t.Errorf("DUT1(%s) = %v (%v), want %v", c.when, d, ok, c.want)
		}
	}
	if _, ok := DUT1FromTable(JDFromTime(time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC))); ok {
		t.Error("table claims 1950")
	}
	tm, _ := FromUTC(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), &TimeConfig{UseIERS: true})
	if d := (tm.JDUT1() - tm.JDUTC()) * 86400; math.Abs(d-0.3274) > 0.003 {
		t.Errorf("FromUTC did not apply the table: %v", d)
	}
	tm, _ = FromUTC(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), &TimeConfig{DUT1: ptr(0), UseIERS: true})
	if tm.JDUT1() != tm.JDUTC() {
		t.Error("explicit DUT1 = 0 ignored")
	}
	tm, _ = FromUTC(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if tm.JDUT1() != tm.JDUTC() {
		t.Error("default is not UT1 = UTC")
	}
}

func TestMeanPlaceBetweenEpochs(t *testing.T) {
	j2050 := j2000 + 50*365.25
	star := CatalogEntry{RA: 41.0499, Dec: 49.2285, PMRA: 0.5, PMDec: -0.09}
	p50, err := MeanPlace(star, j2050)
	if err != nil {
		t.Fatal(err)
	}
	// Without proper motion, precessing to 2050 and back is exact.
	fixed := CatalogEntry{RA: star.RA, Dec: star.Dec}
	f50, _ := MeanPlace(fixed, j2050)
	back, err := MeanPlace(CatalogEntry{RA: f50.RA, Dec: f50.Dec, EpochJD: j2050}, j2000)
	if err != nil {
		t.Fatal(err)
	}
	if e := Separation(back.RA, back.Dec, star.RA, star.Dec) * 3600; e > 1e-6 {
		t.Errorf("round trip error %v arcsec", e)
	}
	// Proper motion adds 50 yr × (0.5″ cos δ, −0.09″) ≈ (16.3″, −4.5″).
	sep := Separation(p50.RA, p50.Dec, f50.RA, f50.Dec) * 3600
	want := 50 * math.Hypot(0.5*math.Cos(star.Dec*deg2rad), 0.09)
	if math.Abs(sep-want) > 0.2 {
		t.Errorf("proper-motion displacement %v″, want %v″", sep, want)
	}
	// General precession moves a star ~50.3″/yr in ecliptic longitude: the
	// 50-year shift (pm removed) is about 2515″ along the ecliptic.
	noPM, _ := MeanPlace(CatalogEntry{RA: 0, Dec: 0}, j2050)
	lon, _ := EquatorialToEcliptic(noPM.RA, noPM.Dec, MeanObliquity(j2050))
	if math.Abs(lon*3600-50*50.29) > 5 {
		t.Errorf("50-year precession in longitude %v″", lon*3600)
	}
	if _, err := MeanPlace(CatalogEntry{RA: 0, Dec: 0, EpochJD: 1}, j2000); err == nil {
		t.Error("absurd epoch accepted")
	}
}

func TestObservabilityEdgesAtMinAltitude(t *testing.T) {
	tg, _ := Resolve("3C 147")
	from := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	min := 25.0
	ws, err := Observability(tg.RA, tg.Dec, from, from.AddDate(0, 0, 3), VLA, &ObservabilityConfig{MinAltDeg: &min})
	if err != nil || len(ws) < 3 {
		t.Fatalf("%v %v", ws, err)
	}
	for _, w := range ws {
		for _, edge := range []time.Time{w.Start, w.End} {
			if edge.Equal(from) || edge.Equal(from.AddDate(0, 0, 3)) {
				continue
			}
			tm, _ := FromUTC(edge, nil)
			app, _ := ApparentFromICRS(tg.RA, tg.Dec, tm)
			_, alt, _, _ := HorizontalFromEquatorial(app.RA, app.Dec, tm, VLA)
			if math.Abs(alt-min) > 0.01 {
				t.Errorf("edge %v altitude %v", edge, alt)
			}
		}
		// 3C 147 (δ = +49.85°) culminates at 90 − (49.85 − 34.08) = 74.23°.
		whole := !w.Start.Equal(from) && !w.End.Equal(from.AddDate(0, 0, 3))
		if whole && math.Abs(w.MaxAltDeg-74.2) > 0.3 {
			t.Errorf("max alt %v", w.MaxAltDeg)
		}
	}
}
