package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Metadata keys written on every transport message. Transports that support
// headers (Kafka, AMQP) carry them as headers, so brokers and tools can route
// and filter without decoding the payload.
const (
	MetaEventID   = "event_id"
	MetaEventType = "event_type"
	MetaSubject   = "subject"
	// MetaJobID is the job id of a job event (equal to the subject).
	MetaJobID = "job_id"
	// MetaTime is the event time in RFC 3339 with nanoseconds and its zone.
	MetaTime          = "time"
	MetaSequence      = "sequence"
	MetaCorrelationID = "correlation_id" // equal to watermill's middleware.CorrelationIDMetadataKey
	MetaAgent         = "agent"
	MetaDatasetID     = "dataset_id"
	MetaGPUs          = "gpus"
	// MetaPartitionKey is the key partitioned transports (Kafka) use: the
	// subject, so that one job's events stay in order.
	MetaPartitionKey = "partition_key"
	// MetaContentType names the codec of the payload.
	MetaContentType = "content_type"
)

// Codec turns an Event into a watermill message and back.
type Codec interface {
	// Marshal encodes e.
	Marshal(e Event) (*message.Message, error)
	// Unmarshal decodes a message produced by Marshal.
	Unmarshal(msg *message.Message) (Event, error)
	// ContentType names the encoding, e.g. "application/json".
	ContentType() string
}

// JSONCodec encodes the whole envelope as JSON in the payload and copies the
// routing fields into the metadata. It is the default codec.
type JSONCodec struct{}

// ContentType returns "application/cloudevents+json".
func (JSONCodec) ContentType() string { return "application/cloudevents+json" }

// Marshal implements Codec.
func (c JSONCodec) Marshal(e Event) (*message.Message, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: encode event %s: %v", ErrInvalidEvent, e.ID, err)
	}
	msg := message.NewMessage(e.ID, payload)
	SetMetadata(msg.Metadata, e)
	msg.Metadata.Set(MetaContentType, c.ContentType())
	return msg, nil
}

// Unmarshal implements Codec.
func (JSONCodec) Unmarshal(msg *message.Message) (Event, error) {
	var e Event
	if err := json.Unmarshal(msg.Payload, &e); err != nil {
		return Event{}, fmt.Errorf("%w: message %s: %v", ErrDecode, msg.UUID, err)
	}
	if e.ID == "" {
		return Event{}, fmt.Errorf("%w: message %s: envelope has no id", ErrDecode, msg.UUID)
	}
	return e, nil
}

// SetMetadata writes the routing metadata of e into md: event id, type,
// subject, sequence, partition key, time (RFC 3339 with zone) and correlation
// id. The job id, agent, dataset and GPU headers are taken from a JobData
// payload when present.
func SetMetadata(md message.Metadata, e Event) {
	setEnvelopeMetadata(md, e)
	var jd struct {
		JobID     string `json:"job_id"`
		Agent     string `json:"agent"`
		DatasetID string `json:"dataset_id"`
		GPUs      *int   `json:"gpus"`
	}
	if json.Unmarshal(e.Data, &jd) == nil {
		gpus := ""
		if jd.GPUs != nil {
			gpus = strconv.Itoa(*jd.GPUs)
		}
		setPayloadMetadata(md, jd.JobID, jd.Agent, jd.DatasetID, gpus)
	}
}

func setEnvelopeMetadata(md message.Metadata, e Event) {
	md.Set(MetaEventID, e.ID)
	md.Set(MetaEventType, string(e.Type))
	md.Set(MetaSubject, e.Subject)
	md.Set(MetaSequence, strconv.FormatInt(e.Sequence, 10))
	md.Set(MetaPartitionKey, e.Subject)
	if !e.Time.IsZero() {
		md.Set(MetaTime, e.Time.Format(time.RFC3339Nano))
	}
	if e.CorrelationID != "" {
		md.Set(MetaCorrelationID, e.CorrelationID)
	}
}

func setPayloadMetadata(md message.Metadata, jobID, agent, datasetID, gpus string) {
	if jobID != "" {
		md.Set(MetaJobID, jobID)
	}
	if agent != "" {
		md.Set(MetaAgent, agent)
	}
	if datasetID != "" {
		md.Set(MetaDatasetID, datasetID)
	}
	if gpus != "" {
		md.Set(MetaGPUs, gpus)
	}
}

// marshalValidated is Marshal for an event the catalogue has validated: its
// Data is known to be JSON and obj is that payload decoded (nil when it is not
// an object). It writes the envelope directly and takes the headers from obj,
// instead of decoding the payload a second time. The result is the same
// message Marshal returns.
func (c JSONCodec) marshalValidated(e Event, obj map[string]any) (*message.Message, error) {
	if y := e.Time.Year(); y < 0 || y > 9999 || len(e.Data) == 0 {
		return c.Marshal(e) // let encoding/json report or handle it
	}
	buf := make([]byte, 0, 200+len(e.ID)+len(e.Subject)+len(e.CorrelationID)+len(e.Data))
	buf = append(buf, `{"id":`...)
	buf = appendJSONString(buf, e.ID)
	buf = append(buf, `,"type":`...)
	buf = appendJSONString(buf, string(e.Type))
	buf = append(buf, `,"source":`...)
	buf = appendJSONString(buf, e.Source)
	buf = append(buf, `,"subject":`...)
	buf = appendJSONString(buf, e.Subject)
	buf = append(buf, `,"time":"`...)
	buf = e.Time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","schema_version":`...)
	buf = appendJSONString(buf, e.SchemaVersion)
	buf = append(buf, `,"correlation_id":`...)
	buf = appendJSONString(buf, e.CorrelationID)
	buf = append(buf, `,"sequence":`...)
	buf = strconv.AppendInt(buf, e.Sequence, 10)
	buf = append(buf, `,"data":`...)
	buf = append(buf, e.Data...)
	buf = append(buf, '}')

	msg := message.NewMessage(e.ID, buf)
	setEnvelopeMetadata(msg.Metadata, e)
	if obj != nil {
		str := func(k string) string { s, _ := obj[k].(string); return s }
		gpus := ""
		if g, ok := obj["gpus"].(float64); ok && g == float64(int(g)) {
			gpus = strconv.Itoa(int(g))
		}
		setPayloadMetadata(msg.Metadata, str("job_id"), str("agent"), str("dataset_id"), gpus)
	}
	msg.Metadata.Set(MetaContentType, c.ContentType())
	return msg, nil
}

// appendJSONString appends s as a JSON string. Plain ASCII is copied as is;
// anything else goes through encoding/json, so the bytes equal json.Marshal's.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
