package synth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrVisConfig reports an impossible visibility configuration. Errors
// returned by [NewVisibilities] and [VLAAntennas] wrap it.
var ErrVisConfig = errors.New("synth: invalid visibility configuration")

const visArcsec = math.Pi / (180 * 3600)

// SkyComponent is one truth source of a visibility sky model: a point
// (MajorArcsec == 0) or an elliptical Gaussian, at offset (LArcsec,
// MArcsec) from the phase centre (l towards east, m towards north, direction
// cosines expressed in arcseconds).
type SkyComponent struct {
	ID int `json:"id"`
	// LArcsec and MArcsec are the direction-cosine offsets in arcseconds.
	LArcsec float64 `json:"l_arcsec"`
	MArcsec float64 `json:"m_arcsec"`
	// RA and Dec are the source position in degrees (SIN projection about
	// the phase centre).
	RA  float64 `json:"ra_deg"`
	Dec float64 `json:"dec_deg"`
	// FluxJy is the integrated flux density at RefFreqHz.
	FluxJy float64 `json:"flux_jy"`
	// SpectralIndex alpha: S(nu) = FluxJy (nu/RefFreqHz)^alpha.
	SpectralIndex float64 `json:"spectral_index"`
	// MajorArcsec, MinorArcsec (FWHM) and PADeg (east of north) describe a
	// Gaussian; zero major axis is a point source.
	MajorArcsec float64 `json:"major_arcsec"`
	MinorArcsec float64 `json:"minor_arcsec"`
	PADeg       float64 `json:"pa_deg"`
}

// Extended reports whether c is a Gaussian rather than a point.
func (c SkyComponent) Extended() bool { return c.MajorArcsec > 0 }

// VisConfig configures [NewVisibilities]. The zero value is a VLASS-like
// snapshot: B configuration, 27 antennas, one 5 s integration at transit of
// a field at declination 34°, 16 channels over 2–4 GHz, thermal noise 5 mJy
// per visibility component, five random point sources.
type VisConfig struct {
	// Array is the VLA configuration; "" means B.
	Array ArrayConfig
	// Antennas is the number of antennas, 2–27; 0 means 27.
	Antennas int
	// RADeg and DecDeg are the phase centre; zero RADeg means 180 and zero
	// DecDeg means 34 (near the zenith at transit). Dec must be > -40°
	// (the VLASS sky).
	RADeg, DecDeg float64
	// HourAngleH is the hour angle of the middle of the observation; zero
	// means transit.
	HourAngleH float64
	// DurationH is the track length in hours; 0 means a snapshot of one
	// integration. At most 12.
	DurationH float64
	// IntegrationS is the integration time; 0 means 5 s.
	IntegrationS float64
	// FreqStartHz and FreqStopHz bound the band; zero means 2 and 4 GHz.
	FreqStartHz, FreqStopHz float64
	// Channels is the number of channels (centred in equal slices of the
	// band); 0 means 16.
	Channels int
	// RefFreqHz is the frequency at which fluxes are given; 0 means 3 GHz.
	RefFreqHz float64
	// NoiseSigmaJy is the thermal noise per real and imaginary component;
	// 0 means 5 mJy. NoNoise disables noise.
	NoiseSigmaJy float64
	NoNoise      bool
	// Sources is the sky model; nil means NumSources random sources.
	Sources []SkyComponent
	// NumSources random sources are drawn when Sources is nil; 0 means 5.
	// Use a non-nil empty Sources for a noise-only field.
	NumSources int
	// FluxMinJy and FluxMaxJy bound the random fluxes (log-uniform); zero
	// means 5 mJy and 100 mJy.
	FluxMinJy, FluxMaxJy float64
	// FieldRadiusArcsec bounds random positions (|l|, |m| below it); 0
	// means 60.
	FieldRadiusArcsec float64
	// MinSeparationArcsec keeps random sources apart; 0 means 10.
	MinSeparationArcsec float64
	// ExtendedFraction of random sources are Gaussians with FWHM 4–12
	// arcsec; 0 means none.
	ExtendedFraction float64
}

