package imaging

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/fits"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Params are the normalised parameters of [agents.ImageReconstruction].
type Params struct {
	ImageSize   int     `json:"image_size"`
	CellArcsec  float64 `json:"cell_arcsec"`
	Deconvolver string  `json:"deconvolver"`
	Niter       int     `json:"niter"`
	Gain        float64 `json:"gain"`
	MGain       float64 `json:"mgain"`
	NSigma      float64 `json:"nsigma"`
	Weighting   string  `json:"weighting"`
	Robust      float64 `json:"robust"`
}

// RunResult is the JSON result document of [Run].
type RunResult struct {
	DatasetID        string               `json:"dataset_id"`
	Seed             int64                `json:"seed"`
	Visibilities     int                  `json:"visibilities"`
	Gridded          int                  `json:"gridded"`
	Choice           Choice               `json:"choice"`
	Features         Features             `json:"features"`
	Beam             Beam                 `json:"beam"`
	RMSJy            float64              `json:"rms_jy"`
	TheoreticalJy    float64              `json:"theoretical_noise_jy"`
	PeakJy           float64              `json:"peak_jy_per_beam"`
	Iterations       int                  `json:"iterations"`
	MajorCycles      int                  `json:"major_cycles"`
	Components       int                  `json:"components"`
	ModelFluxJy      float64              `json:"model_flux_jy"`
	Threshold        float64              `json:"threshold_jy"`
	Timings          Timings              `json:"timings"`
	Truth            []synth.SkyComponent `json:"truth"`
	TruthRecoveredN  int                  `json:"truth_recovered"`
	PhaseCentreRADeg float64              `json:"phase_centre_ra_deg"`
	PhaseCentreDeDeg float64              `json:"phase_centre_dec_deg"`
}

// NewAgent returns the ImageReconstruction agent with [Run] attached.
func NewAgent() agents.Agent { return agents.New(agents.ImageReconstruction().WithRun(Run)) }

// datasetSeed derives the synthesis seed from the dataset id and the
// input seed.
func datasetSeed(id string, seed int64) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64()>>1) ^ seed
}

// DatasetConfig is the synthetic observation [Run] images for a dataset:
// a 30-minute VLA B track at 2–4 GHz (16 channels, 60 s integrations,
// about 175 000 visibilities) with noise giving about 120 µJy/beam
// naturally weighted (the VLASS single-epoch goal), and 4–8 sources of
// 1–50 mJy within the inner 60 % of the image, a quarter of them
// Gaussians, all derived from seed.
func DatasetConfig(imageSize int, cellArcsec float64, seed int64) *synth.VisConfig {
	n := 4 + int(uint64(seed)%5)
	nvis := float64(31 * 351 * 16)
	radius := 0.3 * float64(imageSize) * cellArcsec
	// Keep sources a few beams (about 2.3 arcsec) apart, or as far apart
	// as a tiny field allows.
	sep := math.Min(math.Max(8, 0.05*float64(imageSize)*cellArcsec), radius/2)
	return &synth.VisConfig{
		DurationH: 0.5, IntegrationS: 60, Channels: 16,
		NoiseSigmaJy:        120e-6 * math.Sqrt(nvis),
		NumSources:          n,
		FluxMinJy:           0.001,
		FluxMaxJy:           0.05,
		FieldRadiusArcsec:   radius,
		MinSeparationArcsec: sep,
		ExtendedFraction:    0.25,
	}
}

