package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
)

// clockDriver is a test backend whose tasks run for a fixed duration of
// real time, reporting linear progress; a dataset id containing "long"
// runs for an hour instead. Like a cluster that lost its state,
// a new clockDriver knows none of an earlier one's tasks.
type clockDriver struct {
	name string
	dur  time.Duration
	full bool // report no free capacity, so jobs stay queued

	mu    sync.Mutex
	n     int
	tasks map[string]*clockTask
}

type clockTask struct {
	dur       time.Duration
	start     time.Time
	cancelled bool
	end       time.Time
}

func newClockDriver(name string, dur time.Duration) *clockDriver {
	return &clockDriver{name: name, dur: dur, tasks: map[string]*clockTask{}}
}

func (d *clockDriver) Name() string { return d.name }

func (d *clockDriver) Capabilities(context.Context) (backends.Capabilities, error) {
	return backends.Capabilities{MaxGPUs: 16, MaxWallTime: 48 * time.Hour, Cancel: true, Recover: true}, nil
}

func (d *clockDriver) Capacity(context.Context) (backends.Capacity, error) {
	if d.full {
		return backends.Capacity{TotalGPUs: 64}, nil
	}
	return backends.Capacity{TotalGPUs: 64, FreeGPUs: 64, FreeSlots: 100}, nil
}

func (d *clockDriver) Submit(_ context.Context, t backends.Task) (backends.Handle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	id := fmt.Sprintf("%s-%d", d.name, d.n)
	dur := d.dur
	if strings.Contains(t.DatasetID, "long") {
		dur = time.Hour
	}
	d.tasks[id] = &clockTask{start: time.Now(), dur: dur}
	return backends.Handle{Backend: d.name, ExternalID: id}, nil
}

func (d *clockDriver) Status(_ context.Context, h backends.Handle) (backends.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tasks[h.ExternalID]
	if !ok {
		return backends.Status{}, fmt.Errorf("%w: %s", backends.ErrTaskNotFound, h.ExternalID)
	}
	if t.cancelled {
		return backends.Status{State: backends.TaskCancelled, StartedAt: t.start, EndedAt: t.end}, nil
	}
	el := time.Since(t.start)
	if el >= t.dur {
		return backends.Status{State: backends.TaskCompleted, Progress: 100, StartedAt: t.start, EndedAt: t.start.Add(t.dur),
			Result: []byte(`{"summary":"done"}`)}, nil
	}
	return backends.Status{State: backends.TaskRunning, Progress: 100 * float64(el) / float64(t.dur), StartedAt: t.start}, nil
}

func (d *clockDriver) Cancel(_ context.Context, h backends.Handle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tasks[h.ExternalID]
	if !ok {
		return fmt.Errorf("%w: %s", backends.ErrTaskNotFound, h.ExternalID)
	}
	if !t.cancelled && time.Since(t.start) < t.dur {
		t.cancelled, t.end = true, time.Now()
	}
	return nil
}

func (d *clockDriver) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return d.Status(ctx, h)
}

func (d *clockDriver) Close() error { return nil }
