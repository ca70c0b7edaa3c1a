// Package bustest is the conformance suite every Cosmic Horizons event
// transport passes unchanged: watermill's universal Pub/Sub suite
// (github.com/ThreeDotsLabs/watermill/pubsub/tests), run with the features the
// transport declares, plus the checks the SDK relies on through an
// [events.Bus]:
//
//   - Envelope: every envelope field survives the trip, including the time
//     zone, correlation id and sequence, and the routing headers (event type,
//     subject, job id, time, sequence, correlation id, agent, dataset id, GPU
//     count) are on the transport message;
//   - PerJobOrder: events of many jobs, published interleaved by several
//     publishers (one per job, as the outbox does), arrive in sequence order
//     for every job, none lost and none doubled;
//   - Redelivery: a nacked event is delivered again, then the stream goes on;
//   - InvalidRejected: an event that fails validation is an error to the
//     caller and never reaches the transport;
//   - Close: after Close, Publish and Subscribe fail with events.ErrClosed
//     and open subscriptions end.
//
// A transport's test calls [Run] with a [Harness]:
//
//	func TestConformance(t *testing.T) {
//		bustest.Run(t, bustest.Harness{
//			New: func(t *testing.T) (message.Publisher, message.Subscriber) {
//				tr := membus.New(nil)
//				return tr, tr
//			},
//			Features: tests.Features{RequireSingleInstance: true},
//		})
//	}
//
// Harness.Codec runs the SDK checks with another codec (events/avrocodec
// does). [Bench] measures a transport's throughput through the SDK against
// raw watermill on the same transport, for the side-by-side ratio.
package bustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/google/uuid"

	"github.com/cosmic-horizons/horizons/events"
)

// Constructor returns a publisher and a subscriber that share one broker.
// The suite closes both.
type Constructor func(t *testing.T) (message.Publisher, message.Subscriber)

// Harness describes the transport under test.
type Harness struct {
	// New returns a fresh publisher and subscriber sharing one broker, used
	// by the SDK checks. A subscription made with it must receive every
	// message published after Subscribe returns. Required.
	New Constructor
	// Watermill is the constructor for watermill's universal suite; nil
	// means New. Transports that drop messages published before anyone
	// subscribed (membus) pass a persistent configuration here, since that
	// suite publishes first and subscribes after.
	Watermill Constructor
	// ConsumerGroup returns a pair whose subscriber joins consumer group
	// group; nil when the transport has no consumer groups.
	ConsumerGroup func(t *testing.T, group string) (message.Publisher, message.Subscriber)
	// Features are the capabilities declared to watermill's suite. Set
	// ForceShort to run its small message counts.
	Features tests.Features
	// SkipWatermill skips watermill's suite (for a quick run of the SDK
	// checks only); a transport's conformance test leaves it false.
	SkipWatermill bool
	// SkipWatermillTests names tests of watermill's suite (such as
	// "TestTopic") that the transport cannot pass, each with the reason in
	// the map value; they are reported as skipped with that reason. Keep it
	// empty unless the limitation is documented on the transport.
	SkipWatermillTests map[string]string
	// Topic returns a fresh topic name; nil means "bustest_" plus a UUID.
	Topic func(t *testing.T) string
	// Timeout bounds each wait for a delivery; zero means 30 s.
	Timeout time.Duration
	// Jobs and EventsPerJob size the ordering check; zero means 12 jobs of
	// 8 events.
	Jobs, EventsPerJob int
	// Codec is the codec of the buses the SDK checks use; nil means
	// events.JSONCodec.
	Codec events.Codec
}

func (h *Harness) topic(t *testing.T) string {
	if h.Topic != nil {
		return h.Topic(t)
	}
	return "bustest_" + uuid.NewString()
}

func (h *Harness) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 30 * time.Second
}

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("bustest: Harness.New is nil")
	}
	t.Run("Envelope", func(t *testing.T) { testEnvelope(t, &h) })
	t.Run("PerJobOrder", func(t *testing.T) { testPerJobOrder(t, &h) })
	t.Run("Redelivery", func(t *testing.T) { testRedelivery(t, &h) })
	t.Run("InvalidRejected", func(t *testing.T) { testInvalidRejected(t, &h) })
	t.Run("Close", func(t *testing.T) { testClose(t, &h) })
	if !h.SkipWatermill {
		t.Run("Watermill", func(t *testing.T) {
			c := h.Watermill
			if c == nil {
				c = h.New
			}
			var cg tests.ConsumerGroupPubSubConstructor
			if h.ConsumerGroup != nil {
				cg = h.ConsumerGroup
			}
			if len(h.SkipWatermillTests) == 0 {
				tests.TestPubSub(t, h.Features, tests.PubSubConstructor(c), cg)
				return
			}
			runWatermill(t, &h, tests.PubSubConstructor(c), cg)
		})
	}
}