// Run is the ImageReconstruction agent: it synthesises the dataset named
// by in.DatasetID (seeded by a hash of it and in.Seed; see
// [DatasetConfig]), images it with in.Params, writes FITS and PNG products
// into in.WorkDir when set, and returns metrics and a [RunResult].
func Run(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	var p Params
	if len(in.Params) > 0 && string(in.Params) != "null" {
		if err := json.Unmarshal(in.Params, &p); err != nil {
			return agents.Output{}, fmt.Errorf("%w: image-reconstruction: params: %v", agents.ErrInvalidParams, err)
		}
	}
	if p.ImageSize == 0 {
		p.ImageSize = 256
	}
	if p.CellArcsec == 0 {
		p.CellArcsec = 1
	}
	if in.DatasetID == "" {
		return agents.Output{}, fmt.Errorf("%w: image-reconstruction: dataset id is empty", ErrInput)
	}
	seed := datasetSeed(in.DatasetID, in.Seed)
	progress(2, "synthesising visibilities")
	t0 := time.Now()
	vis, err := synth.NewVisibilities(DatasetConfig(p.ImageSize, p.CellArcsec, seed), seed)
	if err != nil {
		return agents.Output{}, fmt.Errorf("image-reconstruction: dataset %q: %w", in.DatasetID, err)
	}
	slog.Debug("imaging: synthesised", "dataset", in.DatasetID, "visibilities", len(vis.Data), "took", time.Since(t0))
	if err := ctx.Err(); err != nil {
		return agents.Output{}, err
	}
	cfg := Config{ImageSize: p.ImageSize, CellArcsec: p.CellArcsec, Weighting: p.Weighting, Robust: p.Robust,
		Niter: p.Niter, Gain: p.Gain, MGain: p.MGain, NSigma: p.NSigma}
	if p.NSigma == 0 {
		cfg.NoNSigma = true
	}
	var choice Choice
	switch p.Deconvolver {
	case "", DeconvAuto:
		cfg.Deconvolver = DeconvAuto
	case DeconvHogbom, DeconvCottonSchwab, DeconvClark, DeconvNone:
		cfg.Deconvolver = p.Deconvolver
		choice = Choice{Deconvolver: p.Deconvolver, Recommended: p.Deconvolver, Reason: "deconvolver " + p.Deconvolver + " requested"}
	case DeconvMTMFS:
		cfg.Deconvolver = DeconvMTMFS
		choice = Choice{Deconvolver: DeconvMTMFS, Recommended: DeconvMTMFS, Reason: "deconvolver mtmfs (nterms 2) requested"}
	case DeconvMultiscale:
		cfg.Deconvolver = DeconvMultiscale
		choice = Choice{Deconvolver: DeconvMultiscale, Recommended: DeconvMultiscale, Reason: "deconvolver multiscale requested"}
		if p.ImageSize > MaxMultiscaleSize {
			cfg.Deconvolver = DeconvCottonSchwab
			choice = Choice{Deconvolver: DeconvCottonSchwab, Recommended: DeconvMultiscale,
				Reason: fmt.Sprintf("deconvolver multiscale requested but it runs up to image_size %d (got %d); ran cotton-schwab, the nearest implemented algorithm", MaxMultiscaleSize, p.ImageSize)}
		}
	default:
		return agents.Output{}, &agents.ParamError{Agent: agents.NameImageReconstruction, Field: "deconvolver", Value: p.Deconvolver, Msg: "must be auto, hogbom, cotton-schwab, clark, multiscale, mtmfs or none"}
	}
	var present map[string]json.RawMessage
	_ = json.Unmarshal(in.Params, &present)
	if _, ok := present["niter"]; ok && p.Niter == 0 {
		// niter 0 asks for a dirty image only.
		cfg.Deconvolver = DeconvNone
		choice = Choice{Deconvolver: DeconvNone, Recommended: DeconvNone, Reason: "niter = 0: dirty image only"}
	}
	progress(15, "gridding, PSF, dirty image and "+cfg.Deconvolver+" deconvolution")
	iv := &Vis{U: vis.U, V: vis.V, FreqHz: vis.FreqHz, Data: vis.Data, Weight: vis.Weight}
	res, err := Reconstruct(ctx, iv, &cfg)
	if err != nil {
		return agents.Output{}, fmt.Errorf("image-reconstruction: %w", err)
	}
	if res.Choice != nil {
		choice = *res.Choice
	}
	feat := res.Features
	if feat == nil {
		f, err := MeasureFeatures(res.Dirty, res.PSF, res.Beam, FractionalBandwidth(vis.FreqHz))
		if err != nil {
			return agents.Output{}, fmt.Errorf("image-reconstruction: %w", err)
		}
		feat = &f
	}
	progress(85, "restored with "+res.Deconvolver+" ("+choice.Reason+"); writing products")

	rr := RunResult{
		DatasetID: in.DatasetID, Seed: seed, Visibilities: len(vis.Data), Gridded: res.Gridded,
		Choice: choice, Features: *feat, Beam: res.Beam, RMSJy: res.RMS, TheoreticalJy: res.TheoreticalNoise,
		PeakJy: res.Peak, Iterations: res.Iterations, MajorCycles: res.MajorCycles, Components: len(res.Components),
		Threshold: res.Threshold, Timings: res.Timings, Truth: vis.Truth,
		PhaseCentreRADeg: vis.Config.RADeg, PhaseCentreDeDeg: vis.Config.DecDeg,
	}
	for _, c := range res.Components {
		rr.ModelFluxJy += c.Flux
	}
	for _, s := range vis.Truth {
		x, y := res.Restored.Pixel(s.LArcsec, s.MArcsec)
		xi, yi := int(math.Round(x)), int(math.Round(y))
		if xi < 0 || yi < 0 || xi >= res.Restored.N || yi >= res.Restored.N {
			continue
		}
		if _, _, pk := FitPeak(res.Restored, xi, yi); pk > 5*res.RMS {
			rr.TruthRecoveredN++
		}
	}
	out := agents.Output{
		Summary: fmt.Sprintf("%s: %d×%d image at %g\" from %d visibilities, %s, rms %.3g mJy/beam (theory %.3g), peak %.3g mJy/beam, %d/%d truth sources recovered",
			in.DatasetID, p.ImageSize, p.ImageSize, p.CellArcsec, len(vis.Data), choice.Deconvolver, res.RMS*1e3, res.TheoreticalNoise*1e3, res.Peak*1e3, rr.TruthRecoveredN, len(vis.Truth)),
		Metrics: map[string]float64{
			"rms_jy": res.RMS, "theoretical_noise_jy": res.TheoreticalNoise, "peak_jy": res.Peak,
			"dynamic_range": dynamicRange(res.Peak, res.RMS), "components": float64(len(res.Components)),
			"iterations": float64(res.Iterations), "major_cycles": float64(res.MajorCycles),
			"beam_major_arcsec": res.Beam.MajorArcsec, "beam_minor_arcsec": res.Beam.MinorArcsec, "beam_pa_deg": res.Beam.PADeg,
			"visibilities": float64(len(vis.Data)), "truth_sources": float64(len(vis.Truth)), "truth_recovered": float64(rr.TruthRecoveredN),
			"model_flux_jy": rr.ModelFluxJy,
		},
	}
	if in.WorkDir != "" {
		arts, err := writeProducts(in.WorkDir, res, vis)
		if err != nil {
			return agents.Output{}, fmt.Errorf("image-reconstruction: %w", err)
		}
		out.Artifacts = arts
	}
	b, err := json.Marshal(rr)
	if err != nil {
		return agents.Output{}, fmt.Errorf("image-reconstruction: encode result: %w", err)
	}
	out.Result = b
	progress(100, "done")
	return out, nil
}

