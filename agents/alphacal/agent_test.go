package alphacal

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
)

func TestRunAgent(t *testing.T) {
	dir := t.TempDir()
	var last float64
	var notes []string
	progress := func(p float64, note string) {
		if p < last {
			t.Errorf("progress went back from %.1f to %.1f (%s)", last, p, note)
		}
		last = p
		notes = append(notes, note)
	}
	a := NewAgent()
	if a.Name() != agents.NameAlphaCal {
		t.Fatalf("agent name %q", a.Name())
	}
	params, err := a.ValidateParams(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := agents.Input{JobID: "j1", DatasetID: "vlass-1.2-T10t01", Params: params, WorkDir: dir, Seed: 1}
	out, err := a.Run(context.Background(), in, progress)
	if err != nil {
		t.Fatal(err)
	}
	if last != 100 || len(notes) < 8 {
		t.Errorf("progress ended at %.0f after %d reports", last, len(notes))
	}
	m := out.Metrics
	t.Logf("%s", out.Summary)
	if m["recall"] < 0.95 || m["fpr"] > 0.01 || m["mcc"] < 0.8 {
		t.Errorf("recall %.3f fpr %.4f mcc %.3f", m["recall"], m["fpr"], m["mcc"])
	}
	if m["bandpass_order"] < 3 || m["bandpass_order"] > 7 || m["solution_interval_s"] <= 0 {
		t.Errorf("strategy: order %v interval %v", m["bandpass_order"], m["solution_interval_s"])
	}
	if m["sigma_estimated"] < 0.95 || m["sigma_estimated"] > 1.05 {
		t.Errorf("noise estimate %.3f, true 1", m["sigma_estimated"])
	}
	if len(out.Artifacts) != 2 {
		t.Fatalf("artifacts %v", out.Artifacts)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	if res.DatasetID != in.DatasetID || res.Calibration == nil || len(res.Calibration.Decisions) != 4 || res.Baseline == nil {
		t.Errorf("result %+v", res)
	}
	for _, d := range res.Calibration.Decisions {
		if d.Reason == "" {
			t.Errorf("decision %s without a reason", d.Name)
		}
	}
	f, err := os.Open(filepath.Join(dir, MaskFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != res.Dataset.Channels || b.Dy() != res.Dataset.Times {
		t.Errorf("PNG %v, want %d x %d", b, res.Dataset.Channels, res.Dataset.Times)
	}
	// Deterministic: the same input gives the same result; another dataset
	// differs.
	out2, err := Run(context.Background(), agents.Input{DatasetID: in.DatasetID, Params: params, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"recall", "fpr", "flagged_fraction", "bandpass_order", "solution_interval_s"} {
		if out.Metrics[k] != out2.Metrics[k] {
			t.Errorf("%s differs between identical runs: %v vs %v", k, out.Metrics[k], out2.Metrics[k])
		}
	}
	if len(out2.Artifacts) != 0 {
		t.Errorf("no work dir but artifacts %v", out2.Artifacts)
	}
	out3, _ := Run(context.Background(), agents.Input{DatasetID: "another", Params: params, Seed: 1}, nil)
	if out3.Metrics["rfi_fraction"] == out.Metrics["rfi_fraction"] {
		t.Errorf("different datasets gave the same RFI fraction %v", out3.Metrics["rfi_fraction"])
	}
}

func TestRunFlaggers(t *testing.T) {
	a := NewAgent()
	get := func(raw string) map[string]float64 {
		t.Helper()
		p, err := a.ValidateParams(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		out, err := a.Run(context.Background(), agents.Input{DatasetID: "ds-7", Params: p, Seed: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out.Metrics
	}
	st := get(`{"flagger":"sumthreshold"}`)
	mad := get(`{"flagger":"mad","mad_k":5}`)
	none := get(`{"flagger":"none"}`)
	if none["flagged_fraction"] != 0 || none["recall"] != 0 {
		t.Errorf("flagger none flagged %v", none["flagged_fraction"])
	}
	if st["mcc"] <= mad["mcc"] {
		t.Errorf("SumThreshold MCC %.3f not above MAD %.3f", st["mcc"], mad["mcc"])
	}
	if st["baseline_mcc"] != mad["mcc"] {
		t.Errorf("baseline in the SumThreshold run %.4f differs from the MAD run %.4f", st["baseline_mcc"], mad["mcc"])
	}
	low := get(`{"rfi_strategy":"low"}`)
	high := get(`{"rfi_strategy":"high"}`)
	if !(low["flagged_fraction"] <= st["flagged_fraction"] && st["flagged_fraction"] <= high["flagged_fraction"]) {
		t.Errorf("flagged fraction low %.4f, medium %.4f, high %.4f: not ordered", low["flagged_fraction"], st["flagged_fraction"], high["flagged_fraction"])
	}
}

func TestRunBadInput(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		params, dataset, field string
	}{
		{`{"flagger":"magic"}`, "d", "flagger"},
		{`{"base_threshold":0}`, "d", "base_threshold"},
		{`{"iterations":2.5}`, "d", "iterations"},
		{`{"bandpass_order":9}`, "d", "bandpass_order"},
		{`{"nope":1}`, "d", "nope"},
		{`[1,2]`, "d", "params"},
		{`{}`, "", "dataset_id"},
	} {
		_, err := Run(ctx, agents.Input{DatasetID: c.dataset, Params: json.RawMessage(c.params)}, nil)
		var pe *agents.ParamError
		if !errors.Is(err, agents.ErrInvalidParams) || !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: error %v, want a ParamError on %s", c.params, err, c.field)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Run(cctx, agents.Input{DatasetID: "d"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := Run(ctx, agents.Input{DatasetID: "d", WorkDir: filepath.Join(t.TempDir(), "missing", "dir")}, nil); err == nil || !strings.Contains(err.Error(), ResultFile) {
		t.Errorf("unwritable work dir: %v", err)
	}
}

func TestRegistryReplace(t *testing.T) {
	r := agents.NewRegistry()
	r.Replace(NewAgent())
	a, err := r.Lookup("AlphaCal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(context.Background(), agents.Input{DatasetID: "x"}, nil); err != nil {
		t.Errorf("registered agent does not run: %v", err)
	}
}
