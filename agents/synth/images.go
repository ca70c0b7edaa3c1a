package synth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// ErrImageConfig reports an impossible image configuration (a size, beam,
// noise level or source count that cannot be synthesised). Errors returned
// by [NewImage] and [NewEpochPair] wrap it.
var ErrImageConfig = errors.New("synth: invalid image configuration")

// WCS is a simple SIN (orthographic) projection, the projection of VLASS
// images: the reference pixel (RefX, RefY), zero-based, sits at (RefRA,
// RefDec); pixels are square with side CellDeg; RA increases to the left
// (CDELT1 = -CellDeg) and Dec upwards (CDELT2 = +CellDeg).
type WCS struct {
	// RefRA and RefDec are the reference coordinates in degrees.
	RefRA, RefDec float64
	// RefX and RefY are the zero-based reference pixel.
	RefX, RefY float64
	// CellDeg is the pixel side in degrees.
	CellDeg float64
}

// PixToWorld converts zero-based pixel coordinates to RA and Dec in degrees
// (RA in [0, 360)). Points off the projection's sphere return NaN.
func (w WCS) PixToWorld(x, y float64) (ra, dec float64) {
	d2r := math.Pi / 180
	l := -(x - w.RefX) * w.CellDeg * d2r
	m := (y - w.RefY) * w.CellDeg * d2r
	r2 := l*l + m*m
	if r2 > 1 {
		return math.NaN(), math.NaN()
	}
	n := math.Sqrt(1 - r2)
	d0 := w.RefDec * d2r
	sd, cd := math.Sincos(d0)
	dec = math.Asin(m*cd + n*sd)
	ra = w.RefRA*d2r + math.Atan2(l, n*cd-m*sd)
	ra = math.Mod(ra/d2r, 360)
	if ra < 0 {
		ra += 360
	}
	return ra, dec / d2r
}

// WorldToPix converts RA and Dec in degrees to zero-based pixel coordinates.
// Points on the far hemisphere return NaN.
func (w WCS) WorldToPix(ra, dec float64) (x, y float64) {
	d2r := math.Pi / 180
	d0 := w.RefDec * d2r
	sd0, cd0 := math.Sincos(d0)
	sd, cd := math.Sincos(dec * d2r)
	sa, ca := math.Sincos((ra - w.RefRA) * d2r)
	if sd*sd0+cd*cd0*ca < 0 {
		return math.NaN(), math.NaN()
	}
	l := cd * sa
	m := sd*cd0 - cd*sd0*ca
	return w.RefX - l/d2r/w.CellDeg, w.RefY + m/d2r/w.CellDeg
}

// RestoringBeam is an elliptical Gaussian restoring beam: FWHM of the major and minor
// axes in arcseconds and position angle in degrees east of north.
type RestoringBeam struct {
	MajArcsec float64 `json:"bmaj_arcsec"`
	MinArcsec float64 `json:"bmin_arcsec"`
	PADeg     float64 `json:"bpa_deg"`
}

// Image is a 2-D image in Jy/beam: Pix[y*Width+x] is the pixel at column x
// and row y (row 0 at the bottom, south; column 0 at the east edge).
type Image struct {
	Width, Height int
	Pix           []float64
	WCS           WCS
	Beam          RestoringBeam
	// FreqHz is the reference frequency.
	FreqHz float64
}

// At returns the pixel at (x, y).
func (im *Image) At(x, y int) float64 { return im.Pix[y*im.Width+x] }

// TruthKind classifies a truth entry.
type TruthKind string

// Truth kinds.
const (
	// KindSteady sources have the same flux in both epochs.
	KindSteady TruthKind = "steady"
	// KindVariable sources change flux by a known factor between epochs.
	KindVariable TruthKind = "variable"
	// KindTransient sources exist only in the second epoch.
	KindTransient TruthKind = "transient"
	// KindDisappeared sources exist only in the first epoch.
	KindDisappeared TruthKind = "disappeared"
	// KindGlitch entries are single-pixel artefacts in the second epoch (a
	// correlator or imaging glitch, not sky emission).
	KindGlitch TruthKind = "glitch"
)

