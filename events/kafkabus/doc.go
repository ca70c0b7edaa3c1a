// Package kafkabus is the Kafka event transport of Cosmic Horizons, built on
// watermill-kafka v3 and the IBM sarama client.
//
// # Ordering and partitions
//
// Every message is keyed by its job id (the [events.MetaPartitionKey]
// metadata, which [events.JSONCodec] sets to the event subject), so all events
// of one job land on one partition and are consumed in the order they were
// produced, as long as one goroutine publishes a given job's events (the
// orchestrator's outbox does). A nacked message is redelivered in place after
// Config.NackResendSleep; its partition waits meanwhile, so order holds.
//
// # Consumer groups
//
// Subscribers join Config.ConsumerGroup (default "horizons"): the members of a
// group share a topic's partitions, and a restarted member resumes from the
// group's committed offsets. A group seen for the first time starts at the
// oldest retained message unless Config.StartFromNewest is set. Delivery is at
// least once: a rebalance or a restart can deliver again the messages that
// were acknowledged but not yet committed, so consumers de-duplicate by event
// id ([events.Deduplicator]).
//
// # Protocol version
//
// The default protocol version is Kafka 3.6 (Config.Version). Kafka 4.0
// brokers refuse the protocol versions before 2.1 that watermill's default
// (1.0) would use. Sarama must be v1.61.1 or newer: older releases fail to
// decode the flexible OffsetFetch responses of brokers above 2.3 and the
// consumer group never starts.
//
// # Tests
//
// The package's tests run the events/bustest conformance suite, a rebalance
// with two consumers in one group and a restart that resumes from committed
// offsets against an in-process Kafka-protocol broker
// (github.com/twmb/franz-go/pkg/kfake), so they need no Kafka installation.
package kafkabus
