package anomaly

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// FinderConfig configures source finding. Zero values take the documented
// defaults (those of Aegean: seed 5σ, flood 4σ).
type FinderConfig struct {
	// SeedSigma is the island seed threshold in local rms (default 5).
	SeedSigma float64
	// FloodSigma is the island boundary threshold (default 4; must not
	// exceed SeedSigma).
	FloodSigma float64
	// Background configures the background and rms maps.
	Background BackgroundConfig
	// MaxComponents caps the components fitted per island (default 8).
	MaxComponents int
	// ShapeSNR is the peak SNR below which components are fitted with the
	// beam's shape (amplitude and position only), because noise makes a
	// free size meaningless there (default 8).
	ShapeSNR float64
	// MaxIslandPixels bounds the islands that are fitted (default 20000);
	// larger ones (a flood threshold near the noise percolates) report
	// their summits unfitted (FitPeak) so the cost stays bounded.
	MaxIslandPixels int
}

func (c *FinderConfig) withDefaults() (FinderConfig, error) {
	var o FinderConfig
	if c != nil {
		o = *c
	}
	if o.SeedSigma == 0 {
		o.SeedSigma = 5
	}
	if o.FloodSigma == 0 {
		o.FloodSigma = math.Min(4, o.SeedSigma)
	}
	if o.MaxComponents == 0 {
		o.MaxComponents = 8
	}
	if o.ShapeSNR == 0 {
		o.ShapeSNR = 8
	}
	if o.MaxIslandPixels == 0 {
		o.MaxIslandPixels = 20000
	}
	switch {
	case !(o.SeedSigma > 0) || math.IsInf(o.SeedSigma, 0):
		return o, fmt.Errorf("%w: SeedSigma = %v: must be positive and finite", ErrBadConfig, o.SeedSigma)
	case !(o.FloodSigma > 0) || o.FloodSigma > o.SeedSigma:
		return o, fmt.Errorf("%w: FloodSigma = %v: must be positive and <= SeedSigma (%v)", ErrBadConfig, o.FloodSigma, o.SeedSigma)
	case o.MaxComponents < 1 || o.MaxComponents > 32:
		return o, fmt.Errorf("%w: MaxComponents = %d: must be within 1..32", ErrBadConfig, o.MaxComponents)
	case !(o.ShapeSNR > 0):
		return o, fmt.Errorf("%w: ShapeSNR = %v: must be positive", ErrBadConfig, o.ShapeSNR)
	case o.MaxIslandPixels < 1:
		return o, fmt.Errorf("%w: MaxIslandPixels = %d: must be positive", ErrBadConfig, o.MaxIslandPixels)
	}
	bg, err := o.Background.withDefaults()
	if err != nil {
		return o, err
	}
	o.Background = bg
	return o, nil
}

// Fit methods recorded on a component.
const (
	// FitGaussian is a free elliptical Gaussian fit.
	FitGaussian = "gaussian"
	// FitBeam is a fit of amplitude and position with the beam's shape.
	FitBeam = "beam"
	// FitPeak means every fit failed and the brightest pixel is reported.
	FitPeak = "peak"
)

