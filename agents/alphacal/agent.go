package alphacal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Params are the normalised parameters of the AlphaCal agent (see
// agents.AlphaCal for their meaning and defaults).
type Params struct {
	Flagger           string  `json:"flagger"`
	BaseThreshold     float64 `json:"base_threshold"`
	Iterations        int     `json:"iterations"`
	SIREta            float64 `json:"sir_eta"`
	MADK              float64 `json:"mad_k"`
	RFIStrategy       string  `json:"rfi_strategy"`
	BandpassOrder     int     `json:"bandpass_order"`
	SolutionIntervalS float64 `json:"solution_interval_s"`
}

// Files Run writes into the work directory.
const (
	ResultFile = "alphacal-result.json"
	MaskFile   = "alphacal-flags.png"
)

// KindScore is the recall on one kind of injected RFI.
type KindScore struct {
	Samples int     `json:"samples"`
	Recall  float64 `json:"recall"`
}

// Result is the document Run returns (and writes to ResultFile).
type Result struct {
	DatasetID string `json:"dataset_id"`
	Params    Params `json:"params"`
	// Dataset describes the synthetic dataset and its truth.
	Dataset DatasetInfo `json:"dataset"`
	// Steps are the flagging steps with their new flags.
	Steps []Step `json:"steps"`
	// Scores compare the flags with the injected truth.
	Scores Scores `json:"scores"`
	// PerKind is the recall per RFI kind.
	PerKind map[string]KindScore `json:"per_kind"`
	// Baseline scores the MAD baseline (k = mad_k) on the same data when
	// the flagger is SumThreshold.
	Baseline *Scores `json:"baseline,omitempty"`
	// Calibration is the chosen strategy with its reasons.
	Calibration *Calibration `json:"calibration"`
}

// DatasetInfo summarises the synthetic dataset.
type DatasetInfo struct {
	Times         int                  `json:"times"`
	Channels      int                  `json:"channels"`
	IntegrationS  float64              `json:"integration_s"`
	Sigma         float64              `json:"sigma"`
	CalibratorAmp float64              `json:"calibrator_amp_sigma"`
	BandpassOrder int                  `json:"bandpass_order"`
	GainPhaseRate float64              `json:"gain_phase_rate_rad_s"`
	RFIFraction   float64              `json:"rfi_fraction"`
	Injections    []synth.RFIInjection `json:"injections"`
}

// NewAgent returns the AlphaCal agent with its run function.
func NewAgent() agents.Agent { return agents.New(agents.AlphaCal().WithRun(Run)) }

// datasetSeed derives a reproducible seed from the dataset id and the
// run's seed.
func datasetSeed(id string, seed int64) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64()>>1) + seed
}

// DatasetConfig returns the synthetic dataset a dataset id and seed stand
// for: 256 × 256 samples of 0.45 s, noise sigma 1, and, drawn from the
// seed, a calibrator of 2–10 σ per sample, a bandpass of order 3–7, a gain
// phase drift of 0.002–0.032 rad/s, and 1–5 narrowband channels, 0–3
// broadband bursts, 5–40 impulses and 0–2 weak (2σ, 64–160-sample) lines.
func DatasetConfig(datasetID string, seed int64) (synth.SpectrumConfig, int64) {
	s := datasetSeed(datasetID, seed)
	rng := rand.New(rand.NewPCG(uint64(s), 0x616c70686163616c))
	cfg := synth.SpectrumConfig{
		Times: 256, Channels: 256, Sigma: 1, IntegrationS: 0.45,
		CalibratorAmp: 2 + 8*rng.Float64(),
		BandpassOrder: 3 + rng.IntN(5),
		GainPhaseRate: 0.002 + 0.03*rng.Float64(),
		RFI: &synth.RFIConfig{
			Narrowband:     1 + rng.IntN(5),
			Broadband:      rng.IntN(4),
			Impulsive:      5 + rng.IntN(36),
			WeakLines:      rng.IntN(3),
			WeakLineLength: 64 + rng.IntN(97),
		},
	}
	return cfg, s
}

func paramError(field string, v any, msg string) error {
	return &agents.ParamError{Agent: agents.NameAlphaCal, Field: field, Value: v, Msg: msg}
}

