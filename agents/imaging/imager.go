package imaging

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"
)

// Image is a square image: Pix[y*N+x], pixel (N/2, N/2) at the phase
// centre, x increasing westward (RA decreasing, as displayed), y northward.
type Image struct {
	N          int
	CellArcsec float64
	Pix        []float64
}

// NewImage returns a zero n×n image.
func NewImage(n int, cellArcsec float64) *Image {
	return &Image{N: n, CellArcsec: cellArcsec, Pix: make([]float64, n*n)}
}

// At returns pixel (x, y).
func (im *Image) At(x, y int) float64 { return im.Pix[y*im.N+x] }

// Pixel returns the (fractional) pixel of direction-cosine offsets l
// (east) and m (north) in arcseconds.
func (im *Image) Pixel(lArcsec, mArcsec float64) (x, y float64) {
	return float64(im.N/2) - lArcsec/im.CellArcsec, float64(im.N/2) + mArcsec/im.CellArcsec
}

// Max returns the maximum pixel value and its position.
func (im *Image) Max() (v float64, x, y int) {
	v = math.Inf(-1)
	for i, p := range im.Pix {
		if p > v {
			v, x, y = p, i%im.N, i/im.N
		}
	}
	return v, x, y
}

// MaxFullPSFSize is the largest image side for which the PSF is imaged at
// twice the image side; larger images clean with an image-sized PSF.
const MaxFullPSFSize = 2048

// Deconvolvers this package runs; DeconvAuto lets [Choose] decide.
const (
	DeconvAuto         = "auto"
	DeconvNone         = "none"
	DeconvHogbom       = "hogbom"
	DeconvCottonSchwab = "cotton-schwab"
	DeconvClark        = "clark"
)

// Config configures [Reconstruct]. Zero fields take the documented
// defaults.
type Config struct {
	// ImageSize is the image side in pixels: even, 32–4096; 0 means 256.
	ImageSize int
	// CellArcsec is the pixel size; 0 means 1.
	CellArcsec float64
	// Padding is the grid oversampling factor (>= 1); 0 means 1.25.
	Padding float64
	// KernelWidth (cells, 3–15) and KernelOversample of the Kaiser–Bessel
	// kernel; 0 means 7 and 63 (WSClean's defaults).
	KernelWidth, KernelOversample int
	// Weighting is natural, uniform or briggs; "" means natural.
	Weighting string
	// Robust is the Briggs robustness (-2 .. 2).
	Robust float64
	// Deconvolver is none, hogbom, cotton-schwab, clark, multiscale,
	// mtmfs (two Taylor terms) or auto (chosen by [Choose] from the
	// measured [Features]); "" means hogbom.
	Deconvolver string
	// Scales are the multiscale component widths (FWHM, pixels); nil
	// means 0, 2 and 4 restoring-beam widths. SmallScaleBias is the
	// multiscale scale bias (see [MultiscaleConfig]); 0 means 0.6.
	Scales         []float64
	SmallScaleBias float64
	// Niter caps the minor-cycle iterations in total; 0 means 1000; use
	// Deconvolver "none" for no cleaning.
	Niter int
	// Gain is the loop gain; 0 means 0.1.
	Gain float64
	// MGain is the Cotton–Schwab major-cycle gain (the minor cycle stops
	// when the peak has dropped by this fraction); 0 means 0.8.
	MGain float64
	// NSigma stops cleaning at NSigma times the robust residual rms; 0
	// means 4 (VLASS QL); NoNSigma disables this stopping rule.
	NSigma   float64
	NoNSigma bool
	// Threshold is an absolute stopping threshold in Jy/beam; 0 means none.
	Threshold float64
	// MaxMajorCycles bounds Cotton–Schwab; 0 means 20.
	MaxMajorCycles int
	// Workers is the goroutines for gridding, FFT and CLEAN; 0 means
	// GOMAXPROCS.
	Workers int
}