func (c *VisConfig) withDefaults() (VisConfig, error) {
	var o VisConfig
	if c != nil {
		o = *c
	}
	bad := func(field string, v any, msg string) (VisConfig, error) {
		return VisConfig{}, fmt.Errorf("%w: %s = %v: %s", ErrVisConfig, field, v, msg)
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	for name, v := range map[string]float64{"RADeg": o.RADeg, "DecDeg": o.DecDeg, "HourAngleH": o.HourAngleH,
		"DurationH": o.DurationH, "IntegrationS": o.IntegrationS, "FreqStartHz": o.FreqStartHz,
		"FreqStopHz": o.FreqStopHz, "RefFreqHz": o.RefFreqHz, "NoiseSigmaJy": o.NoiseSigmaJy,
		"FluxMinJy": o.FluxMinJy, "FluxMaxJy": o.FluxMaxJy, "FieldRadiusArcsec": o.FieldRadiusArcsec,
		"MinSeparationArcsec": o.MinSeparationArcsec, "ExtendedFraction": o.ExtendedFraction} {
		if !finite(v) {
			return bad(name, v, "must be finite")
		}
	}
	if o.Array == "" {
		o.Array = ConfigB
	}
	if _, err := o.Array.ArmLengthM(); err != nil {
		return VisConfig{}, err
	}
	if o.Antennas == 0 {
		o.Antennas = 27
	}
	if o.Antennas < 2 || o.Antennas > 27 {
		return bad("Antennas", o.Antennas, "must be between 2 and 27")
	}
	if o.RADeg == 0 {
		o.RADeg = 180
	}
	if o.RADeg < 0 || o.RADeg >= 360 {
		return bad("RADeg", o.RADeg, "must be in [0, 360)")
	}
	if o.DecDeg == 0 {
		o.DecDeg = 34
	}
	if o.DecDeg <= -40 || o.DecDeg > 90 {
		return bad("DecDeg", o.DecDeg, "must be in (-40, 90]")
	}
	if math.Abs(o.HourAngleH) > 12 {
		return bad("HourAngleH", o.HourAngleH, "must be within ±12")
	}
	if o.DurationH < 0 || o.DurationH > 12 {
		return bad("DurationH", o.DurationH, "must be in [0, 12]")
	}
	if o.IntegrationS == 0 {
		o.IntegrationS = 5
	}
	if o.IntegrationS < 0 {
		return bad("IntegrationS", o.IntegrationS, "must be positive")
	}
	if o.FreqStartHz == 0 {
		o.FreqStartHz = 2e9
	}
	if o.FreqStopHz == 0 {
		o.FreqStopHz = 4e9
	}
	if o.FreqStartHz <= 0 || o.FreqStopHz < o.FreqStartHz {
		return bad("FreqStopHz", o.FreqStopHz, fmt.Sprintf("must be >= FreqStartHz (%g) > 0", o.FreqStartHz))
	}
	if o.Channels == 0 {
		o.Channels = 16
	}
	if o.Channels < 1 || o.Channels > 4096 {
		return bad("Channels", o.Channels, "must be between 1 and 4096")
	}
	if o.RefFreqHz == 0 {
		o.RefFreqHz = 3e9
	}
	if o.RefFreqHz < 0 {
		return bad("RefFreqHz", o.RefFreqHz, "must be positive")
	}
	if o.NoiseSigmaJy == 0 {
		o.NoiseSigmaJy = 0.005
	}
	if o.NoiseSigmaJy < 0 {
		return bad("NoiseSigmaJy", o.NoiseSigmaJy, "must be positive")
	}
	if o.NumSources == 0 {
		o.NumSources = 5
	}
	if o.NumSources < 0 || o.NumSources > 10000 {
		return bad("NumSources", o.NumSources, "must be between 0 and 10000")
	}
	if o.FluxMinJy == 0 {
		o.FluxMinJy = 0.005
	}
	if o.FluxMaxJy == 0 {
		o.FluxMaxJy = 0.1
	}
	if o.FluxMinJy <= 0 || o.FluxMaxJy < o.FluxMinJy {
		return bad("FluxMaxJy", o.FluxMaxJy, fmt.Sprintf("must be >= FluxMinJy (%g) > 0", o.FluxMinJy))
	}
	if o.FieldRadiusArcsec == 0 {
		o.FieldRadiusArcsec = 60
	}
	if o.FieldRadiusArcsec < 0 {
		return bad("FieldRadiusArcsec", o.FieldRadiusArcsec, "must be positive")
	}
	if o.MinSeparationArcsec == 0 {
		o.MinSeparationArcsec = 10
	}
	if o.MinSeparationArcsec < 0 {
		return bad("MinSeparationArcsec", o.MinSeparationArcsec, "must be positive")
	}
	if o.ExtendedFraction < 0 || o.ExtendedFraction > 1 {
		return bad("ExtendedFraction", o.ExtendedFraction, "must be in [0, 1]")
	}
	for i, s := range o.Sources {
		for name, v := range map[string]float64{"LArcsec": s.LArcsec, "MArcsec": s.MArcsec, "FluxJy": s.FluxJy,
			"SpectralIndex": s.SpectralIndex, "MajorArcsec": s.MajorArcsec, "MinorArcsec": s.MinorArcsec, "PADeg": s.PADeg} {
			if !finite(v) {
				return bad(fmt.Sprintf("Sources[%d].%s", i, name), v, "must be finite")
			}
		}
		if s.MajorArcsec < 0 || s.MinorArcsec < 0 || s.MinorArcsec > s.MajorArcsec {
			return bad(fmt.Sprintf("Sources[%d].MinorArcsec", i), s.MinorArcsec, fmt.Sprintf("must be in [0, MajorArcsec=%g]", s.MajorArcsec))
		}
		l, m := s.LArcsec*visArcsec, s.MArcsec*visArcsec
		if l*l+m*m >= 1 {
			return bad(fmt.Sprintf("Sources[%d].LArcsec", i), s.LArcsec, "offset is beyond the celestial sphere")
		}
	}
	return o, nil
}

// Visibilities is a synthetic measurement set: one row per baseline and
// integration, Channels visibilities per row, with the truth it was made
// from.
type Visibilities struct {
	// Config is the configuration with defaults applied.
	Config VisConfig `json:"config"`
	// Antennas is the array layout.
	Antennas []Antenna `json:"antennas"`
	// Ant1, Ant2 and TimeS (seconds from the start) label each row.
	Ant1  []int     `json:"-"`
	Ant2  []int     `json:"-"`
	TimeS []float64 `json:"-"`
	// U, V and W are the baseline coordinates of each row in metres.
	U []float64 `json:"-"`
	V []float64 `json:"-"`
	W []float64 `json:"-"`
	// FreqHz are the channel centre frequencies.
	FreqHz []float64 `json:"freq_hz"`
	// Data holds the visibilities in Jy, Data[row*len(FreqHz)+channel].
	Data []complex128 `json:"-"`
	// Weight is 1/sigma^2 for every visibility (same indexing as Data).
	Weight []float64 `json:"-"`
	// SigmaJy is the noise per real and imaginary component (0 if NoNoise).
	SigmaJy float64 `json:"sigma_jy"`
	// Truth is the sky model the data were computed from.
	Truth []SkyComponent `json:"truth"`
}

// Rows returns the number of baseline-integration rows.
func (v *Visibilities) Rows() int { return len(v.U) }

// FractionalBandwidth is (max-min)/centre frequency of the band covered by
// the channels (including the channel widths).
func (v *Visibilities) FractionalBandwidth() float64 {
	c := v.Config
	return (c.FreqStopHz - c.FreqStartHz) / (0.5 * (c.FreqStopHz + c.FreqStartHz))
}

// ImageNoiseJy is the expected rms of a naturally weighted image of v:
// sigma / sqrt(number of visibilities).
func (v *Visibilities) ImageNoiseJy() float64 {
	return v.SigmaJy / math.Sqrt(float64(len(v.Data)))
}

// NewVisibilities synthesises a dataset from cfg (nil means the defaults)
// and seed: array layout, uvw coverage, model visibilities of the sky
// (exact direction-dependent phases including the w term, Gaussian
// components by their analytic Fourier transform, spectral index per
// source) plus complex Gaussian noise. Equal cfg and seed give identical
// data.
func NewVisibilities(cfg *VisConfig, seed int64) (*Visibilities, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ants, err := VLAAntennas(c.Array, c.Antennas, seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5715))
	truth := c.Sources
	if truth == nil {
		truth, err = visRandomSky(c, rng)
		if err != nil {
			return nil, err
		}
	} else {
		truth = append([]SkyComponent(nil), truth...)
	}
	wcs := WCS{RefRA: c.RADeg, RefDec: c.DecDeg, CellDeg: 1.0 / 3600}
	for i := range truth {
		truth[i].ID = i
		truth[i].RA, truth[i].Dec = wcs.PixToWorld(-truth[i].LArcsec, truth[i].MArcsec)
	}
	c.Sources = truth

	nt := 1
	if c.DurationH > 0 {
		nt = int(math.Floor(c.DurationH*3600/c.IntegrationS)) + 1
	}
	nb := len(ants) * (len(ants) - 1) / 2
	nrow := nt * nb
	if nrow*c.Channels > 50_000_000 {
		return nil, fmt.Errorf("%w: %d visibilities (DurationH=%g, IntegrationS=%g, Channels=%d): more than 50 million", ErrVisConfig, nrow*c.Channels, c.DurationH, c.IntegrationS, c.Channels)
	}
	out := &Visibilities{
		Config:   c,
		Antennas: ants,
		Ant1:     make([]int, 0, nrow),
		Ant2:     make([]int, 0, nrow),
		TimeS:    make([]float64, 0, nrow),
		U:        make([]float64, 0, nrow),
		V:        make([]float64, 0, nrow),
		W:        make([]float64, 0, nrow),
		FreqHz:   make([]float64, c.Channels),
		Data:     make([]complex128, nrow*c.Channels),
		Weight:   make([]float64, nrow*c.Channels),
		Truth:    truth,
	}
	dnu := (c.FreqStopHz - c.FreqStartHz) / float64(c.Channels)
	for ch := range out.FreqHz {
		out.FreqHz[ch] = c.FreqStartHz + (float64(ch)+0.5)*dnu
	}
	dec := c.DecDeg * math.Pi / 180
	for t := 0; t < nt; t++ {
		ts := float64(t) * c.IntegrationS
		haH := c.HourAngleH + (ts/3600 - c.DurationH/2)
		// Sidereal rate: 1 hour of time is 1.0027379 hours of hour angle.
		ha := haH * 1.0027379 * 15 * math.Pi / 180
		for a := 0; a < len(ants); a++ {
			for b := a + 1; b < len(ants); b++ {
				x, y, z := Baseline(ants[a], ants[b], VLALatitudeDeg)
				u, v, w := UVW(x, y, z, ha, dec)
				out.Ant1 = append(out.Ant1, a)
				out.Ant2 = append(out.Ant2, b)
				out.TimeS = append(out.TimeS, ts)
				out.U = append(out.U, u)
				out.V = append(out.V, v)
				out.W = append(out.W, w)
			}
		}
	}
	visPredict(out.Data, out.U, out.V, out.W, out.FreqHz, truth, c.RefFreqHz)
	sigma := c.NoiseSigmaJy
	if c.NoNoise {
		sigma = 0
	}
	out.SigmaJy = sigma
	wt := 1.0
	if sigma > 0 {
		wt = 1 / (sigma * sigma)
	}
	nrng := rand.New(rand.NewPCG(uint64(seed), 0x9015e))
	for i := range out.Data {
		if sigma > 0 {
			out.Data[i] += complex(sigma*nrng.NormFloat64(), sigma*nrng.NormFloat64())
		}
		out.Weight[i] = wt
	}
	return out, nil
}

