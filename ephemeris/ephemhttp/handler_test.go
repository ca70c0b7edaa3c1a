package ephemhttp

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, url string) (int, map[string]any, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q is not JSON: %v", url, rec.Body.String(), err)
	}
	return rec.Code, body, rec.Header()
}

func okGet(t *testing.T, h http.Handler, url string) map[string]any {
	t.Helper()
	code, body, hdr := get(t, h, url)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d body %v", url, code, body)
	}
	if cc := hdr.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("%s: Cache-Control %q", url, cc)
	}
	return body
}

func f(t *testing.T, body map[string]any, key string) float64 {
	t.Helper()
	v, ok := body[key].(float64)
	if !ok {
		t.Fatalf("field %s missing or not a number in %v", key, body)
	}
	return v
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol || math.IsNaN(got) {
		t.Errorf("%s = %.9g, want %.9g ± %g", what, got, want, tol)
	}
}

// Reference values below are published ones (JPL Horizons, USNO, Meeus),
// not outputs of this package.

func TestPositionSunTopocentricHorizons(t *testing.T) {
	h := NewHandler(nil)
	b := okGet(t, h, Prefix+"position?body=sun&time=2019-03-20T16:00:00Z&lat=0&lon=0&height=0&dut1=iers")
	// JPL Horizons (airless, measured UT1): az 269.8844, el 31.8773;
	// astrometric ICRF 359.53406 / -0.20112 are topocentric there, so the
	// geocentric values differ by the solar parallax (< 9").
	near(t, "az", f(t, b, "az_deg"), 269.8844, 0.0001)
	near(t, "alt", f(t, b, "alt_deg"), 31.8773, 0.0001)
	// With the default UT1 = UTC the hour angle shifts by DUT1 (−0.15 s).
	b0 := okGet(t, h, Prefix+"position?body=sun&time=2019-03-20T16:00:00Z&lat=0&lon=0&height=0")
	near(t, "alt (UT1=UTC)", f(t, b0, "alt_deg"), 31.8773, 0.002)
	// Airmass at 31.88° elevation: about 1/sin(h) = 1.89 (Pickering).
	near(t, "airmass", f(t, b, "airmass"), 1.0/math.Sin(31.8773*math.Pi/180), 0.01)
	if ha := f(t, b, "hour_angle_deg"); ha < 50 || ha > 60 {
		t.Errorf("hour angle %v (Sun 3.8 h past noon)", ha)
	}
	near(t, "ra_icrs", f(t, b, "ra_icrs_deg"), 359.53406, 10.0/3600)
	near(t, "dec_icrs", f(t, b, "dec_icrs_deg"), -0.20112, 10.0/3600)
	if b["body"] != "sun" || b["time"] != "2019-03-20T16:00:00Z" {
		t.Errorf("echo fields: %v", b)
	}
}

func TestPositionVenusMeeus(t *testing.T) {
	// Meeus 33.a (complete VSOP87): 1992-12-20 0h TT = 1992-12-19T23:59:01.816 UTC.
	b := okGet(t, NewHandler(nil), Prefix+"position?body=venus&time=1992-12-19T23:59:01.816Z")
	near(t, "ra", f(t, b, "ra_deg"), (21+4.0/60+41.454/3600)*15, 0.3/3600)
	near(t, "dec", f(t, b, "dec_deg"), -(18 + 53.0/60 + 16.84/3600), 0.3/3600)
	near(t, "distance", f(t, b, "distance_au"), 0.910947, 2e-6)
	if _, ok := b["alt_deg"]; ok {
		t.Error("alt_deg present without a site")
	}
}

