package agents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sentinel errors.
var (
	// ErrUnknownAgent reports a name that no registered agent answers to.
	ErrUnknownAgent = errors.New("agents: unknown agent")
	// ErrInvalidParams reports parameters that fail validation.
	ErrInvalidParams = errors.New("agents: invalid parameters")
	// ErrNotRunnable reports an agent whose descriptor has no run function
	// in this binary (it can still be scheduled on a backend that models it).
	ErrNotRunnable = errors.New("agents: agent has no run function")
	// ErrDuplicate reports a second registration of a name or alias.
	ErrDuplicate = errors.New("agents: duplicate registration")
)

// ParamError is the error for one bad parameter. It wraps ErrInvalidParams.
type ParamError struct {
	Agent string
	Field string
	Value any
	Msg   string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("agents: %s: parameter %s = %s: %s", e.Agent, e.Field, shortJSON(e.Value), e.Msg)
}

// Unwrap returns ErrInvalidParams.
func (e *ParamError) Unwrap() error { return ErrInvalidParams }

func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// ProgressFunc receives progress in percent (0–100) and a short note.
type ProgressFunc func(percent float64, note string)

// Input is what an agent run receives.
type Input struct {
	// JobID identifies the job being run.
	JobID string
	// DatasetID names the dataset to process.
	DatasetID string
	// Params are validated parameters with defaults applied.
	Params json.RawMessage
	// GPUs is the number of GPUs granted.
	GPUs int
	// WorkDir is a directory the agent may write outputs into; empty means
	// the agent keeps its outputs in memory only.
	WorkDir string
	// Seed makes synthetic inputs reproducible.
	Seed int64
}

// Output is what an agent run returns.
type Output struct {
	// Summary is a one-line human description.
	Summary string `json:"summary"`
	// Metrics are named figures (counts, scores, timings).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Result is the agent-specific document (catalogue, strategy, image
	// statistics).
	Result json.RawMessage `json:"result,omitempty"`
	// Artifacts are files written into WorkDir, relative to it.
	Artifacts []string `json:"artifacts,omitempty"`
}

// EstimateInput is what an estimate depends on.
type EstimateInput struct {
	DatasetID string
	// DatasetGB is the dataset size in GB; 0 means unknown (a default is
	// assumed).
	DatasetGB float64
	GPUs      int
	Params    json.RawMessage
}

// Estimate is a cost and duration forecast for one run.
type Estimate struct {
	// Duration is the expected wall time on real hardware.
	Duration time.Duration `json:"duration"`
	// GPUHours is Duration times the GPUs used.
	GPUHours float64 `json:"gpu_hours"`
	// MemoryMB is the expected peak memory.
	MemoryMB int `json:"memory_mb"`
}

// Agent is one kind of work. Implementations must be safe for concurrent use.
type Agent interface {
	// Name is the canonical name, e.g. "alphacal".
	Name() string
	// Descriptor documents the agent and its parameters.
	Descriptor() Descriptor
	// ValidateParams checks raw (a JSON object, or empty for none) and
	// returns it normalised with defaults applied. Errors are *ParamError.
	ValidateParams(raw json.RawMessage) (json.RawMessage, error)
	// Estimate forecasts duration and cost.
	Estimate(in EstimateInput) (Estimate, error)
	// Run does the work, calling progress as it goes.
	Run(ctx context.Context, in Input, progress ProgressFunc) (Output, error)
}

// ParamType is the JSON type of a parameter.
type ParamType string

// Parameter types.
const (
	Integer ParamType = "integer"
	Number  ParamType = "number"
	String  ParamType = "string"
	Boolean ParamType = "boolean"
)

// Param declares one agent parameter.
type Param struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Description string    `json:"description"`
	Default     any       `json:"default,omitempty"`
	// Min and Max bound numbers (inclusive); nil means unbounded.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Enum lists the allowed strings.
	Enum []string `json:"enum,omitempty"`
	// PowerOfTwo requires an integer that is a power of two.
	PowerOfTwo bool `json:"power_of_two,omitempty"`
	// Required params have no default and must be given.
	Required bool `json:"required,omitempty"`
}

