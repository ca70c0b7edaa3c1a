package ephemhttp

import (
	"math"
	"time"

	"github.com/cosmic-horizons/horizons/ephemeris"
)

type positionResp struct {
	Body       string   `json:"body"`
	Time       string   `json:"time"`
	JDTT       float64  `json:"jd_tt"`
	RA         float64  `json:"ra_deg"`
	Dec        float64  `json:"dec_deg"`
	Distance   *float64 `json:"distance_au"`
	RAICRS     float64  `json:"ra_icrs_deg"`
	DecICRS    float64  `json:"dec_icrs_deg"`
	Alt        *float64 `json:"alt_deg,omitempty"`
	Az         *float64 `json:"az_deg,omitempty"`
	HourAngle  *float64 `json:"hour_angle_deg,omitempty"`
	Parallactc *float64 `json:"parallactic_angle_deg,omitempty"`
	Airmass    *float64 `json:"airmass,omitempty"`
	Refraction string   `json:"refraction,omitempty"`
	Kind       string   `json:"kind"`
}

func (h *handler) position(q query) (any, bool, error) {
	name, err := q.required("body")
	if err != nil {
		return nil, false, err
	}
	tgt, err := ephemeris.Resolve(name)
	if err != nil {
		return nil, false, bad("body", "unknown body %q (sun, moon, mercury..neptune or a VLA calibrator)", name)
	}
	t, et, err := q.instant("time")
	if err != nil {
		return nil, false, err
	}
	site, hasSite, err := q.site(false)
	if err != nil {
		return nil, false, err
	}
	refr, err := ephemeris.ParseRefraction(q.str("refraction"))
	if err != nil {
		return nil, false, err
	}
	if refr != ephemeris.RefractionNone && !hasSite {
		return nil, false, bad("refraction", "refraction needs a site (site or lat/lon)")
	}
	atm, err := q.atmosphere()
	if err != nil {
		return nil, false, err
	}
	resp := positionResp{Body: tgt.Name, Time: rfc(t), JDTT: et.JDTT(), Kind: tgt.Kind}
	if q.str("refraction") != "" {
		resp.Refraction = q.str("refraction")
	}
	if tgt.Kind == "body" {
		p, err := ephemeris.Position(tgt.Body, et)
		if err != nil {
			return nil, false, err
		}
		d := p.Distance
		resp.RA, resp.Dec, resp.Distance = p.RA, p.Dec, &d
		resp.RAICRS, resp.DecICRS = p.RAICRS, p.DecICRS
		if hasSite {
			tp, err := ephemeris.Topocentric(tgt.Body, et, site, &ephemeris.TopoConfig{Refraction: refr, Atmosphere: atm})
			if err != nil {
				return nil, false, err
			}
			resp.setSite(tp.AltDeg, tp.AzDeg, tp.HourAngleDeg, tp.ParallacticDeg)
		}
		return resp, false, nil
	}
	app, err := ephemeris.ApparentFromICRS(tgt.RA, tgt.Dec, et)
	if err != nil {
		return nil, false, err
	}
	resp.RA, resp.Dec, resp.RAICRS, resp.DecICRS = app.RA, app.Dec, tgt.RA, tgt.Dec
	if hasSite {
		az, alt, ha, err := ephemeris.HorizontalFromEquatorial(app.RA, app.Dec, et, site)
		if err != nil {
			return nil, false, err
		}
		alt += ephemeris.RefractionDeg(refr, alt, atm)
		resp.setSite(alt, az, ha, ephemeris.ParallacticAngle(ha, app.Dec, site.LatDeg))
	}
	return resp, false, nil
}

func (r *positionResp) setSite(alt, az, ha, pa float64) {
	r.Alt, r.Az, r.HourAngle, r.Parallactc = &alt, &az, &ha, &pa
	if am := ephemeris.Airmass(alt); !math.IsInf(am, 0) {
		r.Airmass = &am
	}
}