// TruthSource is one truth entry: a sky source (point or elliptical Gaussian)
// or an injected artefact.
type TruthSource struct {
	ID   int       `json:"id"`
	Kind TruthKind `json:"kind"`
	// X and Y are the zero-based pixel position.
	X float64 `json:"x"`
	Y float64 `json:"y"`
	// RA and Dec are in degrees.
	RA  float64 `json:"ra_deg"`
	Dec float64 `json:"dec_deg"`
	// Flux1 and Flux2 are integrated flux densities (Jy) in epochs 1 and 2.
	Flux1 float64 `json:"flux1_jy"`
	Flux2 float64 `json:"flux2_jy"`
	// Peak1 and Peak2 are the peak brightnesses (Jy/beam) after convolution
	// with the restoring beam.
	Peak1 float64 `json:"peak1_jy_beam"`
	Peak2 float64 `json:"peak2_jy_beam"`
	// SNR1 and SNR2 are Peak over the local noise sigma in each epoch.
	SNR1 float64 `json:"snr1"`
	SNR2 float64 `json:"snr2"`
	// Sigma1 and Sigma2 are the local noise sigma (Jy/beam) at the source.
	Sigma1 float64 `json:"sigma1_jy_beam"`
	Sigma2 float64 `json:"sigma2_jy_beam"`
	// IntrinsicMaj, IntrinsicMin (FWHM, arcsec) and IntrinsicPA (deg) give
	// the source shape before convolution; zero size is a point source.
	IntrinsicMaj float64 `json:"intrinsic_maj_arcsec"`
	IntrinsicMin float64 `json:"intrinsic_min_arcsec"`
	IntrinsicPA  float64 `json:"intrinsic_pa_deg"`
	// Factor is Flux2/Flux1 for variables (1 for steady sources, 0 for
	// the others).
	Factor float64 `json:"factor"`
}

// DiffSNR is the significance of the flux change in peak brightness:
// |Peak2 - Peak1| / sqrt(Sigma1² + Sigma2²).
func (s TruthSource) DiffSNR() float64 {
	return math.Abs(s.Peak2-s.Peak1) / math.Hypot(s.Sigma1, s.Sigma2)
}

// ImageConfig configures a synthetic image. Zero values take the documented
// defaults.
type ImageConfig struct {
	// Width and Height in pixels (default 512 each).
	Width, Height int
	// CellArcsec is the pixel side (default 1.0, the VLASS quick-look cell).
	CellArcsec float64
	// RA and Dec of the field centre in degrees (defaults 180, +20).
	RA, Dec float64
	// FreqHz is the reference frequency (default 3 GHz).
	FreqHz float64
	// Beam is the restoring beam (default 3.0" x 2.2" at PA 30 deg, a VLASS
	// B-configuration beam).
	Beam RestoringBeam
	// Sigma is the noise rms in Jy/beam at the field centre (default 120e-6,
	// the VLASS single-epoch goal). The noise is Gaussian and correlated on
	// the scale of the beam.
	Sigma float64
	// RMSGradient raises the noise towards the corners like a primary-beam
	// correction: sigma(r) = Sigma*(1 + RMSGradient*(r/rmax)^2). Default 0.
	RMSGradient float64
	// Background is a constant offset in Jy/beam (default 0) and
	// BackgroundSlope a gradient in Jy/beam per pixel along x (default 0).
	Background, BackgroundSlope float64
	// Sources is the number of sky sources (default 150). Negative means
	// none.
	Sources int
	// MinSNR and MaxSNR bound the peak signal-to-noise ratio of point
	// sources (defaults 3 and 1000). Fluxes follow a power law
	// dN/dS ∝ S^-CountSlope between the two (default slope 1.7, the
	// sub-mJy differential counts at GHz frequencies).
	MinSNR, MaxSNR, CountSlope float64
	// ExtendedFraction is the fraction of sources that are elliptical
	// Gaussians rather than points (default 0.25; negative means none);
	// their intrinsic FWHM lies between 1 and MaxExtentArcsec (default 4).
	ExtendedFraction, MaxExtentArcsec float64
	// MinSeparationBeams is the minimum distance between sources in beam
	// major axes (default 5), so truth matching is unambiguous.
	MinSeparationBeams float64
	// EdgeBeams keeps sources this many beam major axes from the edges
	// (default 4).
	EdgeBeams float64
}

