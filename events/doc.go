// Package events defines the Cosmic Horizons event envelope, the catalogue of
// lifecycle event types and their payload schemas, the JSON codec that maps an
// [Event] onto a watermill message, and [Bus], the context-aware publisher and
// subscriber every other package uses.
//
// # Envelope
//
// Every event is a CloudEvents-style [Event]: a UUID id, a dotted type such as
// "job.completed", the source that emitted it, the subject (the job id), the
// time with its zone, a schema version, the correlation id shared by every
// event of one request, a per-job sequence number that strictly increases, and
// a typed payload in Data.
//
// # Transports
//
// A transport is any watermill [message.Publisher] and [message.Subscriber]
// pair. The in-memory transport lives in events/membus and is the embedded
// default; production transports (Kafka, RabbitMQ, SQL) live in their own
// subpackages so that their client libraries are compiled into a binary only
// when it imports them. Every transport passes the conformance suite in
// events/bustest.
//
// # Codecs
//
// [JSONCodec], the default, carries the whole envelope as JSON. The Avro
// codec in events/avrocodec (github.com/hamba/avro/v2) is the compact
// alternative, with schema resolution so that consumers read the previous
// schema version. Either way the routing fields (event id and type, subject,
// job id, time, sequence, correlation id, agent, dataset id, GPU count) are
// also written as transport headers ([SetMetadata]).
//
// # Validation
//
// [Bus.Publish] validates each payload against the [Catalogue] before it is
// encoded: an invalid event is returned to the caller as an error wrapping
// [ErrInvalidEvent] and never reaches the wire.
//
// # Consumers
//
// [NewRouter] returns a watermill Router with the standard middleware:
// correlation id propagation, a dead-letter topic that records the failure
// reason, origin and attempt count, retry with exponential backoff and
// jitter, a per-attempt timeout and panic recovery. A [HandlerFunc] receives
// the decoded [Event]; its Watermill method adapts it to the router.
//
// # Delivery
//
// Delivery is at least once. Consumers de-duplicate by [Event.ID]; the
// [Deduplicator] helper does that for a bounded window. [ParseDeadLetter]
// and [DeadLetter.Replay] inspect and re-deliver what the router gave up on;
// [ReplayJob] re-delivers a job's history from the store in sequence order.
//
// # Subpackages
//
//   - events/membus: in-memory transport (watermill GoChannel), the default;
//   - events/kafkabus: Kafka transport (watermill-kafka, sarama);
//   - events/amqpbus: RabbitMQ transport (watermill-amqp);
//   - events/sqlbus: PostgreSQL and SQLite transport (watermill-sql);
//   - events/bustest: the conformance suite, the kill-a-consumer test and
//     the throughput benchmark every transport runs;
//   - events/avrocodec: the Avro codec;
//   - events/audit (and audit/sqlaudit): the compliance audit hash chain;
//   - events/jobmetrics: the Prometheus metrics consumer;
//   - events/notify: the notifications consumer (fan-out to a Notifier);
//   - events/health: the system health consumer (system.health events,
//     readiness);
//   - events/deadletters: the dead-letter store (list, inspect, replay).
package events
