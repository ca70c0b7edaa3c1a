package kafkabus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cosmic-horizons/horizons/events"
	"github.com/cosmic-horizons/horizons/events/kafkabus"
)

// applyStore is a consumer's store: it applies each event once, recording the
// event id with the effect, as a consumer must when delivery is at least once.
type applyStore struct {
	mu         sync.Mutex
	applied    map[string]int
	byJob      map[string][]int64
	deliveries int
	skipped    int
	changed    chan struct{}
}

func newApplyStore() *applyStore {
	return &applyStore{applied: map[string]int{}, byJob: map[string][]int64{}, changed: make(chan struct{}, 1)}
}

func (s *applyStore) apply(e events.Event) {
	s.mu.Lock()
	s.deliveries++
	if s.applied[e.ID] > 0 {
		s.skipped++
	} else {
		s.applied[e.ID]++
		s.byJob[e.Subject] = append(s.byJob[e.Subject], e.Sequence)
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *applyStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied)
}

func (s *applyStore) waitFor(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for s.count() < n {
		select {
		case <-s.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("applied %d of %d events", s.count(), n)
		}
	}
}

// startConsumer runs a router with one handler in group on topic.
func startConsumer(t *testing.T, brokers []string, topic string, tweak func(*sarama.Config), h events.HandlerFunc) (stop func()) {
	t.Helper()
	tr, err := kafkabus.New(brokers, &kafkabus.Config{ConsumerGroup: "audit", Sarama: func(c *sarama.Config) {
		fastSarama(c)
		if tweak != nil {
			tweak(c)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.NewRouter(events.RouterConfig{
		MaxRetries: -1, CloseTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("audit", topic, tr.Subscriber(), h.Watermill(nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	<-r.Running()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = tr.Close() // the consumer dies: no clean hand-over of the message in flight
			cancel()
			_ = r.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// A consumer killed in the middle of the stream loses nothing, and its
// successor in the same group applies nothing twice. The first consumer
// commits nothing while it runs (only a rebalance would make it), and the
// broker refuses its last commit as it dies, so its successor gets again the
// events the first one applied: the store skips them by event id.
func TestKillConsumerMidStream(t *testing.T) {
	c := newCluster(t)
	brokers := c.ListenAddrs()
	topic := "kill-" + uuid.NewString()
	jobs := []string{"job-0", "job-1", "job-2", "job-3", "job-4", "job-5", "job-6", "job-7", "job-8", "job-9"}
	const killAt = 60

	store := newApplyStore()
	stuck := make(chan struct{})
	var stuckOnce sync.Once
	var crashed atomic.Bool
	c.ControlKey(kmsg.OffsetCommit.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if crashed.Load() {
			return nil, errors.New("consumer crashed before its commit arrived"), true
		}
		return nil, nil, false
	})
	noCommits := func(c *sarama.Config) { c.Consumer.Offsets.AutoCommit.Interval = time.Hour }
	stop := startConsumer(t, brokers, topic, noCommits, func(ctx context.Context, e events.Event) error {
		if store.count() >= killAt {
			stuckOnce.Do(func() { close(stuck) })
			<-ctx.Done() // the process hangs on this message until it is killed
			return errors.New("killed mid-message")
		}
		store.apply(e)
		return nil
	})
	waitStable(t, c, "audit", 1)
	pub := newBus(t, brokers, "publisher-only")
	all := publishJobs(t, pub, topic, jobs, 1, 15) // 150 events
	select {
	case <-stuck:
	case <-time.After(60 * time.Second):
		t.Fatalf("the first consumer applied only %d events", store.count())
	}
	crashed.Store(true)
	stop()
	crashed.Store(false)
	before := store.count()

	startConsumer(t, brokers, topic, nil, func(ctx context.Context, e events.Event) error {
		store.apply(e)
		return nil
	})
	store.waitFor(t, len(all))

	store.mu.Lock()
	defer store.mu.Unlock()
	for _, e := range all {
		if n := store.applied[e.ID]; n != 1 {
			t.Errorf("event %s seq %d applied %d times", e.Subject, e.Sequence, n)
		}
	}
	for job, seqs := range store.byJob {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Errorf("job %s applied out of order: %v", job, seqs)
				break
			}
		}
	}
	// Every event the first consumer applied after its last commit comes
	// again; with commits held back, that is normally all of them.
	if store.skipped == 0 || store.skipped > before {
		t.Errorf("%d redeliveries skipped, want between 1 and the %d events applied before the crash", store.skipped, before)
	}
	t.Logf("killed after %d applied; %d deliveries in all, %d redeliveries skipped by event id", before, store.deliveries, store.skipped)
}
