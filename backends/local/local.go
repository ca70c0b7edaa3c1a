// Package local is the compute backend that runs agents in-process on this
// machine, so a single machine runs the real pipeline.
//
// Each task runs its agent's Run function (agents.Agent.Run) in a goroutine,
// at most Config.Workers at a time; further tasks wait in FIFO order.
// Progress comes from the agent's progress callback (clamped to 0–100 and
// never decreasing), the result is the agent's agents.Output as JSON, and
// cancellation and the wall-time limit go through the run's context. An
// agent that ignores its context keeps its worker until it returns, and the
// task stays RUNNING until then.
//
// Tasks live in memory only: after the process restarts, Status and
// Recover of an earlier handle return backends.ErrTaskNotFound (handles
// carry a per-process instance id), and the orchestrator resubmits or fails
// the job.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
)

// Defaults used when a Config field is zero.
const (
	DefaultName        = "local"
	DefaultMaxWallTime = 24 * time.Hour
)

// Config configures the local backend. Zero fields take the documented
// defaults.
type Config struct {
	// Name is the backend name stored in handles; default "local".
	Name string
	// Agents are the agents this backend can run. Only agents with a run
	// function are offered (listed in Capabilities.Agents). Required.
	Agents *agents.Registry
	// Workers is how many tasks run at once; default runtime.NumCPU().
	Workers int
	// GPUs is the number of GPUs this machine offers to tasks; default 0
	// (CPU only). A task waits until the GPUs it asks for are free.
	GPUs int
	// MaxWallTime is the longest wall time a task may ask for and the
	// limit of a task with WallTime 0; default 24 h.
	MaxWallTime time.Duration
	// MaxMemoryMB is the most memory a task may ask for; 0 means no limit.
	MaxMemoryMB int
	// WorkDir, when set, gives each task the directory WorkDir/<external
	// id> for its outputs (agents.Input.WorkDir); the driver creates it
	// (mode 0755) before the agent starts.
	WorkDir string
	// InstanceID prefixes external ids; default 8 random hex digits.
	InstanceID string
	// Logger receives task transitions at debug level; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Driver runs agents in-process. It implements backends.Driver and is safe
// for concurrent use.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	runs   []string
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	seq    int
	tasks  map[string]*task
	byID   map[string]*task
	queue  []*task
	busy   int // workers in use
	gpus   int // GPUs in use
}

type task struct {
	t        backends.Task
	ext      string
	agent    agents.Agent
	params   json.RawMessage
	state    backends.TaskState
	progress float64
	note     string
	msg      string
	result   json.RawMessage
	started  time.Time
	ended    time.Time
	cancel   context.CancelFunc
	// cancelled is set by Cancel so the end state is CANCELLED whatever
	// the agent returns.
	cancelled bool
}

// New returns a local backend.
func New(cfg *Config) (*Driver, error) {
	if cfg == nil || cfg.Agents == nil {
		return nil, errors.New("local: config field Agents is nil; give the registry of runnable agents")
	}
	c := *cfg
	if c.Name == "" {
		c.Name = DefaultName
	}
	switch {
	case c.Workers < 0:
		return nil, fmt.Errorf("local: config field Workers is %d, want >= 0", c.Workers)
	case c.GPUs < 0:
		return nil, fmt.Errorf("local: config field GPUs is %d, want >= 0", c.GPUs)
	case c.MaxWallTime < 0:
		return nil, fmt.Errorf("local: config field MaxWallTime is %s, want >= 0", c.MaxWallTime)
	case c.MaxMemoryMB < 0:
		return nil, fmt.Errorf("local: config field MaxMemoryMB is %d, want >= 0", c.MaxMemoryMB)
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.MaxWallTime == 0 {
		c.MaxWallTime = DefaultMaxWallTime
	}
	if c.InstanceID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("local: instance id: %w", err)
		}
		c.InstanceID = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(c.InstanceID, " \t\n/") {
		return nil, fmt.Errorf("local: config field InstanceID is %q, want no spaces or slashes", c.InstanceID)
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{cfg: c, log: log.With("backend", c.Name), tasks: map[string]*task{}, byID: map[string]*task{}}
	for _, n := range c.Agents.Names() {
		a, err := c.Agents.Lookup(n)
		if err == nil && a.Descriptor().Run != nil {
			d.runs = append(d.runs, n)
		}
	}
	return d, nil
}

// Open returns a local backend wrapped in the portable type.
func Open(cfg *Config, opts *backends.Options) (*backends.Backend, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return backends.New(d, opts), nil
}

// Name returns the backend name.
func (d *Driver) Name() string { return d.cfg.Name }

// Capabilities reports the machine's GPUs, memory limit and wall-time
// limit and the runnable agents. Cancel is supported; tasks do not survive
// a restart.
func (d *Driver) Capabilities(ctx context.Context) (backends.Capabilities, error) {
	if err := d.check(ctx); err != nil {
		return backends.Capabilities{}, err
	}
	return backends.Capabilities{
		MaxGPUs:     d.cfg.GPUs,
		MaxMemoryMB: d.cfg.MaxMemoryMB,
		MaxWallTime: d.cfg.MaxWallTime,
		Cancel:      true,
		Agents:      append([]string(nil), d.runs...),
	}, nil
}

func (d *Driver) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w: %s", backends.ErrClosed, d.cfg.Name)
	}
	return nil
}

