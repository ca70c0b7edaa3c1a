package orchestrator

import (
	"context"
	"encoding/json"
	"time"
)

// Provenance is the audit record of one job: who submitted it and what
// exactly, which agent definition accepted it, every backend attempt with
// its task id and outcome, and what it produced.
type Provenance struct {
	JobID         string    `json:"job_id"`
	SubmittedBy   string    `json:"submitted_by"`
	SubmittedAt   time.Time `json:"submitted_at"`
	CorrelationID string    `json:"correlation_id"`
	WorkflowID    string    `json:"workflow_id,omitempty"`
	// Spec is the spec exactly as submitted (JSON).
	Spec json.RawMessage `json:"spec"`
	// Agent is the canonical agent name; AgentVersion identifies its
	// definition (see AgentVersion).
	Agent        string `json:"agent"`
	AgentVersion string `json:"agent_version"`
	// Resolved resources: the memory estimate and the default wall time
	// applied where the spec left them out.
	GPUs            int     `json:"gpus"`
	MemoryMB        int     `json:"memory_mb"`
	WallTimeSeconds float64 `json:"wall_time_seconds"`
	// State is the job's current state; Backend and ExternalID name the
	// task of the latest attempt.
	State      State     `json:"state"`
	Backend    string    `json:"backend,omitempty"`
	ExternalID string    `json:"external_id,omitempty"`
	Attempts   []Attempt `json:"attempts"`
	// Outputs is the result document of the completed job.
	Outputs    json.RawMessage `json:"outputs,omitempty"`
	Error      string          `json:"error,omitempty"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	// Events counts the job's stored events (its full history is at
	// Events).
	Events int `json:"events"`
}

// Provenance returns the audit record of job id, or ErrNotFound.
func (o *Orchestrator) Provenance(ctx context.Context, id string) (*Provenance, error) {
	j, err := o.store.GetJob(ctx, id)
	if err != nil {
		return nil, err
	}
	evs, err := o.store.JobEvents(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	return ProvenanceOf(j, len(evs)), nil
}

// ProvenanceOf builds the audit record of j, which has nEvents events.
func ProvenanceOf(j *Job, nEvents int) *Provenance {
	p := &Provenance{
		JobID:           j.ID,
		SubmittedBy:     j.Owner,
		SubmittedAt:     j.CreatedAt,
		CorrelationID:   j.CorrelationID,
		WorkflowID:      j.WorkflowID,
		Spec:            append(json.RawMessage(nil), j.SubmittedSpec...),
		Agent:           j.Agent,
		AgentVersion:    j.AgentVersion,
		GPUs:            j.GPUs,
		MemoryMB:        j.MemoryMB,
		WallTimeSeconds: j.WallTime.Seconds(),
		State:           j.State,
		Backend:         j.Backend,
		ExternalID:      j.ExternalID,
		Attempts:        append([]Attempt{}, j.AttemptLog...),
		Error:           j.Error,
		FinishedAt:      j.FinishedAt,
		Events:          nEvents,
	}
	if len(p.Spec) == 0 {
		p.Spec = json.RawMessage(`{}`) // a job stored before provenance was recorded
	}
	if n := len(p.Attempts); n > 0 && p.Backend == "" {
		p.Backend, p.ExternalID = p.Attempts[n-1].Backend, p.Attempts[n-1].ExternalID
	}
	if j.State == StateCompleted {
		p.Outputs = append(json.RawMessage(nil), j.Result...)
	}
	return p
}