func (c *ImageConfig) withDefaults() (ImageConfig, error) {
	var o ImageConfig
	if c != nil {
		o = *c
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Width == 0 {
		o.Width = 512
	}
	if o.Height == 0 {
		o.Height = 512
	}
	def(&o.CellArcsec, 1.0)
	if o.RA == 0 && o.Dec == 0 {
		o.RA, o.Dec = 180, 20
	}
	def(&o.FreqHz, 3e9)
	if o.Beam == (RestoringBeam{}) {
		o.Beam = RestoringBeam{MajArcsec: 3.0, MinArcsec: 2.2, PADeg: 30}
	}
	def(&o.Sigma, 120e-6)
	if o.Sources == 0 {
		o.Sources = 150
	} else if o.Sources < 0 {
		o.Sources = 0
	}
	def(&o.MinSNR, 3)
	def(&o.MaxSNR, 1000)
	def(&o.CountSlope, 1.7)
	if o.ExtendedFraction == 0 {
		o.ExtendedFraction = 0.25
	} else if o.ExtendedFraction < 0 {
		o.ExtendedFraction = 0
	}
	def(&o.MaxExtentArcsec, 4)
	def(&o.MinSeparationBeams, 5)
	def(&o.EdgeBeams, 4)
	bad := func(field string, v any, msg string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrImageConfig, field, v, msg)
	}
	switch {
	case o.Width < 16 || o.Height < 16 || o.Width > 32768 || o.Height > 32768:
		return o, bad("Width x Height", fmt.Sprintf("%dx%d", o.Width, o.Height), "each side must be 16..32768 pixels")
	case !(o.CellArcsec > 0) || math.IsInf(o.CellArcsec, 0):
		return o, bad("CellArcsec", o.CellArcsec, "must be positive and finite")
	case !(o.Dec >= -90 && o.Dec <= 90):
		return o, bad("Dec", o.Dec, "must be within [-90, 90]")
	case !(o.Beam.MajArcsec > 0) || !(o.Beam.MinArcsec > 0) || o.Beam.MinArcsec > o.Beam.MajArcsec:
		return o, bad("Beam", o.Beam, "needs 0 < MinArcsec <= MajArcsec")
	case o.Beam.MinArcsec/o.CellArcsec < 1.5:
		return o, bad("Beam.MinArcsec", o.Beam.MinArcsec, fmt.Sprintf("must span at least 1.5 cells of %v arcsec", o.CellArcsec))
	case !(o.Sigma > 0) || math.IsInf(o.Sigma, 0):
		return o, bad("Sigma", o.Sigma, "must be positive and finite")
	case !(o.RMSGradient >= 0) || o.RMSGradient > 10:
		return o, bad("RMSGradient", o.RMSGradient, "must be within [0, 10]")
	case math.IsNaN(o.Background) || math.IsInf(o.Background, 0) || math.IsNaN(o.BackgroundSlope) || math.IsInf(o.BackgroundSlope, 0):
		return o, bad("Background", o.Background, "must be finite")
	case !(o.MinSNR > 0) || !(o.MaxSNR > o.MinSNR) || math.IsInf(o.MaxSNR, 0):
		return o, bad("MinSNR..MaxSNR", fmt.Sprintf("%v..%v", o.MinSNR, o.MaxSNR), "need 0 < MinSNR < MaxSNR < Inf")
	case !(o.CountSlope > 0) || o.CountSlope == 1 || o.CountSlope > 5:
		return o, bad("CountSlope", o.CountSlope, "must be in (0, 5] and not 1")
	case o.ExtendedFraction > 1:
		return o, bad("ExtendedFraction", o.ExtendedFraction, "must be <= 1")
	case !(o.MaxExtentArcsec >= 1):
		return o, bad("MaxExtentArcsec", o.MaxExtentArcsec, "must be >= 1")
	case !(o.MinSeparationBeams >= 0) || !(o.EdgeBeams >= 0):
		return o, bad("MinSeparationBeams/EdgeBeams", fmt.Sprintf("%v/%v", o.MinSeparationBeams, o.EdgeBeams), "must be >= 0")
	}
	return o, nil
}

