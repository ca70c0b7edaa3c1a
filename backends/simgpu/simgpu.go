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
	// UsableGPUFraction is the share of a GPU's memory a batch may fill;
	// the rest is the runtime's own (CUDA context, model weights).
	UsableGPUFraction = 0.9
)

// LabelPrecision is a task label that overrides Config.MixedPrecision for
// one task: "mixed" or "fp32".
const LabelPrecision = "simgpu.precision"

// Pool is a group of identical nodes in a heterogeneous cluster.
type Pool struct {
	// Name names the pool in results and Nodes; default "pool-<i>".
	Name string
	// Nodes is the number of nodes in the pool. Required (> 0).
	Nodes int
	// GPUsPerNode is the number of GPUs on each node. Required (> 0).
	GPUsPerNode int
	// GPUModel is informational, e.g. "A100-80GB".
	GPUModel string
	// GPUMemoryMB is the memory of one GPU; default Config.GPUMemoryMB.
	GPUMemoryMB int
	// NodeMemoryMB is the host memory of one node; default
	// Config.NodeMemoryMB.
	NodeMemoryMB int
	// Speed is the GPU throughput relative to the reference GPU the agents'
	// estimates are for (an A100): 2 runs the parallel share twice as
	// fast. Default 1.
	Speed float64
}

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
	// Nodes is the number of nodes; default 2. Ignored when Pools is set
	// (Config() then reports the total).
	Nodes int
	// GPUsPerNode is the number of GPUs on each node; default 4. Ignored
	// when Pools is set (Config() then reports the largest node's).
	GPUsPerNode int
	// GPUMemoryMB is the memory of one GPU; default 40960.
	GPUMemoryMB int
	// NodeMemoryMB is the host memory of a node; default 262144. A task's
	// MemoryMB is reserved on the node it runs on (shared out by GPUs
	// when it spans nodes), and one task may ask for at most the smallest
	// node's memory.
	NodeMemoryMB int
	// Pools, when set, makes a heterogeneous cluster: nodes are numbered
	// node-0, node-1, ... pool after pool.
	Pools []Pool
	// NodeDowntime, when > 0, makes an injected node loss take the whole
	// node down for this long (modelled time): every task on it fails with
	// node-loss and nothing is placed on it until it returns. 0 means only
	// the one task fails and the node stays up.
	NodeDowntime time.Duration
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
	// RetainFinished is how many finished tasks the driver remembers for
	// Status; 0 means every task (memory then grows with each task, which
	// a long run of millions of tasks cannot afford). Older finished tasks
	// are forgotten: their Status is backends.ErrTaskNotFound.
	RetainFinished int
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

	mu     sync.Mutex
	closed bool
	simNow time.Time
	seq    int
	tasks  map[string]*task // by external id
	byID   map[string]*task // by task id
	// finished holds finished tasks, oldest first, when RetainFinished > 0.
	finished []*task
	queue    []*task // FIFO of pending GPU tasks
	running  map[*task]struct{}
	nodes    []node
	gpus     [][]*task      // [node][gpu] -> running task or nil
	history  [][][]interval // [node][gpu] -> occupancy, oldest first
}

// node is one node of the cluster.
type node struct {
	name, pool, model string
	gpuMem, hostMem   int
	speed             float64
	memUsed           int       // host memory reserved by running tasks
	downUntil         time.Time // clock time a lost node returns; zero when up
}

