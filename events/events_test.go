package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// jobData returns a payload that satisfies the job schema for state.
func jobData(jobID, state string) events.JobData {
	d := events.JobData{
		JobID: jobID, Owner: "alice", Agent: "imaging", DatasetID: "VLASS2.1.T10t01",
		GPUs: 2, Priority: 5, State: state, Attempt: 1,
	}
	switch state {
	case "RUNNING":
		d.Backend = "simgpu"
	case "FAILED":
		d.Error = "backend lost the node"
	}
	return d
}

func newEvent(t testing.TB, typ events.Type, jobID, state string, seq int64) events.Event {
	t.Helper()
	e, err := events.New(typ, jobID, jobData(jobID, state))
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = seq
	e.CorrelationID = "corr-" + jobID
	return e
}

// withData returns e with its payload replaced by the JSON object m.
func withData(t *testing.T, e events.Event, m map[string]any) events.Event {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	e.Data = raw
	return e
}

// payload returns the job payload of a valid job.queued event as a map, to be
// broken by the caller.
func payload(t *testing.T) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(jobData("job-1", "QUEUED"))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSchemaErrorsNameTheField(t *testing.T) {
	base := newEvent(t, events.JobQueued, "job-1", "QUEUED", 2)
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		want   []string // substrings of the error
	}{
		{"missing owner", func(m map[string]any) { delete(m, "owner") }, []string{"data.owner", "required"}},
		{"gpus is a string", func(m map[string]any) { m["gpus"] = "two" }, []string{"data.gpus", `"two"`, "integer"}},
		{"gpus is fractional", func(m map[string]any) { m["gpus"] = 1.5 }, []string{"data.gpus", "1.5"}},
		{"gpus above maximum", func(m map[string]any) { m["gpus"] = 5000 }, []string{"data.gpus", "5000", "maximum"}},
		{"negative attempt", func(m map[string]any) { m["attempt"] = -1 }, []string{"data.attempt", "-1", "minimum"}},
		{"progress above 100", func(m map[string]any) { m["progress"] = 100.5 }, []string{"data.progress", "100.5"}},
		{"empty agent", func(m map[string]any) { m["agent"] = "" }, []string{"data.agent", "shorter"}},
		{"unknown state", func(m map[string]any) { m["state"] = "PAUSED" }, []string{"data.state", "PAUSED"}},
		{"reason is a number", func(m map[string]any) { m["reason"] = 7 }, []string{"data.reason", "7", "string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := payload(t)
			tc.mutate(m)
			err := events.DefaultCatalogue().Validate(withData(t, base, m))
			if !errors.Is(err, events.ErrInvalidEvent) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSchemaKeywords(t *testing.T) {
	s, err := events.ParseSchema([]byte(`{
		"type": "object", "additionalProperties": false,
		"properties": {
			"tags": {"type": "array", "items": {"type": "string"}},
			"mode": {"enum": ["fast", "slow"]},
			"n": {"type": ["integer", "null"]}
		}}`))
	if err != nil {
		t.Fatal(err)
	}
	valid := []string{`{}`, `{"tags":["a","b"]}`, `{"mode":"fast","n":null}`, `{"n":3}`}
	for _, doc := range valid {
		var v any
		_ = json.Unmarshal([]byte(doc), &v)
		if err := s.Validate(v); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", doc, err)
		}
	}
	invalid := map[string]string{
		`{"tags":["a",3]}`:  "data.tags[1]",
		`{"mode":"medium"}`: "data.mode",
		`{"extra":true}`:    "data.extra",
		`{"n":2.5}`:         "data.n",
		`[1]`:               "data",
	}
	for doc, field := range invalid {
		var v any
		_ = json.Unmarshal([]byte(doc), &v)
		err := s.Validate(v)
		if err == nil || !strings.Contains(err.Error(), "field "+field+" ") {
			t.Errorf("Validate(%s) = %v, want an error naming field %s", doc, err, field)
		}
	}
	if _, err := events.ParseSchema([]byte(`{"type":`)); err == nil {
		t.Error("ParseSchema accepted truncated JSON")
	}
}

func TestCatalogueEveryTypeValid(t *testing.T) {
	states := map[events.Type]string{
		events.JobSubmitted: "SUBMITTED", events.JobQueued: "QUEUED", events.JobRunning: "RUNNING",
		events.JobProgress: "RUNNING", events.JobCompleted: "COMPLETED", events.JobFailed: "FAILED",
		events.JobCancelled: "CANCELLED",
	}
	cat := events.DefaultCatalogue()
	var jobTypes []events.Type
	for _, typ := range cat.Types() {
		if strings.HasPrefix(string(typ), "job.") {
			jobTypes = append(jobTypes, typ)
		}
	}
	if len(jobTypes) != len(states) {
		t.Fatalf("catalogue has %d job types %v, want %d", len(jobTypes), jobTypes, len(states))
	}
	for typ, state := range states {
		e := newEvent(t, typ, "job-7", state, 1)
		if err := cat.Validate(e); err != nil {
			t.Errorf("%s with state %s: %v", typ, state, err)
		}
		if entry, ok := cat.Lookup(typ); !ok || entry.Description == "" {
			t.Errorf("%s: entry %+v, found %v", typ, entry, ok)
		}
	}
}

func TestCataloguePerTypeRules(t *testing.T) {
	cat := events.DefaultCatalogue()
	cases := []struct {
		name string
		ev   func() events.Event
		want string
	}{
		{"completed carries RUNNING", func() events.Event {
			return newEvent(t, events.JobCompleted, "job-1", "RUNNING", 1)
		}, `data.state is "RUNNING", want "COMPLETED"`},
		{"running without backend", func() events.Event {
			e := newEvent(t, events.JobRunning, "job-1", "RUNNING", 1)
			m := payload(t)
			m["state"] = "RUNNING"
			return withData(t, e, m)
		}, "data.backend"},
		{"failed without error", func() events.Event {
			e := newEvent(t, events.JobFailed, "job-1", "FAILED", 1)
			m := payload(t)
			m["state"] = "FAILED"
			return withData(t, e, m)
		}, "data.error"},
		{"job_id differs from subject", func() events.Event {
			e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
			e.Subject = "job-2"
			return e
		}, `data.job_id "job-1" differs from subject "job-2"`},
		{"payload not JSON", func() events.Event {
			e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
			e.Data = json.RawMessage(`{"job_id":`)
			return e
		}, "not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := cat.Validate(tc.ev())
			if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent mentioning %q", err, tc.want)
			}
		})
	}
	e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
	e.Type = "job.paused"
	if err := cat.Validate(e); !errors.Is(err, events.ErrUnknownType) || !strings.Contains(err.Error(), "job.paused") {
		t.Fatalf("unknown type: %v, want ErrUnknownType naming job.paused", err)
	}
}

