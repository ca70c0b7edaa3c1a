// Package workflow runs DAG workflows on the orchestrator: named, versioned
// definitions of steps, each a job spec with dependencies, executed as
// orchestrator jobs through its public API.
//
// # Definitions and versions
//
// A Definition lists Steps (agent, dataset, GPUs, params, depends_on) and a
// FailurePolicy. Validate rejects duplicate step names, unknown
// dependencies, cycles (naming them, "a -> b -> a"), bad job specs and
// unknown agents or parameters (through the agent registry), naming the
// offending step and field, e.g. steps[image].gpus. Engine.Create stores
// version 1; Engine.Publish adds a version and makes it current;
// Engine.Rollback makes an earlier version current again. A run is pinned
// to the version it started with.
//
// # Runs
//
// Engine.Submit starts a run: every step whose dependencies completed is
// submitted as a job (in parallel: fan-out), a step with several
// dependencies waits for all (fan-in). A step declares Outputs (name →
// dotted path into its job's result JSON); dependants use them as
// ${steps.STEP.outputs.NAME} in their dataset_id or params, and run inputs
// as ${inputs.NAME}. A reference that cannot be resolved fails the step
// with the reason. FailFast cancels the other running steps and skips the
// rest when a step fails; Continue keeps running independent branches.
// Engine.Cancel cancels the running steps' jobs.
//
// # Persistence and recovery
//
// Definitions, versions, runs and their events live in a Store: MemStore,
// or SQLStore on the database/sql handle of orchestrator/sqlstore (SQLite
// or PostgreSQL) with its own forward-only migrations table
// (workflow_migrations). Each step's job is submitted with the idempotency
// key "wf:RUN:STEP", so a process that dies between submitting a job and
// recording it submits nothing twice; a restarted engine resumes every
// active run by looking at its steps' job states.
//
// # Events
//
// workflow.submitted, workflow.step_started, workflow.step_completed,
// workflow.completed, workflow.failed and workflow.cancelled (payload
// events.WorkflowData, subject = run id, the run's correlation id, a
// per-run sequence) are written to the store's outbox with the run change
// that caused them and forwarded to events.TopicWorkflows.
package workflow