func TestPositionRefractionRaisesAltitude(t *testing.T) {
	h := NewHandler(nil)
	u := Prefix + "position?body=sun&time=2024-06-21T13:00:00Z&site=vla"
	plain := f(t, okGet(t, h, u), "alt_deg")
	radio := f(t, okGet(t, h, u+"&refraction=radio"), "alt_deg")
	opt := f(t, okGet(t, h, u+"&refraction=optical"), "alt_deg")
	if !(radio > opt && opt > plain) || radio-plain > 0.5 {
		t.Errorf("alt plain %v optical %v radio %v", plain, opt, radio)
	}
	thin := f(t, okGet(t, h, u+"&refraction=optical&pressure=790"), "alt_deg")
	if r := (thin - plain) / (opt - plain); math.Abs(r-790.0/1010) > 0.01 {
		t.Errorf("pressure scaling %v", r)
	}
}

func TestSiderealUSNO(t *testing.T) {
	// Meeus 12.a: 1987-04-10 0h UT, GMST 13h10m46.3668s (IAU 1982; the
	// IAU 2006 value served here is 3.3 ms later).
	b := okGet(t, NewHandler(nil), Prefix+"sidereal?time=1987-04-10T00:00:00Z&lon=-77.0656")
	want := 13 + 10.0/60 + 46.3668/3600
	near(t, "gmst", f(t, b, "gmst_hours"), want, 0.005/3600)
	near(t, "gast", f(t, b, "gast_hours"), 13+10.0/60+46.1351/3600, 0.005/3600)
	near(t, "lmst", f(t, b, "lmst_hours"), want-77.0656/15, 0.005/3600)
	era := f(t, b, "era_deg")
	if era < 0 || era >= 360 {
		t.Errorf("era %v", era)
	}
}

func TestJulian(t *testing.T) {
	b := okGet(t, NewHandler(nil), Prefix+"julian?time=2000-01-01T12:00:00Z")
	near(t, "jd_utc", f(t, b, "jd_utc"), 2451545.0, 1e-9)
	near(t, "jd_tt", f(t, b, "jd_tt"), 2451545.0+64.184/86400, 1e-9)
	near(t, "mjd_utc", f(t, b, "mjd_utc"), 51544.5, 1e-9)
	// Leap second 2016-12-31: TT-UTC 68.184 before, 69.184 after.
	b = okGet(t, NewHandler(nil), Prefix+"julian?time=2017-01-01T00:00:00Z")
	near(t, "tt-utc 2017", (f(t, b, "jd_tt")-f(t, b, "jd_utc"))*86400, 69.184, 1e-4)
}

func TestRiseSetUSNOBluffton(t *testing.T) {
	b := okGet(t, NewHandler(nil), Prefix+"riseset?body=sun&date=2018-09-12&lat=40.8939&lon=-83.8917")
	rise, _ := time.Parse(time.RFC3339, b["rise"].(string))
	want := time.Date(2018, 9, 12, 11, 13, 30, 0, time.UTC)
	if d := rise.Sub(want); d > 60*time.Second || d < -60*time.Second {
		t.Errorf("rise %v, USNO 11:13", rise)
	}
	// Sunset 23:50 on 2018-09-12 local is on the same UTC date here.
	set, _ := time.Parse(time.RFC3339, b["set"].(string))
	if d := set.Sub(time.Date(2018, 9, 12, 23, 50, 30, 0, time.UTC)); d > 60*time.Second || d < -60*time.Second {
		t.Errorf("set %v, USNO 23:50", set)
	}
	if _, ok := b["transit_alt_deg"].(float64); !ok {
		t.Errorf("transit_alt_deg missing: %v", b)
	}
}