func (n *node) up() bool { return n.downUntil.IsZero() }

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

	baseSecs  float64 // modelled seconds on reference GPUs, one batch
	memF      float64 // modelled GPU memory of the whole task, unrounded
	mixed     bool    // mixed precision
	mixedGain float64 // effective speed-up of mixed precision on this run
	speed     float64 // slowest placed GPU's speed
	batchMB   int     // GPU memory of one batch on one GPU
	hostRes   map[int]int
	lostWith  string // the task whose node loss ended this one

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
	if c.RetainFinished < 0 {
		return nil, fmt.Errorf("simgpu: config field RetainFinished is %d, want >= 0", c.RetainFinished)
	}
	if c.NodeDowntime < 0 {
		return nil, fmt.Errorf("simgpu: config field NodeDowntime is %s, want >= 0", c.NodeDowntime)
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
	nodes, err := buildNodes(&c)
	if err != nil {
		return nil, err
	}
	d := &Driver{
		cfg:     c,
		clock:   c.Clock,
		log:     log.With("backend", c.Name),
		simNow:  c.Clock.Now(),
		tasks:   map[string]*task{},
		byID:    map[string]*task{},
		running: map[*task]struct{}{},
		nodes:   nodes,
		gpus:    make([][]*task, len(nodes)),
	}
	d.history = make([][][]interval, len(nodes))
	for i, n := range nodes {
		d.gpus[i] = make([]*task, gpusOf(c, n.pool))
		d.history[i] = make([][]interval, len(d.gpus[i]))
	}
	return d, nil
}

// buildNodes lays out the nodes of c (one pool from Nodes and GPUsPerNode
// when Pools is empty) and sets c.Nodes and c.GPUsPerNode to the total
// nodes and the largest node.
func buildNodes(c *Config) ([]node, error) {
	pools := c.Pools
	if len(pools) == 0 {
		pools = []Pool{{Name: "default", Nodes: c.Nodes, GPUsPerNode: c.GPUsPerNode}}
	}
	c.Pools = make([]Pool, len(pools))
	var nodes []node
	names := map[string]bool{}
	maxGPUs := 0
	for i, p := range pools {
		if p.Name == "" {
			p.Name = fmt.Sprintf("pool-%d", i)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("simgpu: config field Pools[%d].Name %q is used twice", i, p.Name)
		}
		names[p.Name] = true
		if p.Nodes <= 0 || p.GPUsPerNode <= 0 {
			return nil, fmt.Errorf("simgpu: config field Pools[%d] (%s) has Nodes %d and GPUsPerNode %d, want both > 0", i, p.Name, p.Nodes, p.GPUsPerNode)
		}
		if p.GPUMemoryMB < 0 || p.NodeMemoryMB < 0 {
			return nil, fmt.Errorf("simgpu: config field Pools[%d] (%s) has GPUMemoryMB %d and NodeMemoryMB %d, want >= 0", i, p.Name, p.GPUMemoryMB, p.NodeMemoryMB)
		}
		if math.IsNaN(p.Speed) || math.IsInf(p.Speed, 0) || p.Speed < 0 {
			return nil, fmt.Errorf("simgpu: config field Pools[%d].Speed is %v, want a finite number > 0", i, p.Speed)
		}
		if p.GPUMemoryMB == 0 {
			p.GPUMemoryMB = c.GPUMemoryMB
		}
		if p.NodeMemoryMB == 0 {
			p.NodeMemoryMB = c.NodeMemoryMB
		}
		if p.Speed == 0 {
			p.Speed = 1
		}
		c.Pools[i] = p
		maxGPUs = max(maxGPUs, p.GPUsPerNode)
		for range p.Nodes {
			nodes = append(nodes, node{name: nodeName(len(nodes)), pool: p.Name, model: p.GPUModel,
				gpuMem: p.GPUMemoryMB, hostMem: p.NodeMemoryMB, speed: p.Speed})
		}
	}
	c.Nodes, c.GPUsPerNode = len(nodes), maxGPUs
	return nodes, nil
}

