package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/alphacal"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/fits"
	"github.com/cosmic-horizons/horizons/agents/imaging"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Epoch is one observation of the field through the AlphaCal and imaging
// stages.
type Epoch struct {
	// Vis are the visibilities with RFI added and, after the AlphaCal
	// stage, flagged samples at weight 0.
	Vis *synth.Visibilities
	// Spectrum is the epoch's dynamic spectrum (one sample per
	// integration and channel) with its RFI truth.
	Spectrum *synth.DynamicSpectrum
	// Flags is the flagging result on Spectrum.
	Flags *alphacal.FlagResult
	// FlagScores compare Flags with the injected RFI.
	FlagScores alphacal.Scores
	// Imaging is the imaging result; Restored is re-restored with the
	// pipeline's common beam.
	Imaging *imaging.Result
}

// StageTiming is the wall time of one stage.
type StageTiming struct {
	Stage   string        `json:"stage"`
	Seconds float64       `json:"seconds"`
	Elapsed time.Duration `json:"-"`
}

// Result is what [Run] returns: both epochs, the comparison, the truth,
// the scores and the JSON documents (also written to Config.OutputDir when
// it is set).
type Result struct {
	// Config is the configuration with defaults applied (Progress
	// omitted).
	Config Config
	// Seed is the seed the run was made from.
	Seed int64
	// Epoch1 is the reference epoch, Epoch2 the new one.
	Epoch1, Epoch2 *Epoch
	// Beam is the common restoring beam of both epochs.
	Beam imaging.Beam
	// Truth lists every injected source with its kind (steady, transient,
	// variable) and per-epoch flux and SNR.
	Truth []synth.TruthSource
	// Comparison is the two-epoch comparison (catalogues of both epochs,
	// difference-image components and anomalies).
	Comparison *anomaly.Comparison
	// Summary holds the figures the command prints.
	Summary Summary
	// Images are the FITS products by file name (restored, residual and
	// PSF of epoch 2, the epoch-1 restored image and the difference).
	Images map[string]*fits.Image
	// Documents are the JSON documents by file name (catalogue, anomalies,
	// summary).
	Documents map[string][]byte
	// PNGs are the previews by file name.
	PNGs map[string][]byte
	// Artifacts are the files written into Config.OutputDir (none when it
	// is empty), relative to it.
	Artifacts []string
}

// Summary is the pipeline's report (the summary JSON document).
type Summary struct {
	Seed           int64          `json:"seed"`
	ImageSize      int            `json:"image_size"`
	CellArcsec     float64        `json:"cell_arcsec"`
	Visibilities   int            `json:"visibilities_per_epoch"`
	Flagger        string         `json:"flagger"`
	Timings        []StageTiming  `json:"stage_timings"`
	TotalSeconds   float64        `json:"total_seconds"`
	FlagFraction   [2]float64     `json:"flag_fraction"`
	RFIFraction    [2]float64     `json:"rfi_fraction"`
	FlagRecall     [2]float64     `json:"flag_recall"`
	FlagFPR        [2]float64     `json:"flag_fpr"`
	Deconvolver    string         `json:"deconvolver"`
	Choice         string         `json:"deconvolver_reason"`
	BeamArcsec     [3]float64     `json:"beam_arcsec_deg"`
	RMSJy          [2]float64     `json:"rms_jy_beam"`
	TheoreticalJy  [2]float64     `json:"theoretical_noise_jy_beam"`
	TruthSources   int            `json:"truth_sources_epoch2"`
	SourcesFound   int            `json:"sources_found_epoch2"`
	SourcesMatched int            `json:"sources_matched_epoch2"`
	Completeness   float64        `json:"completeness"`
	Reliability    float64        `json:"reliability"`
	FluxRatio      float64        `json:"median_flux_ratio"`
	Anomalies      int            `json:"anomalies"`
	AnomalyTypes   map[string]int `json:"anomaly_types"`
	TransientFound bool           `json:"transient_found"`
	VariableFound  bool           `json:"variable_found"`
}

// progressor turns stage-local fractions into weighted percent.
type progressor struct {
	fn   agents.ProgressFunc
	base float64
	w    float64
	name string
	last float64
}

