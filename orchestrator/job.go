package orchestrator

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors. Store drivers map their native errors onto them, so
// errors.Is works whatever the store.
var (
	// ErrNotFound reports a job (or event) that does not exist, or that
	// belongs to another owner.
	ErrNotFound = errors.New("orchestrator: not found")
	// ErrInvalidTransition reports a state change the state machine forbids.
	ErrInvalidTransition = errors.New("orchestrator: invalid state transition")
	// ErrConflict reports an operation that clashes with the job's current
	// state (cancelling a finished job) or a concurrent update.
	ErrConflict = errors.New("orchestrator: conflict")
	// ErrInvalidSpec reports a job spec that fails validation; the error is
	// a *FieldError naming the field.
	ErrInvalidSpec = errors.New("orchestrator: invalid job spec")
	// ErrResourceExhausted reports that the orchestrator will not take more
	// work now (a full queue or a quota).
	ErrResourceExhausted = errors.New("orchestrator: resource exhausted")
	// ErrClosed reports use of a stopped orchestrator or closed store.
	ErrClosed = errors.New("orchestrator: closed")
)

// FieldError is a validation error for one field. It wraps ErrInvalidSpec
// (or the error in Err when set).
type FieldError struct {
	Field string
	Value any
	Msg   string
	Err   error
}

func (e *FieldError) Error() string {
	v, _ := json.Marshal(e.Value)
	s := string(v)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("field %s = %s: %s", e.Field, s, e.Msg)
}

// Unwrap returns the wrapped errors.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidSpec, e.Err}
	}
	return []error{ErrInvalidSpec}
}

// State is a job state.
type State string

// Job states.
const (
	StateSubmitted State = "SUBMITTED"
	StateQueued    State = "QUEUED"
	StateRunning   State = "RUNNING"
	StateCompleted State = "COMPLETED"
	StateFailed    State = "FAILED"
	StateCancelled State = "CANCELLED"
)

// States lists every state in lifecycle order.
var States = []State{StateSubmitted, StateQueued, StateRunning, StateCompleted, StateFailed, StateCancelled}

// Terminal reports whether no transition leaves s, except FAILED → QUEUED
// under a retry policy.
func (s State) Terminal() bool {
	return s == StateCompleted || s == StateFailed || s == StateCancelled
}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	for _, x := range States {
		if x == s {
			return true
		}
	}
	return false
}

// ParseState parses a state name, case-insensitively.
func ParseState(s string) (State, error) {
	st := State(strings.ToUpper(strings.TrimSpace(s)))
	if !st.Valid() {
		return "", &FieldError{Field: "state", Value: s, Msg: "unknown state; want one of SUBMITTED, QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED"}
	}
	return st, nil
}

var transitions = map[State][]State{
	StateSubmitted: {StateQueued, StateCancelled, StateFailed},
	StateQueued:    {StateRunning, StateCancelled, StateFailed},
	StateRunning:   {StateCompleted, StateFailed, StateCancelled},
	StateFailed:    {StateQueued}, // retry
}

// CanTransition reports whether from → to is legal.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// CheckTransition returns an error wrapping ErrInvalidTransition when
// from → to is illegal.
func CheckTransition(from, to State) error {
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrInvalidTransition, from, to)
	}
	return nil
}

// Spec is what a user submits.
type Spec struct {
	// Agent is the agent name or alias. Required.
	Agent string `json:"agent"`
	// DatasetID names the input dataset. Required: 1–128 characters of
	// letters, digits, '.', '_', ':', '/' and '-'.
	DatasetID string `json:"dataset_id"`
	// GPUs requested, 0–64. Zero runs on CPU.
	GPUs int `json:"gpus"`
	// MemoryMB requested; 0 means the agent's estimate.
	MemoryMB int `json:"memory_mb,omitempty"`
	// WallTime limit; 0 means the orchestrator default.
	WallTime time.Duration `json:"wall_time,omitempty"`
	// Params are agent parameters, validated by the agent.
	Params json.RawMessage `json:"params,omitempty"`
	// Priority from -100 (lowest) to 100 (highest); default 0.
	Priority int `json:"priority"`
	// IdempotencyKey makes a retried submission return the first job.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// CorrelationID ties the job's events to the request; generated when
	// empty.
	CorrelationID string `json:"correlation_id,omitempty"`
	// WorkflowID and DependsOn place the job in a workflow.
	WorkflowID string   `json:"workflow_id,omitempty"`
	DependsOn  []string `json:"depends_on,omitempty"`
}

// Limits bound a Spec.
const (
	MaxGPUs          = 64
	MaxPriority      = 100
	MinPriority      = -100
	MaxDatasetIDLen  = 128
	MaxIdempotency   = 128
	MaxParamsBytes   = 64 << 10
	MaxMemoryMB      = 4 << 20
	MaxWallTime      = 30 * 24 * time.Hour
	MaxCorrelationID = 128
)

var datasetRe = regexp.MustCompile(`^[A-Za-z0-9._:/-]+$`)

