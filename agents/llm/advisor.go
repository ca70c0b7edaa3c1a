package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
)

// Verdict is the advisor's decision on a job.
type Verdict string

// Verdicts.
const (
	// Approve: the parameters are valid and sensible for the data.
	Approve Verdict = "approve"
	// Warn: valid, but some choices are likely to hurt the result or cost.
	Warn Verdict = "warn"
	// Reject: invalid parameters, unknown agent, or a hard limit broken.
	Reject Verdict = "reject"
)

// Source says who produced an Advice.
type Source string

// Sources.
const (
	// SourceRules is the deterministic rule table.
	SourceRules Source = "rules"
	// SourceOllama is a validated LLM answer.
	SourceOllama Source = "ollama"
)

// ErrBadAdviceRequest reports a request the advisor cannot consider.
var ErrBadAdviceRequest = errors.New("llm: invalid advice request")

// DatasetFacts describe the data a job will process. Zero values mean
// unknown; the rules then assume VLASS quick-look values.
type DatasetFacts struct {
	ID string `json:"id,omitempty"`
	// SizeGB is the dataset size (default agents.DefaultDatasetGB).
	SizeGB float64 `json:"size_gb,omitempty"`
	// BeamArcsec is the synthesised beam FWHM (default 2.5, VLASS).
	BeamArcsec float64 `json:"beam_arcsec,omitempty"`
	// FractionalBandwidth is bandwidth over centre frequency (VLASS 2–4 GHz:
	// 0.67).
	FractionalBandwidth float64 `json:"fractional_bandwidth,omitempty"`
	// RFIFraction is the expected fraction of data lost to RFI.
	RFIFraction float64 `json:"rfi_fraction,omitempty"`
	// ExtendedEmission says the field has resolved structure.
	ExtendedEmission bool `json:"extended_emission,omitempty"`
	// MaxSeconds is the job's wall-time limit (0: none).
	MaxSeconds float64 `json:"max_seconds,omitempty"`
}

// Request asks for advice on one job.
type Request struct {
	// Agent is the agent's name or alias.
	Agent string `json:"agent"`
	// Params are the job's raw parameters (a JSON object, or empty).
	Params json.RawMessage `json:"params,omitempty"`
	// GPUs requested (0 is treated as 1 for the estimate).
	GPUs    int          `json:"gpus"`
	Dataset DatasetFacts `json:"dataset"`
}

// Advice is the advisor's answer.
type Advice struct {
	Verdict Verdict `json:"verdict"`
	// Score is the confidence that the job will give a good result, 0–1.
	Score float64 `json:"score"`
	// Feedback are one-line remarks, most important first.
	Feedback []string `json:"feedback"`
	// EstimatedSeconds is the expected wall time.
	EstimatedSeconds float64 `json:"estimated_seconds"`
	// Params are the normalised parameters when they are valid.
	Params json.RawMessage `json:"params,omitempty"`
	// Source says who answered; Model names the LLM when it did.
	Source Source `json:"source"`
	Model  string `json:"model,omitempty"`
	// FallbackReason says why the rules answered (empty when the LLM did).
	FallbackReason string `json:"fallback_reason,omitempty"`
}

func ptr[T any](v T) *T { return &v }

// AdviceSchema is the JSON Schema of the LLM's answer: sent as the
// request's format and enforced on the reply.
var AdviceSchema = &Schema{
	Type: "object",
	Properties: map[string]*Schema{
		"verdict":           {Type: "string", Enum: []any{"approve", "warn", "reject"}},
		"score":             {Type: "number", Minimum: ptr(0.0), Maximum: ptr(1.0)},
		"feedback":          {Type: "array", Items: &Schema{Type: "string", MinLength: ptr(1), MaxLength: ptr(300)}, MinItems: ptr(1), MaxItems: ptr(10)},
		"estimated_seconds": {Type: "number", Minimum: ptr(0.0)},
	},
	Required:             []string{"verdict", "score", "feedback", "estimated_seconds"},
	AdditionalProperties: ptr(false),
}