// visPredict writes the model visibilities of src into data
// (row-major, len(freqs) per row): V = sum S(nu) G(u,v) exp(-2 pi i (u l +
// v m + w (n - 1))), with u, v, w in wavelengths.
func visPredict(data []complex128, u, v, w, freqs []float64, src []SkyComponent, refHz float64) {
	nch := len(freqs)
	type comp struct {
		l, m, n1       float64
		flux, alpha    float64
		ext            bool
		ca, sa, a2, b2 float64
	}
	cs := make([]comp, len(src))
	for i, s := range src {
		l, m := s.LArcsec*visArcsec, s.MArcsec*visArcsec
		k := comp{l: l, m: m, n1: math.Sqrt(1-l*l-m*m) - 1, flux: s.FluxJy, alpha: s.SpectralIndex, ext: s.Extended()}
		if k.ext {
			// FT of a Gaussian with FWHM a: exp(-pi^2 a^2 q^2 / (4 ln 2)).
			k.sa, k.ca = math.Sincos(s.PADeg * math.Pi / 180)
			f := math.Pi * math.Pi / (4 * math.Ln2)
			k.a2 = f * math.Pow(s.MajorArcsec*visArcsec, 2)
			k.b2 = f * math.Pow(s.MinorArcsec*visArcsec, 2)
		}
		cs[i] = k
	}
	for r := range u {
		for ch, nu := range freqs {
			lam := SpeedOfLight / nu
			uu, vv, ww := u[r]/lam, v[r]/lam, w[r]/lam
			var acc complex128
			for _, k := range cs {
				s := k.flux
				if k.alpha != 0 {
					s *= math.Pow(nu/refHz, k.alpha)
				}
				if k.ext {
					// Major axis along PA east of north: its unit vector is
					// (sin PA, cos PA) in (l, m); rotate (u, v) into the axes.
					qmaj := uu*k.sa + vv*k.ca
					qmin := uu*k.ca - vv*k.sa
					s *= math.Exp(-(k.a2*qmaj*qmaj + k.b2*qmin*qmin))
				}
				sn, cn := math.Sincos(-2 * math.Pi * (uu*k.l + vv*k.m + ww*k.n1))
				acc += complex(s*cn, s*sn)
			}
			data[r*nch+ch] = acc
		}
	}
}

