package ephemeris

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The public reference file is shipped in testdata/ and also read from the
// shared folder beside the repository (../../shared/ephemeris/ from this
// package) to check the copy is current.
const (
	refLocal  = "testdata/reference-public.json"
	refShared = "../../shared/ephemeris/reference-public.json"
)

type refFile struct {
	Cases []refCase `json:"cases"`
}

type refCase struct {
	ID       string                     `json:"id"`
	Kind     string                     `json:"kind"`
	Input    map[string]json.RawMessage `json:"input"`
	Expected map[string]json.RawMessage `json:"expected"`
	Hint     string                     `json:"tolerance_hint"`
}

func loadRef(t testing.TB, path string) refFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var f refFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return f
}

var (
	hmsRE = regexp.MustCompile(`^([+-]?)(\d+)h(\d+)m([\d.]+)s$`)
	dmsRE = regexp.MustCompile(`^([+-]?)(\d+)°(\d+)'(?:([\d.]+)")?$`)
)

func parseHMS(t testing.TB, s string) float64 {
	t.Helper()
	m := hmsRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		t.Fatalf("bad hms %q", s)
	}
	h, _ := strconv.ParseFloat(m[2], 64)
	mi, _ := strconv.ParseFloat(m[3], 64)
	se, _ := strconv.ParseFloat(m[4], 64)
	v := h + mi/60 + se/3600
	if m[1] == "-" {
		v = -v
	}
	return v
}

func parseDMS(t testing.TB, s string) float64 {
	t.Helper()
	s = strings.TrimSpace(s)
	west := strings.HasSuffix(s, "West") || strings.HasSuffix(s, " W")
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(s, "West"), " W"))
	m := dmsRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("bad dms %q", s)
	}
	d, _ := strconv.ParseFloat(m[2], 64)
	mi, _ := strconv.ParseFloat(m[3], 64)
	se := 0.0
	if m[4] != "" {
		se, _ = strconv.ParseFloat(m[4], 64)
	}
	v := d + mi/60 + se/3600
	if m[1] == "-" || west {
		v = -v
	}
	return v
}

func num(t testing.TB, raw json.RawMessage) float64 {
	t.Helper()
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not a number: %s", raw)
	}
	return v
}

func str(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not a string: %s", raw)
	}
	return v
}

func sub(t testing.TB, raw json.RawMessage) map[string]json.RawMessage {
	t.Helper()
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not an object: %s", raw)
	}
	return v
}

// calJD parses "1987-04-10T00:00:00" or "2028-11-13.19" (Gregorian).
func calJD(t testing.TB, s string) float64 {
	t.Helper()
	if strings.Contains(s, "T") {
		tm, err := time.Parse("2006-01-02T15:04:05", s)
		if err != nil {
			t.Fatalf("bad calendar %q: %v", s, err)
		}
		return JDFromTime(tm)
	}
	parts := strings.SplitN(s, "-", 3)
	y, _ := strconv.Atoi(parts[0])
	mo, _ := strconv.Atoi(parts[1])
	d, _ := strconv.ParseFloat(parts[2], 64)
	jd, err := JDFromCalendar(y, mo, d, CalendarGregorian)
	if err != nil {
		t.Fatal(err)
	}
	return jd
}