// Run is the AlphaCal agent. It validates and normalises the parameters
// (agents.AlphaCal), synthesises the dataset deterministically from
// in.DatasetID and in.Seed ([DatasetConfig]), flags it with the chosen
// flagger (rfi_strategy scales base_threshold and sir_eta, see
// [AggressivenessFactors]), scores the flags against the injected truth
// (and, for SumThreshold, the MAD baseline on the same data), chooses the
// calibration strategy ([Calibrate]) and returns the metrics and the JSON
// [Result], also written with a flag-mask PNG into in.WorkDir when it is
// set.
func Run(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	start := time.Now()
	norm, err := agents.New(agents.AlphaCal()).ValidateParams(in.Params)
	if err != nil {
		return agents.Output{}, err
	}
	var p Params
	if err := json.Unmarshal(norm, &p); err != nil {
		return agents.Output{}, paramError("params", string(in.Params), "cannot decode normalised parameters: "+err.Error())
	}
	if in.DatasetID == "" {
		return agents.Output{}, paramError("dataset_id", "", "is required")
	}
	thrF, etaF, err := AggressivenessFactors(p.RFIStrategy)
	if err != nil {
		return agents.Output{}, paramError("rfi_strategy", p.RFIStrategy, err.Error())
	}
	progress(2, "synthesising dynamic spectrum")
	dcfg, seed := DatasetConfig(in.DatasetID, in.Seed)
	d, err := synth.NewDynamicSpectrum(&dcfg, seed)
	if err != nil {
		return agents.Output{}, err
	}
	s := Spectrum{Times: d.Times, Channels: d.Channels, Data: d.Data}
	progress(5, fmt.Sprintf("flagging %d x %d samples with %s", d.Times, d.Channels, p.Flagger))

	var fr *FlagResult
	switch p.Flagger {
	case "sumthreshold":
		scfg := &StrategyConfig{
			BaseThreshold: p.BaseThreshold * thrF,
			Iterations:    p.Iterations,
			SIREta:        math.Min(1, p.SIREta*etaF),
			NoSIR:         p.SIREta == 0,
			Progress: func(step, total int, note string) {
				progress(5+65*float64(step)/float64(total), note)
			},
		}
		fr, err = Flag(ctx, s, scfg)
	case "mad":
		fr, err = FlagMAD(ctx, s, p.MADK)
	case "none":
		fr, err = NoFlags(s)
	default:
		err = paramError("flagger", p.Flagger, "must be one of sumthreshold, mad, none")
	}
	if err != nil {
		return agents.Output{}, err
	}
	if err := ctx.Err(); err != nil {
		return agents.Output{}, err
	}
	progress(72, "scoring against the injected truth")
	res := Result{DatasetID: in.DatasetID, Params: p, Steps: fr.Steps, PerKind: map[string]KindScore{}}
	res.Dataset = DatasetInfo{
		Times: d.Times, Channels: d.Channels, IntegrationS: d.IntegrationS, Sigma: d.Sigma,
		CalibratorAmp: dcfg.CalibratorAmp, BandpassOrder: d.BandpassOrder, GainPhaseRate: dcfg.GainPhaseRate,
		RFIFraction: float64(countTrue(d.Truth)) / float64(len(d.Truth)), Injections: d.Injections,
	}
	if res.Scores, err = Score(fr.Mask, d.Truth); err != nil {
		return agents.Output{}, err
	}
	m := map[string]float64{
		"flagged_fraction": fr.FlaggedFraction,
		"rfi_fraction":     res.Dataset.RFIFraction,
		"recall":           finite(res.Scores.Recall),
		"fpr":              finite(res.Scores.FPR),
		"precision":        finite(res.Scores.Precision),
		"f1":               finite(res.Scores.F1),
		"mcc":              res.Scores.MCC,
		"sigma_estimated":  fr.Sigma,
		"sigma_true":       d.Sigma,
	}
	for k := synth.RFIKind(0); k < synth.NumRFIKinds; k++ {
		tr := d.TruthOf(k)
		if n := countTrue(tr); n > 0 {
			r := RecallOn(fr.Mask, tr)
			res.PerKind[k.String()] = KindScore{Samples: n, Recall: r}
			m["recall_"+k.String()] = r
		}
	}
	if p.Flagger == "sumthreshold" {
		progress(75, "MAD baseline for comparison")
		b, err := FlagMAD(ctx, s, p.MADK)
		if err != nil {
			return agents.Output{}, err
		}
		bs, _ := Score(b.Mask, d.Truth)
		res.Baseline = &bs
		m["baseline_recall"] = finite(bs.Recall)
		m["baseline_fpr"] = finite(bs.FPR)
		m["baseline_mcc"] = bs.MCC
		if n := countTrue(d.TruthOf(synth.RFIWeakLine)); n > 0 {
			m["baseline_recall_weak_line"] = RecallOn(b.Mask, d.TruthOf(synth.RFIWeakLine))
		}
	}
	progress(82, "choosing the calibration strategy")
	cal, err := Calibrate(s, fr, &CalibrationConfig{
		IntegrationS:            d.IntegrationS,
		RequestedIntervalS:      p.SolutionIntervalS,
		RequestedOrder:          p.BandpassOrder,
		RequestedAggressiveness: p.RFIStrategy,
	})
	if err != nil {
		return agents.Output{}, err
	}
	res.Calibration = cal
	m["bandpass_order"] = float64(cal.BandpassOrder)
	m["bandpass_order_best"] = float64(cal.Bandpass.BestOrder)
	m["bandpass_order_true"] = float64(d.BandpassOrder)
	m["bandpass_reduced_chi2"] = cal.Bandpass.ReducedChi2
	m["solution_interval_s"] = cal.SolutionIntervalS
	m["min_interval_s"] = cal.MinIntervalS
	if !math.IsInf(cal.MaxIntervalS, 0) {
		m["max_interval_s"] = cal.MaxIntervalS
	}
	m["gain_snr_per_sample"] = cal.Gain.SNRPerSample
	m["phase_rate_rad_s"] = cal.Gain.PhaseRate
	m["phase_rate_true_rad_s"] = dcfg.GainPhaseRate
	m["occupancy_narrowband"] = cal.Occupancy.Narrowband
	m["occupancy_broadband"] = cal.Occupancy.Broadband
	m["occupancy_impulsive"] = cal.Occupancy.Impulsive
	m["seconds"] = time.Since(start).Seconds()

	doc, err := json.Marshal(res)
	if err != nil {
		return agents.Output{}, fmt.Errorf("alphacal: encode result: %w", err)
	}
	summary := fmt.Sprintf("%s: flagged %.2f%% (RFI %.2f%%): recall %.3f, FPR %.4f, MCC %.3f; strategy %s, bandpass order %d (%s), solution interval %.1f s",
		p.Flagger, 100*fr.FlaggedFraction, 100*res.Dataset.RFIFraction, finite(res.Scores.Recall), finite(res.Scores.FPR), res.Scores.MCC,
		cal.Aggressiveness, cal.BandpassOrder, cal.BandpassMode, cal.SolutionIntervalS)
	out := agents.Output{Summary: summary, Metrics: m, Result: doc}
	if in.WorkDir != "" {
		progress(92, "writing outputs")
		if err := os.WriteFile(filepath.Join(in.WorkDir, ResultFile), doc, 0o644); err != nil {
			return agents.Output{}, fmt.Errorf("alphacal: write %s: %w", ResultFile, err)
		}
		var buf bytes.Buffer
		scale := fr.Sigma * math.Sqrt(2-math.Pi/2)
		if err := WriteMaskPNG(&buf, fr.Residual, scale, fr.Mask, d.Truth); err != nil {
			return agents.Output{}, err
		}
		if err := os.WriteFile(filepath.Join(in.WorkDir, MaskFile), buf.Bytes(), 0o644); err != nil {
			return agents.Output{}, fmt.Errorf("alphacal: write %s: %w", MaskFile, err)
		}
		out.Artifacts = []string{ResultFile, MaskFile}
	}
	progress(100, "done")
	return out, nil
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// NoFlags returns a FlagResult with nothing flagged (the "none" flagger),
// with the residual and noise estimate of the unflagged data.
func NoFlags(s Spectrum) (*FlagResult, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	lp, _ := (*LowPassConfig)(nil).withDefaults()
	mask := make([]bool, len(s.Data))
	x, _ := residual(s, mask, lp)
	return &FlagResult{Mask: mask, Residual: x.Plane, Sigma: x.sigma}, nil
}