func (p *progressor) start(name string) {
	off := 0.0
	for _, s := range Stages {
		if s.Name == name {
			p.base, p.w, p.name = off, s.Weight, name
			break
		}
		off += s.Weight
	}
	p.report(p.base, agents.StageNote(name, agents.StageStarted))
}

func (p *progressor) detail(frac float64, note string) {
	p.report(p.base+p.w*math.Max(0, math.Min(1, frac)), agents.StageNote(p.name, agents.StageStarted)+": "+note)
}

func (p *progressor) done() { p.report(p.base+p.w, agents.StageNote(p.name, agents.StageCompleted)) }

func (p *progressor) report(pct float64, note string) {
	pct = math.Max(pct, p.last)
	p.last = pct
	if p.fn != nil {
		p.fn(math.Min(100, pct), note)
	}
}

// Run runs the whole pipeline on synthetic data made from seed:
//
//  1. synthesis: two epochs of visibilities of the same sky (steady
//     sources, a variable, and a transient in epoch 2 only), each with a
//     dynamic spectrum whose RFI is also added to every baseline's
//     visibilities at the same integration and channel;
//  2. alphacal: flag each dynamic spectrum (SumThreshold + SIR, MAD or
//     none), score the flags against the injected RFI and apply them to
//     the visibilities (weight 0);
//  3. imaging: grid, FFT, PSF and CLEAN each epoch, then restore both with
//     a common beam;
//  4. anomaly: find sources in both epochs and in their difference,
//     classify changes, score against the truth;
//  5. outputs: FITS, PNG and JSON products, in memory and, when
//     Config.OutputDir is set, on disk.
//
// ctx cancels the run between and inside stages.
func Run(ctx context.Context, seed int64, cfg *Config) (*Result, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pr := &progressor{fn: c.Progress}
	c.Progress = nil
	res := &Result{Config: c, Seed: seed, Images: map[string]*fits.Image{}, Documents: map[string][]byte{}, PNGs: map[string][]byte{}}
	t0 := time.Now()
	stage := func(name string, f func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr.start(name)
		ts := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("pipeline: stage %s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		el := time.Since(ts)
		res.Summary.Seed, res.Summary.ImageSize, res.Summary.CellArcsec = res.Seed, c.ImageSize, c.CellArcsec
		res.Summary.Timings = append(res.Summary.Timings, StageTiming{Stage: name, Seconds: el.Seconds(), Elapsed: el})
		pr.done()
		return nil
	}
	steps := []struct {
		name string
		f    func() error
	}{
		{StageSynthesis, func() error { return synthesise(ctx, res, pr) }},
		{StageAlphaCal, func() error { return flag(ctx, res, pr) }},
		{StageImaging, func() error { return image(ctx, res, pr) }},
		{StageAnomaly, func() error { return detect(ctx, res, pr) }},
		{StageOutputs, func() error { return outputs(res, pr) }},
	}
	for _, s := range steps {
		if err := stage(s.name, s.f); err != nil {
			return nil, err
		}
	}
	res.Summary.TotalSeconds = time.Since(t0).Seconds()
	if err := res.finishSummary(); err != nil {
		return nil, err
	}
	return res, nil
}

// rng returns a deterministic generator for one purpose of one run.
func rng(seed int64, purpose uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x706970656c696e65^purpose))
}

const arcsecRad = math.Pi / (180 * 3600)

