// Command workflow-overhead measures what the workflow engine costs on top
// of the orchestrator. It runs the same diamond DAG (a → b, c → d, four
// jobs, outputs passed on) many times two ways on the simulated GPU
// cluster (so fast that the jobs themselves take no time) and prints them
// side by side:
//
//   - baseline: a program that submits the four jobs to the orchestrator
//     itself, in dependency order, polling each job until it completes;
//   - workflow: one workflow run per DAG through orchestrator/workflow
//     (validation, versioned definition, run state, outbox events).
//
// It reports DAGs per second of wall time and per CPU second of this
// process (other load on the machine does not skew the second), and the
// ratio workflow/baseline.
//
//	go run ./examples/workflow-overhead [-dags 200] [-parallel 20] [-store memory|sqlite]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
	"github.com/cosmic-horizons/horizons/events/membus"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/memstore"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
	"github.com/cosmic-horizons/horizons/orchestrator/workflow"
)

const poll = 2 * time.Millisecond

type result struct {
	wall, cpu time.Duration
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type rig struct {
	orch *orchestrator.Orchestrator
	eng  *workflow.Engine
	stop func()
}

func newRig(store string, dir string) (*rig, error) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gpu, err := simgpu.Open(&simgpu.Config{Nodes: 8, GPUsPerNode: 8, SpeedUp: 1e7, DatasetGB: func(string) float64 { return 1 }, Logger: log}, &backends.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	bus := membus.NewBus(nil)
	var jobs orchestrator.Store
	var wfs workflow.Store
	switch store {
	case "memory":
		jobs, wfs = memstore.New(nil), workflow.NewMemStore()
	case "sqlite":
		s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", DSN: filepath.Join(dir, "jobs.db")})
		if err != nil {
			return nil, err
		}
		w, err := workflow.OpenSQL(ctx, s.DB(), nil)
		if err != nil {
			return nil, err
		}
		jobs, wfs = s, w
	default:
		return nil, fmt.Errorf("-store %q: want memory or sqlite", store)
	}
	o, err := orchestrator.New(jobs, bus, &orchestrator.Config{
		Backends: []*backends.Backend{gpu}, Logger: log, MaxQueued: 1 << 20,
		PollInterval: poll, ScheduleInterval: poll, OutboxInterval: poll,
	})
	if err != nil {
		return nil, err
	}
	if err := o.Start(ctx); err != nil {
		return nil, err
	}
	eng, err := workflow.New(o, wfs, bus, &workflow.Config{Logger: log, NoBuiltins: true})
	if err != nil {
		return nil, err
	}
	if err := eng.Start(ctx); err != nil {
		return nil, err
	}
	return &rig{orch: o, eng: eng, stop: func() {
		_ = eng.Stop(ctx)
		_ = o.Stop(ctx)
		_ = gpu.Close()
		_ = bus.Close()
		_ = jobs.Close()
	}}, nil
}

func diamond() workflow.Definition {
	out := map[string]string{"ds": "dataset_id"}
	return workflow.Definition{Name: "diamond", Inputs: map[string]string{"ds": ""}, Steps: []workflow.Step{
		{Name: "a", Agent: "alphacal", DatasetID: "${inputs.ds}", GPUs: 1, Outputs: out},
		{Name: "b", Agent: "imaging", DatasetID: "${steps.a.outputs.ds}", GPUs: 1, DependsOn: []string{"a"}, Outputs: out},
		{Name: "c", Agent: "imaging", DatasetID: "${steps.a.outputs.ds}", GPUs: 1, DependsOn: []string{"a"}, Outputs: out},
		{Name: "d", Agent: "anomaly", DatasetID: "${steps.b.outputs.ds}", GPUs: 1, DependsOn: []string{"b", "c"}},
	}}
}

// waitJob polls a job until it ends and returns its dataset (the output
// the next job uses).
func waitJob(ctx context.Context, o *orchestrator.Orchestrator, id string) (string, error) {
	for {
		j, err := o.Get(ctx, id)
		if err != nil {
			return "", err
		}
		if j.State.Terminal() {
			if j.State != orchestrator.StateCompleted {
				return "", fmt.Errorf("job %s ended %s: %s", id, j.State, j.Error)
			}
			return j.DatasetID, nil
		}
		time.Sleep(poll)
	}
}

func baselineDAG(ctx context.Context, o *orchestrator.Orchestrator, ds string) error {
	sub := func(agent, ds string) (string, error) {
		j, _, err := o.Submit(ctx, "bench", orchestrator.Spec{Agent: agent, DatasetID: ds, GPUs: 1})
		if err != nil {
			return "", err
		}
		return waitJob(ctx, o, j.ID)
	}
	a, err := sub("alphacal", ds)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var b string
	var errB, errC error
	wg.Add(2)
	go func() { defer wg.Done(); b, errB = sub("imaging", a) }()
	go func() { defer wg.Done(); _, errC = sub("imaging", a) }()
	wg.Wait()
	if errB != nil || errC != nil {
		return fmt.Errorf("%v %v", errB, errC)
	}
	_, err = sub("anomaly", b)
	return err
}

func workflowDAG(ctx context.Context, e *workflow.Engine, ds string) error {
	r, err := e.Submit(ctx, "bench", workflow.RunRequest{Workflow: "diamond", Inputs: map[string]string{"ds": ds}})
	if err != nil {
		return err
	}
	for !r.State.Terminal() {
		time.Sleep(poll)
		if r, err = e.GetRun(ctx, r.ID); err != nil {
			return err
		}
	}
	if r.State != workflow.RunCompleted {
		return fmt.Errorf("run %s ended %s: %s", r.ID, r.State, r.Error)
	}
	return nil
}

func measure(n, parallel int, one func(i int) error) (result, error) {
	c0, t0 := cpuTime(), time.Now()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := one(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return result{wall: time.Since(t0), cpu: cpuTime() - c0}, first
}

func main() {
	dags := flag.Int("dags", 200, "DAGs (four jobs each) per mode")
	parallel := flag.Int("parallel", 20, "DAGs in flight at once")
	store := flag.String("store", "memory", "job and workflow stores: memory or sqlite")
	flag.Parse()
	dir, err := os.MkdirTemp("", "workflow-overhead-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	r, err := newRig(*store, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer r.stop()
	ctx := context.Background()
	if _, _, err := r.eng.Create(ctx, "bench", diamond()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	base, err := measure(*dags, *parallel, func(i int) error { return baselineDAG(ctx, r.orch, fmt.Sprintf("base-%d", i)) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	wf, err := measure(*dags, *parallel, func(i int) error { return workflowDAG(ctx, r.eng, fmt.Sprintf("wf-%d", i)) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "workflow:", err)
		os.Exit(1)
	}
	rate := func(d time.Duration) float64 { return float64(*dags) / d.Seconds() }
	fmt.Printf("diamond DAG (4 jobs), %d DAGs, %d in flight, %s stores, simgpu\n\n", *dags, *parallel, *store)
	fmt.Printf("%-28s %12s %12s %12s\n", "", "baseline", "workflow", "ratio")
	fmt.Printf("%-28s %12.1f %12.1f %12.2f\n", "DAGs/s (wall)", rate(base.wall), rate(wf.wall), rate(wf.wall)/rate(base.wall))
	fmt.Printf("%-28s %12.1f %12.1f %12.2f\n", "DAGs per CPU second", rate(base.cpu), rate(wf.cpu), rate(wf.cpu)/rate(base.cpu))
	fmt.Printf("%-28s %12s %12s\n", "wall time", base.wall.Round(time.Millisecond), wf.wall.Round(time.Millisecond))
}
