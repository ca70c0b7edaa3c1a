package simgpu

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/horizons/agents"
	"github.com/cosmic-horizons/horizons/backends"
)

// Defaults used when a Config field is zero.
const (
	DefaultName         = "simgpu"
	DefaultNodes        = 2
	DefaultGPUsPerNode  = 4
	DefaultGPUMemoryMB  = 40960  // an A100 40 GB
	DefaultNodeMemoryMB = 262144 // 256 GiB of host memory per node
	DefaultMaxWallTime  = 48 * time.Hour
	DefaultCPUSlowdown  = 8.0
	// MixedPrecisionSpeedUp is the factor by which mixed precision speeds up
	// the parallel (GPU) part of a run; it also halves GPU memory per batch.
	MixedPrecisionSpeedUp = 1.6
	// BatchOverhead is the extra fraction of run time each additional
	// batch costs when a dataset does not fit in GPU memory at once.
	BatchOverhead = 0.08
)

// LabelFail is a task label that makes the task fail deliberately, whatever
// the failure rate: its value is the failure kind ("node-loss",
// "out-of-memory", "preemption"; any other value means "error"). The task
// fails halfway through its run. Tests and demos use it to exercise retries.
const LabelFail = "simgpu.fail"

// Failure kinds injected by the simulation.
const (
	FailNodeLoss   = "node-loss"
	FailOOM        = "out-of-memory"
	FailPreemption = "preemption"
)

var failKinds = []string{FailNodeLoss, FailOOM, FailPreemption}

// Config configures the simulated cluster. Zero fields take the documented
// defaults; a nil *Config is all defaults.
type Config struct {
	// Name is the backend name stored in handles; default "simgpu".
	Name string
	// Nodes is the number of nodes; default 2.
	Nodes int
	// GPUsPerNode is the number of GPUs on each node; default 4.
	GPUsPerNode int
	// GPUMemoryMB is the memory of one GPU; default 40960.
	GPUMemoryMB int
	// NodeMemoryMB is the host memory of a node and the most a task may ask
	// for; default 262144.
	NodeMemoryMB int
	// MaxWallTime is the longest wall time a task may ask for, in modelled
	// time; default 48 h. A task with WallTime 0 gets this limit.
	MaxWallTime time.Duration
	// MaxQueue is the most tasks that may wait for GPUs; 0 means no limit.
	// A submit beyond it is ErrNoCapacity.
	MaxQueue int
	// SpeedUp divides every modelled duration to get the clock duration, so
	// demos finish quickly: with SpeedUp 360 an hour-long run takes 10 s.
	// Default 1 (real time). Wall-time limits apply to modelled time.
	SpeedUp float64
	// Agents provides the run-time model (base time, Amdahl parallel
	// fraction, memory per GB) of each agent; nil means agents.NewRegistry().
	// A task naming an agent the registry does not know is ErrInvalidTask.
	Agents *agents.Registry
	// DatasetGB gives the size of a dataset in GB; nil means
	// DatasetSize, a deterministic function of the id. A result <= 0 or
	// non-finite is replaced by agents.DefaultDatasetGB.
	DatasetGB func(datasetID string) float64
	// FailureRate is the probability in [0, 1] that a task fails part-way.
	// Which tasks fail, when and how is a deterministic function of Seed
	// and the task id.
	FailureRate float64
	// Seed selects the failure pattern.
	Seed int64
	// MixedPrecision runs the GPU part of every task MixedPrecisionSpeedUp
	// times faster with half the GPU memory per batch.
	MixedPrecision bool
	// CPUSlowdown is how much slower a task with GPUs 0 runs than on one
	// GPU; default 8. CPU-only tasks do not wait for GPUs.
	CPUSlowdown float64
	// HistoryLimit is how many task intervals each GPU remembers for
	// UsageSeries; default 1000.
	HistoryLimit int
	// Clock drives the simulation; nil means RealClock.
	Clock Clock
	// InstanceID prefixes external ids so handles from an earlier process
	// never match a task of this one; default 8 random hex digits.
	InstanceID string
	// Logger receives task transitions at debug level; nil means
	// slog.Default().
	Logger *slog.Logger
}

