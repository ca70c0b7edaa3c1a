// Package backendtest is the conformance suite every compute backend
// passes. A driver's test calls [Run] with a [Harness] that makes fresh
// backends and the tasks the suite needs:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, backendtest.Harness{
//			New: func(t *testing.T) backendtest.Instance { ... },
//			Complete: func(id string) backends.Task { ... },
//			Fail:     func(id string) backends.Task { ... },
//			Long:     func(id string) backends.Task { ... },
//		})
//	}
//
// The suite checks: submit to completion with progress non-decreasing and
// within 0–100 and a result; failure with a message; cancel (idempotent,
// cancelling a finished task is not an error); an unknown handle is
// backends.ErrTaskNotFound; invalid tasks are backends.ErrInvalidTask with
// the field named, both through *backends.Backend and straight at the
// driver; capabilities are respected; Capacity accounts for running tasks;
// Recover of a live handle; concurrent submits.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/backends"
)

// Instance is one fresh backend under test.
type Instance struct {
	// Backend is the backend; the suite closes it.
	Backend *backends.Backend
	// Step moves a virtual clock forward one step (for simulated
	// backends). Nil means the backend runs in real time and the suite
	// sleeps Harness.Poll between looks.
	Step func()
}

// Harness tells the suite how to drive one backend.
type Harness struct {
	// New returns a fresh, empty backend. Required.
	New func(t *testing.T) Instance
	// Complete returns a task that completes successfully in a few steps
	// or well under Timeout. Required.
	Complete func(id string) backends.Task
	// Fail returns a task that ends in backends.TaskFailed. Required.
	Fail func(id string) backends.Task
	// Long returns a task that keeps running until cancelled for at least
	// as long as the suite looks at it (hundreds of steps, or Timeout).
	// Required.
	Long func(id string) backends.Task
	// Poll is the sleep between looks for real-time backends; default
	// 5 ms.
	Poll time.Duration
	// Timeout bounds one wait; default 30 s of real time, or 100000 steps.
	Timeout time.Duration
	// Concurrency is the number of concurrent submits; default 8.
	Concurrency int
}

func (h *Harness) defaults(t *testing.T) {
	t.Helper()
	if h.New == nil || h.Complete == nil || h.Fail == nil || h.Long == nil {
		t.Fatal("backendtest: Harness needs New, Complete, Fail and Long")
	}
	if h.Poll <= 0 {
		h.Poll = 5 * time.Millisecond
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	if h.Concurrency <= 0 {
		h.Concurrency = 8
	}
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	h.defaults(t)
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"CompleteWithProgress", testComplete},
		{"FailWithMessage", testFail},
		{"Cancel", testCancel},
		{"CancelFinished", testCancelFinished},
		{"UnknownHandle", testUnknownHandle},
		{"InvalidTask", testInvalidTask},
		{"Capabilities", testCapabilities},
		{"Capacity", testCapacity},
		{"RecoverLive", testRecoverLive},
		{"ConcurrentSubmits", testConcurrent},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst := h.New(t)
			if inst.Backend == nil {
				t.Fatal("backendtest: Harness.New returned no Backend")
			}
			e := &env{h: &h, inst: inst, b: inst.Backend}
			t.Cleanup(func() { _ = inst.Backend.Close() })
			tc.fn(t, e)
		})
	}
}

