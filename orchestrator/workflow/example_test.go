package workflow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

// Run the built-in VLASS pipeline (AlphaCal → ImageReconstruction →
// AnomalyDetection) on the simulated GPU cluster.
func Example() {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gpu, err := simgpu.Open(&simgpu.Config{SpeedUp: 20000, DatasetGB: func(string) float64 { return 5 }, Logger: log}, &backends.Options{Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gpu.Close()
	bus := membus.NewBus(nil)
	defer bus.Close()
	orch, err := orchestrator.New(memstore.New(nil), bus, &orchestrator.Config{
		Backends: []*backends.Backend{gpu}, Logger: log,
		PollInterval: 5 * time.Millisecond, ScheduleInterval: 5 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := orch.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer orch.Stop(ctx)
	// The engine publishes vlass-pipeline at start-up.
	eng, err := workflow.New(orch, workflow.NewMemStore(), bus, &workflow.Config{Logger: log, PollInterval: 5 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := eng.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Stop(ctx)

	run, err := eng.Submit(ctx, "alice", workflow.RunRequest{
		Workflow: workflow.VLASSPipeline,
		Inputs:   map[string]string{"dataset_id": "vlass/T10t01.J000000-000000"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for !run.State.Terminal() {
		time.Sleep(5 * time.Millisecond)
		run, _ = eng.GetRun(ctx, run.ID)
	}
	fmt.Println(run.Workflow, "version", run.Version, run.State)
	for _, s := range run.Steps {
		j, err := orch.Get(ctx, s.JobID)
		if err != nil {
			fmt.Println(s.Name, s.State, s.Error)
			continue
		}
		fmt.Println(s.Name, s.State, j.Agent, j.DatasetID, string(s.Outputs))
	}
	evs, _ := eng.RunEvents(ctx, run.ID)
	fmt.Println(len(evs), "events, first", evs[0].Type, "last", evs[len(evs)-1].Type)
	// Output:
	// vlass-pipeline version 1 COMPLETED
	// calibrate COMPLETED alphacal vlass/T10t01.J000000-000000 {"calibrated":"vlass/T10t01.J000000-000000"}
	// image COMPLETED image-reconstruction vlass/T10t01.J000000-000000 {"image":"vlass/T10t01.J000000-000000"}
	// detect COMPLETED anomaly-detection vlass/T10t01.J000000-000000 {"catalogue":"vlass/T10t01.J000000-000000"}
	// 8 events, first workflow.submitted last workflow.completed
}

// Validation names the offending step and field: here a dependency cycle
// and a parameter the agent rejects.
func ExampleDefinition_Validate() {
	d := workflow.Definition{Name: "loop", Steps: []workflow.Step{
		{Name: "calibrate", Agent: "alphacal", DatasetID: "vlass/T01", DependsOn: []string{"detect"}},
		{Name: "image", Agent: "imaging", DatasetID: "vlass/T01", DependsOn: []string{"calibrate"}},
		{Name: "detect", Agent: "anomaly", DatasetID: "vlass/T01", DependsOn: []string{"image"}},
	}}
	fmt.Println(d.Validate(nil))

	d = workflow.Definition{Name: "bad-param", Steps: []workflow.Step{
		{Name: "image", Agent: "imaging", DatasetID: "vlass/T01", Params: []byte(`{"image_size": 1000}`)},
	}}
	err := d.Validate(nil)
	var fe *workflow.FieldError
	fmt.Println(errors.As(err, &fe), fe.Field)
	// Output:
	// field steps[calibrate].depends_on = ["calibrate","detect","image","calibrate"]: dependency cycle calibrate -> detect -> image -> calibrate
	// true steps[image].params.image_size
}