func (h *handler) sidereal(q query) (any, bool, error) {
	_, et, err := q.instant("time")
	if err != nil {
		return nil, false, err
	}
	lon, err := q.float("lon", 0)
	if err != nil {
		return nil, false, err
	}
	st, err := ephemeris.SiderealTime(et, lon)
	if err != nil {
		return nil, false, err
	}
	return map[string]float64{
		"gmst_hours": st.GMSTHours, "gast_hours": st.GASTHours, "era_deg": st.ERADeg,
		"lmst_hours": st.LMSTHours, "last_hours": st.LASTHours,
	}, false, nil
}

func (h *handler) julian(q query) (any, bool, error) {
	_, et, err := q.instant("time")
	if err != nil {
		return nil, false, err
	}
	return map[string]float64{
		"jd_utc": et.JDUTC(), "jd_tt": et.JDTT(), "mjd_utc": et.MJDUTC(),
		"jd_ut1": et.JDUT1(), "mjd_tt": et.JDTT() - 2400000.5,
		"delta_t_s": round(et.DeltaT(), 3), "tai_minus_utc_s": ephemeris.TAIMinusUTC(et.JDUTC()),
	}, false, nil
}

type riseResp struct {
	Rise        *string  `json:"rise"`
	Transit     *string  `json:"transit"`
	Set         *string  `json:"set"`
	TransitAlt  *float64 `json:"transit_alt_deg"`
	Circumpolar bool     `json:"circumpolar"`
	NeverRises  bool     `json:"never_rises"`
}

func (h *handler) riseset(q query) (any, bool, error) {
	name, err := q.required("body")
	if err != nil {
		return nil, false, err
	}
	tgt, err := ephemeris.Resolve(name)
	if err != nil {
		return nil, false, bad("body", "unknown body %q", name)
	}
	ds, err := q.required("date")
	if err != nil {
		return nil, false, err
	}
	day, err := time.Parse("2006-01-02", ds)
	if err != nil {
		return nil, false, bad("date", "%q is not a date YYYY-MM-DD", ds)
	}
	site, _, err := q.site(true)
	if err != nil {
		return nil, false, err
	}
	if tw := q.str("twilight"); tw != "" {
		if tgt.Kind != "body" || tgt.Body != ephemeris.Sun {
			return nil, false, bad("twilight", "twilight applies to body=sun only")
		}
		alt := map[string]float64{"civil": ephemeris.CivilTwilight, "nautical": ephemeris.NauticalTwilight, "astronomical": ephemeris.AstronomicalTwilight}
		a, ok := alt[tw]
		if !ok {
			return nil, false, bad("twilight", "%q: want civil, nautical or astronomical", tw)
		}
		dawn, dusk, err := ephemeris.Twilight(day, site, a)
		if err != nil {
			return nil, false, err
		}
		return map[string]*string{"dawn": optTime(dawn), "dusk": optTime(dusk)}, false, nil
	}
	var r ephemeris.RiseSet
	if tgt.Kind == "body" {
		r, err = ephemeris.RiseTransitSet(tgt.Body, day, site, nil)
	} else {
		r, err = ephemeris.FixedRiseTransitSet(tgt.RA, tgt.Dec, day, site, nil)
	}
	if err != nil {
		return nil, false, err
	}
	resp := riseResp{Rise: optTime(r.Rise), Transit: optTime(r.Transit), Set: optTime(r.Set), Circumpolar: r.Circumpolar, NeverRises: r.NeverRises}
	if !math.IsNaN(r.TransitAltDeg) {
		v := r.TransitAltDeg
		resp.TransitAlt = &v
	}
	return resp, false, nil
}

var frames = map[string]bool{"icrs": true, "fk5": true, "galactic": true, "ecliptic": true}

