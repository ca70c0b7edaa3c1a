package synth

import (
	"errors"
	"math"
	"math/cmplx"
	"strings"
	"testing"
)

func TestVLAAntennasLayout(t *testing.T) {
	ants, err := VLAAntennas(ConfigB, 27, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ants) != 27 {
		t.Fatalf("%d antennas", len(ants))
	}
	perArm := map[byte]int{}
	maxB, minB := 0.0, math.Inf(1)
	for i, a := range ants {
		perArm[a.Name[0]]++
		for _, b := range ants[i+1:] {
			d := math.Hypot(a.East-b.East, a.North-b.North)
			maxB, minB = math.Max(maxB, d), math.Min(minB, d)
		}
	}
	if perArm['N'] != 9 || perArm['E'] != 9 || perArm['W'] != 9 {
		t.Errorf("antennas per arm %v, want 9 each", perArm)
	}
	// VLA B configuration: longest baseline about 11.1 km, shortest about 0.21 km.
	t.Logf("B: longest baseline %.0f m, shortest %.0f m", maxB, minB)
	if maxB < 10000 || maxB > 11500 || minB < 150 || minB > 400 {
		t.Errorf("baselines %.0f..%.0f m, want about 210..11100 m", minB, maxB)
	}
	again, _ := VLAAntennas(ConfigB, 27, 1)
	other, _ := VLAAntennas(ConfigB, 27, 2)
	if again[5] != ants[5] || other[5] == ants[5] {
		t.Errorf("layout not seeded: %+v %+v %+v", ants[5], again[5], other[5])
	}
	if _, err := VLAAntennas("E", 27, 1); !errors.Is(err, ErrVisConfig) || !strings.Contains(err.Error(), `"E"`) {
		t.Errorf("config E: %v", err)
	}
	if _, err := VLAAntennas(ConfigB, 28, 1); !errors.Is(err, ErrVisConfig) || !strings.Contains(err.Error(), "28") {
		t.Errorf("28 antennas: %v", err)
	}
}

func TestUVWGeometry(t *testing.T) {
	// An east-west baseline at hour angle 0 is all u.
	u, v, w := UVW(0, 100, 0, 0, 0.5)
	if math.Abs(u-100) > 1e-9 || math.Abs(v) > 1e-9 || math.Abs(w) > 1e-9 {
		t.Errorf("EW baseline: %v %v %v", u, v, w)
	}
	// A polar baseline towards a source at the pole is all w.
	u, v, w = UVW(0, 0, 50, 1.3, math.Pi/2)
	if math.Abs(u) > 1e-9 || math.Abs(v) > 1e-9 || math.Abs(w-50) > 1e-9 {
		t.Errorf("polar baseline: %v %v %v", u, v, w)
	}
	// The projection is a rotation: length is kept.
	for _, c := range [][5]float64{{10, -20, 30, 0.3, 0.2}, {-5, 7, 1, -2, -0.6}} {
		u, v, w := UVW(c[0], c[1], c[2], c[3], c[4])
		if math.Abs(math.Sqrt(u*u+v*v+w*w)-math.Sqrt(c[0]*c[0]+c[1]*c[1]+c[2]*c[2])) > 1e-9 {
			t.Errorf("length not kept for %v", c)
		}
	}
	// A local east baseline at the zenith (HA 0, dec = latitude) has w = 0.
	x, y, z := Baseline(Antenna{}, Antenna{East: 1000}, VLALatitudeDeg)
	_, _, w = UVW(x, y, z, 0, VLALatitudeDeg*math.Pi/180)
	if math.Abs(w) > 1e-9 {
		t.Errorf("zenith w = %v", w)
	}
}

