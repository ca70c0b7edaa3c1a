package workflow_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

func TestValidateRejectsNamingTheCulprit(t *testing.T) {
	reg := agents.NewRegistry()
	ok := func() workflow.Definition {
		return workflow.Definition{Name: "wf", Inputs: map[string]string{"ds": ""}, Steps: []workflow.Step{
			{Name: "cal", Agent: "alphacal", DatasetID: "${inputs.ds}", GPUs: 1, Outputs: map[string]string{"out": "dataset_id"}},
			{Name: "img", Agent: "imaging", DatasetID: "${steps.cal.outputs.out}", DependsOn: []string{"cal"}, Params: json.RawMessage(`{"image_size": 512}`)},
		}}
	}
	if d := ok(); d.Validate(reg) != nil {
		t.Fatalf("valid definition rejected: %v", d.Validate(reg))
	}
	cases := []struct {
		name   string
		edit   func(d *workflow.Definition)
		field  string
		substr string
	}{
		{"bad name", func(d *workflow.Definition) { d.Name = "Bad Name" }, "name", "a-z"},
		{"no steps", func(d *workflow.Definition) { d.Steps = nil }, "steps", "at least one"},
		{"policy", func(d *workflow.Definition) { d.FailurePolicy = "sometimes" }, "failure_policy", "sometimes"},
		{"duplicate step", func(d *workflow.Definition) { d.Steps[1].Name = "cal" }, "steps[cal].name", "duplicate"},
		{"unknown dependency", func(d *workflow.Definition) { d.Steps[1].DependsOn = []string{"ghost"} }, "steps[img].depends_on", `"ghost"`},
		{"self dependency", func(d *workflow.Definition) { d.Steps[0].DependsOn = []string{"cal"} }, "steps[cal].depends_on", "itself"},
		{"cycle", func(d *workflow.Definition) {
			d.Steps[0].DependsOn = []string{"img"}
			d.Steps[0].DatasetID = "x"
		}, "steps[cal].depends_on", "cal -> img -> cal"},
		{"unknown agent", func(d *workflow.Definition) { d.Steps[1].Agent = "teleport" }, "steps[img].agent", "teleport"},
		{"bad param", func(d *workflow.Definition) { d.Steps[1].Params = json.RawMessage(`{"image_size": 500}`) }, "steps[img].params.image_size", "500"},
		{"unknown param", func(d *workflow.Definition) { d.Steps[1].Params = json.RawMessage(`{"colour": "red"}`) }, "steps[img].params.colour", "unknown parameter"},
		{"params not object", func(d *workflow.Definition) { d.Steps[1].Params = json.RawMessage(`[1]`) }, "steps[img].params", "JSON object"},
		{"gpus", func(d *workflow.Definition) { d.Steps[0].GPUs = 65 }, "steps[cal].gpus", "65"},
		{"dataset", func(d *workflow.Definition) { d.Steps[0].DatasetID = "" }, "steps[cal].dataset_id", "required"},
		{"undeclared input", func(d *workflow.Definition) { d.Steps[0].DatasetID = "${inputs.other}" }, "steps[cal].dataset_id", `"other"`},
		{"undeclared output", func(d *workflow.Definition) { d.Steps[1].DatasetID = "${steps.cal.outputs.nope}" }, "steps[img].dataset_id", `"nope"`},
		{"malformed reference", func(d *workflow.Definition) { d.Steps[1].DatasetID = "${steps.cal}" }, "steps[img].dataset_id", "malformed"},
		{"reference without dependency", func(d *workflow.Definition) { d.Steps[1].DependsOn = nil }, "steps[img].dataset_id", "does not depend on"},
		{"bad output path", func(d *workflow.Definition) { d.Steps[0].Outputs = map[string]string{"out": "a..b"} }, "steps[cal].outputs.out", "dotted path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := ok()
			c.edit(&d)
			err := d.Validate(reg)
			var fe *workflow.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, workflow.ErrInvalid) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(err.Error(), c.substr) {
				t.Errorf("err = %q (field %s), want field %s and %q", err, fe.Field, c.field, c.substr)
			}
		})
	}
	// The agent's own error stays reachable.
	d := ok()
	d.Steps[1].Agent = "teleport"
	if err := d.Validate(reg); !errors.Is(err, agents.ErrUnknownAgent) {
		t.Errorf("unknown agent error %v does not wrap agents.ErrUnknownAgent", err)
	}
	d = ok()
	d.Steps[0].GPUs = -1
	if err := d.Validate(reg); !errors.Is(err, orchestrator.ErrInvalidSpec) {
		t.Errorf("bad spec error %v does not wrap orchestrator.ErrInvalidSpec", err)
	}
}

func TestBuiltinsAreValid(t *testing.T) {
	bs := workflow.Builtins()
	if len(bs) != 1 || bs[0].Name != workflow.VLASSPipeline {
		t.Fatalf("builtins %+v", bs)
	}
	if err := bs[0].Validate(agents.NewRegistry()); err != nil {
		t.Fatal(err)
	}
	var agentsInOrder []string
	for _, s := range bs[0].Steps {
		agentsInOrder = append(agentsInOrder, s.Agent)
	}
	if got := strings.Join(agentsInOrder, ","); got != "alphacal,image-reconstruction,anomaly-detection" {
		t.Errorf("pipeline agents %s", got)
	}
}

func TestRunCloneIsDeep(t *testing.T) {
	r := &workflow.Run{ID: "r", Inputs: map[string]string{"a": "1"}, Steps: []workflow.StepRun{{Name: "s", Outputs: json.RawMessage(`{"x":1}`)}}}
	c := r.Clone()
	c.Inputs["a"] = "2"
	c.Steps[0].Name = "t"
	c.Steps[0].Outputs[2] = 'y'
	if r.Inputs["a"] != "1" || r.Steps[0].Name != "s" || string(r.Steps[0].Outputs) != `{"x":1}` {
		t.Errorf("clone shares memory with the original: %+v", r)
	}
}