// ImageField is one synthetic image and its truth catalogue.
type ImageField struct {
	Image   *Image
	Sources []TruthSource
	// Config is the configuration with defaults applied.
	Config ImageConfig
}

// SigmaAt returns the true noise rms (Jy/beam) at pixel (x, y) of an image
// made with this configuration.
func (c ImageConfig) SigmaAt(x, y float64) float64 {
	if c.RMSGradient == 0 {
		return c.Sigma
	}
	cx, cy := float64(c.Width-1)/2, float64(c.Height-1)/2
	r2 := ((x-cx)*(x-cx) + (y-cy)*(y-cy)) / (cx*cx + cy*cy)
	return c.Sigma * (1 + c.RMSGradient*r2)
}

// BackgroundAt returns the true background level (Jy/beam) at pixel (x, y).
func (c ImageConfig) BackgroundAt(x, y float64) float64 {
	return c.Background + c.BackgroundSlope*(x-float64(c.Width-1)/2)
}

// NewImage synthesises one image of a field: a power-law population of
// point and elliptical Gaussian sources convolved with the restoring beam,
// beam-correlated Gaussian noise of known sigma and an optional background.
// The same cfg and seed always give the same image.
func NewImage(cfg *ImageConfig, seed int64) (*ImageField, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x696d61676573))
	w := c.wcs()
	srcs, err := imgPlaceSources(c, rng, c.Sources)
	if err != nil {
		return nil, err
	}
	for i := range srcs {
		s := &srcs[i]
		s.ID = i + 1
		s.Kind = KindSteady
		s.Factor = 1
		c.drawShape(rng, s)
		snr := imgPowerLaw(rng, c.MinSNR, c.MaxSNR, c.CountSlope)
		s.Sigma1 = c.SigmaAt(s.X, s.Y)
		s.Sigma2 = s.Sigma1
		s.Peak1 = snr * s.Sigma1
		s.Flux1 = s.Peak1 / c.peakPerFlux(*s)
		s.Flux2, s.Peak2 = s.Flux1, s.Peak1
		s.SNR1, s.SNR2 = snr, snr
		s.RA, s.Dec = w.PixToWorld(s.X, s.Y)
	}
	im := c.noiseImage(rng)
	for _, s := range srcs {
		c.render(im, s, s.Peak1)
	}
	return &ImageField{Image: im, Sources: srcs, Config: c}, nil
}

// PairConfig configures two epochs of one field. Zero values take the
// documented defaults.
type PairConfig struct {
	// Image configures the field and the first epoch; its Sources are the
	// steady and variable ones.
	Image ImageConfig
	// Sigma2 is the second epoch's noise rms at the centre (default
	// Image.Sigma).
	Sigma2 float64
	// Transients is the number of sources present only in epoch 2
	// (default 10; negative means none), with peak SNR (against the
	// epoch-2 noise) uniform in [TransientMinSNR, TransientMaxSNR]
	// (defaults 5 and 50).
	Transients                       int
	TransientMinSNR, TransientMaxSNR float64
	// Disappeared is the number of sources present only in epoch 1
	// (default 5; negative means none), with SNR drawn like transients.
	Disappeared int
	// Variables is the number of steady sources with SNR >= VariableMinSNR
	// (default 10) whose flux changes by a factor in [VariableMinFactor,
	// VariableMaxFactor] (defaults 1.6 and 2.5), or its inverse, chosen at
	// random (default 10 variables; negative means none).
	Variables                            int
	VariableMinSNR                       float64
	VariableMinFactor, VariableMaxFactor float64
	// Glitches is the number of single-pixel artefacts in epoch 2 with
	// amplitude 15 to 40 sigma (default 2; negative means none).
	Glitches int
}

// EpochPair is two epochs of the same field and the truth for both.
type EpochPair struct {
	Epoch1, Epoch2 *Image
	Sources        []TruthSource
	Config         PairConfig
}

