package simgpu_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// With RetainFinished the driver forgets the oldest finished tasks and
// keeps every live one, so memory stays bounded over millions of tasks.
func TestRetainFinished(t *testing.T) {
	d, clk := newSim(t, simgpu.Config{RetainFinished: 3, DatasetGB: func(string) float64 { return 1 }})
	ctx := context.Background()
	var hs []backends.Handle
	for i := range 6 {
		hs = append(hs, submit(t, d, backends.Task{ID: fmt.Sprintf("t-%d", i), Agent: "alphacal", DatasetID: "d", GPUs: 1}))
	}
	clk.Advance(24 * time.Hour) // all six finish
	for _, h := range hs {
		d.Status(ctx, h) // advance the simulation
	}
	// The three oldest finished tasks are forgotten, the newest three kept.
	for i, h := range hs {
		_, err := d.Status(ctx, h)
		if i < 3 && !errors.Is(err, backends.ErrTaskNotFound) {
			t.Fatalf("task %d: Status = %v, want ErrTaskNotFound (forgotten)", i, err)
		}
		if i >= 3 && err != nil {
			t.Fatalf("task %d: Status = %v, want it remembered", i, err)
		}
	}
	// A running task is never forgotten, however many finish meanwhile.
	long := submit(t, d, backends.Task{ID: "long", Agent: "alphacal", DatasetID: "d", GPUs: 1, WallTime: 40 * time.Hour})
	for i := range 5 {
		h := submit(t, d, backends.Task{ID: fmt.Sprintf("c-%d", i), Agent: "alphacal", DatasetID: "d", GPUs: 1})
		if err := d.Cancel(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if st := status(t, d, long); st.State.Terminal() {
		t.Fatalf("long task %s", st.State)
	}
	if _, err := simgpu.New(&simgpu.Config{RetainFinished: -1}); err == nil {
		t.Fatal("RetainFinished -1 accepted")
	}
}