func TestEnvelopeValidation(t *testing.T) {
	cases := map[string]func(e *events.Event){
		"field id is empty":             func(e *events.Event) { e.ID = "" },
		`field id "not-a-uuid"`:         func(e *events.Event) { e.ID = "not-a-uuid" },
		"field type is empty":           func(e *events.Event) { e.Type = "" },
		"field source is empty":         func(e *events.Event) { e.Source = "" },
		"field subject is empty":        func(e *events.Event) { e.Subject = "" },
		"field time is zero":            func(e *events.Event) { e.Time = time.Time{} },
		"field schema_version is empty": func(e *events.Event) { e.SchemaVersion = "" },
		"field sequence is -3":          func(e *events.Event) { e.Sequence = -3 },
	}
	for want, mutate := range cases {
		e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
		mutate(&e)
		err := e.ValidateEnvelope()
		if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateEnvelope = %v, want ErrInvalidEvent mentioning %q", err, want)
		}
	}
}

func TestNewAndDecode(t *testing.T) {
	e := newEvent(t, events.JobRunning, "job-9", "RUNNING", 3)
	if e.Time.Location() != time.UTC || e.Source != events.DefaultSource || e.SchemaVersion != events.SchemaVersion {
		t.Fatalf("New filled %+v", e)
	}
	var d events.JobData
	if err := e.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if want := jobData("job-9", "RUNNING"); d.JobID != want.JobID || d.Owner != want.Owner || d.Agent != want.Agent ||
		d.DatasetID != want.DatasetID || d.GPUs != want.GPUs || d.Priority != want.Priority || d.State != want.State ||
		d.Attempt != want.Attempt || d.Backend != want.Backend {
		t.Fatalf("Decode = %+v", d)
	}
	var wrong struct{ GPUs string }
	if err := e.Decode(&wrong); !errors.Is(err, events.ErrDecode) {
		t.Fatalf("Decode into a mismatched type = %v, want ErrDecode", err)
	}
	if _, err := events.New(events.JobQueued, "job-1", make(chan int)); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("New with unencodable data = %v, want ErrInvalidEvent", err)
	}
}