func TestRiseSetNullsAndTwilight(t *testing.T) {
	h := NewHandler(nil)
	// Midnight sun at 78° N in June: no rise, no set, circumpolar.
	b := okGet(t, h, Prefix+"riseset?body=sun&date=2024-06-21&lat=78&lon=15")
	if b["rise"] != nil || b["set"] != nil || b["circumpolar"] != true {
		t.Errorf("polar day: %v", b)
	}
	tw := okGet(t, h, Prefix+"riseset?body=sun&date=2024-03-20&site=vla&twilight=civil")
	dawn, err1 := time.Parse(time.RFC3339, tw["dawn"].(string))
	dusk, err2 := time.Parse(time.RFC3339, tw["dusk"].(string))
	if err1 != nil || err2 != nil {
		t.Fatalf("twilight %v", tw)
	}
	rs := okGet(t, h, Prefix+"riseset?body=sun&date=2024-03-20&site=vla")
	rise, _ := time.Parse(time.RFC3339, rs["rise"].(string))
	// Civil dawn precedes sunrise by ~25 min at 34° N near the equinox.
	if d := rise.Sub(dawn); d < 20*time.Minute || d > 32*time.Minute {
		t.Errorf("dawn %v rise %v", dawn, rise)
	}
	if dusk.Before(dawn) {
		t.Logf("dusk %v precedes dawn %v (UTC date spans two local days)", dusk, dawn)
	}
}

func TestConvertGalactic(t *testing.T) {
	h := NewHandler(nil)
	// The IAU galactic centre and north pole in ICRS (Hipparcos definition).
	b := okGet(t, h, Prefix+"convert?ra=192.85948&dec=27.12825&from=icrs&to=galactic")
	near(t, "b(NGP)", f(t, b, "lat_deg"), 90, 1e-4)
	b = okGet(t, h, Prefix+"convert?ra=266.40499&dec=-28.93617&to=galactic")
	near(t, "l(GC)", math.Mod(f(t, b, "lon_deg")+180, 360)-180, 0, 1e-3)
	near(t, "b(GC)", f(t, b, "lat_deg"), 0, 1e-3)
	// And back.
	b = okGet(t, h, Prefix+"convert?lon=0&lat=0&from=galactic&to=icrs")
	near(t, "ra(GC)", f(t, b, "ra_deg"), 266.40499, 1e-3)
	near(t, "dec(GC)", f(t, b, "dec_deg"), -28.93617, 1e-3)
}

func TestConvertEclipticMeeus(t *testing.T) {
	// Meeus 13.a, Pollux: 7h45m18.946s +28°01'34.26" -> λ 113.21563, β 6.68417.
	b := okGet(t, NewHandler(nil), Prefix+"convert?ra=07:45:18.946&dec=28:01:34.26&from=icrs&to=ecliptic")
	near(t, "lon", f(t, b, "lon_deg"), 113.21563, 2e-5)
	near(t, "lat", f(t, b, "lat_deg"), 6.68417, 2e-5)
	b = okGet(t, NewHandler(nil), Prefix+"convert?ra=10&dec=20&to=fk5")
	near(t, "fk5 ra", f(t, b, "ra_deg"), 10, 0.05/3600)
	near(t, "fk5 dec", f(t, b, "dec_deg"), 20, 0.05/3600)
}

func TestMoonAndPhases(t *testing.T) {
	h := NewHandler(nil)
	// Meeus 48.a: 1992-04-12 0h TD, k = 0.6786 (from Meeus' positions).
	b := okGet(t, h, Prefix+"moon?time=1992-04-11T23:59:01.816Z")
	near(t, "fraction", f(t, b, "illuminated_fraction"), 0.6786, 0.001)
	near(t, "phase angle", f(t, b, "phase_angle_deg"), 69.0756, 0.1)
	near(t, "elongation", f(t, b, "elongation_deg"), 110.7929, 0.1)
	// Meeus 49.a: new moon 1977 Feb, JDE 2443192.65118 (TT); UTC = TT − 48.184 s.
	b = okGet(t, h, Prefix+"phases?from=1977-02-01T00:00:00Z&to=1977-03-01T00:00:00Z")
	ph := b["phases"].([]any)
	found := false
	for _, p := range ph {
		m := p.(map[string]any)
		if m["phase"] == "new" {
			tm, _ := time.Parse(time.RFC3339, m["time"].(string))
			want := time.Date(1977, 2, 18, 3, 37, 42, 0, time.UTC).Add(-48 * time.Second)
			if d := tm.Sub(want); d > time.Minute || d < -time.Minute {
				t.Errorf("new moon %v want %v", tm, want)
			}
			found = true
		}
	}
	if !found || len(ph) != 4 {
		t.Errorf("phases %v", ph)
	}
}