// Component is one fitted source component.
type Component struct {
	ID     int `json:"id"`
	Island int `json:"island"`
	// X and Y are the zero-based pixel position, with 1-sigma errors.
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
	ErrX float64 `json:"err_x"`
	ErrY float64 `json:"err_y"`
	// RA and Dec in degrees; errors in arcseconds.
	RA     float64 `json:"ra_deg"`
	Dec    float64 `json:"dec_deg"`
	ErrRA  float64 `json:"err_ra_arcsec"`
	ErrDec float64 `json:"err_dec_arcsec"`
	// Peak brightness (Jy/beam) and integrated flux density (Jy).
	Peak    float64 `json:"peak_jy_beam"`
	ErrPeak float64 `json:"err_peak_jy_beam"`
	Flux    float64 `json:"flux_jy"`
	ErrFlux float64 `json:"err_flux_jy"`
	// Fitted (beam-convolved) FWHM axes in arcseconds and PA in degrees
	// east of north, with errors.
	MajArcsec    float64 `json:"maj_arcsec"`
	MinArcsec    float64 `json:"min_arcsec"`
	PADeg        float64 `json:"pa_deg"`
	ErrMajArcsec float64 `json:"err_maj_arcsec"`
	ErrMinArcsec float64 `json:"err_min_arcsec"`
	ErrPADeg     float64 `json:"err_pa_deg"`
	// DeconvMajArcsec, DeconvMinArcsec and DeconvPADeg are the intrinsic
	// size after removing the beam (zero when unresolved or not fitted).
	DeconvMajArcsec float64 `json:"deconv_maj_arcsec"`
	DeconvMinArcsec float64 `json:"deconv_min_arcsec"`
	DeconvPADeg     float64 `json:"deconv_pa_deg"`
	// LocalRMS and Background at the position (Jy/beam); SNR = Peak/LocalRMS.
	LocalRMS   float64 `json:"local_rms_jy_beam"`
	Background float64 `json:"background_jy_beam"`
	SNR        float64 `json:"snr"`
	// Fit is FitGaussian, FitBeam or FitPeak.
	Fit string `json:"fit"`
}

// Catalogue is the result of source finding on one image.
type Catalogue struct {
	Components []Component `json:"components"`
	Islands    []Island    `json:"islands"`
	// MedianRMS is the median of the rms map (Jy/beam).
	MedianRMS float64 `json:"median_rms_jy_beam"`
	Beam      Beam    `json:"beam"`
	// Maps are the background and rms maps used.
	Maps *Maps `json:"-"`
	// Config is the finder configuration with defaults applied.
	Config FinderConfig `json:"-"`
}

// Find computes the background and rms maps of im, finds islands (seed
// and flood thresholds in local rms, 8-connected) and fits every island
// with one elliptical Gaussian per summit. Islands are fitted on all cores.
func Find(ctx context.Context, im *Image, cfg *FinderConfig) (*Catalogue, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	maps, err := BackgroundRMS(ctx, im, &c.Background)
	if err != nil {
		return nil, err
	}
	return FindWithMaps(ctx, im, maps, &c)
}

// FindWithMaps is Find with given background and rms maps (for example a
// difference image whose rms is known from its epochs).
func FindWithMaps(ctx context.Context, im *Image, maps *Maps, cfg *FinderConfig) (*Catalogue, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := im.Validate("image"); err != nil {
		return nil, err
	}
	if maps == nil || maps.Width != im.Width || maps.Height != im.Height || len(maps.RMS) != len(im.Pix) || len(maps.Background) != len(im.Pix) {
		return nil, fmt.Errorf("%w: maps do not cover the %dx%d image", ErrMismatch, im.Width, im.Height)
	}
	w, h := im.Width, im.Height
	snr := make([]float64, w*h)
	for i, v := range im.Pix {
		r := maps.RMS[i]
		if !(r > 0) || math.IsInf(r, 0) {
			return nil, fmt.Errorf("%w: rms map at pixel (%d, %d) = %v: must be positive and finite", ErrBadImage, i%w, i/w, r)
		}
		snr[i] = (v - maps.Background[i]) / r
	}
	islands, labels := FindIslands(snr, w, h, c.SeedSigma, c.FloodSigma)
	results := make([][]Component, len(islands))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(islands))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = fitIsland(im, maps, snr, labels, &islands[i], c)
			}
		}()
	}
	for i := range islands {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cat := &Catalogue{Islands: islands, Beam: im.Beam, Maps: maps, Config: c, MedianRMS: maps.MedianRMS()}
	for _, rs := range results {
		for _, comp := range rs {
			comp.ID = len(cat.Components) + 1
			cat.Components = append(cat.Components, comp)
		}
	}
	return cat, nil
}

