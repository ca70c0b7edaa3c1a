package local_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/anomaly"
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