func TestJSONCodecRoundTrip(t *testing.T) {
	e := newEvent(t, events.JobRunning, "job-42", "RUNNING", 17)
	// A zone other than UTC must survive the trip.
	e.Time = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("MST", -7*3600))
	var c events.JSONCodec
	msg, err := c.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if msg.UUID != e.ID {
		t.Errorf("message UUID %q, want the event id %q", msg.UUID, e.ID)
	}
	wantMeta := map[string]string{
		events.MetaEventID: e.ID, events.MetaEventType: "job.running", events.MetaSubject: "job-42",
		events.MetaSequence: "17", events.MetaPartitionKey: "job-42", events.MetaCorrelationID: "corr-job-42",
		events.MetaAgent: "imaging", events.MetaDatasetID: "VLASS2.1.T10t01", events.MetaGPUs: "2",
		events.MetaContentType: c.ContentType(), events.MetaJobID: "job-42",
		events.MetaTime: "2026-03-14T15:09:26.535897-07:00",
	}
	for k, v := range wantMeta {
		if got := msg.Metadata.Get(k); got != v {
			t.Errorf("metadata %s = %q, want %q", k, got, v)
		}
	}
	// Through the bytes only, as a transport would carry it.
	wire := message.NewMessage(msg.UUID, append([]byte(nil), msg.Payload...))
	got, err := c.Unmarshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(e.Time) {
		t.Errorf("time %v, want %v", got.Time, e.Time)
	}
	if _, off := got.Time.Zone(); off != -7*3600 {
		t.Errorf("zone offset %d, want %d", off, -7*3600)
	}
	if got.ID != e.ID || got.Type != e.Type || got.Source != e.Source || got.Subject != e.Subject ||
		got.SchemaVersion != e.SchemaVersion || got.CorrelationID != e.CorrelationID || got.Sequence != e.Sequence ||
		string(got.Data) != string(e.Data) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, e)
	}

	for name, body := range map[string]string{"not JSON": "{", "no id": `{"type":"job.queued"}`} {
		if _, err := c.Unmarshal(message.NewMessage("m1", []byte(body))); !errors.Is(err, events.ErrDecode) {
			t.Errorf("%s: Unmarshal = %v, want ErrDecode", name, err)
		}
	}
}

func TestSetMetadataWithoutJobPayload(t *testing.T) {
	e := newEvent(t, events.JobQueued, "job-1", "QUEUED", 1)
	e.Data = json.RawMessage(`{"something":"else"}`)
	e.CorrelationID = ""
	md := message.Metadata{}
	events.SetMetadata(md, e)
	for _, k := range []string{events.MetaAgent, events.MetaDatasetID, events.MetaGPUs, events.MetaCorrelationID, events.MetaJobID} {
		if v, ok := md[k]; ok {
			t.Errorf("metadata %s = %q, want absent", k, v)
		}
	}
	if md.Get(events.MetaSubject) != "job-1" {
		t.Errorf("subject metadata %q", md.Get(events.MetaSubject))
	}
}

// recorder is a watermill Publisher that records what reaches it.
type recorder struct {
	mu     sync.Mutex
	topics []string
	msgs   []*message.Message
	closed int
	block  chan struct{} // when non-nil, Publish waits for it
	// entered, when non-nil, receives a value as Publish starts waiting on
	// block.
	entered chan struct{}
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	if r.block != nil {
		if r.entered != nil {
			r.entered <- struct{}{}
		}
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.topics = append(r.topics, topic)
		r.msgs = append(r.msgs, m)
	}
	return nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed++
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func TestBusRejectsInvalidEventNothingPublished(t *testing.T) {
	rec := &recorder{}
	bus := events.NewBus(rec, nil, nil)
	good := newEvent(t, events.JobSubmitted, "job-1", "SUBMITTED", 1)
	bad := newEvent(t, events.JobQueued, "job-1", "QUEUED", 2)
	m := payload(t)
	m["gpus"] = -4
	bad = withData(t, bad, m)

	err := bus.Publish(context.Background(), events.TopicJobs, good, bad)
	if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "data.gpus") {
		t.Fatalf("Publish = %v, want ErrInvalidEvent naming data.gpus", err)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("%d messages reached the transport, want 0", n)
	}
	if err := bus.Publish(context.Background(), "", good); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("empty topic: %v", err)
	}
	if err := bus.Publish(context.Background(), events.TopicJobs, good); err != nil {
		t.Fatal(err)
	}
	if n := rec.count(); n != 1 || rec.topics[0] != events.TopicJobs || rec.msgs[0].UUID != good.ID {
		t.Fatalf("recorded %d messages %v", n, rec.topics)
	}
}