// sky draws the truth: steady point sources (log-uniform SNR), one
// variable and one transient, at least 12 beams (about 25″) apart inside
// the inner 60 % of the image.
func sky(c Config, seed int64, sigmaImg float64) ([]synth.TruthSource, error) {
	r := rng(seed, 1)
	half := 0.3 * float64(c.ImageSize) * c.CellArcsec
	sep := math.Min(25, half/2)
	n := c.Sources + 2
	var out []synth.TruthSource
	var pos [][2]float64
	for tries := 0; len(pos) < n; tries++ {
		if tries > 2000*n {
			return nil, fmt.Errorf("%w: Sources = %d: cannot place %d sources %.0f″ apart in a %d-pixel field of %g″ cells", ErrConfig, c.Sources, n, sep, c.ImageSize, c.CellArcsec)
		}
		l, m := (2*r.Float64()-1)*half, (2*r.Float64()-1)*half
		ok := true
		for _, p := range pos {
			if math.Hypot(p[0]-l, p[1]-m) < sep {
				ok = false
				break
			}
		}
		if ok {
			pos = append(pos, [2]float64{l, m})
		}
	}
	w := synth.WCS{RefRA: 180, RefDec: 34, CellDeg: c.CellArcsec / 3600}
	for i, p := range pos {
		s := synth.TruthSource{ID: i, X: float64(c.ImageSize/2) - p[0]/c.CellArcsec, Y: float64(c.ImageSize/2) + p[1]/c.CellArcsec,
			Sigma1: sigmaImg, Sigma2: sigmaImg, Factor: 1}
		s.RA, s.Dec = w.PixToWorld(-p[0]/c.CellArcsec, p[1]/c.CellArcsec)
		switch i {
		case n - 2:
			s.Kind, s.SNR1, s.SNR2 = synth.KindVariable, c.VariableSNR, c.VariableSNR*c.VariableFactor
			s.Factor = c.VariableFactor
		case n - 1:
			s.Kind, s.SNR1, s.SNR2 = synth.KindTransient, 0, c.TransientSNR
		default:
			snr := c.MinSNR * math.Exp(r.Float64()*math.Log(c.MaxSNR/c.MinSNR))
			s.Kind, s.SNR1, s.SNR2 = synth.KindSteady, snr, snr
		}
		s.Flux1, s.Flux2 = s.SNR1*sigmaImg, s.SNR2*sigmaImg
		s.Peak1, s.Peak2 = s.Flux1, s.Flux2
		out = append(out, s)
	}
	return out, nil
}

// components returns the epoch's sky model for synth (point sources).
func components(truth []synth.TruthSource, c Config, epoch int) []synth.SkyComponent {
	var out []synth.SkyComponent
	for _, s := range truth {
		f := s.Flux1
		if epoch == 2 {
			f = s.Flux2
		}
		if f == 0 {
			continue
		}
		l := (float64(c.ImageSize/2) - s.X) * c.CellArcsec
		m := (s.Y - float64(c.ImageSize/2)) * c.CellArcsec
		out = append(out, synth.SkyComponent{ID: s.ID, LArcsec: l, MArcsec: m, FluxJy: f})
	}
	return out
}