// NewEpochPair synthesises two epochs of one field on the same grid: the
// same steady sources with independent noise realisations, plus variables,
// transients (epoch 2 only), disappeared sources (epoch 1 only) and
// single-pixel glitches (epoch 2), all in the truth catalogue.
func NewEpochPair(cfg *PairConfig, seed int64) (*EpochPair, error) {
	var p PairConfig
	if cfg != nil {
		p = *cfg
	}
	c, err := p.Image.withDefaults()
	if err != nil {
		return nil, err
	}
	p.Image = c
	if p.Sigma2 == 0 {
		p.Sigma2 = c.Sigma
	}
	n := func(v *int, d int) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			*v = 0
		}
	}
	n(&p.Transients, 10)
	n(&p.Disappeared, 5)
	n(&p.Variables, 10)
	n(&p.Glitches, 2)
	if p.TransientMinSNR == 0 {
		p.TransientMinSNR = 5
	}
	if p.TransientMaxSNR == 0 {
		p.TransientMaxSNR = 50
	}
	if p.VariableMinSNR == 0 {
		p.VariableMinSNR = 10
	}
	if p.VariableMinFactor == 0 {
		p.VariableMinFactor = 1.6
	}
	if p.VariableMaxFactor == 0 {
		p.VariableMaxFactor = 2.5
	}
	switch {
	case !(p.Sigma2 > 0) || math.IsInf(p.Sigma2, 0):
		return nil, fmt.Errorf("%w: Sigma2 = %v: must be positive and finite", ErrImageConfig, p.Sigma2)
	case !(p.TransientMinSNR > 0) || !(p.TransientMaxSNR >= p.TransientMinSNR):
		return nil, fmt.Errorf("%w: TransientMinSNR..TransientMaxSNR = %v..%v: need 0 < min <= max", ErrImageConfig, p.TransientMinSNR, p.TransientMaxSNR)
	case !(p.VariableMinFactor > 1) || !(p.VariableMaxFactor >= p.VariableMinFactor):
		return nil, fmt.Errorf("%w: VariableMinFactor..VariableMaxFactor = %v..%v: need 1 < min <= max", ErrImageConfig, p.VariableMinFactor, p.VariableMaxFactor)
	case p.Variables > c.Sources:
		return nil, fmt.Errorf("%w: Variables = %d: more than the %d steady sources", ErrImageConfig, p.Variables, c.Sources)
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x65706f636873))
	w := c.wcs()
	c2 := c
	c2.Sigma = p.Sigma2
	total := c.Sources + p.Transients + p.Disappeared + p.Glitches
	srcs, err := imgPlaceSources(c, rng, total)
	if err != nil {
		return nil, err
	}
	for i := range srcs {
		s := &srcs[i]
		s.ID = i + 1
		s.Sigma1 = c.SigmaAt(s.X, s.Y)
		s.Sigma2 = c2.SigmaAt(s.X, s.Y)
		s.RA, s.Dec = w.PixToWorld(s.X, s.Y)
		switch {
		case i < c.Sources:
			s.Kind = KindSteady
			s.Factor = 1
			c.drawShape(rng, s)
			s.Peak1 = imgPowerLaw(rng, c.MinSNR, c.MaxSNR, c.CountSlope) * s.Sigma1
			s.Flux1 = s.Peak1 / c.peakPerFlux(*s)
			s.Flux2 = s.Flux1
		case i < c.Sources+p.Transients:
			s.Kind = KindTransient
			c.drawShape(rng, s)
			s.Peak2 = (p.TransientMinSNR + rng.Float64()*(p.TransientMaxSNR-p.TransientMinSNR)) * s.Sigma2
			s.Flux2 = s.Peak2 / c.peakPerFlux(*s)
		case i < c.Sources+p.Transients+p.Disappeared:
			s.Kind = KindDisappeared
			c.drawShape(rng, s)
			s.Peak1 = (p.TransientMinSNR + rng.Float64()*(p.TransientMaxSNR-p.TransientMinSNR)) * s.Sigma1
			s.Flux1 = s.Peak1 / c.peakPerFlux(*s)
		default:
			s.Kind = KindGlitch
			s.X, s.Y = math.Round(s.X), math.Round(s.Y)
			s.RA, s.Dec = w.PixToWorld(s.X, s.Y)
			s.Peak2 = (15 + 25*rng.Float64()) * s.Sigma2
			s.Flux2 = s.Peak2
		}
	}
	// Variables: the first p.Variables steady sources above VariableMinSNR
	// (placement order is random, so this is a random choice).
	nv := 0
	for i := 0; i < c.Sources && nv < p.Variables; i++ {
		s := &srcs[i]
		if s.Peak1/s.Sigma1 < p.VariableMinSNR {
			continue
		}
		f := p.VariableMinFactor + rng.Float64()*(p.VariableMaxFactor-p.VariableMinFactor)
		if rng.IntN(2) == 0 {
			f = 1 / f
		}
		s.Kind = KindVariable
		s.Factor = f
		s.Flux2 = s.Flux1 * f
		nv++
	}
	if nv < p.Variables {
		return nil, fmt.Errorf("%w: Variables = %d: only %d steady sources reach VariableMinSNR %v", ErrImageConfig, p.Variables, nv, p.VariableMinSNR)
	}
	for i := range srcs {
		s := &srcs[i]
		if s.Kind != KindGlitch {
			k := c.peakPerFlux(*s)
			s.Peak1, s.Peak2 = s.Flux1*k, s.Flux2*k
		}
		s.SNR1, s.SNR2 = s.Peak1/s.Sigma1, s.Peak2/s.Sigma2
	}
	// Two independent noise streams, derived from the same generator so
	// the pair is reproducible.
	rng1 := rand.New(rand.NewPCG(rng.Uint64(), 1))
	rng2 := rand.New(rand.NewPCG(rng.Uint64(), 2))
	e1 := c.noiseImage(rng1)
	e2 := c2.noiseImage(rng2)
	for _, s := range srcs {
		if s.Kind == KindGlitch {
			e2.Pix[int(s.Y)*e2.Width+int(s.X)] += s.Peak2
			continue
		}
		if s.Peak1 != 0 {
			c.render(e1, s, s.Peak1)
		}
		if s.Peak2 != 0 {
			c.render(e2, s, s.Peak2)
		}
	}
	return &EpochPair{Epoch1: e1, Epoch2: e2, Sources: srcs, Config: p}, nil
}