// instant converts an "instant" object into a Time honouring its scale.
func instant(t testing.TB, raw json.RawMessage) Time {
	t.Helper()
	in := sub(t, raw)
	scale := str(t, in["scale"])
	var jd float64
	if j, ok := in["jd"]; ok {
		jd = num(t, j)
	} else {
		jd = calJD(t, str(t, in["calendar"]))
	}
	switch scale {
	case "TT", "TDB":
		return FromTT(jd)
	case "UT1":
		return FromUT1(jd)
	case "UTC":
		// Horizons (the source of the UTC cases) uses measured UT1.
		tm, err := FromJDUTC(jd, &TimeConfig{UseIERS: true})
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	t.Fatalf("unknown scale %q", scale)
	return Time{}
}

// measured collects |error| / tolerance per quantity for the report.
type measured struct {
	t  *testing.T
	id string
}

func (m measured) check(quantity string, got, want, tol float64, unit string) {
	m.t.Helper()
	err := math.Abs(got - want)
	status := "ok"
	if !(err <= tol) {
		status = "FAIL"
		m.t.Errorf("%s %s: got %.10g want %.10g (error %.4g %s > tolerance %.4g)", m.id, quantity, got, want, err, unit, tol)
	}
	m.t.Logf("MEASURED %-14s %-32s error %10.4g %-6s tol %8.3g %s", m.id, quantity, err, unit, tol, status)
}

// angleErr returns the difference of two angles in degrees wrapped to ±180.
func angleErr(a, b float64) float64 { return wrap180(a - b) }

// Tolerances by kind (our model's claimed accuracy, never looser than the
// source's model note). All angles in arcsec unless stated.
func TestReferencePublic(t *testing.T) {
	runReference(t, loadRef(t, refLocal))
}

func TestReferenceSharedCopyCurrent(t *testing.T) {
	b, err := os.ReadFile(refShared)
	if err != nil {
		if os.Getenv("HORIZONS_REQUIRE_SERVICES") == "1" {
			t.Fatalf("shared reference file missing (%v) and HORIZONS_REQUIRE_SERVICES=1", err)
		}
		t.Skipf("shared reference file %s not found (%v); the testdata copy is still checked by TestReferencePublic", refShared, err)
	}
	local, err := os.ReadFile(refLocal)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(local)) {
		t.Errorf("testdata/reference-public.json differs from %s; copy the shared file in", refShared)
	}
	runReference(t, loadRef(t, refShared))
}

func runReference(t *testing.T, f refFile) {
	kinds := map[string]int{}
	for _, c := range f.Cases {
		kinds[c.Kind]++
		t.Run(c.ID, func(t *testing.T) {
			fn, ok := refKinds[c.Kind]
			if !ok {
				t.Fatalf("no checker for kind %q", c.Kind)
			}
			fn(t, c, measured{t: t, id: c.ID})
		})
	}
	if len(kinds) < 5 {
		t.Fatalf("only %d kinds found", len(kinds))
	}
}

const arcsec = 1.0 / 3600

