package anomaly

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
)

func TestRunTwoEpochs(t *testing.T) {
	a := NewAgent()
	params, err := a.ValidateParams(json.RawMessage(`{"reference_dataset_id":"VLASS1.2.ql.T10t02"}`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var last float64
	calls := 0
	out, err := a.Run(context.Background(), agents.Input{JobID: "j1", DatasetID: "VLASS2.2.ql.T10t02", Params: params, WorkDir: dir, Seed: 3},
		func(p float64, note string) {
			if p < last {
				t.Errorf("progress went back from %v to %v (%s)", last, p, note)
			}
			last = p
			calls++
		})
	if err != nil {
		t.Fatal(err)
	}
	if last != 100 || calls < 3 {
		t.Errorf("progress ended at %v after %d calls", last, calls)
	}
	m := out.Metrics
	t.Logf("summary: %s", out.Summary)
	if m["completeness_snr8"] < 0.95 || m["reliability"] < 0.99 {
		t.Errorf("metrics %v below the quality bar", m)
	}
	if m["anomalies"] < 10 || m["new_sources"] < 5 {
		t.Errorf("metrics %v: the default pair has 10 transients, 5 disappeared and 10 variables", m)
	}
	if v, ok := m["transient_recovery_dsnr8"]; !ok || v < 0.9 {
		t.Errorf("transient recovery = %v (present %v)", v, ok)
	}
	var res Result
	if err := json.Unmarshal(out.Result, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Anomalies) != int(m["anomalies"]) || len(res.Catalogue) != int(m["components"]) {
		t.Errorf("result has %d anomalies and %d components, metrics say %v and %v", len(res.Anomalies), len(res.Catalogue), m["anomalies"], m["components"])
	}
	disk, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(disk) != string(out.Result) || len(out.Artifacts) != 1 || out.Artifacts[0] != ResultFile {
		t.Errorf("artefacts %v / file contents differ from the result", out.Artifacts)
	}
	// Deterministic: the same input gives the same anomalies.
	out2, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS2.2.ql.T10t02", Params: params, Seed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res2 Result
	if err := json.Unmarshal(out2.Result, &res2); err != nil {
		t.Fatal(err)
	}
	if len(res2.Anomalies) != len(res.Anomalies) || (len(res.Anomalies) > 0 && res2.Anomalies[0] != res.Anomalies[0]) {
		t.Errorf("second run differs: %d vs %d anomalies", len(res2.Anomalies), len(res.Anomalies))
	}
}

func TestRunSingleEpochAndErrors(t *testing.T) {
	a := NewAgent()
	params, err := a.ValidateParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Run(context.Background(), agents.Input{DatasetID: "VLASS3.1.ql.T01t01", Params: params, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Metrics["components"] < 50 || out.Metrics["completeness_snr8"] < 0.95 {
		t.Errorf("single epoch metrics %v", out.Metrics)
	}
	if _, ok := out.Metrics["anomalies"]; ok {
		t.Error("single-epoch run reported anomalies")
	}
	bad, _ := a.ValidateParams(json.RawMessage(`{"reference_dataset_id":"same"}`))
	_, err = a.Run(context.Background(), agents.Input{DatasetID: "same", Params: bad}, nil)
	var pe *agents.ParamError
	if !errors.As(err, &pe) || pe.Field != "reference_dataset_id" {
		t.Errorf("same reference: err = %v, want a ParamError on reference_dataset_id", err)
	}
	if _, err := a.Run(context.Background(), agents.Input{Params: params}, nil); !errors.Is(err, agents.ErrInvalidParams) {
		t.Errorf("no dataset: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Run(ctx, agents.Input{DatasetID: "x", Params: params}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}
