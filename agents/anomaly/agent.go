package anomaly

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/synth"
)

// Params are the normalised parameters of the anomaly-detection agent
// (see agents.AnomalyDetection for their defaults).
type Params struct {
	SeedSigma          float64 `json:"seed_sigma"`
	FloodSigma         float64 `json:"flood_sigma"`
	BoxPixels          int     `json:"box_pixels"`
	MinVs              float64 `json:"min_vs"`
	MinM               float64 `json:"min_m"`
	ReferenceDatasetID string  `json:"reference_dataset_id"`
}

// ResultFile is the name of the JSON document Run writes into the work
// directory.
const ResultFile = "anomaly-result.json"

// Result is the document Run returns (and writes to ResultFile): the
// catalogue of the dataset's epoch, the anomalies against the reference
// epoch (if any) and the scores against the synthetic truth.
type Result struct {
	DatasetID          string             `json:"dataset_id"`
	ReferenceDatasetID string             `json:"reference_dataset_id,omitempty"`
	Params             Params             `json:"params"`
	Beam               Beam               `json:"beam"`
	MedianRMS          float64            `json:"median_rms_jy_beam"`
	Catalogue          []Component        `json:"catalogue"`
	Anomalies          []Anomaly          `json:"anomalies,omitempty"`
	Metrics            map[string]float64 `json:"metrics"`
}

// NewAgent returns the anomaly-detection agent with its run function.
func NewAgent() agents.Agent { return agents.New(agents.AnomalyDetection().WithRun(Run)) }

// datasetSeed derives a reproducible seed from dataset ids and the run's
// seed.
func datasetSeed(seed int64, ids ...string) int64 {
	h := fnv.New64a()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	return int64(h.Sum64()>>1) + seed
}