// DatasetSize is the default dataset size model: a deterministic size
// between 1 and 50 GB derived from the dataset id, so the same dataset
// always takes the same time.
func DatasetSize(datasetID string) float64 {
	h := fnv.New64a()
	h.Write([]byte(datasetID))
	return 1 + float64(h.Sum64()%4901)/100
}

// Driver is the simulated GPU cluster. It implements backends.Driver and
// backends.UsageReporter and is safe for concurrent use.
//
// Tasks live in memory only: after the process restarts, Recover and Status
// of an earlier handle return backends.ErrTaskNotFound, and the
// orchestrator resubmits or fails the job.
type Driver struct {
	cfg   Config
	clock Clock
	log   *slog.Logger

	mu      sync.Mutex
	closed  bool
	simNow  time.Time
	seq     int
	tasks   map[string]*task // by external id
	byID    map[string]*task // by task id
	queue   []*task          // FIFO of pending GPU tasks
	running map[*task]struct{}
	gpus    [][]*task      // [node][gpu] -> running task or nil
	history [][][]interval // [node][gpu] -> occupancy, oldest first
}

type gpuRef struct{ node, index int }

type task struct {
	t        backends.Task
	ext      string
	agent    agents.Agent
	desc     agents.Descriptor
	gb       float64
	modelled time.Duration // modelled full run time
	limit    time.Duration // wall-time limit (modelled)
	memMB    int           // modelled peak GPU memory of the whole task
	batches  int
	failAt   float64 // fraction of the run at which it fails; 0 = never
	failKind string

	state     backends.TaskState
	msg       string
	exit      *int
	submitted time.Time
	started   time.Time
	ended     time.Time
	endAt     time.Time // planned end while running
	endState  backends.TaskState
	endFrac   float64
	progress  float64
	gpus      []gpuRef
	result    json.RawMessage
}

