package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/orchestrator"
)

// Sentinel errors. They are wrapped with %w; test with errors.Is. Store
// drivers map their native errors onto them.
var (
	// ErrNotFound reports a workflow, version or run that does not exist
	// (or that the caller may not see).
	ErrNotFound = errors.New("workflow: not found")
	// ErrConflict reports a name that is taken, a concurrent update, or an
	// operation the run's state forbids (cancelling a finished run).
	ErrConflict = errors.New("workflow: conflict")
	// ErrInvalid reports a definition or run request that fails validation;
	// the error is a *FieldError naming the step and field.
	ErrInvalid = errors.New("workflow: invalid")
	// ErrClosed reports use of a stopped engine or closed store.
	ErrClosed = errors.New("workflow: closed")
)

// FieldError is a validation error. Field is a path such as
// "steps[imaging].dataset_id" or "inputs.dataset_id". It wraps ErrInvalid
// (and Err when set).
type FieldError struct {
	Field string
	Value any
	Msg   string
	Err   error
}

// Error says which field was wrong, with its value, and why.
func (e *FieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("field %s: %s", e.Field, e.Msg)
	}
	v, _ := json.Marshal(e.Value)
	s := string(v)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("field %s = %s: %s", e.Field, s, e.Msg)
}

// Unwrap returns ErrInvalid and Err.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// FailurePolicy decides what a run does when a step fails.
type FailurePolicy string

// Failure policies.
const (
	// FailFast cancels the run's other running steps and skips the rest
	// as soon as one step fails. It is the default.
	FailFast FailurePolicy = "fail_fast"
	// Continue keeps running every step that does not depend on the
	// failed one; the run fails when nothing is left to run.
	Continue FailurePolicy = "continue"
)