func (c ImageConfig) wcs() WCS {
	return WCS{RefRA: c.RA, RefDec: c.Dec, RefX: float64(c.Width / 2), RefY: float64(c.Height / 2), CellDeg: c.CellArcsec / 3600}
}

// imgPowerLaw draws from dN/dS ∝ S^-g on [lo, hi] by inverting the CDF.
func imgPowerLaw(rng *rand.Rand, lo, hi, g float64) float64 {
	a := 1 - g
	u := rng.Float64()
	return math.Pow(math.Pow(lo, a)+u*(math.Pow(hi, a)-math.Pow(lo, a)), 1/a)
}

// imgPlaceSources draws n positions uniformly inside the edge margin with the
// configured minimum separation.
func imgPlaceSources(c ImageConfig, rng *rand.Rand, n int) ([]TruthSource, error) {
	beamPx := c.Beam.MajArcsec / c.CellArcsec
	edge := c.EdgeBeams * beamPx
	sep := c.MinSeparationBeams * beamPx
	x0, x1 := edge, float64(c.Width-1)-edge
	y0, y1 := edge, float64(c.Height-1)-edge
	if n > 0 && (x1 <= x0 || y1 <= y0) {
		return nil, fmt.Errorf("%w: Width x Height = %dx%d: no room inside an edge margin of %.1f pixels", ErrImageConfig, c.Width, c.Height, edge)
	}
	cell := math.Max(sep, 1)
	grid := map[[2]int][]int{}
	out := make([]TruthSource, 0, n)
	tries := 0
	for len(out) < n {
		tries++
		if tries > 200*n+1000 {
			return nil, fmt.Errorf("%w: Sources = %d: cannot place them %.1f pixels apart in %dx%d pixels (placed %d)", ErrImageConfig, n, sep, c.Width, c.Height, len(out))
		}
		x := x0 + rng.Float64()*(x1-x0)
		y := y0 + rng.Float64()*(y1-y0)
		gx, gy := int(x/cell), int(y/cell)
		ok := true
		for dx := -1; dx <= 1 && ok; dx++ {
			for dy := -1; dy <= 1 && ok; dy++ {
				for _, j := range grid[[2]int{gx + dx, gy + dy}] {
					if math.Hypot(out[j].X-x, out[j].Y-y) < sep {
						ok = false
						break
					}
				}
			}
		}
		if !ok {
			continue
		}
		grid[[2]int{gx, gy}] = append(grid[[2]int{gx, gy}], len(out))
		out = append(out, TruthSource{X: x, Y: y})
	}
	return out, nil
}