// New returns a simulated cluster configured by cfg.
func New(cfg *Config) (*Driver, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	check := func(field string, v, def int) (int, error) {
		if v < 0 {
			return 0, fmt.Errorf("simgpu: config field %s is %d, want >= 0", field, v)
		}
		if v == 0 {
			return def, nil
		}
		return v, nil
	}
	var err error
	if c.Nodes, err = check("Nodes", c.Nodes, DefaultNodes); err != nil {
		return nil, err
	}
	if c.GPUsPerNode, err = check("GPUsPerNode", c.GPUsPerNode, DefaultGPUsPerNode); err != nil {
		return nil, err
	}
	if c.GPUMemoryMB, err = check("GPUMemoryMB", c.GPUMemoryMB, DefaultGPUMemoryMB); err != nil {
		return nil, err
	}
	if c.NodeMemoryMB, err = check("NodeMemoryMB", c.NodeMemoryMB, DefaultNodeMemoryMB); err != nil {
		return nil, err
	}
	if c.HistoryLimit, err = check("HistoryLimit", c.HistoryLimit, 1000); err != nil {
		return nil, err
	}
	if c.MaxQueue < 0 {
		return nil, fmt.Errorf("simgpu: config field MaxQueue is %d, want >= 0", c.MaxQueue)
	}
	if c.MaxWallTime < 0 {
		return nil, fmt.Errorf("simgpu: config field MaxWallTime is %s, want >= 0", c.MaxWallTime)
	}
	if c.MaxWallTime == 0 {
		c.MaxWallTime = DefaultMaxWallTime
	}
	if math.IsNaN(c.SpeedUp) || math.IsInf(c.SpeedUp, 0) || c.SpeedUp < 0 {
		return nil, fmt.Errorf("simgpu: config field SpeedUp is %v, want a finite number > 0", c.SpeedUp)
	}
	if c.SpeedUp == 0 {
		c.SpeedUp = 1
	}
	if math.IsNaN(c.FailureRate) || c.FailureRate < 0 || c.FailureRate > 1 {
		return nil, fmt.Errorf("simgpu: config field FailureRate is %v, want 0 to 1", c.FailureRate)
	}
	if math.IsNaN(c.CPUSlowdown) || math.IsInf(c.CPUSlowdown, 0) || c.CPUSlowdown < 0 {
		return nil, fmt.Errorf("simgpu: config field CPUSlowdown is %v, want a finite number >= 0", c.CPUSlowdown)
	}
	if c.CPUSlowdown == 0 {
		c.CPUSlowdown = DefaultCPUSlowdown
	}
	if c.Agents == nil {
		c.Agents = agents.NewRegistry()
	}
	if c.DatasetGB == nil {
		c.DatasetGB = DatasetSize
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	if c.InstanceID == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("simgpu: instance id: %w", err)
		}
		c.InstanceID = hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(c.InstanceID, " \t\n/") {
		return nil, fmt.Errorf("simgpu: config field InstanceID is %q, want no spaces or slashes", c.InstanceID)
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{
		cfg:     c,
		clock:   c.Clock,
		log:     log.With("backend", c.Name),
		simNow:  c.Clock.Now(),
		tasks:   map[string]*task{},
		byID:    map[string]*task{},
		running: map[*task]struct{}{},
		gpus:    make([][]*task, c.Nodes),
	}
	d.history = make([][][]interval, c.Nodes)
	for i := range d.gpus {
		d.gpus[i] = make([]*task, c.GPUsPerNode)
		d.history[i] = make([][]interval, c.GPUsPerNode)
	}
	return d, nil
}

// Open returns the simulated cluster wrapped in the portable type.
func Open(cfg *Config, opts *backends.Options) (*backends.Backend, error) {
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return backends.New(d, opts), nil
}

// Name returns the backend name.
func (d *Driver) Name() string { return d.cfg.Name }

// Config returns the configuration with defaults applied.
func (d *Driver) Config() Config { return d.cfg }

func (d *Driver) totalGPUs() int { return d.cfg.Nodes * d.cfg.GPUsPerNode }

// Capabilities reports the cluster's limits: all its GPUs for one task,
// one node's memory, MaxWallTime; cancel is supported, recovery across
// restarts is not.
func (d *Driver) Capabilities(ctx context.Context) (backends.Capabilities, error) {
	if err := d.live(ctx); err != nil {
		return backends.Capabilities{}, err
	}
	return backends.Capabilities{
		MaxGPUs:     d.totalGPUs(),
		MaxMemoryMB: d.cfg.NodeMemoryMB,
		MaxWallTime: d.cfg.MaxWallTime,
		Cancel:      true,
		Recover:     false,
	}, nil
}

func (d *Driver) live(ctx context.Context) error {
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

// lock takes the mutex and advances the simulation to the clock's time.
func (d *Driver) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return fmt.Errorf("%w: %s", backends.ErrClosed, d.cfg.Name)
	}
	d.advanceLocked(d.clock.Now())
	return nil
}

// Capacity reports free GPUs and the tasks held.
func (d *Driver) Capacity(ctx context.Context) (backends.Capacity, error) {
	if err := d.lock(ctx); err != nil {
		return backends.Capacity{}, err
	}
	defer d.mu.Unlock()
	c := backends.Capacity{TotalGPUs: d.totalGPUs(), FreeGPUs: d.freeGPUsLocked(), FreeSlots: -1, Pending: len(d.queue), Running: len(d.running)}
	if d.cfg.MaxQueue > 0 {
		c.FreeSlots = max(d.cfg.MaxQueue-len(d.queue), 0)
	}
	return c, nil
}

func (d *Driver) freeGPUsLocked() int {
	n := 0
	for _, node := range d.gpus {
		for _, g := range node {
			if g == nil {
				n++
			}
		}
	}
	return n
}