// Step is one job of a workflow.
type Step struct {
	// Name identifies the step within its workflow: 1–64 characters of
	// lower-case letters, digits, '_' and '-', starting with a letter.
	Name string `json:"name"`
	// Agent, DatasetID, GPUs, MemoryMB, Params and Priority make the job
	// spec (see orchestrator.Spec). DatasetID and string values in Params
	// may hold references, resolved when the step starts:
	// ${inputs.NAME} is a run input, ${steps.STEP.outputs.NAME} a declared
	// output of a step this one depends on. A string that is exactly one
	// reference takes the referenced JSON value (a number stays a number).
	Agent     string          `json:"agent"`
	DatasetID string          `json:"dataset_id"`
	GPUs      int             `json:"gpus"`
	MemoryMB  int             `json:"memory_mb,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Priority  int             `json:"priority,omitempty"`
	// DependsOn names the steps that must complete before this one starts.
	DependsOn []string `json:"depends_on,omitempty"`
	// Outputs declares what the step passes on: output name → dotted path
	// into the finished job's result JSON (e.g. "image": "dataset_id").
	Outputs map[string]string `json:"outputs,omitempty"`
}

// Definition is one version of a workflow.
type Definition struct {
	// Name identifies the workflow: 1–64 characters of lower-case letters,
	// digits, '_' and '-', starting with a letter.
	Name string `json:"name"`
	// Version is assigned by the store when the definition is published,
	// from 1.
	Version     int    `json:"version"`
	Description string `json:"description,omitempty"`
	// FailurePolicy is FailFast (the default when empty) or Continue.
	FailurePolicy FailurePolicy `json:"failure_policy,omitempty"`
	// Inputs declares the run inputs and their defaults; an empty default
	// makes the input required.
	Inputs map[string]string `json:"inputs,omitempty"`
	// Steps in any order; at least one, at most MaxSteps.
	Steps []Step `json:"steps"`
	// CreatedBy and CreatedAt are set when the version is published.
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Limits of a definition.
const (
	MaxSteps      = 100
	MaxNameLen    = 64
	MaxInputs     = 32
	MaxInputLen   = 1024
	MaxDescLen    = 1024
	MaxOutputs    = 32
	MaxOutputPath = 256
)

var (
	nameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	refRe  = regexp.MustCompile(`\$\{([^}]*)\}`)
	pathRe = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)
)

// Clone returns a deep copy of d.
func (d *Definition) Clone() *Definition {
	b, _ := json.Marshal(d)
	var c Definition
	_ = json.Unmarshal(b, &c)
	return &c
}

// Step returns the step called name.
func (d *Definition) Step(name string) (Step, bool) {
	for _, s := range d.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// ref is a parsed ${...} reference.
type ref struct {
	input  string // ${inputs.NAME}
	step   string // ${steps.STEP.outputs.NAME}
	output string
}

func parseRef(s string) (ref, error) {
	parts := strings.Split(s, ".")
	switch {
	case len(parts) == 2 && parts[0] == "inputs" && parts[1] != "":
		return ref{input: parts[1]}, nil
	case len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs" && parts[1] != "" && parts[3] != "":
		return ref{step: parts[1], output: parts[3]}, nil
	}
	return ref{}, fmt.Errorf("reference ${%s} is malformed; want ${inputs.NAME} or ${steps.STEP.outputs.NAME}", s)
}

// refsIn returns the references in s.
func refsIn(s string) ([]ref, error) {
	var out []ref
	for _, m := range refRe.FindAllStringSubmatch(s, -1) {
		r, err := parseRef(m[1])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Validate checks d against the agent registry: names, failure policy,
// inputs, steps (each a valid job spec whose agent exists and accepts the
// parameters), dependencies (known, not on itself, no cycle), references
// and declared outputs. The error is a *FieldError naming the offending
// step and field.
func (d *Definition) Validate(reg *agents.Registry) error {
	if reg == nil {
		reg = agents.NewRegistry()
	}
	if !nameRe.MatchString(d.Name) {
		return &FieldError{Field: "name", Value: d.Name, Msg: "must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter"}
	}
	if len(d.Description) > MaxDescLen {
		return &FieldError{Field: "description", Value: fmt.Sprintf("%d characters", len(d.Description)), Msg: fmt.Sprintf("is longer than %d characters", MaxDescLen)}
	}
	switch d.FailurePolicy {
	case "", FailFast, Continue:
	default:
		return &FieldError{Field: "failure_policy", Value: string(d.FailurePolicy), Msg: `unknown policy; want "fail_fast" or "continue"`}
	}
	if len(d.Inputs) > MaxInputs {
		return &FieldError{Field: "inputs", Value: len(d.Inputs), Msg: fmt.Sprintf("declares more than %d inputs", MaxInputs)}
	}
	for _, k := range sortedKeys(d.Inputs) {
		if !nameRe.MatchString(k) {
			return &FieldError{Field: "inputs." + k, Value: k, Msg: "input names must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter"}
		}
		if len(d.Inputs[k]) > MaxInputLen {
			return &FieldError{Field: "inputs." + k, Value: fmt.Sprintf("%d characters", len(d.Inputs[k])), Msg: fmt.Sprintf("default is longer than %d characters", MaxInputLen)}
		}
	}
	if len(d.Steps) == 0 {
		return &FieldError{Field: "steps", Msg: "a workflow needs at least one step"}
	}
	if len(d.Steps) > MaxSteps {
		return &FieldError{Field: "steps", Value: len(d.Steps), Msg: fmt.Sprintf("a workflow has at most %d steps", MaxSteps)}
	}
	index := map[string]int{}
	for i, s := range d.Steps {
		if !nameRe.MatchString(s.Name) {
			return &FieldError{Field: fmt.Sprintf("steps[%d].name", i), Value: s.Name, Msg: "must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter"}
		}
		if j, dup := index[s.Name]; dup {
			return &FieldError{Field: fmt.Sprintf("steps[%s].name", s.Name), Value: s.Name, Msg: fmt.Sprintf("duplicate step name (steps %d and %d)", j, i)}
		}
		index[s.Name] = i
	}
	for _, s := range d.Steps {
		if err := d.validateStep(reg, s, index); err != nil {
			return err
		}
	}
	if cyc := d.cycle(); cyc != nil {
		return &FieldError{Field: fmt.Sprintf("steps[%s].depends_on", cyc[0]), Value: cyc, Msg: "dependency cycle " + strings.Join(cyc, " -> ")}
	}
	// A step may only reference outputs of steps it (transitively)
	// depends on, so they are known when it starts.
	for _, s := range d.Steps {
		anc := d.ancestors(s.Name)
		for field, refs := range stepRefs(s) {
			for _, r := range refs {
				if r.step == "" {
					continue
				}
				if !anc[r.step] {
					return &FieldError{Field: fmt.Sprintf("steps[%s].%s", s.Name, field), Value: "${steps." + r.step + ".outputs." + r.output + "}", Msg: fmt.Sprintf("references step %q, which this step does not depend on", r.step)}
				}
			}
		}
	}
	return nil
}

// stepRefs returns the references of s by field ("dataset_id",
// "params.KEY"). Malformed references were rejected by validateStep.
func stepRefs(s Step) map[string][]ref {
	out := map[string][]ref{}
	if rs, _ := refsIn(s.DatasetID); len(rs) > 0 {
		out["dataset_id"] = rs
	}
	var params map[string]any
	if json.Unmarshal(s.Params, &params) == nil {
		walkStrings(params, "params", func(field, v string) {
			if rs, _ := refsIn(v); len(rs) > 0 {
				out[field] = append(out[field], rs...)
			}
		})
	}
	return out
}

// walkStrings calls f for every string value under v.
func walkStrings(v any, field string, f func(field, v string)) {
	switch x := v.(type) {
	case string:
		f(field, x)
	case map[string]any:
		for _, k := range sortedKeys(x) {
			walkStrings(x[k], field+"."+k, f)
		}
	case []any:
		for i, e := range x {
			walkStrings(e, fmt.Sprintf("%s[%d]", field, i), f)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (d *Definition) validateStep(reg *agents.Registry, s Step, index map[string]int) error {
	fe := func(field string, value any, msg string, err error) error {
		return &FieldError{Field: fmt.Sprintf("steps[%s].%s", s.Name, field), Value: value, Msg: msg, Err: err}
	}
	seen := map[string]bool{}
	for _, dep := range s.DependsOn {
		if dep == s.Name {
			return fe("depends_on", dep, "a step cannot depend on itself", nil)
		}
		if _, ok := index[dep]; !ok {
			return fe("depends_on", dep, "unknown step; known: "+strings.Join(d.stepNames(), ", "), nil)
		}
		if seen[dep] {
			return fe("depends_on", dep, "listed twice", nil)
		}
		seen[dep] = true
	}
	if len(s.Outputs) > MaxOutputs {
		return fe("outputs", len(s.Outputs), fmt.Sprintf("declares more than %d outputs", MaxOutputs), nil)
	}
	for _, k := range sortedKeys(s.Outputs) {
		if !nameRe.MatchString(k) {
			return fe("outputs."+k, k, "output names must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter", nil)
		}
		if p := s.Outputs[k]; len(p) > MaxOutputPath || !pathRe.MatchString(p) {
			return fe("outputs."+k, p, "must be a dotted path into the job result, such as \"dataset_id\" or \"catalogue.sources\"", nil)
		}
	}
	// References: well formed, naming declared inputs and outputs.
	checkRefs := func(field, v string) error {
		rs, err := refsIn(v)
		if err != nil {
			return fe(field, v, err.Error(), nil)
		}
		for _, r := range rs {
			if r.input != "" {
				if _, ok := d.Inputs[r.input]; !ok {
					return fe(field, v, fmt.Sprintf("references input %q, which the workflow does not declare in inputs", r.input), nil)
				}
				continue
			}
			dep, ok := d.Step(r.step)
			if !ok {
				return fe(field, v, fmt.Sprintf("references unknown step %q", r.step), nil)
			}
			if _, ok := dep.Outputs[r.output]; !ok {
				return fe(field, v, fmt.Sprintf("references output %q, which step %q does not declare", r.output, r.step), nil)
			}
		}
		return nil
	}
	if err := checkRefs("dataset_id", s.DatasetID); err != nil {
		return err
	}
	var params map[string]any
	if p := bytes.TrimSpace(s.Params); len(p) > 0 && string(p) != "null" {
		if err := json.Unmarshal(p, &params); err != nil {
			return fe("params", string(p), "must be a JSON object", nil)
		}
	}
	var perr error
	walkStrings(params, "params", func(field, v string) {
		if perr == nil {
			perr = checkRefs(field, v)
		}
	})
	if perr != nil {
		return perr
	}
	// The job spec: with references replaced by placeholders, and params
	// holding references left out (their values are known only at run
	// time, when the orchestrator validates the resolved spec again).
	spec := s.spec()
	if refRe.MatchString(spec.DatasetID) {
		spec.DatasetID = "ref"
	}
	static := map[string]any{}
	for k, v := range params {
		if !containsRef(v) {
			static[k] = v
		}
	}
	spec.Params, _ = json.Marshal(static)
	if err := spec.Validate(); err != nil {
		var ofe *orchestrator.FieldError
		if errors.As(err, &ofe) {
			return fe(ofe.Field, ofe.Value, ofe.Msg, err)
		}
		return fe("spec", nil, err.Error(), err)
	}
	agent, err := reg.Lookup(s.Agent)
	if err != nil {
		return fe("agent", s.Agent, "unknown agent; known: "+strings.Join(reg.Names(), ", "), err)
	}
	if _, err := agent.ValidateParams(spec.Params); err != nil {
		var pe *agents.ParamError
		if errors.As(err, &pe) {
			field := "params"
			if pe.Field != "params" {
				field = "params." + pe.Field
			}
			return fe(field, pe.Value, pe.Msg, err)
		}
		return fe("params", string(spec.Params), err.Error(), err)
	}
	return nil
}

func containsRef(v any) bool {
	found := false
	walkStrings(v, "", func(_, s string) {
		if refRe.MatchString(s) {
			found = true
		}
	})
	return found
}

func (d *Definition) stepNames() []string {
	out := make([]string, len(d.Steps))
	for i, s := range d.Steps {
		out[i] = s.Name
	}
	return out
}

// spec returns the job spec of s as written (references unresolved).
func (s Step) spec() orchestrator.Spec {
	return orchestrator.Spec{Agent: s.Agent, DatasetID: s.DatasetID, GPUs: s.GPUs, MemoryMB: s.MemoryMB, Params: s.Params, Priority: s.Priority}
}

// cycle returns one dependency cycle as step names (first == last), or nil.
func (d *Definition) cycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		s, _ := d.Step(n)
		for _, dep := range s.DependsOn {
			switch color[dep] {
			case grey:
				i := slices.Index(stack, dep)
				found = append(append([]string{}, stack[i:]...), dep)
				return true
			case white:
				if visit(dep) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, s := range d.Steps {
		if color[s.Name] == white && visit(s.Name) {
			return found
		}
	}
	return nil
}

// ancestors returns the steps name depends on, directly or not.
func (d *Definition) ancestors(name string) map[string]bool {
	out := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		s, _ := d.Step(n)
		for _, dep := range s.DependsOn {
			if !out[dep] {
				out[dep] = true
				walk(dep)
			}
		}
	}
	walk(name)
	return out
}

// resolveString substitutes the references in v. exact reports that v was
// a single reference and raw holds the referenced JSON value.
func resolveString(v string, lookup func(ref) (json.RawMessage, error)) (out string, raw json.RawMessage, err error) {
	ms := refRe.FindAllStringSubmatchIndex(v, -1)
	if len(ms) == 0 {
		return v, nil, nil
	}
	if len(ms) == 1 && ms[0][0] == 0 && ms[0][1] == len(v) {
		r, err := parseRef(v[ms[0][2]:ms[0][3]])
		if err != nil {
			return "", nil, err
		}
		raw, err := lookup(r)
		if err != nil {
			return "", nil, err
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, raw, nil
		}
		return string(raw), raw, nil
	}
	var b strings.Builder
	last := 0
	for _, m := range ms {
		b.WriteString(v[last:m[0]])
		r, err := parseRef(v[m[2]:m[3]])
		if err != nil {
			return "", nil, err
		}
		raw, err := lookup(r)
		if err != nil {
			return "", nil, err
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			b.WriteString(s)
		} else {
			b.Write(raw)
		}
		last = m[1]
	}
	b.WriteString(v[last:])
	return b.String(), nil, nil
}

// resolveParams substitutes references in every string of params.
func resolveParams(params json.RawMessage, lookup func(ref) (json.RawMessage, error)) (json.RawMessage, error) {
	if p := bytes.TrimSpace(params); len(p) == 0 || string(p) == "null" || !refRe.Match(p) {
		return params, nil
	}
	var v any
	if err := json.Unmarshal(params, &v); err != nil {
		return nil, err
	}
	var rerr error
	var walk func(v any, field string) any
	walk = func(v any, field string) any {
		switch x := v.(type) {
		case string:
			s, raw, err := resolveString(x, lookup)
			if err != nil {
				if rerr == nil {
					rerr = fmt.Errorf("%s: %w", field, err)
				}
				return x
			}
			if raw != nil {
				var any1 any
				if json.Unmarshal(raw, &any1) == nil {
					return any1
				}
			}
			return s
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e, field+"."+k)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e, fmt.Sprintf("%s[%d]", field, i))
			}
		}
		return v
	}
	v = walk(v, "params")
	if rerr != nil {
		return nil, rerr
	}
	return json.Marshal(v)
}

// lookupPath follows a dotted path through a JSON document.
func lookupPath(doc json.RawMessage, path string) (json.RawMessage, bool) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(cur, &m) != nil {
			return nil, false
		}
		next, ok := m[part]
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}
