package simgpu_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

func result(t *testing.T, st backends.Status) simgpu.Result {
	t.Helper()
	var r simgpu.Result
	if st.State != backends.TaskCompleted {
		t.Fatalf("state %s (%q), want COMPLETED", st.State, st.Message)
	}
	if err := json.Unmarshal(st.Result, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

var twoPools = []simgpu.Pool{
	{Name: "a100-40", Nodes: 1, GPUsPerNode: 4, GPUModel: "A100-40GB", GPUMemoryMB: 40960},
	{Name: "h100-80", Nodes: 1, GPUsPerNode: 4, GPUModel: "H100-80GB", GPUMemoryMB: 81920, Speed: 2},
}

// Imaging on 100 GB needs 40000 MB: two batches on a 40 GB GPU (36864 MB
// usable), one on an 80 GB GPU. Placement prefers the GPU that needs the
// fewest batches; when those are taken, the batch size follows the GPU
// the task got.
func TestPoolsPlacementAndDynamicBatches(t *testing.T) {
	run := func() []simgpu.Result {
		d, clk := newSim(t, simgpu.Config{Pools: twoPools, DatasetGB: fixed(map[string]float64{"big": 100, "small": 10})})
		var hs []backends.Handle
		for _, id := range []string{"b1", "b2", "b3", "b4", "b5"} {
			hs = append(hs, submit(t, d, backends.Task{ID: id, Agent: agents.NameImageReconstruction, DatasetID: "big", GPUs: 1}))
		}
		hs = append(hs, submit(t, d, backends.Task{ID: "s", Agent: agents.NameImageReconstruction, DatasetID: "small", GPUs: 1}))
		nodes, err := d.Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if nodes[0].FreeGPUs != 2 || nodes[1].FreeGPUs != 0 || nodes[1].Pool != "h100-80" || nodes[1].GPUMemoryMB != 81920 {
			t.Errorf("nodes after placement %+v", nodes)
		}
		u, _ := d.Usage(context.Background())
		if u[4].MemoryTotalMB != 81920 || u[4].MemoryUsedMB != 40000 || u[0].MemoryTotalMB != 40960 || u[0].MemoryUsedMB != 20000 {
			t.Errorf("usage %+v", u)
		}
		clk.Advance(2 * time.Hour)
		var out []simgpu.Result
		for _, h := range hs {
			out = append(out, result(t, status(t, d, h)))
		}
		return out
	}
	rs := run()
	for i := range 4 {
		r := rs[i]
		// 3000 s on one reference GPU, parallel share 0.95 twice as fast.
		if r.Pool != "h100-80" || r.GPUModel != "H100-80GB" || r.Batches != 1 || r.BatchSizeMB != 40000 || r.GPUSpeed != 2 || !near(r.ModelledSeconds, 1575, 1e-3) {
			t.Errorf("big task %d: %+v, want h100-80, 1 batch of 40000 MB, 1575 s", i, r)
		}
	}
	if r := rs[4]; r.Pool != "a100-40" || r.Batches != 2 || r.BatchSizeMB != 20000 || !near(r.ModelledSeconds, 3240, 1e-3) {
		t.Errorf("fifth big task %+v, want a100-40, 2 batches of 20000 MB, 3000*1.08 = 3240 s", r)
	}
	if r := rs[5]; r.Pool != "a100-40" || r.Batches != 1 || !near(r.ModelledSeconds, 300, 1e-3) {
		t.Errorf("small task %+v, want a100-40, 1 batch, 300 s", r)
	}
	again := run()
	for i := range rs {
		if rs[i] != again[i] {
			t.Errorf("run not deterministic: %+v vs %+v", rs[i], again[i])
		}
	}
}

func TestHostMemoryPlacement(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{NodeMemoryMB: 100000, DatasetGB: fixed(map[string]float64{"x": 10})})
	caps, _ := d.Capabilities(context.Background())
	if caps.MaxMemoryMB != 100000 {
		t.Fatalf("MaxMemoryMB %d", caps.MaxMemoryMB)
	}
	task := func(id string) backends.Task {
		return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1, MemoryMB: 80000}
	}
	a := submit(t, d, task("a"))
	b := submit(t, d, task("b"))
	c := submit(t, d, task("c"))
	if sa, sb := status(t, d, a), status(t, d, b); sa.Node != "node-0" || sb.Node != "node-1" {
		t.Errorf("a on %q, b on %q; want b beside a only if memory allowed (node-0, node-1)", sa.Node, sb.Node)
	}
	if sc := status(t, d, c); sc.State != backends.TaskPending || !strings.Contains(sc.Message, "6 free") {
		t.Errorf("c %s %q, want PENDING with 6 GPUs free (no node has 80000 MB left)", sc.State, sc.Message)
	}
	nodes, _ := d.Nodes(context.Background())
	if nodes[0].MemoryUsedMB != 80000 || nodes[1].MemoryUsedMB != 80000 {
		t.Errorf("host memory used %+v", nodes)
	}
	clk.Advance(121 * time.Second) // a and b end after 120 s
	if sc := status(t, d, c); sc.State != backends.TaskRunning || sc.Node != "node-0" || !sc.StartedAt.Equal(epoch.Add(120*time.Second)) {
		t.Errorf("c after a ended: %s on %q from %v", sc.State, sc.Node, sc.StartedAt)
	}
	// A task spanning both nodes reserves its memory by GPU share.
	clk.Advance(time.Hour)
	wide := submit(t, d, backends.Task{ID: "w", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 8, MemoryMB: 100000})
	if st := status(t, d, wide); st.State != backends.TaskRunning || st.Node != "node-0,node-1" {
		t.Fatalf("wide task %s on %q", st.State, st.Node)
	}
	nodes, _ = d.Nodes(context.Background())
	if nodes[0].MemoryUsedMB != 50000 || nodes[1].MemoryUsedMB != 50000 {
		t.Errorf("wide task memory %+v, want 50000 on each node", nodes)
	}
}