// Validate checks the fields that do not depend on the agent registry. The
// error is a *FieldError.
func (s *Spec) Validate() error {
	switch {
	case strings.TrimSpace(s.Agent) == "":
		return &FieldError{Field: "agent", Value: s.Agent, Msg: "is required"}
	case s.DatasetID == "":
		return &FieldError{Field: "dataset_id", Value: s.DatasetID, Msg: "is required"}
	case len(s.DatasetID) > MaxDatasetIDLen:
		return &FieldError{Field: "dataset_id", Value: s.DatasetID, Msg: fmt.Sprintf("is longer than %d characters", MaxDatasetIDLen)}
	case !datasetRe.MatchString(s.DatasetID):
		return &FieldError{Field: "dataset_id", Value: s.DatasetID, Msg: "may contain only letters, digits and . _ : / -"}
	case s.GPUs < 0 || s.GPUs > MaxGPUs:
		return &FieldError{Field: "gpus", Value: s.GPUs, Msg: fmt.Sprintf("must be between 0 and %d", MaxGPUs)}
	case s.MemoryMB < 0 || s.MemoryMB > MaxMemoryMB:
		return &FieldError{Field: "memory_mb", Value: s.MemoryMB, Msg: fmt.Sprintf("must be between 0 and %d", MaxMemoryMB)}
	case s.WallTime < 0 || s.WallTime > MaxWallTime:
		return &FieldError{Field: "wall_time", Value: s.WallTime.String(), Msg: fmt.Sprintf("must be between 0 and %s", MaxWallTime)}
	case s.Priority < MinPriority || s.Priority > MaxPriority:
		return &FieldError{Field: "priority", Value: s.Priority, Msg: fmt.Sprintf("must be between %d and %d", MinPriority, MaxPriority)}
	case len(s.IdempotencyKey) > MaxIdempotency:
		return &FieldError{Field: "idempotency_key", Value: s.IdempotencyKey, Msg: fmt.Sprintf("is longer than %d characters", MaxIdempotency)}
	case len(s.CorrelationID) > MaxCorrelationID:
		return &FieldError{Field: "correlation_id", Value: s.CorrelationID, Msg: fmt.Sprintf("is longer than %d characters", MaxCorrelationID)}
	case len(s.Params) > MaxParamsBytes:
		return &FieldError{Field: "params", Value: fmt.Sprintf("%d bytes", len(s.Params)), Msg: fmt.Sprintf("is larger than %d bytes", MaxParamsBytes)}
	}
	if p := strings.TrimSpace(string(s.Params)); p != "" && p != "null" && !strings.HasPrefix(p, "{") {
		return &FieldError{Field: "params", Value: p, Msg: "must be a JSON object"}
	}
	return nil
}

// Job is one agent run and its history.
type Job struct {
	ID             string          `json:"id"`
	Owner          string          `json:"owner"`
	Agent          string          `json:"agent"`
	DatasetID      string          `json:"dataset_id"`
	GPUs           int             `json:"gpus"`
	MemoryMB       int             `json:"memory_mb"`
	WallTime       time.Duration   `json:"wall_time"`
	Params         json.RawMessage `json:"params"`
	Priority       int             `json:"priority"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	CorrelationID  string          `json:"correlation_id"`
	WorkflowID     string          `json:"workflow_id,omitempty"`
	DependsOn      []string        `json:"depends_on,omitempty"`
	State          State           `json:"state"`
	// Progress is 0–100.
	Progress float64 `json:"progress"`
	// Backend and ExternalID identify the task on its backend; HandleData
	// is the driver's extra recovery data.
	Backend    string          `json:"backend"`
	ExternalID string          `json:"external_id,omitempty"`
	HandleData json.RawMessage `json:"-"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error"`
	// Attempts counts backend submissions.
	Attempts int `json:"attempts"`
	// NextAttemptAt holds a retried job back until then.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
	// Version increases with every stored change (optimistic locking).
	Version int64 `json:"version"`
	// Sequence is the sequence number of the job's latest event.
	Sequence int64 `json:"sequence"`
	// LeaseHolder is the replica (Config.ReplicaID) that currently works
	// on the job; empty when nobody does. LeaseExpiresAt is when another
	// replica may take the job over unless the holder renews the lease.
	LeaseHolder    string    `json:"lease_holder,omitempty"`
	LeaseExpiresAt time.Time `json:"lease_expires_at,omitzero"`
	// SubmittedSpec is the exact spec the owner submitted, as JSON.
	SubmittedSpec json.RawMessage `json:"submitted_spec,omitempty"`
	// AgentVersion identifies the agent definition the job was accepted
	// for (see AgentVersion).
	AgentVersion string `json:"agent_version,omitempty"`
	// AttemptLog records every backend attempt, oldest first.
	AttemptLog []Attempt `json:"attempt_log,omitempty"`
}

// Attempt is one backend run of a job.
type Attempt struct {
	// Number counts from 1; TaskID is the deterministic backend task id
	// (job id, '-', number).
	Number int    `json:"number"`
	TaskID string `json:"task_id"`
	// Backend and ExternalID identify the task on its backend; ExternalID
	// is empty until the backend accepted the task.
	Backend    string `json:"backend"`
	ExternalID string `json:"external_id,omitempty"`
	// Replica is the orchestrator replica that placed the attempt.
	Replica   string    `json:"replica,omitempty"`
	ClaimedAt time.Time `json:"claimed_at"`
	StartedAt time.Time `json:"started_at,omitzero"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// Outcome is the job state the attempt ended in (COMPLETED, FAILED,
	// CANCELLED); empty while it runs.
	Outcome State  `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// openAttempt returns the last attempt when it has not ended.
func (j *Job) openAttempt() *Attempt {
	if n := len(j.AttemptLog); n > 0 && j.AttemptLog[n-1].Outcome == "" {
		return &j.AttemptLog[n-1]
	}
	return nil
}

// Clone returns a deep copy of j.
func (j *Job) Clone() *Job {
	c := *j
	c.Params = append(json.RawMessage(nil), j.Params...)
	c.HandleData = append(json.RawMessage(nil), j.HandleData...)
	c.Result = append(json.RawMessage(nil), j.Result...)
	c.DependsOn = append([]string(nil), j.DependsOn...)
	c.SubmittedSpec = append(json.RawMessage(nil), j.SubmittedSpec...)
	c.AttemptLog = append([]Attempt(nil), j.AttemptLog...)
	return &c
}