func TestBusSkipValidationStillChecksEnvelope(t *testing.T) {
	rec := &recorder{}
	bus := events.NewBus(rec, nil, &events.BusConfig{SkipValidation: true})
	e, _ := events.New("custom.thing", "thing-1", map[string]int{"x": 1})
	if err := bus.Publish(context.Background(), "t", e); err != nil {
		t.Fatalf("unknown type with SkipValidation: %v", err)
	}
	e.Subject = ""
	if err := bus.Publish(context.Background(), "t", e); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("empty subject with SkipValidation: %v", err)
	}
	if rec.count() != 1 {
		t.Fatalf("recorded %d, want 1", rec.count())
	}
	strict := events.NewBus(rec, nil, nil)
	e.Subject = "thing-1"
	if err := strict.Publish(context.Background(), "t", e); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("unknown type on a validating bus: %v", err)
	}
}

func TestBusContextCancelled(t *testing.T) {
	rec := &recorder{}
	bus := events.NewBus(rec, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := bus.Publish(ctx, events.TopicJobs, newEvent(t, events.JobSubmitted, "job-1", "SUBMITTED", 1))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled ctx = %v, want context.Canceled", err)
	}
	if rec.count() != 0 {
		t.Fatalf("%d messages published with a cancelled context", rec.count())
	}
}

// chanSub is a watermill Subscriber over one channel.
type chanSub struct {
	ch     chan *message.Message
	closed chan struct{}
	once   sync.Once
}

func newChanSub() *chanSub {
	return &chanSub{ch: make(chan *message.Message, 16), closed: make(chan struct{})}
}

func (s *chanSub) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return s.ch, nil
}

func (s *chanSub) Close() error {
	s.once.Do(func() { close(s.closed); close(s.ch) })
	return nil
}

func TestBusSubscribeDecodesAndStopsOnCancel(t *testing.T) {
	sub := newChanSub()
	bus := events.NewBus(nil, sub, nil)
	ctx, cancel := context.WithCancel(context.Background())
	deliveries, err := bus.Subscribe(ctx, events.TopicJobs)
	if err != nil {
		t.Fatal(err)
	}
	garbage := message.NewMessage("junk", []byte("not an envelope"))
	sub.ch <- garbage
	e := newEvent(t, events.JobQueued, "job-3", "QUEUED", 2)
	msg, _ := events.JSONCodec{}.Marshal(e)
	sub.ch <- msg
	select {
	case d := <-deliveries:
		if d.Event.ID != e.ID || d.Event.Sequence != 2 || d.Message() != msg {
			t.Fatalf("delivery %+v", d.Event)
		}
		d.Ack()
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery")
	}
	select {
	case <-garbage.Acked():
	default:
		t.Fatal("the undecodable message was not acked")
	}
	select {
	case <-msg.Acked():
	default:
		t.Fatal("Delivery.Ack did not ack the message")
	}
	cancel()
	select {
	case _, ok := <-deliveries:
		if ok {
			t.Fatal("delivery after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deliveries not closed after ctx was cancelled")
	}
}

func TestBusClose(t *testing.T) {
	rec := &recorder{}
	sub := newChanSub()
	bus := events.NewBus(rec, sub, nil)
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.closed != 1 {
		t.Fatalf("publisher closed %d times, want 1", rec.closed)
	}
	e := newEvent(t, events.JobSubmitted, "job-1", "SUBMITTED", 1)
	if err := bus.Publish(context.Background(), events.TopicJobs, e); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := bus.Subscribe(context.Background(), events.TopicJobs); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestBusCloseDoesNotWaitForBlockedPublish(t *testing.T) {
	rec := &recorder{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	bus := events.NewBus(rec, nil, nil)
	done := make(chan error, 1)
	go func() {
		done <- bus.Publish(context.Background(), events.TopicJobs, newEvent(t, events.JobSubmitted, "job-1", "SUBMITTED", 1))
	}()
	// Close only once the Publish is in flight, blocked in the transport.
	<-rec.entered
	closed := make(chan error, 1)
	go func() { closed <- bus.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a blocked Publish")
	}
	close(rec.block)
	if err := <-done; err != nil {
		t.Fatalf("the in-flight Publish: %v", err)
	}
}

// Publish encodes validated JSON events on a fast path; its messages must
// match JSONCodec.Marshal's, byte for byte when the payload is compact.
func TestBusFastPathMatchesCodec(t *testing.T) {
	mk := func(mutate func(e *events.Event)) events.Event {
		e := newEvent(t, events.JobRunning, "job-1", "RUNNING", 12)
		mutate(&e)
		return e
	}
	cases := map[string]events.Event{
		"plain": mk(func(e *events.Event) {}),
		"zone and nanoseconds": mk(func(e *events.Event) {
			e.Time = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", -(3*3600+1800)))
		}),
		"escapes": mk(func(e *events.Event) {
			e.CorrelationID = "say \"hi\" \\ <b>&</b>\n\tdone"
			e.Source = "sürvey/Ωmega"
		}),
		"unicode subject": mk(func(e *events.Event) {
			e.Subject = "jöb-ü"
			d := jobData("jöb-ü", "RUNNING")
			e.Data, _ = json.Marshal(d)
		}),
		"no correlation id": mk(func(e *events.Event) { e.CorrelationID = "" }),
		"payload with spaces": mk(func(e *events.Event) {
			e.Data = json.RawMessage(`{ "job_id": "job-1", "owner": "alice", "agent": "imaging", "dataset_id": "d",
				"gpus": 4, "priority": 0, "state": "RUNNING", "progress": 0, "attempt": 1, "backend": "simgpu" }`)
		}),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			if err := events.NewBus(rec, nil, nil).Publish(context.Background(), "t", e); err != nil {
				t.Fatal(err)
			}
			fast := rec.msgs[0]
			slow, err := events.JSONCodec{}.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(fast.Metadata) != fmt.Sprint(slow.Metadata) {
				t.Errorf("metadata\nfast %v\nslow %v", fast.Metadata, slow.Metadata)
			}
			if name != "payload with spaces" && string(fast.Payload) != string(slow.Payload) {
				t.Errorf("payload\nfast %s\nslow %s", fast.Payload, slow.Payload)
			}
			a, errA := events.JSONCodec{}.Unmarshal(fast)
			b, errB := events.JSONCodec{}.Unmarshal(slow)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}
			var da, db any
			_ = json.Unmarshal(a.Data, &da)
			_ = json.Unmarshal(b.Data, &db)
			a.Data, b.Data = nil, nil
			if !a.Time.Equal(b.Time) || a.Time.String() != b.Time.String() {
				t.Errorf("time fast %v slow %v", a.Time, b.Time)
			}
			a.Time, b.Time = time.Time{}, time.Time{}
			if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(da) != fmt.Sprint(db) {
				t.Errorf("decoded\nfast %+v %v\nslow %+v %v", a, da, b, db)
			}
		})
	}
}