func TestObservability3C286(t *testing.T) {
	b := okGet(t, NewHandler(nil), Prefix+"observability?target=3C286&from=2025-01-10T00:00:00Z&to=2025-01-11T00:00:00Z&site=vla&min_alt=20")
	ws := b["windows"].([]any)
	if len(ws) == 0 || len(ws) > 2 {
		t.Fatalf("windows %v", ws)
	}
	w := ws[0].(map[string]any)
	// 3C 286 culminates at 90 − |34.08 − 30.4| ≈ 86.3° at the VLA.
	if len(ws) == 1 {
		near(t, "max alt", f(t, w, "max_alt_deg"), 86.3, 0.5)
	}
	start, _ := time.Parse(time.RFC3339, w["start"].(string))
	end, _ := time.Parse(time.RFC3339, w["end"].(string))
	if !end.After(start) {
		t.Errorf("window %v", w)
	}
	// Spherical trigonometry: cos H = (sin 20° − sin φ sin δ)/(cos φ cos δ)
	// with δ of date ≈ 30.37°, φ = 34.0787° gives 2H = 11.37 sidereal hours
	// = 11.34 h; a UTC day holds one full pass or two partial ones.
	total := 0.0
	for _, x := range ws {
		m := x.(map[string]any)
		s, _ := time.Parse(time.RFC3339, m["start"].(string))
		e, _ := time.Parse(time.RFC3339, m["end"].(string))
		total += e.Sub(s).Hours()
	}
	phi, dec := 34.0787*math.Pi/180, 30.37*math.Pi/180
	ch := (math.Sin(20*math.Pi/180) - math.Sin(phi)*math.Sin(dec)) / (math.Cos(phi) * math.Cos(dec))
	want := 2 * math.Acos(ch) * 12 / math.Pi / 1.00273790935
	near(t, "hours above 20°", total, want, 0.1)
}

func TestResolve(t *testing.T) {
	h := NewHandler(&Config{Now: func() time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC) }})
	b := okGet(t, h, Prefix+"resolve?target=3C%20286")
	near(t, "ra", f(t, b, "ra_deg"), (13+31.0/60+8.2881/3600)*15, 1e-6)
	near(t, "dec", f(t, b, "dec_deg"), 30+30.0/60+32.959/3600, 1e-6)
	if b["kind"] != "calibrator" || b["name"] != "3C 286" {
		t.Errorf("resolve: %v", b)
	}
	b = okGet(t, h, Prefix+"resolve?target=J0521%2B1638")
	if b["name"] != "3C 138" {
		t.Errorf("alias: %v", b)
	}
	_, body, hdr := get(t, h, Prefix+"resolve?target=mars")
	if body["kind"] != "body" || hdr.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("body resolve: %v %v", body, hdr)
	}
}

