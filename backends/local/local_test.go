package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/local"
)

// testAgents returns a registry of small agents:
//   - steps: reports 20, 40, ..., 100 and returns metrics;
//   - fails: reports 30 and returns an error;
//   - waits: reports 10 and blocks until its context ends.
func testAgents(t testing.TB) *agents.Registry {
	r := &agents.Registry{}
	steps := agents.Descriptor{Name: "steps", Params: []agents.Param{
		{Name: "n", Type: agents.Integer, Default: int64(5), Min: ptr(1.0), Max: ptr(100.0)},
	}}.WithRun(func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
		var p struct{ N int }
		if err := json.Unmarshal(in.Params, &p); err != nil {
			return agents.Output{}, err
		}
		for i := 1; i <= p.N; i++ {
			if err := ctx.Err(); err != nil {
				return agents.Output{}, err
			}
			progress(100*float64(i)/float64(p.N), fmt.Sprintf("step %d", i))
		}
		return agents.Output{Summary: "did " + in.DatasetID, Metrics: map[string]float64{"steps": float64(p.N)}}, nil
	})
	fails := agents.Descriptor{Name: "fails"}.WithRun(func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
		progress(30, "reading")
		return agents.Output{}, fmt.Errorf("dataset %s is unreadable", in.DatasetID)
	})
	waits := agents.Descriptor{Name: "waits"}.WithRun(func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
		progress(10, "waiting")
		<-ctx.Done()
		return agents.Output{}, ctx.Err()
	})
	for _, d := range []agents.Descriptor{steps, fails, waits, agents.AlphaCal()} {
		if err := r.Register(agents.New(d)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func ptr(f float64) *float64 { return &f }

var quiet = &backends.Options{Logger: slog.New(slog.DiscardHandler)}

func TestConformance(t *testing.T) {
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			b, err := local.Open(&local.Config{Agents: testAgents(t), Workers: 4, GPUs: 2, MaxMemoryMB: 4096}, quiet)
			if err != nil {
				t.Fatal(err)
			}
			return backendtest.Instance{Backend: b}
		},
		Complete: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: "steps", DatasetID: "ds-" + id}
		},
		Fail: func(id string) backends.Task { return backends.Task{ID: id, Agent: "fails", DatasetID: "ds"} },
		Long: func(id string) backends.Task { return backends.Task{ID: id, Agent: "waits", DatasetID: "ds", GPUs: 1} },
	})
}

func newLocal(t *testing.T, cfg local.Config) *local.Driver {
	t.Helper()
	if cfg.Agents == nil {
		cfg.Agents = testAgents(t)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	d, err := local.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// wait polls until the task is terminal or cond holds.
func wait(t *testing.T, d *local.Driver, h backends.Handle, cond func(backends.Status) bool) backends.Status {
	t.Helper()
	for range 20000 {
		st, err := d.Status(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if cond(st) {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("task %s never reached the awaited state", h.ExternalID)
	return backends.Status{}
}

func terminal(st backends.Status) bool { return st.State.Terminal() }

func TestResultIsAgentOutput(t *testing.T) {
	d := newLocal(t, local.Config{})
	h, err := d.Submit(context.Background(), backends.Task{ID: "a", Agent: "steps", DatasetID: "VLASS-x", Params: json.RawMessage(`{"n": 7}`)})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, h, terminal)
	var out agents.Output
	if err := json.Unmarshal(st.Result, &out); err != nil {
		t.Fatal(err)
	}
	if st.State != backends.TaskCompleted || out.Summary != "did VLASS-x" || out.Metrics["steps"] != 7 || st.Message != "did VLASS-x" {
		t.Fatalf("status %+v, output %+v", st, out)
	}
}

func TestInvalidParamsAndUnrunnableAgent(t *testing.T) {
	d := newLocal(t, local.Config{})
	_, err := d.Submit(context.Background(), backends.Task{ID: "a", Agent: "steps", DatasetID: "x", Params: json.RawMessage(`{"n": 0}`)})
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), "params") || !strings.Contains(err.Error(), "parameter n = 0") {
		t.Errorf("bad parameter: %v", err)
	}
	_, err = d.Submit(context.Background(), backends.Task{ID: "b", Agent: "steps", DatasetID: "x", Params: json.RawMessage(`{"bogus": 1}`)})
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown parameter: %v", err)
	}
	// alphacal is registered as a descriptor only: not runnable here.
	_, err = d.Submit(context.Background(), backends.Task{ID: "c", Agent: agents.NameAlphaCal, DatasetID: "x"})
	if !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), "agent") {
		t.Errorf("unrunnable agent: %v", err)
	}
	caps, _ := d.Capabilities(context.Background())
	if strings.Join(caps.Agents, ",") != "fails,steps,waits" {
		t.Errorf("capabilities list agents %v, want the runnable ones", caps.Agents)
	}
}

