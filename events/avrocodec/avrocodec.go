// Package avrocodec is the Avro codec for Cosmic Horizons events
// (github.com/hamba/avro/v2), an alternative to events.JSONCodec for buses
// whose consumers want a compact, schema-checked binary encoding:
//
//	codec, err := avrocodec.New()
//	bus := events.NewBus(pub, sub, &events.BusConfig{Codec: codec})
//
// The Avro schemas are kept in the repository (schemas/*.avsc, embedded) next
// to the JSON schema of the payload (events/schemas/job.json). Every job.*
// event is one JobEvent record: the envelope, with the time as RFC 3339 text
// so that its zone survives, and the JobData payload as a nested record.
//
// # Schema evolution
//
// Each message names the schema it was written with in the MetaWriterSchema
// header. A consumer decodes a message written with another registered
// version by Avro schema resolution against its own (reader) schema, so it
// reads messages from producers one schema version behind: fields the writer
// did not have take their defaults. Register adds the writer schemas a
// consumer accepts; an unknown one is an error wrapping events.ErrDecode.
package avrocodec

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/hamba/avro/v2"

	"github.com/cosmic-horizons/horizons/events"
)

//go:embed schemas/*.avsc
var schemaFS embed.FS

// ContentType is the content type of Avro-encoded events.
const ContentType = "application/avro"

// MetaWriterSchema is the metadata key naming the schema version a message
// was written with.
const MetaWriterSchema = "avro_schema"

// Codec encodes job events as Avro. It implements events.Codec and is safe
// for concurrent use.
type Codec struct {
	version  string
	reader   avro.Schema
	workflow avro.Schema // the WorkflowEvent record of version

	mu       sync.RWMutex
	writers  map[string]avro.Schema
	resolved map[string]avro.Schema
}

// New returns a Codec that writes with the schema of events.SchemaVersion and
// reads it (and any version added with Register).
func New() (*Codec, error) {
	name := "schemas/job-" + events.SchemaVersion + ".avsc"
	raw, err := schemaFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("avrocodec: no schema for version %s: %w", events.SchemaVersion, err)
	}
	s, err := avro.ParseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("avrocodec: parse %s: %w", name, err)
	}
	wname := "schemas/workflow-" + events.SchemaVersion + ".avsc"
	wraw, err := schemaFS.ReadFile(wname)
	if err != nil {
		return nil, fmt.Errorf("avrocodec: no workflow schema for version %s: %w", events.SchemaVersion, err)
	}
	ws, err := avro.ParseBytes(wraw)
	if err != nil {
		return nil, fmt.Errorf("avrocodec: parse %s: %w", wname, err)
	}
	return &Codec{
		version:  events.SchemaVersion,
		reader:   s,
		workflow: ws,
		writers:  map[string]avro.Schema{events.SchemaVersion: s},
		resolved: map[string]avro.Schema{},
	}, nil
}

// Schema returns the schema the codec writes with.
func (c *Codec) Schema() avro.Schema { return c.reader }