// Run is the anomaly-detection agent. It reads the normalised parameters,
// synthesises the dataset's image (and, with reference_dataset_id, a
// reference epoch of the same field) deterministically from the dataset
// ids and in.Seed, finds sources, compares epochs, scores the result
// against the synthetic truth, and returns metrics and the JSON Result
// (also written to in.WorkDir when it is set).
func Run(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
	if progress == nil {
		progress = func(float64, string) {}
	}
	start := time.Now()
	p := Params{SeedSigma: 5, FloodSigma: 4, BoxPixels: 32, MinVs: 4.3, MinM: 0.26}
	if len(in.Params) > 0 && string(in.Params) != "null" {
		if err := json.Unmarshal(in.Params, &p); err != nil {
			return agents.Output{}, &agents.ParamError{Agent: agents.NameAnomalyDetection, Field: "params", Value: string(in.Params), Msg: "must be a JSON object of normalised parameters: " + err.Error()}
		}
	}
	if in.DatasetID == "" {
		return agents.Output{}, &agents.ParamError{Agent: agents.NameAnomalyDetection, Field: "dataset_id", Value: "", Msg: "is required"}
	}
	if p.ReferenceDatasetID == in.DatasetID {
		return agents.Output{}, &agents.ParamError{Agent: agents.NameAnomalyDetection, Field: "reference_dataset_id", Value: p.ReferenceDatasetID, Msg: "must differ from the dataset being searched"}
	}
	fcfg := FinderConfig{SeedSigma: p.SeedSigma, FloodSigma: p.FloodSigma, Background: BackgroundConfig{Box: p.BoxPixels}}
	if _, err := fcfg.withDefaults(); err != nil {
		return agents.Output{}, &agents.ParamError{Agent: agents.NameAnomalyDetection, Field: "params", Value: p, Msg: err.Error()}
	}
	res := Result{DatasetID: in.DatasetID, ReferenceDatasetID: p.ReferenceDatasetID, Params: p, Metrics: map[string]float64{}}
	progress(5, "synthesising epochs")
	var truth []synth.TruthSource
	var current *Image
	var cmp *Comparison
	var cat *Catalogue
	if p.ReferenceDatasetID == "" {
		f, err := synth.NewImage(nil, datasetSeed(in.Seed, in.DatasetID))
		if err != nil {
			return agents.Output{}, err
		}
		truth, current = f.Sources, FromSynth(f.Image)
		progress(20, "background, rms and source finding")
		if cat, err = Find(ctx, current, &fcfg); err != nil {
			return agents.Output{}, err
		}
	} else {
		// The field (sky) follows the reference; the pair seed both ids.
		pair, err := synth.NewEpochPair(nil, datasetSeed(in.Seed, p.ReferenceDatasetID, in.DatasetID))
		if err != nil {
			return agents.Output{}, err
		}
		truth, current = pair.Sources, FromSynth(pair.Epoch2)
		progress(20, "source finding in both epochs and the difference image")
		cmp, err = Compare(ctx, FromSynth(pair.Epoch1), current, &DiffConfig{Finder: fcfg, MinVs: orDefault(p.MinVs), MinM: orDefault(p.MinM)})
		if err != nil {
			return agents.Output{}, err
		}
		cat = cmp.Epoch2
		res.Anomalies = cmp.Anomalies
	}
	progress(80, "scoring against the synthetic truth")
	res.Beam, res.MedianRMS, res.Catalogue = cat.Beam, cat.MedianRMS, cat.Components
	m := res.Metrics
	m["components"] = float64(len(cat.Components))
	m["islands"] = float64(len(cat.Islands))
	m["median_rms_ujy_beam"] = cat.MedianRMS * 1e6
	epoch := 1
	if cmp != nil {
		epoch = 2
	}
	ev, err := Evaluate(References(truth, epoch), cat.Components, current.Beam.MajArcsec)
	if err != nil {
		return agents.Output{}, err
	}
	// Reliability counts detections of injected glitches as real (they
	// are in the image; Compare classifies them as artefacts).
	all, err := Evaluate(References(truth, epoch, synth.KindSteady, synth.KindVariable, synth.KindTransient, synth.KindDisappeared, synth.KindGlitch), cat.Components, current.Beam.MajArcsec)
	if err != nil {
		return agents.Output{}, err
	}
	c8, _ := ev.Completeness(8)
	fr, _ := ev.MedianFluxRatio(20)
	m["completeness_snr8"] = nanZero(c8)
	m["reliability"] = nanZero(all.Reliability())
	m["median_flux_ratio_snr20"] = nanZero(fr)
	summary := fmt.Sprintf("%d components (median rms %.0f µJy/beam), completeness %.1f%% at SNR>=8, reliability %.1f%%",
		len(cat.Components), cat.MedianRMS*1e6, 100*m["completeness_snr8"], 100*m["reliability"])
	if cmp != nil {
		counts := map[Type]int{}
		for _, a := range cmp.Anomalies {
			counts[a.Type]++
		}
		m["anomalies"] = float64(len(cmp.Anomalies))
		m["new_sources"] = float64(counts[NewSource])
		m["disappeared"] = float64(counts[Disappeared])
		m["variables"] = float64(counts[Variable])
		m["artefacts"] = float64(counts[Artefact])
		m["matched"] = float64(cmp.Matched)
		rec, n := Recovery(truth, cmp.Anomalies, synth.KindTransient, NewSource, 8, current.Beam.MajArcsec)
		if n > 0 {
			m["transient_recovery_dsnr8"] = rec
		}
		summary += fmt.Sprintf("; %d anomalies vs %s (%d new, %d disappeared, %d variable, %d artefacts)",
			len(cmp.Anomalies), p.ReferenceDatasetID, counts[NewSource], counts[Disappeared], counts[Variable], counts[Artefact])
	}
	m["seconds"] = time.Since(start).Seconds()
	doc, err := json.Marshal(res)
	if err != nil {
		return agents.Output{}, fmt.Errorf("anomaly: encode result: %w", err)
	}
	out := agents.Output{Summary: summary, Metrics: m, Result: doc}
	if in.WorkDir != "" {
		if err := os.WriteFile(filepath.Join(in.WorkDir, ResultFile), doc, 0o644); err != nil {
			return agents.Output{}, fmt.Errorf("anomaly: write %s: %w", ResultFile, err)
		}
		out.Artifacts = []string{ResultFile}
	}
	progress(100, "done")
	return out, nil
}

// orDefault keeps an explicit threshold of 0 meaning "no cut" (the
// DiffConfig zero value means the default), by passing a tiny positive
// value instead.
func orDefault(m float64) float64 {
	if m == 0 {
		return math.SmallestNonzeroFloat64
	}
	return m
}

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// Recovery returns the fraction of truth entries of kind whose difference
// SNR is at least minDiffSNR that have an anomaly of type typ within
// radiusArcsec, and how many such entries there are.
func Recovery(truth []synth.TruthSource, an []Anomaly, kind synth.TruthKind, typ Type, minDiffSNR, radiusArcsec float64) (float64, int) {
	n, hit := 0, 0
	for _, s := range truth {
		if s.Kind != kind || s.DiffSNR() < minDiffSNR {
			continue
		}
		n++
		for _, a := range an {
			if a.Type == typ && SeparationArcsec(Coord{s.RA, s.Dec}, Coord{a.RA, a.Dec}) <= radiusArcsec {
				hit++
				break
			}
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(hit) / float64(n), n
}
