package orchestrator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/cosmic-horizons/horizons/backends"
	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/orchestrator"
	"github.com/cosmic-horizons/horizons/orchestrator/sqlstore"
)

// fileBackend is a backend whose tasks are files, so they outlive the
// process that submitted them (like a Slurm cluster's jobs). A task runs
// for the duration written in its file from the moment it was submitted.
// Submit de-duplicates by task id. Deleting a task file makes the task
// lost.
type fileBackend struct{ dir string }

type fileTask struct {
	TaskID    string        `json:"task_id"`
	Submitted time.Time     `json:"submitted"`
	Duration  time.Duration `json:"duration"`
	Fail      bool          `json:"fail"`
	Cancelled bool          `json:"cancelled"`
	Pid       int           `json:"pid"`
}

func (f *fileBackend) Name() string { return "files" }
func (f *fileBackend) Capabilities(context.Context) (backends.Capabilities, error) {
	return backends.Capabilities{MaxGPUs: 8, Cancel: true, Recover: true}, nil
}
func (f *fileBackend) Capacity(context.Context) (backends.Capacity, error) {
	return backends.Capacity{TotalGPUs: 64, FreeGPUs: 64, FreeSlots: -1}, nil
}
func (f *fileBackend) path(ext string) string { return filepath.Join(f.dir, ext+".json") }
func (f *fileBackend) read(ext string) (*fileTask, error) {
	raw, err := os.ReadFile(f.path(ext))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: task file %s is gone", backends.ErrTaskNotFound, ext)
	}
	if err != nil {
		return nil, err
	}
	var t fileTask
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
func (f *fileBackend) write(ext string, t *fileTask) error {
	raw, _ := json.Marshal(t)
	tmp := f.path(ext) + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, f.path(ext))
}
func (f *fileBackend) Submit(_ context.Context, t backends.Task) (backends.Handle, error) {
	h := backends.Handle{Backend: "files", ExternalID: t.ID}
	if _, err := os.Stat(f.path(t.ID)); err == nil {
		return h, nil // the same task again: the first handle
	}
	// Duration and failure are a deterministic function of the task id.
	sum := 0
	for _, c := range t.ID {
		sum = sum*31 + int(c)
	}
	if sum < 0 {
		sum = -sum
	}
	ft := &fileTask{TaskID: t.ID, Submitted: time.Now(), Duration: time.Duration(50+sum%250) * time.Millisecond, Fail: sum%10 == 0, Pid: os.Getpid()}
	return h, f.write(t.ID, ft)
}
func (f *fileBackend) Status(_ context.Context, h backends.Handle) (backends.Status, error) {
	t, err := f.read(h.ExternalID)
	if err != nil {
		return backends.Status{}, err
	}
	el := time.Since(t.Submitted)
	st := backends.Status{StartedAt: t.Submitted}
	switch {
	case t.Cancelled:
		st.State = backends.TaskCancelled
	case el < t.Duration:
		st.State, st.Progress = backends.TaskRunning, 100*float64(el)/float64(t.Duration)
	case t.Fail:
		st.State, st.Message = backends.TaskFailed, "injected failure"
	default:
		st.State, st.Progress = backends.TaskCompleted, 100
		st.Result = json.RawMessage(`{"task":"` + t.TaskID + `"}`)
	}
	return st, nil
}
func (f *fileBackend) Cancel(_ context.Context, h backends.Handle) error {
	t, err := f.read(h.ExternalID)
	if err != nil {
		return err
	}
	t.Cancelled = true
	return f.write(h.ExternalID, t)
}
func (f *fileBackend) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return f.Status(ctx, h)
}
func (f *fileBackend) Close() error { return nil }

// fileLog is a publisher that appends each message's id (the event id) to a
// file: the bus the crash test audits for lost events.
type fileLog struct {
	mu sync.Mutex
	f  *os.File
}

func (l *fileLog) Publish(_ string, msgs ...*message.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range msgs {
		if _, err := l.f.WriteString(m.UUID + "\n"); err != nil {
			return err
		}
	}
	return nil
}
func (l *fileLog) Close() error { return l.f.Close() }

const crashJobsPerRun = 25

