package events

import "encoding/json"

// JobData is the payload of every job.* event: a snapshot of the job at the
// moment of the transition, plus the transition's own details.
type JobData struct {
	JobID      string          `json:"job_id"`
	Owner      string          `json:"owner"`
	Agent      string          `json:"agent"`
	DatasetID  string          `json:"dataset_id"`
	GPUs       int             `json:"gpus"`
	Priority   int             `json:"priority"`
	State      string          `json:"state"`
	PrevState  string          `json:"prev_state,omitempty"`
	Progress   float64         `json:"progress"`
	Attempt    int             `json:"attempt"`
	Backend    string          `json:"backend,omitempty"`
	ExternalID string          `json:"external_id,omitempty"`
	WorkflowID string          `json:"workflow_id,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Error      string          `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	// NextAttemptAt is set on a job.queued event that schedules a retry.
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
	// Stage names the pipeline stage a job.progress event announces (its
	// reason holds the note, "stage <name> started" or "... completed");
	// empty otherwise. Optional and additive: older consumers ignore it.
	// The Avro schema 1.0 does not carry it (the note stays in reason).
	Stage string `json:"stage,omitempty"`
}

// WorkflowData is the payload of every workflow.* event: the run's state
// after the change, and for step events the step, its state and its job.
type WorkflowData struct {
	RunID    string `json:"run_id"`
	Workflow string `json:"workflow"`
	Version  int    `json:"version"`
	Owner    string `json:"owner"`
	// State is the run state: RUNNING, COMPLETED, FAILED or CANCELLED.
	State string `json:"state"`
	// Step, StepState and StepJobID describe the step of a step event.
	Step      string `json:"step,omitempty"`
	StepState string `json:"step_state,omitempty"`
	StepJobID string `json:"step_job_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
	// Outputs are the declared outputs of a completed step.
	Outputs json.RawMessage `json:"outputs,omitempty"`
}
