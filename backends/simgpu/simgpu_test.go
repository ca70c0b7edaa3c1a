package simgpu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// fixed returns a dataset size function with the given sizes.
func fixed(m map[string]float64) func(string) float64 {
	return func(id string) float64 { return m[id] }
}

func newSim(t *testing.T, cfg simgpu.Config) (*simgpu.Driver, *simgpu.ManualClock) {
	t.Helper()
	clk := simgpu.NewManualClock(epoch)
	cfg.Clock = clk
	if cfg.InstanceID == "" {
		cfg.InstanceID = "test"
	}
	d, err := simgpu.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, clk
}

func submit(t *testing.T, d *simgpu.Driver, task backends.Task) backends.Handle {
	t.Helper()
	h, err := d.Submit(context.Background(), task)
	if err != nil {
		t.Fatalf("Submit(%s): %v", task.ID, err)
	}
	return h
}

func status(t *testing.T, d *simgpu.Driver, h backends.Handle) backends.Status {
	t.Helper()
	st, err := d.Status(context.Background(), h)
	if err != nil {
		t.Fatalf("Status(%s): %v", h.ExternalID, err)
	}
	return st
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestRunTimeModelAmdahl(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{DatasetGB: fixed(map[string]float64{"ds": 20})})
	// alphacal: 120 s per 10 GB on one GPU, parallel fraction 0.8.
	// 20 GB on 2 GPUs: 120 * 2 * (0.2 + 0.8/2) = 144 s.
	h := submit(t, d, backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "ds", GPUs: 2})
	clk.Advance(72 * time.Second)
	st := status(t, d, h)
	if st.State != backends.TaskRunning || !near(st.Progress, 50, 1e-6) {
		t.Fatalf("after 72 s: %s %.4f%%, want RUNNING 50%%", st.State, st.Progress)
	}
	clk.Advance(71 * time.Second)
	if st := status(t, d, h); st.State != backends.TaskRunning {
		t.Fatalf("after 143 s: %s, want RUNNING", st.State)
	}
	clk.Advance(time.Second)
	st = status(t, d, h)
	if st.State != backends.TaskCompleted || st.Progress != 100 {
		t.Fatalf("after 144 s: %s %v%%", st.State, st.Progress)
	}
	if got := st.EndedAt.Sub(st.StartedAt); got != 144*time.Second {
		t.Errorf("run took %s, want 144s", got)
	}
	var r simgpu.Result
	if err := json.Unmarshal(st.Result, &r); err != nil {
		t.Fatal(err)
	}
	if r.ModelledSeconds != 144 || !near(r.GPUHours, 0.08, 1e-9) || r.Agent != agents.NameAlphaCal || r.DatasetGB != 20 || r.GPUs != 2 {
		t.Errorf("result %+v", r)
	}
	// alphacal: 150 MB per GB, 20 GB over 2 GPUs = 1500 MB each.
	if r.PeakGPUMemoryMB != 3000 {
		t.Errorf("peak GPU memory %d MB, want 3000", r.PeakGPUMemoryMB)
	}
}

func TestSpeedUp(t *testing.T) {
	// Imaging: 300 s per 10 GB on one GPU; 120 GB is an hour. With SpeedUp
	// 360 the hour takes 10 s.
	// (80 GB GPUs so that 48 GB of imaging memory needs no batching.)
	d, clk := newSim(t, simgpu.Config{SpeedUp: 360, GPUMemoryMB: 81920, DatasetGB: fixed(map[string]float64{"big": 120})})
	h := submit(t, d, backends.Task{ID: "img", Agent: "ImageReconstruction", DatasetID: "big", GPUs: 1})
	clk.Advance(9900 * time.Millisecond)
	if st := status(t, d, h); st.State != backends.TaskRunning || !near(st.Progress, 99, 1e-6) {
		t.Fatalf("after 9.9 s: %s %v%%", st.State, st.Progress)
	}
	clk.Advance(100 * time.Millisecond)
	st := status(t, d, h)
	if st.State != backends.TaskCompleted {
		t.Fatalf("after 10 s: %s", st.State)
	}
	var r simgpu.Result
	json.Unmarshal(st.Result, &r)
	if r.ModelledSeconds != 3600 {
		t.Errorf("modelled %v s, want 3600", r.ModelledSeconds)
	}
}

