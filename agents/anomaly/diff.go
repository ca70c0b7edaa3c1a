package anomaly

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// Type is the kind of an anomaly.
type Type string

// Anomaly types.
const (
	// NewSource is a source present in epoch 2 and absent in epoch 1.
	NewSource Type = "new_source"
	// Disappeared is a source present in epoch 1 and absent in epoch 2.
	Disappeared Type = "disappeared"
	// Variable is a source in both epochs whose flux changed beyond the
	// Vs and m thresholds.
	Variable Type = "variable"
	// Artefact is a significant feature that is not a beam-shaped sky
	// source (a glitch narrower than the beam, or a difference residual on
	// a steady source).
	Artefact Type = "artefact"
)

// Severity grades an anomaly for follow-up.
type Severity string

// Severities, lowest first.
const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Anomaly is one reported change between epochs.
type Anomaly struct {
	ID   int  `json:"id"`
	Type Type `json:"type"`
	// Name is an IAU-style position name, e.g. J120002.95+200012.2.
	Name string  `json:"name"`
	RA   float64 `json:"ra_deg"`
	Dec  float64 `json:"dec_deg"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
	// Significance is in sigmas: |Vs| for catalogue changes, the SNR in the
	// difference image for features found only there, the single-epoch
	// SNR for artefacts.
	Significance float64 `json:"significance"`
	// Severity: artefacts are low; new and disappeared sources are
	// critical from 20σ, high from 10σ, else medium; variables are high
	// from |Vs| 20 with |m| >= 0.5, medium from |Vs| 10, else low.
	Severity    Severity `json:"severity"`
	Description string   `json:"description"`
	// Peak1 and Peak2 are the peak brightness (Jy/beam) in each epoch,
	// fitted or forced at the position; Err1 and Err2 their errors.
	Peak1 float64 `json:"peak1_jy_beam"`
	Peak2 float64 `json:"peak2_jy_beam"`
	Err1  float64 `json:"err1_jy_beam"`
	Err2  float64 `json:"err2_jy_beam"`
	// Vs = (Peak2-Peak1)/sqrt(Err1²+Err2²) and M = 2(Peak2-Peak1)/(Peak1+Peak2).
	Vs float64 `json:"vs"`
	M  float64 `json:"m"`
	// DiffSNR is the SNR of the matching feature in the difference image
	// (signed; 0 if none was found there).
	DiffSNR float64 `json:"diff_snr"`
	// Component1 and Component2 are catalogue IDs in each epoch (0 when the
	// flux was forced).
	Component1 int `json:"component1,omitempty"`
	Component2 int `json:"component2,omitempty"`
}

// DiffConfig configures a two-epoch comparison. Zero values take the
// documented defaults (the VAST pipeline's).
type DiffConfig struct {
	// Finder configures source finding in each epoch and in the difference
	// image.
	Finder FinderConfig
	// MinVs is the |Vs| threshold for a variable (default 4.3).
	MinVs float64
	// MinM is the |m| threshold for a variable (default 0.26).
	MinM float64
	// NewSourceSigma is the Vs a source missing from one epoch needs to be
	// reported new or disappeared (default Finder.SeedSigma, VAST's
	// new_source_min_sigma 5).
	NewSourceSigma float64
	// MatchRadiusArcsec is the cross-match radius (default the beam major
	// axis FWHM).
	MatchRadiusArcsec float64
	// SystematicFraction is a flux-scale error added in quadrature to every
	// peak error, as a fraction of the peak (default 0: no calibration
	// error; VLASS's flux scale is good to about 0.03).
	SystematicFraction float64
	// ArtefactWidth flags a component whose fitted minor axis is narrower
	// than this fraction of the beam minor axis as an artefact (default 0.5).
	ArtefactWidth float64
}

func (c *DiffConfig) withDefaults(beam Beam) (DiffConfig, error) {
	var o DiffConfig
	if c != nil {
		o = *c
	}
	f, err := o.Finder.withDefaults()
	if err != nil {
		return o, err
	}
	o.Finder = f
	if o.MinVs == 0 {
		o.MinVs = 4.3
	}
	if o.MinM == 0 {
		o.MinM = 0.26
	}
	if o.NewSourceSigma == 0 {
		o.NewSourceSigma = f.SeedSigma
	}
	if o.MatchRadiusArcsec == 0 {
		o.MatchRadiusArcsec = beam.MajArcsec
	}
	if o.ArtefactWidth == 0 {
		o.ArtefactWidth = 0.5
	}
	switch {
	case !(o.MinVs >= 0) || math.IsInf(o.MinVs, 0):
		return o, fmt.Errorf("%w: MinVs = %v: must be >= 0 and finite", ErrBadConfig, o.MinVs)
	case !(o.MinM >= 0) || o.MinM > 2:
		return o, fmt.Errorf("%w: MinM = %v: must be within [0, 2]", ErrBadConfig, o.MinM)
	case !(o.NewSourceSigma > 0):
		return o, fmt.Errorf("%w: NewSourceSigma = %v: must be positive", ErrBadConfig, o.NewSourceSigma)
	case !(o.MatchRadiusArcsec > 0) || math.IsInf(o.MatchRadiusArcsec, 0):
		return o, fmt.Errorf("%w: MatchRadiusArcsec = %v: must be positive and finite", ErrBadConfig, o.MatchRadiusArcsec)
	case !(o.SystematicFraction >= 0) || o.SystematicFraction > 1:
		return o, fmt.Errorf("%w: SystematicFraction = %v: must be within [0, 1]", ErrBadConfig, o.SystematicFraction)
	case !(o.ArtefactWidth >= 0) || o.ArtefactWidth > 1:
		return o, fmt.Errorf("%w: ArtefactWidth = %v: must be within [0, 1]", ErrBadConfig, o.ArtefactWidth)
	}
	return o, nil
}

// Comparison is the result of comparing two epochs.
type Comparison struct {
	Epoch1 *Catalogue `json:"epoch1"`
	Epoch2 *Catalogue `json:"epoch2"`
	// Difference holds the components found in the difference image
	// epoch2 - epoch1 (negative Peak for fading features).
	Difference []Component `json:"difference"`
	// Matched is the number of sources found in both epochs.
	Matched   int       `json:"matched"`
	Anomalies []Anomaly `json:"anomalies"`
	// Config is the configuration with defaults applied.
	Config DiffConfig `json:"-"`
}

// Compare finds sources in both epochs (which must share grid and beam),
// cross-matches them, forces photometry where a source is missing from one
// epoch, searches the difference image for features in either sign, and
// classifies every change as a new source, a disappeared source, a
// variable (|Vs| >= MinVs and |m| >= MinM) or an artefact.
func Compare(ctx context.Context, e1, e2 *Image, cfg *DiffConfig) (*Comparison, error) {
	if err := e1.Validate("epoch 1"); err != nil {
		return nil, err
	}
	if err := e2.Validate("epoch 2"); err != nil {
		return nil, err
	}
	if err := sameGrid(e1, e2); err != nil {
		return nil, err
	}
	b1, b2 := e1.Beam, e2.Beam
	if math.Abs(b1.MajArcsec-b2.MajArcsec) > 0.01*b1.MajArcsec || math.Abs(b1.MinArcsec-b2.MinArcsec) > 0.01*b1.MinArcsec {
		return nil, fmt.Errorf("%w: beams differ: epoch 1 %+v, epoch 2 %+v (convolve to a common beam first)", ErrMismatch, b1, b2)
	}
	c, err := cfg.withDefaults(b1)
	if err != nil {
		return nil, err
	}
	cat1, err := Find(ctx, e1, &c.Finder)
	if err != nil {
		return nil, fmt.Errorf("epoch 1: %w", err)
	}
	cat2, err := Find(ctx, e2, &c.Finder)
	if err != nil {
		return nil, fmt.Errorf("epoch 2: %w", err)
	}
	m1, m2 := cat1.Maps, cat2.Maps
	n := len(e1.Pix)
	diff := &Image{Width: e1.Width, Height: e1.Height, Pix: make([]float64, n), WCS: e1.WCS, Beam: e1.Beam}
	neg := &Image{Width: e1.Width, Height: e1.Height, Pix: make([]float64, n), WCS: e1.WCS, Beam: e1.Beam}
	dm := &Maps{Width: e1.Width, Height: e1.Height, Background: make([]float64, n), RMS: make([]float64, n)}
	for i := range diff.Pix {
		d := (e2.Pix[i] - m2.Background[i]) - (e1.Pix[i] - m1.Background[i])
		diff.Pix[i], neg.Pix[i] = d, -d
		dm.RMS[i] = math.Hypot(m1.RMS[i], m2.RMS[i])
	}
	pos, err := FindWithMaps(ctx, diff, dm, &c.Finder)
	if err != nil {
		return nil, fmt.Errorf("difference image: %w", err)
	}
	negc, err := FindWithMaps(ctx, neg, dm, &c.Finder)
	if err != nil {
		return nil, fmt.Errorf("negative difference image: %w", err)
	}
	var dcomps []Component
	dcomps = append(dcomps, pos.Components...)
	for _, d := range negc.Components {
		d.Peak, d.Flux, d.SNR = -d.Peak, -d.Flux, -d.SNR
		dcomps = append(dcomps, d)
	}
	for i := range dcomps {
		dcomps[i].ID = i + 1
	}

	out := &Comparison{Epoch1: cat1, Epoch2: cat2, Difference: dcomps, Config: c}
	pairs, err := Match(coords(cat1.Components), coords(cat2.Components), c.MatchRadiusArcsec)
	if err != nil {
		return nil, err
	}
	out.Matched = len(pairs)
	in1 := make([]bool, len(cat1.Components))
	in2 := make([]bool, len(cat2.Components))
	var an []Anomaly
	sys := func(p float64) float64 { return c.SystematicFraction * math.Abs(p) }
	narrow := func(k Component) bool {
		return k.Fit == FitGaussian && k.MinArcsec < c.ArtefactWidth*e1.Beam.MinArcsec
	}
	for _, p := range pairs {
		in1[p.A], in2[p.B] = true, true
		k1, k2 := cat1.Components[p.A], cat2.Components[p.B]
		a := Anomaly{Peak1: k1.Peak, Peak2: k2.Peak, Err1: math.Hypot(k1.ErrPeak, sys(k1.Peak)), Err2: math.Hypot(k2.ErrPeak, sys(k2.Peak)),
			Component1: k1.ID, Component2: k2.ID, X: (k1.X + k2.X) / 2, Y: (k1.Y + k2.Y) / 2}
		a.Vs, a.M = vsM(a)
		switch {
		case narrow(k1) || narrow(k2):
			k := k2
			if narrow(k1) {
				k = k1
			}
			a.Type, a.Significance = Artefact, k.SNR
		case math.Abs(a.Vs) >= c.MinVs && math.Abs(a.M) >= c.MinM:
			a.Type, a.Significance = Variable, math.Abs(a.Vs)
		default:
			continue
		}
		an = append(an, a)
	}
	// Sources in one epoch only: force photometry in the other.
	single := func(k Component, epoch int) {
		other, om := e1, m1
		if epoch == 1 {
			other, om = e2, m2
		}
		// Both epochs are measured the same way, forced at the detected
		// position: the fitted amplitude of a faint detection is biased
		// up (it was selected on an upward excursion and the fit follows
		// the noise), which would inflate Vs against a forced value.
		own, ownm := e2, m2
		if epoch == 1 {
			own, ownm = e1, m1
		}
		f, r := forced(other, om, k.X, k.Y)
		g, q := forced(own, ownm, k.X, k.Y)
		a := Anomaly{X: k.X, Y: k.Y}
		if epoch == 2 {
			a.Peak1, a.Err1, a.Peak2, a.Err2, a.Component2 = f, math.Hypot(r, sys(f)), g, math.Hypot(q, sys(g)), k.ID
		} else {
			a.Peak1, a.Err1, a.Component1, a.Peak2, a.Err2 = g, math.Hypot(q, sys(g)), k.ID, f, math.Hypot(r, sys(f))
		}
		a.Vs, a.M = vsM(a)
		switch {
		case narrow(k):
			a.Type, a.Significance = Artefact, k.SNR
		case epoch == 2 && a.Vs >= c.NewSourceSigma:
			a.Type, a.Significance = NewSource, a.Vs
		case epoch == 1 && -a.Vs >= c.NewSourceSigma:
			a.Type, a.Significance = Disappeared, -a.Vs
		case f >= c.Finder.FloodSigma*r && math.Abs(a.Vs) >= c.MinVs && math.Abs(a.M) >= c.MinM:
			// Present in both epochs, just below the seed in one: a
			// variable. (Without the flood-level check a faint steady
			// source caught on an upward noise excursion in one epoch and
			// forced on a downward one in the other would pass for one.)
			a.Type, a.Significance = Variable, math.Abs(a.Vs)
		default:
			return
		}
		an = append(an, a)
	}
	for i, k := range cat1.Components {
		if !in1[i] {
			single(k, 1)
		}
	}
	for i, k := range cat2.Components {
		if !in2[i] {
			single(k, 2)
		}
	}
	// Difference-image features: confirm catalogue anomalies, or report
	// what only the difference shows.
	wcs := e1.WCS
	for i := range an {
		an[i].RA, an[i].Dec = wcs.PixToWorld(an[i].X, an[i].Y)
	}
	// Sources seen in both epochs: a difference feature on one of them that
	// the catalogue comparison did not flag is a subtraction residual.
	var steady []Component
	for _, p := range pairs {
		steady = append(steady, cat1.Components[p.A], cat2.Components[p.B])
	}
	for _, d := range dcomps {
		dc := Coord{d.RA, d.Dec}
		best, bestSep := -1, math.Inf(1)
		for i := range an {
			if s := SeparationArcsec(dc, Coord{an[i].RA, an[i].Dec}); s <= c.MatchRadiusArcsec && s < bestSep {
				best, bestSep = i, s
			}
		}
		if best >= 0 {
			if math.Abs(d.SNR) > math.Abs(an[best].DiffSNR) {
				an[best].DiffSNR = d.SNR
			}
			continue
		}
		near := false
		for _, k := range steady {
			if SeparationArcsec(dc, Coord{k.RA, k.Dec}) <= c.MatchRadiusArcsec {
				near = true
				break
			}
		}
		f1, r1 := forced(e1, m1, d.X, d.Y)
		f2, r2 := forced(e2, m2, d.X, d.Y)
		a := Anomaly{X: d.X, Y: d.Y, RA: d.RA, Dec: d.Dec, Peak1: f1, Err1: math.Hypot(r1, sys(f1)), Peak2: f2, Err2: math.Hypot(r2, sys(f2)), DiffSNR: d.SNR}
		a.Vs, a.M = vsM(a)
		switch {
		case near || narrow(d):
			a.Type, a.Significance = Artefact, math.Abs(d.SNR)
		case math.Abs(a.Vs) < c.NewSourceSigma:
			// The fit in the difference image follows the noise up; the
			// forced measurement must confirm the change as well.
			continue
		case d.SNR > 0:
			a.Type, a.Significance = NewSource, d.SNR
		default:
			a.Type, a.Significance = Disappeared, -d.SNR
		}
		an = append(an, a)
	}
	for i := range an {
		a := &an[i]
		a.Name = IAUName(a.RA, a.Dec)
		a.Severity = severity(*a)
		a.Description = describe(*a, e1.Beam)
	}
	slices.SortStableFunc(an, func(x, y Anomaly) int {
		switch {
		case x.Significance > y.Significance:
			return -1
		case x.Significance < y.Significance:
			return 1
		}
		return 0
	})
	for i := range an {
		an[i].ID = i + 1
	}
	out.Anomalies = an
	return out, nil
}

func coords(cs []Component) []Coord {
	out := make([]Coord, len(cs))
	for i, k := range cs {
		out[i] = Coord{k.RA, k.Dec}
	}
	return out
}

// VsM returns the two-epoch variability statistic Vs = (s2-s1)/√(e1²+e2²)
// and the modulation index m = 2(s2-s1)/(s1+s2) (Mooley et al. 2016, as in
// the VAST pipeline). m is NaN when s1+s2 is zero.
func VsM(s1, e1, s2, e2 float64) (vs, m float64) {
	d := s2 - s1
	vs = d / math.Hypot(e1, e2)
	if s1+s2 == 0 {
		return vs, math.NaN()
	}
	return vs, 2 * d / (s1 + s2)
}

func vsM(a Anomaly) (float64, float64) {
	vs, m := VsM(a.Peak1, a.Err1, a.Peak2, a.Err2)
	if math.IsNaN(m) {
		m = 0
	}
	// A fading source forced near zero in epoch 2 has m → 2; a source whose
	// forced flux is negative can push |m| past 2, which means "appeared"
	// or "vanished" as much as m can say.
	return vs, math.Max(-2, math.Min(2, m))
}

// forced returns the background-subtracted brightness of im at (x, y)
// (bilinear) and the local rms.
func forced(im *Image, m *Maps, x, y float64) (float64, float64) {
	w, h := im.Width, im.Height
	x = math.Max(0, math.Min(x, float64(w-1)))
	y = math.Max(0, math.Min(y, float64(h-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	v := func(xx, yy int) float64 { p := yy*w + xx; return im.Pix[p] - m.Background[p] }
	r := func(xx, yy int) float64 { return m.RMS[yy*w+xx] }
	lerp := func(f func(int, int) float64) float64 {
		return (f(x0, y0)*(1-fx)+f(x1, y0)*fx)*(1-fy) + (f(x0, y1)*(1-fx)+f(x1, y1)*fx)*fy
	}
	return lerp(v), lerp(r)
}

func severity(a Anomaly) Severity {
	s := a.Significance
	switch a.Type {
	case Artefact:
		return SeverityLow
	case NewSource, Disappeared:
		switch {
		case s >= 20:
			return SeverityCritical
		case s >= 10:
			return SeverityHigh
		}
		return SeverityMedium
	default:
		switch {
		case s >= 20 && math.Abs(a.M) >= 0.5:
			return SeverityHigh
		case s >= 10:
			return SeverityMedium
		}
		return SeverityLow
	}
}

func describe(a Anomaly, beam Beam) string {
	mj := func(v float64) string { return fmt.Sprintf("%.3g", v*1e3) }
	switch a.Type {
	case NewSource:
		return fmt.Sprintf("new source %s: %s mJy/beam in epoch 2, %s ± %s mJy/beam at that position in epoch 1 (Vs %.1f)", a.Name, mj(a.Peak2), mj(a.Peak1), mj(a.Err1), a.Vs)
	case Disappeared:
		return fmt.Sprintf("source %s disappeared: %s mJy/beam in epoch 1, %s ± %s mJy/beam in epoch 2 (Vs %.1f)", a.Name, mj(a.Peak1), mj(a.Peak2), mj(a.Err2), a.Vs)
	case Variable:
		return fmt.Sprintf("variable %s: %s -> %s mJy/beam (Vs %.1f, m %.2f)", a.Name, mj(a.Peak1), mj(a.Peak2), a.Vs, a.M)
	}
	if a.Component1 == 0 && a.Component2 == 0 {
		return fmt.Sprintf("artefact %s: %.1f sigma feature only in the difference image, on a steady source or narrower than the beam", a.Name, a.DiffSNR)
	}
	return fmt.Sprintf("artefact %s: %.1f sigma feature narrower than the %.2f arcsec beam (a glitch, not sky emission)", a.Name, a.Significance, beam.MinArcsec)
}

// IAUName formats a position as JHHMMSS.ss+DDMMSS.s (truncated, as IAU
// names are).
func IAUName(ra, dec float64) string {
	if math.IsNaN(ra) || math.IsNaN(dec) {
		return "J?"
	}
	h := ra / 15
	hh := int(h)
	mm := int((h - float64(hh)) * 60)
	ss := math.Floor(((h-float64(hh))*3600-float64(mm)*60)*100) / 100
	sign := '+'
	if dec < 0 {
		sign = '-'
	}
	d := math.Abs(dec)
	dd := int(d)
	dm := int((d - float64(dd)) * 60)
	ds := math.Floor(((d-float64(dd))*3600-float64(dm)*60)*10) / 10
	return fmt.Sprintf("J%02d%02d%05.2f%c%02d%02d%04.1f", hh, mm, ss, sign, dd, dm, ds)
}