func TestBadInput(t *testing.T) {
	h := NewHandler(nil)
	cases := []struct{ url, field string }{
		{"position?body=pluto&time=2024-01-01T00:00:00Z", "body"},
		{"position?time=2024-01-01T00:00:00Z", "body"},
		{"position?body=sun&time=yesterday", "time"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&lat=95&lon=0", "lat"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&lat=10", "lon"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&site=alma", "site"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&refraction=radio", "refraction"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&site=vla&refraction=foo", "refraction"},
		{"sidereal?time=2024-01-01T00:00:00Z&lon=abc", "lon"},
		{"sidereal?time=2024-01-01T00:00:00Z&dut1=1.2", "dut1"},
		{"sidereal?time=2024-01-01T00:00:00Z&dut1=soon", "dut1"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&site=vla&refraction=radio&humidity=3", "humidity"},
		{"position?body=sun&time=2024-01-01T00:00:00Z&site=vla&refraction=radio&pressure=-5", "pressure"},
		{"julian?time=2024-13-01T00:00:00Z", "time"},
		{"riseset?body=moon&date=2024-02-30&site=vla", "date"},
		{"riseset?body=moon&date=2024-02-03", "site"},
		{"riseset?body=moon&date=2024-02-03&site=vla&twilight=civil", "twilight"},
		{"riseset?body=sun&date=2024-02-03&site=vla&twilight=dusk", "twilight"},
		{"convert?ra=400&dec=0&to=galactic", "ra"},
		{"convert?ra=10&dec=-91&to=galactic", "dec"},
		{"convert?ra=10&dec=0&to=supergalactic", "to"},
		{"convert?ra=10&dec=0&from=b1900&to=icrs", "from"},
		{"moon?time=", "time"},
		{"phases?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from"},
		{"phases?from=2024-01-01T00:00:00Z&to=2025-06-01T00:00:00Z", "to"},
		{"observability?ra=10&dec=20&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&site=vla&min_alt=100", "min_alt"},
		{"observability?ra=10&dec=20&from=2024-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&site=vla", "to"},
		{"observability?target=moon&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&site=vla", "target"},
		{"resolve?target=NGC%209999", "target"},
	}
	for _, c := range cases {
		code, body, hdr := get(t, h, Prefix+c.url)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (%v)", c.url, code, body)
			continue
		}
		e, _ := body["error"].(map[string]any)
		if e["code"] != "invalid_argument" || e["field"] != c.field || e["message"] == "" {
			t.Errorf("%s: error %v, want field %q", c.url, e, c.field)
		}
		if hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%s: content type %q", c.url, hdr.Get("Content-Type"))
		}
	}
	code, _, _ := get(t, h, Prefix+"nowhere")
	if code != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", code)
	}
}

func TestOddInputsNeverFail500(t *testing.T) {
	h := NewHandler(nil)
	queries := []string{
		"position?body=moon&time=2024-01-01T00:00:00Z&lat=90&lon=0",
		"position?body=moon&time=2024-01-01T00:00:00Z&lat=-90&lon=359.9&height=-400",
		"position?body=sun&time=1066-10-14T09:00:00Z",
		"position?body=neptune&time=7999-12-31T23:59:59Z&site=vla&refraction=optical",
		"position?body=sun&time=2024-01-01T00:00:00Z&lat=NaN&lon=0",
		"position?body=sun&time=2024-01-01T00:00:00Z&lat=1e400&lon=0",
		"position?body=3C48&time=2024-01-01T00:00:00Z&site=vla&refraction=radio",
		"sidereal?time=0001-01-01T00:00:00Z&lon=360",
		"julian?time=1582-10-10T00:00:00Z",
		"riseset?body=moon&date=0001-01-01&lat=89.9&lon=0",
		"riseset?body=3C286&date=2024-06-01&site=vla",
		"riseset?body=sun&date=2024-06-21&lat=80&lon=0&twilight=astronomical",
		"convert?ra=359.999999&dec=90&to=galactic",
		"convert?lon=0&lat=-90&from=ecliptic&to=fk5",
		"convert?ra=-0:0:1&dec=0&to=icrs",
		"moon?time=1900-01-01T00:00:00Z",
		"phases?from=2024-01-01T00:00:00Z&to=2024-01-01T00:00:01Z",
		"observability?ra=0&dec=90&from=2024-01-01T00:00:00Z&to=2024-01-03T00:00:00Z&lat=-89&lon=0&min_alt=-90",
		"observability?ra=12:00:00&dec=-89:59:59&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&site=vla&sun_avoid=180&moon_avoid=180",
		"resolve?target=00:00:00+%2B00:00:00",
		"resolve?target=%F0%9F%8C%99",
	}
	for _, q := range queries {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Prefix+q, nil))
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d %s", q, rec.Code, rec.Body.String())
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Errorf("%s: not JSON: %q", q, rec.Body.String())
		}
	}
}