func TestCatalogueWorkflowTypes(t *testing.T) {
	cat := events.DefaultCatalogue()
	mk := func(typ events.Type, d events.WorkflowData) events.Event {
		e, err := events.New(typ, "run-1", d)
		if err != nil {
			t.Fatal(err)
		}
		e.CorrelationID = "corr-1"
		e.Sequence = 1
		return e
	}
	base := events.WorkflowData{RunID: "run-1", Workflow: "vlass-pipeline", Version: 1, Owner: "u1", State: "RUNNING"}
	good := map[events.Type]events.WorkflowData{}
	good[events.WorkflowSubmitted] = base
	s := base
	s.Step, s.StepState, s.StepJobID = "imaging", "RUNNING", "job-9"
	good[events.WorkflowStepStarted] = s
	s.StepState = "COMPLETED"
	good[events.WorkflowStepCompleted] = s
	c := base
	c.State = "COMPLETED"
	good[events.WorkflowCompleted] = c
	f := base
	f.State, f.Error = "FAILED", "step imaging failed"
	good[events.WorkflowFailed] = f
	x := base
	x.State = "CANCELLED"
	good[events.WorkflowCancelled] = x
	for typ, d := range good {
		if err := cat.Validate(mk(typ, d)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if len(good) != 6 {
		t.Fatalf("checked %d workflow types, want 6", len(good))
	}
	noErr := base
	noErr.State = "FAILED"
	if err := cat.Validate(mk(events.WorkflowFailed, noErr)); !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "data.error") {
		t.Errorf("workflow.failed without error: %v, want ErrInvalidEvent naming data.error", err)
	}
	bad := base
	bad.State = "PAUSED"
	if err := cat.Validate(mk(events.WorkflowSubmitted, bad)); !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "PAUSED") {
		t.Errorf("state PAUSED: %v, want ErrInvalidEvent naming PAUSED", err)
	}
	noStep := base
	if err := cat.Validate(mk(events.WorkflowStepStarted, noStep)); !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "data.step") {
		t.Errorf("step_started without step: %v, want ErrInvalidEvent naming data.step", err)
	}
}
