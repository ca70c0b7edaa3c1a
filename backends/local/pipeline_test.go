package local_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
)

// The local backend runs a real registered agent: anomaly detection on the
// synthetic image of a dataset.
func TestRunsRealAnomalyAgent(t *testing.T) {
	reg := &agents.Registry{}
	if err := reg.Register(anomaly.NewAgent()); err != nil {
		t.Fatal(err)
	}
	d := newLocal(t, local.Config{Agents: reg})
	h, err := d.Submit(context.Background(), backends.Task{ID: "real-1", Agent: "AnomalyDetection", DatasetID: "VLASS2.1.T10t01"})
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	st := wait(t, d, h, func(st backends.Status) bool {
		if st.Progress < last {
			t.Fatalf("progress fell from %v to %v", last, st.Progress)
		}
		last = st.Progress
		return st.State.Terminal()
	})
	if st.State != backends.TaskCompleted {
		t.Fatalf("ended %s: %s", st.State, st.Message)
	}
	var out agents.Output
	if err := json.Unmarshal(st.Result, &out); err != nil {
		t.Fatal(err)
	}
	if out.Metrics["components"] < 1 || len(out.Result) == 0 {
		t.Fatalf("anomaly output without components: %+v", out.Metrics)
	}
}

// The local backend, opened through the portable type, runs the whole
// pipeline: its stage notes show in the running status, its products land
// in the task's work directory and its summary is the result.
func TestRunsPipelineAgent(t *testing.T) {
	reg := &agents.Registry{}
	if err := reg.Register(pipeline.NewAgent()); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	b, err := local.Open(&local.Config{Agents: reg, WorkDir: work, Logger: slog.New(slog.DiscardHandler)}, &backends.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	h, err := b.Submit(ctx, backends.Task{ID: "pipe-1", Agent: pipeline.Name, DatasetID: "VLASS2.1.T10t01", Params: json.RawMessage(`{"image_size": 128}`)})
	if err != nil {
		t.Fatal(err)
	}
	var last float64
	seen := map[string]bool{}
	var st backends.Status
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Millisecond) {
		if st, err = b.Status(ctx, h); err != nil {
			t.Fatal(err)
		}
		if st.Progress < last {
			t.Fatalf("progress fell from %v to %v", last, st.Progress)
		}
		last = st.Progress
		if st.State == backends.TaskRunning {
			if name, _, ok := agents.ParseStage(st.Message); ok {
				seen[name] = true
			}
		}
		if st.State.Terminal() || time.Now().After(deadline) {
			break
		}
	}
	if st.State != backends.TaskCompleted {
		t.Fatalf("pipeline ended %s: %s", st.State, st.Message)
	}
	if !seen[pipeline.StageImaging] {
		t.Errorf("running status never showed the imaging stage; saw %v", seen)
	}
	var out agents.Output
	if err := json.Unmarshal(st.Result, &out); err != nil {
		t.Fatal(err)
	}
	if out.Metrics["transient_found"] != 1 || out.Metrics["sources_matched"] < 1 {
		t.Errorf("metrics %+v", out.Metrics)
	}
	if len(out.Artifacts) == 0 {
		t.Fatal("no artifacts")
	}
	for _, a := range out.Artifacts {
		if _, err := os.Stat(filepath.Join(work, h.ExternalID, a)); err != nil {
			t.Errorf("artifact %s: %v", a, err)
		}
	}
	if !strings.Contains(st.Message, "transient found: true") {
		t.Errorf("completion message %q", st.Message)
	}
}