func (h *handler) convert(q query) (any, bool, error) {
	from := q.str("from")
	if from == "" {
		from = "icrs"
	}
	to, err := q.required("to")
	if err != nil {
		return nil, false, err
	}
	if !frames[from] {
		return nil, false, bad("from", "%q: want icrs, fk5, galactic or ecliptic", from)
	}
	if !frames[to] {
		return nil, false, bad("to", "%q: want icrs, fk5, galactic or ecliptic", to)
	}
	spherical := from == "galactic" || from == "ecliptic"
	lonName, latName := "ra", "dec"
	if spherical && (q.has("lon") || q.has("lat")) {
		lonName, latName = "lon", "lat"
	}
	a, err := q.angle(lonName, !spherical)
	if err != nil {
		return nil, false, err
	}
	d, err := q.angle(latName, false)
	if err != nil {
		return nil, false, err
	}
	if a < 0 || a >= 360 {
		return nil, false, bad(lonName, "%g: must be within [0, 360) degrees", a)
	}
	if d < -90 || d > 90 {
		return nil, false, bad(latName, "%g: must be within -90..90 degrees", d)
	}
	// To ICRS.
	var ra, dec float64
	switch from {
	case "icrs":
		ra, dec = a, d
	case "fk5":
		ra, dec = ephemeris.FK5ToICRS(a, d)
	case "galactic":
		ra, dec = ephemeris.GalacticToICRS(a, d)
	case "ecliptic":
		ra, dec = ephemeris.EclipticToEquatorial(a, d, ephemeris.ObliquityJ2000Deg)
	}
	switch to {
	case "icrs":
		return map[string]float64{"ra_deg": ra, "dec_deg": dec}, false, nil
	case "fk5":
		r, dd := ephemeris.ICRSToFK5(ra, dec)
		return map[string]float64{"ra_deg": r, "dec_deg": dd}, false, nil
	case "galactic":
		l, b := ephemeris.ICRSToGalactic(ra, dec)
		return map[string]float64{"lon_deg": l, "lat_deg": b}, false, nil
	default:
		l, b := ephemeris.EquatorialToEcliptic(ra, dec, ephemeris.ObliquityJ2000Deg)
		return map[string]float64{"lon_deg": l, "lat_deg": b}, false, nil
	}
}

func (h *handler) moon(q query) (any, bool, error) {
	_, et, err := q.instant("time")
	if err != nil {
		return nil, false, err
	}
	il, err := ephemeris.MoonIllumination(et)
	if err != nil {
		return nil, false, err
	}
	return map[string]float64{
		"illuminated_fraction": il.Fraction, "phase_angle_deg": il.PhaseAngleDeg,
		"elongation_deg": il.ElongationDeg, "bright_limb_deg": il.BrightLimbDeg,
	}, false, nil
}

func (q query) span() (time.Time, time.Time, error) {
	from, err := q.time("from")
	if err != nil {
		return from, from, err
	}
	to, err := q.time("to")
	if err != nil {
		return from, to, err
	}
	if !to.After(from) {
		return from, to, bad("from", "from (%s) must be before to (%s)", rfc(from), rfc(to))
	}
	if to.Sub(from) > ephemeris.MaxPhaseRange {
		return from, to, bad("to", "range %s..%s is longer than 366 days", rfc(from), rfc(to))
	}
	return from, to, nil
}

type phaseJSON struct {
	Phase string `json:"phase"`
	Time  string `json:"time"`
}

func (h *handler) phases(q query) (any, bool, error) {
	from, to, err := q.span()
	if err != nil {
		return nil, false, err
	}
	ev, err := ephemeris.Phases(from, to)
	if err != nil {
		return nil, false, err
	}
	out := make([]phaseJSON, 0, len(ev))
	for _, e := range ev {
		out = append(out, phaseJSON{e.Phase.String(), rfc(e.Time.UTC().Round(time.Second))})
	}
	return map[string]any{"phases": out}, false, nil
}