func visRandomSky(c VisConfig, rng *rand.Rand) ([]SkyComponent, error) {
	out := make([]SkyComponent, 0, c.NumSources)
	for tries := 0; len(out) < c.NumSources; tries++ {
		if tries > 1000*c.NumSources {
			return nil, fmt.Errorf("%w: NumSources = %d: cannot place them %g arcsec apart within %g arcsec", ErrVisConfig, c.NumSources, c.MinSeparationArcsec, c.FieldRadiusArcsec)
		}
		l := (2*rng.Float64() - 1) * c.FieldRadiusArcsec
		m := (2*rng.Float64() - 1) * c.FieldRadiusArcsec
		ok := true
		for _, s := range out {
			if math.Hypot(s.LArcsec-l, s.MArcsec-m) < c.MinSeparationArcsec {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := c.FluxMinJy * math.Exp(rng.Float64()*math.Log(c.FluxMaxJy/c.FluxMinJy))
		s := SkyComponent{LArcsec: l, MArcsec: m, FluxJy: f}
		if c.ExtendedFraction > 0 && rng.Float64() < c.ExtendedFraction {
			s.MajorArcsec = 4 + 8*rng.Float64()
			s.MinorArcsec = s.MajorArcsec * (0.4 + 0.6*rng.Float64())
			s.PADeg = 180 * rng.Float64()
		}
		out = append(out, s)
	}
	return out, nil
}