// An injected node loss with NodeDowntime takes the node down: the other
// task on it fails too, nothing is placed there until it returns.
func TestNodeLossTakesTheNodeDown(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{NodeDowntime: 10 * time.Minute,
		DatasetGB: fixed(map[string]float64{"10": 10, "100": 100, "400": 400})})
	ctx := context.Background()
	x := submit(t, d, backends.Task{ID: "x", Agent: agents.NameAlphaCal, DatasetID: "10", GPUs: 1, Labels: map[string]string{simgpu.LabelFail: simgpu.FailNodeLoss}})
	y := submit(t, d, backends.Task{ID: "y", Agent: agents.NameAlphaCal, DatasetID: "100", GPUs: 2})
	z := submit(t, d, backends.Task{ID: "z", Agent: agents.NameAlphaCal, DatasetID: "400", GPUs: 4})
	if sy, sz := status(t, d, y), status(t, d, z); sy.Node != "node-0" || sz.Node != "node-1" {
		t.Fatalf("y on %q, z on %q", sy.Node, sz.Node)
	}
	clk.Advance(60 * time.Second) // x fails half-way through its 120 s
	sx, sy := status(t, d, x), status(t, d, y)
	if simgpu.FailureKind(sx) != simgpu.FailNodeLoss || sx.ExitCode != nil {
		t.Errorf("x: %s %q exit %v, want a node-loss failure without an exit code", sx.State, sx.Message, sx.ExitCode)
	}
	// y: 100 GB on 2 GPUs is 1200*(0.2+0.4) = 720 s; lost at 60 s.
	if simgpu.FailureKind(sy) != simgpu.FailNodeLoss || !strings.Contains(sy.Message, "lost under task x") || !near(sy.Progress, 100*60.0/720, 1e-6) {
		t.Errorf("y: %s %q %v%%, want node-loss under x at 8.33%%", sy.State, sy.Message, sy.Progress)
	}
	if st := status(t, d, z); st.State != backends.TaskRunning {
		t.Errorf("z on the other node: %s", st.State)
	}
	nodes, _ := d.Nodes(ctx)
	if !nodes[0].Down || !nodes[0].DownUntil.Equal(epoch.Add(660*time.Second)) || nodes[0].FreeGPUs != 0 || nodes[1].Down {
		t.Errorf("nodes after the loss %+v", nodes)
	}
	if c, _ := d.Capacity(ctx); c.FreeGPUs != 0 {
		t.Errorf("capacity with node-0 down and node-1 full: %+v", c)
	}
	w := submit(t, d, backends.Task{ID: "w", Agent: agents.NameAlphaCal, DatasetID: "10", GPUs: 1})
	clk.Advance(599 * time.Second)
	if st := status(t, d, w); st.State != backends.TaskPending {
		t.Fatalf("w before node-0 returns: %s on %q", st.State, st.Node)
	}
	clk.Advance(time.Second)
	if st := status(t, d, w); st.State != backends.TaskRunning || st.Node != "node-0" || !st.StartedAt.Equal(epoch.Add(660*time.Second)) {
		t.Errorf("w when node-0 returns: %s on %q from %v", st.State, st.Node, st.StartedAt)
	}
}

