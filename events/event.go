package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors returned by this package. They are wrapped with %w, so test
// for them with errors.Is.
var (
	// ErrInvalidEvent reports an envelope or payload that fails validation.
	ErrInvalidEvent = errors.New("events: invalid event")
	// ErrUnknownType reports an event type that is not in the catalogue.
	ErrUnknownType = errors.New("events: unknown event type")
	// ErrClosed reports an operation on a closed Bus.
	ErrClosed = errors.New("events: bus closed")
	// ErrDecode reports a message that cannot be decoded into an Event.
	ErrDecode = errors.New("events: cannot decode message")
)

// Type is an event type such as "job.completed".
type Type string

// The job lifecycle event types.
const (
	JobSubmitted Type = "job.submitted"
	JobQueued    Type = "job.queued"
	JobRunning   Type = "job.running"
	JobProgress  Type = "job.progress"
	JobCompleted Type = "job.completed"
	JobFailed    Type = "job.failed"
	JobCancelled Type = "job.cancelled"
)

// The workflow run event types (package orchestrator/workflow). Their subject
// is the run id and their payload is WorkflowData.
const (
	WorkflowSubmitted     Type = "workflow.submitted"
	WorkflowStepStarted   Type = "workflow.step_started"
	WorkflowStepCompleted Type = "workflow.step_completed"
	WorkflowCompleted     Type = "workflow.completed"
	WorkflowFailed        Type = "workflow.failed"
	WorkflowCancelled     Type = "workflow.cancelled"
)

// SchemaVersion is the version of the envelope and payload schemas written by
// this release.
const SchemaVersion = "1.0"

// DefaultSource is the Source used when an event does not name one.
const DefaultSource = "horizons"

// Topics, one per event family. Transports with partitions (Kafka) key every
// message by its subject, so each job's events stay in order within a topic.
const (
	// TopicJobs carries the job lifecycle events (job.*).
	TopicJobs = "horizons.jobs"
	// TopicMetrics carries metric samples derived from events.
	TopicMetrics = "horizons.metrics"
	// TopicNotifications carries the messages fanned out to users.
	TopicNotifications = "horizons.notifications"
	// TopicAudit carries the compliance audit trail.
	TopicAudit = "horizons.audit"
	// TopicHealth carries system health reports.
	TopicHealth = "horizons.health"
	// TopicWorkflows carries the workflow run events (workflow.*).
	TopicWorkflows = "horizons.workflows"
)

// Event is the envelope of every Cosmic Horizons event.
type Event struct {
	// ID is a UUID that identifies this event; consumers de-duplicate by it.
	ID string `json:"id"`
	// Type is the event type, for example JobCompleted.
	Type Type `json:"type"`
	// Source names the component that emitted the event.
	Source string `json:"source"`
	// Subject is the id of the entity the event is about (the job id).
	Subject string `json:"subject"`
	// Time is when the event happened; it is always encoded with its zone.
	Time time.Time `json:"time"`
	// SchemaVersion is the version of the payload schema.
	SchemaVersion string `json:"schema_version"`
	// CorrelationID is shared by every event caused by one request.
	CorrelationID string `json:"correlation_id"`
	// Sequence strictly increases across the events of one subject, from 1.
	Sequence int64 `json:"sequence"`
	// Data is the typed payload encoded as JSON.
	Data json.RawMessage `json:"data"`
}

// New returns an event of type t about subject with a fresh id, the current
// UTC time, the current schema version and data encoded as JSON. Sequence and
// CorrelationID are left for the caller.
func New(t Type, subject string, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("%w: data of %s: %v", ErrInvalidEvent, t, err)
	}
	return Event{
		ID:            uuid.NewString(),
		Type:          t,
		Source:        DefaultSource,
		Subject:       subject,
		Time:          time.Now().UTC(),
		SchemaVersion: SchemaVersion,
		Data:          raw,
	}, nil
}

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: data of event %s (%s): %v", ErrDecode, e.ID, e.Type, err)
	}
	return nil
}

// ValidateEnvelope checks the envelope fields (not the payload).
func (e Event) ValidateEnvelope() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: field id is empty", ErrInvalidEvent)
	case e.Type == "":
		return fmt.Errorf("%w: field type is empty (event %s)", ErrInvalidEvent, e.ID)
	case e.Source == "":
		return fmt.Errorf("%w: field source is empty (event %s)", ErrInvalidEvent, e.ID)
	case e.Subject == "":
		return fmt.Errorf("%w: field subject is empty (event %s)", ErrInvalidEvent, e.ID)
	case e.Time.IsZero():
		return fmt.Errorf("%w: field time is zero (event %s)", ErrInvalidEvent, e.ID)
	case e.SchemaVersion == "":
		return fmt.Errorf("%w: field schema_version is empty (event %s)", ErrInvalidEvent, e.ID)
	case e.Sequence < 0:
		return fmt.Errorf("%w: field sequence is %d, want >= 0 (event %s)", ErrInvalidEvent, e.Sequence, e.ID)
	}
	if _, err := uuid.Parse(e.ID); err != nil {
		return fmt.Errorf("%w: field id %q is not a UUID", ErrInvalidEvent, e.ID)
	}
	return nil
}