// Submit queues t. A task with GPUs waits in FIFO order until enough GPUs
// are free; one with GPUs 0 starts at once on a host CPU. Submitting a task
// id that this driver already holds returns the first handle (so a caller
// that crashed between submit and recording the handle can resubmit).
func (d *Driver) Submit(ctx context.Context, t backends.Task) (backends.Handle, error) {
	if err := t.Validate(); err != nil {
		return backends.Handle{}, err
	}
	caps, err := d.Capabilities(ctx)
	if err != nil {
		return backends.Handle{}, err
	}
	if err := caps.Fits(t); err != nil {
		return backends.Handle{}, err
	}
	ag, err := d.cfg.Agents.Lookup(t.Agent)
	if err != nil {
		return backends.Handle{}, fmt.Errorf("%w: field agent is %q: %v", backends.ErrInvalidTask, t.Agent, err)
	}
	if err := d.lock(ctx); err != nil {
		return backends.Handle{}, err
	}
	defer d.mu.Unlock()
	if old, ok := d.byID[t.ID]; ok {
		return d.handle(old), nil
	}
	if t.GPUs > 0 && d.cfg.MaxQueue > 0 && len(d.queue) >= d.cfg.MaxQueue {
		return backends.Handle{}, fmt.Errorf("%w: %s queue holds %d tasks (MaxQueue %d)", backends.ErrNoCapacity, d.cfg.Name, len(d.queue), d.cfg.MaxQueue)
	}
	d.seq++
	tk := &task{
		t:         t,
		ext:       fmt.Sprintf("%s-%d", d.cfg.InstanceID, d.seq),
		agent:     ag,
		desc:      ag.Descriptor(),
		state:     backends.TaskPending,
		submitted: d.simNow,
	}
	if err := d.model(tk); err != nil {
		return backends.Handle{}, err
	}
	d.tasks[tk.ext] = tk
	d.byID[t.ID] = tk
	if t.GPUs == 0 {
		d.startLocked(tk, nil)
	} else {
		d.queue = append(d.queue, tk)
		d.scheduleLocked()
	}
	d.log.Debug("task submitted", "task", t.ID, "external_id", tk.ext, "agent", ag.Name(), "gpus", t.GPUs, "state", tk.state)
	return d.handle(tk), nil
}

func (d *Driver) handle(tk *task) backends.Handle {
	return backends.Handle{Backend: d.cfg.Name, ExternalID: tk.ext}
}