func TestFIFOQueueAndExactStartTimes(t *testing.T) {
	// One node, two GPUs. a and b take 100 s each (10 GB alphacal on one
	// GPU is 120 s; 100/120*10 GB).
	gb := 10 * 100.0 / 120
	d, clk := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 2, DatasetGB: func(string) float64 { return gb }})
	a := submit(t, d, backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	wide := submit(t, d, backends.Task{ID: "wide", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 2})
	small := submit(t, d, backends.Task{ID: "small", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	if st := status(t, d, wide); st.State != backends.TaskPending || !strings.Contains(st.Message, "position 1") {
		t.Fatalf("wide: %s %q, want PENDING at position 1", st.State, st.Message)
	}
	// One GPU is free, but the queue is FIFO: small waits behind wide.
	if st := status(t, d, small); st.State != backends.TaskPending || !strings.Contains(st.Message, "position 2") {
		t.Fatalf("small: %s %q, want PENDING at position 2", st.State, st.Message)
	}
	c, _ := d.Capacity(context.Background())
	if c.FreeGPUs != 1 || c.Running != 1 || c.Pending != 2 {
		t.Fatalf("capacity %+v", c)
	}
	// Jump far past everything: the simulation still starts each task at
	// the exact moment the GPUs freed up.
	clk.Advance(time.Hour)
	sa, sw, ss := status(t, d, a), status(t, d, wide), status(t, d, small)
	for _, st := range []backends.Status{sa, sw, ss} {
		if st.State != backends.TaskCompleted {
			t.Fatalf("state %s after an hour", st.State)
		}
	}
	// wide starts when a ends (100 s) and runs 60 s; small starts after it.
	wantStart := []time.Time{epoch, epoch.Add(100 * time.Second), epoch.Add(160 * time.Second)}
	for i, st := range []backends.Status{sa, sw, ss} {
		if !st.StartedAt.Equal(wantStart[i]) {
			t.Errorf("task %d started %s, want %s", i, st.StartedAt.Sub(epoch), wantStart[i].Sub(epoch))
		}
	}
	// wide ran on 2 GPUs: 120*(100/120)*(0.2+0.4) = 60 s.
	if got := sw.EndedAt.Sub(sw.StartedAt); got != 60*time.Second {
		t.Errorf("wide ran %s, want 60s", got)
	}
}

func TestPlacementBestFitAndSpanning(t *testing.T) {
	d, _ := newSim(t, simgpu.Config{Nodes: 2, GPUsPerNode: 4, DatasetGB: fixed(map[string]float64{"x": 1000})})
	task := func(id string, g int) backends.Task {
		return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: g}
	}
	h3 := submit(t, d, task("three", 3))
	h1 := submit(t, d, task("one", 1))
	h4 := submit(t, d, task("four", 4))
	for _, c := range []struct {
		h    backends.Handle
		node string
	}{{h3, "node-0"}, {h1, "node-0"}, {h4, "node-1"}} {
		if st := status(t, d, c.h); st.State != backends.TaskRunning || st.Node != c.node {
			t.Errorf("%s: %s on %q, want RUNNING on %s", c.h.ExternalID, st.State, st.Node, c.node)
		}
	}
	usage, err := d.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range usage {
		if u.TaskID == "" {
			t.Errorf("GPU %s/%d idle with every GPU taken", u.Node, u.Index)
		}
	}

	d2, _ := newSim(t, simgpu.Config{Nodes: 2, GPUsPerNode: 4, DatasetGB: fixed(map[string]float64{"x": 1000})})
	h6 := submit(t, d2, task("six", 6))
	if st := status(t, d2, h6); st.Node != "node-0,node-1" {
		t.Errorf("six-GPU task on %q, want node-0,node-1", st.Node)
	}
	c, _ := d2.Capacity(context.Background())
	if c.FreeGPUs != 2 {
		t.Errorf("free GPUs %d after a 6-GPU task on 8, want 2", c.FreeGPUs)
	}

	// Two GPUs free but on different nodes: a 2-GPU task waits.
	d3, _ := newSim(t, simgpu.Config{Nodes: 2, GPUsPerNode: 2, DatasetGB: fixed(map[string]float64{"x": 1000})})
	var hs []backends.Handle
	for i := range 4 {
		hs = append(hs, submit(t, d3, task(fmt.Sprint("one-", i), 1)))
	}
	for i, want := range []string{"node-0", "node-0", "node-1", "node-1"} {
		if st := status(t, d3, hs[i]); st.Node != want {
			t.Errorf("one-GPU task %d on %q, want %s (best fit)", i, st.Node, want)
		}
	}
	d3.Cancel(context.Background(), hs[0])
	d3.Cancel(context.Background(), hs[2])
	h2 := submit(t, d3, task("two", 2))
	if st := status(t, d3, h2); st.State != backends.TaskPending {
		t.Errorf("2-GPU task on scattered GPUs: %s, want PENDING", st.State)
	}
	d3.Cancel(context.Background(), hs[1])
	if st := status(t, d3, h2); st.State != backends.TaskRunning || st.Node != "node-0" {
		t.Errorf("2-GPU task once node-0 is free: %s on %q", st.State, st.Node)
	}
}

func TestUsageUtilisationAndMemory(t *testing.T) {
	d, _ := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 8, DatasetGB: fixed(map[string]float64{"x": 20})})
	submit(t, d, backends.Task{ID: "img", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 4})
	submit(t, d, backends.Task{ID: "cal", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	usage, err := d.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 8 {
		t.Fatalf("%d GPUs reported, want 8", len(usage))
	}
	byTask := map[string][]backends.GPUUsage{}
	for _, u := range usage {
		byTask[u.TaskID] = append(byTask[u.TaskID], u)
		if u.MemoryTotalMB != simgpu.DefaultGPUMemoryMB {
			t.Errorf("GPU memory total %d", u.MemoryTotalMB)
		}
	}
	if len(byTask["img"]) != 4 || len(byTask["cal"]) != 1 || len(byTask[""]) != 3 {
		t.Fatalf("GPUs per task: img %d cal %d idle %d", len(byTask["img"]), len(byTask["cal"]), len(byTask[""]))
	}
	// Imaging p = 0.95 on 4 GPUs: efficiency 1/(4*0.05+0.95) = 0.8696;
	// 400 MB/GB * 20 GB / 4 GPUs = 2000 MB each.
	for _, u := range byTask["img"] {
		if !near(u.Utilization, 1/1.15, 1e-4) || u.MemoryUsedMB != 2000 {
			t.Errorf("imaging GPU %+v, want utilisation 0.8696 and 2000 MB", u)
		}
	}
	if u := byTask["cal"][0]; u.Utilization != 1 || u.MemoryUsedMB != 3000 {
		t.Errorf("alphacal GPU %+v, want utilisation 1 and 3000 MB", u)
	}
	for _, u := range byTask[""] {
		if u.Utilization != 0 || u.MemoryUsedMB != 0 {
			t.Errorf("idle GPU %+v", u)
		}
	}
}

func TestBatchingAndMixedPrecision(t *testing.T) {
	// Imaging, 20 GB, one GPU: 600 s and 8000 MB. On a 1000 MB GPU (900
	// usable) that is 9 batches, 1 + 0.08*8 = 1.64 times slower: 984 s.
	d, clk := newSim(t, simgpu.Config{GPUMemoryMB: 1000, DatasetGB: fixed(map[string]float64{"x": 20})})
	h := submit(t, d, backends.Task{ID: "b", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1})
	clk.Advance(time.Hour)
	var r simgpu.Result
	if err := json.Unmarshal(status(t, d, h).Result, &r); err != nil {
		t.Fatal(err)
	}
	if r.Batches != 9 || !near(r.ModelledSeconds, 984, 1e-3) || r.PeakGPUMemoryMB != 889 {
		t.Errorf("batched result %+v, want 9 batches, 984 s, 889 MB", r)
	}

	// Mixed precision: 10 GB on one GPU, 300 * (0.05 + 0.95/1.6) = 193.125 s.
	d2, clk2 := newSim(t, simgpu.Config{MixedPrecision: true, DatasetGB: fixed(map[string]float64{"x": 10})})
	h2 := submit(t, d2, backends.Task{ID: "m", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1})
	clk2.Advance(time.Hour)
	json.Unmarshal(status(t, d2, h2).Result, &r)
	if !near(r.ModelledSeconds, 193.125, 1e-3) || !r.MixedPrecision || r.PeakGPUMemoryMB != 2000 {
		t.Errorf("mixed precision result %+v, want 193.125 s and 2000 MB", r)
	}
}

func TestWallTimeLimit(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{DatasetGB: fixed(map[string]float64{"ds": 20})})
	// 144 s of work under a 60 s limit.
	h := submit(t, d, backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "ds", GPUs: 2, WallTime: time.Minute})
	clk.Advance(59 * time.Second)
	if st := status(t, d, h); st.State != backends.TaskRunning {
		t.Fatalf("at 59 s: %s", st.State)
	}
	clk.Advance(time.Second)
	st := status(t, d, h)
	if st.State != backends.TaskTimeout || !near(st.Progress, 100*60.0/144, 1e-6) || !strings.Contains(st.Message, "wall-time limit 1m0s") {
		t.Fatalf("at 60 s: %s %v%% %q, want TIMEOUT at 41.67%%", st.State, st.Progress, st.Message)
	}
	c, _ := d.Capacity(context.Background())
	if c.FreeGPUs != c.TotalGPUs {
		t.Errorf("timed-out task kept GPUs: %+v", c)
	}
}