type env struct {
	h    *Harness
	inst Instance
	b    *backends.Backend
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// step lets time pass; it returns false when the wait budget is spent.
func (e *env) step(start time.Time, n int) bool {
	if e.inst.Step != nil {
		e.inst.Step()
		return n < 100000
	}
	time.Sleep(e.h.Poll)
	return time.Since(start) < e.h.Timeout
}

// waitFor polls h until cond holds, checking progress on the way, and
// returns the last status. It stops the test on a failure.
func (e *env) waitFor(t *testing.T, h backends.Handle, what string, cond func(backends.Status) bool) backends.Status {
	t.Helper()
	st, err := e.poll(h, what, cond)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// poll is waitFor without the test: safe from any goroutine.
func (e *env) poll(h backends.Handle, what string, cond func(backends.Status) bool) (backends.Status, error) {
	start := time.Now()
	last := -1.0
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := 0; ; n++ {
		st, err := e.b.Status(c, h)
		if err != nil {
			return st, fmt.Errorf("Status(%s): %w", h.ExternalID, err)
		}
		if err := checkProgress(st, &last); err != nil {
			return st, fmt.Errorf("task %s: %w", h.ExternalID, err)
		}
		if cond(st) {
			return st, nil
		}
		if st.State.Terminal() {
			return st, fmt.Errorf("task %s ended %s (%q) while waiting for %s", h.ExternalID, st.State, st.Message, what)
		}
		if !e.step(start, n) {
			return st, fmt.Errorf("task %s: gave up waiting for %s; last status %+v", h.ExternalID, what, st)
		}
	}
}

func checkProgress(st backends.Status, last *float64) error {
	if st.Progress < 0 || st.Progress > 100 || st.Progress != st.Progress {
		return fmt.Errorf("progress %v outside 0–100 (state %s)", st.Progress, st.State)
	}
	if st.Progress < *last {
		return fmt.Errorf("progress went down from %v to %v (state %s)", *last, st.Progress, st.State)
	}
	*last = st.Progress
	switch st.State {
	case backends.TaskPending, backends.TaskRunning, backends.TaskCompleted, backends.TaskFailed,
		backends.TaskCancelled, backends.TaskTimeout:
		return nil
	}
	return fmt.Errorf("unknown task state %q", st.State)
}

func (e *env) submit(t *testing.T, task backends.Task) backends.Handle {
	t.Helper()
	h, err := e.b.Submit(ctx(t), task)
	if err != nil {
		t.Fatalf("Submit(%s): %v", task.ID, err)
	}
	if h.ExternalID == "" {
		t.Fatalf("Submit(%s) returned a handle with no external id: %+v", task.ID, h)
	}
	if h.Backend != e.b.Name() {
		t.Fatalf("Submit(%s) handle names backend %q, want %q", task.ID, h.Backend, e.b.Name())
	}
	return h
}

func terminal(st backends.Status) bool { return st.State.Terminal() }
func running(st backends.Status) bool  { return st.State == backends.TaskRunning }

func testComplete(t *testing.T, e *env) {
	h := e.submit(t, e.h.Complete("complete-1"))
	st := e.waitFor(t, h, "completion", terminal)
	if st.State != backends.TaskCompleted {
		t.Fatalf("state %s (%q), want COMPLETED", st.State, st.Message)
	}
	if st.Progress != 100 {
		t.Errorf("progress at completion %v, want 100", st.Progress)
	}
	if len(st.Result) == 0 {
		t.Error("completed task has no result")
	}
	if st.ExitCode != nil && *st.ExitCode != 0 {
		t.Errorf("completed task exit code %d, want 0", *st.ExitCode)
	}
	if !st.StartedAt.IsZero() && !st.EndedAt.IsZero() && st.EndedAt.Before(st.StartedAt) {
		t.Errorf("ended %v before it started %v", st.EndedAt, st.StartedAt)
	}
	// The status stays put once terminal.
	again, err := e.b.Status(ctx(t), h)
	if err != nil || again.State != backends.TaskCompleted {
		t.Fatalf("second Status = %v, %v; want COMPLETED", again.State, err)
	}
}

func testFail(t *testing.T, e *env) {
	h := e.submit(t, e.h.Fail("fail-1"))
	st := e.waitFor(t, h, "failure", terminal)
	if st.State != backends.TaskFailed {
		t.Fatalf("state %s, want FAILED", st.State)
	}
	if strings.TrimSpace(st.Message) == "" {
		t.Error("failed task has no message")
	}
	if st.Progress >= 100 {
		t.Errorf("failed task progress %v, want < 100", st.Progress)
	}
}

func testCancel(t *testing.T, e *env) {
	caps, err := e.b.Capabilities(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	h := e.submit(t, e.h.Long("long-cancel"))
	e.waitFor(t, h, "running", running)
	err = e.b.Cancel(ctx(t), h)
	if !caps.Cancel {
		if !errors.Is(err, backends.ErrUnsupported) {
			t.Fatalf("Cancel on a backend without cancel = %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	st := e.waitFor(t, h, "cancelled", terminal)
	if st.State != backends.TaskCancelled {
		t.Fatalf("state after cancel %s, want CANCELLED", st.State)
	}
	if err := e.b.Cancel(ctx(t), h); err != nil {
		t.Fatalf("second Cancel: %v (want nil: cancel is idempotent)", err)
	}
	if st2, err := e.b.Status(ctx(t), h); err != nil || st2.State != backends.TaskCancelled {
		t.Fatalf("Status after second cancel = %v, %v", st2.State, err)
	}
}

func testCancelFinished(t *testing.T, e *env) {
	caps, err := e.b.Capabilities(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Cancel {
		t.Skip("backend does not support cancel")
	}
	h := e.submit(t, e.h.Complete("complete-then-cancel"))
	e.waitFor(t, h, "completion", terminal)
	if err := e.b.Cancel(ctx(t), h); err != nil {
		t.Fatalf("Cancel of a finished task: %v, want nil", err)
	}
	st, err := e.b.Status(ctx(t), h)
	if err != nil || st.State != backends.TaskCompleted {
		t.Fatalf("Status after cancelling a finished task = %v, %v; want COMPLETED unchanged", st.State, err)
	}
}

func testUnknownHandle(t *testing.T, e *env) {
	for _, h := range []backends.Handle{
		{Backend: e.b.Name(), ExternalID: "no-such-task-42"},
		{Backend: e.b.Name(), ExternalID: ""},
		{Backend: "some-other-backend", ExternalID: "1"},
	} {
		if _, err := e.b.Status(ctx(t), h); !errors.Is(err, backends.ErrTaskNotFound) {
			t.Errorf("Status(%+v) = %v, want ErrTaskNotFound", h, err)
		}
		if _, err := e.b.Recover(ctx(t), h); !errors.Is(err, backends.ErrTaskNotFound) {
			t.Errorf("Recover(%+v) = %v, want ErrTaskNotFound", h, err)
		}
		if err := e.b.Cancel(ctx(t), h); !errors.Is(err, backends.ErrTaskNotFound) && !errors.Is(err, backends.ErrUnsupported) {
			t.Errorf("Cancel(%+v) = %v, want ErrTaskNotFound", h, err)
		}
	}
	// Straight at the driver too: it must not rely on *Backend's checks.
	h := backends.Handle{Backend: e.b.Name(), ExternalID: "no-such-task-43"}
	if _, err := e.b.Driver().Status(ctx(t), h); !errors.Is(err, backends.ErrTaskNotFound) {
		t.Errorf("driver Status(%+v) = %v, want ErrTaskNotFound", h, err)
	}
}

func testInvalidTask(t *testing.T, e *env) {
	caps, err := e.b.Capabilities(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	good := e.h.Complete("invalid-base")
	cases := []struct {
		field string
		edit  func(*backends.Task)
	}{
		{"id", func(t *backends.Task) { t.ID = "" }},
		{"agent", func(t *backends.Task) { t.Agent = "" }},
		{"dataset_id", func(t *backends.Task) { t.DatasetID = "" }},
		{"gpus", func(t *backends.Task) { t.GPUs = -1 }},
		{"gpus", func(t *backends.Task) { t.GPUs = caps.MaxGPUs + 1 }},
		{"memory_mb", func(t *backends.Task) { t.MemoryMB = -5 }},
		{"wall_time", func(t *backends.Task) { t.WallTime = -time.Second }},
	}
	if caps.MaxMemoryMB > 0 {
		cases = append(cases, struct {
			field string
			edit  func(*backends.Task)
		}{"memory_mb", func(t *backends.Task) { t.MemoryMB = caps.MaxMemoryMB + 1 }})
	}
	if caps.MaxWallTime > 0 {
		cases = append(cases, struct {
			field string
			edit  func(*backends.Task)
		}{"wall_time", func(t *backends.Task) { t.WallTime = caps.MaxWallTime + time.Hour }})
	}
	cases = append(cases, struct {
		field string
		edit  func(*backends.Task)
	}{"agent", func(t *backends.Task) { t.Agent = "no-such-agent-xyz" }})
	for i, c := range cases {
		task := good
		task.ID = fmt.Sprintf("invalid-%d", i)
		c.edit(&task)
		if _, err := e.b.Submit(ctx(t), task); !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Backend.Submit with bad %s = %v, want ErrInvalidTask naming %q", c.field, err, c.field)
		}
		if _, err := e.b.Driver().Submit(ctx(t), task); !errors.Is(err, backends.ErrInvalidTask) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("driver Submit with bad %s = %v, want ErrInvalidTask naming %q", c.field, err, c.field)
		}
	}
	capy, err := e.b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if capy.Running+capy.Pending != 0 {
		t.Errorf("rejected tasks left %d running and %d pending", capy.Running, capy.Pending)
	}
}

func testCapabilities(t *testing.T, e *env) {
	caps, err := e.b.Capabilities(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if caps.MaxGPUs < 0 || caps.MaxMemoryMB < 0 || caps.MaxWallTime < 0 {
		t.Fatalf("negative capabilities %+v", caps)
	}
	capy, err := e.b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if caps.MaxGPUs > capy.TotalGPUs && capy.TotalGPUs > 0 {
		t.Errorf("MaxGPUs %d exceeds the %d GPUs the backend has", caps.MaxGPUs, capy.TotalGPUs)
	}
	// A task at exactly the limits is accepted.
	task := e.h.Complete("at-limits")
	task.GPUs = caps.MaxGPUs
	if caps.MaxWallTime > 0 {
		task.WallTime = caps.MaxWallTime
	}
	if caps.MaxMemoryMB > 0 {
		task.MemoryMB = caps.MaxMemoryMB
	}
	h := e.submit(t, task)
	if st := e.waitFor(t, h, "completion", terminal); st.State != backends.TaskCompleted {
		t.Fatalf("task at the capability limits ended %s (%q)", st.State, st.Message)
	}
	if len(caps.Agents) > 0 {
		task := e.h.Complete("listed-agent")
		if !contains(caps.Agents, task.Agent) {
			t.Errorf("harness task agent %q not in Capabilities.Agents %v", task.Agent, caps.Agents)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func testCapacity(t *testing.T, e *env) {
	before, err := e.b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if before.FreeGPUs != before.TotalGPUs || before.Running != 0 || before.Pending != 0 {
		t.Fatalf("fresh backend capacity %+v, want all GPUs free and no tasks", before)
	}
	task := e.h.Long("long-capacity")
	h := e.submit(t, task)
	e.waitFor(t, h, "running", running)
	during, err := e.b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if during.Running != 1 {
		t.Errorf("Running = %d with one running task", during.Running)
	}
	if during.FreeGPUs != before.FreeGPUs-task.GPUs {
		t.Errorf("FreeGPUs = %d with a %d-GPU task running, want %d", during.FreeGPUs, task.GPUs, before.FreeGPUs-task.GPUs)
	}
	if before.FreeSlots > 0 && during.FreeSlots >= before.FreeSlots {
		t.Errorf("FreeSlots = %d with a task running, was %d", during.FreeSlots, before.FreeSlots)
	}
	caps, _ := e.b.Capabilities(ctx(t))
	if !caps.Cancel {
		return
	}
	if err := e.b.Cancel(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	e.waitFor(t, h, "cancelled", terminal)
	after, err := e.b.Capacity(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if after.FreeGPUs != before.FreeGPUs || after.Running != 0 {
		t.Errorf("capacity after cancel %+v, want the GPUs back (%d free) and nothing running", after, before.FreeGPUs)
	}
}

func testRecoverLive(t *testing.T, e *env) {
	h := e.submit(t, e.h.Long("long-recover"))
	e.waitFor(t, h, "running", running)
	// A handle as the orchestrator stores it: a JSON round trip.
	stored := backends.Handle{Backend: h.Backend, ExternalID: h.ExternalID, Data: h.Data}
	st, err := e.b.Recover(ctx(t), stored)
	if err != nil {
		t.Fatalf("Recover of a live handle: %v", err)
	}
	if st.State != backends.TaskRunning {
		t.Errorf("Recover state %s, want RUNNING", st.State)
	}
	if caps, _ := e.b.Capabilities(ctx(t)); caps.Cancel {
		if err := e.b.Cancel(ctx(t), h); err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrent(t *testing.T, e *env) {
	n := e.h.Concurrency
	handles := make([]backends.Handle, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			handles[i], errs[i] = e.b.Submit(context.Background(), e.h.Complete(fmt.Sprintf("concurrent-%d", i)))
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Submit %d: %v", i, err)
		}
		if seen[handles[i].ExternalID] {
			t.Fatalf("two tasks got external id %q", handles[i].ExternalID)
		}
		seen[handles[i].ExternalID] = true
	}
	// Concurrent status reads while the tasks run to completion.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := e.poll(handles[i], "completion", terminal)
			if err != nil {
				t.Error(err)
			} else if st.State != backends.TaskCompleted {
				t.Errorf("task %d ended %s (%q)", i, st.State, st.Message)
			}
		}()
	}
	wg.Wait()
}

func testClosed(t *testing.T, e *env) {
	h := e.submit(t, e.h.Complete("before-close"))
	if err := e.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := e.b.Submit(ctx(t), e.h.Complete("after-close")); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}
	if _, err := e.b.Status(ctx(t), h); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Status after Close = %v, want ErrClosed", err)
	}
}
