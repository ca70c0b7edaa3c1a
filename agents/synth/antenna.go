package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// VLA site constants.
const (
	// VLALatitudeDeg is the geodetic latitude of the VLA array centre.
	VLALatitudeDeg = 34.078749
	// VLALongitudeDeg is the east longitude of the VLA array centre.
	VLALongitudeDeg = -107.618283
	// SpeedOfLight is c in m/s.
	SpeedOfLight = 299792458.0
)

// ArrayConfig names a VLA configuration: "A", "B", "C" or "D".
type ArrayConfig string

// VLA configurations.
const (
	ConfigA ArrayConfig = "A"
	ConfigB ArrayConfig = "B"
	ConfigC ArrayConfig = "C"
	ConfigD ArrayConfig = "D"
)

// ArmLengthM returns the length of one arm of configuration c in metres
// (A 21 km, B 6.4 km, C 1.95 km, D 0.6 km: maximum baselines of about 36,
// 11, 3.4 and 1 km) and an error wrapping ErrVisConfig for an unknown name.
func (c ArrayConfig) ArmLengthM() (float64, error) {
	switch c {
	case ConfigA:
		return 21000, nil
	case ConfigB, "":
		return 6400, nil
	case ConfigC:
		return 1950, nil
	case ConfigD:
		return 600, nil
	}
	return 0, fmt.Errorf("%w: Array = %q: must be one of A, B, C, D", ErrVisConfig, string(c))
}

// Antenna is one antenna in local horizon coordinates (metres east, north
// and up of the array centre).
type Antenna struct {
	Name  string  `json:"name"`
	East  float64 `json:"east_m"`
	North float64 `json:"north_m"`
	Up    float64 `json:"up_m"`
}

// antArmAzimuthDeg are the azimuths of the VLA's north, east and west arms.
var antArmAzimuthDeg = [3]float64{355, 115, 236}

// antArmNames label the three arms as the VLA pads are labelled.
var antArmNames = [3]string{"N", "E", "W"}

// VLAAntennas returns a VLA-like layout of n antennas (1–27) in
// configuration cfg: three arms in a Y, nine pads per arm at radii
// L·(i/9)^1.716 (the VLA's power-law pad spacing), with seeded jitter of
// 0.5 % in radius and ±2 m in height so that different seeds give slightly
// different arrays. Antennas are taken round-robin from the arms, innermost
// pads first. The same cfg, n and seed always give the same layout.
func VLAAntennas(cfg ArrayConfig, n int, seed int64) ([]Antenna, error) {
	arm, err := cfg.ArmLengthM()
	if err != nil {
		return nil, err
	}
	if n < 2 || n > 27 {
		return nil, fmt.Errorf("%w: Antennas = %d: must be between 2 and 27", ErrVisConfig, n)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x7a17a))
	out := make([]Antenna, 0, n)
	for pad := 1; pad <= 9 && len(out) < n; pad++ {
		for a := 0; a < 3 && len(out) < n; a++ {
			r := arm * math.Pow(float64(pad)/9, 1.716) * (1 + 0.005*(2*rng.Float64()-1))
			az := (antArmAzimuthDeg[a] + 0.2*(2*rng.Float64()-1)) * math.Pi / 180
			out = append(out, Antenna{
				Name:  fmt.Sprintf("%s%02d", antArmNames[a], pad),
				East:  r * math.Sin(az),
				North: r * math.Cos(az),
				Up:    2 * (2*rng.Float64() - 1),
			})
		}
	}
	return out, nil
}

// Baseline returns the equatorial baseline (X towards hour angle 0 on the
// equator, Y towards hour angle -6h, Z towards the north celestial pole) in
// metres from antenna a to b, for an array at latitude latDeg.
func Baseline(a, b Antenna, latDeg float64) (x, y, z float64) {
	de, dn, du := b.East-a.East, b.North-a.North, b.Up-a.Up
	sl, cl := math.Sincos(latDeg * math.Pi / 180)
	return -sl*dn + cl*du, de, cl*dn + sl*du
}

// UVW projects an equatorial baseline (metres) onto the (u, v, w) frame of
// a phase centre at hour angle haRad and declination decRad. u points east,
// v north and w towards the source.
func UVW(x, y, z, haRad, decRad float64) (u, v, w float64) {
	sh, ch := math.Sincos(haRad)
	sd, cd := math.Sincos(decRad)
	u = sh*x + ch*y
	v = -sd*ch*x + sd*sh*y + cd*z
	w = cd*ch*x - cd*sh*y + sd*z
	return u, v, w
}
