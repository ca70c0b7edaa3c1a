// Package simgpu is a deterministic simulated GPU cluster, the embedded
// default compute backend of Cosmic Horizons.
//
// The cluster has Config.Nodes nodes with Config.GPUsPerNode GPUs each.
// Tasks that ask for GPUs wait in one FIFO queue until the GPUs they need
// are free; a task that fits on one node is placed on the fullest node that
// still holds it (best fit), a wider one spans nodes. Tasks with GPUs 0 run
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
//   - when the task's memory per GPU exceeds 90 % of a GPU, the data are
//     processed in batches, each extra batch costing [BatchOverhead] of the
//     run time;
//   - Config.MixedPrecision speeds up the parallel share by
//     [MixedPrecisionSpeedUp] and halves the memory.
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
// [LabelFail] makes one task fail on purpose.
//
// # Restarts
//
// Tasks live in memory only. After the process restarts, Status and Recover
// of an earlier handle return backends.ErrTaskNotFound (handles carry a
// per-process instance id, so an old handle never matches a new task), and
// the orchestrator resubmits or fails the job. Finished tasks are kept
// until Close.
package simgpu
