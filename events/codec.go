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
	var jd struct {
		JobID     string `json:"job_id"`
		Agent     string `json:"agent"`
		DatasetID string `json:"dataset_id"`
		GPUs      *int   `json:"gpus"`
	}
	if json.Unmarshal(e.Data, &jd) == nil {
		if jd.JobID != "" {
			md.Set(MetaJobID, jd.JobID)
		}
		if jd.Agent != "" {
			md.Set(MetaAgent, jd.Agent)
		}
		if jd.DatasetID != "" {
			md.Set(MetaDatasetID, jd.DatasetID)
		}
		if jd.GPUs != nil {
			md.Set(MetaGPUs, strconv.Itoa(*jd.GPUs))
		}
	}
}