func synthesise(ctx context.Context, res *Result, pr *progressor) error {
	c := res.Config
	nb := c.Antennas * (c.Antennas - 1) / 2
	nvis := nb * c.Times * c.Channels
	sigmaVis := c.NoiseJy * math.Sqrt(float64(nvis))
	truth, err := sky(c, res.Seed, c.NoiseJy)
	if err != nil {
		return err
	}
	res.Truth = truth
	res.Summary.Visibilities = nvis
	for e := 1; e <= 2; e++ {
		pr.detail(float64(e-1)/2, fmt.Sprintf("epoch %d: %d visibilities and a %d × %d dynamic spectrum", e, nvis, c.Times, c.Channels))
		vc := &synth.VisConfig{
			Antennas: c.Antennas, DurationH: float64(c.Times-1) * c.IntegrationS / 3600, IntegrationS: c.IntegrationS,
			Channels: c.Channels, NoNoise: true, Sources: components(truth, c, e),
		}
		// The same seed gives both epochs the same array and uv coverage.
		vis, err := synth.NewVisibilities(vc, res.Seed)
		if err != nil {
			return err
		}
		if vis.Rows() != nb*c.Times {
			return fmt.Errorf("pipeline: synthesised %d rows, want %d", vis.Rows(), nb*c.Times)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// The calibrator's gain phase drifts by one radian over the track.
		sc := &synth.SpectrumConfig{Times: c.Times, Channels: c.Channels, IntegrationS: c.IntegrationS,
			GainPhaseRate: 1 / (float64(c.Times) * c.IntegrationS), RFI: c.RFI}
		ds, err := synth.NewDynamicSpectrum(sc, res.Seed*2+int64(e))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
		// Thermal noise, then the RFI of the dynamic spectrum on every
		// baseline at the same integration and channel (random phase per
		// baseline).
		nr := rng(res.Seed, 10+uint64(e))
		rfiAmp := make([]float64, c.Times*c.Channels)
		for _, in := range ds.Injections {
			for t := in.TimeStart; t < in.TimeEnd; t++ {
				for ch := in.ChanStart; ch < in.ChanEnd; ch++ {
					rfiAmp[t*c.Channels+ch] += in.Amp
				}
			}
		}
		w := 1 / (sigmaVis * sigmaVis)
		for row := 0; row < vis.Rows(); row++ {
			t := row / nb
			for ch := 0; ch < c.Channels; ch++ {
				i := row*c.Channels + ch
				vis.Data[i] += complex(sigmaVis*nr.NormFloat64(), sigmaVis*nr.NormFloat64())
				if a := rfiAmp[t*c.Channels+ch]; a > 0 {
					sn, cs := math.Sincos(2 * math.Pi * nr.Float64())
					a *= c.RFIScale * sigmaVis
					vis.Data[i] += complex(a*cs, a*sn)
				}
				vis.Weight[i] = w
			}
		}
		vis.SigmaJy = sigmaVis
		ep := &Epoch{Vis: vis, Spectrum: ds}
		if e == 1 {
			res.Epoch1 = ep
		} else {
			res.Epoch2 = ep
		}
	}
	return nil
}

func flag(ctx context.Context, res *Result, pr *progressor) error {
	c := res.Config
	nb := c.Antennas * (c.Antennas - 1) / 2
	res.Summary.Flagger = c.Flagger
	for i, ep := range []*Epoch{res.Epoch1, res.Epoch2} {
		pr.detail(float64(i)/2, fmt.Sprintf("epoch %d: flagging with %s", i+1, c.Flagger))
		ds := ep.Spectrum
		s := alphacal.Spectrum{Times: ds.Times, Channels: ds.Channels, Data: ds.Data}
		var fr *alphacal.FlagResult
		var err error
		switch c.Flagger {
		case FlaggerSumThreshold:
			fr, err = alphacal.Flag(ctx, s, nil)
		case FlaggerMAD:
			fr, err = alphacal.FlagMAD(ctx, s, 5)
		default:
			fr, err = alphacal.NoFlags(s)
		}
		if err != nil {
			return err
		}
		sc, err := alphacal.Score(fr.Mask, ds.Truth)
		if err != nil {
			return err
		}
		ep.Flags, ep.FlagScores = fr, sc
		flagged := 0
		for row := 0; row < ep.Vis.Rows(); row++ {
			t := row / nb
			for ch := 0; ch < c.Channels; ch++ {
				if fr.Mask[t*c.Channels+ch] {
					ep.Vis.Weight[row*c.Channels+ch] = 0
					flagged++
				}
			}
		}
		if flagged == len(ep.Vis.Data) {
			return fmt.Errorf("epoch %d: every visibility is flagged", i+1)
		}
		rfi := 0
		for _, v := range ds.Truth {
			if v {
				rfi++
			}
		}
		res.Summary.FlagFraction[i] = float64(flagged) / float64(len(ep.Vis.Data))
		res.Summary.RFIFraction[i] = float64(rfi) / float64(len(ds.Truth))
		res.Summary.FlagRecall[i] = finite(sc.Recall)
		res.Summary.FlagFPR[i] = finite(sc.FPR)
	}
	return nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func image(ctx context.Context, res *Result, pr *progressor) error {
	c := res.Config
	for i, ep := range []*Epoch{res.Epoch1, res.Epoch2} {
		pr.detail(float64(i)/2, fmt.Sprintf("epoch %d: gridding, FFT and %s deconvolution", i+1, c.Deconvolver))
		v := ep.Vis
		icfg := &imaging.Config{ImageSize: c.ImageSize, CellArcsec: c.CellArcsec, Deconvolver: c.Deconvolver, Niter: c.Niter}
		if c.Niter == 0 || c.Deconvolver == "none" {
			icfg.Deconvolver = imaging.DeconvNone
		}
		r, err := imaging.Reconstruct(ctx, &imaging.Vis{U: v.U, V: v.V, FreqHz: v.FreqHz, Data: v.Data, Weight: v.Weight}, icfg)
		if err != nil {
			return fmt.Errorf("epoch %d: %w", i+1, err)
		}
		ep.Imaging = r
		res.Summary.RMSJy[i] = r.RMS
		res.Summary.TheoreticalJy[i] = r.TheoreticalNoise
	}
	// A common restoring beam: the larger of the two fitted beams, so that
	// the difference image compares like with like.
	b1, b2 := res.Epoch1.Imaging.Beam, res.Epoch2.Imaging.Beam
	res.Beam = b1
	if b2.MajorArcsec*b2.MinorArcsec > b1.MajorArcsec*b1.MinorArcsec {
		res.Beam = b2
	}
	for _, ep := range []*Epoch{res.Epoch1, res.Epoch2} {
		r := ep.Imaging
		rest, err := imaging.Restore(r.Model, r.Residual, res.Beam)
		if err != nil {
			return err
		}
		r.Restored = rest
		r.Peak, _, _ = rest.Max()
	}
	r2 := res.Epoch2.Imaging
	res.Summary.Deconvolver = r2.Deconvolver
	if r2.Choice != nil {
		res.Summary.Choice = r2.Choice.Reason
	} else {
		res.Summary.Choice = "deconvolver " + r2.Deconvolver + " requested"
	}
	res.Summary.BeamArcsec = [3]float64{res.Beam.MajorArcsec, res.Beam.MinorArcsec, res.Beam.PADeg}
	return nil
}

// anomalyImage wraps a restored image for the anomaly package.
func anomalyImage(im *imaging.Image, b imaging.Beam, v *synth.Visibilities) *anomaly.Image {
	return &anomaly.Image{
		Width: im.N, Height: im.N, Pix: im.Pix,
		WCS:  anomaly.WCS{RefRA: v.Config.RADeg, RefDec: v.Config.DecDeg, RefX: float64(im.N / 2), RefY: float64(im.N / 2), CellDeg: im.CellArcsec / 3600},
		Beam: anomaly.Beam{MajArcsec: b.MajorArcsec, MinArcsec: b.MinorArcsec, PADeg: b.PADeg},
	}
}

func detect(ctx context.Context, res *Result, pr *progressor) error {
	pr.detail(0, "source finding in both epochs and the difference image")
	e1 := anomalyImage(res.Epoch1.Imaging.Restored, res.Beam, res.Epoch1.Vis)
	e2 := anomalyImage(res.Epoch2.Imaging.Restored, res.Beam, res.Epoch2.Vis)
	cmp, err := anomaly.Compare(ctx, e1, e2, nil)
	if err != nil {
		return err
	}
	res.Comparison = cmp
	pr.detail(0.8, "scoring against the truth")
	radius := res.Beam.MajorArcsec
	ev, err := anomaly.Evaluate(anomaly.References(res.Truth, 2), cmp.Epoch2.Components, radius)
	if err != nil {
		return err
	}
	s := &res.Summary
	s.TruthSources = len(ev.Truth)
	s.SourcesFound = len(cmp.Epoch2.Components)
	s.SourcesMatched = len(ev.Pairs)
	s.Completeness, _ = ev.Completeness(0)
	s.Completeness = finite(s.Completeness)
	s.Reliability = finite(ev.Reliability())
	s.FluxRatio, _ = ev.MedianFluxRatio(0)
	s.FluxRatio = finite(s.FluxRatio)
	s.Anomalies = len(cmp.Anomalies)
	s.AnomalyTypes = map[string]int{}
	for _, a := range cmp.Anomalies {
		s.AnomalyTypes[string(a.Type)]++
	}
	rec, n := anomaly.Recovery(res.Truth, cmp.Anomalies, synth.KindTransient, anomaly.NewSource, 0, radius)
	s.TransientFound = n > 0 && rec == 1
	rec, n = anomaly.Recovery(res.Truth, cmp.Anomalies, synth.KindVariable, anomaly.Variable, 0, radius)
	s.VariableFound = n > 0 && rec == 1
	return nil
}
