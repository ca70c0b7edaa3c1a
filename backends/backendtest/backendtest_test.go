package backendtest_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/backends/backendtest"
	"github.com/cosmic-horizons/horizons/backends/simgpu"
)

// broken wraps the simulated cluster and breaks one rule of the contract.
type broken struct {
	*simgpu.Driver
	fault string
}

func (b *broken) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	st, err := b.Driver.Status(ctx, h)
	switch {
	case b.fault == "progress-down" && st.State == backends.TaskCompleted:
		st.Progress = 40
	case b.fault == "unknown-generic" && errors.Is(err, backends.ErrTaskNotFound):
		err = errors.New("no idea")
	case b.fault == "fail-silent" && st.State == backends.TaskFailed:
		st.Message = ""
	}
	return st, err
}

func (b *broken) Cancel(ctx context.Context, h backends.Handle) error {
	if b.fault == "cancel-finished" {
		st, err := b.Driver.Status(ctx, h)
		if err == nil && st.State.Terminal() {
			return errors.New("task already finished")
		}
	}
	return b.Driver.Cancel(ctx, h)
}

func (b *broken) Submit(ctx context.Context, t backends.Task) (backends.Handle, error) {
	if b.fault == "no-validation" && t.DatasetID == "" {
		t.DatasetID = "anything" // the driver accepts what *Backend would reject
	}
	return b.Driver.Submit(ctx, t)
}

func (b *broken) Capacity(ctx context.Context) (backends.Capacity, error) {
	c, err := b.Driver.Capacity(ctx)
	if b.fault == "capacity-leak" {
		c.FreeGPUs = c.TotalGPUs
	}
	return c, err
}

func harness(fault string) backendtest.Harness {
	return backendtest.Harness{
		New: func(t *testing.T) backendtest.Instance {
			clk := simgpu.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			d, err := simgpu.New(&simgpu.Config{Clock: clk, SpeedUp: 60, DatasetGB: func(id string) float64 {
				if id == "huge" {
					return 1e6
				}
				return 1
			}})
			if err != nil {
				t.Fatal(err)
			}
			var drv backends.Driver = d
			if fault != "" {
				drv = &broken{Driver: d, fault: fault}
			}
			return backendtest.Instance{
				Backend: backends.New(drv, &backends.Options{Logger: slog.New(slog.DiscardHandler)}),
				Step:    func() { clk.Advance(time.Second) },
			}
		},
		Complete: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "small", GPUs: 1}
		},
		Fail: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "small", GPUs: 1,
				Labels: map[string]string{simgpu.LabelFail: simgpu.FailNodeLoss}}
		},
		Long: func(id string) backends.Task {
			return backends.Task{ID: id, Agent: agents.NameAlphaCal, DatasetID: "huge", GPUs: 1}
		},
	}
}

// TestBrokenDriver runs the suite on a broken driver; it only runs as the
// child process of TestSuiteCatchesBrokenDrivers.
func TestBrokenDriver(t *testing.T) {
	fault := os.Getenv("BACKENDTEST_FAULT")
	if fault == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenDrivers")
	}
	backendtest.Run(t, harness(fault))
}

// The suite passes a correct driver and fails each broken one in the
// subtest that checks the broken rule.
func TestSuiteCatchesBrokenDrivers(t *testing.T) {
	backendtest.Run(t, harness(""))
	if testing.Short() {
		t.Skip("child processes skipped in -short mode")
	}
	for fault, subtest := range map[string]string{
		"progress-down":   "CompleteWithProgress",
		"unknown-generic": "UnknownHandle",
		"fail-silent":     "FailWithMessage",
		"cancel-finished": "CancelFinished",
		"no-validation":   "InvalidTask",
		"capacity-leak":   "Capacity",
	} {
		t.Run(fault, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenDriver$", "-test.v")
			cmd.Env = append(os.Environ(), "BACKENDTEST_FAULT="+fault)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("suite passed a driver with fault %s:\n%s", fault, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenDriver/"+subtest) {
				t.Fatalf("fault %s did not fail subtest %s:\n%s", fault, subtest, out)
			}
		})
	}
}