func TestVisibilitiesModel(t *testing.T) {
	src := []SkyComponent{
		{LArcsec: 20, MArcsec: -10, FluxJy: 2, SpectralIndex: -0.7},
	}
	v, err := NewVisibilities(&VisConfig{Antennas: 6, Channels: 4, NoNoise: true, Sources: src, HourAngleH: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	nch := len(v.FreqHz)
	l, m := 20*visArcsec, -10*visArcsec
	n1 := math.Sqrt(1-l*l-m*m) - 1
	for r := range v.U {
		for ch, f := range v.FreqHz {
			lam := SpeedOfLight / f
			want := 2 * math.Pow(f/3e9, -0.7)
			ph := -2 * math.Pi * (v.U[r]/lam*l + v.V[r]/lam*m + v.W[r]/lam*n1)
			got := v.Data[r*nch+ch]
			if cmplx.Abs(got-cmplx.Rect(want, ph)) > 1e-9 {
				t.Fatalf("row %d ch %d: %v, want %v", r, ch, got, cmplx.Rect(want, ph))
			}
		}
	}
	if v.Truth[0].RA == 0 || math.Abs(v.Truth[0].Dec-(34-10.0/3600)) > 1e-4 {
		t.Errorf("truth position %v %v", v.Truth[0].RA, v.Truth[0].Dec)
	}
	if v.Rows() != 15 || len(v.Data) != 60 {
		t.Errorf("rows %d data %d, want 15 and 60", v.Rows(), len(v.Data))
	}
}

func TestVisibilitiesGaussian(t *testing.T) {
	// A Gaussian at the phase centre is real, equal to the flux at the
	// shortest spacing and tapered by exp(-pi^2 a^2 q^2/(4 ln 2)) along the
	// major axis (PA 90: east-west, i.e. along u).
	g := SkyComponent{FluxJy: 1, MajorArcsec: 10, MinorArcsec: 4, PADeg: 90}
	v, err := NewVisibilities(&VisConfig{Antennas: 8, Channels: 1, FreqStartHz: 3e9, FreqStopHz: 3e9, NoNoise: true, Sources: []SkyComponent{g}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for r := range v.U {
		u, vv := v.U[r]*3e9/SpeedOfLight, v.V[r]*3e9/SpeedOfLight
		a, b := 10*visArcsec, 4*visArcsec
		want := math.Exp(-math.Pi * math.Pi / (4 * math.Ln2) * (a*a*u*u + b*b*vv*vv))
		got := v.Data[r]
		if math.Abs(real(got)-want) > 1e-9 || math.Abs(imag(got)) > 1e-9 {
			t.Fatalf("row %d: %v, want %v", r, got, want)
		}
	}
}

func TestVisibilitiesNoiseAndSeed(t *testing.T) {
	cfg := &VisConfig{DurationH: 0.2, IntegrationS: 60, Channels: 8, NoiseSigmaJy: 0.3}
	a, err := NewVisibilities(cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	clean := *cfg
	clean.NoNoise = true
	clean.Sources = a.Truth
	c, err := NewVisibilities(&clean, 42)
	if err != nil {
		t.Fatal(err)
	}
	s2 := 0.0
	for i := range a.Data {
		d := a.Data[i] - c.Data[i]
		s2 += real(d)*real(d) + imag(d)*imag(d)
	}
	sigma := math.Sqrt(s2 / float64(2*len(a.Data)))
	t.Logf("%d visibilities, measured sigma %.4f (want 0.3), %d truth sources", len(a.Data), sigma, len(a.Truth))
	if math.Abs(sigma/0.3-1) > 0.02 {
		t.Errorf("noise sigma %.4f, want 0.3", sigma)
	}
	if a.Weight[0] != 1/(0.3*0.3) || math.Abs(a.ImageNoiseJy()-0.3/math.Sqrt(float64(len(a.Data)))) > 1e-15 {
		t.Errorf("weight %v image noise %v", a.Weight[0], a.ImageNoiseJy())
	}
	if len(a.Truth) != 5 {
		t.Errorf("%d truth sources, want default 5", len(a.Truth))
	}
	for i, s := range a.Truth {
		if math.Abs(s.LArcsec) > 60 || math.Abs(s.MArcsec) > 60 || s.FluxJy < 0.005 || s.FluxJy > 0.1 {
			t.Errorf("truth %d out of range: %+v", i, s)
		}
	}
	b, _ := NewVisibilities(cfg, 42)
	d, _ := NewVisibilities(cfg, 43)
	if b.Data[100] != a.Data[100] || d.Data[100] == a.Data[100] {
		t.Errorf("not seeded: %v %v %v", a.Data[100], b.Data[100], d.Data[100])
	}
	// Track length: 0.2 h at 60 s = 13 integrations of 351 baselines.
	if a.Rows() != 13*351 {
		t.Errorf("rows %d, want %d", a.Rows(), 13*351)
	}
	if fb := a.FractionalBandwidth(); math.Abs(fb-2.0/3) > 1e-12 {
		t.Errorf("fractional bandwidth %v", fb)
	}
}

func TestVisConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg   VisConfig
		field string
	}{
		{VisConfig{DecDeg: -60}, "DecDeg"},
		{VisConfig{DurationH: 13}, "DurationH"},
		{VisConfig{Channels: -1}, "Channels"},
		{VisConfig{FreqStartHz: 4e9, FreqStopHz: 2e9}, "FreqStopHz"},
		{VisConfig{NoiseSigmaJy: math.NaN()}, "NoiseSigmaJy"},
		{VisConfig{NoiseSigmaJy: -1}, "NoiseSigmaJy"},
		{VisConfig{Antennas: 40}, "Antennas"},
		{VisConfig{Sources: []SkyComponent{{FluxJy: math.Inf(1)}}}, "Sources[0].FluxJy"},
		{VisConfig{Sources: []SkyComponent{{MajorArcsec: 2, MinorArcsec: 3}}}, "Sources[0].MinorArcsec"},
		{VisConfig{NumSources: 500, FieldRadiusArcsec: 5, MinSeparationArcsec: 4}, "NumSources"},
		{VisConfig{DurationH: 12, IntegrationS: 0.01, Channels: 4096}, "million"},
	} {
		_, err := NewVisibilities(&c.cfg, 1)
		if !errors.Is(err, ErrVisConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: err = %v, want ErrVisConfig naming %s", c.cfg, err, c.field)
		}
	}
}
