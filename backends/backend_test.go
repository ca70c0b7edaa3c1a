package backends_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

func TestTaskValidateNamesField(t *testing.T) {
	good := backends.Task{ID: "t", Agent: "a", DatasetID: "d"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*backends.Task){
		"id":         func(t *backends.Task) { t.ID = "" },
		"agent":      func(t *backends.Task) { t.Agent = "" },
		"dataset_id": func(t *backends.Task) { t.DatasetID = "" },
		"gpus is -2": func(t *backends.Task) { t.GPUs = -2 },
		"memory_mb":  func(t *backends.Task) { t.MemoryMB = -1 },
		"wall_time":  func(t *backends.Task) { t.WallTime = -time.Minute },
	} {
		task := good
		edit(&task)
		if err := task.Validate(); !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: %v", field, err)
		}
	}
}

func TestCapabilitiesFits(t *testing.T) {
	c := backends.Capabilities{MaxGPUs: 4, MaxMemoryMB: 1000, MaxWallTime: time.Hour, Agents: []string{"alphacal"}}
	ok := backends.Task{ID: "t", Agent: "alphacal", DatasetID: "d", GPUs: 4, MemoryMB: 1000, WallTime: time.Hour}
	if err := c.Fits(ok); err != nil {
		t.Fatalf("task at the limits: %v", err)
	}
	for want, edit := range map[string]func(*backends.Task){
		"gpus is 5":                 func(t *backends.Task) { t.GPUs = 5 },
		"memory_mb is 1001":         func(t *backends.Task) { t.MemoryMB = 1001 },
		"wall_time is 1h0m1s":       func(t *backends.Task) { t.WallTime = time.Hour + time.Second },
		`agent is "imaging"`:        func(t *backends.Task) { t.Agent = "imaging" },
		"backend maximum is 4":      func(t *backends.Task) { t.GPUs = 9 },
		"backend runs only [alpha":  func(t *backends.Task) { t.Agent = "x" },
		"backend maximum is 1h0m0s": func(t *backends.Task) { t.WallTime = 2 * time.Hour },
	} {
		task := ok
		edit(&task)
		if err := c.Fits(task); !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q: %v", want, err)
		}
	}
	// Zero limits mean unlimited memory and wall time; MaxGPUs 0 means CPU only.
	cpu := backends.Capabilities{}
	if err := cpu.Fits(backends.Task{GPUs: 1}); err == nil {
		t.Error("a GPU task fits a CPU-only backend")
	}
	if err := cpu.Fits(backends.Task{MemoryMB: 1 << 30, WallTime: 1000 * time.Hour}); err != nil {
		t.Errorf("unlimited memory and wall time: %v", err)
	}
}

func TestTerminalStates(t *testing.T) {
	for s, want := range map[backends.TaskState]bool{
		backends.TaskPending: false, backends.TaskRunning: false,
		backends.TaskCompleted: true, backends.TaskFailed: true, backends.TaskCancelled: true, backends.TaskTimeout: true,
	} {
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v", s, !want)
		}
	}
}

// noUsage is a driver without UsageReporter.
type noUsage struct{ backends.Driver }

func TestBackendHandleChecksAndUsage(t *testing.T) {
	d, err := simgpu.New(&simgpu.Config{Clock: simgpu.NewManualClock(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	b := backends.New(d, nil)
	defer b.Close()
	ctx := context.Background()
	for _, h := range []backends.Handle{{Backend: "simgpu"}, {Backend: "slurm", ExternalID: "12"}} {
		if _, err := b.Status(ctx, h); !errors.Is(err, backends.ErrTaskNotFound) {
			t.Errorf("Status(%+v) = %v", h, err)
		}
		if err := b.Cancel(ctx, h); !errors.Is(err, backends.ErrTaskNotFound) {
			t.Errorf("Cancel(%+v) = %v", h, err)
		}
	}
	if u, err := b.Usage(ctx); err != nil || len(u) != simgpu.DefaultNodes*simgpu.DefaultGPUsPerNode {
		t.Errorf("Usage = %d GPUs, %v", len(u), err)
	}
	b2 := backends.New(noUsage{d}, nil)
	if _, err := b2.Usage(ctx); !errors.Is(err, backends.ErrUnsupported) {
		t.Errorf("Usage without a reporter = %v, want ErrUnsupported", err)
	}
	if (backends.Handle{}).IsZero() != true || (backends.Handle{ExternalID: "1"}).IsZero() {
		t.Error("Handle.IsZero")
	}
}

// BenchmarkSimSubmitStatus measures one submit plus one status poll on a
// simulated cluster with a steady load of tasks.
func BenchmarkSimSubmitStatus(b *testing.B) {
	clk := simgpu.NewManualClock(time.Unix(0, 0))
	d, err := simgpu.New(&simgpu.Config{Clock: clk, Nodes: 8, GPUsPerNode: 8, SpeedUp: 1e4})
	if err != nil {
		b.Fatal(err)
	}
	be := backends.New(d, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h, err := be.Submit(ctx, backends.Task{ID: fmt.Sprint(i), Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 1 + i%4})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := be.Status(ctx, h); err != nil {
			b.Fatal(err)
		}
		clk.Advance(10 * time.Millisecond)
	}
}