var refKinds = map[string]func(*testing.T, refCase, measured){
	"jd_from_calendar": func(t *testing.T, c refCase, m measured) {
		cal, err := ParseCalendar(str(t, c.Input["calendar"]))
		if err != nil {
			t.Fatal(err)
		}
		jd, err := JDFromCalendar(int(num(t, c.Input["year"])), int(num(t, c.Input["month"])), num(t, c.Input["day"]), cal)
		if err != nil {
			t.Fatal(err)
		}
		m.check("jd", jd, num(t, c.Expected["jd"]), 1e-6, "d")
	},
	"calendar_from_jd": func(t *testing.T, c refCase, m measured) {
		cal, _ := ParseCalendar(str(t, c.Expected["calendar"]))
		d, err := CalendarFromJD(num(t, c.Input["jd"]), cal)
		if err != nil {
			t.Fatal(err)
		}
		m.check("year", float64(d.Year), num(t, c.Expected["year"]), 0, "")
		m.check("month", float64(d.Month), num(t, c.Expected["month"]), 0, "")
		m.check("day", d.Day, num(t, c.Expected["day"]), 1e-6, "d")
	},
	"greenwich_sidereal_time":      checkSidereal,
	"greenwich_mean_sidereal_time": checkSidereal,
	"nutation_obliquity": func(t *testing.T, c refCase, m measured) {
		tm := instant(t, c.Input["instant"])
		dp, de := Nutation(tm.JDTT())
		// IAU 2000B against the source's IAU 1980 series: the models differ
		// by a few mas.
		m.check("dpsi (vs IAU1980)", dp, num(t, c.Expected["dpsi_arcsec"]), 0.01, "arcsec")
		m.check("deps (vs IAU1980)", de, num(t, c.Expected["deps_arcsec"]), 0.005, "arcsec")
		mo := parseDMS(t, str(t, c.Expected["mean_obliquity_dms"]))
		m.check("mean obliquity 1980", MeanObliquity1980(tm.JDTT())/arcsec, mo/arcsec, 0.001, "arcsec")
		// IAU 2006 mean obliquity is 0.042" below the 1980 value at J2000
		// by definition (84381.406 vs 84381.448) and its rate differs by
		// 0.022"/cy.
		m.check("mean obliquity 2006+0.042", MeanObliquity(tm.JDTT())/arcsec+0.042, mo/arcsec, 0.004, "arcsec")
		to := parseDMS(t, str(t, c.Expected["true_obliquity_dms"]))
		m.check("true obliquity (1980 mean)", MeanObliquity1980(tm.JDTT())/arcsec+de, to/arcsec, 0.005, "arcsec")
	},
	"equatorial_to_ecliptic": func(t *testing.T, c refCase, m measured) {
		ra := parseHMS(t, str(t, c.Input["ra_hms"])) * 15
		dec := parseDMS(t, str(t, c.Input["dec_dms"]))
		lon, lat := EquatorialToEcliptic(ra, dec, num(t, c.Input["obliquity_deg"]))
		// Expected values are printed to 1e-5 deg.
		m.check("ecl lon", lon, num(t, c.Expected["ecl_lon_deg"]), 6e-6, "deg")
		m.check("ecl lat", lat, num(t, c.Expected["ecl_lat_deg"]), 6e-6, "deg")
	},
	"equatorial_to_horizontal": func(t *testing.T, c refCase, m measured) {
		tm := instant(t, c.Input["instant"])
		site := sub(t, c.Input["site"])
		s := Site{LatDeg: parseDMS(t, str(t, site["lat_dms"])), LonDeg: parseDMS(t, str(t, site["lon_dms"]))}
		ra := parseHMS(t, str(t, c.Input["ra_hms"])) * 15
		dec := parseDMS(t, str(t, c.Input["dec_dms"]))
		az, alt, ha, err := HorizontalFromEquatorial(ra, dec, tm, s)
		if err != nil {
			t.Fatal(err)
		}
		m.check("azimuth (south-based)", angleErr(az-180, num(t, c.Expected["azimuth_deg_from_south_westward"])), 0, 1e-4, "deg")
		m.check("altitude", alt, num(t, c.Expected["altitude_deg"]), 1e-4, "deg")
		m.check("hour angle", ha, num(t, c.Expected["local_hour_angle_deg"]), 1e-4, "deg")
	},
	"equatorial_to_galactic": func(t *testing.T, c refCase, m measured) {
		ra := parseHMS(t, str(t, c.Input["ra_hms"])) * 15
		dec := parseDMS(t, str(t, c.Input["dec_dms"]))
		l, b := B1950ToGalactic(ra, dec)
		m.check("gal lon", l, num(t, c.Expected["gal_lon_deg"]), 1e-4, "deg")
		m.check("gal lat", b, num(t, c.Expected["gal_lat_deg"]), 1e-4, "deg")
	},
	"angular_separation": func(t *testing.T, c refCase, m measured) {
		a, b := sub(t, c.Input["a"]), sub(t, c.Input["b"])
		sep := Separation(parseHMS(t, str(t, a["ra_hms"]))*15, parseDMS(t, str(t, a["dec_dms"])),
			parseHMS(t, str(t, b["ra_hms"]))*15, parseDMS(t, str(t, b["dec_dms"])))
		want := str(t, c.Expected["separation_dms"])
		tol := 1.0 // printed to the arcsec (0.5") plus the input rounding
		if !strings.Contains(want, "\"") {
			tol = 60
		}
		m.check("separation", sep/arcsec, parseDMS(t, want)/arcsec, tol, "arcsec")
	},
	"precession_with_proper_motion": func(t *testing.T, c refCase, m measured) {
		ce := CatalogEntry{
			RA: parseHMS(t, str(t, c.Input["ra_hms"])) * 15, Dec: parseDMS(t, str(t, c.Input["dec_dms"])),
			PMRA: num(t, c.Input["pm_ra_s_per_yr"]) * 15, PMDec: num(t, c.Input["pm_dec_arcsec_per_yr"]),
		}
		to := sub(t, c.Input["epoch_to"])
		got, err := MeanPlace(ce, calJD(t, str(t, to["calendar"])))
		if err != nil {
			t.Fatal(err)
		}
		// Source: IAU 1976 precession; ours IAU 2006, whose precession rate
		// is 0.30"/cy lower: allow that drift plus the printed precision.
		ra, dec := precessionModelTol(calJD(t, str(t, to["calendar"])), ce.Dec)
		m.check("ra", angleErr(got.RA, parseHMS(t, str(t, c.Expected["ra_hms"]))*15)/15/arcsec, 0, ra, "s")
		m.check("dec", (got.Dec-parseDMS(t, str(t, c.Expected["dec_dms"])))/arcsec, 0, dec, "arcsec")
	},
	"apparent_place_star": func(t *testing.T, c refCase, m measured) {
		cat := sub(t, c.Input["catalog"])
		ce := CatalogEntry{
			RA: parseHMS(t, str(t, cat["ra_hms"])) * 15, Dec: parseDMS(t, str(t, cat["dec_dms"])),
			PMRA: num(t, cat["pm_ra_s_per_yr"]) * 15, PMDec: num(t, cat["pm_dec_arcsec_per_yr"]),
		}
		tm := instant(t, c.Input["instant"])
		got, err := ApparentPlace(ce, tm)
		if err != nil {
			t.Fatal(err)
		}
		// Meeus: IAU 1976 precession, IAU 1980 nutation and Ron-Vondrak
		// aberration; ours IAU 2006/2000B and relativistic aberration from
		// the VSOP87 velocity. The precession-rate change dominates.
		ra, dec := precessionModelTol(tm.JDTT(), ce.Dec)
		m.check("ra", angleErr(got.RA, parseHMS(t, str(t, c.Expected["ra_hms"]))*15)/15/arcsec, 0, ra, "s")
		m.check("dec", (got.Dec-parseDMS(t, str(t, c.Expected["dec_dms"])))/arcsec, 0, dec, "arcsec")
	},
	"sun_apparent_radec": func(t *testing.T, c refCase, m measured) {
		tm := instant(t, c.Input["instant"])
		p, err := Position(Sun, tm)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(str(t, c.Input["method"]), "low-accuracy") {
			// The source theory is good to ~0.01 deg.
			m.check("ra (vs low-acc theory)", angleErr(p.RA, num(t, c.Expected["ra_deg"])), 0, 0.01, "deg")
			m.check("dec (vs low-acc theory)", p.Dec, num(t, c.Expected["dec_deg"]), 0.01, "deg")
			m.check("ecl lon (vs low-acc)", angleErr(p.EclLon, num(t, c.Expected["apparent_ecl_lon_deg"])), 0, 0.01, "deg")
			m.check("distance", p.Distance, num(t, c.Expected["distance_au"]), 1e-4, "AU")
			return
		}
		m.check("ra", angleErr(p.RA, parseHMS(t, str(t, c.Expected["ra_hms"]))*15)/arcsec, 0, 0.3, "arcsec")
		m.check("dec", (p.Dec-parseDMS(t, str(t, c.Expected["dec_dms"])))/arcsec, 0, 0.3, "arcsec")
	},
	"sun_apparent_ecliptic_of_date": func(t *testing.T, c refCase, m measured) {
		in := sub(t, c.Input["instant"])
		var cals []string
		if err := json.Unmarshal(in["calendar"], &cals); err != nil {
			t.Fatal(err)
		}
		var lons, lats []float64
		_ = json.Unmarshal(c.Expected["ecl_lon_deg"], &lons)
		_ = json.Unmarshal(c.Expected["ecl_lat_deg"], &lats)
		for i, s := range cals {
			tm, _ := FromJDUTC(calJD(t, s), &TimeConfig{UseIERS: true})
			p, err := Position(Sun, tm)
			if err != nil {
				t.Fatal(err)
			}
			m.check(fmt.Sprintf("ecl lon[%d]", i), angleErr(p.EclLon, lons[i])/arcsec, 0, 0.72, "arcsec")
			m.check(fmt.Sprintf("ecl lat[%d]", i), (p.EclLat-lats[i])/arcsec, 0, 0.036, "arcsec")
		}
	},
	"sun_topocentric_apparent": func(t *testing.T, c refCase, m measured) {
		tm := instant(t, c.Input["instant"])
		site := sub(t, c.Input["site"])
		s := Site{LatDeg: num(t, site["lat_deg"]), LonDeg: num(t, site["lon_deg_east"]), HeightM: num(t, site["height_m"])}
		tp, err := Topocentric(Sun, tm, s, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Horizons prints 1e-5 deg (0.036") and 1e-4 deg (0.36") for
		// az/el; UT1-UTC comes from the built-in IERS series.
		m.check("astrometric ra", angleErr(tp.RAICRS, num(t, c.Expected["astrometric_icrf_ra_deg"]))/arcsec, 0, 0.1, "arcsec")
		m.check("astrometric dec", (tp.DecICRS-num(t, c.Expected["astrometric_icrf_dec_deg"]))/arcsec, 0, 0.1, "arcsec")
		m.check("apparent ra", angleErr(tp.RA, num(t, c.Expected["apparent_ra_deg"]))/arcsec, 0, 0.1, "arcsec")
		m.check("apparent dec", (tp.Dec-num(t, c.Expected["apparent_dec_deg"]))/arcsec, 0, 0.1, "arcsec")
		m.check("azimuth", angleErr(tp.AzDeg, num(t, c.Expected["azimuth_deg"]))/arcsec, 0, 0.36, "arcsec")
		m.check("elevation", (tp.AltDeg-num(t, c.Expected["elevation_deg"]))/arcsec, 0, 0.36, "arcsec")
	},
	"moon_apparent_radec": func(t *testing.T, c refCase, m measured) {
		tm := instant(t, c.Input["instant"])
		p, err := Position(Moon, tm)
		if err != nil {
			t.Fatal(err)
		}
		// Expected values come from Meeus' truncated ELP-2000/82 (~10").
		m.check("ra (vs Meeus ch.47)", angleErr(p.RA, num(t, c.Expected["ra_deg"]))/arcsec, 0, 10, "arcsec")
		m.check("dec (vs Meeus ch.47)", (p.Dec-num(t, c.Expected["dec_deg"]))/arcsec, 0, 10, "arcsec")
		m.check("apparent ecl lon", angleErr(p.EclLon, num(t, c.Expected["apparent_ecl_lon_deg"]))/arcsec, 0, 10, "arcsec")
		m.check("ecl lat", (p.EclLat-num(t, c.Expected["ecl_lat_deg"]))/arcsec, 0, 4, "arcsec")
		m.check("geometric distance", p.GeometricDistance*AUkm, num(t, c.Expected["distance_km"]), 10, "km")
		m.check("horizontal parallax", math.Asin(6378.14/(p.GeometricDistance*AUkm))*rad2deg, num(t, c.Expected["horizontal_parallax_deg"]), 2e-5, "deg")
		m.check("true obliquity", TrueObliquity(tm.JDTT()), num(t, c.Expected["true_obliquity_deg"]), 2e-5, "deg")
	},
	"moon_illuminated_fraction": func(t *testing.T, c refCase, m measured) {
		mo, su := sub(t, c.Input["moon"]), sub(t, c.Input["sun"])
		il, err := IlluminationFrom(
			Equatorial{num(t, su["ra_deg"]), num(t, su["dec_deg"]), num(t, su["distance_km"])},
			Equatorial{num(t, mo["ra_deg"]), num(t, mo["dec_deg"]), num(t, mo["distance_km"])})
		if err != nil {
			t.Fatal(err)
		}
		m.check("illuminated fraction", il.Fraction, num(t, c.Expected["illuminated_fraction"]), 1e-4, "")
		m.check("phase angle", il.PhaseAngleDeg, num(t, c.Expected["phase_angle_deg"]), 2e-4, "deg")
		m.check("elongation", il.ElongationDeg, num(t, c.Expected["elongation_deg"]), 2e-4, "deg")
		m.check("bright limb PA", il.BrightLimbDeg, num(t, c.Expected["bright_limb_position_angle_deg"]), 0.1, "deg")
	},
	"moon_phase_time": func(t *testing.T, c refCase, m measured) {
		ph, err := ParsePhase(str(t, c.Input["phase"]))
		if err != nil {
			t.Fatal(err)
		}
		y := num(t, c.Input["near_decimal_year"])
		want := num(t, c.Expected["jde_tt"])
		got, err := PhaseNear(ph, j2000+(y-2000)*365.25)
		if err != nil {
			t.Fatal(err)
		}
		// Meeus ch. 49 series vs a full lunar theory: ~1 min.
		m.check("phase time", (got.JDTT()-want)*86400, 0, 60, "s")
	},
	"planet_apparent_radec": func(t *testing.T, c refCase, m measured) {
		b, err := ParseBody(str(t, c.Input["body"]))
		if err != nil {
			t.Fatal(err)
		}
		tm := instant(t, c.Input["instant"])
		p, err := Position(b, tm)
		if err != nil {
			t.Fatal(err)
		}
		m.check("ra", angleErr(p.RA, parseHMS(t, str(t, c.Expected["ra_hms"]))*15)/arcsec, 0, 0.3, "arcsec")
		m.check("dec", (p.Dec-parseDMS(t, str(t, c.Expected["dec_dms"])))/arcsec, 0, 0.3, "arcsec")
		m.check("distance", p.Distance, num(t, c.Expected["distance_au"]), 2e-6, "AU")
	},
	"rise_transit_set": func(t *testing.T, c refCase, m measured) {
		b, err := ParseBody(str(t, c.Input["body"]))
		if err != nil {
			t.Fatal(err)
		}
		day, _ := time.Parse("2006-01-02", str(t, c.Input["date"]))
		site := sub(t, c.Input["site"])
		s := Site{LatDeg: parseDMS(t, str(t, site["lat_dms"])), LonDeg: parseDMS(t, str(t, site["lon_dms"]))}
		h0 := num(t, c.Input["h0_deg"])
		r, err := RiseTransitSet(b, day, s, &RiseSetConfig{AltitudeDeg: &h0})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range []struct {
			name string
			got  *time.Time
		}{{"rise", r.Rise}, {"transit", r.Transit}, {"set", r.Set}} {
			if ev.got == nil {
				t.Fatalf("no %s", ev.name)
			}
			frac := num(t, c.Expected[ev.name+"_day_fraction"])
			want := day.Add(time.Duration(frac * 86400 * float64(time.Second)))
			m.check(ev.name, ev.got.Sub(want).Seconds(), 0, 30, "s")
		}
	},
	"sun_rise_set": func(t *testing.T, c refCase, m measured) {
		site := sub(t, c.Input["site"])
		s := Site{LatDeg: num(t, site["lat_deg"]), LonDeg: num(t, site["lon_deg_east"])}
		var win []string
		_ = json.Unmarshal(c.Input["search_window_utc"], &win)
		w0, _ := time.Parse(time.RFC3339, win[0])
		w1, _ := time.Parse(time.RFC3339, win[1])
		var rises, sets []time.Time
		for d := w0.Truncate(24 * time.Hour); d.Before(w1); d = d.Add(24 * time.Hour) {
			r, err := RiseTransitSet(Sun, d, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rise != nil && !r.Rise.Before(w0) && r.Rise.Before(w1) {
				rises = append(rises, *r.Rise)
			}
			if r.Set != nil && !r.Set.Before(w0) && r.Set.Before(w1) {
				sets = append(sets, *r.Set)
			}
		}
		if len(rises) != 1 || len(sets) != 1 {
			t.Fatalf("found rises %v sets %v", rises, sets)
		}
		wr, _ := time.Parse("2006-01-02T15:04Z", str(t, c.Expected["sunrise_utc"]))
		ws, _ := time.Parse("2006-01-02T15:04Z", str(t, c.Expected["sunset_utc"]))
		// USNO rounds to the minute: the true time is within ±30 s of the
		// printed minute; allow 30 s more.
		m.check("sunrise", rises[0].Sub(wr).Seconds(), 0, 60, "s")
		m.check("sunset", sets[0].Sub(ws).Seconds(), 0, 60, "s")
	},
	"refraction": func(t *testing.T, c refCase, m measured) {
		h := num(t, c.Input["apparent_altitude_deg"])
		m.check("Bennett R(0.5 deg)", RefractionBennett(h), num(t, c.Expected["refraction_arcmin_at_apparent_0.5deg"]), 0.001, "arcmin")
		ht := num(t, c.Expected["true_upper_limb_arcmin"]) / 60
		m.check("Saemundsson R(true)", RefractionSaemundsson(ht), num(t, c.Expected["refraction_arcmin_at_true_33.246arcmin"]), 0.002, "arcmin")
	},
	"hadec_to_azel": func(t *testing.T, c refCase, m measured) {
		az, el := hd2ae(num(t, c.Input["hour_angle_rad"]), num(t, c.Input["dec_rad"]), num(t, c.Input["site_lat_rad"]))
		m.check("azimuth", az, num(t, c.Expected["azimuth_rad"]), 1e-13, "rad")
		m.check("elevation", el, num(t, c.Expected["elevation_rad"]), 1e-13, "rad")
	},
}

// precessionModelTol bounds the IAU 2006 − IAU 1976 difference of a
// precessed place: 0.30″/cy of precession in longitude times the interval,
// plus 0.01″ of printed precision; returned as RA seconds and Dec arcsec.
func precessionModelTol(jdTT, decDeg float64) (raSec, decArcsec float64) {
	lon := 0.30*math.Abs(jdTT-j2000)/36525 + 0.01
	return lon / 15 / math.Cos(decDeg*deg2rad), lon
}

func checkSidereal(t *testing.T, c refCase, m measured) {
	var tm Time
	if tt, ok := c.Input["tt_jd"]; ok {
		// NOVAS case with delta_t = 0 (UT1 = TT).
		in := sub(t, c.Input["instant"])
		tm = FromTTWithDeltaT(num(t, tt), 0)
		_ = in
	} else {
		tm = instant(t, c.Input["instant"])
	}
	st, err := SiderealTime(tm, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Expected["gmst_hms"]; ok {
		// The source uses the IAU 1982 formula; GMST1982Hours reproduces
		// it, and the IAU 2006 value differs by the precession-rate
		// correction (0.97 ms + 18.8 ms/cy × (J2000 − epoch)).
		want := parseHMS(t, str(t, v))
		m.check("GMST82", (GMST1982Hours(tm.JDUT1())-want)*3600, 0, 1e-4, "s")
		model := 0.97e-3 - 18.8e-3*(tm.JDTT()-j2000)/36525
		m.check("GMST06-model diff", (st.GMSTHours-want)*3600-model, 0, 2e-4, "s")
	}
	if v, ok := c.Expected["gast_hms"]; ok {
		want := parseHMS(t, str(t, v))
		m.check("GAST82", (GAST1982Hours(tm)-want)*3600, 0, 1e-3, "s")
		model := 0.97e-3 - 18.8e-3*(tm.JDTT()-j2000)/36525
		m.check("GAST06-model diff", (st.GASTHours-want)*3600-model, 0, 1e-3, "s")
	}
	if v, ok := c.Expected["gmst_hours"]; ok {
		m.check("GMST", (st.GMSTHours-num(t, v))*3600, 0, 1e-4, "s")
	}
}