func (c ImageConfig) drawShape(rng *rand.Rand, s *TruthSource) {
	if rng.Float64() >= c.ExtendedFraction {
		return
	}
	maj := 1 + rng.Float64()*(c.MaxExtentArcsec-1)
	s.IntrinsicMaj = maj
	s.IntrinsicMin = maj * (0.4 + 0.6*rng.Float64())
	s.IntrinsicPA = rng.Float64() * 180
}

// shape returns the observed (beam-convolved) FWHM axes in pixels and the
// PA of a source.
func (c ImageConfig) shape(s TruthSource) (maj, min, pa float64) {
	bmaj, bmin := c.Beam.MajArcsec/c.CellArcsec, c.Beam.MinArcsec/c.CellArcsec
	if s.IntrinsicMaj == 0 {
		return bmaj, bmin, c.Beam.PADeg
	}
	return ConvolveGaussians(bmaj, bmin, c.Beam.PADeg, s.IntrinsicMaj/c.CellArcsec, s.IntrinsicMin/c.CellArcsec, s.IntrinsicPA)
}

// peakPerFlux is the peak brightness (Jy/beam) per Jy of integrated flux.
func (c ImageConfig) peakPerFlux(s TruthSource) float64 {
	maj, min, _ := c.shape(s)
	return (c.Beam.MajArcsec / c.CellArcsec) * (c.Beam.MinArcsec / c.CellArcsec) / (maj * min)
}

// ConvolveGaussians returns the FWHM axes and PA (degrees east of north)
// of the convolution of two elliptical Gaussians given by their FWHM axes
// and PAs (any consistent length unit).
func ConvolveGaussians(maj1, min1, pa1, maj2, min2, pa2 float64) (maj, min, pa float64) {
	a1, b1, c1 := imgGaussCov(maj1, min1, pa1)
	a2, b2, c2 := imgGaussCov(maj2, min2, pa2)
	return imgCovGauss(a1+a2, b1+b2, c1+c2)
}

const imgFWHMPerSigma = 2.3548200450309493 // 2*sqrt(2 ln 2)

// imgGaussCov returns the covariance (xx, xy, yy) in pixel axes (x to the
// west, i.e. increasing pixel column, y to the north) of a Gaussian with
// FWHM maj, min and PA pa degrees east of north.
func imgGaussCov(maj, min, pa float64) (xx, xy, yy float64) {
	sm, sn := maj/imgFWHMPerSigma, min/imgFWHMPerSigma
	s, co := math.Sincos(pa * math.Pi / 180)
	// Major axis direction: north towards east = (-sin, cos) in pixels.
	e1x, e1y := -s, co
	e2x, e2y := co, s
	xx = sm*sm*e1x*e1x + sn*sn*e2x*e2x
	xy = sm*sm*e1x*e1y + sn*sn*e2x*e2y
	yy = sm*sm*e1y*e1y + sn*sn*e2y*e2y
	return
}

func imgCovGauss(xx, xy, yy float64) (maj, min, pa float64) {
	tr := xx + yy
	det := xx*yy - xy*xy
	disc := math.Sqrt(math.Max(tr*tr/4-det, 0))
	l1, l2 := tr/2+disc, tr/2-disc
	// Eigenvector for l1: (xy, l1-xx) or (l1-yy, xy).
	vx, vy := xy, l1-xx
	if math.Abs(vx)+math.Abs(vy) < 1e-300 {
		vx, vy = l1-yy, xy
		if math.Abs(vx)+math.Abs(vy) < 1e-300 {
			vx, vy = 0, 1
		}
	}
	// PA from north towards east: direction (-sin pa, cos pa).
	pa = math.Atan2(-vx, vy) * 180 / math.Pi
	pa = math.Mod(pa+360, 180)
	return math.Sqrt(math.Max(l1, 0)) * imgFWHMPerSigma, math.Sqrt(math.Max(l2, 0)) * imgFWHMPerSigma, pa
}