// RunFunc is the body of an agent.
type RunFunc func(ctx context.Context, in Input, progress ProgressFunc) (Output, error)

// Descriptor declares an agent.
type Descriptor struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases,omitempty"`
	Description string   `json:"description"`
	Params      []Param  `json:"params"`
	// BaseSeconds is the modelled run time for a 10 GB dataset on one GPU.
	BaseSeconds float64 `json:"base_seconds"`
	// ParallelFraction is the Amdahl parallel fraction for GPU scaling.
	ParallelFraction float64 `json:"parallel_fraction"`
	// MemoryMBPerGB is the modelled peak memory per GB of dataset.
	MemoryMBPerGB float64 `json:"memory_mb_per_gb"`
	// Check runs after per-parameter validation for cross-field rules.
	Check func(params map[string]any) error `json:"-"`
	// Run is the work itself; nil means the agent cannot run in-process.
	Run RunFunc `json:"-"`
}

// New returns an Agent for d. It panics if d has no name or declares a
// parameter twice, which is a programming error.
func New(d Descriptor) Agent {
	if d.Name == "" {
		panic("agents: descriptor without a name")
	}
	seen := map[string]bool{}
	for _, p := range d.Params {
		if seen[p.Name] {
			panic("agents: parameter " + p.Name + " declared twice in " + d.Name)
		}
		seen[p.Name] = true
	}
	return &descAgent{d: d}
}

// WithRun returns a copy of d with its run function set.
func (d Descriptor) WithRun(run RunFunc) Descriptor {
	d.Run = run
	return d
}

type descAgent struct{ d Descriptor }

func (a *descAgent) Name() string           { return a.d.Name }
func (a *descAgent) Descriptor() Descriptor { return a.d }

func (a *descAgent) ValidateParams(raw json.RawMessage) (json.RawMessage, error) {
	params := map[string]any{}
	if s := strings.TrimSpace(string(raw)); s != "" && s != "null" {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&params); err != nil {
			return nil, &ParamError{Agent: a.d.Name, Field: "params", Value: s, Msg: "must be a JSON object"}
		}
	}
	known := map[string]Param{}
	for _, p := range a.d.Params {
		known[p.Name] = p
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := known[k]; !ok {
			return nil, &ParamError{Agent: a.d.Name, Field: k, Value: params[k], Msg: "unknown parameter; known: " + strings.Join(paramNames(a.d.Params), ", ")}
		}
	}
	out := map[string]any{}
	for _, p := range a.d.Params {
		v, ok := params[p.Name]
		if !ok || v == nil {
			if p.Required {
				return nil, &ParamError{Agent: a.d.Name, Field: p.Name, Value: nil, Msg: "is required"}
			}
			if p.Default != nil {
				out[p.Name] = p.Default
			}
			continue
		}
		nv, err := checkParam(p, v)
		if err != nil {
			return nil, &ParamError{Agent: a.d.Name, Field: p.Name, Value: v, Msg: err.Error()}
		}
		out[p.Name] = nv
	}
	if a.d.Check != nil {
		if err := a.d.Check(out); err != nil {
			var pe *ParamError
			if errors.As(err, &pe) {
				pe.Agent = a.d.Name
				return nil, pe
			}
			return nil, &ParamError{Agent: a.d.Name, Field: "params", Value: out, Msg: err.Error()}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("agents: %s: encode params: %w", a.d.Name, err)
	}
	return b, nil
}

func paramNames(ps []Param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func checkParam(p Param, v any) (any, error) {
	switch p.Type {
	case Integer, Number:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("must be a %s", p.Type)
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("must be a finite %s", p.Type)
		}
		if p.Type == Integer && f != math.Trunc(f) {
			return nil, fmt.Errorf("must be an integer")
		}
		if p.Min != nil && f < *p.Min {
			return nil, fmt.Errorf("must be >= %v", *p.Min)
		}
		if p.Max != nil && f > *p.Max {
			return nil, fmt.Errorf("must be <= %v", *p.Max)
		}
		if p.PowerOfTwo {
			i := int64(f)
			if i <= 0 || i&(i-1) != 0 {
				return nil, fmt.Errorf("must be a power of two")
			}
		}
		if p.Type == Integer {
			return int64(f), nil
		}
		return f, nil
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string")
		}
		if len(p.Enum) > 0 {
			for _, e := range p.Enum {
				if e == s {
					return s, nil
				}
			}
			return nil, fmt.Errorf("must be one of %s", strings.Join(p.Enum, ", "))
		}
		return s, nil
	case Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false")
		}
		return b, nil
	}
	return nil, fmt.Errorf("has undeclared type %q", p.Type)
}