// AdvisorConfig configures an Advisor. Zero values take the documented
// defaults.
type AdvisorConfig struct {
	// Client reaches Ollama; nil means the rules always answer.
	Client *Client
	// Model is the Ollama model (default "llama3.2").
	Model string
	// Registry resolves agent names (default agents.NewRegistry()).
	Registry *agents.Registry
	// Timeout bounds the LLM's answer; past it the rules answer (default
	// 20 s).
	Timeout time.Duration
	// MaxEstimateFactor is how far (as a factor either way) the LLM's
	// duration estimate may stray from the model's before the answer is
	// treated as nonsense (default 10).
	MaxEstimateFactor float64
	// Logger receives fallbacks (default: discarded).
	Logger *slog.Logger
}

// Advisor validates job parameters and estimates their duration, asking
// Ollama when configured and falling back to deterministic rules when
// Ollama is absent, slow or answers nonsense. It is safe for concurrent
// use.
type Advisor struct {
	cfg AdvisorConfig
}

// NewAdvisor returns an advisor for cfg (nil means rules only).
func NewAdvisor(cfg *AdvisorConfig) (*Advisor, error) {
	var c AdvisorConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Model == "" {
		c.Model = "llama3.2"
	}
	if c.Registry == nil {
		c.Registry = agents.NewRegistry()
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("%w: Timeout = %v: must be positive", ErrConfig, c.Timeout)
	}
	if c.MaxEstimateFactor == 0 {
		c.MaxEstimateFactor = 10
	}
	if !(c.MaxEstimateFactor >= 1) {
		return nil, fmt.Errorf("%w: MaxEstimateFactor = %v: must be >= 1", ErrConfig, c.MaxEstimateFactor)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Advisor{cfg: c}, nil
}

// Advise answers req. Invalid parameters or a broken hard limit are final:
// the rules reject and Ollama is not asked. Otherwise Ollama (when
// configured) answers within the timeout, its JSON validated against
// AdviceSchema and its estimate checked against the model's; any failure
// falls back to the rules, with the reason in FallbackReason. The error is
// non-nil only for a malformed request.
func (a *Advisor) Advise(ctx context.Context, req Request) (Advice, error) {
	rules, ag, err := a.rules(req)
	if err != nil {
		return Advice{}, err
	}
	if a.cfg.Client == nil {
		rules.FallbackReason = "no Ollama client configured"
		return rules, nil
	}
	if rules.Verdict == Reject {
		rules.FallbackReason = "the rules rejected the job; Ollama was not consulted"
		return rules, nil
	}
	adv, err := a.askLLM(ctx, req, ag, rules)
	if err != nil {
		rules.FallbackReason = err.Error()
		a.cfg.Logger.Warn("llm advisor fell back to rules", "agent", ag.Name(), "reason", rules.FallbackReason)
		return rules, nil
	}
	return adv, nil
}

// Rules returns the deterministic advice for req (what Advise returns
// without Ollama).
func (a *Advisor) Rules(req Request) (Advice, error) {
	adv, _, err := a.rules(req)
	return adv, err
}

func (a *Advisor) askLLM(ctx context.Context, req Request, ag agents.Agent, rules Advice) (Advice, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	d := ag.Descriptor()
	prompt := map[string]any{
		"agent":                  d.Name,
		"description":            d.Description,
		"parameters":             d.Params,
		"normalised_params":      rules.Params,
		"gpus":                   req.GPUs,
		"dataset":                req.Dataset,
		"model_estimate_seconds": rules.EstimatedSeconds,
		"rule_feedback":          rules.Feedback,
	}
	pb, err := json.Marshal(prompt)
	if err != nil {
		return Advice{}, fmt.Errorf("encode prompt: %v", err)
	}
	resp, err := a.cfg.Client.Chat(ctx, ChatRequest{
		Model: a.cfg.Model,
		Messages: []Message{
			{Role: "system", Content: "You review radio-astronomy processing jobs (VLASS, 2-4 GHz) before they run on GPUs. " +
				"Judge whether the parameters suit the dataset, and estimate the wall time in seconds. " +
				"Answer only with JSON: {\"verdict\": \"approve\"|\"warn\"|\"reject\", \"score\": 0..1, \"feedback\": [one-line strings], \"estimated_seconds\": number}."},
			{Role: "user", Content: string(pb)},
		},
		Format:  AdviceSchema.Raw(),
		Options: map[string]any{"temperature": 0, "seed": 1},
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Advice{}, fmt.Errorf("ollama did not answer within %v: %w", a.cfg.Timeout, err)
		}
		return Advice{}, fmt.Errorf("ollama failed: %w", err)
	}
	if _, err := AdviceSchema.ValidateJSON([]byte(resp.Message.Content)); err != nil {
		return Advice{}, fmt.Errorf("ollama answer rejected: %w", err)
	}
	var adv Advice
	if err := json.Unmarshal([]byte(resp.Message.Content), &adv); err != nil {
		return Advice{}, fmt.Errorf("ollama answer rejected: %w: %v", ErrMalformed, err)
	}
	f := a.cfg.MaxEstimateFactor
	if e, m := adv.EstimatedSeconds, rules.EstimatedSeconds; m > 0 && (e > m*f || e < m/f) {
		return Advice{}, fmt.Errorf("ollama answer rejected: estimated_seconds = %.0f is more than %gx away from the model's %.0f", e, f, m)
	}
	adv.Params = rules.Params
	adv.Source = SourceOllama
	adv.Model = resp.Model
	if adv.Model == "" {
		adv.Model = a.cfg.Model
	}
	return adv, nil
}

// ruleSet accumulates findings.
type ruleSet struct {
	errs, warns, notes []string
}

func (r *ruleSet) reject(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }
func (r *ruleSet) warn(f string, args ...any)   { r.warns = append(r.warns, fmt.Sprintf(f, args...)) }
func (r *ruleSet) note(f string, args ...any)   { r.notes = append(r.notes, fmt.Sprintf(f, args...)) }

// tail is the one-sided Gaussian tail probability P(z > k).
func tail(k float64) float64 { return math.Erfc(k/math.Sqrt2) / 2 }

func (a *Advisor) rules(req Request) (Advice, agents.Agent, error) {
	if strings.TrimSpace(req.Agent) == "" {
		return Advice{}, nil, fmt.Errorf("%w: Agent is empty", ErrBadAdviceRequest)
	}
	df := req.Dataset
	for name, v := range map[string]float64{"SizeGB": df.SizeGB, "BeamArcsec": df.BeamArcsec, "FractionalBandwidth": df.FractionalBandwidth, "RFIFraction": df.RFIFraction, "MaxSeconds": df.MaxSeconds} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return Advice{}, nil, fmt.Errorf("%w: Dataset.%s = %v: must be finite and >= 0", ErrBadAdviceRequest, name, v)
		}
	}
	if df.RFIFraction > 1 {
		return Advice{}, nil, fmt.Errorf("%w: Dataset.RFIFraction = %v: must be <= 1", ErrBadAdviceRequest, df.RFIFraction)
	}
	adv := Advice{Source: SourceRules}
	var r ruleSet
	ag, err := a.cfg.Registry.Lookup(req.Agent)
	if err != nil {
		adv.Verdict, adv.Feedback = Reject, []string{err.Error()}
		return adv, nil, nil
	}
	params, err := ag.ValidateParams(req.Params)
	if err != nil {
		adv.Verdict, adv.Feedback = Reject, []string{err.Error()}
		return adv, ag, nil
	}
	adv.Params = params
	var p map[string]any
	if err := json.Unmarshal(params, &p); err != nil {
		return Advice{}, nil, fmt.Errorf("%w: normalised params: %v", ErrBadAdviceRequest, err)
	}
	gpus := req.GPUs
	if gpus < 0 {
		r.reject("gpus = %d: must be >= 0", gpus)
	}
	est, err := ag.Estimate(agents.EstimateInput{DatasetID: df.ID, DatasetGB: df.SizeGB, GPUs: max(gpus, 1), Params: params})
	if err != nil {
		r.reject("estimate failed: %v", err)
	}
	adv.EstimatedSeconds = est.Duration.Seconds()
	if df.SizeGB == 0 {
		r.note("dataset size unknown: estimate assumes %d GB", agents.DefaultDatasetGB)
	}
	// GPU scaling (Amdahl).
	d := ag.Descriptor()
	if pf := d.ParallelFraction; gpus > 1 && pf > 0 && pf < 1 {
		speed := 1 / ((1 - pf) + pf/float64(gpus))
		if eff := speed / float64(gpus); eff < 0.5 {
			r.warn("%d GPUs give only %.1fx speed-up (parallel fraction %.2f, efficiency %.0f%%); fewer GPUs cost less for nearly the same time", gpus, speed, pf, 100*eff)
		}
	}
	if df.MaxSeconds > 0 {
		switch {
		case adv.EstimatedSeconds > df.MaxSeconds:
			r.reject("estimated %.0f s exceeds the wall-time limit of %.0f s", adv.EstimatedSeconds, df.MaxSeconds)
		case adv.EstimatedSeconds > 0.8*df.MaxSeconds:
			r.warn("estimated %.0f s is within 20%% of the wall-time limit of %.0f s", adv.EstimatedSeconds, df.MaxSeconds)
		}
	}
	beam := df.BeamArcsec
	if beam == 0 {
		beam = 2.5
	}
	num := func(k string) float64 { f, _ := p[k].(float64); return f }
	str := func(k string) string { s, _ := p[k].(string); return s }
	switch d.Name {
	case agents.NameAlphaCal:
		flagger := str("flagger")
		if flagger == "none" && df.RFIFraction > 0.01 {
			r.warn("flagger none on data with %.0f%% RFI: unflagged RFI corrupts calibration and images", 100*df.RFIFraction)
		}
		if bt := num("base_threshold"); flagger == "sumthreshold" && bt < 0.5 {
			r.warn("base_threshold %.2g flags noise as RFI (AOFlagger default 1.0; below 0.5 the false-positive rate climbs steeply)", bt)
		} else if flagger == "sumthreshold" && bt > 3 {
			r.warn("base_threshold %.2g misses weak and long-lasting RFI (AOFlagger default 1.0)", bt)
		}
		if k := num("mad_k"); flagger == "mad" && k < 3 {
			r.warn("mad_k %.2g flags %.2f%% of clean Gaussian data (two-sided tail)", k, 200*tail(k))
		}
		if eta := num("sir_eta"); flagger == "sumthreshold" && eta > 0.4 {
			r.warn("sir_eta %.2g grows flags aggressively (AOFlagger default 0.2)", eta)
		}
		if s := str("rfi_strategy"); s == "low" && df.RFIFraction > 0.1 {
			r.warn("rfi_strategy low on data with %.0f%% RFI", 100*df.RFIFraction)
		}
		if o := num("bandpass_order"); o >= 6 && df.FractionalBandwidth > 0 && df.FractionalBandwidth < 0.2 {
			r.warn("bandpass_order %.0f over a %.0f%% fractional bandwidth risks fitting noise", o, 100*df.FractionalBandwidth)
		}
	case agents.NameImageReconstruction:
		cell := num("cell_arcsec")
		ppb := beam / cell
		switch {
		case ppb < 2.5-1e-9:
			r.warn("cell_arcsec %.3g gives %.1f pixels per %.2g\" beam: undersampled (want >= 2.5; VLASS QL uses 1\" cells for a 2.5\" beam)", cell, ppb, beam)
		case ppb > 10:
			r.warn("cell_arcsec %.3g gives %.0f pixels per beam: oversampled, slower with no gain", cell, ppb)
		}
		dec := str("deconvolver")
		if g := num("gain"); g > 0.3 && dec != "none" {
			r.warn("loop gain %.2g above 0.3 risks CLEAN instability (CASA default 0.1)", g)
		}
		if n := num("niter"); n == 0 && dec != "none" {
			r.warn("niter 0 with deconvolver %s: the result is a dirty image", dec)
		}
		if ns := num("nsigma"); ns > 0 && ns < 2 && dec != "none" {
			r.warn("nsigma %.2g cleans into the noise (VLASS QL uses 4)", ns)
		}
		if df.ExtendedEmission && (dec == "hogbom" || dec == "clark") {
			r.warn("%s CLEAN mottles extended emission; use multiscale", dec)
		}
		if df.FractionalBandwidth > 0.1 {
			r.note("fractional bandwidth %.0f%%: wideband (mtmfs, nterms 2) imaging as in VLASS QL is advised", 100*df.FractionalBandwidth)
		}
		if n := num("image_size"); n >= 8192 {
			r.note("image_size %.0f needs about %.0f GB for grids and images", n, n*n*8*6/1e9)
		}
	case agents.NameAnomalyDetection:
		if s := num("seed_sigma"); s < 4.5 {
			r.warn("seed_sigma %.2g: about %.0f false detections per million beams of pure noise (5 sigma: %.2g)", s, 1e6*tail(s), 1e6*tail(5))
		}
		if f := num("flood_sigma"); f < 3 {
			r.warn("flood_sigma %.2g lets islands grow into the noise and merge neighbours (Aegean default 4)", f)
		}
		// The beam in pixels assumes the 1" cells of VLASS quick-look.
		box := num("box_pixels")
		if bp := beam; box < 10*bp {
			r.warn("box_pixels %.0f spans under 10 beams: sources bias the background and rms maps", box)
		} else if box > 256 {
			r.warn("box_pixels %.0f is too large to follow rms variations", box)
		}
		if v := num("min_vs"); v < 4.3 {
			r.warn("min_vs %.2g: about %.1f false variables per 1000 steady sources (VAST default 4.3: %.2f)", v, 1000*2*tail(v), 1000*2*tail(4.3))
		}
		if m := num("min_m"); m < 0.26 {
			r.warn("min_m %.2g is below the 0.26 modulation-index cut (Mooley et al. 2016)", m)
		}
		switch ref := str("reference_dataset_id"); {
		case ref == "":
			r.note("no reference_dataset_id: single-epoch source finding, no transient search")
		case ref == df.ID && ref != "":
			r.reject("reference_dataset_id %q is the dataset itself", ref)
		}
	}
	switch {
	case len(r.errs) > 0:
		adv.Verdict = Reject
	case len(r.warns) > 0:
		adv.Verdict = Warn
	default:
		adv.Verdict = Approve
	}
	adv.Feedback = append(append(append([]string{}, r.errs...), r.warns...), r.notes...)
	if len(adv.Feedback) == 0 {
		adv.Feedback = []string{fmt.Sprintf("parameters suit the dataset; estimated %s on %d GPU(s)", (time.Duration(adv.EstimatedSeconds) * time.Second).String(), max(gpus, 1))}
	}
	adv.Score = score(adv.Verdict, len(r.warns))
	return adv, ag, nil
}

// score maps a verdict and the number of warnings to 0–1: rejects score 0,
// an approval 1, each warning costs 0.15 (floor 0.1).
func score(v Verdict, warns int) float64 {
	if v == Reject {
		return 0
	}
	return math.Max(0.1, 1-0.15*float64(warns))
}