// runWatermill runs watermill's suite test by test, as tests.TestPubSub
// does, leaving out h.SkipWatermillTests.
func runWatermill(t *testing.T, h *Harness, c tests.PubSubConstructor, cg tests.ConsumerGroupPubSubConstructor) {
	all := []struct {
		name        string
		fn          func(*testing.T, tests.TestContext, tests.PubSubConstructor)
		notParallel bool
	}{
		{"TestPublishSubscribe", tests.TestPublishSubscribe, false},
		{"TestConcurrentSubscribe", tests.TestConcurrentSubscribe, false},
		{"TestConcurrentSubscribeMultipleTopics", tests.TestConcurrentSubscribeMultipleTopics, false},
		{"TestResendOnError", tests.TestResendOnError, false},
		{"TestNoAck", tests.TestNoAck, false},
		{"TestContinueAfterSubscribeClose", tests.TestContinueAfterSubscribeClose, false},
		{"TestConcurrentClose", tests.TestConcurrentClose, false},
		{"TestContinueAfterErrors", tests.TestContinueAfterErrors, false},
		{"TestPublishSubscribeInOrder", tests.TestPublishSubscribeInOrder, false},
		{"TestPublisherClose", tests.TestPublisherClose, false},
		{"TestTopic", tests.TestTopic, false},
		{"TestMessageCtx", tests.TestMessageCtx, false},
		{"TestSubscribeCtx", tests.TestSubscribeCtx, false},
		{"TestNewSubscriberReceivesOldMessages", tests.TestNewSubscriberReceivesOldMessages, false},
		{"TestReconnect", tests.TestReconnect, true},
	}
	run := func(name string, parallel bool, fn func(t *testing.T, tc tests.TestContext)) {
		t.Run(name, func(t *testing.T) {
			if reason, skip := h.SkipWatermillTests[name]; skip {
				t.Skip(reason)
			}
			if parallel {
				t.Parallel()
			}
			id := tests.NewTestID()
			t.Run(string(id), func(t *testing.T) { fn(t, tests.TestContext{TestID: id, Features: h.Features}) })
		})
	}
	for _, tc := range all {
		run(tc.name, !tc.notParallel, func(t *testing.T, ctx tests.TestContext) { tc.fn(t, ctx, c) })
	}
	run("TestConsumerGroups", true, func(t *testing.T, ctx tests.TestContext) { tests.TestConsumerGroups(t, ctx, cg) })
}

// countingPublisher counts the messages that reach the transport.
type countingPublisher struct {
	message.Publisher
	n atomic.Int64
}

func (p *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.n.Add(int64(len(msgs)))
	return p.Publisher.Publish(topic, msgs...)
}

// rig is one bus over a fresh transport with one subscription.
type rig struct {
	bus   *events.Bus
	pub   *countingPublisher
	topic string
	in    <-chan events.Delivery
}

func newRig(t *testing.T, h *Harness) *rig {
	t.Helper()
	p, s := h.New(t)
	cp := &countingPublisher{Publisher: p}
	bus := events.NewBus(cp, s, &events.BusConfig{Codec: h.Codec})
	t.Cleanup(func() { _ = bus.Close() })
	topic := h.topic(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	in, err := bus.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return &rig{bus: bus, pub: cp, topic: topic, in: in}
}

// publishAsync publishes in the background: transports such as membus
// return from Publish only once the subscriber has acknowledged.
func (r *rig) publishAsync(evs ...events.Event) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.bus.Publish(context.Background(), r.topic, evs...) }()
	return done
}

func (r *rig) next(t *testing.T, h *Harness, what string) events.Delivery {
	t.Helper()
	select {
	case d, ok := <-r.in:
		if !ok {
			t.Fatalf("subscription closed while waiting for %s", what)
		}
		return d
	case <-time.After(h.timeout()):
		t.Fatalf("no delivery within %v while waiting for %s", h.timeout(), what)
	}
	return events.Delivery{}
}

func waitErr(t *testing.T, h *Harness, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(h.timeout()):
		t.Fatalf("%s did not return within %v", what, h.timeout())
	}
}

