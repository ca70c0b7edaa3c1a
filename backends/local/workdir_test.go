package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/local"
)

// The driver creates a task's work directory before the agent starts, so an
// agent may write straight into agents.Input.WorkDir (alphacal does).
func TestWorkDirCreatedForAgent(t *testing.T) {
	reg := &agents.Registry{}
	writes := agents.Descriptor{Name: "writes"}.WithRun(func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
		if in.WorkDir == "" {
			return agents.Output{}, os.ErrInvalid
		}
		if err := os.WriteFile(filepath.Join(in.WorkDir, "out.txt"), []byte(in.DatasetID), 0o644); err != nil {
			return agents.Output{}, err
		}
		return agents.Output{Summary: "wrote " + in.WorkDir}, nil
	})
	if err := reg.Register(agents.New(writes)); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "not", "yet")
	d := newLocal(t, local.Config{Agents: reg, WorkDir: work})
	h, err := d.Submit(context.Background(), backends.Task{ID: "wd-1", Agent: "writes", DatasetID: "VLASS2.1.T10t01"})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, h, terminal)
	if st.State != backends.TaskCompleted {
		t.Fatalf("ended %s: %s", st.State, st.Message)
	}
	matches, err := filepath.Glob(filepath.Join(work, "*", "out.txt"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("want one out.txt under %s, got %v (%v)", work, matches, err)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != "VLASS2.1.T10t01" {
		t.Fatalf("out.txt = %q", b)
	}
}

// A work directory that cannot be created fails the task with a message
// naming the task, instead of running the agent.
func TestWorkDirUncreatable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := newLocal(t, local.Config{Agents: testAgents(t), WorkDir: file})
	h, err := d.Submit(context.Background(), backends.Task{ID: "wd-2", Agent: "steps", DatasetID: "d"})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, h, terminal)
	if st.State != backends.TaskFailed {
		t.Fatalf("ended %s: %s, want FAILED", st.State, st.Message)
	}
	if want := "work directory for task wd-2"; !strings.Contains(st.Message, want) {
		t.Fatalf("message %q does not contain %q", st.Message, want)
	}
}
