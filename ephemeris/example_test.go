package ephemeris_test

import (
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/ephemeris"
)

func ExampleJDFromCalendar() {
	// Sputnik 1 (Meeus example 7.a) and a Julian-calendar date (7.b).
	jd, _ := ephemeris.JDFromCalendar(1957, 10, 4.81, ephemeris.CalendarGregorian)
	fmt.Printf("%.2f\n", jd)
	jd, _ = ephemeris.JDFromCalendar(333, 1, 27.5, ephemeris.CalendarJulian)
	fmt.Printf("%.1f\n", jd)
	// Output:
	// 2436116.31
	// 1842713.0
}

func ExampleFromUTC() {
	t, _ := ephemeris.FromUTC(time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	fmt.Printf("JD(UTC) %.5f  TT-UTC %.3f s\n", t.JDUTC(), (t.JDTT()-t.JDUTC())*86400)
	// Output:
	// JD(UTC) 2457754.50000  TT-UTC 69.184 s
}

func ExampleSiderealTime() {
	t, _ := ephemeris.FromUTC(time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC), nil)
	st, _ := ephemeris.SiderealTime(t, ephemeris.VLA.LonDeg)
	fmt.Printf("GMST %.6f h, LAST at the VLA %.6f h\n", st.GMSTHours, st.LASTHours)
	// Output:
	// GMST 11.867917 h, LAST at the VLA 4.693328 h
}

func ExamplePosition() {
	// Venus on 1992 December 20, 0h TT (Meeus example 33.a).
	t := ephemeris.FromTT(2448976.5)
	p, _ := ephemeris.Position(ephemeris.Venus, t)
	fmt.Printf("RA %.5f° Dec %.5f° Δ %.6f au\n", p.RA, p.Dec, p.Distance)
	// Output:
	// RA 316.17274° Dec -18.88801° Δ 0.910948 au
}

func ExampleTopocentric() {
	t, _ := ephemeris.FromUTC(time.Date(2025, 1, 10, 6, 0, 0, 0, time.UTC), nil)
	tp, _ := ephemeris.Topocentric(ephemeris.Moon, t, ephemeris.VLA, &ephemeris.TopoConfig{Refraction: ephemeris.RefractionRadio})
	fmt.Printf("Moon from the VLA: az %.2f° alt %.2f°\n", tp.AzDeg, tp.AltDeg)
	// Output:
	// Moon from the VLA: az 261.13° alt 60.00°
}

func ExampleRiseTransitSet() {
	r, _ := ephemeris.RiseTransitSet(ephemeris.Sun, time.Date(2024, 6, 21, 0, 0, 0, 0, time.UTC), ephemeris.VLA, nil)
	fmt.Println("rise   ", r.Rise.Format("15:04:05"))
	fmt.Println("transit", r.Transit.Format("15:04:05"), fmt.Sprintf("%.2f°", r.TransitAltDeg))
	fmt.Println("set    ", r.Set.Format("15:04:05"))
	// Output:
	// rise    11:59:35
	// transit 19:12:27 79.36°
	// set     02:25:07
}

func ExamplePhases() {
	ev, _ := ephemeris.Phases(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC))
	for _, e := range ev {
		fmt.Println(e.Phase, e.Time.UTC().Round(time.Minute).Format("2006-01-02 15:04"))
	}
	// Output:
	// last_quarter 2024-01-04 03:30
	// new 2024-01-11 11:57
	// first_quarter 2024-01-18 03:53
	// full 2024-01-25 17:54
}

func ExampleResolve() {
	tg, _ := ephemeris.Resolve("3c286")
	l, b := ephemeris.ICRSToGalactic(tg.RA, tg.Dec)
	fmt.Printf("%s (%s): RA %.5f Dec %.5f, l %.3f b %.3f\n", tg.Name, tg.Kind, tg.RA, tg.Dec, l, b)
	// Output:
	// 3C 286 (calibrator): RA 202.78453 Dec 30.50916, l 56.524 b 80.675
}

func ExampleObservability() {
	tg, _ := ephemeris.Resolve("3C 48")
	minAlt := 30.0
	ws, _ := ephemeris.Observability(tg.RA, tg.Dec,
		time.Date(2025, 1, 10, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 11, 0, 0, 0, 0, time.UTC),
		ephemeris.VLA, &ephemeris.ObservabilityConfig{MinAltDeg: &minAlt, SunAvoidDeg: 10})
	for _, w := range ws {
		fmt.Println(w.Start.Format("15:04:05"), "-", w.End.Format("15:04:05"), fmt.Sprintf("max %.1f°", w.MaxAltDeg))
	}
	// Output:
	// 00:00:00 - 06:24:54 max 89.2°
	// 20:31:42 - 00:00:00 max 72.0°
}
