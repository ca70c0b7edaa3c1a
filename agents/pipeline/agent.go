package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"

	"github.com/cosmic-horizons/horizons/agents"
)

// Name is the canonical agent name of the pipeline; it also answers to
// the alias "pipeline".
const Name = "VLASSPipeline"

func f64(v float64) *float64 { return &v }

// Descriptor declares the pipeline agent and its parameters (the
// defaults are those of [Config]).
func Descriptor() agents.Descriptor {
	return agents.Descriptor{
		Name:        Name,
		Aliases:     []string{"pipeline", "vlass-pipeline"},
		Description: "AlphaCal -> ImageReconstruction -> AnomalyDetection on two synthetic epochs: RFI flagging, imaging, source finding and two-epoch differencing, with FITS, PNG and JSON products",
		Params: []agents.Param{
			{Name: "image_size", Type: agents.Integer, Default: int64(256), Min: f64(64), Max: f64(2048), PowerOfTwo: true, Description: "image side in pixels"},
			{Name: "cell_arcsec", Type: agents.Number, Default: 1.0, Min: f64(0.05), Max: f64(10), Description: "pixel size in arcseconds"},
			{Name: "times", Type: agents.Integer, Default: int64(48), Min: f64(8), Max: f64(1024), Description: "integrations per epoch"},
			{Name: "channels", Type: agents.Integer, Default: int64(32), Min: f64(8), Max: f64(1024), Description: "channels over 2-4 GHz"},
			{Name: "sources", Type: agents.Integer, Default: int64(6), Min: f64(1), Max: f64(200), Description: "steady point sources"},
			{Name: "transient_snr", Type: agents.Number, Default: 30.0, Min: f64(1), Max: f64(1e5), Description: "SNR of the source that appears in epoch 2"},
			{Name: "flagger", Type: agents.String, Default: FlaggerSumThreshold, Enum: []string{FlaggerSumThreshold, FlaggerMAD, FlaggerNone}, Description: "RFI flagger of the AlphaCal stage"},
			{Name: "deconvolver", Type: agents.String, Default: "auto", Enum: []string{"auto", "hogbom", "cotton-schwab", "clark", "multiscale", "mtmfs", "none"}, Description: "CLEAN algorithm of the imaging stage"},
			{Name: "niter", Type: agents.Integer, Default: int64(2000), Min: f64(1), Max: f64(1000000), Description: "CLEAN iterations per epoch"},
		},
		BaseSeconds:      600,
		ParallelFraction: 0.9,
		MemoryMBPerGB:    400,
		Run:              RunAgent,
	}
}

// NewAgent returns the pipeline agent with its run function.
func NewAgent() agents.Agent { return agents.New(Descriptor()) }

// Params are the pipeline agent's normalised parameters.
type Params struct {
	ImageSize    int     `json:"image_size"`
	CellArcsec   float64 `json:"cell_arcsec"`
	Times        int     `json:"times"`
	Channels     int     `json:"channels"`
	Sources      int     `json:"sources"`
	TransientSNR float64 `json:"transient_snr"`
	Flagger      string  `json:"flagger"`
	Deconvolver  string  `json:"deconvolver"`
	Niter        int     `json:"niter"`
}

// datasetSeed derives the run's seed from the dataset id and in.Seed.
func datasetSeed(id string, seed int64) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64()>>1) ^ seed
}

// RunAgent is the pipeline as an agent: it validates in.Params, runs
// [Run] seeded by the dataset id and in.Seed, writes the products into
// in.WorkDir when it is set, and reports stage progress ("stage <name>
// started/completed") through progress.
func RunAgent(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
	if in.DatasetID == "" {
		return agents.Output{}, &agents.ParamError{Agent: Name, Field: "dataset_id", Value: "", Msg: "is required"}
	}
	norm, err := agents.New(Descriptor()).ValidateParams(in.Params)
	if err != nil {
		return agents.Output{}, err
	}
	var p Params
	if err := json.Unmarshal(norm, &p); err != nil {
		return agents.Output{}, &agents.ParamError{Agent: Name, Field: "params", Value: string(in.Params), Msg: err.Error()}
	}
	seed := datasetSeed(in.DatasetID, in.Seed)
	res, err := Run(ctx, seed, &Config{
		ImageSize: p.ImageSize, CellArcsec: p.CellArcsec, Times: p.Times, Channels: p.Channels, Sources: p.Sources,
		TransientSNR: p.TransientSNR, Flagger: p.Flagger, Deconvolver: p.Deconvolver, Niter: p.Niter,
		OutputDir: in.WorkDir, Progress: progress,
	})
	if err != nil {
		return agents.Output{}, err
	}
	s := res.Summary
	m := map[string]float64{
		"visibilities_per_epoch": float64(s.Visibilities), "flag_fraction": s.FlagFraction[1], "rfi_fraction": s.RFIFraction[1],
		"flag_recall": s.FlagRecall[1], "flag_fpr": s.FlagFPR[1], "rms_jy": s.RMSJy[1], "theoretical_noise_jy": s.TheoreticalJy[1],
		"truth_sources": float64(s.TruthSources), "sources_found": float64(s.SourcesFound), "sources_matched": float64(s.SourcesMatched),
		"completeness": s.Completeness, "reliability": s.Reliability, "median_flux_ratio": s.FluxRatio,
		"anomalies": float64(s.Anomalies), "transient_found": b2f(s.TransientFound), "variable_found": b2f(s.VariableFound),
		"seconds": s.TotalSeconds,
	}
	for _, t := range s.Timings {
		m["seconds_"+t.Stage] = t.Seconds
	}
	return agents.Output{Summary: res.OneLine(), Metrics: m, Result: res.Documents[FileSummary], Artifacts: res.Artifacts}, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// OneLine is a one-line summary of the run.
func (res *Result) OneLine() string {
	s := res.Summary
	return fmt.Sprintf("%d×%d at %g\": flagged %.1f%% (RFI %.1f%%, recall %.2f), %s, rms %.0f µJy/beam (theory %.0f), %d/%d sources matched, %d found, %d anomalies (transient found: %v, variable found: %v) in %.2f s",
		s.ImageSize, s.ImageSize, s.CellArcsec, 100*s.FlagFraction[1], 100*s.RFIFraction[1], s.FlagRecall[1], s.Deconvolver,
		s.RMSJy[1]*1e6, s.TheoreticalJy[1]*1e6, s.SourcesMatched, s.TruthSources, s.SourcesFound, s.Anomalies,
		s.TransientFound, s.VariableFound, s.TotalSeconds)
}
