package workflow_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// BenchmarkDiamondRun runs the four-step diamond DAG (fan-out, fan-in,
// outputs passed on) end to end on the in-process backend, one run per
// iteration. examples/workflow-overhead compares it with hand-chained jobs.
func BenchmarkDiamondRun(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	if _, _, err := e.eng.Create(ctx, "bench", diamond()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := e.eng.Submit(ctx, "bench", workflow.RunRequest{Workflow: "diamond", Inputs: map[string]string{"ds": fmt.Sprintf("ds-%d", i)}})
		if err != nil {
			b.Fatal(err)
		}
		for !r.State.Terminal() {
			time.Sleep(200 * time.Microsecond)
			if r, err = e.eng.GetRun(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
		if r.State != workflow.RunCompleted {
			b.Fatalf("run %s: %s", r.State, r.Error)
		}
	}
}

// BenchmarkValidate validates the built-in pipeline definition.
func BenchmarkValidate(b *testing.B) {
	d := workflow.Builtins()[0]
	e := newEnv(b, nil)
	reg := e.orch.Agents()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.Validate(reg); err != nil {
			b.Fatal(err)
		}
	}
}
