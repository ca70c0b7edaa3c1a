package events

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

//go:embed schemas/*.json
var schemaFS embed.FS

// EntryRule is an extra check on a decoded payload beyond its JSON schema,
// for example "a job.failed event carries an error".
type EntryRule func(payload map[string]any) error

// Entry describes one event type in a Catalogue.
type Entry struct {
	// Type is the event type.
	Type Type
	// Description says when the event is emitted.
	Description string
	// Schema is the JSON Schema document the payload must satisfy.
	Schema *Schema
	// State is the job state the payload must carry, if any.
	State string
	// Rules are checked after the schema.
	Rules []EntryRule
}

// Catalogue is the set of known event types and their schemas. It is safe for
// concurrent use. The zero value is an empty catalogue; [DefaultCatalogue]
// returns one with every job lifecycle type.
type Catalogue struct {
	mu      sync.RWMutex
	entries map[Type]Entry
}

// Register adds or replaces the entry for e.Type.
func (c *Catalogue) Register(e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[Type]Entry)
	}
	c.entries[e.Type] = e
}

// Lookup returns the entry for t.
func (c *Catalogue) Lookup(t Type) (Entry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[t]
	return e, ok
}

// Types returns the registered types in lexical order.
func (c *Catalogue) Types() []Type {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Type, 0, len(c.entries))
	for t := range c.entries {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Validate checks the envelope of e and its payload against the entry for
// its type. The error wraps ErrUnknownType or ErrInvalidEvent and names the
// offending field.
func (c *Catalogue) Validate(e Event) error {
	_, err := c.validate(e)
	return err
}

// validate is Validate that also returns the decoded payload object (nil
// when the payload is not a JSON object), so Publish need not decode it again.
func (c *Catalogue) validate(e Event) (map[string]any, error) {
	if err := e.ValidateEnvelope(); err != nil {
		return nil, err
	}
	entry, ok := c.Lookup(e.Type)
	if !ok {
		return nil, fmt.Errorf("%w: %q (event %s)", ErrUnknownType, e.Type, e.ID)
	}
	var payload any
	if err := json.Unmarshal(e.Data, &payload); err != nil {
		return nil, fmt.Errorf("%w: data of %s event %s is not JSON: %v", ErrInvalidEvent, e.Type, e.ID, err)
	}
	if entry.Schema != nil {
		if err := entry.Schema.Validate(payload); err != nil {
			return nil, fmt.Errorf("%w: %s event %s: %v", ErrInvalidEvent, e.Type, e.ID, err)
		}
	}
	obj, _ := payload.(map[string]any)
	if entry.State != "" {
		if got, _ := obj["state"].(string); got != entry.State {
			return nil, fmt.Errorf("%w: %s event %s: field data.state is %q, want %q", ErrInvalidEvent, e.Type, e.ID, got, entry.State)
		}
	}
	for _, r := range entry.Rules {
		if err := r(obj); err != nil {
			return nil, fmt.Errorf("%w: %s event %s: %v", ErrInvalidEvent, e.Type, e.ID, err)
		}
	}
	if sid, _ := obj["job_id"].(string); sid != "" && sid != e.Subject {
		return nil, fmt.Errorf("%w: %s event %s: field data.job_id %q differs from subject %q", ErrInvalidEvent, e.Type, e.ID, sid, e.Subject)
	}
	return obj, nil
}

var (
	defaultOnce sync.Once
	defaultCat  *Catalogue
)

// JobSchema returns the JSON Schema shared by the job.* payloads.
func JobSchema() *Schema {
	raw, err := schemaFS.ReadFile("schemas/job.json")
	if err != nil {
		panic(err) // embedded at build time
	}
	s, err := ParseSchema(raw)
	if err != nil {
		panic(err)
	}
	return s
}

// WorkflowSchema returns the JSON Schema shared by the workflow.* payloads.
func WorkflowSchema() *Schema {
	raw, err := schemaFS.ReadFile("schemas/workflow.json")
	if err != nil {
		panic(err) // embedded at build time
	}
	s, err := ParseSchema(raw)
	if err != nil {
		panic(err)
	}
	return s
}

func requireNonEmpty(field string) EntryRule {
	return func(p map[string]any) error {
		if s, _ := p[field].(string); s == "" {
			return fmt.Errorf("field data.%s is required and empty", field)
		}
		return nil
	}
}

// DefaultCatalogue returns the catalogue of job lifecycle and workflow run
// events. The
// returned value is shared; register extra types on a Catalogue of your own.
func DefaultCatalogue() *Catalogue {
	defaultOnce.Do(func() {
		s := JobSchema()
		c := &Catalogue{}
		c.Register(Entry{Type: JobSubmitted, Description: "a job was accepted and stored", Schema: s, State: "SUBMITTED"})
		c.Register(Entry{Type: JobQueued, Description: "a job waits for a backend (first time or for a retry)", Schema: s, State: "QUEUED"})
		c.Register(Entry{Type: JobRunning, Description: "a backend started the job", Schema: s, State: "RUNNING", Rules: []EntryRule{requireNonEmpty("backend")}})
		c.Register(Entry{Type: JobProgress, Description: "a running job crossed a progress step", Schema: s, State: "RUNNING"})
		c.Register(Entry{Type: JobCompleted, Description: "a job finished successfully", Schema: s, State: "COMPLETED"})
		c.Register(Entry{Type: JobFailed, Description: "a job failed (validation, backend, timeout or lost)", Schema: s, State: "FAILED", Rules: []EntryRule{requireNonEmpty("error")}})
		c.Register(Entry{Type: JobCancelled, Description: "a job was cancelled", Schema: s, State: "CANCELLED"})
		w := WorkflowSchema()
		c.Register(Entry{Type: WorkflowSubmitted, Description: "a workflow run was accepted and stored", Schema: w, State: "RUNNING"})
		c.Register(Entry{Type: WorkflowStepStarted, Description: "a workflow step's job was submitted", Schema: w, State: "RUNNING", Rules: []EntryRule{requireNonEmpty("step"), requireNonEmpty("step_job_id")}})
		c.Register(Entry{Type: WorkflowStepCompleted, Description: "a workflow step ended (COMPLETED, FAILED, CANCELLED or SKIPPED)", Schema: w, Rules: []EntryRule{requireNonEmpty("step"), requireNonEmpty("step_state")}})
		c.Register(Entry{Type: WorkflowCompleted, Description: "every step of a workflow run completed", Schema: w, State: "COMPLETED"})
		c.Register(Entry{Type: WorkflowFailed, Description: "a workflow run failed (a step failed)", Schema: w, State: "FAILED", Rules: []EntryRule{requireNonEmpty("error")}})
		c.Register(Entry{Type: WorkflowCancelled, Description: "a workflow run was cancelled", Schema: w, State: "CANCELLED"})
		defaultCat = c
	})
	return defaultCat
}
