// Package backends is the compute seam of Cosmic Horizons: where an agent's
// task runs and how its state comes back.
//
// A [Driver] is the small interface an implementer writes (a simulated GPU
// cluster, this machine, Slurm through slurmrestd, TACC Tapis v3). Users hold
// a [*Backend], the portable type that wraps a driver and adds argument
// validation, error classification, logging and safe concurrent use. Every
// driver passes the conformance suite in backends/backendtest.
//
// # Task handles
//
// Submit returns a [Handle], a small serialisable value (backend name and
// external id, plus optional driver data) that the orchestrator stores with
// the job. After a restart, [Backend.Recover] turns a stored handle back into
// a live task or reports [ErrTaskNotFound], so no job is left running forever.
//
// # Errors
//
// Drivers map their native failures onto the sentinel errors of this
// package ([ErrTaskNotFound], [ErrNoCapacity], [ErrInvalidTask],
// [ErrUnavailable], [ErrUnauthorized], [ErrUnsupported]) with %w, so callers
// use errors.Is whatever the driver.
package backends