// model computes the run-time model of tk: dataset size, modelled run time
// (the agent's Amdahl estimate, batches when the data do not fit in GPU
// memory, mixed precision, CPU slowdown), wall-time limit and the injected
// failure.
func (d *Driver) model(tk *task) error {
	gb := d.cfg.DatasetGB(tk.t.DatasetID)
	if gb <= 0 || math.IsNaN(gb) || math.IsInf(gb, 0) {
		gb = agents.DefaultDatasetGB
	}
	tk.gb = gb
	gpus := max(tk.t.GPUs, 1)
	est, err := tk.agent.Estimate(agents.EstimateInput{DatasetID: tk.t.DatasetID, DatasetGB: gb, GPUs: gpus, Params: tk.t.Params})
	if err != nil {
		return fmt.Errorf("%w: estimate for agent %q: %v", backends.ErrInvalidTask, tk.t.Agent, err)
	}
	secs := est.Duration.Seconds()
	p := tk.desc.ParallelFraction
	if p < 0 || p > 1 {
		p = 0.9
	}
	mem := float64(est.MemoryMB)
	if d.cfg.MixedPrecision {
		// Amdahl again: only the parallel share speeds up.
		par := p / float64(gpus)
		ser := 1 - p
		secs = secs * (ser + par/MixedPrecisionSpeedUp) / (ser + par)
		mem /= 2
	}
	tk.batches = 1
	if tk.t.GPUs > 0 {
		perGPU := mem / float64(gpus)
		usable := 0.9 * float64(d.cfg.GPUMemoryMB)
		if perGPU > usable {
			tk.batches = int(math.Ceil(perGPU / usable))
		}
		secs *= 1 + BatchOverhead*float64(tk.batches-1)
	} else {
		secs *= d.cfg.CPUSlowdown
	}
	tk.memMB = int(math.Ceil(mem))
	tk.modelled = time.Duration(secs * float64(time.Second))
	tk.limit = tk.t.WallTime
	if tk.limit == 0 {
		tk.limit = d.cfg.MaxWallTime
	}
	if kind, ok := tk.t.Labels[LabelFail]; ok {
		if !contains(failKinds, kind) {
			kind = "error"
		}
		tk.failAt, tk.failKind = 0.5, kind
	} else if d.cfg.FailureRate > 0 {
		u := uniforms(d.cfg.Seed, tk.t.ID, 3)
		if u[0] < d.cfg.FailureRate {
			tk.failAt = 0.05 + 0.9*u[1]
			tk.failKind = failKinds[min(int(u[2]*float64(len(failKinds))), len(failKinds)-1)]
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// uniforms returns n deterministic numbers in [0, 1) from seed and id
// (FNV-1a of both, then SplitMix64).
func uniforms(seed int64, id string, n int) []float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(id))
	x := h.Sum64()
	out := make([]float64, n)
	for i := range out {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		out[i] = float64(z>>11) / (1 << 53)
	}
	return out
}

// clockDur converts a modelled duration to clock time.
func (d *Driver) clockDur(m time.Duration) time.Duration {
	return time.Duration(float64(m) / d.cfg.SpeedUp)
}

// startLocked starts tk on gpus at simNow and plans its end: completion,
// injected failure or the wall-time limit, whichever comes first.
func (d *Driver) startLocked(tk *task, gpus []gpuRef) {
	tk.state = backends.TaskRunning
	tk.started = d.simNow
	d.running[tk] = struct{}{}
	tk.gpus = gpus
	for _, g := range gpus {
		d.gpus[g.node][g.index] = tk
		h := append(d.history[g.node][g.index], interval{start: d.simNow, tk: tk})
		if len(h) > d.cfg.HistoryLimit {
			h = append(h[:0:0], h[len(h)-d.cfg.HistoryLimit:]...)
		}
		d.history[g.node][g.index] = h
	}
	end, state, frac := tk.modelled, backends.TaskCompleted, 1.0
	if tk.failAt > 0 {
		if f := time.Duration(float64(tk.modelled) * tk.failAt); f < end {
			end, state, frac = f, backends.TaskFailed, tk.failAt
		}
	}
	if tk.limit < end {
		end, state = tk.limit, backends.TaskTimeout
		frac = 1
		if tk.modelled > 0 {
			frac = float64(tk.limit) / float64(tk.modelled)
		}
	}
	tk.endAt = tk.started.Add(d.clockDur(end))
	tk.endState, tk.endFrac = state, frac
	d.log.Debug("task running", "task", tk.t.ID, "nodes", tk.nodes(), "modelled", tk.modelled, "planned", state)
}

// scheduleLocked starts queued tasks in FIFO order while the head fits.
func (d *Driver) scheduleLocked() {
	for len(d.queue) > 0 {
		head := d.queue[0]
		g := d.placeLocked(head.t.GPUs)
		if g == nil {
			return
		}
		d.queue = d.queue[1:]
		d.startLocked(head, g)
	}
}

// placeLocked picks n free GPUs: a task that fits on one node goes to the
// node with the fewest free GPUs that still holds it (best fit); a larger
// one takes GPUs from the nodes with the most free GPUs first. It returns
// nil when n GPUs are not free.
func (d *Driver) placeLocked(n int) []gpuRef {
	free := make([]int, len(d.gpus))
	total := 0
	for i, node := range d.gpus {
		for _, g := range node {
			if g == nil {
				free[i]++
			}
		}
		total += free[i]
	}
	if total < n {
		return nil
	}
	order := make([]int, len(d.gpus))
	for i := range order {
		order[i] = i
	}
	if n <= d.cfg.GPUsPerNode {
		best := -1
		for i, f := range free {
			if f >= n && (best < 0 || f < free[best]) {
				best = i
			}
		}
		if best < 0 {
			return nil // enough GPUs in total, but scattered: wait
		}
		order = []int{best}
	} else {
		sort.SliceStable(order, func(a, b int) bool { return free[order[a]] > free[order[b]] })
	}
	var out []gpuRef
	for _, ni := range order {
		for gi, g := range d.gpus[ni] {
			if g == nil && len(out) < n {
				out = append(out, gpuRef{ni, gi})
			}
		}
	}
	return out
}

// advanceLocked runs the simulation forward to now, ending tasks at their
// planned times and starting queued tasks as GPUs free up.
func (d *Driver) advanceLocked(now time.Time) {
	for {
		d.scheduleLocked()
		var next *task
		for t := range d.running {
			if t.endAt.After(now) {
				continue
			}
			if next == nil || t.endAt.Before(next.endAt) || (t.endAt.Equal(next.endAt) && t.ext < next.ext) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.endAt.After(d.simNow) {
			d.simNow = next.endAt
		}
		d.finishLocked(next)
	}
	if now.After(d.simNow) {
		d.simNow = now
	}
	for t := range d.running {
		t.progress = t.progressAt(d.simNow)
	}
}

func (tk *task) progressAt(now time.Time) float64 {
	span := tk.endAt.Sub(tk.started)
	if span <= 0 {
		return 0
	}
	f := float64(now.Sub(tk.started)) / float64(span) * tk.endFrac
	return clamp100(100 * f)
}

func clamp100(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0:
		return 0
	case p > 100:
		return 100
	}
	return p
}

func (d *Driver) releaseLocked(tk *task) {
	for _, g := range tk.gpus {
		if d.gpus[g.node][g.index] == tk {
			d.gpus[g.node][g.index] = nil
		}
		h := d.history[g.node][g.index]
		if n := len(h); n > 0 && h[n-1].tk == tk {
			h[n-1].end = d.simNow
		}
	}
	delete(d.running, tk)
}

func (d *Driver) finishLocked(tk *task) {
	d.releaseLocked(tk)
	tk.state = tk.endState
	tk.ended = tk.endAt
	tk.progress = clamp100(100 * tk.endFrac)
	switch tk.state {
	case backends.TaskCompleted:
		tk.progress = 100
		tk.result = tk.resultDoc(d)
		zero := 0
		tk.exit = &zero
	case backends.TaskFailed:
		tk.msg = fmt.Sprintf("simulated %s on %s at %.0f%% of the run", tk.failKind, tk.nodes(), tk.progress)
		code := 1
		if tk.failKind == FailOOM {
			code = 137
		}
		tk.exit = &code
	case backends.TaskTimeout:
		tk.msg = fmt.Sprintf("wall-time limit %s reached at %.0f%% (modelled run time %s)", tk.limit, tk.progress, tk.modelled.Round(time.Second))
	}
	d.log.Debug("task ended", "task", tk.t.ID, "state", tk.state, "message", tk.msg)
}

func (tk *task) nodes() string {
	if len(tk.gpus) == 0 {
		return "cpu"
	}
	seen := map[int]bool{}
	var names []string
	for _, g := range tk.gpus {
		if !seen[g.node] {
			seen[g.node] = true
			names = append(names, nodeName(g.node))
		}
	}
	return strings.Join(names, ",")
}

func nodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// Result is the document a completed task returns in Status.Result.
type Result struct {
	Agent           string  `json:"agent"`
	DatasetID       string  `json:"dataset_id"`
	DatasetGB       float64 `json:"dataset_gb"`
	GPUs            int     `json:"gpus"`
	Nodes           string  `json:"nodes"`
	ModelledSeconds float64 `json:"modelled_seconds"`
	GPUHours        float64 `json:"gpu_hours"`
	PeakGPUMemoryMB int     `json:"peak_gpu_memory_mb"`
	Batches         int     `json:"batches"`
	MixedPrecision  bool    `json:"mixed_precision"`
	SpeedUp         float64 `json:"speed_up"`
}

func (tk *task) resultDoc(d *Driver) json.RawMessage {
	r := Result{
		Agent:           tk.agent.Name(),
		DatasetID:       tk.t.DatasetID,
		DatasetGB:       round(tk.gb, 2),
		GPUs:            tk.t.GPUs,
		Nodes:           tk.nodes(),
		ModelledSeconds: round(tk.modelled.Seconds(), 3),
		GPUHours:        round(tk.modelled.Hours()*float64(tk.t.GPUs), 4),
		PeakGPUMemoryMB: tk.gpuMemPerGPU(d.cfg.GPUMemoryMB) * len(tk.gpus),
		Batches:         tk.batches,
		MixedPrecision:  d.cfg.MixedPrecision,
		SpeedUp:         d.cfg.SpeedUp,
	}
	b, _ := json.Marshal(r) // a struct of plain fields cannot fail
	return b
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// gpuMemPerGPU is the memory one of tk's GPUs holds: its share of the task
// memory, capped at 90 % of the GPU (the batch size is chosen to fit).
func (tk *task) gpuMemPerGPU(gpuMem int) int {
	if len(tk.gpus) == 0 {
		return 0
	}
	per := int(math.Ceil(float64(tk.memMB) / float64(len(tk.gpus)) / float64(tk.batches)))
	return min(per, int(0.9*float64(gpuMem)))
}

func (d *Driver) find(h backends.Handle) (*task, error) {
	if h.Backend != "" && h.Backend != d.cfg.Name {
		return nil, fmt.Errorf("%w: handle belongs to backend %q, not %q", backends.ErrTaskNotFound, h.Backend, d.cfg.Name)
	}
	tk, ok := d.tasks[h.ExternalID]
	if !ok {
		why := "never submitted here"
		if !strings.HasPrefix(h.ExternalID, d.cfg.InstanceID+"-") {
			why = "simgpu keeps tasks in memory and this handle is from another process (lost at restart); resubmit the task"
		}
		return nil, fmt.Errorf("%w: %s task %q: %s", backends.ErrTaskNotFound, d.cfg.Name, h.ExternalID, why)
	}
	return tk, nil
}

// Status reports the task behind h as of the clock's time.
func (d *Driver) Status(ctx context.Context, h backends.Handle) (backends.Status, error) {
	if err := d.lock(ctx); err != nil {
		return backends.Status{}, err
	}
	defer d.mu.Unlock()
	tk, err := d.find(h)
	if err != nil {
		return backends.Status{}, err
	}
	return d.statusLocked(tk), nil
}

func (d *Driver) statusLocked(tk *task) backends.Status {
	st := backends.Status{
		State:     tk.state,
		Progress:  tk.progress,
		Message:   tk.msg,
		ExitCode:  tk.exit,
		Result:    tk.result,
		StartedAt: tk.started,
		EndedAt:   tk.ended,
	}
	if tk.state != backends.TaskPending {
		st.Node = tk.nodes()
	} else {
		pos := 0
		for i, q := range d.queue {
			if q == tk {
				pos = i + 1
			}
		}
		st.Message = fmt.Sprintf("waiting for %d GPUs (%d free), position %d in queue", tk.t.GPUs, d.freeGPUsLocked(), pos)
	}
	return st
}

// Cancel stops the task behind h: a queued task leaves the queue, a
// running one frees its GPUs now. Cancelling a finished task does nothing.
func (d *Driver) Cancel(ctx context.Context, h backends.Handle) error {
	if err := d.lock(ctx); err != nil {
		return err
	}
	defer d.mu.Unlock()
	tk, err := d.find(h)
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
	case backends.TaskRunning:
		d.releaseLocked(tk)
	default:
		return nil
	}
	tk.state = backends.TaskCancelled
	tk.ended = d.simNow
	tk.msg = "cancelled"
	d.scheduleLocked()
	d.log.Debug("task cancelled", "task", tk.t.ID)
	return nil
}

// Recover returns the status of a task submitted to this driver. Tasks do
// not survive a restart: a handle from an earlier process is
// backends.ErrTaskNotFound.
func (d *Driver) Recover(ctx context.Context, h backends.Handle) (backends.Status, error) {
	return d.Status(ctx, h)
}

// Usage reports every GPU: the task on it, its utilisation (the task's
// Amdahl efficiency on its GPU count, so wide tasks of poorly parallel
// agents use each GPU less) and its memory.
func (d *Driver) Usage(ctx context.Context) ([]backends.GPUUsage, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	out := make([]backends.GPUUsage, 0, d.totalGPUs())
	for ni, node := range d.gpus {
		for gi, tk := range node {
			u := backends.GPUUsage{Node: nodeName(ni), Index: gi, MemoryTotalMB: d.cfg.GPUMemoryMB}
			if tk != nil {
				u.TaskID = tk.t.ID
				u.Utilization = tk.efficiency()
				u.MemoryUsedMB = tk.gpuMemPerGPU(d.cfg.GPUMemoryMB)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// efficiency is Amdahl's speed-up on n GPUs divided by n.
func (tk *task) efficiency() float64 {
	n := float64(len(tk.gpus))
	p := tk.desc.ParallelFraction
	if p < 0 || p > 1 {
		p = 0.9
	}
	return round(1/(n*(1-p)+p), 4)
}

// Close drops every task; later calls return backends.ErrClosed.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	d.tasks, d.byID, d.queue, d.running = nil, nil, nil, nil
	return nil
}

var (
	_ backends.Driver        = (*Driver)(nil)
	_ backends.UsageReporter = (*Driver)(nil)
)

// interval is one task's occupancy of one GPU; end is zero while running.
type interval struct {
	start, end time.Time
	tk         *task
}

// UsageSample is the state of every GPU at one moment.
type UsageSample struct {
	Time time.Time           `json:"time"`
	GPUs []backends.GPUUsage `json:"gpus"`
}

// UsageSeries returns per-GPU utilisation sampled every step from since to
// now (clock time), for dashboards. Samples before the oldest remembered
// interval (see Config.HistoryLimit) show the GPU idle. At most 10000
// samples are returned; a step that would give more is an error.
func (d *Driver) UsageSeries(ctx context.Context, since time.Time, step time.Duration) ([]UsageSample, error) {
	if step <= 0 {
		return nil, fmt.Errorf("simgpu: UsageSeries step is %s, want > 0", step)
	}
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	if since.After(d.simNow) {
		return nil, nil
	}
	if n := d.simNow.Sub(since) / step; n >= 10000 {
		return nil, fmt.Errorf("simgpu: UsageSeries from %s every %s gives %d samples, more than 10000", since.Format(time.RFC3339), step, n+1)
	}
	var out []UsageSample
	for t := since; !t.After(d.simNow); t = t.Add(step) {
		s := UsageSample{Time: t, GPUs: make([]backends.GPUUsage, 0, d.totalGPUs())}
		for ni, node := range d.history {
			for gi, ivs := range node {
				u := backends.GPUUsage{Node: nodeName(ni), Index: gi, MemoryTotalMB: d.cfg.GPUMemoryMB}
				for _, iv := range ivs {
					if !t.Before(iv.start) && (iv.end.IsZero() || t.Before(iv.end)) {
						u.TaskID = iv.tk.t.ID
						u.Utilization = iv.tk.efficiency()
						u.MemoryUsedMB = iv.tk.gpuMemPerGPU(d.cfg.GPUMemoryMB)
						break
					}
				}
				s.GPUs = append(s.GPUs, u)
			}
		}
		out = append(out, s)
	}
	return out, nil
}