// DefaultDatasetGB is assumed when an estimate does not know the dataset
// size.
const DefaultDatasetGB = 10

func (a *descAgent) Estimate(in EstimateInput) (Estimate, error) {
	gb := in.DatasetGB
	if gb <= 0 {
		gb = DefaultDatasetGB
	}
	gpus := in.GPUs
	if gpus < 1 {
		gpus = 1
	}
	base := a.d.BaseSeconds
	if base <= 0 {
		base = 60
	}
	p := a.d.ParallelFraction
	if p < 0 || p > 1 {
		p = 0.9
	}
	// Amdahl's law over the GPUs, linear in the dataset size.
	secs := base * (gb / 10) * ((1 - p) + p/float64(gpus))
	d := time.Duration(secs * float64(time.Second))
	return Estimate{
		Duration: d,
		GPUHours: d.Hours() * float64(max(in.GPUs, 0)),
		MemoryMB: int(math.Ceil(a.d.MemoryMBPerGB * gb)),
	}, nil
}

func (a *descAgent) Run(ctx context.Context, in Input, progress ProgressFunc) (Output, error) {
	if a.d.Run == nil {
		return Output{}, fmt.Errorf("%w: %s", ErrNotRunnable, a.d.Name)
	}
	if progress == nil {
		progress = func(float64, string) {}
	}
	return a.d.Run(ctx, in, progress)
}

// Registry maps names and aliases to agents. It is safe for concurrent use.
// The zero value is an empty registry.
type Registry struct {
	mu     sync.RWMutex
	agents map[string]Agent
	alias  map[string]string
}

// Register adds a. Names and aliases are matched case-insensitively; a
// clash with an existing name or alias is ErrDuplicate.
func (r *Registry) Register(a Agent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.agents == nil {
		r.agents = map[string]Agent{}
		r.alias = map[string]string{}
	}
	names := append([]string{a.Name()}, a.Descriptor().Aliases...)
	for _, n := range names {
		if _, ok := r.alias[strings.ToLower(n)]; ok {
			return fmt.Errorf("%w: %q", ErrDuplicate, n)
		}
	}
	r.agents[a.Name()] = a
	for _, n := range names {
		r.alias[strings.ToLower(n)] = a.Name()
	}
	return nil
}

// Replace registers a, replacing any agent with the same canonical name
// (used to attach a run function to a built-in descriptor).
func (r *Registry) Replace(a Agent) {
	r.mu.Lock()
	if old, ok := r.agents[a.Name()]; ok {
		for _, n := range append([]string{old.Name()}, old.Descriptor().Aliases...) {
			delete(r.alias, strings.ToLower(n))
		}
		delete(r.agents, old.Name())
	}
	r.mu.Unlock()
	if err := r.Register(a); err != nil {
		panic(err) // only an alias clash with another agent gets here
	}
}

// Lookup returns the agent answering to name (canonical or alias).
func (r *Registry) Lookup(name string) (Agent, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	canon, ok := r.alias[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownAgent, name, strings.Join(r.namesLocked(), ", "))
	}
	return r.agents[canon], nil
}

// Names returns the canonical names in lexical order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.namesLocked()
}

func (r *Registry) namesLocked() []string {
	out := make([]string, 0, len(r.agents))
	for n := range r.agents {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewRegistry returns a registry holding the three built-in agent
// descriptors (without run functions; the algorithm subpackages provide
// runnable versions to Replace them with).
func NewRegistry() *Registry {
	r := &Registry{}
	for _, d := range []Descriptor{AlphaCal(), ImageReconstruction(), AnomalyDetection()} {
		if err := r.Register(New(d)); err != nil {
			panic(err)
		}
	}
	return r
}
