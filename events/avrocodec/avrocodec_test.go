package avrocodec_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/hamba/avro/v2"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/avrocodec"
	"github.com/cosmic-horizons/horizons/events/bustest"
	"github.com/cosmic-horizons/horizons/events/membus"
)

func newCodec(t *testing.T) *avrocodec.Codec {
	t.Helper()
	c, err := avrocodec.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripEveryJobType(t *testing.T) {
	c := newCodec(t)
	for _, typ := range []events.Type{events.JobSubmitted, events.JobQueued, events.JobRunning,
		events.JobProgress, events.JobCompleted, events.JobFailed, events.JobCancelled} {
		e := bustest.JobEvent(t, typ, "job-"+string(typ), 7)
		e.Time = time.Date(2026, 5, 4, 3, 2, 1, 987654321, time.FixedZone("", -4*3600))
		if typ == events.JobCompleted {
			var d events.JobData
			_ = json.Unmarshal(e.Data, &d)
			d.Result = json.RawMessage(`{"image":"s3://bucket/img.fits","rms_ujy":61.5}`)
			d.WorkflowID = "wf-1"
			e.Data, _ = json.Marshal(d)
		}
		msg, err := c.Marshal(e)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if msg.Metadata.Get(events.MetaContentType) != avrocodec.ContentType ||
			msg.Metadata.Get(avrocodec.MetaWriterSchema) != events.SchemaVersion ||
			msg.Metadata.Get(events.MetaAgent) != "anomaly-detection" {
			t.Errorf("%s: metadata %v", typ, msg.Metadata)
		}
		if json.Valid(msg.Payload) {
			t.Errorf("%s: payload is JSON, want Avro binary", typ)
		}
		wire := message.NewMessage(msg.UUID, append([]byte(nil), msg.Payload...))
		for k, v := range msg.Metadata {
			wire.Metadata.Set(k, v)
		}
		got, err := c.Unmarshal(wire)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got.ID != e.ID || got.Type != e.Type || got.Source != e.Source || got.Subject != e.Subject ||
			got.SchemaVersion != e.SchemaVersion || got.CorrelationID != e.CorrelationID || got.Sequence != e.Sequence {
			t.Errorf("%s: envelope\n got %+v\nwant %+v", typ, got, e)
		}
		if !got.Time.Equal(e.Time) || got.Time.Format(time.RFC3339Nano) != e.Time.Format(time.RFC3339Nano) {
			t.Errorf("%s: time %v, want %v", typ, got.Time, e.Time)
		}
		var want, have map[string]any
		_ = json.Unmarshal(e.Data, &want)
		_ = json.Unmarshal(got.Data, &have)
		wj, _ := json.Marshal(want)
		hj, _ := json.Marshal(have)
		if string(wj) != string(hj) {
			t.Errorf("%s: data\n got %s\nwant %s", typ, hj, wj)
		}
	}
}

func TestRejects(t *testing.T) {
	c := newCodec(t)
	e := bustest.JobEvent(t, events.JobQueued, "job-1", 1)
	other := e
	other.Type = "workflow.started"
	if _, err := c.Marshal(other); !errors.Is(err, events.ErrUnknownType) {
		t.Errorf("non-job type: %v, want ErrUnknownType", err)
	}
	bad := e
	bad.Data = json.RawMessage(`{"job_id":"job-1","state":"PAUSED"}`)
	if _, err := c.Marshal(bad); !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "PAUSED") {
		t.Errorf("state outside the enum: %v, want ErrInvalidEvent naming PAUSED", err)
	}
	if _, err := c.Unmarshal(message.NewMessage("m", []byte{0xff, 0xff, 0x01})); !errors.Is(err, events.ErrDecode) {
		t.Errorf("garbage: %v, want ErrDecode", err)
	}
	msg, _ := c.Marshal(e)
	msg.Metadata.Set(avrocodec.MetaWriterSchema, "7.3")
	if _, err := c.Unmarshal(msg); !errors.Is(err, events.ErrDecode) || !strings.Contains(err.Error(), `"7.3"`) {
		t.Errorf("unknown writer schema: %v, want ErrDecode naming 7.3", err)
	}
	if err := c.Register("x", []byte(`{"type":"record","name":"JobEvent","fields":[{"name":"id","type":"int"}]}`)); err == nil {
		t.Error("Register accepted a schema whose id is an int")
	}
}

// oldRecord is what a producer on the previous schema wrote.
type oldRecord struct {
	ID            string  `avro:"id"`
	Type          string  `avro:"type"`
	Source        string  `avro:"source"`
	Subject       string  `avro:"subject"`
	Time          string  `avro:"time"`
	SchemaVersion string  `avro:"schema_version"`
	Sequence      int64   `avro:"sequence"`
	Data          oldData `avro:"data"`
}

type oldData struct {
	JobID     string  `avro:"job_id"`
	Owner     string  `avro:"owner"`
	Agent     string  `avro:"agent"`
	DatasetID string  `avro:"dataset_id"`
	GPUs      int     `avro:"gpus"`
	Priority  int     `avro:"priority"`
	State     string  `avro:"state"`
	Progress  float64 `avro:"progress"`
	Attempt   int     `avro:"attempt"`
	Backend   string  `avro:"backend"`
	Error     string  `avro:"error"`
}