// Register adds schema, the Avro schema (JSON text) of version, to the
// writer schemas the codec can read. It fails when the schema does not parse
// or cannot be resolved against the codec's own.
func (c *Codec) Register(version string, schema []byte) error {
	if version == "" {
		return fmt.Errorf("avrocodec: Register: version is empty")
	}
	s, err := avro.ParseBytes(schema)
	if err != nil {
		return fmt.Errorf("avrocodec: Register %q: %w", version, err)
	}
	r, err := avro.NewSchemaCompatibility().Resolve(c.reader, s)
	if err != nil {
		return fmt.Errorf("avrocodec: Register %q: not readable with schema %s: %w", version, c.version, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writers[version] = s
	c.resolved[version] = r
	return nil
}

// ContentType returns ContentType.
func (c *Codec) ContentType() string { return ContentType }

type record struct {
	ID            string  `avro:"id"`
	Type          string  `avro:"type"`
	Source        string  `avro:"source"`
	Subject       string  `avro:"subject"`
	Time          string  `avro:"time"`
	SchemaVersion string  `avro:"schema_version"`
	CorrelationID string  `avro:"correlation_id"`
	Sequence      int64   `avro:"sequence"`
	Data          jobData `avro:"data"`
}

type jobData struct {
	JobID         string  `avro:"job_id"`
	Owner         string  `avro:"owner"`
	Agent         string  `avro:"agent"`
	DatasetID     string  `avro:"dataset_id"`
	GPUs          int     `avro:"gpus"`
	Priority      int     `avro:"priority"`
	State         string  `avro:"state"`
	PrevState     string  `avro:"prev_state"`
	Progress      float64 `avro:"progress"`
	Attempt       int     `avro:"attempt"`
	Backend       string  `avro:"backend"`
	ExternalID    string  `avro:"external_id"`
	WorkflowID    string  `avro:"workflow_id"`
	Reason        string  `avro:"reason"`
	Error         string  `avro:"error"`
	Result        *string `avro:"result"`
	NextAttemptAt string  `avro:"next_attempt_at"`
}

// workflowTypes are the workflow run events, encoded as WorkflowEvent.
var workflowTypes = map[events.Type]bool{
	events.WorkflowSubmitted: true, events.WorkflowStepStarted: true, events.WorkflowStepCompleted: true,
	events.WorkflowCompleted: true, events.WorkflowFailed: true, events.WorkflowCancelled: true,
}

// workflowPrefix prefixes the MetaWriterSchema of WorkflowEvent messages.
const workflowPrefix = "workflow-"

type wfRecord struct {
	ID            string       `avro:"id"`
	Type          string       `avro:"type"`
	Source        string       `avro:"source"`
	Subject       string       `avro:"subject"`
	Time          string       `avro:"time"`
	SchemaVersion string       `avro:"schema_version"`
	CorrelationID string       `avro:"correlation_id"`
	Sequence      int64        `avro:"sequence"`
	Data          workflowData `avro:"data"`
}

type workflowData struct {
	RunID     string  `avro:"run_id"`
	Workflow  string  `avro:"workflow"`
	Version   int     `avro:"version"`
	Owner     string  `avro:"owner"`
	State     string  `avro:"state"`
	Step      string  `avro:"step"`
	StepState string  `avro:"step_state"`
	StepJobID string  `avro:"step_job_id"`
	Reason    string  `avro:"reason"`
	Error     string  `avro:"error"`
	Outputs   *string `avro:"outputs"`
}

func (c *Codec) marshalWorkflow(e events.Event) (*message.Message, error) {
	var d events.WorkflowData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return nil, fmt.Errorf("%w: data of %s event %s: %v", events.ErrInvalidEvent, e.Type, e.ID, err)
	}
	r := wfRecord{
		ID: e.ID, Type: string(e.Type), Source: e.Source, Subject: e.Subject,
		Time: e.Time.Format(time.RFC3339Nano), SchemaVersion: e.SchemaVersion,
		CorrelationID: e.CorrelationID, Sequence: e.Sequence,
		Data: workflowData{
			RunID: d.RunID, Workflow: d.Workflow, Version: d.Version, Owner: d.Owner, State: d.State,
			Step: d.Step, StepState: d.StepState, StepJobID: d.StepJobID, Reason: d.Reason, Error: d.Error,
		},
	}
	if len(d.Outputs) > 0 {
		s := string(d.Outputs)
		r.Data.Outputs = &s
	}
	payload, err := avro.Marshal(c.workflow, r)
	if err != nil {
		return nil, fmt.Errorf("%w: Avro encoding of %s event %s: %v", events.ErrInvalidEvent, e.Type, e.ID, err)
	}
	msg := message.NewMessage(e.ID, payload)
	events.SetMetadata(msg.Metadata, e)
	msg.Metadata.Set(events.MetaContentType, ContentType)
	msg.Metadata.Set(MetaWriterSchema, workflowPrefix+c.version)
	return msg, nil
}

func (c *Codec) unmarshalWorkflow(msg *message.Message) (events.Event, error) {
	var r wfRecord
	if err := avro.Unmarshal(c.workflow, msg.Payload, &r); err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: %v", events.ErrDecode, msg.UUID, err)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: field time %q: %v", events.ErrDecode, msg.UUID, r.Time, err)
	}
	if r.ID == "" {
		return events.Event{}, fmt.Errorf("%w: message %s: envelope has no id", events.ErrDecode, msg.UUID)
	}
	d := events.WorkflowData{
		RunID: r.Data.RunID, Workflow: r.Data.Workflow, Version: r.Data.Version, Owner: r.Data.Owner,
		State: r.Data.State, Step: r.Data.Step, StepState: r.Data.StepState, StepJobID: r.Data.StepJobID,
		Reason: r.Data.Reason, Error: r.Data.Error,
	}
	if r.Data.Outputs != nil {
		d.Outputs = json.RawMessage(*r.Data.Outputs)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: outputs are not JSON: %v", events.ErrDecode, msg.UUID, err)
	}
	return events.Event{
		ID: r.ID, Type: events.Type(r.Type), Source: r.Source, Subject: r.Subject, Time: t,
		SchemaVersion: r.SchemaVersion, CorrelationID: r.CorrelationID, Sequence: r.Sequence, Data: data,
	}, nil
}