func TestWorkerLimitFIFO(t *testing.T) {
	// A gate agent that blocks until its dataset's channel is closed.
	var mu sync.Mutex
	gates := map[string]chan struct{}{}
	gate := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if gates[id] == nil {
			gates[id] = make(chan struct{})
		}
		return gates[id]
	}
	r := &agents.Registry{}
	r.Register(agents.New(agents.Descriptor{Name: "gate"}.WithRun(func(ctx context.Context, in agents.Input, _ agents.ProgressFunc) (agents.Output, error) {
		select {
		case <-gate(in.DatasetID):
			return agents.Output{Summary: in.DatasetID}, nil
		case <-ctx.Done():
			return agents.Output{}, ctx.Err()
		}
	})))
	d := newLocal(t, local.Config{Agents: r, Workers: 2})
	var hs []backends.Handle
	for i := range 4 {
		h, err := d.Submit(context.Background(), backends.Task{ID: fmt.Sprint(i), Agent: "gate", DatasetID: fmt.Sprint("d", i)})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	states := func() string {
		var s []string
		for _, h := range hs {
			st, _ := d.Status(context.Background(), h)
			s = append(s, string(st.State))
		}
		return strings.Join(s, " ")
	}
	if got := states(); got != "RUNNING RUNNING PENDING PENDING" {
		t.Fatalf("states %s", got)
	}
	c, _ := d.Capacity(context.Background())
	if c.Running != 2 || c.Pending != 2 || c.FreeSlots != 0 {
		t.Fatalf("capacity %+v", c)
	}
	st, _ := d.Status(context.Background(), hs[3])
	if !strings.Contains(st.Message, "position 2") {
		t.Errorf("fourth task message %q", st.Message)
	}
	close(gate("d1"))
	wait(t, d, hs[1], terminal)
	// The first queued task (2) takes the freed worker, not 3.
	wait(t, d, hs[2], func(st backends.Status) bool { return st.State == backends.TaskRunning })
	if got := states(); got != "RUNNING COMPLETED RUNNING PENDING" {
		t.Fatalf("states after one finished: %s", got)
	}
	close(gate("d0"))
	close(gate("d2"))
	close(gate("d3"))
	for _, h := range hs {
		if st := wait(t, d, h, terminal); st.State != backends.TaskCompleted {
			t.Errorf("%s ended %s", h.ExternalID, st.State)
		}
	}
}

func TestWallTimeLimit(t *testing.T) {
	d := newLocal(t, local.Config{})
	h, err := d.Submit(context.Background(), backends.Task{ID: "w", Agent: "waits", DatasetID: "x", WallTime: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, h, terminal)
	if st.State != backends.TaskTimeout || !strings.Contains(st.Message, "wall-time limit") || st.Progress != 10 {
		t.Fatalf("status %+v, want TIMEOUT at 10%%", st)
	}
}

func TestPanicAndProgressClamp(t *testing.T) {
	r := &agents.Registry{}
	release := make(chan struct{})
	r.Register(agents.New(agents.Descriptor{Name: "wobbly"}.WithRun(func(ctx context.Context, in agents.Input, progress agents.ProgressFunc) (agents.Output, error) {
		progress(50, "half")
		progress(30, "backwards")
		progress(-5, "negative")
		<-release
		progress(250, "overshoot")
		panic("index out of range")
	})))
	d := newLocal(t, local.Config{Agents: r})
	h, err := d.Submit(context.Background(), backends.Task{ID: "p", Agent: "wobbly", DatasetID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	st := wait(t, d, h, func(st backends.Status) bool { return st.Progress == 50 })
	if st.Message != "half" {
		t.Errorf("note %q, want the note of the highest progress", st.Message)
	}
	close(release)
	st = wait(t, d, h, terminal)
	if st.State != backends.TaskFailed || st.Progress != 100 || !strings.Contains(st.Message, "panicked: index out of range") {
		t.Fatalf("status %+v", st)
	}
}

func TestRestartAndClose(t *testing.T) {
	d1 := newLocal(t, local.Config{})
	h, err := d1.Submit(context.Background(), backends.Task{ID: "w", Agent: "waits", DatasetID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, d1, h, func(st backends.Status) bool { return st.State == backends.TaskRunning })
	if err := d1.Close(); err != nil { // cancels the waiting agent and waits for it
		t.Fatal(err)
	}
	if _, err := d1.Status(context.Background(), h); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Status after Close: %v", err)
	}
	d2 := newLocal(t, local.Config{})
	if _, err := d2.Recover(context.Background(), h); !errors.Is(err, backends.ErrTaskNotFound) || !strings.Contains(err.Error(), "restart") {
		t.Errorf("Recover in a new process: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg   *local.Config
		field string
	}{
		{nil, "Agents"},
		{&local.Config{}, "Agents"},
		{&local.Config{Agents: &agents.Registry{}, Workers: -1}, "Workers"},
		{&local.Config{Agents: &agents.Registry{}, GPUs: -1}, "GPUs"},
		{&local.Config{Agents: &agents.Registry{}, MaxWallTime: -1}, "MaxWallTime"},
		{&local.Config{Agents: &agents.Registry{}, MaxMemoryMB: -1}, "MaxMemoryMB"},
	} {
		if _, err := local.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("New with bad %s: %v", c.field, err)
		}
	}
}