type windowJSON struct {
	Start  string  `json:"start"`
	End    string  `json:"end"`
	MaxAlt float64 `json:"max_alt_deg"`
}

func (h *handler) observability(q query) (any, bool, error) {
	var ra, dec float64
	if q.has("target") {
		tgt, err := ephemeris.Resolve(q.str("target"))
		if err != nil {
			return nil, false, err
		}
		if tgt.Kind == "body" {
			return nil, false, bad("target", "observability takes a fixed position; %q is a moving body", q.str("target"))
		}
		ra, dec = tgt.RA, tgt.Dec
	} else {
		var err error
		if ra, err = q.angle("ra", true); err != nil {
			return nil, false, err
		}
		if dec, err = q.angle("dec", false); err != nil {
			return nil, false, err
		}
	}
	if ra < 0 || ra >= 360 {
		return nil, false, bad("ra", "%g: must be within [0, 360) degrees", ra)
	}
	if dec < -90 || dec > 90 {
		return nil, false, bad("dec", "%g: must be within -90..90 degrees", dec)
	}
	from, to, err := q.span()
	if err != nil {
		return nil, false, err
	}
	site, _, err := q.site(true)
	if err != nil {
		return nil, false, err
	}
	minAlt, err := q.float("min_alt", 0)
	if err != nil {
		return nil, false, err
	}
	sunAvoid, err := q.float("sun_avoid", 0)
	if err != nil {
		return nil, false, err
	}
	moonAvoid, err := q.float("moon_avoid", 0)
	if err != nil {
		return nil, false, err
	}
	ws, err := ephemeris.Observability(ra, dec, from, to, site, &ephemeris.ObservabilityConfig{MinAltDeg: &minAlt, SunAvoidDeg: sunAvoid, MoonAvoidDeg: moonAvoid})
	if err != nil {
		return nil, false, err
	}
	out := make([]windowJSON, 0, len(ws))
	for _, w := range ws {
		out = append(out, windowJSON{rfc(w.Start), rfc(w.End), w.MaxAltDeg})
	}
	return map[string]any{"windows": out}, false, nil
}

type resolveResp struct {
	Name    string   `json:"name"`
	RA      float64  `json:"ra_deg"`
	Dec     float64  `json:"dec_deg"`
	Kind    string   `json:"kind"`
	Time    string   `json:"time,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
}

func (h *handler) resolve(q query) (any, bool, error) {
	name, err := q.required("target")
	if err != nil {
		return nil, false, err
	}
	tgt, err := ephemeris.Resolve(name)
	if err != nil {
		return nil, false, err
	}
	resp := resolveResp{Name: tgt.Name, RA: tgt.RA, Dec: tgt.Dec, Kind: tgt.Kind, Aliases: tgt.Aliases}
	if tgt.Kind != "body" {
		return resp, false, nil
	}
	usedNow := !q.has("time")
	t := h.now().UTC()
	if !usedNow {
		if t, err = q.time("time"); err != nil {
			return nil, false, err
		}
	}
	et, err := ephemeris.FromUTC(t, nil)
	if err != nil {
		return nil, false, err
	}
	p, err := ephemeris.Position(tgt.Body, et)
	if err != nil {
		return nil, false, err
	}
	resp.RA, resp.Dec, resp.Time = p.RAICRS, p.DecICRS, rfc(t)
	return resp, usedNow, nil
}

// atmosphere reads pressure (hPa), temperature (°C) and humidity (0..1).
func (q query) atmosphere() (ephemeris.Atmosphere, error) {
	var a ephemeris.Atmosphere
	var err error
	if a.PressureHPa, err = q.float("pressure", 0); err != nil {
		return a, err
	}
	if q.has("temperature") {
		if a.TemperatureC, err = q.float("temperature", 10); err != nil {
			return a, err
		}
		a.SetTemperature = true
	}
	if a.RelHumidity, err = q.float("humidity", 0); err != nil {
		return a, err
	}
	return a, a.Validate()
}
