// Package simgpu is a deterministic simulated GPU cluster, the embedded
// default compute backend of Cosmic Horizons.
//
// The cluster has Config.Nodes nodes with Config.GPUsPerNode GPUs each,
// or, with Config.Pools, pools of different nodes (GPU count, GPU memory,
// host memory, GPU speed relative to the reference A100); [Driver.Nodes]
// reports the topology and state. Tasks that ask for GPUs wait in one FIFO
// queue until the GPUs they need are free on nodes that are up and have the
// host memory the task reserves (Task.MemoryMB on its node; shared out by
// GPUs when it spans nodes). A task that fits on one node goes to the node
// whose GPU memory needs the fewest batches, then to the fullest node that
// still holds it (best fit); a wider one spans nodes. Tasks with GPUs 0 run
// at once on host CPUs, Config.CPUSlowdown times slower than on one GPU.
//
// # Run-time model
//
// A task's modelled run time is its agent's estimate (agents.Agent.Estimate:
// the descriptor's base time for 10 GB on one GPU, linear in dataset size,
// Amdahl scaling over the GPUs), then:
//
//   - dataset size comes from Config.DatasetGB, by default [DatasetSize], a
//     deterministic 1–50 GB from the dataset id;
//   - the batch size is chosen when the task starts, from the memory of the
//     GPUs it got ([UsableGPUFraction] of the smallest): when the task's
//     memory per GPU exceeds it, the data are processed in batches, each
//     extra batch costing [BatchOverhead] of the run time;
//   - the parallel share runs at the slowest placed GPU's Pool.Speed;
//   - mixed precision (Config.MixedPrecision, or the label
//     [LabelPrecision] "mixed"/"fp32" per task) speeds up the parallel
//     share by [MixedPrecisionSpeedUp] and halves the memory.
//
// A completed task's [Result] shows the effect: pool, GPU model and speed,
// batches and batch size, the mixed-precision speed-up, modelled seconds
// and GPU hours. [Driver.Usage] and [Driver.UsageSeries] give per-GPU
// utilisation and memory now and as a time series for dashboards.
//
// The clock runs Config.SpeedUp times faster than the modelled hardware:
// with SpeedUp 360 a one-hour run takes ten seconds of clock time.
// Wall-time limits (Task.WallTime, at most Config.MaxWallTime) are in
// modelled time; a task that reaches its limit ends in TaskTimeout.
//
// # Determinism
//
// The simulation is lazy: every call advances it to Clock.Now, processing
// task ends in time order and starting queued tasks as GPUs free up, so it
// needs no goroutines. With a [ManualClock] the same calls give the same
// answers on every run. Failure injection is seeded: with
// Config.FailureRate r, a task fails with probability r, at a point between
// 5 % and 95 % of its run, as node loss, out-of-memory (exit code 137) or
// preemption, all chosen by a hash of Config.Seed and the task id. The label
// [LabelFail] makes one task fail on purpose. The kinds surface distinctly
// (see [FailureKind]): out-of-memory exits 137 and names the batch size,
// preemption exits 143, node loss has no exit code; with
// Config.NodeDowntime a node loss also fails every other task on the node
// and keeps the node out of placement until it returns. The orchestrator
// retries these failures (each attempt is a new task id, so a new draw).
//
// # Restarts
//
// Tasks live in memory only. After the process restarts, Status and Recover
// of an earlier handle return backends.ErrTaskNotFound (handles carry a
// per-process instance id, so an old handle never matches a new task), and
// the orchestrator resubmits or fails the job. Finished tasks are kept
// until Close.
package simgpu