func TestFailureKindsAndPrecisionLabel(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{DatasetGB: fixed(map[string]float64{"x": 10})})
	kinds := map[string]*int{simgpu.FailNodeLoss: nil, simgpu.FailOOM: ptr(137), simgpu.FailPreemption: ptr(143), "bogus": ptr(1)}
	hs := map[string]backends.Handle{}
	for k := range kinds {
		hs[k] = submit(t, d, backends.Task{ID: "f-" + k, Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1, Labels: map[string]string{simgpu.LabelFail: k}})
	}
	fp32 := submit(t, d, backends.Task{ID: "fp32", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1, Labels: map[string]string{simgpu.LabelPrecision: "fp32"}})
	mixed := submit(t, d, backends.Task{ID: "mixed", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 1, Labels: map[string]string{simgpu.LabelPrecision: "mixed"}})
	clk.Advance(time.Hour)
	for k, want := range kinds {
		st := status(t, d, hs[k])
		wantKind := k
		if k == "bogus" {
			wantKind = "error"
		}
		if got := simgpu.FailureKind(st); got != wantKind {
			t.Errorf("%s: FailureKind %q (%q)", k, got, st.Message)
		}
		if (want == nil) != (st.ExitCode == nil) || (want != nil && *want != *st.ExitCode) {
			t.Errorf("%s: exit code %v, want %v", k, st.ExitCode, want)
		}
	}
	if st := status(t, d, hs[simgpu.FailOOM]); !strings.Contains(st.Message, "4000 MB batch outgrew the GPU") {
		t.Errorf("OOM message %q", st.Message)
	}
	rf, rm := result(t, status(t, d, fp32)), result(t, status(t, d, mixed))
	// 300 s in fp32; 300*(0.05+0.95/1.6) = 193.125 s mixed, half the memory.
	if rf.MixedPrecision || rf.PrecisionSpeedUp != 1 || !near(rf.ModelledSeconds, 300, 1e-3) || rf.BatchSizeMB != 4000 {
		t.Errorf("fp32 %+v", rf)
	}
	if !rm.MixedPrecision || !near(rm.PrecisionSpeedUp, 300/193.125, 1e-4) || !near(rm.ModelledSeconds, 193.125, 1e-3) || rm.BatchSizeMB != 2000 {
		t.Errorf("mixed %+v", rm)
	}
	_, err := d.Submit(context.Background(), backends.Task{ID: "bad", Agent: agents.NameAlphaCal, DatasetID: "x", Labels: map[string]string{simgpu.LabelPrecision: "fp8"}})
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), "labels[simgpu.precision]") || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("bad precision label = %v", err)
	}
	if simgpu.FailureKind(status(t, d, fp32)) != "" {
		t.Error("a completed task has a failure kind")
	}
}

func ptr(i int) *int { return &i }

func TestPoolConfigErrors(t *testing.T) {
	for _, c := range []struct {
		pools []simgpu.Pool
		want  string
	}{
		{[]simgpu.Pool{{Nodes: 0, GPUsPerNode: 4}}, "Pools[0] (pool-0) has Nodes 0"},
		{[]simgpu.Pool{{Name: "a", Nodes: 1, GPUsPerNode: 1}, {Name: "a", Nodes: 1, GPUsPerNode: 1}}, `Pools[1].Name "a" is used twice`},
		{[]simgpu.Pool{{Nodes: 1, GPUsPerNode: 1, Speed: -1}}, "Pools[0].Speed is -1"},
		{[]simgpu.Pool{{Nodes: 1, GPUsPerNode: 1, GPUMemoryMB: -2}}, "GPUMemoryMB -2"},
	} {
		if _, err := simgpu.New(&simgpu.Config{Pools: c.pools}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Pools %+v: %v, want %q", c.pools, err, c.want)
		}
	}
	if _, err := simgpu.New(&simgpu.Config{NodeDowntime: -time.Second}); err == nil || !strings.Contains(err.Error(), "NodeDowntime") {
		t.Errorf("negative NodeDowntime: %v", err)
	}
	d, err := simgpu.New(&simgpu.Config{Pools: twoPools})
	if err != nil {
		t.Fatal(err)
	}
	if c := d.Config(); c.Nodes != 2 || c.GPUsPerNode != 4 || c.Pools[0].NodeMemoryMB != simgpu.DefaultNodeMemoryMB || c.Pools[1].Speed != 2 {
		t.Errorf("config with pools %+v", c)
	}
}

// UsageSeries remembers the newest HistoryLimit intervals of each GPU,
// though the history is trimmed only in chunks.
func TestUsageSeriesHistoryLimit(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{Nodes: 1, GPUsPerNode: 1, HistoryLimit: 2, DatasetGB: fixed(map[string]float64{"x": 10})})
	// Four tasks: the history holds all four (it is trimmed past twice
	// the limit), the series shows the newest two.
	for i := range 4 { // alphacal, 10 GB, 1 GPU: 120 s each, one after another
		submit(t, d, backends.Task{ID: string(rune('a' + i)), Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1})
	}
	clk.Advance(time.Hour)
	series, err := d.UsageSeries(context.Background(), epoch, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range series[:4] {
		got = append(got, s.GPUs[0].TaskID)
	}
	if strings.Join(got, ",") != ",,c,d" {
		t.Errorf("tasks seen at 0, 120, 240, 360 s: %q, want only the newest two (c, d)", got)
	}
}