func TestSeededFailures(t *testing.T) {
	run := func(seed int64) map[string]backends.Status {
		d, clk := newSim(t, simgpu.Config{Nodes: 4, GPUsPerNode: 8, FailureRate: 0.3, Seed: seed,
			DatasetGB: func(string) float64 { return 1 }})
		hs := map[string]backends.Handle{}
		for i := range 200 {
			id := fmt.Sprintf("job-%03d", i)
			hs[id] = submit(t, d, backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "x"})
		}
		clk.Advance(time.Hour)
		out := map[string]backends.Status{}
		for id, h := range hs {
			out[id] = status(t, d, h)
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	failed, differ := 0, 0
	kinds := map[string]int{}
	for id, st := range a {
		if st.State != b[id].State || st.Message != b[id].Message || !st.EndedAt.Equal(b[id].EndedAt) {
			t.Fatalf("%s differs between two runs with seed 7: %+v vs %+v", id, st, b[id])
		}
		if st.State != c[id].State {
			differ++
		}
		switch st.State {
		case backends.TaskFailed:
			failed++
			if st.Progress < 5 || st.Progress > 95 {
				t.Errorf("%s failed at %v%%, want between 5 and 95", id, st.Progress)
			}
			for _, k := range []string{simgpu.FailNodeLoss, simgpu.FailOOM, simgpu.FailPreemption} {
				if strings.Contains(st.Message, k) {
					kinds[k]++
				}
			}
			if strings.Contains(st.Message, simgpu.FailOOM) && (st.ExitCode == nil || *st.ExitCode != 137) {
				t.Errorf("%s: out-of-memory exit code %v, want 137", id, st.ExitCode)
			}
		case backends.TaskCompleted:
		default:
			t.Errorf("%s ended %s", id, st.State)
		}
	}
	// Binomial(200, 0.3): mean 60, sd 6.5; 35..85 is about 4 sd.
	if failed < 35 || failed > 85 {
		t.Errorf("%d of 200 failed at rate 0.3", failed)
	}
	if differ == 0 {
		t.Error("seeds 7 and 8 fail exactly the same tasks")
	}
	if len(kinds) != 3 {
		t.Errorf("failure kinds seen %v, want all three", kinds)
	}
}

func TestCancelQueuedStartsNext(t *testing.T) {
	d, _ := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 1, DatasetGB: func(string) float64 { return 100 }})
	run := submit(t, d, backends.Task{ID: "run", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	q1 := submit(t, d, backends.Task{ID: "q1", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	q2 := submit(t, d, backends.Task{ID: "q2", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	if err := d.Cancel(context.Background(), q1); err != nil {
		t.Fatal(err)
	}
	if st := status(t, d, q1); st.State != backends.TaskCancelled || !st.StartedAt.IsZero() {
		t.Fatalf("cancelled queued task: %+v", st)
	}
	if st := status(t, d, q2); !strings.Contains(st.Message, "position 1") {
		t.Fatalf("q2 after q1 left: %q", st.Message)
	}
	if err := d.Cancel(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	if st := status(t, d, q2); st.State != backends.TaskRunning {
		t.Fatalf("q2 after the running task was cancelled: %s", st.State)
	}
}

func TestRestartLosesTasks(t *testing.T) {
	d1, err := simgpu.New(&simgpu.Config{Clock: simgpu.NewManualClock(epoch)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := d1.Submit(context.Background(), backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	d1.Close()
	d2, err := simgpu.New(&simgpu.Config{Clock: simgpu.NewManualClock(epoch)})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	// The new process's first task must not be mistaken for the old one.
	h2, _ := d2.Submit(context.Background(), backends.Task{ID: "b", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	if h2.ExternalID == h.ExternalID {
		t.Fatalf("two processes issued external id %q", h.ExternalID)
	}
	_, err = d2.Recover(context.Background(), h)
	if !errors.Is(err, backends.ErrTaskNotFound) || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("Recover after restart = %v, want ErrTaskNotFound explaining the restart", err)
	}
}

func TestCPUOnlyAndIdempotentSubmit(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 1, DatasetGB: func(string) float64 { return 10 }})
	submit(t, d, backends.Task{ID: "gpu", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	// GPUs 0: runs at once, 8 times the one-GPU time (120 s -> 960 s).
	h := submit(t, d, backends.Task{ID: "cpu", Agent: agents.NameAlphaCal, DatasetID: "x"})
	if again := submit(t, d, backends.Task{ID: "cpu", Agent: agents.NameAlphaCal, DatasetID: "x"}); again.ExternalID != h.ExternalID {
		t.Fatalf("resubmitting task id cpu gave %+v, first %+v", again, h)
	}
	st := status(t, d, h)
	if st.State != backends.TaskRunning || st.Node != "cpu" {
		t.Fatalf("cpu task %s on %q", st.State, st.Node)
	}
	clk.Advance(959 * time.Second)
	if st := status(t, d, h); st.State != backends.TaskRunning {
		t.Fatalf("cpu task at 959 s: %s", st.State)
	}
	clk.Advance(time.Second)
	if st := status(t, d, h); st.State != backends.TaskCompleted {
		t.Fatalf("cpu task at 960 s: %s", st.State)
	}
	c, _ := d.Capacity(context.Background())
	if c.Running != 0 {
		t.Errorf("running %d after all finished", c.Running)
	}
}

func TestMaxQueue(t *testing.T) {
	d, _ := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 1, MaxQueue: 1})
	submit(t, d, backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	submit(t, d, backends.Task{ID: "b", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	c, _ := d.Capacity(context.Background())
	if c.FreeSlots != 0 || c.Pending != 1 {
		t.Fatalf("capacity %+v, want a full queue", c)
	}
	_, err := d.Submit(context.Background(), backends.Task{ID: "c", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	if !errors.Is(err, backends.ErrNoCapacity) {
		t.Fatalf("Submit to a full queue = %v, want ErrNoCapacity", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		cfg   simgpu.Config
		field string
	}{
		{simgpu.Config{Nodes: -1}, "Nodes"},
		{simgpu.Config{GPUsPerNode: -2}, "GPUsPerNode"},
		{simgpu.Config{GPUMemoryMB: -1}, "GPUMemoryMB"},
		{simgpu.Config{SpeedUp: math.NaN()}, "SpeedUp"},
		{simgpu.Config{SpeedUp: -3}, "SpeedUp"},
		{simgpu.Config{FailureRate: 1.5}, "FailureRate"},
		{simgpu.Config{MaxQueue: -1}, "MaxQueue"},
		{simgpu.Config{MaxWallTime: -time.Second}, "MaxWallTime"},
		{simgpu.Config{CPUSlowdown: math.Inf(1)}, "CPUSlowdown"},
		{simgpu.Config{InstanceID: "a b"}, "InstanceID"},
	} {
		if _, err := simgpu.New(&c.cfg); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("New with bad %s = %v, want an error naming it", c.field, err)
		}
	}
	d, err := simgpu.New(nil)
	if err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	caps, _ := d.Capabilities(context.Background())
	if caps.MaxGPUs != simgpu.DefaultNodes*simgpu.DefaultGPUsPerNode || caps.MaxWallTime != simgpu.DefaultMaxWallTime {
		t.Errorf("default capabilities %+v", caps)
	}
}

func TestDatasetSizeDeterministic(t *testing.T) {
	seen := map[float64]bool{}
	for i := range 100 {
		id := fmt.Sprintf("VLASS2.1.ql.T%02d", i)
		s := simgpu.DatasetSize(id)
		if s != simgpu.DatasetSize(id) || s < 1 || s > 50 {
			t.Fatalf("DatasetSize(%q) = %v", id, s)
		}
		seen[s] = true
	}
	if len(seen) < 80 {
		t.Errorf("only %d distinct sizes for 100 ids", len(seen))
	}
}

func TestRealClockConcurrency(t *testing.T) {
	// Real time, a huge speed-up: tasks finish within milliseconds while
	// many goroutines submit, poll and cancel (run with -race).
	d, err := simgpu.New(&simgpu.Config{SpeedUp: 1e6, Nodes: 2, GPUsPerNode: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			h, err := d.Submit(ctx, backends.Task{ID: fmt.Sprint(i), Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1 + i%2})
			if err != nil {
				t.Error(err)
				return
			}
			if i%4 == 0 {
				d.Cancel(ctx, h)
			}
			for range 10000 {
				st, err := d.Status(ctx, h)
				if err != nil {
					t.Error(err)
					return
				}
				d.Usage(ctx)
				if st.State.Terminal() {
					return
				}
				time.Sleep(time.Millisecond)
			}
			t.Errorf("task %d never finished", i)
		}()
	}
	wg.Wait()
}

func TestUsageSeries(t *testing.T) {
	gb := 10 * 100.0 / 120 // alphacal: 100 s on one GPU, 60 s on two
	d, clk := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 2, DatasetGB: func(string) float64 { return gb }})
	submit(t, d, backends.Task{ID: "a", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	submit(t, d, backends.Task{ID: "b", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 2})
	clk.Advance(200 * time.Second)
	series, err := d.UsageSeries(context.Background(), epoch, 50*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range series {
		got = append(got, fmt.Sprintf("%s:%s|%s", s.Time.Sub(epoch), s.GPUs[0].TaskID, s.GPUs[1].TaskID))
	}
	// a runs 0–100 s on GPU 0; b waits for both GPUs and runs 100–160 s.
	want := "0s:a| 50s:a| 1m40s:b|b 2m30s:b|b 3m20s:|"
	if strings.Join(got, " ") != want {
		t.Fatalf("series %q, want %q", strings.Join(got, " "), want)
	}
	if u := series[3].GPUs[0]; !near(u.Utilization, 1/(2*0.2+0.8), 1e-4) {
		t.Errorf("b's utilisation on 2 GPUs %v, want 0.8333", u.Utilization)
	}
	if _, err := d.UsageSeries(context.Background(), epoch, 0); err == nil || !strings.Contains(err.Error(), "step") {
		t.Errorf("zero step: %v", err)
	}
	if _, err := d.UsageSeries(context.Background(), epoch, time.Millisecond); err == nil {
		t.Error("200000 samples accepted")
	}
}
