package backends_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// The portable *Backend validates a task before the driver sees it, and
// every driver reports errors through the package's sentinels.
func Example() {
	ctx := context.Background()
	clock := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d, _ := simgpu.New(&simgpu.Config{Clock: clock, Nodes: 1, GPUsPerNode: 4, SpeedUp: 60,
		DatasetGB: func(string) float64 { return 10 }})
	b := backends.New(d, nil)
	defer b.Close()

	_, err := b.Submit(ctx, backends.Task{ID: "too-big", Agent: agents.NameAlphaCal, DatasetID: "x", GPUs: 16})
	fmt.Println(errors.Is(err, backends.ErrInvalidTask), err)

	// Imaging 10 GB on 4 GPUs: 300 s * (0.05 + 0.95/4) = 86.25 s modelled,
	// 1.4375 s at SpeedUp 60; after 1 s it is 69.6 % done.
	h, _ := b.Submit(ctx, backends.Task{ID: "job-1", Agent: agents.NameImageReconstruction, DatasetID: "x", GPUs: 4})
	clock.Advance(time.Second)
	st, _ := b.Status(ctx, h)
	fmt.Printf("%s %.1f%%\n", st.State, st.Progress)
	capacity, _ := b.Capacity(ctx)
	fmt.Printf("free GPUs %d of %d\n", capacity.FreeGPUs, capacity.TotalGPUs)

	_, err = b.Status(ctx, backends.Handle{Backend: "simgpu", ExternalID: "gone-1"})
	fmt.Println(errors.Is(err, backends.ErrTaskNotFound))
	// Output:
	// true backends: simgpu: task too-big: backends: invalid task: field gpus is 16, backend maximum is 4
	// RUNNING 69.6%
	// free GPUs 0 of 4
	// true
}