// JobEvent returns a valid job event of type typ for job, with sequence seq.
func JobEvent(t testing.TB, typ events.Type, job string, seq int64) events.Event {
	t.Helper()
	state := map[events.Type]string{
		events.JobSubmitted: "SUBMITTED", events.JobQueued: "QUEUED", events.JobRunning: "RUNNING",
		events.JobProgress: "RUNNING", events.JobCompleted: "COMPLETED", events.JobFailed: "FAILED",
		events.JobCancelled: "CANCELLED",
	}[typ]
	d := events.JobData{
		JobID: job, Owner: "bustest", Agent: "anomaly-detection", DatasetID: "VLASS3.1.T22t15.J101519+063000",
		GPUs: 3, Priority: 1, State: state, Attempt: 1, Progress: float64(seq % 100),
	}
	switch typ {
	case events.JobRunning, events.JobProgress:
		d.Backend = "simgpu"
	case events.JobFailed:
		d.Error = "bustest failure"
	}
	e, err := events.New(typ, job, d)
	if err != nil {
		t.Fatal(err)
	}
	e.Sequence = seq
	e.CorrelationID = "corr-" + job
	return e
}

func testEnvelope(t *testing.T, h *Harness) {
	r := newRig(t, h)
	e := JobEvent(t, events.JobRunning, "job-"+uuid.NewString(), 42)
	e.Source = "bustest/envelope"
	e.SchemaVersion = "1.0"
	// A zone far from UTC, with sub-second precision.
	e.Time = time.Date(2026, 7, 1, 23, 59, 58, 123456789, time.FixedZone("ACST", 9*3600+1800))
	e.CorrelationID = "corr-" + uuid.NewString()
	done := r.publishAsync(e)
	d := r.next(t, h, "the event")
	d.Ack()
	waitErr(t, h, done, "Publish")

	got := d.Event
	if got.ID != e.ID || got.Type != e.Type || got.Source != e.Source || got.Subject != e.Subject ||
		got.SchemaVersion != e.SchemaVersion || got.CorrelationID != e.CorrelationID || got.Sequence != e.Sequence {
		t.Errorf("envelope changed in transit\n got %+v\nwant %+v", got, e)
	}
	if !got.Time.Equal(e.Time) || got.Time.Nanosecond() != e.Time.Nanosecond() {
		t.Errorf("time %v, want %v", got.Time, e.Time)
	}
	if _, off := got.Time.Zone(); off != 9*3600+1800 {
		t.Errorf("time zone offset %d s, want %d", off, 9*3600+1800)
	}
	var want, have map[string]any
	_ = json.Unmarshal(e.Data, &want)
	if err := json.Unmarshal(got.Data, &have); err != nil {
		t.Fatalf("data: %v", err)
	}
	if fmt.Sprint(want) != fmt.Sprint(have) {
		t.Errorf("data %v, want %v", have, want)
	}
	md := d.Message().Metadata
	headers := map[string]string{
		events.MetaEventID:       e.ID,
		events.MetaEventType:     string(events.JobRunning),
		events.MetaSubject:       e.Subject,
		events.MetaSequence:      "42",
		events.MetaCorrelationID: e.CorrelationID,
		events.MetaAgent:         "anomaly-detection",
		events.MetaDatasetID:     "VLASS3.1.T22t15.J101519+063000",
		events.MetaGPUs:          "3",
		events.MetaJobID:         e.Subject,
		events.MetaTime:          "2026-07-01T23:59:58.123456789+09:30",
	}
	for k, v := range headers {
		if md.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, md.Get(k), v)
		}
	}
}

