package simgpu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// A manual clock makes the simulation deterministic: a 20 GB calibration
// on two GPUs is modelled at 144 s, and with SpeedUp 12 it takes 12 s.
func Example() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, err := simgpu.Open(&simgpu.Config{
		Clock:     clock,
		SpeedUp:   12,
		DatasetGB: func(string) float64 { return 20 },
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	h, err := b.Submit(ctx, backends.Task{ID: "job-1", Agent: agents.NameAlphaCal, DatasetID: "VLASS2.1.T10t01", GPUs: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 4 {
		st, _ := b.Status(ctx, h)
		fmt.Printf("%s %.0f%% on %s\n", st.State, st.Progress, st.Node)
		clock.Advance(4 * time.Second)
	}
	st, _ := b.Status(ctx, h)
	var r simgpu.Result
	_ = json.Unmarshal(st.Result, &r)
	fmt.Printf("modelled %.0f s, %.2f GPU hours\n", r.ModelledSeconds, r.GPUHours)
	// Output:
	// RUNNING 0% on node-0
	// RUNNING 33% on node-0
	// RUNNING 67% on node-0
	// COMPLETED 100% on node-0
	// modelled 144 s, 0.08 GPU hours
}

// Tasks wait in FIFO order when the GPUs are busy.
func ExampleDriver_queue() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, _ := simgpu.New(&simgpu.Config{Clock: clock, Nodes: 1, GPUsPerNode: 4, DatasetGB: func(string) float64 { return 10 }})
	defer d.Close()
	first, _ := d.Submit(ctx, backends.Task{ID: "a", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 4})
	second, _ := d.Submit(ctx, backends.Task{ID: "b", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 2})
	st, _ := d.Status(ctx, second)
	fmt.Println(st.State, st.Message)
	clock.Advance(time.Hour)
	s1, _ := d.Status(ctx, first)
	s2, _ := d.Status(ctx, second)
	fmt.Println("b started when a ended:", s2.StartedAt.Equal(s1.EndedAt), s2.State)
	// Output:
	// PENDING waiting for 2 GPUs (0 free), position 1 in queue
	// b started when a ended: true COMPLETED
}

// Usage reports what every GPU is doing.
func ExampleDriver_Usage() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, _ := simgpu.New(&simgpu.Config{Clock: clock, Nodes: 1, GPUsPerNode: 2, DatasetGB: func(string) float64 { return 10 }})
	defer d.Close()
	_, _ = d.Submit(ctx, backends.Task{ID: "img", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1})
	usage, _ := d.Usage(ctx)
	for _, u := range usage {
		fmt.Printf("%s/%d task=%q util=%.2f mem=%d/%d MB\n", u.Node, u.Index, u.TaskID, u.Utilization, u.MemoryUsedMB, u.MemoryTotalMB)
	}
	// Output:
	// node-0/0 task="img" util=1.00 mem=4000/40960 MB
	// node-0/1 task="" util=0.00 mem=0/40960 MB
}

// Seeded failure injection: which tasks fail, when and how depends only on
// the seed and the task ids, so a run can be replayed exactly.
func ExampleConfig_failureRate() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, _ := simgpu.New(&simgpu.Config{Clock: clock, FailureRate: 0.5, Seed: 42, DatasetGB: func(string) float64 { return 10 }})
	defer d.Close()
	var hs []backends.Handle
	for i := range 6 {
		h, _ := d.Submit(ctx, backends.Task{ID: fmt.Sprintf("task-%d", i), Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
		hs = append(hs, h)
	}
	clock.Advance(time.Hour)
	for i, h := range hs {
		st, _ := d.Status(ctx, h)
		fmt.Println(strings.TrimSpace(fmt.Sprintf("task-%d %s %s", i, st.State, st.Message)))
	}
	// Output:
	// task-0 COMPLETED
	// task-1 COMPLETED
	// task-2 FAILED simulated preemption on node-0 at 59% of the run
	// task-3 FAILED simulated node-loss on node-0 at 29% of the run
	// task-4 FAILED simulated preemption on node-1 at 21% of the run
	// task-5 FAILED simulated preemption on node-1 at 87% of the run
}

// A heterogeneous cluster: the batch size follows the memory of the GPU a
// task gets, and the faster pool runs the parallel share faster.
func ExampleConfig_pools() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, _ := simgpu.New(&simgpu.Config{Clock: clock, DatasetGB: func(string) float64 { return 100 },
		Pools: []simgpu.Pool{
			{Name: "a100-40", Nodes: 1, GPUsPerNode: 1, GPUModel: "A100-40GB", GPUMemoryMB: 40960},
			{Name: "h100-80", Nodes: 1, GPUsPerNode: 1, GPUModel: "H100-80GB", GPUMemoryMB: 81920, Speed: 2},
		}})
	defer d.Close()
	var hs []backends.Handle
	for i := range 2 {
		h, _ := d.Submit(ctx, backends.Task{ID: fmt.Sprintf("img-%d", i), Agent: agents.NameImageReconstruction, DatasetID: "VLASS2.1", GPUs: 1})
		hs = append(hs, h)
	}
	clock.Advance(2 * time.Hour)
	for _, h := range hs {
		st, _ := d.Status(ctx, h)
		var r simgpu.Result
		json.Unmarshal(st.Result, &r)
		fmt.Printf("%s on %s: %d batch(es) of %d MB, %.0f s\n", r.GPUModel, st.Node, r.Batches, r.BatchSizeMB, r.ModelledSeconds)
	}
	// Output:
	// H100-80GB on node-1: 1 batch(es) of 40000 MB, 1575 s
	// A100-40GB on node-0: 2 batch(es) of 20000 MB, 3240 s
}