// render adds a beam-convolved source of the given peak to im.
func (c ImageConfig) render(im *Image, s TruthSource, peak float64) {
	maj, mn, pa := c.shape(s)
	xx, xy, yy := imgGaussCov(maj, mn, pa)
	det := xx*yy - xy*xy
	ixx, ixy, iyy := yy/det, -xy/det, xx/det
	r := int(math.Ceil(5 * maj / imgFWHMPerSigma))
	cx, cy := int(math.Round(s.X)), int(math.Round(s.Y))
	for y := max(cy-r, 0); y <= min(cy+r, im.Height-1); y++ {
		dy := float64(y) - s.Y
		for x := max(cx-r, 0); x <= min(cx+r, im.Width-1); x++ {
			dx := float64(x) - s.X
			q := ixx*dx*dx + 2*ixy*dx*dy + iyy*dy*dy
			im.Pix[y*im.Width+x] += peak * math.Exp(-0.5*q)
		}
	}
}

// noiseImage returns white Gaussian noise convolved with a Gaussian kernel
// whose self-convolution is the restoring beam (the beam's axes over √2),
// so the noise autocorrelation is the beam, as in an interferometric image;
// it is scaled to the configured sigma map and the background is added.
func (c ImageConfig) noiseImage(rng *rand.Rand) *Image {
	w, h := c.Width, c.Height
	bmaj, bmin := c.Beam.MajArcsec/c.CellArcsec, c.Beam.MinArcsec/c.CellArcsec
	xx, xy, yy := imgGaussCov(bmaj/math.Sqrt2, bmin/math.Sqrt2, c.Beam.PADeg)
	det := xx*yy - xy*xy
	ixx, ixy, iyy := yy/det, -xy/det, xx/det
	r := int(math.Ceil(4 * bmaj / math.Sqrt2 / imgFWHMPerSigma))
	k := 2*r + 1
	kern := make([]float64, k*k)
	var ss float64
	for j := -r; j <= r; j++ {
		for i := -r; i <= r; i++ {
			v := math.Exp(-0.5 * (ixx*float64(i*i) + 2*ixy*float64(i*j) + iyy*float64(j*j)))
			kern[(j+r)*k+i+r] = v
			ss += v * v
		}
	}
	norm := 1 / math.Sqrt(ss)
	for i := range kern {
		kern[i] *= norm
	}
	// White noise on a padded grid (serial: the stream must not depend on
	// the number of cores).
	pw, ph := w+2*r, h+2*r
	white := make([]float64, pw*ph)
	for i := range white {
		white[i] = rng.NormFloat64()
	}
	im := &Image{Width: w, Height: h, Pix: make([]float64, w*h), WCS: c.wcs(), Beam: c.Beam, FreqHz: c.FreqHz}
	imgParallelRows(h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			for x := 0; x < w; x++ {
				var s float64
				for j := 0; j < k; j++ {
					row := white[(y+j)*pw+x : (y+j)*pw+x+k]
					kr := kern[j*k : j*k+k]
					for i, kv := range kr {
						s += kv * row[i]
					}
				}
				fx, fy := float64(x), float64(y)
				im.Pix[y*w+x] = s*c.SigmaAt(fx, fy) + c.BackgroundAt(fx, fy)
			}
		}
	})
	return im
}

// imgParallelRows splits [0, n) into chunks run on all cores.
func imgParallelRows(n int, f func(y0, y1 int)) {
	workers := min(runtime.GOMAXPROCS(0), max(n/16, 1))
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for y := 0; y < n; y += chunk {
		wg.Add(1)
		go func(y0, y1 int) {
			defer wg.Done()
			f(y0, y1)
		}(y, min(y+chunk, n))
	}
	wg.Wait()
}