func TestReadsPreviousSchemaVersion(t *testing.T) {
	raw, err := os.ReadFile("testdata/job-0.9.avsc")
	if err != nil {
		t.Fatal(err)
	}
	old := avro.MustParse(string(raw))
	payload, err := avro.Marshal(old, oldRecord{
		ID: "0b0e8b7e-2f7c-4a43-9f57-3c1c8d0e6a11", Type: "job.failed", Source: "horizons", Subject: "job-old",
		Time: "2025-12-31T23:00:00+01:00", SchemaVersion: "0.9", Sequence: 5,
		Data: oldData{JobID: "job-old", Owner: "eve", Agent: "imaging", DatasetID: "VLASS1.1", GPUs: 8,
			State: "FAILED", Progress: 40, Attempt: 2, Backend: "slurm", Error: "node lost"},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := message.NewMessage("m-old", payload)
	msg.Metadata.Set(avrocodec.MetaWriterSchema, "0.9")

	c := newCodec(t)
	if _, err := c.Unmarshal(msg); !errors.Is(err, events.ErrDecode) {
		t.Fatalf("before Register: %v, want ErrDecode", err)
	}
	if err := c.Register("0.9", raw); err != nil {
		t.Fatal(err)
	}
	e, err := c.Unmarshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var d events.JobData
	if err := e.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if e.Subject != "job-old" || e.Sequence != 5 || e.CorrelationID != "" || e.SchemaVersion != "0.9" ||
		d.State != "FAILED" || d.GPUs != 8 || d.Error != "node lost" || d.Backend != "slurm" || d.WorkflowID != "" || d.Result != nil {
		t.Fatalf("decoded %+v %+v", e, d)
	}
	if _, off := e.Time.Zone(); off != 3600 {
		t.Errorf("zone offset %d, want 3600", off)
	}
}

func TestConformanceWithAvro(t *testing.T) {
	c := newCodec(t)
	bustest.Run(t, bustest.Harness{
		New: func(t *testing.T) (message.Publisher, message.Subscriber) {
			tr := membus.New(nil)
			return tr, tr
		},
		Codec:         c,
		SkipWatermill: true, // the transport's own suite does not depend on the codec
	})
}

func TestBusRefusesInvalidBeforeAvro(t *testing.T) {
	bus := membus.NewBus(&membus.Config{Bus: &events.BusConfig{Codec: newCodec(t)}})
	defer bus.Close()
	e := bustest.JobEvent(t, events.JobQueued, "job-1", 1)
	e.Data = json.RawMessage(`{"job_id":"job-1"}`)
	if err := bus.Publish(context.Background(), "t", e); !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "data.owner") {
		t.Fatalf("Publish = %v, want ErrInvalidEvent naming data.owner", err)
	}
}

func TestRoundTripEveryWorkflowType(t *testing.T) {
	c := newCodec(t)
	cat := events.DefaultCatalogue()
	states := map[events.Type]string{
		events.WorkflowSubmitted: "RUNNING", events.WorkflowStepStarted: "RUNNING", events.WorkflowStepCompleted: "RUNNING",
		events.WorkflowCompleted: "COMPLETED", events.WorkflowFailed: "FAILED", events.WorkflowCancelled: "CANCELLED",
	}
	for typ, state := range states {
		d := events.WorkflowData{RunID: "run-1", Workflow: "vlass-pipeline", Version: 2, Owner: "alice", State: state}
		switch typ {
		case events.WorkflowStepStarted:
			d.Step, d.StepState, d.StepJobID = "image", "RUNNING", "job-9"
		case events.WorkflowStepCompleted:
			d.Step, d.StepState, d.StepJobID = "image", "COMPLETED", "job-9"
			d.Outputs = json.RawMessage(`{"image":"vlass/T01"}`)
		case events.WorkflowFailed:
			d.Error = "step image failed"
		case events.WorkflowCancelled:
			d.Reason = "cancelled by alice"
		}
		e, err := events.New(typ, "run-1", d)
		if err != nil {
			t.Fatal(err)
		}
		e.CorrelationID, e.Sequence = "corr-wf", 3
		e.Time = time.Date(2026, 5, 4, 3, 2, 1, 5, time.FixedZone("", 2*3600))
		if err := cat.Validate(e); err != nil {
			t.Fatalf("%s: test event invalid: %v", typ, err)
		}
		msg, err := c.Marshal(e)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if msg.Metadata.Get(avrocodec.MetaWriterSchema) != "workflow-"+events.SchemaVersion || json.Valid(msg.Payload) {
			t.Errorf("%s: writer schema %q", typ, msg.Metadata.Get(avrocodec.MetaWriterSchema))
		}
		wire := message.NewMessage(msg.UUID, append([]byte(nil), msg.Payload...))
		for k, v := range msg.Metadata {
			wire.Metadata.Set(k, v)
		}
		got, err := c.Unmarshal(wire)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got.ID != e.ID || got.Type != e.Type || got.Subject != "run-1" || got.CorrelationID != "corr-wf" || got.Sequence != 3 || !got.Time.Equal(e.Time) {
			t.Errorf("%s: envelope %+v", typ, got)
		}
		var want, have map[string]any
		_ = json.Unmarshal(e.Data, &want)
		_ = json.Unmarshal(got.Data, &have)
		wj, _ := json.Marshal(want)
		hj, _ := json.Marshal(have)
		if string(wj) != string(hj) {
			t.Errorf("%s: data\n got %s\nwant %s", typ, hj, wj)
		}
	}
	bad := message.NewMessage("m", []byte{0})
	bad.Metadata.Set(avrocodec.MetaWriterSchema, "workflow-0.1")
	if _, err := c.Unmarshal(bad); !errors.Is(err, events.ErrDecode) || !strings.Contains(err.Error(), "workflow-0.1") {
		t.Errorf("unknown workflow writer schema: %v", err)
	}
}
