package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/agents/pipeline"
	"github.com/cosmic-horizons/horizons/backends"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func taskJSON(t *testing.T, task backends.Task) string {
	t.Helper()
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunAlphaCalFromEnv(t *testing.T) {
	dir := t.TempDir()
	result := filepath.Join(dir, "horizons-7.result.json")
	task := backends.Task{ID: "job-1", Agent: "AlphaCal", DatasetID: "VLASS2.1.sb1", Params: json.RawMessage(`{"flagger":"mad"}`)}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--result", result}, env(map[string]string{EnvTask: taskJSON(t, task)}), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var out agents.Output
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("result %s: %v", b, err)
	}
	if out.Summary == "" || len(out.Metrics) == 0 || len(out.Artifacts) == 0 {
		t.Fatalf("result lacks summary, metrics or artifacts: %s", b)
	}
	for _, a := range out.Artifacts {
		if _, err := os.Stat(filepath.Join(dir, "horizons-7.d", a)); err != nil {
			t.Errorf("artifact %s not in the default work dir: %v", a, err)
		}
	}
	var p struct {
		Percent float64 `json:"percent"`
	}
	pb, err := os.ReadFile(filepath.Join(dir, "horizons-7.progress.json"))
	if err != nil || json.Unmarshal(pb, &p) != nil || p.Percent != 100 {
		t.Errorf("progress file %s (%v), want percent 100", pb, err)
	}
	if !strings.Contains(stderr.String(), "progress") {
		t.Errorf("no progress lines on stderr: %q", stderr.String())
	}
	// The same task gives the same result (seed from the task id).
	result2 := filepath.Join(dir, "again.result.json")
	if code := run(context.Background(), []string{"run", "--result", result2, "--workdir", filepath.Join(dir, "w2")}, env(map[string]string{EnvTask: taskJSON(t, task)}), &stdout, &stderr); code != exitOK {
		t.Fatalf("second run exit %d", code)
	}
	var out2 agents.Output
	b2, _ := os.ReadFile(result2)
	json.Unmarshal(b2, &out2)
	if out2.Metrics["precision"] != out.Metrics["precision"] || out2.Summary != out.Summary {
		t.Errorf("two runs of one task differ:\n%s\n%s", out.Summary, out2.Summary)
	}
}

func TestRunTaskFile(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "task.json")
	task := backends.Task{ID: "job-2", Agent: "anomaly-detection", DatasetID: "VLASS1.2.ql.T10t12"}
	if err := os.WriteFile(spec, []byte(taskJSON(t, task)), 0o644); err != nil {
		t.Fatal(err)
	}
	result := filepath.Join(dir, "r.result.json")
	var stdout, stderr bytes.Buffer
	// --task wins over the environment.
	code := run(context.Background(), []string{"run", "--task", spec, "--result", result}, env(map[string]string{EnvTask: "garbage"}), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	var out agents.Output
	b, _ := os.ReadFile(result)
	if err := json.Unmarshal(b, &out); err != nil || out.Summary == "" {
		t.Fatalf("result %s: %v", b, err)
	}
}

func TestRunBadInput(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"no command", nil, nil, exitUsage, "usage"},
		{"unknown command", []string{"fly"}, nil, exitUsage, `unknown command "fly"`},
		{"no result", []string{"run"}, nil, exitUsage, "--result is required"},
		{"no task", []string{"run", "--result", "R"}, nil, exitUsage, "HORIZONS_TASK is empty"},
		{"not json", []string{"run", "--result", "R"}, map[string]string{EnvTask: "{"}, exitUsage, "not a task as JSON"},
		{"no dataset", []string{"run", "--result", "R"}, map[string]string{EnvTask: `{"id":"x","agent":"alphacal"}`}, exitUsage, "dataset_id"},
		{"unknown agent", []string{"run", "--result", "R"}, map[string]string{EnvTask: `{"id":"x","agent":"teleport","dataset_id":"d"}`}, exitUsage, `field agent is "teleport"`},
		{"bad params", []string{"run", "--result", "R"}, map[string]string{EnvTask: `{"id":"x","agent":"alphacal","dataset_id":"d","params":{"iterations":99}}`}, exitUsage, "iterations"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string(nil), c.args...)
			for i, a := range args {
				if a == "R" {
					args[i] = filepath.Join(dir, "x.result.json")
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, env(c.env), &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr.String(), c.code, c.want)
			}
			// A task that reached the runner leaves its reason in the
			// result file for the backend.
			if len(args) > 2 {
				b, err := os.ReadFile(filepath.Join(dir, "x.result.json"))
				var doc struct {
					Error string `json:"error"`
				}
				if err != nil || json.Unmarshal(b, &doc) != nil || !strings.Contains(doc.Error, c.want) {
					t.Errorf("result file %s (%v), want an error mentioning %q", b, err, c.want)
				}
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	task := backends.Task{ID: "job-3", Agent: "image-reconstruction", DatasetID: "VLASS2.2"}
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"run", "--result", filepath.Join(dir, "c.result.json")}, env(map[string]string{EnvTask: taskJSON(t, task)}), &stdout, &stderr)
	if code != exitFailed {
		t.Fatalf("exit %d for a cancelled run, want %d; stderr %q", code, exitFailed, stderr.String())
	}
}

func TestAgentsCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"agents"}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	got := strings.Fields(stdout.String())
	want := []string{pipeline.Name, agents.NameAlphaCal, agents.NameAnomalyDetection, agents.NameImageReconstruction}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("agents = %v, want %v", got, want)
	}
	for _, n := range got {
		a, _ := Registry().Lookup(n)
		if a.Descriptor().Run == nil {
			t.Errorf("agent %s is listed but cannot run", n)
		}
	}
}
