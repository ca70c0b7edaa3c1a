// Package membus is the in-memory event transport, the embedded default of
// Cosmic Horizons: a watermill GoChannel configured so that each job's events
// arrive in the order they were published, with a bounded wait for slow
// subscribers.
//
// # Ordering
//
// GoChannel's default configuration hands every message to subscribers from
// its own goroutine, which scrambles order (measured: about 195k of 200k
// messages out of per-key order). Only BlockPublishUntilSubscriberAck keeps
// order, so membus always sets it: Publish returns once every subscriber of
// the topic has acknowledged the message, and a topic carries one message at a
// time. On top of that, membus queues publishes per topic in arrival order, so
// the order holds even when a caller gives up waiting (see below).
//
// # Slow and stuck subscribers
//
// Because Publish waits for the acknowledgement, a subscriber that holds a
// message without acking it blocks every publisher of that topic. Publish
// therefore waits at most [Config.PublishTimeout] (default 30 s) and honours
// the context of the message ([events.Bus.Publish] sets it), returning an
// error wrapping [ErrPublishTimeout] or the context error. The message is not
// withdrawn: it stays in the topic's queue and is delivered in its place once
// the subscribers catch up (or dropped if the Transport closes first). A
// caller that retries after such an error may therefore cause a duplicate,
// which is fine: delivery is at least once and consumers de-duplicate by
// event id. At most [Config.MaxPending] messages per topic wait like this;
// beyond that Publish fails at once with [ErrQueueFull].
//
// # Limits
//
// Every subscriber receives every message (there are no consumer groups), and
// a message published to a topic with no subscriber is dropped, unless
// [Config.Persistent] keeps every message in memory and replays the backlog to
// each new subscriber. Replay order is not guaranteed (GoChannel replays each
// stored message from its own goroutine); live delivery keeps order.
package membus