// summits returns the local maxima of an island above the seed threshold
// that are distinct sources: at least a beam minor axis from a brighter
// summit, with a dip between them.
func summits(snr []float64, w, h int, labels []int32, isl *Island, seed float64, sep float64, maxN int) [][2]int {
	var cand [][2]int
	id := int32(isl.ID)
	for _, p := range isl.Pixels {
		v := snr[p]
		if v < seed {
			continue
		}
		x, y := p%w, p/w
		peak := true
		for dy := -1; dy <= 1 && peak; dy++ {
			for dx := -1; dx <= 1; dx++ {
				xx, yy := x+dx, y+dy
				if (dx == 0 && dy == 0) || xx < 0 || yy < 0 || xx >= w || yy >= h {
					continue
				}
				q := yy*w + xx
				if labels[q] == id && (snr[q] > v || (snr[q] == v && q < p)) {
					peak = false
					break
				}
			}
		}
		if peak {
			cand = append(cand, [2]int{x, y})
		}
	}
	slices.SortFunc(cand, func(a, b [2]int) int {
		va, vb := snr[a[1]*w+a[0]], snr[b[1]*w+b[0]]
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return (a[1]*w + a[0]) - (b[1]*w + b[0])
	})
	var out [][2]int
	for _, s := range cand {
		if len(out) >= maxN {
			break
		}
		vs := snr[s[1]*w+s[0]]
		ok := true
		for _, t := range out {
			dx, dy := float64(s[0]-t[0]), float64(s[1]-t[1])
			d := math.Hypot(dx, dy)
			if d < sep {
				ok = false
				break
			}
			// Lowest SNR on the straight line between the summits.
			steps := int(math.Ceil(d * 2))
			low := vs
			for k := 1; k < steps; k++ {
				f := float64(k) / float64(steps)
				x := int(math.Round(float64(t[0]) + f*dx))
				y := int(math.Round(float64(t[1]) + f*dy))
				low = math.Min(low, snr[y*w+x])
			}
			if low > vs-math.Max(3, 0.2*vs) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// fitIsland fits the components of one island.
func fitIsland(im *Image, maps *Maps, snr []float64, labels []int32, isl *Island, c FinderConfig) []Component {
	w, h := im.Width, im.Height
	bmaj, bmin, bpa := im.beamPix()
	sums := summits(snr, w, h, labels, isl, c.SeedSigma, bmin, c.MaxComponents)
	if len(sums) == 0 {
		sums = [][2]int{{isl.PeakX, isl.PeakY}}
	}
	if len(isl.Pixels) > c.MaxIslandPixels {
		return peakComponents(im, maps, isl, sums)
	}
	pad := int(math.Ceil(bmaj))
	x0, x1 := max(isl.MinX-pad, 0), min(isl.MaxX+pad, w-1)
	y0, y1 := max(isl.MinY-pad, 0), min(isl.MaxY+pad, h-1)
	var d fitData
	id := int32(isl.ID)
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			p := y*w + x
			l := labels[p]
			if l != 0 && l != id {
				continue
			}
			if l == 0 {
				// Outside the island, keep pixels within a beam of a
				// summit: a wide box lets correlated noise plateaus pull
				// the amplitude up.
				near := false
				for _, s := range sums {
					if math.Hypot(float64(x-s[0]), float64(y-s[1])) <= bmaj {
						near = true
						break
					}
				}
				if !near {
					continue
				}
			}
			r := maps.RMS[p]
			d.x = append(d.x, float64(x))
			d.y = append(d.y, float64(y))
			d.v = append(d.v, im.Pix[p]-maps.Background[p])
			d.wt = append(d.wt, 1/(r*r))
		}
	}
	init := make([]gauss, len(sums))
	weak := false
	for k, s := range sums {
		p := s[1]*w + s[0]
		init[k] = gauss{A: im.Pix[p] - maps.Background[p], X: float64(s[0]), Y: float64(s[1]), Sa: bmaj / fwhm, Sb: bmin / fwhm, Th: bpa}
		if snr[p] < c.ShapeSNR {
			weak = true
		}
	}
	maxShift := math.Max(bmaj, 2)
	method := FitGaussian
	var fit []gauss
	ok := false
	if !weak && len(d.v) > 6*len(init) {
		fit, _, ok = lmFit(d, init, false, maxShift)
		ok = ok && saneFit(fit, init, bmaj)
	}
	if !ok {
		method = FitBeam
		fit, _, ok = lmFit(d, init, true, maxShift)
		ok = ok && saneFit(fit, init, bmaj)
	}
	if !ok {
		method = FitPeak
		fit = init
	}
	cell := im.WCS.CellArcsec()
	out := make([]Component, 0, len(fit))
	for _, g := range fit {
		g = normalise(g)
		ix := min(max(int(math.Round(g.X)), 0), w-1)
		iy := min(max(int(math.Round(g.Y)), 0), h-1)
		rms := maps.RMS[iy*w+ix]
		nM, nm := beamFWHMAlong(bmaj, bmin, bpa, g.Th), beamFWHMAlong(bmaj, bmin, bpa, g.Th+math.Pi/2)
		eA, eX, eY, eMaj, eMin, ePA := condonErrors(g, rms, nM, nm)
		thetaN := math.Sqrt(nM * nm)
		tM, tm := g.Sa*fwhm, g.Sb*fwhm
		flux := g.A * tM * tm / (bmaj * bmin)
		var eF float64
		if method == FitGaussian {
			rel := math.Sqrt(eA*eA/(g.A*g.A) + thetaN*thetaN/(tM*tm)*(eMaj*eMaj/(tM*tM)+eMin*eMin/(tm*tm)))
			eF = math.Abs(flux) * rel
		} else {
			eF = eA * tM * tm / (bmaj * bmin)
			eMaj, eMin, ePA = 0, 0, 0
		}
		var dM, dm, dpa float64
		if method == FitGaussian {
			if a, b, p, ok := deconvolve(tM, tm, g.Th, bmaj, bmin, bpa); ok {
				dM, dm, dpa = a*cell, b*cell, p*180/math.Pi
			}
		}
		ra, dec := im.WCS.PixToWorld(g.X, g.Y)
		out = append(out, Component{
			DeconvMajArcsec: dM, DeconvMinArcsec: dm, DeconvPADeg: dpa,
			Island: isl.ID, X: g.X, Y: g.Y, ErrX: eX, ErrY: eY,
			RA: ra, Dec: dec, ErrRA: eX * cell, ErrDec: eY * cell,
			Peak: g.A, ErrPeak: eA, Flux: flux, ErrFlux: eF,
			MajArcsec: tM * cell, MinArcsec: tm * cell, PADeg: g.Th * 180 / math.Pi,
			ErrMajArcsec: eMaj * cell, ErrMinArcsec: eMin * cell, ErrPADeg: ePA * 180 / math.Pi,
			LocalRMS: rms, Background: maps.Background[iy*w+ix], SNR: g.A / rms, Fit: method,
		})
	}
	return out
}

// saneFit rejects fits that ran away: non-positive amplitude, components
// far from their summits or far larger than the beam.
func saneFit(fit, init []gauss, bmaj float64) bool {
	for k, g := range fit {
		if !(g.A > 0) || math.Hypot(g.X-init[k].X, g.Y-init[k].Y) > 1.5*bmaj {
			return false
		}
		if math.Max(g.Sa, g.Sb)*fwhm > 10*bmaj {
			return false
		}
	}
	return true
}

// peakComponents reports summits without fitting: the brightest pixel, the
// beam's shape and the local rms as the peak error.
func peakComponents(im *Image, maps *Maps, isl *Island, sums [][2]int) []Component {
	w := im.Width
	cell := im.WCS.CellArcsec()
	bmaj, bmin, bpa := im.beamPix()
	out := make([]Component, 0, len(sums))
	for _, s := range sums {
		p := s[1]*w + s[0]
		a := im.Pix[p] - maps.Background[p]
		rms := maps.RMS[p]
		ra, dec := im.WCS.PixToWorld(float64(s[0]), float64(s[1]))
		out = append(out, Component{
			Island: isl.ID, X: float64(s[0]), Y: float64(s[1]), ErrX: 0.5, ErrY: 0.5,
			RA: ra, Dec: dec, ErrRA: 0.5 * cell, ErrDec: 0.5 * cell,
			Peak: a, ErrPeak: rms, Flux: a, ErrFlux: rms,
			MajArcsec: bmaj * cell, MinArcsec: bmin * cell, PADeg: bpa * 180 / math.Pi,
			LocalRMS: rms, Background: maps.Background[p], SNR: a / rms, Fit: FitPeak,
		})
	}
	return out
}
