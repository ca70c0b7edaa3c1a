package main

import (
	"encoding/json"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/events"
)

// The server's registry carries runnable agents: every one has a run
// function, and the pipeline answers to its alias.
func TestServerAgentsRunnable(t *testing.T) {
	reg := serverAgents()
	want := []string{pipeline.Name, agents.NameAlphaCal, agents.NameAnomalyDetection, agents.NameImageReconstruction}
	if got := reg.Names(); len(got) != len(want) {
		t.Fatalf("agents %v, want %v", got, want)
	}
	for _, n := range append(want, "pipeline", "imaging", "anomaly", "AlphaCal") {
		a, err := reg.Lookup(n)
		if err != nil {
			t.Fatal(err)
		}
		if a.Descriptor().Run == nil {
			t.Errorf("%s (%s) has no run function", n, a.Name())
		}
	}
}

// A pipeline job submitted through the REST API runs on the local backend
// and its stage changes arrive as job.progress events with data.stage.
func TestPipelineJobOnLocalBackend(t *testing.T) {
	ts := startServer(t, t.TempDir(), map[string]string{envAdminToken: testAdminToken, envBackend: "local"}, testOptions(-1))
	job, r := ts.submit(testAdminToken, map[string]any{"agent": "pipeline", "dataset_id": "VLASS2.1.T10t01", "params": map[string]any{"image_size": 128}}, nil)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	j := ts.waitJob(testAdminToken, job.ID, func(j jobJSON) bool {
		return j.State == "COMPLETED" || j.State == "FAILED" || j.State == "CANCELLED"
	})
	if j.State != "COMPLETED" || j.Agent != pipeline.Name {
		t.Fatalf("pipeline job: %+v\nlogs:\n%s", j, ts.logs.String())
	}
	stages := map[string]bool{}
	for _, e := range ts.jobEvents(testAdminToken, job.ID) {
		if e.Type != events.JobProgress {
			continue
		}
		var d events.JobData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Stage != "" {
			stages[d.Stage] = true
		}
	}
	if !stages[pipeline.StageImaging] {
		t.Errorf("job.progress stages %v: want the imaging stage", stages)
	}
}
