package bustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/horizons/events"
)

// KillHarness describes a durable transport for KillConsumerMidStream.
type KillHarness struct {
	// Publisher returns a publisher; the test closes it.
	Publisher func(t *testing.T) message.Publisher
	// Subscriber returns a new subscriber in consumer group group (two
	// calls with one group share the group's position); the test closes
	// it, which is how the consumer is killed.
	Subscriber func(t *testing.T, group string) message.Subscriber
	// Topic is the topic to use; it should be unique to the test run.
	Topic string
	// Ordered asks the test to check per-job order of the applied events
	// (a transport that requeues in-flight messages at the back of the
	// queue on a kill, such as RabbitMQ with a prefetch, cannot keep it).
	Ordered bool
	// Jobs and PerJob size the stream; zero means 10 jobs of 15 events.
	Jobs, PerJob int
}

// killStore is a consumer's store: it applies each event once, by event id,
// as a consumer must when delivery is at least once.
type killStore struct {
	mu         sync.Mutex
	applied    map[string]int
	byJob      map[string][]int64
	deliveries int
	skipped    int
}

func (s *killStore) apply(e events.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deliveries++
	if s.applied[e.ID] > 0 {
		s.skipped++
		return
	}
	s.applied[e.ID]++
	s.byJob[e.Subject] = append(s.byJob[e.Subject], e.Sequence)
}

func (s *killStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied)
}

// KillConsumerMidStream kills a consumer while events flow (its subscriber
// is closed while its handler hangs on a message), starts a new one in the
// same group, and checks that every published event is applied exactly once
// (the store skips redeliveries by event id) and, when h.Ordered, in
// sequence order per job.
func KillConsumerMidStream(t *testing.T, h KillHarness) {
	t.Helper()
	if h.Jobs <= 0 {
		h.Jobs = 10
	}
	if h.PerJob <= 0 {
		h.PerJob = 15
	}
	total := h.Jobs * h.PerJob
	killAt := total / 3
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := &killStore{applied: map[string]int{}, byJob: map[string][]int64{}}
	const group = "kill-test"

	start := func(h2 events.HandlerFunc) (stop func()) {
		sub := h.Subscriber(t, group)
		r, err := events.NewRouter(events.RouterConfig{MaxRetries: -1, CloseTimeout: 2 * time.Second, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		r.AddConsumerHandler("kill-test", h.Topic, sub, h2.Watermill(nil))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = r.Run(ctx) }()
		select {
		case <-r.Running():
		case <-time.After(30 * time.Second):
			t.Fatal("consumer did not start")
		}
		var once sync.Once
		stop = func() {
			once.Do(func() {
				_ = sub.Close() // the consumer dies: no clean hand-over of the message in flight
				cancel()
				_ = r.Close()
				<-done
			})
		}
		t.Cleanup(stop)
		return stop
	}

	if init := h.Subscriber(t, group); init != nil {
		if si, ok := init.(message.SubscribeInitializer); ok {
			if err := si.SubscribeInitialize(h.Topic); err != nil {
				t.Fatalf("initialise %s: %v", h.Topic, err)
			}
		}
		_ = init.Close()
	}
	stuck := make(chan struct{})
	var stuckOnce sync.Once
	stop := start(func(ctx context.Context, e events.Event) error {
		if store.count() >= killAt {
			stuckOnce.Do(func() { close(stuck) })
			<-ctx.Done() // the process hangs on this message until it is killed
			return errors.New("killed mid-message")
		}
		store.apply(e)
		return nil
	})

	pub := h.Publisher(t)
	t.Cleanup(func() { _ = pub.Close() })
	bus := events.NewBus(pub, nil, nil)
	var all []events.Event
	for seq := 1; seq <= h.PerJob; seq++ {
		for j := 0; j < h.Jobs; j++ {
			e := JobEvent(t, events.JobProgress, fmt.Sprintf("job-%d", j), int64(seq))
			all = append(all, e)
		}
	}
	pubDone := make(chan error, 1)
	go func() {
		for _, e := range all {
			if err := bus.Publish(context.Background(), h.Topic, e); err != nil {
				pubDone <- err
				return
			}
		}
		pubDone <- nil
	}()
	select {
	case <-stuck:
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-stuck:
		case <-time.After(60 * time.Second):
			t.Fatalf("the first consumer applied only %d events", store.count())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the first consumer applied only %d events", store.count())
	}
	stop()
	before := store.count()

	start(func(ctx context.Context, e events.Event) error {
		store.apply(e)
		return nil
	})
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publishing did not finish within a minute")
	}
	deadline := time.Now().Add(60 * time.Second)
	for store.count() < total {
		if time.Now().After(deadline) {
			t.Fatalf("applied %d of %d events after the restart", store.count(), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let late redeliveries arrive; they must be skipped
	store.mu.Lock()
	defer store.mu.Unlock()
	for _, e := range all {
		if n := store.applied[e.ID]; n != 1 {
			t.Errorf("event %s seq %d applied %d times", e.Subject, e.Sequence, n)
		}
	}
	if len(store.applied) != total {
		t.Errorf("applied %d distinct events, published %d", len(store.applied), total)
	}
	if h.Ordered {
		for job, seqs := range store.byJob {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] <= seqs[i-1] {
					t.Errorf("job %s applied out of order: %v", job, seqs)
					break
				}
			}
		}
	}
	t.Logf("killed after %d applied; %d deliveries in all, %d redeliveries skipped by event id", before, store.deliveries, store.skipped)
}