func gpusOf(c Config, pool string) int {
	for _, p := range c.Pools {
		if p.Name == pool {
			return p.GPUsPerNode
		}
	}
	return 0
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

func (d *Driver) totalGPUs() int {
	n := 0
	for _, g := range d.gpus {
		n += len(g)
	}
	return n
}

// minNodeMemory is the host memory of the smallest node.
func (d *Driver) minNodeMemory() int {
	m := 0
	for i := range d.nodes {
		if h := d.nodes[i].hostMem; i == 0 || h < m { // hostMem never changes
			m = h
		}
	}
	return m
}

// Capabilities reports the cluster's limits: all its GPUs for one task,
// the smallest node's memory, MaxWallTime; cancel is supported, recovery
// across restarts is not.
func (d *Driver) Capabilities(ctx context.Context) (backends.Capabilities, error) {
	if err := d.live(ctx); err != nil {
		return backends.Capabilities{}, err
	}
	return backends.Capabilities{
		MaxGPUs:     d.totalGPUs(),
		MaxMemoryMB: d.minNodeMemory(),
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

// freeGPUsLocked counts the idle GPUs of nodes that are up.
func (d *Driver) freeGPUsLocked() int {
	n := 0
	for i, gs := range d.gpus {
		if !d.nodes[i].up() {
			continue
		}
		for _, g := range gs {
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
	p := tk.parallel()
	mem := float64(est.MemoryMB)
	tk.mixed = d.cfg.MixedPrecision
	if v, ok := tk.t.Labels[LabelPrecision]; ok {
		switch v {
		case "mixed":
			tk.mixed = true
		case "fp32":
			tk.mixed = false
		default:
			return fmt.Errorf("%w: field labels[%s] is %q, want mixed or fp32", backends.ErrInvalidTask, LabelPrecision, v)
		}
	}
	tk.mixedGain = 1
	if tk.mixed {
		// Amdahl again: only the parallel share speeds up.
		par := p / float64(gpus)
		ser := 1 - p
		f := (ser + par/MixedPrecisionSpeedUp) / (ser + par)
		secs *= f
		tk.mixedGain = 1 / f
		mem /= 2
	}
	tk.memF = mem
	tk.memMB = int(math.Ceil(mem))
	tk.baseSecs = secs
	tk.batches, tk.speed = 1, 1
	if tk.t.GPUs == 0 {
		tk.modelled = time.Duration(secs * d.cfg.CPUSlowdown * float64(time.Second))
	}
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

// parallel is the agent's Amdahl parallel fraction (0.9 when it gives
// none that makes sense).
func (tk *task) parallel() float64 {
	p := tk.desc.ParallelFraction
	if p < 0 || p > 1 {
		p = 0.9
	}
	return p
}

// planLocked sizes the batches from the memory of the GPUs tk was placed
// on (the smallest, less the runtime's share) and models the run time on
// them: one extra BatchOverhead per extra batch, the parallel share at the
// slowest GPU's speed.
func (d *Driver) planLocked(tk *task, gpus []gpuRef) {
	if len(gpus) == 0 {
		return // CPU only: modelled at submit
	}
	usable, speed, minMem := math.Inf(1), math.Inf(1), 0
	for i, g := range gpus {
		n := &d.nodes[g.node]
		usable = math.Min(usable, UsableGPUFraction*float64(n.gpuMem))
		speed = math.Min(speed, n.speed)
		if i == 0 || n.gpuMem < minMem {
			minMem = n.gpuMem
		}
	}
	k := float64(len(gpus))
	perGPU := tk.memF / k
	tk.batches = 1
	if perGPU > usable {
		tk.batches = int(math.Ceil(perGPU / usable))
	}
	secs := tk.baseSecs * (1 + BatchOverhead*float64(tk.batches-1))
	if speed != 1 {
		p := tk.parallel()
		par, ser := p/k, 1-p
		secs *= (ser + par/speed) / (ser + par)
	}
	tk.speed = speed
	tk.modelled = time.Duration(secs * float64(time.Second))
	tk.batchMB = min(int(math.Ceil(float64(tk.memMB)/k/float64(tk.batches))), int(UsableGPUFraction*float64(minMem)))
}

// clockDur converts a modelled duration to clock time.
func (d *Driver) clockDur(m time.Duration) time.Duration {
	return time.Duration(float64(m) / d.cfg.SpeedUp)
}

// startLocked starts tk on gpus at simNow and plans its end: completion,
// injected failure or the wall-time limit, whichever comes first.
func (d *Driver) startLocked(tk *task, gpus []gpuRef) {
	d.planLocked(tk, gpus)
	d.reserveLocked(tk, gpus)
	tk.state = backends.TaskRunning
	tk.started = d.simNow
	d.running[tk] = struct{}{}
	tk.gpus = gpus
	for _, g := range gpus {
		d.gpus[g.node][g.index] = tk
		h := append(d.history[g.node][g.index], interval{start: d.simNow, tk: tk})
		// Trim to the newest HistoryLimit only once twice as many have
		// piled up, so the copy costs O(1) per task on average;
		// UsageSeries reads the newest HistoryLimit.
		if len(h) > 2*d.cfg.HistoryLimit {
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
		g := d.placeLocked(head)
		if g == nil {
			return
		}
		d.queue = d.queue[1:]
		d.startLocked(head, g)
	}
}

// memShare is the host memory tk reserves on a node where it holds k of
// its GPUs: all of Task.MemoryMB on one node, a share by GPUs when it
// spans nodes.
func memShare(tk *task, k int) int {
	if tk.t.MemoryMB <= 0 || tk.t.GPUs <= 0 {
		return 0
	}
	return int(math.Ceil(float64(tk.t.MemoryMB) * float64(k) / float64(tk.t.GPUs)))
}

func (d *Driver) reserveLocked(tk *task, gpus []gpuRef) {
	per := map[int]int{}
	for _, g := range gpus {
		per[g.node]++
	}
	tk.hostRes = map[int]int{}
	for ni, k := range per {
		m := memShare(tk, k)
		tk.hostRes[ni] = m
		d.nodes[ni].memUsed += m
	}
}

// batchesOn is how many batches tk needs on GPUs of gpuMem MB.
func batchesOn(tk *task, gpuMem int) int {
	usable := UsableGPUFraction * float64(gpuMem)
	per := tk.memF / float64(max(tk.t.GPUs, 1))
	if per <= usable {
		return 1
	}
	return int(math.Ceil(per / usable))
}

// placeLocked picks GPUs for tk on nodes that are up and have the host
// memory it reserves. A task that fits on one node goes to a single node:
// the one whose GPU memory needs the fewest batches, then the one with
// the fewest free GPUs that still holds it (best fit), then the lowest
// number. A wider task takes GPUs from the nodes with the most free GPUs
// first. It returns nil when the GPUs are not free.
func (d *Driver) placeLocked(tk *task) []gpuRef {
	n := tk.t.GPUs
	free := make([]int, len(d.gpus))
	total, widest := 0, 0
	for i, gs := range d.gpus {
		widest = max(widest, len(gs))
		if !d.nodes[i].up() {
			continue
		}
		for _, g := range gs {
			if g == nil {
				free[i]++
			}
		}
		total += free[i]
	}
	if total < n {
		return nil
	}
	memFree := func(i int) int { return d.nodes[i].hostMem - d.nodes[i].memUsed }
	var order []int
	if n <= widest {
		best := -1
		for i, f := range free {
			if f < n || memFree(i) < memShare(tk, n) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			bi, bb := batchesOn(tk, d.nodes[i].gpuMem), batchesOn(tk, d.nodes[best].gpuMem)
			if bi < bb || (bi == bb && f < free[best]) {
				best = i
			}
		}
		if best < 0 {
			return nil // enough GPUs in total, but scattered or short of memory: wait
		}
		order = []int{best}
	} else {
		for i := range d.gpus {
			order = append(order, i)
		}
		sort.SliceStable(order, func(a, b int) bool { return free[order[a]] > free[order[b]] })
	}
	var out []gpuRef
	for _, ni := range order {
		k := min(free[ni], n-len(out))
		if k <= 0 {
			continue
		}
		if memFree(ni) < memShare(tk, k) {
			continue
		}
		for gi, g := range d.gpus[ni] {
			if g == nil && k > 0 {
				out = append(out, gpuRef{ni, gi})
				k--
			}
		}
	}
	if len(out) < n {
		return nil
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
		// A lost node that returns before the next task end comes first.
		back := -1
		for i := range d.nodes {
			u := d.nodes[i].downUntil
			if u.IsZero() || u.After(now) || (next != nil && !u.Before(next.endAt)) {
				continue
			}
			if back < 0 || u.Before(d.nodes[back].downUntil) {
				back = i
			}
		}
		if back >= 0 {
			if u := d.nodes[back].downUntil; u.After(d.simNow) {
				d.simNow = u
			}
			d.nodes[back].downUntil = time.Time{}
			d.log.Debug("node back", "node", d.nodes[back].name)
			continue
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
	for ni, m := range tk.hostRes {
		d.nodes[ni].memUsed -= m
	}
	tk.hostRes = nil
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
		switch tk.failKind {
		case FailOOM:
			code := 137 // SIGKILL from the OOM killer
			tk.exit = &code
			if tk.batchMB > 0 {
				tk.msg += fmt.Sprintf(": a %d MB batch outgrew the GPU", tk.batchMB)
			}
		case FailPreemption:
			code := 143 // SIGTERM from the scheduler
			tk.exit = &code
		case FailNodeLoss:
			// The node vanished: no process exit to report.
			if tk.lostWith != "" {
				tk.msg += " (the node was lost under task " + tk.lostWith + ")"
			}
		default:
			code := 1
			tk.exit = &code
		}
	case backends.TaskTimeout:
		tk.msg = fmt.Sprintf("wall-time limit %s reached at %.0f%% (modelled run time %s)", tk.limit, tk.progress, tk.modelled.Round(time.Second))
	}
	d.log.Debug("task ended", "task", tk.t.ID, "state", tk.state, "message", tk.msg)
	if tk.state == backends.TaskFailed && tk.failKind == FailNodeLoss && tk.lostWith == "" && d.cfg.NodeDowntime > 0 && len(tk.gpus) > 0 {
		d.loseNodeLocked(tk.gpus[0].node, tk)
	}
	d.retireLocked(tk)
}

// retireLocked remembers that tk finished and forgets the oldest finished
// tasks beyond Config.RetainFinished.
func (d *Driver) retireLocked(tk *task) {
	if d.cfg.RetainFinished <= 0 {
		return
	}
	d.finished = append(d.finished, tk)
	for len(d.finished) > d.cfg.RetainFinished {
		old := d.finished[0]
		d.finished[0] = nil
		d.finished = d.finished[1:]
		delete(d.tasks, old.ext)
		if d.byID[old.t.ID] == old {
			delete(d.byID, old.t.ID)
		}
	}
}

// loseNodeLocked takes node ni down for Config.NodeDowntime: every other
// task on it fails with node-loss now, and nothing is placed there until
// it returns.
func (d *Driver) loseNodeLocked(ni int, cause *task) {
	d.nodes[ni].downUntil = d.simNow.Add(d.clockDur(d.cfg.NodeDowntime))
	var victims []*task
	seen := map[*task]bool{}
	for _, t := range d.gpus[ni] {
		if t != nil && t != cause && !seen[t] {
			seen[t] = true
			victims = append(victims, t)
		}
	}
	sort.Slice(victims, func(a, b int) bool { return victims[a].ext < victims[b].ext })
	for _, t := range victims {
		t.endFrac = t.progressAt(d.simNow) / 100
		t.endAt, t.endState = d.simNow, backends.TaskFailed
		t.failKind, t.lostWith = FailNodeLoss, cause.t.ID
		d.finishLocked(t)
	}
	d.log.Debug("node lost", "node", d.nodes[ni].name, "until", d.nodes[ni].downUntil, "tasks_failed", len(victims))
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
	// BatchSizeMB is the GPU memory of one batch on one GPU, chosen from
	// the placed GPUs' memory.
	BatchSizeMB int `json:"batch_size_mb"`
	// PrecisionSpeedUp is how much faster mixed precision made this run
	// (1 in fp32).
	PrecisionSpeedUp float64 `json:"precision_speed_up"`
	// Pool and GPUModel name the hardware of the first GPU; GPUSpeed is the
	// slowest placed GPU's speed relative to the reference GPU.
	Pool     string  `json:"pool,omitempty"`
	GPUModel string  `json:"gpu_model,omitempty"`
	GPUSpeed float64 `json:"gpu_speed,omitempty"`
}

func (tk *task) resultDoc(d *Driver) json.RawMessage {
	r := Result{
		Agent:            tk.agent.Name(),
		DatasetID:        tk.t.DatasetID,
		DatasetGB:        round(tk.gb, 2),
		GPUs:             tk.t.GPUs,
		Nodes:            tk.nodes(),
		ModelledSeconds:  round(tk.modelled.Seconds(), 3),
		GPUHours:         round(tk.modelled.Hours()*float64(tk.t.GPUs), 4),
		PeakGPUMemoryMB:  tk.batchMB * len(tk.gpus),
		Batches:          tk.batches,
		MixedPrecision:   tk.mixed,
		SpeedUp:          d.cfg.SpeedUp,
		BatchSizeMB:      tk.batchMB,
		PrecisionSpeedUp: round(tk.mixedGain, 4),
	}
	if len(tk.gpus) > 0 {
		n := d.nodes[tk.gpus[0].node]
		r.Pool, r.GPUModel, r.GPUSpeed = n.pool, n.model, tk.speed
	}
	b, _ := json.Marshal(r) // a struct of plain fields cannot fail
	return b
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
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
	d.retireLocked(tk)
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
			u := backends.GPUUsage{Node: nodeName(ni), Index: gi, MemoryTotalMB: d.nodes[ni].gpuMem}
			if tk != nil {
				u.TaskID = tk.t.ID
				u.Utilization = tk.efficiency()
				u.MemoryUsedMB = tk.batchMB
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// efficiency is Amdahl's speed-up on n GPUs divided by n.
func (tk *task) efficiency() float64 {
	n := float64(len(tk.gpus))
	p := tk.parallel()
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
				if len(ivs) > d.cfg.HistoryLimit {
					ivs = ivs[len(ivs)-d.cfg.HistoryLimit:]
				}
				u := backends.GPUUsage{Node: nodeName(ni), Index: gi, MemoryTotalMB: d.nodes[ni].gpuMem}
				for _, iv := range ivs {
					if !t.Before(iv.start) && (iv.end.IsZero() || t.Before(iv.end)) {
						u.TaskID = iv.tk.t.ID
						u.Utilization = iv.tk.efficiency()
						u.MemoryUsedMB = iv.tk.batchMB
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

// NodeInfo is the state of one node, for dashboards.
type NodeInfo struct {
	Name         string `json:"name"`
	Pool         string `json:"pool"`
	GPUModel     string `json:"gpu_model,omitempty"`
	GPUs         int    `json:"gpus"`
	FreeGPUs     int    `json:"free_gpus"`
	GPUMemoryMB  int    `json:"gpu_memory_mb"`
	NodeMemoryMB int    `json:"node_memory_mb"`
	// MemoryUsedMB is the host memory running tasks reserve.
	MemoryUsedMB int     `json:"memory_used_mb"`
	Speed        float64 `json:"speed"`
	// Down reports a node lost to an injected node loss, back at
	// DownUntil (clock time).
	Down      bool      `json:"down"`
	DownUntil time.Time `json:"down_until,omitzero"`
}

// Nodes reports the topology and the state of every node as of the
// clock's time.
func (d *Driver) Nodes(ctx context.Context) ([]NodeInfo, error) {
	if err := d.lock(ctx); err != nil {
		return nil, err
	}
	defer d.mu.Unlock()
	out := make([]NodeInfo, len(d.nodes))
	for i, n := range d.nodes {
		free := 0
		for _, g := range d.gpus[i] {
			if g == nil && n.up() {
				free++
			}
		}
		out[i] = NodeInfo{Name: n.name, Pool: n.pool, GPUModel: n.model, GPUs: len(d.gpus[i]), FreeGPUs: free,
			GPUMemoryMB: n.gpuMem, NodeMemoryMB: n.hostMem, MemoryUsedMB: n.memUsed, Speed: n.speed,
			Down: !n.up(), DownUntil: n.downUntil}
	}
	return out, nil
}

// FailureKind returns the injected failure kind a status reports
// (FailNodeLoss, FailOOM, FailPreemption, or "error" for LabelFail with
// another value), or "" when the status is not an injected failure.
func FailureKind(st backends.Status) string {
	if st.State != backends.TaskFailed || !strings.HasPrefix(st.Message, "simulated ") {
		return ""
	}
	kind, _, _ := strings.Cut(strings.TrimPrefix(st.Message, "simulated "), " ")
	return kind
}