// Marshal implements events.Codec. job.* events are JobEvent records and
// the workflow.* events of the catalogue WorkflowEvent records; other types
// fail with an error wrapping events.ErrUnknownType.
func (c *Codec) Marshal(e events.Event) (*message.Message, error) {
	if workflowTypes[e.Type] {
		return c.marshalWorkflow(e)
	}
	if !strings.HasPrefix(string(e.Type), "job.") {
		return nil, fmt.Errorf("%w: no Avro schema for type %q (event %s)", events.ErrUnknownType, e.Type, e.ID)
	}
	var d events.JobData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return nil, fmt.Errorf("%w: data of %s event %s: %v", events.ErrInvalidEvent, e.Type, e.ID, err)
	}
	r := record{
		ID: e.ID, Type: string(e.Type), Source: e.Source, Subject: e.Subject,
		Time: e.Time.Format(time.RFC3339Nano), SchemaVersion: e.SchemaVersion,
		CorrelationID: e.CorrelationID, Sequence: e.Sequence,
		Data: jobData{
			JobID: d.JobID, Owner: d.Owner, Agent: d.Agent, DatasetID: d.DatasetID, GPUs: d.GPUs,
			Priority: d.Priority, State: d.State, PrevState: d.PrevState, Progress: d.Progress,
			Attempt: d.Attempt, Backend: d.Backend, ExternalID: d.ExternalID, WorkflowID: d.WorkflowID,
			Reason: d.Reason, Error: d.Error, NextAttemptAt: d.NextAttemptAt,
		},
	}
	if len(d.Result) > 0 {
		s := string(d.Result)
		r.Data.Result = &s
	}
	payload, err := avro.Marshal(c.reader, r)
	if err != nil {
		return nil, fmt.Errorf("%w: Avro encoding of %s event %s: %v", events.ErrInvalidEvent, e.Type, e.ID, err)
	}
	msg := message.NewMessage(e.ID, payload)
	events.SetMetadata(msg.Metadata, e)
	msg.Metadata.Set(events.MetaContentType, ContentType)
	msg.Metadata.Set(MetaWriterSchema, c.version)
	return msg, nil
}

// Unmarshal implements events.Codec. It resolves a message written with
// another registered schema version against the codec's own.
func (c *Codec) Unmarshal(msg *message.Message) (events.Event, error) {
	if v := msg.Metadata.Get(MetaWriterSchema); strings.HasPrefix(v, workflowPrefix) {
		if v != workflowPrefix+c.version {
			return events.Event{}, fmt.Errorf("%w: message %s: unknown Avro writer schema %q (workflow events: %s)",
				events.ErrDecode, msg.UUID, v, workflowPrefix+c.version)
		}
		return c.unmarshalWorkflow(msg)
	}
	schema := c.reader
	if v := msg.Metadata.Get(MetaWriterSchema); v != "" && v != c.version {
		c.mu.RLock()
		s, ok := c.resolved[v]
		c.mu.RUnlock()
		if !ok {
			return events.Event{}, fmt.Errorf("%w: message %s: unknown Avro writer schema %q (registered: %s)",
				events.ErrDecode, msg.UUID, v, c.versions())
		}
		schema = s
	}
	var r record
	if err := avro.Unmarshal(schema, msg.Payload, &r); err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: %v", events.ErrDecode, msg.UUID, err)
	}
	t, err := time.Parse(time.RFC3339Nano, r.Time)
	if err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: field time %q: %v", events.ErrDecode, msg.UUID, r.Time, err)
	}
	d := events.JobData{
		JobID: r.Data.JobID, Owner: r.Data.Owner, Agent: r.Data.Agent, DatasetID: r.Data.DatasetID,
		GPUs: r.Data.GPUs, Priority: r.Data.Priority, State: r.Data.State, PrevState: r.Data.PrevState,
		Progress: r.Data.Progress, Attempt: r.Data.Attempt, Backend: r.Data.Backend,
		ExternalID: r.Data.ExternalID, WorkflowID: r.Data.WorkflowID, Reason: r.Data.Reason,
		Error: r.Data.Error, NextAttemptAt: r.Data.NextAttemptAt,
	}
	if r.Data.Result != nil {
		d.Result = json.RawMessage(*r.Data.Result)
	}
	data, err := json.Marshal(d)
	if err != nil {
		return events.Event{}, fmt.Errorf("%w: message %s: result is not JSON: %v", events.ErrDecode, msg.UUID, err)
	}
	if r.ID == "" {
		return events.Event{}, fmt.Errorf("%w: message %s: envelope has no id", events.ErrDecode, msg.UUID)
	}
	return events.Event{
		ID: r.ID, Type: events.Type(r.Type), Source: r.Source, Subject: r.Subject, Time: t,
		SchemaVersion: r.SchemaVersion, CorrelationID: r.CorrelationID, Sequence: r.Sequence, Data: data,
	}, nil
}

func (c *Codec) versions() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	vs := make([]string, 0, len(c.writers))
	for v := range c.writers {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}