// runCrashOrchestrator is the body of the child process (and of the final
// clean run): an orchestrator on the SQLite store and the file backend,
// submitting this run's jobs with idempotency keys.
func runCrashOrchestrator(ctx context.Context, dir, replica string, run int) (*orchestrator.Orchestrator, orchestrator.Store, error) {
	store, err := sqlstore.Open(ctx, sqlstore.Config{DSN: filepath.Join(dir, "jobs.db")})
	if err != nil {
		return nil, nil, err
	}
	lf, err := os.OpenFile(filepath.Join(dir, "published.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	bus := events.NewBus(&fileLog{f: lf}, gc, nil)
	o, err := orchestrator.New(store, bus, &orchestrator.Config{
		Backends:  []*backends.Backend{backends.New(&fileBackend{dir: filepath.Join(dir, "tasks")}, &backends.Options{Logger: quiet()})},
		Logger:    quiet(),
		ReplicaID: replica, LeaseTTL: 300 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond,
		PollInterval: 10 * time.Millisecond, ScheduleInterval: 10 * time.Millisecond, OutboxInterval: 10 * time.Millisecond,
		Retry: orchestrator.RetryPolicy{MaxAttempts: 3, InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := o.Start(ctx); err != nil {
		return nil, nil, err
	}
	for i := range crashJobsPerRun {
		if run < 0 {
			break // the final run only recovers
		}
		s := spec()
		s.DatasetID = fmt.Sprintf("vlass/run%d/T%02d", run, i)
		s.IdempotencyKey = fmt.Sprintf("run-%d-job-%d", run, i)
		if _, _, err := o.Submit(ctx, "alice", s); err != nil {
			return nil, nil, fmt.Errorf("submit: %w", err)
		}
	}
	return o, store, nil
}

// TestCrashChild is the child process of TestCrashRecoveryKill9; it does
// nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("HORIZONS_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of TestCrashRecoveryKill9 only")
	}
	run, _ := strconv.Atoi(os.Getenv("HORIZONS_CRASH_RUN"))
	if _, _, err := runCrashOrchestrator(context.Background(), dir, "child-"+strconv.Itoa(run), run); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	fmt.Println("READY")
	select {} // run until killed
}

// TestCrashRecoveryKill9 runs the orchestrator in a child process and
// SIGKILLs it at random moments, several times, deleting some task files
// between runs (tasks the cluster lost). A final clean run must then bring
// every job to a final state, with every stored event published (the
// outbox), tasks of killed processes re-attached, lost tasks retried or
// failed with a reason, and never two tasks for one attempt.
func TestCrashRecoveryKill9(t *testing.T) {
	if os.Getenv("HORIZONS_CRASH_DIR") != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	const runs = 5
	killedAt := map[string]time.Time{}
	lostTasks := map[string]bool{}
	for run := range runs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HORIZONS_CRASH_DIR="+dir, "HORIZONS_CRASH_RUN="+strconv.Itoa(run))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "READY" {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Wait()
				t.Fatalf("child %d exited before READY: %s", run, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("child %d not ready: %s", run, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		killedAt["child-"+strconv.Itoa(run)] = time.Now()
		// The cluster loses a live task now and then.
		if run%2 == 1 {
			s, err := sqlstore.Open(context.Background(), sqlstore.Config{DSN: filepath.Join(dir, "jobs.db")})
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.ListJobs(context.Background(), orchestrator.ListQuery{States: []orchestrator.State{orchestrator.StateQueued, orchestrator.StateRunning}, Limit: 100})
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range p.Jobs {
				if j.ExternalID != "" && os.Remove(filepath.Join(dir, "tasks", j.ExternalID+".json")) == nil {
					lostTasks[j.ExternalID] = true
					break
				}
			}
		}
	}

	// The final, clean process.
	ctx := context.Background()
	o, store, err := runCrashOrchestrator(ctx, dir, "final", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		active, err := store.CountJobs(ctx, "", []orchestrator.State{orchestrator.StateSubmitted, orchestrator.StateQueued, orchestrator.StateRunning})
		if err != nil {
			t.Fatal(err)
		}
		pending, _ := store.PendingOutbox(ctx, 1)
		if active == 0 && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still active and outbox not drained 30s after the last kill", active)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := o.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	published := map[string]bool{}
	raw, err := os.ReadFile(filepath.Join(dir, "published.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range strings.Fields(string(raw)) {
		published[id] = true
	}
	all, err := store.ListJobs(ctx, orchestrator.ListQuery{Limit: orchestrator.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Jobs) == 0 || len(all.Jobs) > runs*crashJobsPerRun {
		t.Fatalf("%d jobs stored, want 1 to %d (idempotency keys de-duplicate re-submissions)", len(all.Jobs), runs*crashJobsPerRun)
	}
	var reattached, lostHandled, completed, failed int
	for _, j := range all.Jobs {
		if !j.State.Terminal() {
			t.Fatalf("job %s stuck %s", j.ID, j.State)
		}
		if j.State == orchestrator.StateFailed && j.Error == "" {
			t.Fatalf("job %s FAILED without a reason", j.ID)
		}
		if j.State == orchestrator.StateCompleted {
			completed++
		} else {
			failed++
		}
		evs, err := store.JobEvents(ctx, j.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Sequence != int64(i+1) {
				t.Fatalf("job %s: event %d has sequence %d", j.ID, i, e.Sequence)
			}
			if !published[e.ID] {
				t.Fatalf("job %s: event %s (%s) is stored but was never published: lost from the outbox", j.ID, e.ID, e.Type)
			}
		}
		if len(j.AttemptLog) != j.Attempts {
			t.Fatalf("job %s: %d attempts, %d logged", j.ID, j.Attempts, len(j.AttemptLog))
		}
		for k, a := range j.AttemptLog {
			if a.Outcome == "" || a.TaskID != orchestrator.TaskID(j.ID, k+1) {
				t.Fatalf("job %s: attempt %+v not closed or misnumbered", j.ID, a)
			}
			if k := killedAt[a.Replica]; !k.IsZero() && a.EndedAt.After(k) {
				reattached++ // placed by a process that was killed, finished by a later one
			}
			if lostTasks[a.TaskID] && a.Outcome == orchestrator.StateFailed && strings.Contains(a.Reason, "lost") {
				lostHandled++
			}
		}
		// Never a task for an attempt the job does not know about.
		tasks, _ := filepath.Glob(filepath.Join(dir, "tasks", j.ID+"-*.json"))
		for _, tf := range tasks {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(tf), j.ID+"-"), ".json"))
			if err != nil || n < 1 || n > j.Attempts {
				t.Fatalf("job %s has task file %s beyond its %d attempts", j.ID, filepath.Base(tf), j.Attempts)
			}
		}
	}
	t.Logf("%d jobs: %d completed, %d failed with a reason; %d attempts re-attached after a kill; %d lost tasks retried or failed (%d deleted); %d events published", len(all.Jobs), completed, failed, reattached, lostHandled, len(lostTasks), len(published))
	if len(lostTasks) > 0 && lostHandled == 0 {
		t.Fatalf("tasks %v were deleted from the cluster, but no attempt failed as lost", lostTasks)
	}
	if reattached == 0 {
		t.Fatal("no attempt of a killed process was finished by a later one; the kills did not exercise recovery")
	}
}