// Capacity reports free GPUs and workers.
func (d *Driver) Capacity(ctx context.Context) (backends.Capacity, error) {
	if err := d.check(ctx); err != nil {
		return backends.Capacity{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return backends.Capacity{
		TotalGPUs: d.cfg.GPUs,
		FreeGPUs:  d.cfg.GPUs - d.gpus,
		FreeSlots: max(d.cfg.Workers-d.busy-len(d.queue), 0),
		Running:   d.busy,
		Pending:   len(d.queue),
	}, nil
}

// Submit validates t (fields, capabilities, the agent's parameters) and
// queues it. A task id this driver already holds returns the first handle.
func (d *Driver) Submit(ctx context.Context, t backends.Task) (backends.Handle, error) {
	if err := t.Validate(); err != nil {
		return backends.Handle{}, err
	}
	ag, err := d.cfg.Agents.Lookup(t.Agent)
	if err != nil {
		return backends.Handle{}, fmt.Errorf("%w: field agent is %q: %v", backends.ErrInvalidTask, t.Agent, err)
	}
	caps, err := d.Capabilities(ctx)
	if err != nil {
		return backends.Handle{}, err
	}
	canon := t
	canon.Agent = ag.Name() // aliases are fine when calling the driver directly
	if err := caps.Fits(canon); err != nil {
		return backends.Handle{}, err
	}
	if ag.Descriptor().Run == nil {
		return backends.Handle{}, fmt.Errorf("%w: field agent is %q, which has no run function in this binary (runnable: %v)", backends.ErrInvalidTask, t.Agent, d.runs)
	}
	params, err := ag.ValidateParams(t.Params)
	if err != nil {
		return backends.Handle{}, fmt.Errorf("%w: field params: %v", backends.ErrInvalidTask, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return backends.Handle{}, fmt.Errorf("%w: %s", backends.ErrClosed, d.cfg.Name)
	}
	if old, ok := d.byID[t.ID]; ok {
		return d.handle(old), nil
	}
	d.seq++
	tk := &task{t: t, ext: fmt.Sprintf("%s-%d", d.cfg.InstanceID, d.seq), agent: ag, params: params, state: backends.TaskPending}
	d.tasks[tk.ext] = tk
	d.byID[t.ID] = tk
	d.queue = append(d.queue, tk)
	d.dispatchLocked()
	d.log.Debug("task submitted", "task", t.ID, "external_id", tk.ext, "agent", ag.Name())
	return d.handle(tk), nil
}

func (d *Driver) handle(tk *task) backends.Handle {
	return backends.Handle{Backend: d.cfg.Name, ExternalID: tk.ext}
}

// dispatchLocked starts queued tasks in FIFO order while a worker and the
// head task's GPUs are free.
func (d *Driver) dispatchLocked() {
	for len(d.queue) > 0 && d.busy < d.cfg.Workers && !d.closed {
		head := d.queue[0]
		if head.t.GPUs > d.cfg.GPUs-d.gpus {
			return
		}
		d.queue = d.queue[1:]
		d.busy++
		d.gpus += head.t.GPUs
		head.state = backends.TaskRunning
		head.started = time.Now().UTC()
		wall := head.t.WallTime
		if wall == 0 {
			wall = d.cfg.MaxWallTime
		}
		ctx, cancel := context.WithTimeout(context.Background(), wall)
		head.cancel = cancel
		d.wg.Add(1)
		go d.run(ctx, head)
	}
}

func seedOf(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() >> 1)
}

func (d *Driver) run(ctx context.Context, tk *task) {
	defer d.wg.Done()
	in := agents.Input{JobID: tk.t.ID, DatasetID: tk.t.DatasetID, Params: tk.params, GPUs: tk.t.GPUs, Seed: seedOf(tk.t.ID)}
	if d.cfg.WorkDir != "" {
		in.WorkDir = filepath.Join(d.cfg.WorkDir, tk.ext)
	}
	progress := func(p float64, note string) {
		if math.IsNaN(p) {
			return
		}
		p = math.Min(math.Max(p, 0), 100)
		d.mu.Lock()
		if tk.state == backends.TaskRunning && p >= tk.progress {
			tk.progress, tk.note = p, note
		}
		d.mu.Unlock()
	}
	var out agents.Output
	var err error
	if in.WorkDir != "" {
		if merr := os.MkdirAll(in.WorkDir, 0o755); merr != nil {
			err = fmt.Errorf("local: create work directory for task %s: %w", tk.t.ID, merr)
		}
	}
	if err == nil {
		out, err = safeRun(ctx, tk.agent, in, progress)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tk.cancel()
	d.busy--
	d.gpus -= tk.t.GPUs
	tk.ended = time.Now().UTC()
	switch {
	case tk.cancelled:
		tk.state, tk.msg = backends.TaskCancelled, "cancelled"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		tk.state = backends.TaskTimeout
		tk.msg = fmt.Sprintf("wall-time limit reached at %.0f%%", tk.progress)
		if err != nil {
			tk.msg += ": " + err.Error()
		}
	case err != nil:
		tk.state, tk.msg = backends.TaskFailed, err.Error()
	default:
		b, merr := json.Marshal(out)
		if merr != nil {
			tk.state, tk.msg = backends.TaskFailed, "encode agent output: "+merr.Error()
			break
		}
		tk.state, tk.progress, tk.result, tk.msg = backends.TaskCompleted, 100, b, out.Summary
	}
	d.log.Debug("task ended", "task", tk.t.ID, "state", tk.state, "message", tk.msg)
	d.dispatchLocked()
}

// safeRun runs the agent, turning a panic into an error.
func safeRun(ctx context.Context, a agents.Agent, in agents.Input, progress agents.ProgressFunc) (out agents.Output, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("agent %s panicked: %v", a.Name(), r)
		}
	}()
	return a.Run(ctx, in, progress)
}

func (d *Driver) findLocked(h backends.Handle) (*task, error) {
	if d.closed {
		return nil, fmt.Errorf("%w: %s", backends.ErrClosed, d.cfg.Name)
	}
	if h.Backend != "" && h.Backend != d.cfg.Name {
		return nil, fmt.Errorf("%w: handle belongs to backend %q, not %q", backends.ErrTaskNotFound, h.Backend, d.cfg.Name)
	}
	tk, ok := d.tasks[h.ExternalID]
	if !ok {
		why := "never submitted here"
		if !strings.HasPrefix(h.ExternalID, d.cfg.InstanceID+"-") {
			why = "the local backend keeps tasks in memory and this handle is from another process (lost at restart); resubmit the task"
		}
		return nil, fmt.Errorf("%w: %s task %q: %s", backends.ErrTaskNotFound, d.cfg.Name, h.ExternalID, why)
	}
	return tk, nil
}

// Status reports the task behind h.
func (d *Driver) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	if err := ctx.Err(); err != nil {
		return backends.Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tk, err := d.findLocked(h)
	if err != nil {
		return backends.Status{}, err
	}
	st := backends.Status{State: tk.state, Progress: tk.progress, Message: tk.msg, Result: tk.result, StartedAt: tk.started, EndedAt: tk.ended}
	switch tk.state {
	case backends.TaskPending:
		for i, q := range d.queue {
			if q == tk {
				st.Message = fmt.Sprintf("waiting for a worker (%d of %d busy), position %d in queue", d.busy, d.cfg.Workers, i+1)
			}
		}
	case backends.TaskRunning:
		st.Message = tk.note
		if tk.cancelled {
			st.Message = "cancelling"
		}
	}
	if tk.state != backends.TaskPending {
		st.Node = "localhost"
	}
	return st, nil
}

// Cancel stops the task behind h: a queued task is cancelled at once, a
// running one through its context (it is CANCELLED once the agent
// returns). Cancelling a finished task does nothing.
func (d *Driver) Cancel(ctx context.Context, h backends.Handle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tk, err := d.findLocked(h)
	if err != nil {
		return err
	}
	switch tk.state {
	case backends.TaskPending:
		for i, q := range d.queue {
			if q == tk {
				d.queue = append(d.queue[:i:i], d.queue[i+1:]...)
				break
			}
		}
		tk.state, tk.msg, tk.ended = backends.TaskCancelled, "cancelled", time.Now().UTC()
		d.dispatchLocked()
	case backends.TaskRunning:
		tk.cancelled = true
		tk.cancel()
	}
	return nil
}

// Recover returns the status of a task submitted to this driver; a handle
// from an earlier process is backends.ErrTaskNotFound.
func (d *Driver) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return d.Status(ctx, h)
}

// Close cancels every task, waits for the running agents to return and
// releases the driver; later calls return backends.ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	for _, tk := range d.tasks {
		if tk.state == backends.TaskRunning {
			tk.cancelled = true
			tk.cancel()
		}
	}
	d.queue = nil
	d.mu.Unlock()
	d.wg.Wait()
	return nil
}

var _ backends.Driver = (*Driver)(nil)