func testPerJobOrder(t *testing.T, h *Harness) {
	r := newRig(t, h)
	jobs, per := h.Jobs, h.EventsPerJob
	if jobs <= 0 {
		jobs = 12
	}
	if per <= 0 {
		per = 8
	}
	const publishers = 4
	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = fmt.Sprintf("job-%02d-%s", i, uuid.NewString()[:8])
	}
	// Publisher p owns the jobs i with i%publishers == p and interleaves
	// them round robin: job0 seq1, job4 seq1, job8 seq1, job0 seq2, ...
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for seq := 1; seq <= per; seq++ {
				for i := p; i < jobs; i += publishers {
					typ := events.JobProgress
					if seq == 1 {
						typ = events.JobRunning
					}
					if err := r.bus.Publish(context.Background(), r.topic, JobEvent(t, typ, ids[i], int64(seq))); err != nil {
						errs <- fmt.Errorf("publish %s seq %d: %w", ids[i], seq, err)
						return
					}
				}
			}
		}(p)
	}
	got := make(map[string][]int64, jobs)
	for n := 0; n < jobs*per; n++ {
		d := r.next(t, h, fmt.Sprintf("event %d of %d", n+1, jobs*per))
		got[d.Event.Subject] = append(got[d.Event.Subject], d.Event.Sequence)
		if s := d.Message().Metadata.Get(events.MetaSequence); s != strconv.FormatInt(d.Event.Sequence, 10) {
			t.Errorf("sequence header %q, envelope %d", s, d.Event.Sequence)
		}
		d.Ack()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		seqs := got[id]
		ok := len(seqs) == per
		for i := 0; ok && i < per; i++ {
			ok = seqs[i] == int64(i+1)
		}
		if !ok {
			t.Errorf("job %s: sequences %v, want 1..%d in order", id, seqs, per)
		}
	}
	select {
	case d, open := <-r.in:
		if open {
			t.Errorf("extra delivery %s seq %d after all %d events", d.Event.Subject, d.Event.Sequence, jobs*per)
		}
	case <-time.After(50 * time.Millisecond):
	}
}

func testRedelivery(t *testing.T, h *Harness) {
	r := newRig(t, h)
	job := "job-" + uuid.NewString()
	first := JobEvent(t, events.JobQueued, job, 1)
	done := r.publishAsync(first)
	d := r.next(t, h, "the first delivery")
	if d.Event.ID != first.ID {
		t.Fatalf("first delivery %s, want %s", d.Event.ID, first.ID)
	}
	d.Nack()
	again := r.next(t, h, "the redelivery after Nack")
	if again.Event.ID != first.ID || again.Event.Sequence != 1 {
		t.Fatalf("after Nack got %s (seq %d), want %s again", again.Event.ID, again.Event.Sequence, first.ID)
	}
	again.Ack()
	waitErr(t, h, done, "Publish of the nacked event")

	second := JobEvent(t, events.JobRunning, job, 2)
	done = r.publishAsync(second)
	d = r.next(t, h, "the event after the redelivery")
	d.Ack()
	waitErr(t, h, done, "Publish")
	if d.Event.ID != second.ID {
		t.Fatalf("after the acked redelivery got %s (seq %d), want the next event %s", d.Event.ID, d.Event.Sequence, second.ID)
	}
}

func testInvalidRejected(t *testing.T, h *Harness) {
	r := newRig(t, h)
	job := "job-" + uuid.NewString()
	good := JobEvent(t, events.JobQueued, job, 2)
	bad := JobEvent(t, events.JobCompleted, job, 3)
	var m map[string]any
	_ = json.Unmarshal(bad.Data, &m)
	m["gpus"] = "lots"
	bad.Data, _ = json.Marshal(m)

	err := r.bus.Publish(context.Background(), r.topic, good, bad)
	if !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("Publish of an invalid event = %v, want ErrInvalidEvent", err)
	}
	if n := r.pub.n.Load(); n != 0 {
		t.Fatalf("%d messages reached the transport after a rejected batch, want 0", n)
	}
	unknown := JobEvent(t, events.JobQueued, job, 3)
	unknown.Type = "job.teleported"
	if err := r.bus.Publish(context.Background(), r.topic, unknown); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Publish of an unknown type = %v, want ErrUnknownType", err)
	}
	done := r.publishAsync(good)
	d := r.next(t, h, "the valid event")
	d.Ack()
	waitErr(t, h, done, "Publish")
	if d.Event.ID != good.ID {
		t.Fatalf("first delivery %s (%s), want the valid event %s", d.Event.ID, d.Event.Type, good.ID)
	}
	if n := r.pub.n.Load(); n != 1 {
		t.Fatalf("%d messages reached the transport, want 1", n)
	}
}

func testClose(t *testing.T, h *Harness) {
	r := newRig(t, h)
	if err := r.bus.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case _, open := <-r.in:
		if open {
			t.Fatal("a delivery arrived after Close")
		}
	case <-time.After(h.timeout()):
		t.Fatalf("subscription still open %v after Close", h.timeout())
	}
	e := JobEvent(t, events.JobQueued, "job-"+uuid.NewString(), 1)
	if err := r.bus.Publish(context.Background(), r.topic, e); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := r.bus.Subscribe(context.Background(), r.topic); !errors.Is(err, events.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := r.bus.Publisher().Publish(r.topic, message.NewMessage(e.ID, []byte("{}"))); err == nil {
		t.Fatal("the transport's publisher accepted a message after Close")
	}
	if err := r.bus.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
