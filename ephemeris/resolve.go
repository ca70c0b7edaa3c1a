package ephemeris

import (
	"regexp"
	"strconv"
	"strings"
)

// Target is a resolved sky target.
type Target struct {
	// Name is the canonical name ("3C 286", "moon", ...).
	Name string
	// Kind is "body" (solar-system body, position depends on time),
	// "calibrator" (built-in VLA calibrator) or "coordinates" (parsed from
	// the query).
	Kind string
	// Body is set when Kind is "body".
	Body Body
	// RA, Dec are ICRS/J2000 degrees for fixed targets.
	RA, Dec float64
	// Aliases lists the other names the target answers to.
	Aliases []string
}

// Calibrator is one entry of the built-in VLA calibrator catalogue.
type Calibrator struct {
	Name    string
	J2000   string // IAU J2000 name used by the VLA calibrator manual
	RA, Dec float64
	Aliases []string
	Role    string
}

func hms(h, m, s float64) float64 { return (h + m/60 + s/3600) * 15 }
func dms(sign, d, m, s float64) float64 {
	return sign * (d + m/60 + s/3600)
}

// Calibrators is the built-in list of standard VLA flux-density and
// polarisation calibrators with their J2000 positions from the NRAO VLA
// Calibrator Manual.
var Calibrators = []Calibrator{
	{"3C 286", "J1331+3030", hms(13, 31, 8.2881), dms(1, 30, 30, 32.959), []string{"3C286", "1328+307", "1331+305"}, "flux density and polarisation angle"},
	{"3C 48", "J0137+3309", hms(1, 37, 41.2994), dms(1, 33, 9, 35.133), []string{"3C48", "0134+329", "0137+331"}, "flux density"},
	{"3C 138", "J0521+1638", hms(5, 21, 9.8860), dms(1, 16, 38, 22.052), []string{"3C138", "0518+165", "0521+166"}, "flux density and polarisation angle"},
	{"3C 147", "J0542+4951", hms(5, 42, 36.1379), dms(1, 49, 51, 7.234), []string{"3C147", "0538+498", "0542+498"}, "flux density"},
	{"3C 84", "J0319+4130", hms(3, 19, 48.1601), dms(1, 41, 30, 42.104), []string{"3C84", "0316+413", "NGC 1275"}, "polarisation leakage / phase"},
	{"3C 273", "J1229+0203", hms(12, 29, 6.6997), dms(1, 2, 3, 8.598), []string{"3C273", "1226+023"}, "phase"},
	{"3C 279", "J1256-0547", hms(12, 56, 11.1665), dms(-1, 5, 47, 21.525), []string{"3C279", "1253-055"}, "phase"},
	{"3C 295", "J1411+5212", hms(14, 11, 20.519), dms(1, 52, 12, 9.97), []string{"3C295", "1409+524"}, "flux density (low frequency)"},
	{"3C 196", "J0813+4813", hms(8, 13, 36.033), dms(1, 48, 13, 2.56), []string{"3C196", "0809+483"}, "flux density (low frequency)"},
}

var normRE = regexp.MustCompile(`[\s_]+`)

func normName(s string) string {
	return strings.ToUpper(normRE.ReplaceAllString(strings.TrimSpace(s), ""))
}

// Resolve finds a target by name: a body ("sun", "Mars"), a built-in VLA
// calibrator by any of its names ("3C 286", "3c286", "J1331+3030",
// "1331+305"), or coordinates "HH:MM:SS.s ±DD:MM:SS" / "RAdeg DECdeg".
// The error wraps ErrUnknownBody and names the field "target".
func Resolve(name string) (Target, error) {
	if strings.TrimSpace(name) == "" {
		return Target{}, &FieldError{Field: "target", Value: name, Reason: "empty target name", Err: ErrInvalidArgument}
	}
	if b, err := ParseBody(name); err == nil {
		return Target{Name: b.String(), Kind: "body", Body: b}, nil
	}
	n := normName(name)
	for _, c := range Calibrators {
		names := append([]string{c.Name, c.J2000}, c.Aliases...)
		for _, a := range names {
			if normName(a) == n {
				return Target{Name: c.Name, Kind: "calibrator", RA: c.RA, Dec: c.Dec, Aliases: names[1:]}, nil
			}
		}
	}
	if ra, dec, ok := parseCoords(name); ok {
		return Target{Name: strings.TrimSpace(name), Kind: "coordinates", RA: ra, Dec: dec}, nil
	}
	return Target{}, &FieldError{Field: "target", Value: name, Reason: "not a known body, VLA calibrator or coordinate pair", Err: ErrUnknownBody}
}

var sexRE = regexp.MustCompile(`^(\d{1,2})[:h ](\d{1,2})[:m ](\d{1,2}(?:\.\d*)?)s?[\s,]+([+-]?)(\d{1,2})[:d° ](\d{1,2})[:m' ](\d{1,2}(?:\.\d*)?)"?$`)

func parseCoords(s string) (ra, dec float64, ok bool) {
	s = strings.TrimSpace(s)
	if m := sexRE.FindStringSubmatch(s); m != nil {
		f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		sign := 1.0
		if m[4] == "-" {
			sign = -1
		}
		ra, dec = hms(f(1), f(2), f(3)), dms(sign, f(5), f(6), f(7))
		return ra, dec, ra >= 0 && ra < 360 && dec >= -90 && dec <= 90
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	if len(parts) == 2 {
		a, err1 := strconv.ParseFloat(parts[0], 64)
		d, err2 := strconv.ParseFloat(parts[1], 64)
		if err1 == nil && err2 == nil && a >= 0 && a < 360 && d >= -90 && d <= 90 {
			return a, d, true
		}
	}
	return 0, 0, false
}