func (c *Config) withDefaults() (Config, error) {
	var o Config
	if c != nil {
		o = *c
	}
	bad := func(field string, v any, msg string) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s = %v: %s", ErrConfig, field, v, msg)
	}
	if o.ImageSize == 0 {
		o.ImageSize = 256
	}
	if o.ImageSize < 32 || o.ImageSize > 4096 || o.ImageSize%2 != 0 {
		return bad("image_size", o.ImageSize, "must be even and between 32 and 4096 for this in-process imager")
	}
	if o.CellArcsec == 0 {
		o.CellArcsec = 1
	}
	if !(o.CellArcsec > 0) || math.IsInf(o.CellArcsec, 0) {
		return bad("cell_arcsec", o.CellArcsec, "must be positive and finite")
	}
	if o.Padding == 0 {
		o.Padding = 1.25
	}
	if !(o.Padding >= 1 && o.Padding <= 4) {
		return bad("padding", o.Padding, "must be in [1, 4]")
	}
	if o.KernelWidth == 0 {
		o.KernelWidth = 7
	}
	if o.KernelOversample == 0 {
		o.KernelOversample = 63
	}
	if o.Weighting == "" {
		o.Weighting = "natural"
	}
	switch o.Weighting {
	case "natural", "uniform", "briggs":
	default:
		return bad("weighting", o.Weighting, "must be natural, uniform or briggs")
	}
	if !(o.Robust >= -2 && o.Robust <= 2) {
		return bad("robust", o.Robust, "must be in [-2, 2]")
	}
	if o.Deconvolver == "" {
		o.Deconvolver = DeconvHogbom
	}
	switch o.Deconvolver {
	case DeconvNone, DeconvHogbom, DeconvCottonSchwab, DeconvClark, DeconvMultiscale, DeconvMTMFS, DeconvAuto:
	default:
		return bad("deconvolver", o.Deconvolver, "must be none, hogbom, cotton-schwab, clark, multiscale, mtmfs or auto")
	}
	if o.Deconvolver == DeconvMultiscale && o.ImageSize > MaxMultiscaleSize {
		return bad("deconvolver", o.Deconvolver, fmt.Sprintf("multiscale runs up to image_size %d (got %d); use cotton-schwab or clark", MaxMultiscaleSize, o.ImageSize))
	}
	if o.Niter == 0 {
		o.Niter = 1000
	}
	if o.Niter < 0 {
		return bad("niter", o.Niter, "must be >= 0")
	}
	if o.Gain == 0 {
		o.Gain = 0.1
	}
	if !(o.Gain > 0 && o.Gain <= 1) {
		return bad("gain", o.Gain, "must be in (0, 1]")
	}
	if o.MGain == 0 {
		o.MGain = 0.8
	}
	if !(o.MGain > 0 && o.MGain < 1) {
		return bad("mgain", o.MGain, "must be in (0, 1)")
	}
	if o.NSigma == 0 {
		o.NSigma = 4
	}
	if !(o.NSigma > 0) || math.IsInf(o.NSigma, 0) {
		return bad("nsigma", o.NSigma, "must be positive")
	}
	if !(o.Threshold >= 0) || math.IsInf(o.Threshold, 0) {
		return bad("threshold", o.Threshold, "must be >= 0")
	}
	if o.MaxMajorCycles == 0 {
		o.MaxMajorCycles = 20
	}
	if o.MaxMajorCycles < 0 {
		return bad("max_major_cycles", o.MaxMajorCycles, "must be >= 0")
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// Component is one clean component (summed per pixel).
type Component struct {
	// X and Y are the pixel.
	X int `json:"x"`
	Y int `json:"y"`
	// Flux is the summed component flux in Jy.
	Flux float64 `json:"flux_jy"`
}

// Timings breaks an imaging run down by stage.
type Timings struct {
	// Weighting covers grid coordinates and imaging weights.
	Weighting time.Duration `json:"weighting_ns"`
	// Gridding and FFT cover every image made (PSF, dirty, and the
	// residual of each major cycle), including grid correction.
	Gridding time.Duration `json:"gridding_ns"`
	FFT      time.Duration `json:"fft_ns"`
	// Clean is the minor cycles (and rms estimates) only.
	Clean time.Duration `json:"clean_ns"`
	// Degrid is the model prediction of the major cycles.
	Degrid time.Duration `json:"degrid_ns"`
	// Restore is the convolution with the restoring beam.
	Restore time.Duration `json:"restore_ns"`
}

// Result is the outcome of [Reconstruct]. Images are in Jy/beam except
// Model (Jy per pixel).
type Result struct {
	// Config is the configuration with defaults applied.
	Config Config
	// Dirty, PSF (peak 1 at the centre), Model (clean components),
	// Residual and Restored (model convolved with Beam plus residual).
	Dirty, PSF, Model, Residual, Restored *Image
	// Beam is the restoring beam fitted to the PSF main lobe.
	Beam Beam
	// Components are the non-zero model pixels.
	Components []Component
	// Iterations counts minor-cycle iterations, MajorCycles the
	// Cotton–Schwab major cycles (1 for Högbom).
	Iterations, MajorCycles int
	// RMS is the robust rms of the residual; Peak the maximum of the
	// restored image; Threshold the last stopping threshold used.
	RMS, Peak, Threshold float64
	// TheoreticalNoise is the expected image rms from the weights (valid
	// when Vis.Weight is 1/sigma^2).
	TheoreticalNoise float64
	// MaxSidelobe is the largest |PSF| outside the main lobe.
	MaxSidelobe float64
	// Features and Choice are set when Config.Deconvolver is auto;
	// Deconvolver is the algorithm that ran.
	Features    *Features
	Choice      *Choice
	Deconvolver string
	// Scales are the multiscale per-scale component counts and fluxes
	// (multiscale only).
	Scales []ScaleStats
	// Model1 and Residual1 are the second Taylor term's model and residual
	// (mtmfs only; see [Result.SpectralIndex]) about RefFreqHz, the centre
	// of the band.
	Model1, Residual1 *Image
	RefFreqHz         float64
	// Gridded and Dropped count visibilities used and outside the grid.
	Gridded, Dropped int
	// Timings break the run down by stage.
	Timings Timings
}

type imager struct {
	ms   *MultiscaleConfig // set for multiscale minor cycles
	cfg  Config
	gr   *gridder
	vis  *Vis
	norm float64
	tm   *Timings
}

// image grids data (nil = PSF), transforms and corrects into out
// (unnormalised).
func (m *imager) image(data []complex128, out []float64) {
	t0 := time.Now()
	grid := make([]complex128, m.gr.g*m.gr.g)
	m.gr.grid(data, grid)
	t1 := time.Now()
	m.gr.toImage(grid, out)
	m.tm.Gridding += t1.Sub(t0)
	m.tm.FFT += time.Since(t1)
}

// Reconstruct images vis: weights, PSF, dirty image, restoring beam,
// deconvolution (cfg.Deconvolver) and restoration.
func Reconstruct(ctx context.Context, vis *Vis, cfg *Config) (*Result, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := vis.validate(); err != nil {
		return nil, err
	}
	k, err := NewKaiserBessel(c.KernelWidth, c.KernelOversample, c.Padding)
	if err != nil {
		return nil, err
	}
	res := &Result{Config: c}
	t0 := time.Now()
	gr, err := newGridder(vis, c, k)
	if err != nil {
		return nil, err
	}
	res.Timings.Weighting = time.Since(t0)
	m := &imager{cfg: c, gr: gr, vis: vis, tm: &res.Timings}
	n := c.ImageSize
	// The PSF is imaged at twice the image side (when that fits in
	// memory) so that CLEAN can subtract it around a source anywhere.
	pm := m
	if n <= MaxFullPSFSize {
		pm = &imager{cfg: c, gr: gr.doubled(), vis: vis, tm: &res.Timings}
	}
	pn := pm.gr.n
	bigPSF := NewImage(pn, c.CellArcsec)
	pm.image(nil, bigPSF.Pix)
	pnorm := bigPSF.Pix[(pn/2)*pn+pn/2]
	if !(pnorm > 0) {
		return nil, fmt.Errorf("%w: PSF peak is %v (all weights zero?)", ErrInput, pnorm)
	}
	for i := range bigPSF.Pix {
		bigPSF.Pix[i] /= pnorm
	}
	bigPSF.Pix[(pn/2)*pn+pn/2] = 1
	psf := bigPSF
	if pn != n {
		psf = NewImage(n, c.CellArcsec)
		off := (pn - n) / 2
		for y := 0; y < n; y++ {
			copy(psf.Pix[y*n:(y+1)*n], bigPSF.Pix[(y+off)*pn+off:(y+off)*pn+off+n])
		}
	}
	// The dirty image's normalisation: the PSF peak of the n-side grid,
	// computed from the weights without imaging it again.
	m.norm = gr.psfPeak()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dirty := NewImage(n, c.CellArcsec)
	m.image(vis.Data, dirty.Pix)
	for i := range dirty.Pix {
		dirty.Pix[i] /= m.norm
	}
	res.PSF, res.Dirty = psf, dirty
	res.TheoreticalNoise = gr.theoreticalNoise()
	for _, w := range gr.iw {
		if w != 0 {
			res.Gridded++
		}
	}
	res.Dropped = gr.dropped
	beam, err := FitBeam(psf)
	if err != nil {
		return nil, err
	}
	res.Beam = beam
	res.MaxSidelobe = maxSidelobe(psf, beam)

	model := NewImage(n, c.CellArcsec)
	residual := &Image{N: n, CellArcsec: c.CellArcsec, Pix: append([]float64(nil), dirty.Pix...)}
	tc := time.Now()
	before := res.Timings.Gridding + res.Timings.FFT
	res.Deconvolver = c.Deconvolver
	if c.Deconvolver == DeconvAuto {
		f, err := MeasureFeatures(dirty, psf, beam, FractionalBandwidth(vis.FreqHz))
		if err != nil {
			return nil, err
		}
		ch := Choose(f)
		res.Features, res.Choice, res.Deconvolver = &f, &ch, ch.Deconvolver
		if ch.MGain > 0 && cfg != nil && cfg.MGain == 0 {
			m.cfg.MGain = ch.MGain
		}
	}
	switch res.Deconvolver {
	case DeconvHogbom:
		err = m.hogbom(ctx, residual, bigPSF, model, res)
	case DeconvCottonSchwab:
		err = m.cottonSchwab(ctx, residual, bigPSF, model, res)
	case DeconvClark:
		err = m.majorCycles(ctx, residual, bigPSF, model, res, true)
	case DeconvMultiscale:
		err = m.multiscale(ctx, residual, bigPSF, model, res)
	case DeconvMTMFS:
		err = m.mtmfs(ctx, residual, bigPSF, model, res)
	}
	// Major cycles' re-imaging is booked under gridding and FFT.
	res.Timings.Clean = time.Since(tc) - res.Timings.Degrid - (res.Timings.Gridding + res.Timings.FFT - before)
	if err != nil {
		return nil, err
	}
	tr := time.Now()
	restored, err := Restore(model, residual, beam)
	if err != nil {
		return nil, err
	}
	res.Timings.Restore = time.Since(tr)
	res.Model, res.Residual, res.Restored = model, residual, restored
	res.RMS = RobustRMS(residual.Pix)
	res.Peak, _, _ = restored.Max()
	for i, f := range model.Pix {
		if f != 0 {
			res.Components = append(res.Components, Component{X: i % n, Y: i / n, Flux: f})
		}
	}
	return res, nil
}

func (m *imager) threshold(residual *Image) float64 {
	t := m.cfg.Threshold
	if !m.cfg.NoNSigma {
		t = math.Max(t, m.cfg.NSigma*RobustRMS(residual.Pix))
	}
	return t
}

// hogbom cleans in image space only. The nsigma threshold is re-measured
// whenever the minor cycle stops, and cleaning continues while it drops
// (sidelobes of bright sources inflate the first estimate).
func (m *imager) hogbom(ctx context.Context, residual, psf, model *Image, res *Result) error {
	for stint := 0; stint < 50 && res.Iterations < m.cfg.Niter; stint++ {
		thr := m.threshold(residual)
		if stint > 0 && thr >= res.Threshold*0.99 {
			break
		}
		res.Threshold = thr
		it, _, err := Hogbom(ctx, residual, psf, model, CleanConfig{Gain: m.cfg.Gain, Threshold: thr, Niter: m.cfg.Niter - res.Iterations, Workers: m.cfg.Workers})
		res.Iterations += it
		if err != nil {
			return err
		}
		if it == 0 {
			break
		}
	}
	res.MajorCycles = 1
	return nil
}

// cottonSchwab alternates Högbom minor cycles (down to (1-mgain) of the
// cycle's starting peak) with major cycles that predict the model's
// visibilities by degridding, subtract them from the data and re-image the
// residual.
func (m *imager) cottonSchwab(ctx context.Context, residual, psf, model *Image, res *Result) error {
	return m.majorCycles(ctx, residual, psf, model, res, false)
}

// majorCycles runs Cotton–Schwab major cycles around Högbom minor cycles
// or, with clark, Clark minor cycles on the pixel list with a PSF patch.
func (m *imager) majorCycles(ctx context.Context, residual, psf, model *Image, res *Result, clark bool) error {
	var patch int
	var outside float64
	if clark {
		patch, outside = clarkPatch(psf, res.Beam, residual.N)
	}
	resid := make([]complex128, len(m.vis.Data))
	pred := make([]complex128, len(m.vis.Data))
	for major := 0; major < m.cfg.MaxMajorCycles && res.Iterations < m.cfg.Niter; major++ {
		thr := m.threshold(residual)
		res.Threshold = thr
		peak := 0.0
		for _, v := range residual.Pix {
			peak = math.Max(peak, math.Abs(v))
		}
		if peak < thr || peak == 0 {
			break
		}
		cycle := math.Max(thr, (1-m.cfg.MGain)*peak)
		var it int
		var err error
		switch {
		case m.ms != nil:
			var st []ScaleStats
			mc := *m.ms
			mc.Threshold, mc.Niter = cycle, m.cfg.Niter-res.Iterations
			it, _, st, err = MultiscaleClean(ctx, residual, psf, model, mc)
			res.Scales = mergeScaleStats(res.Scales, st)
		case clark:
			// Clark: below the largest sidelobe outside the patch the
			// patch no longer models the PSF well enough.
			cycle = math.Max(cycle, outside*peak)
			it, err = Clark(ctx, residual, psf, model, CleanConfig{Gain: m.cfg.Gain, Threshold: cycle, Niter: m.cfg.Niter - res.Iterations}, patch)
		default:
			it, _, err = Hogbom(ctx, residual, psf, model, CleanConfig{Gain: m.cfg.Gain, Threshold: cycle, Niter: m.cfg.Niter - res.Iterations, Workers: m.cfg.Workers})
		}
		res.Iterations += it
		if err != nil {
			return err
		}
		if it == 0 {
			break
		}
		td := time.Now()
		m.gr.degrid(model.Pix, pred)
		for i, d := range m.vis.Data {
			resid[i] = d - pred[i]
		}
		m.tm.Degrid += time.Since(td)
		m.image(resid, residual.Pix)
		for i := range residual.Pix {
			residual.Pix[i] /= m.norm
		}
		res.MajorCycles++
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// FractionalBandwidth is the bandwidth covered by channels at freqs
// (assumed evenly spaced, each as wide as the spacing) over the centre
// frequency; 0 for one channel.
func FractionalBandwidth(freqs []float64) float64 {
	if len(freqs) < 2 {
		return 0
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, f := range freqs {
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	d := (hi - lo) / float64(len(freqs)-1)
	return (hi - lo + d) / ((hi + lo) / 2)
}

// maxSidelobe is the largest |psf| outside the main lobe, taken as the
// region where the fitted beam exceeds 1 %.
func maxSidelobe(psf *Image, b Beam) float64 {
	qa, qb, qc := b.quadForm(psf.CellArcsec)
	n, c := psf.N, psf.N/2
	best := 0.0
	for y := 0; y < n; y++ {
		dy := float64(y - c)
		for x := 0; x < n; x++ {
			dx := float64(x - c)
			if qa*dx*dx+2*qb*dx*dy+qc*dy*dy < math.Ln10*2 {
				continue
			}
			best = math.Max(best, math.Abs(psf.Pix[y*n+x]))
		}
	}
	return best
}

// FitPeak refines the local maximum at or next to pixel (x, y): it moves to
// the largest of the 3×3 neighbours, then fits a parabola to the logarithm
// of the pixel values along each axis (exact for a Gaussian beam). It
// returns the sub-pixel position and the peak value; when the neighbours
// are not positive it returns the pixel itself.
func FitPeak(im *Image, x, y int) (xf, yf, peak float64) {
	n := im.N
	for step := 0; step < 4; step++ {
		bx, by := x, y
		for dy := -1; dy <= 1; dy++ {
			for dx := -1; dx <= 1; dx++ {
				nx, ny := x+dx, y+dy
				if nx >= 0 && ny >= 0 && nx < n && ny < n && im.At(nx, ny) > im.At(bx, by) {
					bx, by = nx, ny
				}
			}
		}
		if bx == x && by == y {
			break
		}
		x, y = bx, by
	}
	xf, yf, peak = float64(x), float64(y), im.At(x, y)
	if x < 1 || y < 1 || x >= n-1 || y >= n-1 {
		return
	}
	c := im.At(x, y)
	l, r, d, u := im.At(x-1, y), im.At(x+1, y), im.At(x, y-1), im.At(x, y+1)
	if c <= 0 || l <= 0 || r <= 0 || d <= 0 || u <= 0 {
		return
	}
	lc, ll, lr, ld, lu := math.Log(c), math.Log(l), math.Log(r), math.Log(d), math.Log(u)
	ax, ay := ll-2*lc+lr, ld-2*lc+lu
	if ax >= 0 || ay >= 0 {
		return
	}
	ox, oy := 0.5*(ll-lr)/ax, 0.5*(ld-lu)/ay
	if math.Abs(ox) > 1 || math.Abs(oy) > 1 {
		return
	}
	lp := lc - 0.25*(ll-lr)*ox - 0.25*(ld-lu)*oy
	return float64(x) + ox, float64(y) + oy, math.Exp(lp)
}

// multiscale runs multiscale CLEAN minor cycles (scales from the config,
// or 0, 2 and 4 beam widths) inside Cotton–Schwab major cycles.
func (m *imager) multiscale(ctx context.Context, residual, psf, model *Image, res *Result) error {
	m.ms = &MultiscaleConfig{Scales: m.cfg.Scales, SmallScaleBias: m.cfg.SmallScaleBias, Gain: m.cfg.Gain,
		BeamPixels: res.Beam.MajorArcsec / residual.CellArcsec, Workers: m.cfg.Workers}
	if _, err := m.ms.scales(); err != nil {
		return err
	}
	defer func() { m.ms = nil }()
	return m.majorCycles(ctx, residual, psf, model, res, false)
}

func mergeScaleStats(acc, st []ScaleStats) []ScaleStats {
	if acc == nil {
		return append([]ScaleStats(nil), st...)
	}
	for i := range st {
		if i < len(acc) {
			acc[i].Components += st[i].Components
			acc[i].FluxJy += st[i].FluxJy
		}
	}
	return acc
}
