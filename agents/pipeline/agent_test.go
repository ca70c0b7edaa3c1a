package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
)

func TestAgent(t *testing.T) {
	reg := agents.NewRegistry()
	if err := reg.Register(pipeline.NewAgent()); err != nil {
		t.Fatal(err)
	}
	a, err := reg.Lookup("pipeline")
	if err != nil || a.Name() != pipeline.Name {
		t.Fatalf("Lookup(pipeline) = %v, %v", a, err)
	}
	for _, bad := range []string{`{"image_size": 100}`, `{"flagger": "x"}`, `{"niter": 0}`, `{"nope": 1}`, `[1]`} {
		if _, err := a.ValidateParams(json.RawMessage(bad)); !errors.Is(err, agents.ErrInvalidParams) {
			t.Errorf("ValidateParams(%s) = %v, want ErrInvalidParams", bad, err)
		}
	}
	if _, err := a.Run(context.Background(), agents.Input{}, nil); !errors.Is(err, agents.ErrInvalidParams) {
		t.Errorf("Run without dataset = %v", err)
	}
	dir := t.TempDir()
	var notes []string
	out, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS2.1.T10t01", Params: json.RawMessage(`{"image_size": 128}`), WorkDir: dir},
		func(_ float64, n string) { notes = append(notes, n) })
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["transient_found"] != 1 || out.Metrics["sources_matched"] != out.Metrics["truth_sources"] {
		t.Errorf("metrics %+v", out.Metrics)
	}
	var sum pipeline.Summary
	if err := json.Unmarshal(out.Result, &sum); err != nil || sum.ImageSize != 128 {
		t.Fatalf("result %s: %v", out.Result, err)
	}
	if len(out.Artifacts) != 11 {
		t.Errorf("artifacts %v", out.Artifacts)
	}
	for _, f := range out.Artifacts {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if notes[0] != "stage synthesis started" || notes[len(notes)-1] != "stage outputs completed" {
		t.Errorf("notes %q ... %q", notes[0], notes[len(notes)-1])
	}
}