// ToFITS converts an imaging product to a FITS image with SIN WCS about
// the phase centre (raDeg, decDeg), the beam and unit.
func ToFITS(im *Image, beam Beam, raDeg, decDeg, freqHz float64, unit string) *fits.Image {
	f := &fits.Image{Width: im.N, Height: im.N, Data: make([]float32, len(im.Pix)),
		WCS: fits.WCS{RA: raDeg, Dec: decDeg, RefX: float64(im.N/2 + 1), RefY: float64(im.N/2 + 1),
			DeltaX: -im.CellArcsec / 3600, DeltaY: im.CellArcsec / 3600, Projection: "SIN"},
		BMaj: beam.MajorArcsec / 3600, BMin: beam.MinorArcsec / 3600, BPA: beam.PADeg, BUnit: unit,
		Telescope: "VLA", Object: "synthetic", FreqHz: freqHz}
	for i, v := range im.Pix {
		f.Data[i] = float32(v)
	}
	return f
}

func writeProducts(dir string, res *Result, vis *synth.Visibilities) ([]string, error) {
	ra, dec, ref := vis.Config.RADeg, vis.Config.DecDeg, vis.Config.RefFreqHz
	prods := []struct {
		name string
		im   *Image
		unit string
	}{
		{"image.restored.fits", res.Restored, "Jy/beam"},
		{"image.residual.fits", res.Residual, "Jy/beam"},
		{"image.psf.fits", res.PSF, ""},
		{"image.model.fits", res.Model, "Jy/pixel"},
	}
	var arts []string
	for _, p := range prods {
		if err := fits.WriteFile(filepath.Join(dir, p.name), ToFITS(p.im, res.Beam, ra, dec, ref, p.unit)); err != nil {
			return nil, err
		}
		arts = append(arts, p.name)
	}
	f := ToFITS(res.Restored, res.Beam, ra, dec, ref, "Jy/beam")
	if err := writePNGFile(filepath.Join(dir, "image.restored.png"), f); err != nil {
		return nil, err
	}
	return append(arts, "image.restored.png"), nil
}

// dynamicRange is peak/rms, 0 when the rms is 0 (JSON cannot carry Inf).
func dynamicRange(peak, rms float64) float64 {
	if !(rms > 0) {
		return 0
	}
	return peak / rms
}
